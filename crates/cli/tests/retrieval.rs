//! `ragl index`, `ragl retrieve` and `ragl eval retrieval` end to end, on a tiny corpus the
//! test writes itself (BM25 and precomputed vectors need no model); the dense path with a
//! real encoder runs where ../shared/models is present.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

const PASSAGES: &str = r#"{"id":"paris:0","title":"Paris","text":"Paris is the capital and largest city of France."}
{"id":"rome:0","title":"Rome","text":"Rome is the capital of Italy, founded in 753 BC."}
{"id":"nile:0","title":"Nile","text":"The Nile is a major river flowing north through Egypt."}
{"id":"everest:0","title":"Mount Everest","text":"Mount Everest is the highest mountain above sea level, at 8,849 metres."}
"#;

const GOLD: &str = r#"{"question":"what is the capital of france","answer":["Paris"]}
{"question":"which river flows through egypt","answer":["the Nile"]}
{"question":"how high is the highest mountain","answer":["8,849 metres"]}
"#;

fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("passages.jsonl");
    let g = d.path().join("gold.jsonl");
    std::fs::write(&p, PASSAGES).unwrap();
    std::fs::write(&g, GOLD).unwrap();
    (d, p, g)
}

#[test]
fn bm25_build_retrieve_and_recall() {
    let (d, p, g) = fixture();
    let idx = d.path().join("bm25");
    ok(&ragl(&[
        "index",
        "build",
        "--passages",
        s(&p),
        "--kind",
        "bm25",
        "--out",
        s(&idx),
    ]));
    let info = ok(&ragl(&["index", "info", s(&idx)]));
    assert!(
        info.contains("rows      4") && info.contains("all file hashes match"),
        "{info}"
    );
    let run = d.path().join("run.jsonl");
    ok(&ragl(&[
        "retrieve",
        "--index",
        s(&idx),
        "--queries",
        s(&g),
        "--k",
        "2",
        "-o",
        s(&run),
    ]));
    let text = std::fs::read_to_string(&run).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["qid"], "0");
    assert_eq!(first["hits"][0]["id"], "paris:0");
    let out = ok(&ragl(&[
        "eval",
        "retrieval",
        "--gold",
        s(&g),
        "--retrieved",
        s(&run),
        "--passages",
        s(&p),
        "--k",
        "1,2",
    ]));
    assert!(out.contains("recall@1    100.00"), "{out}");
    // TREC output reads back the same.
    let trec = d.path().join("run.trec");
    ok(&ragl(&[
        "retrieve",
        "--index",
        s(&idx),
        "--queries",
        s(&g),
        "--k",
        "2",
        "--format",
        "trec",
        "-o",
        s(&trec),
    ]));
    assert!(
        std::fs::read_to_string(&trec)
            .unwrap()
            .starts_with("0 Q0 paris:0 1 ")
    );
    let out2 = ok(&ragl(&[
        "eval",
        "retrieval",
        "--gold",
        s(&g),
        "--retrieved",
        s(&trec),
        "--passages",
        s(&p),
        "--k",
        "1,2",
    ]));
    assert_eq!(out, out2);
    // Fusing a run with itself keeps its ranking.
    let fused = d.path().join("fused.jsonl");
    ok(&ragl(&[
        "fuse",
        "--run",
        s(&run),
        "--run",
        s(&trec),
        "--method",
        "linear",
        "-o",
        s(&fused),
    ]));
    let f: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&fused)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(f["hits"][0]["id"], "paris:0");
    // A run naming a passage the corpus does not have.
    let bogus = d.path().join("bogus.trec");
    std::fs::write(
        &bogus,
        "0 Q0 atlantis:0 1 3.0 x\n1 Q0 nile:0 1 2.0 x\n2 Q0 everest:0 1 1.0 x\n",
    )
    .unwrap();
    bad(
        &ragl(&[
            "eval",
            "retrieval",
            "--gold",
            s(&g),
            "--retrieved",
            s(&bogus),
            "--passages",
            s(&p),
        ]),
        "\"atlantis:0\" is not in the passages",
    );
    // Query vectors against a lexical index.
    bad(
        &ragl(&["retrieve", "--index", s(&idx), "--query-vectors", s(&p)]),
        "BM25",
    );
}

