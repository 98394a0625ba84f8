//! The span reader end to end on a tiny BERT initialised here: candidate spans follow word
//! boundaries and map back to the text, and training on the marginal likelihood teaches
//! the reader to pick the gold answer out of a relevant and a distracting document.

use burn::backend::{Autodiff, Flex};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use ragl_core::qa::Answer;
use ragl_model::bert::BertConfig;
use ragl_model::tokenizer::TextTokenizer;
use ragl_reader::span::{AnswerMatcher, SpanReader, SpanReaderConfig, marginal_nll, prepare};

type B = Autodiff<Flex>;

const WORDS: &str = "what is the capital of which city river flows through who wrote play
    paris france rome italy berlin germany seine tiber spree shakespeare hamlet goethe faust
    dante inferno a in and by , . ? ##s playing writer";

fn tokenizer(dir: &std::path::Path) -> TextTokenizer {
    ragl_testkit::write_vocab(dir, [WORDS]);
    TextTokenizer::from_dir(dir, 128).unwrap()
}

#[test]
fn spans_follow_word_boundaries_and_truncation() {
    let d = tempfile::tempdir().unwrap();
    let tok = tokenizer(d.path());
    let cfg = SpanReaderConfig {
        max_span: 3,
        max_len: 16,
        ..Default::default()
    };
    let text = "Rome, in Italy: plays and playing.";
    let input = prepare(&tok, &cfg, "who wrote hamlet?", Some("Rome"), text).unwrap();
    // [CLS] who wrote hamlet ? [SEP] rome [SEP] + 7 text pieces + [SEP] = 16.
    assert_eq!(input.ids.len(), 16);
    assert!(input.truncated);
    assert_eq!(input.type_ids.iter().filter(|&&t| t == 0).count(), 6);
    let texts: Vec<&str> = input.span_bytes.iter().map(|&(s, e)| &text[s..e]).collect();
    // "play" + "##s" is one word: never split; nothing past the budget ("playing").
    assert!(texts.contains(&"Rome") && texts.contains(&"Rome, in"));
    assert!(texts.contains(&"plays") && !texts.contains(&"play"));
    assert!(!texts.iter().any(|t| t.contains("playing")));
    assert!(texts.iter().all(|t| t.split_whitespace().count() <= 3));
    for &(s, e) in &input.spans {
        assert!(s >= 8 && e < 15 && s <= e);
    }
}

#[test]
fn training_on_the_marginal_likelihood_finds_the_answers() {
    let d = tempfile::tempdir().unwrap();
    let tok = tokenizer(d.path());
    let cfg = SpanReaderConfig {
        max_span: 4,
        span_hidden: 32,
        max_len: 64,
        ..Default::default()
    };
    let docs = [
        "paris is the capital of france.",
        "rome is the capital of italy.",
        "the seine flows through paris and the tiber flows through rome.",
        "hamlet is a play by shakespeare and faust is a play by goethe.",
        "dante wrote inferno in italy.",
    ];
    // (question, answer, relevant document, distractor)
    let examples = [
        ("what is the capital of france?", "paris", 0, 2),
        ("what is the capital of italy?", "rome", 1, 2),
        ("which river flows through paris?", "seine", 2, 0),
        ("who wrote hamlet?", "shakespeare", 3, 4),
        ("who wrote inferno?", "dante", 4, 1),
        ("which river flows through rome?", "tiber", 2, 1),
    ];
    let device = Default::default();
    B::seed(&device, 7);
    let mut bert_cfg = BertConfig::tiny(tok.vocab_size());
    bert_cfg.hidden_size = 64;
    bert_cfg.intermediate_size = 128;
    let (bert, _) = bert_cfg.init::<B>(false, &device);
    let mut reader = SpanReader::new(bert, &cfg, &device);
    let batch: Vec<_> = examples
        .iter()
        .map(|&(q, a, rel, dis)| {
            let inputs = [rel, dis].map(|z| prepare(&tok, &cfg, q, None, docs[z]).unwrap());
            let m = AnswerMatcher::new(&Answer::Strings(vec![a.into()])).unwrap();
            let gold: Vec<bool> = inputs
                .iter()
                .zip([rel, dis])
                .flat_map(|(i, z)| m.gold_spans(i, docs[z]))
                .collect();
            (inputs, gold, [rel, dis], a)
        })
        .collect();
    // "paris" appears in documents 0 and 2: the marginal counts both.
    assert_eq!(batch[0].1.iter().filter(|&&g| g).count(), 2);

    let mut optim = AdamWConfig::new().init::<B, SpanReader<B>>();
    let loss_of = |reader: &SpanReader<B>| {
        let mut total: Option<Tensor<B, 1>> = None;
        for (inputs, gold, _, _) in &batch {
            let refs: Vec<_> = inputs.iter().collect();
            let logits = reader.span_logits(&refs).unwrap();
            let counts: Vec<usize> = inputs.iter().map(|i| i.spans.len()).collect();
            let doc_lp = Tensor::<B, 1>::from_floats([0.5f32.ln(), 0.5f32.ln()], &device);
            let l = marginal_nll(logits, &counts, gold, doc_lp).unwrap();
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        total.unwrap() / batch.len() as f32
    };
    let first = loss_of(&reader).into_scalar();
    for _ in 0..150 {
        let loss = loss_of(&reader);
        let grads = GradientsParams::from_grads(loss.backward(), &reader);
        reader = optim.step(2e-3, reader, grads);
    }
    let last = loss_of(&reader).into_scalar();
    // Equal retrieval scores: the reader alone must find which document answers.
    assert!(last < 0.05 * first, "loss {first} -> {last}");

    let groups: Vec<Vec<_>> = batch.iter().map(|b| b.0.iter().collect()).collect();
    let best = reader.best_spans(&groups, None);

    for ((_, _, zs, answer), b) in batch.iter().zip(best) {
        let b = b.unwrap();
        let text = docs[zs[b.doc]];
        assert_eq!(&text[b.bytes.0..b.bytes.1], *answer);
    }
}
