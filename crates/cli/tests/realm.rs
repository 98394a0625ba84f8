//! REALM's released checkpoints on the command line, on tiny checkpoints the test writes
//! itself (ragl-testkit's `realm`): the blocks import as an index and a passages file,
//! `ragl retrieve` encodes questions with the recorded REALM embedder and finds the blocks
//! `ragl predict-qa` reads, `ragl embed` takes a REALM embedder; and every bad input exits 2
//! with one message, a hostile pickle refused without running it.

use std::path::Path;
use std::process::{Command, Output};

use ragl_testkit::realm::{BLOCKS, Layout, PROJ, write_realm};

fn ragl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ragl"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stderr: {e}");
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Exit 2, one line, no panic, mentioning `what`.
fn bad(o: &Output, what: &str) {
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {e}");
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains(what), "expected {what:?} in {e:?}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const QUESTIONS: &str = r#"{"question":"who was king in 1066","answer":["william"]}
{"question":"what flows through egypt","answer":["the nile"]}
{"question":"where was he born","answer":["paris"]}
"#;

fn jsonl(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn blocks_import_and_retrieval_agree_with_predict_qa() {
    let d = tempfile::tempdir().unwrap();
    let orqa = d.path().join("orqa");
    write_realm(&orqa, Layout::OpenQa, 3);
    let q = d.path().join("q.jsonl");
    std::fs::write(&q, QUESTIONS).unwrap();
    let (idx, blocks) = (d.path().join("idx"), d.path().join("blocks.jsonl"));
    ok(&ragl(&[
        "index",
        "import",
        "--realm",
        s(&orqa),
        "--out",
        s(&idx),
        "--passages",
        s(&blocks),
    ]));
    assert_eq!(
        std::fs::read_to_string(&blocks).unwrap().lines().count(),
        BLOCKS.len()
    );
    let run = ok(&ragl(&[
        "retrieve",
        "--index",
        s(&idx),
        "-i",
        s(&q),
        "--k",
        "3",
    ]));
    let preds = d.path().join("preds.jsonl");
    ok(&ragl(&[
        "predict-qa",
        "--checkpoint",
        s(&orqa),
        "-i",
        s(&q),
        "-o",
        s(&preds),
    ]));
    let preds = jsonl(&std::fs::read_to_string(&preds).unwrap());
    let run = jsonl(&run);
    assert_eq!((run.len(), preds.len()), (3, 3));
    for (r, p) in run.iter().zip(&preds) {
        let ids: Vec<String> = r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect();
        let read: Vec<String> = p["retrieved"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(ids, read, "retrieve and predict-qa see the same blocks");
        let block = p["block"].as_u64().unwrap() as usize;
        let answer = p["prediction"].as_str().unwrap();
        assert!(
            BLOCKS[block].contains(answer),
            "{answer:?} not in block {block}"
        );
    }
    // A stand-alone embedder is an encoder for `ragl embed`.
    let emb = d.path().join("embedder");
    write_realm(&emb, Layout::Embedder, 4);
    let out = d.path().join("e.npy");
    ok(&ragl(&[
        "embed",
        "--model",
        s(&emb),
        "--input",
        s(&blocks),
        "--output",
        s(&out),
    ]));
    let npy = std::fs::read(&out).unwrap();
    let header = String::from_utf8_lossy(&npy[..128]);
    assert!(
        header.contains(&format!("({}, {PROJ})", BLOCKS.len())),
        "{header}"
    );
}

#[test]
fn bad_realm_inputs_exit_2_and_no_pickle_runs() {
    let d = tempfile::tempdir().unwrap();
    let q = d.path().join("q.jsonl");
    std::fs::write(&q, QUESTIONS).unwrap();
    let orqa = d.path().join("orqa");
    write_realm(&orqa, Layout::OpenQa, 3);
    let emb = d.path().join("embedder");
    write_realm(&emb, Layout::Embedder, 4);
    let out = d.path().join("out");
    let predict = |dir: &Path| {
        ragl(&[
            "predict-qa",
            "--checkpoint",
            s(dir),
            "-i",
            s(&q),
            "-o",
            s(&out),
        ])
    };

    // A block_records.npy whose pickle calls os.system: refused, nothing run.
    let records = orqa.join("block_records.npy");
    let good = std::fs::read(&records).unwrap();
    let head = &good[..good.iter().position(|&b| b == b'\n').unwrap() + 1];
    let sentinel = d.path().join("pwned");
    let cmd = format!("touch {}", s(&sentinel));
    let mut evil = head.to_vec();
    evil.extend(b"\x80\x02cposix\nsystem\nX");
    evil.extend((cmd.len() as u32).to_le_bytes());
    evil.extend(cmd.as_bytes());
    evil.extend(b"\x85R.");
    std::fs::write(&records, evil).unwrap();
    bad(&predict(&orqa), "posix.system");
    assert!(!sentinel.exists(), "the pickle was run");
    assert!(!out.exists(), "no predictions written");
    bad(
        &ragl(&["index", "import", "--realm", s(&orqa), "--out", s(&out)]),
        "posix.system",
    );
    assert!(!out.exists());

    // No block_records.npy at all.
    std::fs::remove_file(&records).unwrap();
    bad(&predict(&orqa), "no block_records.npy");
    bad(
        &ragl(&["index", "import", "--realm", s(&orqa), "--out", s(&out)]),
        "no block_records.npy",
    );
    std::fs::write(&records, good).unwrap();

    // An embedder where an open-QA system is needed, or a translation model.
    bad(&predict(&emb), "has no reader");
    bad(
        &ragl(&["index", "import", "--realm", s(&emb), "--out", s(&out)]),
        "no block_emb",
    );
    bad(
        &ragl(&["mt", "translate", "--model", s(&emb), "-i", s(&q)]),
        "realm",
    );
    // Mean pooling asked of a REALM embedder.
    let p = d.path().join("p.jsonl");
    std::fs::write(&p, "{\"id\":\"0\",\"text\":\"paris\"}\n").unwrap();
    bad(
        &ragl(&[
            "embed",
            "--model",
            s(&emb),
            "--input",
            s(&p),
            "--output",
            s(&out),
            "--pooling",
            "mean",
        ]),
        "pooling must be cls",
    );
    assert!(!out.exists());
}
