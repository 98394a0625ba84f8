//! Open-QA fine-tuning on tiny models made here: the marginal likelihood trains the reader
//! and, through the retrieval scores in the joint softmax, the query tower, which learns
//! to score the document holding the answer above the other.

use burn::backend::{Autodiff, Flex};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use ragl_core::qa::Answer;
use ragl_model::bert::BertConfig;
use ragl_model::encode::Pooling;
use ragl_model::tokenizer::TextTokenizer;
use ragl_reader::span::{AnswerMatcher, SpanReader, SpanReaderConfig, prepare};
use ragl_realm::openqa::{OpenQa, QueryPooling, Retrieved};

mod common;

type B = Autodiff<Flex>;

const WORDS: &str = "what is the capital of which river flows through who wrote
    paris france rome italy seine tiber shakespeare hamlet dante inferno a and by , . ?";

#[test]
fn the_marginal_likelihood_trains_reader_and_query_tower() {
    let d = tempfile::tempdir().unwrap();
    ragl_testkit::write_vocab(d.path(), [WORDS]);
    let tok = TextTokenizer::from_dir(d.path(), 64).unwrap();
    let cfg = SpanReaderConfig {
        max_span: 3,
        span_hidden: 32,
        max_len: 48,
        ..Default::default()
    };
    let docs = [
        "paris is the capital of france.",
        "rome is the capital of italy.",
        "the seine flows through paris.",
        "hamlet is by shakespeare.",
        "dante wrote inferno.",
    ];
    // Fixed document vectors (the frozen index), 8-d.
    let dim = 8;
    let doc_vec = |z: usize| -> Vec<f32> {
        (0..dim)
            .map(|j| (((z * 7 + j * 3) % 5) as f32 - 2.0) / 2.0)
            .collect()
    };
    let examples = [
        ("what is the capital of france?", "paris", 0, 3),
        ("what is the capital of italy?", "rome", 1, 4),
        ("which river flows through paris?", "seine", 2, 1),
        ("who wrote hamlet?", "shakespeare", 3, 0),
        ("who wrote inferno?", "dante", 4, 2),
    ];
    let batch: Vec<Retrieved> = examples
        .iter()
        .map(|&(q, a, rel, other)| {
            let m = AnswerMatcher::new(&Answer::Strings(vec![a.into()])).unwrap();
            let inputs: Vec<_> = [rel, other]
                .iter()
                .map(|&z| prepare(&tok, &cfg, q, None, docs[z]).unwrap())
                .collect();
            let gold = inputs
                .iter()
                .zip([rel, other])
                .flat_map(|(i, z)| m.gold_spans(i, docs[z]))
                .collect();
            Retrieved {
                query: tok.encode(&[(q.to_string(), None)]).unwrap().remove(0),
                doc_vectors: [doc_vec(rel), doc_vec(other)].concat(),
                inputs,
                gold,
            }
        })
        .collect();

    let device = Default::default();
    B::seed(&device, 11);
    let mut small = BertConfig::tiny(tok.vocab_size());
    small.hidden_size = 64;
    small.intermediate_size = 128;
    let (reader_bert, _) = small.init::<B>(false, &device);
    // The query tower's output must live in the documents' 8-d space.
    let mut qcfg = small.clone();
    qcfg.hidden_size = dim;
    qcfg.num_attention_heads = 2;
    qcfg.intermediate_size = 32;
    let (query, _) = qcfg.init::<B>(false, &device);
    let mut model = OpenQa {
        query,
        query_projection: None,
        reader: SpanReader::new(reader_bert, &cfg, &device),
    };
    let p = QueryPooling {
        pooling: Pooling::Mean,
        normalize: false,
        pad_id: 0,
    };
    // Retrieval margin: score of the answering document minus the other's.
    let margin = |m: &OpenQa<B>| -> f32 {
        let qs: Vec<_> = batch.iter().map(|r| &r.query).collect();
        let q: Vec<f32> = m.embed_queries(&qs, p).into_data().to_vec().unwrap();
        batch
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let s = |z: usize| -> f32 {
                    (0..dim)
                        .map(|j| q[i * dim + j] * r.doc_vectors[z * dim + j])
                        .sum()
                };
                s(0) - s(1)
            })
            .sum::<f32>()
            / batch.len() as f32
    };
    let (first, n) = model.loss(&batch, p).unwrap();
    assert_eq!(n, 5);
    let first = first.into_scalar();
    let margin0 = margin(&model);
    let mut optim = AdamWConfig::new().init::<B, OpenQa<B>>();
    for _ in 0..60 {
        let (loss, _) = model.loss(&batch, p).unwrap();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(2e-3, model, grads);
    }
    let last = model.loss(&batch, p).unwrap().0.into_scalar();
    assert!(last < 0.2 * first, "loss {first} -> {last}");
    let margin1 = margin(&model);
    assert!(
        margin1 > margin0 + 0.5,
        "retrieval margin {margin0} -> {margin1}"
    );

    for (r, (best, &(_, answer, rel, other))) in batch
        .iter()
        .zip(model.predict(&batch, p).into_iter().zip(&examples))
    {
        let b = best.unwrap();
        let text = docs[[rel, other][b.doc]];
        assert_eq!(&text[b.bytes.0..b.bytes.1], answer, "{:?}", r.gold.len());
    }

    // The same questions through a real index: retrieval fills vectors, inputs and gold.
    let idx_dir = d.path().join("idx");
    let vectors = (0..docs.len())
        .map(|z| (format!("d{z}"), doc_vec(z)))
        .collect();
    common::exact_index(&idx_dir, dim, serde_json::Value::Null, 2, vectors);
    let index = ragl_index::Index::open(&idx_dir).unwrap();
    let passages: Vec<ragl_core::passage::Passage> = docs
        .iter()
        .enumerate()
        .map(|(z, t)| ragl_core::passage::Passage {
            line: z as u64 + 1,
            id: format!("d{z}"),
            title: None,
            text: t.to_string(),
        })
        .collect();
    let ctx = ragl_realm::openqa::RetrievalContext {
        index: &index,
        passages: &passages,
        query_tokenizer: &tok,
        reader_tokenizer: &tok,
        reader: &cfg,
        k: 3,
    };
    let questions: Vec<&str> = examples.iter().map(|e| e.0).collect();
    let matchers: Vec<AnswerMatcher> = examples
        .iter()
        .map(|e| AnswerMatcher::new(&Answer::Strings(vec![e.1.into()])).unwrap())
        .collect();
    let (got, rows) =
        ragl_realm::openqa::retrieve(&model, p, &ctx, &questions, Some(&matchers)).unwrap();
    for ((r, rows), m) in got.iter().zip(&rows).zip(&matchers) {
        assert_eq!(rows.len(), 3);
        assert_eq!(r.doc_vectors.len(), 3 * dim);
        assert_eq!(&r.doc_vectors[..dim], &doc_vec(rows[0] as usize)[..]);
        let want: Vec<bool> = r
            .inputs
            .iter()
            .zip(rows)
            .flat_map(|(i, &z)| m.gold_spans(i, docs[z as usize]))
            .collect();
        assert_eq!(r.gold, want);
    }
    assert_eq!(model.predict(&got, p).len(), examples.len());
}
