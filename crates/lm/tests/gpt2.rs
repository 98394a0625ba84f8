//! A GPT-2 the test makes itself (ragl's initialiser, a byte-level BPE learned here, saved in
//! transformers' layout): it loads back to the same function, attention is causal (a prefix
//! scores the same alone as inside a longer window), windowed scoring scores every token
//! once, per-line scoring skips the BOS, and broken directories are refused with one clear
//! error each. Agreement with transformers itself is scripts/reference/gpt2_parity.py (it
//! needs torch; the numbers are in docs/RESULTS.md).

use std::path::Path;

use burn::backend::Flex;
use burn::prelude::*;
use ragl_lm::windows::{Text, Window, cut, windows};
use ragl_model::gpt2::{Gpt2Config, load, save};

type B = Flex;

const TEXT: &str = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat.";

fn config(vocab: usize) -> Gpt2Config {
    serde_json::from_value(serde_json::json!({
        "vocab_size": vocab, "n_positions": 64, "n_embd": 16, "n_layer": 2, "n_head": 2,
        "bos_token_id": 0, "eos_token_id": 0, "initializer_range": 0.3,
    }))
    .unwrap()
}

fn write_gpt2(dir: &Path) -> Gpt2Config {
    let tok = ragl_lm::bpe::train(std::iter::repeat_n(TEXT, 5), 300, 2).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    tok.save(dir.join("tokenizer.json"), false).unwrap();
    let cfg = config(tok.get_vocab_size(true));
    let device = Default::default();
    B::seed(&device, 3);
    let model = cfg.init::<B>(&device);
    save(dir, &cfg, &model).unwrap();
    cfg
}

fn log_probs(m: &ragl_model::gpt2::Gpt2<B>, w: &[Window]) -> Vec<f32> {
    let mut out = Vec::new();
    ragl_lm::score::score(m, w, 4, None, |s| {
        out.extend(s.log_probs);
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn loads_back_causal_and_windowed() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_gpt2(d.path());
    let m = load::<B>(d.path(), &Default::default()).unwrap();
    assert_eq!(m.config.n_layer, cfg.n_layer);
    let text = Text::Stream(TEXT.into());
    let ids: Vec<u32> = m.tokenizer.encode(TEXT, false).unwrap().get_ids().to_vec();
    assert!(ids.len() > 20);
    // One window over everything vs the same tokens cut in windows with a stride: the
    // tokens of the first window score the same (nothing later leaks into them).
    let whole = log_probs(&m.model, &cut(&ids, 1, 64, 64));
    let first = log_probs(&m.model, &cut(&ids[..10], 1, 64, 64));
    for (a, b) in first.iter().zip(&whole) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert_eq!(whole.len(), ids.len() - 1);
    let w = windows(&m.tokenizer, &text, 0, 8, 4).unwrap();
    let windowed = log_probs(&m.model, &w);
    assert_eq!(
        windowed.len(),
        ids.len() - 1,
        "each token but the first, once"
    );
    // Less context changes the scores of later tokens, not of the first window's.
    for (a, b) in windowed[..7].iter().zip(&whole) {
        assert!((a - b).abs() < 1e-5);
    }
    assert!(
        windowed
            .iter()
            .zip(&whole)
            .any(|(a, b)| (a - b).abs() > 1e-4)
    );
    // Per line: BOS + tokens, the BOS not scored.
    let lines = Text::Lines(vec!["the cat sat".into(), "a dog".into()]);
    let w = windows(&m.tokenizer, &lines, 0, 64, 32).unwrap();
    let n: usize = ["the cat sat", "a dog"]
        .iter()
        .map(|l| m.tokenizer.encode(*l, false).unwrap().len())
        .sum();
    assert_eq!(w.iter().map(Window::scored).sum::<usize>(), n);
    assert!(w.iter().all(|w| w.ids[0] == 0));
    // The perplexity of a random model is near the vocabulary size, not 1 or infinite.
    let p = ragl_lm::score::perplexity(&m.model, &cut(&ids, 1, 64, 64), 2).unwrap();
    assert!(
        p.perplexity() > 5.0 && p.perplexity().is_finite(),
        "{}",
        p.perplexity()
    );
    // Keys: one row per scored token, of the model's width.
    let mut rows = 0;
    ragl_lm::score::score(
        &m.model,
        &cut(&ids, 1, 64, 64),
        1,
        Some(Default::default()),
        |s| {
            assert_eq!(s.keys.len(), s.targets.len() * 16);
            rows += s.targets.len();
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(rows, ids.len() - 1);
}

#[test]
fn broken_directories_are_refused_with_one_clear_error() {
    let check = |mutate: &dyn Fn(&Path), want: &str| {
        let d = tempfile::tempdir().unwrap();
        write_gpt2(d.path());
        mutate(d.path());
        let e = match load::<B>(d.path(), &Default::default()) {
            Ok(_) => panic!("loaded a broken directory ({want})"),
            Err(e) => e,
        };
        assert!(e.is_bad_input(), "{e}");
        assert!(e.to_string().contains(want), "{want:?} not in: {e}");
    };
    let edit = |from: &'static str, to: &'static str| {
        move |d: &Path| {
            let c = std::fs::read_to_string(d.join("config.json")).unwrap();
            assert!(c.contains(from), "{from} in {c}");
            std::fs::write(d.join("config.json"), c.replace(from, to)).unwrap()
        }
    };
    check(
        &|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap(),
        "tokenizer.json",
    );
    check(&edit("\"n_layer\": 2", "\"n_layer\": 3"), "h.2.ln_1.weight");
    check(&edit("\"gpt2\"", "\"bert\""), "model_type is \"bert\"");
    check(
        &edit("\"n_head\": 2", "\"n_head\": 3"),
        "not a multiple of n_head",
    );
    check(
        &|d| std::fs::remove_file(d.join("model.safetensors")).unwrap(),
        "model.safetensors or pytorch_model.bin",
    );
}

/// Training runs the model on the autodiff backend: its forward pass must be the one
/// inference runs (causal attention included).
#[test]
fn the_autodiff_forward_is_the_inference_forward() {
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    let cfg = config(50);
    let device = Default::default();
    B::seed(&device, 4);
    let m = cfg.init::<Autodiff<B>>(&device);
    let ids: Vec<i64> = (0..12).map(|i| (i * 7 % 50) as i64).collect();
    let run_ad = m
        .forward(Tensor::from_data(
            TensorData::new(ids.clone(), [1, 12]),
            &device,
        ))
        .last
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let run_inf = m
        .valid()
        .forward(Tensor::from_data(TensorData::new(ids, [1, 12]), &device))
        .last
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let diff = run_ad
        .iter()
        .zip(&run_inf)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff < 1e-4,
        "autodiff and inference forward differ by {diff}"
    );
}
