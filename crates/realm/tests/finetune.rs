//! `finetune` end to end on files made here: tiny BERTs saved in Hugging Face layout, a
//! passages file, an exact index that records its query encoder, NQ-open questions. The run
//! writes metrics and its best model, which loads back and answers the questions.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use ragl_model::encode::{EncoderSpec, Pooling};
use ragl_realm::openqa::{self, FinetuneConfig};

mod common;

type B = Flex;

const WORDS: &str = "what is the capital of which river flows through who wrote
    paris france rome italy seine tiber shakespeare hamlet dante inferno a and by , . ?";

fn bert_dir(dir: &Path, hidden: usize, seed: u64) {
    common::bert_dir(dir, [WORDS], hidden, seed, false);
}

#[test]
fn finetune_saves_a_model_that_answers() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    bert_dir(&p.join("query"), 8, 1);
    bert_dir(&p.join("reader"), 32, 2);
    let docs = [
        "paris is the capital of france.",
        "rome is the capital of italy.",
        "the seine flows through paris.",
        "hamlet is by shakespeare.",
        "dante wrote inferno.",
    ];
    let passages: String = docs
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("d{i}"), "text": t}).to_string() + "\n")
        .collect();
    std::fs::write(p.join("passages.jsonl"), passages).unwrap();
    let qa = [
        ("what is the capital of france?", "paris"),
        ("what is the capital of italy?", "rome"),
        ("which river flows through paris?", "seine"),
        ("who wrote hamlet?", "shakespeare"),
        ("who wrote inferno?", "dante"),
    ];
    let questions: String = qa
        .iter()
        .map(|(q, a)| serde_json::json!({"question": q, "answer": [a]}).to_string() + "\n")
        .collect();
    std::fs::write(p.join("q.jsonl"), &questions).unwrap();

    // An exact index over fixed 8-d vectors, recording the query tower as its encoder.
    let vec_of = |z: usize| -> Vec<f32> {
        (0..8)
            .map(|j| (((z * 7 + j * 3) % 5) as f32 - 2.0) / 2.0)
            .collect()
    };
    let encoder = serde_json::to_value(EncoderSpec {
        model: p.join("query"),
        pooling: Pooling::Mean,
        normalize: false,
        max_len: 32,
    })
    .unwrap();
    let vectors = (0..docs.len())
        .map(|z| (format!("d{z}"), vec_of(z)))
        .collect();
    common::exact_index(&p.join("index"), 8, encoder, 8, vectors);

    let toml = format!(
        r#"
[data]
train = "{q}"
dev = "{q}"
passages = "{p}/passages.jsonl"
index = "{p}/index"
[model]
reader = "{p}/reader"
k = 5
[model.span]
max_span = 3
span_hidden = 32
max_len = 48
[train]
lr = 2e-3
warmup = 5
batch_questions = 5
epochs = 200
max_steps = 80
dev_every = 20
patience = 0
"#,
        q = p.join("q.jsonl").display(),
        p = p.display()
    );
    std::fs::write(p.join("c.toml"), &toml).unwrap();
    let cfg = FinetuneConfig::from_toml(&p.join("c.toml")).unwrap();
    let run = p.join("run");
    let mut reports = 0;
    // Two data-parallel workers: the update must still learn as one worker's does.
    let s = openqa::finetune::<Autodiff<B>>(&cfg, &run, &Default::default(), 2, |_| reports += 1)
        .unwrap();
    assert_eq!((s.steps, reports), (80, 80));
    assert_eq!(s.no_gold, 0);
    assert!(s.best_dev_em >= 80.0, "best dev EM {}", s.best_dev_em);

    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let rows: Vec<&str> = metrics.lines().collect();
    assert_eq!(rows.len(), 81);
    assert_eq!(rows.iter().filter(|r| !r.ends_with(',')).count(), 1 + 4);
    let loss = |r: &str| r.split(',').nth(3).unwrap().parse::<f64>().unwrap();
    assert!(
        loss(rows[80]) < 0.2 * loss(rows[1]),
        "{} -> {}",
        rows[1],
        rows[80]
    );

    // Continuing from the best model (model.init) starts where it left off: the first
    // step's loss is far below the fresh run's first.
    let cont = toml.replace(
        &format!("reader = \"{}/reader\"", p.display()),
        &format!("init = \"{}\"", run.join("best").display()),
    );
    assert_ne!(cont, toml);
    std::fs::write(
        p.join("c2.toml"),
        cont.replace("max_steps = 80", "max_steps = 2"),
    )
    .unwrap();
    let cfg2 = FinetuneConfig::from_toml(&p.join("c2.toml")).unwrap();
    openqa::finetune::<Autodiff<B>>(&cfg2, &p.join("run2"), &Default::default(), 1, |_| {})
        .unwrap();
    let m2 = std::fs::read_to_string(p.join("run2/metrics.csv")).unwrap();
    let first2 = m2.lines().nth(1).unwrap();
    assert!(
        loss(first2) < 0.5 * loss(rows[1]),
        "continued {first2} vs fresh {}",
        rows[1]
    );

    // Stopped after step 6 and run again, a run resumes from its checkpoint (weights,
    // optimiser, data position, best dev EM) and writes what an uninterrupted run writes.
    let short = toml
        .replace("max_steps = 80", "max_steps = 12\ncheckpoint_every = 4")
        .replace("dev_every = 20", "dev_every = 5");
    std::fs::write(p.join("c3.toml"), &short).unwrap();
    let cfg3 = FinetuneConfig::from_toml(&p.join("c3.toml")).unwrap();
    let whole =
        openqa::finetune::<Autodiff<B>>(&cfg3, &p.join("whole"), &Default::default(), 1, |_| {})
            .unwrap();
    let mut stopped = cfg3.clone();
    stopped.train.stop_after = Some(6);
    let first =
        openqa::finetune::<Autodiff<B>>(&stopped, &p.join("split"), &Default::default(), 1, |_| {})
            .unwrap();
    assert_eq!((first.steps, first.resumed_from), (6, None));
    let rest =
        openqa::finetune::<Autodiff<B>>(&cfg3, &p.join("split"), &Default::default(), 1, |_| {})
            .unwrap();
    assert_eq!((rest.steps, rest.resumed_from), (12, Some(6)));
    assert_eq!(
        (rest.best_dev_em, rest.best_step),
        (whole.best_dev_em, whole.best_step)
    );
    let cols = |dir: &str| -> Vec<String> {
        std::fs::read_to_string(p.join(dir).join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|r| {
                let c: Vec<&str> = r.split(',').collect();
                // Everything but the wall-clock seconds, and dev EM but at the step where
                // the first part stopped (a stopped run evaluates its last model).
                let em = if c[0] == "6" { "" } else { c[6] };
                format!("{},{em}", c[..5].join(","))
            })
            .collect()
    };
    assert_eq!(cols("split").len(), 13);
    assert_eq!(cols("split"), cols("whole"));
    // Another config is refused rather than resumed.
    let mut other = cfg3.clone();
    other.train.lr *= 2.0;
    let e =
        openqa::finetune::<Autodiff<B>>(&other, &p.join("split"), &Default::default(), 1, |_| {})
            .err()
            .unwrap();
    assert!(e.to_string().contains("another config"), "{e}");
    // A spent time budget stops a run like --stop-after (here before its first step), and
    // the same run without the budget resumes to what an uninterrupted run writes.
    let mut timed = cfg3.clone();
    timed.train.max_minutes = Some(0.0);
    let t =
        openqa::finetune::<Autodiff<B>>(&timed, &p.join("timed"), &Default::default(), 1, |_| {})
            .unwrap();
    assert_eq!(t.steps, 0);
    let rest =
        openqa::finetune::<Autodiff<B>>(&cfg3, &p.join("timed"), &Default::default(), 1, |_| {})
            .unwrap();
    assert_eq!(rest.steps, 12);
    assert_eq!(cols("timed"), cols("whole"));

    // The best model loads back and predicts what it scored on dev.
    let l = openqa::load::<B>(&run.join("best"), &Default::default()).unwrap();
    let index = ragl_index::Index::open(&p.join("index")).unwrap();
    let passages = openqa::passages_by_row(&p.join("passages.jsonl"), &index).unwrap();
    let qs: Vec<&str> = qa.iter().map(|x| x.0).collect();
    let preds = openqa::predict(&l, &index, &passages, &qs, 5, 2, |_| {}).unwrap();
    let right = preds.iter().zip(&qa).filter(|(p, x)| p.text == x.1).count();
    assert_eq!(100.0 * right as f64 / qa.len() as f64, s.best_dev_em);
    // The same model over a BM25 index of the same passages: the reader alone ranks the
    // lexical top-k, and predictions come from those passages.
    let bm25 = ragl_index::build::BuildSpec {
        meta: ragl_index::artifact::IndexMeta {
            index: ragl_index::artifact::IndexConfig::Bm25 {
                bm25: Default::default(),
            },
            dim: 0,
            encoder: serde_json::Value::Null,
            query_fingerprint: None,
            source_sha256: "test".into(),
            shard: None,
        },
        model_fingerprint: None,
        chunk_rows: 8,
    };
    let src = docs
        .iter()
        .enumerate()
        .map(|(i, t)| Ok((format!("d{i}"), t.to_string())));
    ragl_index::build::build_bm25(&p.join("bm25"), &bm25, src).unwrap();
    let lexical = ragl_index::Index::open(&p.join("bm25")).unwrap();
    let by_row = openqa::passages_by_row(&p.join("passages.jsonl"), &lexical).unwrap();
    let preds = openqa::predict(&l, &lexical, &by_row, &qs, 2, 2, |_| {}).unwrap();
    for (pr, q) in preds.iter().zip(&qs) {
        let id = pr.passage.as_deref().expect("a passage");
        let text = &by_row.iter().find(|x| x.id == id).unwrap().text;
        assert!(text.contains(&pr.text), "{q}: {pr:?}");
    }
    // Closed-book (k = 0): no passage, and any answer is a span of the question.
    let closed = openqa::predict(&l, &index, &passages, &qs, 0, 2, |_| {}).unwrap();
    for (pr, q) in closed.iter().zip(&qs) {
        assert!(pr.passage.is_none() && q.contains(&pr.text), "{q}: {pr:?}");
    }
    // A foreign directory is refused.
    assert!(openqa::load::<B>(&p.join("index"), &Default::default()).is_err());

    // Reading-comprehension warm-up (train.own_passages): each question comes with the
    // passage it was written from, and the reader trains on that passage alone. It must
    // then read: given each question's passage, its best span is the answer. (Dev EM,
    // which retrieves and compares span scores across passages, is stage 2's to raise.)
    let with_context: String = qa
        .iter()
        .map(|(q, a)| {
            let ctx = docs.iter().find(|d| d.contains(a)).unwrap();
            serde_json::json!({"question": q, "answer": [a], "context": ctx, "title": "t_1"})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(p.join("qc.jsonl"), &with_context).unwrap();
    let own = toml
        .replace(
            &format!("train = \"{}\"", p.join("q.jsonl").display()),
            &format!("train = \"{}\"", p.join("qc.jsonl").display()),
        )
        .replace("patience = 0", "patience = 0\nown_passages = true");
    assert_ne!(own, toml);
    std::fs::write(p.join("c4.toml"), &own).unwrap();
    let cfg4 = FinetuneConfig::from_toml(&p.join("c4.toml")).unwrap();
    let s4 = openqa::finetune::<Autodiff<B>>(&cfg4, &p.join("own"), &Default::default(), 2, |_| {})
        .unwrap();
    assert_eq!((s4.steps, s4.no_gold), (80, 0));
    let m4 = std::fs::read_to_string(p.join("own/metrics.csv")).unwrap();
    let (first4, last4) = (m4.lines().nth(1).unwrap(), m4.lines().last().unwrap());
    assert!(loss(last4) < 0.2 * loss(first4), "{first4} -> {last4}");
    let read = openqa::load::<B>(&p.join("own/best"), &Default::default()).unwrap();
    let ctx = ragl_realm::openqa::RetrievalContext {
        index: &index,
        passages: &passages,
        query_tokenizer: &read.query_tokenizer,
        reader_tokenizer: &read.reader_tokenizer,
        reader: &read.meta.span,
        k: 1,
    };
    let own_docs: Vec<(Option<&str>, &str)> = qa
        .iter()
        .map(|(_, a)| (Some("t 1"), *docs.iter().find(|d| d.contains(a)).unwrap()))
        .collect();
    let ms: Vec<_> = qa
        .iter()
        .map(|(_, a)| {
            ragl_reader::span::AnswerMatcher::new(&ragl_core::qa::Answer::Strings(vec![
                a.to_string(),
            ]))
            .unwrap()
        })
        .collect();
    let items = ragl_realm::openqa::own_passages(&ctx, &qs, &own_docs, &ms).unwrap();
    let best = read.model.predict(&items, read.pooling);
    for (((b, item), (q, a)), (_, text)) in best.iter().zip(&items).zip(&qa).zip(&own_docs) {
        let b = b.as_ref().expect("a span");
        assert_eq!(item.inputs.len(), 1);
        assert_eq!(&text[b.bytes.0..b.bytes.1], *a, "{q}");
    }
    // Training questions without their passage are refused, naming the line.
    let missing = own.replace(
        &format!("train = \"{}\"", p.join("qc.jsonl").display()),
        &format!("train = \"{}\"", p.join("q.jsonl").display()),
    );
    std::fs::write(p.join("c5.toml"), &missing).unwrap();
    let cfg5 = FinetuneConfig::from_toml(&p.join("c5.toml")).unwrap();
    let e = openqa::finetune::<Autodiff<B>>(&cfg5, &p.join("own2"), &Default::default(), 1, |_| {})
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("q.jsonl:1") && e.to_string().contains("context"),
        "{e}"
    );
}

