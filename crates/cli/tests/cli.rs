//! End-to-end tests of the built `ragl` binary: outputs, and bad input giving a one-line
//! error naming file and line with exit code 2 (never a panic).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn ragl(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ragl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    if let Some(b) = stdin {
        sin.write_all(b).unwrap();
    }
    drop(sin);
    child.wait_with_output().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One line, names the file and line, exit 2, no panic.
fn assert_bad_input(o: &Output, file_and_line: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {e}");
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.contains(file_and_line),
        "expected {file_and_line:?} in {e:?}"
    );
}

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sample");

#[test]
fn bleu_text_output_matches_sacrebleu_and_reads_stdin() {
    // sacrebleu 2.6.0: sacrebleu mt.ref.en -i mt.hyp.en -f text -w 2
    let hyp = std::fs::read(format!("{SAMPLE}/mt.hyp.en")).unwrap();
    let o = ragl(
        &["eval", "bleu", &format!("{SAMPLE}/mt.ref.en")],
        Some(&hyp),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "BLEU = 66.94 89.4/73.6/61.8/53.2 (BP = 0.981 ratio = 0.982 hyp_len = 160 ref_len = 163)"
    );
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:ragl-{}",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn json_output_has_the_documented_fields() {
    let o = ragl(
        &[
            "eval",
            "bleu",
            &format!("{SAMPLE}/mt.ref.en"),
            &format!("{SAMPLE}/mt.ref2.en"),
            "-i",
            &format!("{SAMPLE}/mt.hyp.en"),
            "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in [
        "name",
        "score",
        "counts",
        "totals",
        "precisions",
        "bp",
        "sys_len",
        "ref_len",
        "signature",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    // sacrebleu 2.6.0, two references: 74.17 with ref_len 160.
    assert_eq!(format!("{:.2}", v["score"].as_f64().unwrap()), "74.17");
    assert_eq!(v["ref_len"], 160);
    assert!(v["signature"].as_str().unwrap().starts_with("nrefs:2|"));
}

#[test]
fn chrf_plus_plus() {
    // sacrebleu 2.6.0: -m chrf --chrf-word-order 2 → chrF2++ = 78.73
    let o = ragl(
        &[
            "eval",
            "chrf",
            &format!("{SAMPLE}/mt.ref.en"),
            "-i",
            &format!("{SAMPLE}/mt.hyp.en"),
            "--word-order",
            "2",
        ],
        None,
    );
    assert!(o.status.success());
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .starts_with("chrF2++ = 78.73\nnrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|")
    );
}

#[test]
fn different_line_counts_name_the_first_unmatched_line() {
    let d = tempfile::tempdir().unwrap();
    let r = write(d.path(), "ref.txt", b"a b c\nd e f\ng h\n");
    let h = write(d.path(), "hyp.txt", b"a b c\nd e f\n");
    let o = ragl(&["eval", "bleu", &r, "-i", &h], None);
    assert_bad_input(&o, &format!("{r}:3:"));
}

#[test]
fn invalid_utf8_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let r = write(d.path(), "ref.txt", b"a b\nc d\n");
    let h = write(d.path(), "hyp.txt", b"a b\nc \xc3\x28 d\n");
    assert_bad_input(
        &ragl(&["eval", "bleu", &r, "-i", &h], None),
        &format!("{h}:2: invalid UTF-8"),
    );
    assert_bad_input(
        &ragl(&["eval", "chrf", &h, "-i", &r], None),
        &format!("{h}:2: invalid UTF-8"),
    );
}

#[test]
fn empty_file_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let r = write(d.path(), "ref.txt", b"a b\n");
    let h = write(d.path(), "hyp.txt", b"");
    assert_bad_input(
        &ragl(&["eval", "bleu", &r, "-i", &h], None),
        &format!("{h}:1: empty file"),
    );
}

