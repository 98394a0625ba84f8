//! kNN-LM end to end on a GPT-2 the test makes itself: a datastore over a text holds one
//! key per scored token with the token as its value; scored on that same text, each key's
//! nearest neighbour is itself, so a kNN-heavy mix drives perplexity towards 1 and λ = 0 is
//! the LM alone; a datastore is refused for another model.

use std::path::Path;

use burn::backend::Flex;
use burn::prelude::*;
use ragl_index::Metric;
use ragl_index::artifact::IndexConfig;
use ragl_knn::datastore::Datastore;
use ragl_knn::lm::{Grid, LmBuildConfig, build, evaluate};
use ragl_lm::score::KeyPoint;
use ragl_lm::windows::{Text, windows};

type B = Flex;

const TEXT: &str = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat. \
                    the mat was red and the log was brown.";

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

#[test]
fn a_datastore_of_the_text_itself_explains_it() {
    let d = tempfile::tempdir().unwrap();
    let (model, text, ds_dir) = (
        d.path().join("lm"),
        d.path().join("t.txt"),
        d.path().join("ds"),
    );
    write_gpt2(&model, 1);
    std::fs::write(&text, TEXT).unwrap();
    let m = ragl_model::gpt2::load::<B>(&model, &Default::default()).unwrap();
    // Windows of 16 every 8: later windows rescore with less context, so keys of repeated
    // contexts differ, as they would in any real text.
    let w = windows(&m.tokenizer, &Text::Stream(TEXT.into()), 0, 16, 8).unwrap();
    let cfg = LmBuildConfig {
        index: IndexConfig::Exact { metric: Metric::L2 },
        key: KeyPoint::FfnInput,
        max_len: 16,
        stride: 8,
        per_line: false,
        batch: 3,
        chunk_keys: 7,
    };
    let r = build(&m, &text, &w, &ds_dir, &cfg, 1, |_, _| {}).unwrap();
    let n: usize = w.iter().map(|w| w.scored()).sum();
    assert_eq!(r.keys, n);
    let ds = Datastore::open(&ds_dir, Some(&m.fingerprint)).unwrap();
    // Values are the scored tokens, in order.
    let want: Vec<u32> = w
        .iter()
        .flat_map(|w| w.ids[w.score_from..].to_vec())
        .collect();
    assert_eq!(ds.values, want);
    let grid = Grid {
        ks: vec![1, 8],
        lambdas: vec![0.0, 0.5, 0.99],
        temperatures: vec![1.0],
    };
    let e = evaluate(&m, &ds, &w, &grid, KeyPoint::FfnInput, 2, |_| {}).unwrap();
    assert_eq!(e.lm.tokens, n);
    let ppl = |k: usize, l: f32| {
        e.settings
            .iter()
            .find(|s| s.k == k && s.lambda == l)
            .unwrap()
            .perplexity
            .perplexity()
    };
    assert!((ppl(1, 0.0) - e.lm.perplexity()).abs() < 1e-6 * e.lm.perplexity());
    // Every key finds itself first: with k = 1 and λ near 1, perplexity near 1.
    assert!(ppl(1, 0.99) < 1.05, "{}", ppl(1, 0.99));
    assert!(ppl(1, 0.5) < e.lm.perplexity());
    assert!(e.best().unwrap().perplexity.perplexity() < 1.05);

    // Another model's datastore is refused.
    let other = d.path().join("other");
    write_gpt2(&other, 2);
    let o = ragl_model::gpt2::load::<B>(&other, &Default::default()).unwrap();
    let err = Datastore::open(&ds_dir, Some(&o.fingerprint))
        .err()
        .unwrap();
    assert!(err.is_bad_input(), "{err}");
}