/// The paper's fine-tuning start: the query tower from a REALM embedder (here the question
/// tower of an open-QA checkpoint, over its own imported blocks), the reader from REALM's
/// knowledge-augmented encoder (k = every block, so each question has its gold span and
/// a gradient). The projection trains with the tower, and the saved model
/// loads back with it.
#[test]
fn finetune_starts_from_realm_checkpoints() {
    use ragl_testkit::realm::{Layout, write_realm};
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write_realm(&p.join("orqa"), Layout::OpenQa, 3);
    write_realm(&p.join("encoder"), Layout::Encoder, 4);
    let spec = ragl_realm::released::import::ImportSpec {
        dir: &p.join("orqa"),
        out: &p.join("index"),
        passages: Some(&p.join("blocks.jsonl")),
        config: ragl_index::IndexConfig::Exact {
            metric: ragl_index::Metric::Ip,
        },
        chunk_rows: 4,
        threads: 1,
    };
    ragl_realm::released::import::import(&spec, |_, _| {}).unwrap();
    let qa = [
        ("who was king in 1066", "william"),
        ("what flows through egypt", "nile"),
        ("what is the capital of france", "paris"),
    ];
    let questions: String = qa
        .iter()
        .map(|(q, a)| serde_json::json!({"question": q, "answer": [a]}).to_string() + "\n")
        .collect();
    std::fs::write(p.join("q.jsonl"), &questions).unwrap();
    let toml = format!(
        r#"
[data]
train = "{p}/q.jsonl"
dev = "{p}/q.jsonl"
passages = "{p}/blocks.jsonl"
index = "{p}/index"
[model]
reader = "{p}/encoder"
k = 6
[model.span]
max_span = 3
span_hidden = 8
max_len = 32
[train]
lr = 1e-2
warmup = 1
batch_questions = 3
epochs = 10
max_steps = 6
dev_every = 3
patience = 0
"#,
        p = p.display()
    );
    std::fs::write(p.join("c.toml"), toml).unwrap();
    let cfg = FinetuneConfig::from_toml(&p.join("c.toml")).unwrap();
    let device = Default::default();
    let start = openqa::init::<B>(
        &cfg,
        &ragl_index::Index::open(&p.join("index")).unwrap(),
        &device,
    )
    .unwrap();
    let proj = |m: &openqa::OpenQa<B>| -> Vec<f32> {
        m.query_projection
            .as_ref()
            .expect("the REALM projection is part of the query tower")
            .dense
            .weight
            .val()
            .into_data()
            .to_vec()
            .unwrap()
    };
    let before = proj(&start.model);
    let s = openqa::finetune::<Autodiff<B>>(&cfg, &p.join("run"), &device, 1, |_| {}).unwrap();
    assert_eq!(s.steps, 6);
    let best = openqa::load::<B>(&p.join("run/best"), &device).unwrap();
    assert_eq!(best.meta.query_projection, Some(ragl_testkit::realm::PROJ));
    let after = proj(&best.model);
    assert!(
        before.iter().zip(&after).any(|(a, b)| (a - b).abs() > 1e-6),
        "the projection trained"
    );
    // Query vectors live in the blocks' 8-d space.
    let enc = best
        .query_tokenizer
        .encode(&[("who was king in 1066".into(), None)])
        .unwrap();
    let q = best.model.embed_queries(&[&enc[0]], best.pooling);
    assert_eq!(q.dims(), [1, ragl_testkit::realm::PROJ]);
}