#[test]
fn missing_file_is_bad_input() {
    let o = ragl(
        &["eval", "bleu", "/nonexistent/ref.txt", "-i", "-"],
        Some(b"x\n"),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/ref.txt"));
}

#[test]
fn malformed_jsonl_prediction_names_the_line() {
    let d = tempfile::tempdir().unwrap();
    let g = write(d.path(), "gold.jsonl", b"{\"question\": \"q1\", \"answer\": [\"a\"]}\n{\"question\": \"q2\", \"answer\": [\"b\"]}\n");
    let p = write(d.path(), "pred.jsonl", b"{\"question\": \"q1\", \"prediction\": \"a\"}\n{\"question\": \"q2\", \"prediction\": }\n");
    assert_bad_input(
        &ragl(&["eval", "qa", "--gold", &g, "--pred", &p], None),
        &format!("{p}:2: invalid JSON"),
    );
    let g2 = write(
        d.path(),
        "gold2.jsonl",
        b"{\"question\": \"q1\", \"answer\": [\"a\"]}\n{\"question\": \n",
    );
    let p2 = write(
        d.path(),
        "pred2.jsonl",
        b"{\"question\": \"q1\", \"prediction\": \"a\"}\n",
    );
    assert_bad_input(
        &ragl(&["eval", "qa", "--gold", &g2, "--pred", &p2], None),
        &format!("{g2}:2: invalid JSON"),
    );
}

#[test]
fn qa_missing_prediction_lists_it() {
    let d = tempfile::tempdir().unwrap();
    let g = write(d.path(), "gold.jsonl", b"{\"question\": \"q1\", \"answer\": [\"a\"]}\n{\"question\": \"q2\", \"answer\": [\"b\"]}\n");
    let p = write(
        d.path(),
        "pred.jsonl",
        b"{\"question\": \"q1\", \"prediction\": \"The A.\"}\n",
    );
    let o = ragl(&["eval", "qa", "--gold", &g, "--pred", &p], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("1 of 2 questions have no prediction, first: \"q2\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn qa_json_output() {
    let d = tempfile::tempdir().unwrap();
    let g = write(d.path(), "gold.jsonl", b"{\"question\": \"q1\", \"answer\": [\"a dog\"]}\n{\"question\": \"q2\", \"answer\": [\"b\"]}\n");
    let p = write(d.path(), "pred.jsonl", b"{\"question\": \"q1\", \"prediction\": \"The Dog.\"}\n{\"question\": \"q2\", \"prediction\": \"c\"}\n");
    let o = ragl(&["eval", "qa", "--gold", &g, "--pred", &p, "--json"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            v["exact_match"].as_f64(),
            v["f1"].as_f64(),
            v["format"].as_str()
        ),
        (Some(50.0), Some(50.0), Some("nq-open"))
    );
}

#[test]
fn last_line_without_newline_counts() {
    let d = tempfile::tempdir().unwrap();
    let with = write(
        d.path(),
        "with.txt",
        b"one two three four\nfive six seven eight\n",
    );
    let without = write(
        d.path(),
        "without.txt",
        b"one two three four\nfive six seven eight",
    );
    let o = ragl(&["eval", "bleu", &with, "-i", &without, "--json"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["score"].as_f64(), v["sys_len"].as_u64()),
        (Some(100.00000000000004), Some(8))
    );
}

fn shared() -> Option<PathBuf> {
    ragl_testkit::shared("data/mt")
}

#[test]
fn koran_train_without_final_newline_is_read_whole() {
    let Some(s) = shared() else { return };
    let f = s.join("data/mt/multidomain/koran/train.en");
    let f = f.to_str().unwrap();
    let o = ragl(&["eval", "bleu", f, "-i", f, "--json"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // sacrebleu 2.6.0 gives 100.00000000000004 here too (exp of a sum of logs of 100).
    assert_eq!(v["score"].as_f64(), Some(100.00000000000004));
    // Line count: 17,982 pairs (the data README), the last one without a newline.
    let text = std::fs::read_to_string(f).unwrap();
    assert!(!text.ends_with('\n'));
    let o = ragl(
        &["eval", "bleu", f, "-i", "-", "--sentence-level", "--json"],
        Some(text.as_bytes()),
    );
    assert_eq!(String::from_utf8(o.stdout).unwrap().lines().count(), 17982);
}

#[test]
fn quickstart_runs() {
    let o = ragl(&["quickstart", "--metrics-only"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("BLEU = 66.94") && out.contains("EM = 60.00"),
        "{out}"
    );
}

#[test]
fn cuda_device_without_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let o = ragl(&["device", "--device", "cuda"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--features cuda"));
}

fn tiny_model() -> Option<PathBuf> {
    let p = shared()?.join("models/bert-tiny-mlm");
    p.is_dir().then_some(p)
}

#[test]
fn embed_writes_npy_and_ids_and_counts_truncation() {
    let Some(m) = tiny_model() else { return };
    let d = tempfile::tempdir().unwrap();
    let long = "word ".repeat(300);
    let input = write(
        d.path(),
        "in.jsonl",
        format!("{{\"id\": \"a\", \"text\": \"short text\"}}\n{{\"id\": 7, \"title\": \"T\", \"text\": \"{long}\"}}\n").as_bytes(),
    );
    let out = d.path().join("e.npy");
    let o = ragl(
        &[
            "embed",
            "--model",
            m.to_str().unwrap(),
            "--input",
            &input,
            "--output",
            out.to_str().unwrap(),
            "--max-len",
            "32",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 truncated to 32 tokens"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("e.ids")).unwrap(),
        "a\n7\n"
    );
    let bytes = std::fs::read(&out).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..128]).contains("'shape': (2, 128)"));
    assert_eq!(bytes.len(), 128 + 2 * 128 * 4);
}

#[test]
fn embed_bad_input_names_the_line() {
    let Some(m) = tiny_model() else { return };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("e.npy");
    let (m, o) = (m.to_str().unwrap(), out.to_str().unwrap());
    let bad_json = write(
        d.path(),
        "bad.jsonl",
        b"{\"id\": 1, \"text\": \"ok\"}\n{\"id\": 2, \"text\": \n",
    );
    assert_bad_input(
        &ragl(
            &["embed", "--model", m, "--input", &bad_json, "--output", o],
            None,
        ),
        &format!("{bad_json}:2: invalid JSON"),
    );
    let empty = write(
        d.path(),
        "empty.jsonl",
        b"{\"id\": 1, \"text\": \"ok\"}\n{\"id\": 2, \"text\": \"  \"}\n",
    );
    assert_bad_input(
        &ragl(
            &["embed", "--model", m, "--input", &empty, "--output", o],
            None,
        ),
        &format!("{empty}:2: empty \"text\""),
    );
    let skipped = ragl(
        &[
            "embed",
            "--model",
            m,
            "--input",
            &empty,
            "--output",
            o,
            "--skip-invalid",
        ],
        None,
    );
    assert!(
        skipped.status.success() && stderr(&skipped).contains("1 skipped"),
        "{}",
        stderr(&skipped)
    );
    assert!(!out.with_extension("tmp").exists());
    let no_model = d.path().join("nomodel");
    std::fs::create_dir(&no_model).unwrap();
    let e = ragl(
        &[
            "embed",
            "--model",
            no_model.to_str().unwrap(),
            "--input",
            &empty,
            "--output",
            o,
        ],
        None,
    );
    assert_bad_input(&e, "checkpoint has no config.json");
}

#[test]
fn qa_split_is_seeded_stratified_and_reads_back_as_gold() {
    let d = tempfile::tempdir().unwrap();
    // Two articles of 10 and 20 questions; one question text appears twice.
    let article = |title: &str, n: usize| {
        let qas: Vec<_> = (0..n)
            .map(|i| {
                serde_json::json!({"id": format!("{title}{i}"), "question": if i == 0 { "same?".to_string() } else { format!("{title} q{i}?") },
                    "answers": [{"text": format!("a{i}"), "answer_start": 0}]})
            })
            .collect();
        serde_json::json!({"title": title, "paragraphs": [{"context": "ctx", "qas": qas}]})
    };
    let squad = serde_json::json!({"data": [article("A", 10), article("B", 20)]});
    let input = write(d.path(), "squad.json", squad.to_string().as_bytes());
    let out = d.path().join("split");
    let run = |seed: &str| {
        let o = ragl(
            &[
                "qa",
                "split",
                "-i",
                &input,
                "--out-dir",
                out.to_str().unwrap(),
                "--dev",
                "0.1",
                "--test",
                "0.2",
                "--seed",
                seed,
            ],
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        ["train", "dev", "test"]
            .map(|n| std::fs::read_to_string(out.join(format!("{n}.jsonl"))).unwrap())
    };
    let [train, dev, test] = run("1");
    let rows = |s: &str| {
        s.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let (tr, dv, te) = (rows(&train), rows(&dev), rows(&test));
    assert_eq!((tr.len(), dv.len(), te.len()), (21, 3, 6));
    // Stratified: A contributes 1 of 3 dev and 2 of 6 test questions.
    assert_eq!(dv.iter().filter(|r| r["title"] == "A").count(), 1);
    assert_eq!(te.iter().filter(|r| r["title"] == "A").count(), 2);
    assert_eq!(run("1")[2], test);
    assert_ne!(run("2")[2], test);
    run("1");
    // The split reads back as gold; predictions keyed by id survive duplicate questions.
    let pred: String = tr
        .iter()
        .map(|r| serde_json::json!({"id": r["id"], "question": r["question"], "prediction": r["answer"][0]}).to_string() + "\n")
        .collect();
    let pred = write(d.path(), "pred.jsonl", pred.as_bytes());
    let o = ragl(
        &[
            "eval",
            "qa",
            "--gold",
            out.join("train.jsonl").to_str().unwrap(),
            "--pred",
            &pred,
        ],
        None,
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("EM = 100.00"),
        "{}",
        stderr(&o)
    );
    let o = ragl(
        &[
            "qa",
            "split",
            "-i",
            &input,
            "--out-dir",
            out.to_str().unwrap(),
            "--dev",
            "0.5",
            "--test",
            "0.5",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn quickstart_smoke_runs_every_stage_and_writes_the_summary_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("qs");
    let o = ragl(
        &["quickstart", "--smoke", "--out", out.to_str().unwrap()],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("open-domain QA exact match"), "{summary}");
    assert!(summary.contains("ORQA start"), "{summary}");
    assert!(out.join("qa-orqa/best/manifest.json").is_file());
    assert!(
        summary.contains("BLEU on the new (medical) domain"),
        "{summary}"
    );
    for png in [
        "recall.png",
        "bleu_vs_lambda.png",
        "qa_loss.png",
        "mt_loss.png",
        "realm/ict.png",
    ] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
    // A second run replaces the first; a directory that is not a quickstart run is refused.
    let o = ragl(
        &["quickstart", "--smoke", "--out", out.to_str().unwrap()],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let other = dir.path().join("mine");
    std::fs::create_dir_all(&other).unwrap();
    let o = ragl(
        &["quickstart", "--smoke", "--out", other.to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
