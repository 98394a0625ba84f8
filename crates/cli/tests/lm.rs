//! `ragl lm perplexity` and `ragl knnlm build|eval` end to end on a GPT-2 the test makes
//! itself (ragl's initialiser, a byte-level BPE learned here): perplexity counts every token
//! once, a datastore of the text itself explains it, and every bad input exits 2 with one
//! message.

use std::path::Path;
use std::process::{Command, Output};

use burn::prelude::*;

type B = burn::backend::Flex;

const TEXT: &str = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat.\n\
                    the mat was red and the log was brown.\n";

fn write_gpt2(dir: &Path, seed: u64) {
    let tok = ragl_lm::bpe::train(std::iter::repeat_n(TEXT, 5), 300, 2).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    tok.save(dir.join("tokenizer.json"), false).unwrap();
    let cfg: ragl_model::gpt2::Gpt2Config = serde_json::from_value(serde_json::json!({
        "vocab_size": tok.get_vocab_size(true), "n_positions": 32, "n_embd": 16, "n_layer": 2,
        "n_head": 2, "bos_token_id": 0, "eos_token_id": 0, "initializer_range": 0.3,
    }))
    .unwrap();
    let device = Default::default();
    B::seed(&device, seed);
    ragl_model::gpt2::save(dir, &cfg, &cfg.init::<B>(&device)).unwrap();
}

fn ragl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ragl"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> serde_json::Value {
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stderr: {e}");
    serde_json::from_slice(&o.stdout).unwrap()
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

#[test]
fn perplexity_and_knnlm_on_a_small_gpt2() {
    let d = tempfile::tempdir().unwrap();
    let (m, t, ds) = (
        d.path().join("lm"),
        d.path().join("t.txt"),
        d.path().join("ds"),
    );
    write_gpt2(&m, 1);
    std::fs::write(&t, TEXT).unwrap();
    let tok = tokenizers::Tokenizer::from_file(m.join("tokenizer.json")).unwrap();
    let n = tok.encode(TEXT, false).unwrap().len();
    let p = ok(&ragl(&[
        "lm",
        "perplexity",
        "--model",
        s(&m),
        "--text",
        s(&t),
        "--max-len",
        "16",
        "--json",
    ]));
    assert_eq!(p["tokens"], n - 1, "every token but the first, once");
    let lines = ok(&ragl(&[
        "lm",
        "perplexity",
        "--model",
        s(&m),
        "--text",
        s(&t),
        "--per-line",
        "--json",
    ]));
    let per_line: usize = TEXT
        .lines()
        .map(|l| tok.encode(l, false).unwrap().len())
        .sum();
    assert_eq!(
        lines["tokens"], per_line,
        "every token of every line; BOS not scored"
    );

    let o = ragl(&[
        "knnlm",
        "build",
        "--model",
        s(&m),
        "--text",
        s(&t),
        "--max-len",
        "16",
        "--out",
        s(&ds),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = ok(&ragl(&[
        "knnlm",
        "eval",
        "--model",
        s(&m),
        "--datastore",
        s(&ds),
        "--text",
        s(&t),
        "--max-len",
        "16",
        "--k",
        "1,4",
        "--lambda",
        "0.5,0.99",
        "--json",
    ]));
    assert_eq!(e["tokens"], n - 1);
    assert_eq!(e["settings"].as_array().unwrap().len(), 4);
    assert!(e["best"]["perplexity"].as_f64().unwrap() < 1.1, "{e}");
    assert!(e["lm"]["perplexity"].as_f64().unwrap() > 2.0, "{e}");

    // Bad inputs.
    let empty = d.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    bad(
        &ragl(&["lm", "perplexity", "--model", s(&m), "--text", s(&empty)]),
        "no token to score",
    );
    bad(
        &ragl(&[
            "lm",
            "perplexity",
            "--model",
            s(&m),
            "--text",
            s(&t),
            "--max-len",
            "64",
        ]),
        "longer than the model's context",
    );
    let other = d.path().join("other");
    write_gpt2(&other, 2);
    bad(
        &ragl(&[
            "knnlm",
            "eval",
            "--model",
            s(&other),
            "--datastore",
            s(&ds),
            "--text",
            s(&t),
        ]),
        "was made by model",
    );
    bad(
        &ragl(&[
            "knnlm",
            "eval",
            "--model",
            s(&m),
            "--datastore",
            s(&ds),
            "--text",
            s(&t),
            "--lambda",
            "2",
        ]),
        "--lambda",
    );
    let cfg = std::fs::read_to_string(m.join("config.json")).unwrap();
    std::fs::write(
        other.join("config.json"),
        cfg.replace("\"gpt2\"", "\"bert\""),
    )
    .unwrap();
    bad(
        &ragl(&["lm", "perplexity", "--model", s(&other), "--text", s(&t)]),
        "model_type is \"bert\"",
    );
}
