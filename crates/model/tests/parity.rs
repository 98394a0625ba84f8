//! Parity with Hugging Face transformers (PyTorch, float32) on the real checkpoints in
//! ../shared/models. Expected values: tests/fixtures/bert_reference.json, made by
//! scripts/reference/bert_reference.py. Skips, saying why, when ../shared is absent.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use ragl_model::checkpoint::{self, Checkpoint};
use ragl_model::encode::{Pooling, batch_input, pool};
use ragl_model::tokenizer::{Encoded, TextTokenizer};
use serde_json::Value;

type B = burn::backend::Flex;

fn models() -> Option<PathBuf> {
    ragl_testkit::shared("models/bert-tiny-mlm").map(|s| s.join("models"))
}

fn fixture() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn to_vec<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

/// Checks hidden states and pooled vectors of all sentences, batched with padding.
fn check_states(
    ckpt: &Checkpoint<B>,
    tok: &TextTokenizer,
    expected: &Value,
    sentences: &[String],
) -> f32 {
    let items: Vec<(String, Option<String>)> =
        sentences.iter().map(|s| (s.clone(), None)).collect();
    let encs = tok.encode(&items).unwrap();
    let dev = Default::default();
    let refs: Vec<&Encoded> = encs.iter().collect();
    let input = batch_input::<B>(&refs, tok.pad_id, &dev);
    let hidden = ckpt.bert.forward(&input);
    let [_, s, d] = hidden.dims();
    let h = to_vec(hidden.clone());
    let mean = to_vec(pool(hidden, input.pad_mask, Pooling::Mean));
    let mut worst = 0.0f32;
    for (i, e) in encs.iter().enumerate() {
        let want = &expected[i];
        let ids: Vec<u32> = want["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(e.ids, ids, "token ids of sentence {i}");
        let n = ids.len();
        let row = |j: usize| &h[(i * s + j) * d..(i * s + j + 1) * d];
        for (key, j) in [("cls", 0), ("mid", n / 2), ("last", n - 1)] {
            worst = worst.max(max_diff(row(j), &floats(&want[key])));
        }
        worst = worst.max(max_diff(&mean[i * d..(i + 1) * d], &floats(&want["mean"])));
        let (mut sum, mut abs) = (0.0f64, 0.0f64);
        for j in 0..n {
            for x in row(j) {
                sum += *x as f64;
                abs += x.abs() as f64;
            }
        }
        let tol = 1e-4 * (n * d) as f64;
        assert!(
            (sum - want["sum"].as_f64().unwrap()).abs() <= tol,
            "sum of sentence {i}"
        );
        assert!(
            (abs - want["abs_sum"].as_f64().unwrap()).abs() <= tol,
            "abs sum of sentence {i}"
        );
    }
    worst
}

#[test]
fn minilm_hidden_states_and_mean_pooling_match_transformers() {
    let Some(m) = models() else { return };
    let f = fixture();
    let dir = m.join("all-minilm-l6-v2");
    let ckpt = checkpoint::load::<B>(&dir, &Default::default()).unwrap();
    assert!(ckpt.mlm.is_none() && ckpt.bert.pooler.is_some());
    assert!(ckpt.report.unused.is_empty(), "{:?}", ckpt.report.unused);
    let tok = TextTokenizer::from_dir(&dir, 512).unwrap();
    let sentences: Vec<String> = serde_json::from_value(f["sentences"].clone()).unwrap();
    let worst = check_states(&ckpt, &tok, &f["minilm"], &sentences);
    eprintln!("all-minilm-l6-v2: max |Δ| over states and mean pooling = {worst:e}");
    assert!(worst <= 1e-4, "{worst}");
}

#[test]
fn bert_tiny_states_and_mlm_logits_match_transformers() {
    let Some(m) = models() else { return };
    let f = fixture();
    let dir = m.join("bert-tiny-mlm");
    let ckpt = checkpoint::load::<B>(&dir, &Default::default()).unwrap();
    let head = ckpt.mlm.as_ref().expect("BertForMaskedLM has an MLM head");
    let tok = TextTokenizer::from_dir(&dir, 512).unwrap();
    let sentences: Vec<String> = serde_json::from_value(f["sentences"].clone()).unwrap();
    let worst = check_states(&ckpt, &tok, &f["tiny"], &sentences);
    assert!(worst <= 1e-4, "{worst}");

    let masked: Vec<(String, Option<String>)> = f["masked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s.as_str().unwrap().to_owned(), None))
        .collect();
    let encs = tok.encode(&masked).unwrap();
    for (e, want) in encs.iter().zip(f["tiny_mlm_ids"].as_array().unwrap()) {
        let want: Vec<u32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(e.ids, want);
    }
    let dev = Default::default();
    let refs: Vec<&Encoded> = encs.iter().collect();
    let input = batch_input::<B>(&refs, tok.pad_id, &dev);
    let hidden = ckpt.bert.forward(&input);
    let [b, s, d] = hidden.dims();
    let flat = hidden.reshape([b * s, d]);
    let probe: Vec<usize> = serde_json::from_value(f["vocab_probe"].clone()).unwrap();
    let mut worst_logit = 0.0f32;
    for want in f["tiny_mlm"].as_array().unwrap() {
        let (i, j) = (
            want["sentence"].as_u64().unwrap() as usize,
            want["position"].as_u64().unwrap() as usize,
        );
        let idx =
            Tensor::<B, 1, Int>::from_data(TensorData::new(vec![(i * s + j) as i64], [1]), &dev);
        let logits = to_vec(head.logits(&ckpt.bert, flat.clone().select(0, idx)));
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let top5: Vec<usize> = serde_json::from_value(want["top5"].clone()).unwrap();
        assert_eq!(&order[..5], &top5[..], "top-5 at sentence {i} position {j}");
        let got: Vec<f32> = probe.iter().map(|&v| logits[v]).collect();
        worst_logit = worst_logit.max(max_diff(&got, &floats(&want["probe"])));
        let m = logits.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let lse = m + logits
            .iter()
            .map(|&x| (x as f64 - m).exp())
            .sum::<f64>()
            .ln();
        assert!((lse - want["logsumexp"].as_f64().unwrap()).abs() <= 1e-3);
    }
    eprintln!("bert-tiny-mlm: max |Δ| states = {worst:e}, MLM logits = {worst_logit:e}");
    assert!(worst_logit <= 1e-3, "{worst_logit}");
}

#[test]
fn saved_checkpoints_round_trip() {
    let Some(m) = models() else { return };
    let dev = Default::default();
    let ckpt = checkpoint::load::<B>(&m.join("bert-tiny-mlm"), &dev).unwrap();
    let out = tempfile::tempdir().unwrap();
    checkpoint::save(out.path(), &ckpt.config, &ckpt.bert, ckpt.mlm.as_ref()).unwrap();
    let back = checkpoint::load::<B>(out.path(), &dev).unwrap();
    assert!(back.report.unused.is_empty());
    let tok = TextTokenizer::from_dir(&m.join("bert-tiny-mlm"), 64).unwrap();
    let encs = tok
        .encode(&[("a [MASK] sat on the mat".into(), None)])
        .unwrap();
    let input = batch_input::<B>(&[&encs[0]], 0, &dev);
    let [_, s] = input.ids.dims();
    let run = |c: &Checkpoint<B>| {
        let h = c.bert.forward(&input).reshape([s, 128]);
        to_vec(c.mlm.as_ref().unwrap().logits(&c.bert, h))
    };
    assert_eq!(run(&ckpt), run(&back));
}

fn copy_checkpoint(from: &Path, to: &Path) {
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let Some(m) = models() else { return };
    let dev = Default::default();
    let src = m.join("bert-tiny-mlm");
    let d = tempfile::tempdir().unwrap();

    copy_checkpoint(&src, d.path());
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    let e = checkpoint::load::<B>(d.path(), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("checkpoint has no model.safetensors"), "{e}");

    copy_checkpoint(&src, d.path());
    let cfg = std::fs::read_to_string(d.path().join("config.json")).unwrap();
    std::fs::write(
        d.path().join("config.json"),
        cfg.replace("\"model_type\": \"bert\"", "\"model_type\": \"gpt2\""),
    )
    .unwrap();
    let e = checkpoint::load::<B>(d.path(), &dev)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a BERT config: model_type is \"gpt2\""),
        "{e}"
    );

    std::fs::write(
        d.path().join("config.json"),
        cfg.replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"),
    )
    .unwrap();
    let e = checkpoint::load::<B>(d.path(), &dev)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tensor(s) missing: encoder.layer.2.attention.self.query.weight"),
        "{e}"
    );

    std::fs::write(
        d.path().join("config.json"),
        cfg.replace("\"intermediate_size\": 512", "\"intermediate_size\": 256"),
    )
    .unwrap();
    let e = checkpoint::load::<B>(d.path(), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tensor encoder.layer.0.intermediate.dense.weight has shape [512, 128], the config implies [256, 128]"), "{e}");

    std::fs::remove_file(d.path().join("config.json")).unwrap();
    let e = checkpoint::load::<B>(d.path(), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("checkpoint has no config.json"), "{e}");
}

#[test]
fn long_texts_are_truncated_and_counted() {
    let Some(m) = models() else { return };
    let tok = TextTokenizer::from_dir(&m.join("all-minilm-l6-v2"), 16).unwrap();
    let long = "word ".repeat(100);
    let encs = tok
        .encode(&[(long, None), ("short".into(), None), (String::new(), None)])
        .unwrap();
    assert_eq!(encs[0].ids.len(), 16);
    assert!(encs[0].truncated && !encs[1].truncated);
    assert_eq!(encs[2].ids.len(), 2); // [CLS] [SEP]
}
