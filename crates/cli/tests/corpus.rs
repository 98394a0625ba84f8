//! `ragl corpus chunk`, `ragl mask annotate` and `ragl mask make` end to end. Chunking and
//! masking need a tokenizer, taken from ../shared/models (the tests skip without it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ragl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ragl"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn bad(o: &Output, what: &str) {
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {e}");
    assert!(
        !e.contains("panicked") && e.contains(what),
        "expected {what:?} in {e:?}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tokenizer() -> Option<PathBuf> {
    ragl_testkit::shared("models/bert-tiny-mlm").map(|d| d.join("models/bert-tiny-mlm"))
}

const DOCS: &str = "{\"id\":\"oil\",\"title\":\"1973 oil crisis\",\"text\":\"The 1973 oil crisis began in October 1973 when the members of the Organization of Arab Petroleum Exporting Countries proclaimed an oil embargo. By the end of the embargo in March 1974, the price of oil had risen from US$3 per barrel to nearly $12. The embargo caused an oil crisis with many effects on global politics.\"}\n{\"id\":\"copy\",\"title\":\"1973 oil crisis\",\"text\":\"The 1973 oil crisis began in October 1973 when the members of the Organization of Arab Petroleum Exporting Countries proclaimed an oil embargo. By the end of the embargo in March 1974, the price of oil had risen from US$3 per barrel to nearly $12. The embargo caused an oil crisis with many effects on global politics.\"}\n";

#[test]
fn chunk_annotate_and_mask() {
    let Some(tok) = tokenizer() else { return };
    let d = tempfile::tempdir().unwrap();
    let docs = d.path().join("docs.jsonl");
    std::fs::write(&docs, DOCS).unwrap();
    let passages = d.path().join("passages.jsonl");
    let o = ragl(&[
        "corpus",
        "chunk",
        "--input",
        s(&docs),
        "--output",
        s(&passages),
        "--tokenizer",
        s(&tok),
        "--max-tokens",
        "40",
    ]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("exact duplicates dropped") && err.contains("max "),
        "{err}"
    );
    let ps: Vec<serde_json::Value> = std::fs::read_to_string(&passages)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The second document repeats the first: its passages are dropped as duplicates.
    assert!(
        ps.len() >= 2 && ps.iter().all(|p| p["doc_id"] == "oil"),
        "{ps:?}"
    );
    assert!(ps.iter().all(|p| p["tokens"].as_u64().unwrap() <= 40));
    assert_eq!(ps[0]["id"], "oil:0");
    assert_eq!(ps[0]["char_start"], 0);
    let ann = d.path().join("ann.jsonl");
    ok(&ragl(&[
        "mask",
        "annotate",
        "--input",
        s(&passages),
        "--output",
        s(&ann),
    ]));
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&ann)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let text: Vec<char> = first["text"].as_str().unwrap().chars().collect();
    let spans: Vec<String> = first["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            text[x["start"].as_u64().unwrap() as usize..x["end"].as_u64().unwrap() as usize]
                .iter()
                .collect()
        })
        .collect();
    assert!(spans.contains(&"October 1973".to_string()), "{spans:?}");
    let ex = d.path().join("ex.jsonl");
    ok(&ragl(&[
        "mask",
        "make",
        "--input",
        s(&ann),
        "--output",
        s(&ex),
        "--tokenizer",
        s(&tok),
        "--seed",
        "3",
    ]));
    let e: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&ex)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(e["passage_id"], "oil:0");
    assert_eq!(e["strategy"], "salient");
    let pos = e["masked_positions"].as_array().unwrap();
    assert!(!pos.is_empty() && pos.len() == e["masked_ids"].as_array().unwrap().len());
    // External spans instead of the rules: out of order → error naming the line.
    let ext = d.path().join("ext.jsonl");
    std::fs::write(&ext, "{\"id\":\"oil:0\",\"spans\":[{\"start\":10,\"end\":20,\"type\":\"DATE\"},{\"start\":4,\"end\":8,\"type\":\"DATE\"}]}\n").unwrap();
    bad(
        &ragl(&[
            "mask",
            "annotate",
            "--input",
            s(&passages),
            "--output",
            s(&ann),
            "--spans",
            s(&ext),
        ]),
        "ext.jsonl:1: spans overlap",
    );
    std::fs::write(
        &ext,
        "{\"id\":\"oil:0\",\"spans\":[{\"start\":4,\"end\":8,\"type\":\"DATE\"}]}\n",
    )
    .unwrap();
    ok(&ragl(&[
        "mask",
        "annotate",
        "--input",
        s(&passages),
        "--output",
        s(&ann),
        "--spans",
        s(&ext),
    ]));
}

#[test]
fn bad_documents_name_their_line() {
    let Some(tok) = tokenizer() else { return };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.jsonl");
    let f = d.path().join("broken.jsonl");
    std::fs::write(&f, "{\"id\":\"a\",\"title\":\"T\",\"text\":\"Fine. Text.\"}\n{\"id\":\"b\",\"text\":\"unterminated\n").unwrap();
    bad(
        &ragl(&[
            "corpus",
            "chunk",
            "--input",
            s(&f),
            "--output",
            s(&out),
            "--tokenizer",
            s(&tok),
        ]),
        "broken.jsonl:2",
    );
    assert!(!out.exists(), "no partial output");
    let f = d.path().join("latin1.tsv");
    std::fs::write(&f, b"a\tT\tFine text.\nb\tT\tcaf\xe9\n").unwrap();
    bad(
        &ragl(&[
            "corpus",
            "chunk",
            "--input",
            s(&f),
            "--output",
            s(&out),
            "--tokenizer",
            s(&tok),
        ]),
        "latin1.tsv:2: invalid UTF-8",
    );
    ok(&ragl(&[
        "corpus",
        "chunk",
        "--input",
        s(&f),
        "--output",
        s(&out),
        "--tokenizer",
        s(&tok),
        "--skip-invalid",
    ]));
    let f = d.path().join("cols.tsv");
    std::fs::write(&f, "a\tonly two\n").unwrap();
    bad(
        &ragl(&[
            "corpus",
            "chunk",
            "--input",
            s(&f),
            "--output",
            s(&out),
            "--tokenizer",
            s(&tok),
        ]),
        "cols.tsv:1: expected 3 tab-separated columns",
    );
    // A long document without sentence breaks is cut at words, within the budget.
    let f = d.path().join("long.jsonl");
    let text = "word ".repeat(5000);
    std::fs::write(
        &f,
        format!("{{\"id\":\"l\",\"title\":\"\",\"text\":\"{text}\"}}\n"),
    )
    .unwrap();
    ok(&ragl(&[
        "corpus",
        "chunk",
        "--input",
        s(&f),
        "--output",
        s(&out),
        "--tokenizer",
        s(&tok),
        "--max-tokens",
        "64",
    ]));
    let ps: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(ps.iter().all(|p| p["tokens"].as_u64().unwrap() <= 64));
    // Identical windows of a repetitive document are dropped as duplicates too.
    assert!(!ps.is_empty());
}