/// Writes an .npy of f32 rows.
fn npy(path: &Path, rows: &[Vec<f32>]) {
    let cols = rows[0].len();
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {cols}), }}",
        rows.len()
    );
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 64 - (10 + dict.len() + 1) % 64;
    h.extend_from_slice(&((dict.len() + pad + 1) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    for r in rows {
        for x in r {
            h.extend_from_slice(&x.to_le_bytes());
        }
    }
    std::fs::write(path, h).unwrap();
}

#[test]
fn vector_indexes_search_exactly_and_refuse_damage() {
    let d = tempfile::tempdir().unwrap();
    // Distinct vectors (duplicates would make the exact top-k's tie-break differ from
    // HNSW's without any loss of recall).
    let rows: Vec<Vec<f32>> = (0..50)
        .map(|i| {
            (0..8)
                .map(|j| (i as f32 * 0.37 + j as f32 * 1.7).sin())
                .collect()
        })
        .collect();
    let v = d.path().join("v.npy");
    npy(&v, &rows);
    let q = d.path().join("q.npy");
    npy(&q, &rows[..3]);
    for kind in ["exact", "hnsw"] {
        let idx = d.path().join(kind);
        ok(&ragl(&[
            "index",
            "build",
            "--vectors",
            s(&v),
            "--kind",
            kind,
            "--metric",
            "l2",
            "--out",
            s(&idx),
        ]));
        let out = ok(&ragl(&[
            "retrieve",
            "--index",
            s(&idx),
            "--query-vectors",
            s(&q),
            "--k",
            "1",
        ]));
        for (i, line) in out.lines().enumerate() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            // Each row is its own nearest neighbour, at distance 0 (up to the rounding of
            // ‖q‖² − 2q·x + ‖x‖² in exact search).
            assert!(
                e["hits"][0]["score"].as_f64().unwrap().abs() < 1e-5,
                "{line}"
            );
            assert_eq!(e["hits"][0]["id"], i.to_string(), "{line}");
        }
    }
    let audit = ok(&ragl(&[
        "index",
        "audit",
        "--index",
        s(&d.path().join("hnsw")),
        "--sample",
        "50",
        "--k",
        "5",
        "--json",
    ]));
    let a: serde_json::Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
    assert!(a["recall"].as_f64().unwrap() >= 0.99, "{audit}");
    // Wrong query dimension; a corrupted graph; --dtype on an exact index.
    let q3 = d.path().join("q3.npy");
    npy(&q3, &[vec![0.0; 3]]);
    bad(
        &ragl(&[
            "retrieve",
            "--index",
            s(&d.path().join("exact")),
            "--query-vectors",
            s(&q3),
        ]),
        "3-d query vectors",
    );
    let g = d.path().join("hnsw/hnsw.usearch");
    let mut b = std::fs::read(&g).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x55;
    std::fs::write(&g, b).unwrap();
    bad(
        &ragl(&[
            "retrieve",
            "--index",
            s(&d.path().join("hnsw")),
            "--query-vectors",
            s(&q),
        ]),
        "content hash",
    );
    bad(
        &ragl(&[
            "index",
            "build",
            "--vectors",
            s(&v),
            "--dtype",
            "i8",
            "--out",
            s(&d.path().join("x")),
        ]),
        "--dtype applies to hnsw",
    );
    bad(
        &ragl(&[
            "index",
            "build",
            "--vectors",
            s(&v),
            "--shard",
            "4/4",
            "--out",
            s(&d.path().join("x")),
        ]),
        "--shard",
    );
}

#[test]
fn dense_index_refuses_a_query_encoder_it_was_not_built_with() {
    let Some(shared) = ragl_testkit::shared("models/bert-tiny-mlm") else {
        return;
    };
    let (d, p, g) = fixture();
    let tiny = shared.join("models/bert-tiny-mlm");
    let minilm = shared.join("models/all-minilm-l6-v2");
    let idx = d.path().join("dense");
    ok(&ragl(&[
        "index",
        "build",
        "--passages",
        s(&p),
        "--model",
        s(&tiny),
        "--out",
        s(&idx),
        "--max-len",
        "64",
    ]));
    let out = ok(&ragl(&[
        "retrieve",
        "--index",
        s(&idx),
        "--queries",
        s(&g),
        "--k",
        "4",
    ]));
    assert_eq!(out.lines().count(), 3);
    // MiniLM gives 384-d vectors; the index holds bert-tiny's 128-d ones.
    if minilm.exists() {
        bad(
            &ragl(&[
                "retrieve",
                "--index",
                s(&idx),
                "--queries",
                s(&g),
                "--model",
                s(&minilm),
            ]),
            "384-d vectors",
        );
    }
    // Same dimension, other weights: refused unless asked for.
    let other = d.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for f in std::fs::read_dir(&tiny).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, other.join(f.file_name().unwrap())).unwrap();
        }
    }
    let w = other.join("model.safetensors");
    let mut b = std::fs::read(&w).unwrap();
    let n = b.len();
    b[n - 1] ^= 1; // the last byte of the last tensor: still a valid file
    std::fs::write(&w, b).unwrap();
    bad(
        &ragl(&[
            "retrieve",
            "--index",
            s(&idx),
            "--queries",
            s(&g),
            "--model",
            s(&other),
        ]),
        "not the query tower",
    );
    ok(&ragl(&[
        "retrieve",
        "--index",
        s(&idx),
        "--queries",
        s(&g),
        "--model",
        s(&other),
        "--allow-foreign-encoder",
    ]));
}
