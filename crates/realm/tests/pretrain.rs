//! `pretrain` end to end on a world made here: tiny BERTs in Hugging Face layout, passages
//! that state each person's city twice (in two passages), and examples that mask the city
//! in one of them, so the answer is only in the *other* passage once the own passage is
//! excluded. Checks that the loss falls, that the index is refreshed in the background
//! while training goes on, that the exported towers load as HF checkpoints, and that a run
//! stopped and resumed continues exactly.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use ragl_realm::pretrain::{self, PretrainConfig};

mod common;

type B = Flex;

const NAMES: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const CITIES: [&str; 6] = ["paris", "rome", "oslo", "lima", "cairo", "delhi"];
const OTHER: &str = "lives in works moved to the city of . was born";

fn words() -> impl Iterator<Item = &'static str> {
    NAMES.into_iter().chain(CITIES).chain([OTHER])
}

fn bert_dir(dir: &Path, hidden: usize, seed: u64, mlm: bool) {
    common::bert_dir(dir, words(), hidden, seed, mlm);
}

fn id(w: &str) -> u32 {
    let mut all = ragl_testkit::SPECIAL
        .into_iter()
        .chain(words().flat_map(str::split_whitespace));
    all.position(|v| v == w).unwrap() as u32
}

fn world(p: &Path) {
    bert_dir(&p.join("tower"), 16, 1, false);
    bert_dir(&p.join("reader"), 32, 2, true);
    let mut passages = String::new();
    let mut examples = String::new();
    for (i, (n, c)) in NAMES.iter().zip(CITIES).enumerate() {
        let a = format!("{n} lives in {c} .");
        let b = format!("{n} works in the city of {c} .");
        for (j, t) in [a, b].iter().enumerate() {
            passages +=
                &(serde_json::json!({"id": format!("p{i}{j}"), "text": t}).to_string() + "\n");
            // Mask the city (the second-to-last word) of this passage's sentence.
            let words: Vec<&str> = t.split_whitespace().collect();
            let mut ids = vec![id("[CLS]")];
            ids.extend(words.iter().map(|w| id(w)));
            ids.push(id("[SEP]"));
            let pos = words.len() - 1; // [CLS] shifts by one: the city is at len-1.
            ids[pos] = id("[MASK]");
            examples += &(serde_json::json!({
                "id": format!("p{i}{j}:s0"), "passage_id": format!("p{i}{j}"), "text": t,
                "input_ids": ids, "masked_positions": [pos], "masked_ids": [id(c)],
                "strategy": "salient"
            })
            .to_string()
                + "\n");
        }
    }
    std::fs::write(p.join("passages.jsonl"), passages).unwrap();
    std::fs::write(p.join("examples.jsonl"), examples).unwrap();
}

fn config(p: &Path, refresh: &str, steps: u64) -> PretrainConfig {
    let toml = format!(
        r#"
[data]
examples = "{p}/examples.jsonl"
passages = "{p}/passages.jsonl"
heldout = 2
[model]
query = "{p}/tower"
reader = "{p}/reader"
doc_max_len = 16
reader_max_len = 32
k = 2
[refresh]
every = 5
mode = "{refresh}"
batch_size = 4
[train]
lr = 3e-3
warmup = 3
batch = 4
max_steps = {steps}
eval_every = 10
save_every = 5
"#,
        p = p.display()
    );
    let path = p.join(format!("{refresh}.toml"));
    std::fs::write(&path, toml).unwrap();
    PretrainConfig::from_toml(&path).unwrap()
}

/// Trains `cfg` into `run` up to step `stop`; the summary and every held-out evaluation.
fn run_until(
    cfg: &PretrainConfig,
    run: &Path,
    stop: u64,
) -> (pretrain::PretrainSummary, Vec<pretrain::EvalReport>) {
    let mut evals = Vec::new();
    let s = pretrain::pretrain::<Autodiff<B>>(
        cfg,
        run,
        &Default::default(),
        Some(stop),
        |_| {},
        |e| evals.push(*e),
    )
    .unwrap();
    (s, evals)
}

fn column(run: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let c = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').nth(c).unwrap().to_string())
        .collect()
}

#[test]
fn pretraining_learns_refreshes_and_exports() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let cfg = config(p, "async", 40);
    let run = p.join("run");
    let mut evals = Vec::new();
    let s = pretrain::pretrain::<Autodiff<B>>(
        &cfg,
        &run,
        &Default::default(),
        None,
        |_| {},
        |e| evals.push(*e),
    )
    .unwrap();
    assert_eq!(s.steps, 40);
    // Held out at step 0, 10, 20, 30, 40.
    assert_eq!(evals.len(), 5);
    let loss: Vec<f64> = column(&run, "loss")
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    let head: f64 = loss[..8].iter().sum::<f64>() / 8.0;
    let tail: f64 = loss[32..].iter().sum::<f64>() / 8.0;
    assert!(tail < 0.7 * head, "loss {head} -> {tail}");
    // Refreshes were started every 5 steps and swapped in without stopping training.
    let events = column(&run, "refresh");
    assert!(events.iter().any(|e| e.contains("start")), "{events:?}");
    assert!(events.iter().any(|e| e.contains("swap")), "{events:?}");
    assert!(s.refreshes >= 1);
    // Staleness is counted from the snapshot in use.
    let st: Vec<u64> = column(&run, "staleness")
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(st[0], 0);
    assert!(st.iter().any(|&x| x > 0));
    // REALM's RU of the top document is measured at every step of a retrieving run.
    for ru in column(&run, "ru_top") {
        assert!(ru.parse::<f64>().unwrap().is_finite(), "{ru}");
    }
    // Each city is in exactly one other passage: every held-out span can be found, and the
    // first-ranked document holds it no more often than the top k do.
    for e in &evals {
        assert_eq!(e.span_in_corpus, 100.0, "{e:?}");
        assert!(e.top_hit <= e.span_hit && e.span_hit <= 100.0, "{e:?}");
        // p(z|x) is a distribution over the retrieved documents and ∅.
        assert!(e.p_null > 0.0 && e.p_held >= 0.0 && e.p_null + e.p_held <= 1.0 + 1e-6);
        assert_eq!(e.span_hit > 0.0, e.ru_held.is_finite(), "{e:?}");
        if e.span_hit > 0.0 {
            assert!((0.0..=1.0 + 1e-6).contains(&e.held_share), "{e:?}");
            assert!(e.held_frac > 0.0 && e.held_frac <= 1.0, "{e:?}");
        }
    }
    for h in column(&run, "span_hit") {
        assert!((0.0..=100.0).contains(&h.parse::<f64>().unwrap()), "{h}");
    }
    for part in ["query", "doc", "reader"] {
        let c =
            ragl_model::checkpoint::load::<B>(&run.join("export").join(part), &Default::default())
                .unwrap();
        assert_eq!(c.mlm.is_some(), part == "reader");
    }
    // Another configuration in the same run directory is refused.
    let mut other = cfg.clone();
    other.model.k = 1;
    assert!(
        pretrain::pretrain::<Autodiff<B>>(&other, &run, &Default::default(), None, |_| {}, |_| {})
            .is_err()
    );
}

#[test]
fn a_refresher_with_threads_of_its_own_still_swaps_in_new_indexes() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let mut cfg = config(p, "async", 40);
    cfg.refresh.threads = 1;
    cfg.train.eval_every = 0;
    let run = p.join("run");
    let (s, _) = run_until(&cfg, &run, 20);
    assert_eq!(s.steps, 20);
    let events = column(&run, "refresh");
    assert!(events.iter().any(|e| e.contains("start")), "{events:?}");
    assert!(events.iter().any(|e| e.contains("swap")), "{events:?}");
    // A swapped-in index is younger than the run: its step is one of the snapshots.
    let index_steps: Vec<u64> = column(&run, "index_step")
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(
        index_steps.iter().any(|&i| i > 0 && i % 5 == 0),
        "{index_steps:?}"
    );
}

#[test]
fn a_fixed_swap_step_makes_an_async_run_independent_of_timing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let mut cfg = config(p, "async", 20);
    cfg.refresh.swap_after = 3;
    cfg.train.eval_every = 0;
    let first = p.join("first");
    run_until(&cfg, &first, 20);
    // The snapshot after step S is taken as step S + 1 begins and used from step S + 3 on,
    // however long the re-embedding took.
    let events = column(&first, "refresh");
    for s in [5usize, 10, 15] {
        assert_eq!(events[s], "start", "{events:?}");
        assert_eq!(events[s + 2], format!("swap@{s}"), "{events:?}");
    }
    let index_steps = column(&first, "index_step");
    assert_eq!(index_steps[6], "0");
    assert_eq!(index_steps[7], "5");
    // A refresher with a thread of its own runs at another speed: the same run, step by step.
    cfg.refresh.threads = 1;
    let second = p.join("second");
    let (s, _) = run_until(&cfg, &second, 20);
    assert_eq!(s.refreshes, 3);
    for col in [
        "loss",
        "token_acc",
        "utility",
        "ru_top",
        "span_hit",
        "index_step",
        "staleness",
        "stale_gap",
        "refresh",
    ] {
        assert_eq!(column(&first, col), column(&second, col), "{col}");
    }
    // A swap before the snapshot is taken, or after the next one, or without a background
    // refresher, is refused.
    let text = std::fs::read_to_string(p.join("async.toml")).unwrap();
    for (swap, mode) in [(1, "async"), (6, "async"), (3, "sync")] {
        let bad = p.join("bad-swap.toml");
        let t = text
            .replace(
                "batch_size = 4",
                &format!("batch_size = 4\nswap_after = {swap}"),
            )
            .replace("mode = \"async\"", &format!("mode = \"{mode}\""));
        std::fs::write(&bad, t).unwrap();
        let e = PretrainConfig::from_toml(&bad).err().unwrap();
        assert!(e.to_string().contains("swap_after"), "{e}");
    }
}

#[test]
fn the_doc_read_loss_adds_the_mean_nll_of_each_retrieved_document() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let cfg = config(p, "sync", 10);
    let device = Default::default();
    let (model, _) = pretrain::init::<B>(&cfg, &device).unwrap();
    let tower = ragl_model::tokenizer::TextTokenizer::from_dir(&p.join("tower"), 16).unwrap();
    let reader = ragl_model::tokenizer::TextTokenizer::from_dir(&p.join("reader"), 32).unwrap();
    let corpus = pretrain::Corpus::load(&cfg.data.passages, &tower, &reader).unwrap();
    let examples = pretrain::read_examples(&cfg.data.examples).unwrap();
    let batch: Vec<_> = examples.iter().take(4).collect();
    let vectors = pretrain::embed_corpus(
        &model.doc,
        &corpus.tower,
        &cfg.model,
        tower.pad_id,
        4,
        &device,
    );
    let snap = pretrain::Snapshot {
        step: 0,
        dim: vectors.len() / corpus.tower.len(),
        vectors,
    };
    let loss = |w: f32| {
        let mut c = cfg.clone();
        c.train.doc_read_loss = w;
        let ctx = pretrain::StepContext {
            cfg: &c,
            corpus: &corpus,
            tower_pad: tower.pad_id,
            reader_pad: reader.pad_id,
            sep: reader.token_to_id("[SEP]").unwrap(),
        };
        let mut rng = ragl_core::rng::Rng::new(7);
        let (l, stats) = pretrain::batch_loss(&model, &ctx, &batch, &snap, &mut rng, true);
        (l.into_scalar() as f64, stats.loss)
    };
    let (l0, s0) = loss(0.0);
    let (l1, s1) = loss(1.0);
    let (l2, s2) = loss(2.0);
    // With weight 0 the loss is the marginal's; the extra term is a positive mean NLL,
    // added in proportion to its weight; the reported loss stays the marginal's.
    assert!((l0 - s0).abs() < 1e-4, "{l0} {s0}");
    assert!(l1 - l0 > 0.1, "{l0} {l1}");
    assert!(((l2 - l0) - 2.0 * (l1 - l0)).abs() < 1e-3, "{l0} {l1} {l2}");
    assert!(
        (s1 - s0).abs() < 1e-9 && (s2 - s0).abs() < 1e-9,
        "{s0} {s1} {s2}"
    );
}

#[test]
fn lr_zero_freezes_the_towers_and_trains_the_reader() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let mut cfg = config(p, "sync", 10);
    cfg.train.lr = 0.0;
    cfg.train.reader_lr = Some(3e-3);
    let run = p.join("frozen");
    pretrain::pretrain::<Autodiff<B>>(&cfg, &run, &Default::default(), None, |_| {}, |_| {})
        .unwrap();
    let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    // Both towers start from p/tower; neither moved. The reader did.
    for part in ["query", "doc"] {
        assert!(
            weights(&run.join("export").join(part)) == weights(&p.join("tower")),
            "{part}"
        );
    }
    assert!(weights(&run.join("export/reader")) != weights(&p.join("reader")));
    // A negative learning rate, or a zero one that would also freeze the reader (no
    // reader_lr), is refused when the config is read.
    for lr in ["-1e-3", "0.0"] {
        let text = std::fs::read_to_string(p.join("sync.toml"))
            .unwrap()
            .replace("lr = 3e-3", &format!("lr = {lr}"));
        let bad = p.join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let e = PretrainConfig::from_toml(&bad).err().unwrap();
        assert!(e.to_string().contains("train.lr"), "{e}");
    }
}

#[test]
fn freeze_doc_trains_the_query_tower_alone() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let mut cfg = config(p, "sync", 10);
    cfg.train.freeze_doc = true;
    cfg.refresh.every = 0;
    let run = p.join("frozen-doc");
    pretrain::pretrain::<Autodiff<B>>(&cfg, &run, &Default::default(), None, |_| {}, |_| {})
        .unwrap();
    let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(weights(&run.join("export/doc")) == weights(&p.join("tower")));
    assert!(weights(&run.join("export/query")) != weights(&p.join("tower")));
    assert!(weights(&run.join("export/reader")) != weights(&p.join("reader")));
    // The index of a frozen doc tower never goes stale: nothing to refresh.
    let text = std::fs::read_to_string(p.join("sync.toml"))
        .unwrap()
        .replace("[train]", "[train]\nfreeze_doc = true");
    let bad = p.join("bad.toml");
    std::fs::write(&bad, text).unwrap();
    let e = PretrainConfig::from_toml(&bad).err().unwrap();
    assert!(e.to_string().contains("every = 0"), "{e}");
}

#[test]
fn span_elsewhere_keeps_the_examples_the_corpus_can_answer() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    // Six more examples that mask the clause "lives in CITY", which no other passage has.
    let mut more = String::new();
    for (i, (n, c)) in NAMES.iter().zip(CITIES).enumerate() {
        let t = format!("{n} lives in {c} .");
        let mut ids = vec![id("[CLS]"), id(n), id("[MASK]"), id("[MASK]"), id("[MASK]")];
        ids.extend([id("."), id("[SEP]")]);
        more += &(serde_json::json!({
            "id": format!("p{i}0:s1"), "passage_id": format!("p{i}0"), "text": t,
            "input_ids": ids, "masked_positions": [2, 3, 4],
            "masked_ids": [id("lives"), id("in"), id(c)], "strategy": "salient"
        })
        .to_string()
            + "\n");
    }
    let path = p.join("examples.jsonl");
    let all = std::fs::read_to_string(&path).unwrap() + &more;
    std::fs::write(&path, all).unwrap();
    let mut cfg = config(p, "sync", 1);
    cfg.data.heldout = 9;
    let first = |cfg: &PretrainConfig, run: &str| {
        let (s, evals) = run_until(cfg, &p.join(run), 0);
        (s.examples_read, s.examples_kept, evals[0])
    };
    // Held out from all 18: some spans are nowhere else.
    let (read, kept, all) = first(&cfg, "all");
    assert_eq!((read, kept), (18, 18));
    assert!(all.span_in_corpus < 100.0);
    cfg.data.span_elsewhere = true;
    let (read, kept, e) = first(&cfg, "kept");
    assert_eq!((read, kept), (18, 12));
    assert_eq!((e.examples, e.span_in_corpus), (9, 100.0));
}

#[test]
fn oracle_retrieval_reads_a_passage_that_holds_the_span() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let mut cfg = config(p, "sync", 1);
    cfg.data.heldout = 6;
    let first = |cfg: &PretrainConfig, run: &str| run_until(cfg, &p.join(run), 0).1[0];
    // Each city is in two passages: the sentence's own, excluded, and its twin.
    cfg.model.retrieval = pretrain::Retrieval::Random;
    let random = first(&cfg, "random");
    cfg.model.retrieval = pretrain::Retrieval::Oracle;
    let oracle = first(&cfg, "oracle");
    assert_eq!(oracle.span_in_corpus, 100.0);
    assert_eq!(oracle.span_hit, 100.0);
    assert!(random.span_hit < 100.0, "{}", random.span_hit);
}

#[test]
fn a_resumed_run_continues_exactly() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let cfg = config(p, "sync", 20);
    let straight = p.join("straight");
    pretrain::pretrain::<Autodiff<B>>(&cfg, &straight, &Default::default(), None, |_| {}, |_| {})
        .unwrap();
    let resumed = p.join("resumed");
    let first = pretrain::pretrain::<Autodiff<B>>(
        &cfg,
        &resumed,
        &Default::default(),
        Some(10),
        |_| {},
        |_| {},
    )
    .unwrap();
    assert_eq!(first.steps, 10);
    let second = pretrain::pretrain::<Autodiff<B>>(
        &cfg,
        &resumed,
        &Default::default(),
        None,
        |_| {},
        |_| {},
    )
    .unwrap();
    assert_eq!((second.resumed_from, second.steps), (Some(10), 20));
    for col in [
        "loss",
        "token_acc",
        "utility",
        "ru_top",
        "span_hit",
        "index_step",
        "stale_gap",
    ] {
        assert_eq!(column(&straight, col), column(&resumed, col), "{col}");
    }
    // One row per held-out example and evaluation (steps 0, 10, 20), the same after the
    // resume, and their mean utility is eval.csv's.
    let each = |run: &Path| std::fs::read_to_string(run.join("eval_examples.csv")).unwrap();
    assert_eq!(each(&straight), each(&resumed));
    let rows: Vec<Vec<String>> = each(&straight)
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 3 * cfg.data.heldout);
    let evals = std::fs::read_to_string(straight.join("eval.csv")).unwrap();
    for line in evals.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let utils: Vec<f64> = rows
            .iter()
            .filter(|r| r[0] == f[0])
            .map(|r| r[4].parse().unwrap())
            .collect();
        assert_eq!(utils.len(), cfg.data.heldout);
        let mean = utils.iter().sum::<f64>() / utils.len() as f64;
        let want: f64 = f[7].parse().unwrap();
        assert!((mean - want).abs() < 1e-3, "step {}: {mean} {want}", f[0]);
    }
}

#[test]
fn a_reader_without_an_mlm_head_needs_a_fresh_one() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    // A sentence encoder as the reader: no MLM head in its checkpoint.
    bert_dir(&p.join("reader"), 32, 2, false);
    let cfg = config(p, "sync", 20);
    let e = pretrain::pretrain::<Autodiff<B>>(
        &cfg,
        &p.join("r1"),
        &Default::default(),
        None,
        |_| {},
        |_| {},
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("fresh_mlm_head"), "{e}");
    let mut fresh = cfg.clone();
    fresh.model.fresh_mlm_head = true;
    let run = p.join("r2");
    let s =
        pretrain::pretrain::<Autodiff<B>>(&fresh, &run, &Default::default(), None, |_| {}, |_| {})
            .unwrap();
    assert_eq!(s.steps, 20);
    let loss: Vec<f64> = column(&run, "loss")
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    let head: f64 = loss[..5].iter().sum::<f64>() / 5.0;
    let tail: f64 = loss[15..].iter().sum::<f64>() / 5.0;
    assert!(tail < 0.8 * head, "loss {head} -> {tail}");
    // The exported reader is a BertForMaskedLM checkpoint now.
    let r =
        ragl_model::checkpoint::load::<B>(&run.join("export/reader"), &Default::default()).unwrap();
    assert!(r.mlm.is_some());
}

#[test]
fn bad_examples_are_refused_with_their_line() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let bad = p.join("bad.jsonl");
    let good = std::fs::read_to_string(p.join("examples.jsonl")).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(&bad, format!("{first}\n{{\"id\": 3}}\n")).unwrap();
    let e = pretrain::read_examples(&bad).unwrap_err();
    assert!(e.is_bad_input());
    assert!(e.to_string().contains(":2"), "{e}");
}

#[test]
fn data_seed_reorders_the_batches_and_keeps_the_heldout_split() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    world(p);
    let base = config(p, "sync", 20);
    let mut reordered = base.clone();
    reordered.train.data_seed = Some(9);
    let mut first_evals = Vec::new();
    for (name, cfg) in [("base", &base), ("reordered", &reordered)] {
        first_evals.push(run_until(cfg, &p.join(name), 1).1[0]);
    }
    // Step 0 is evaluated on the same held-out examples with the same starting model.
    assert_eq!(first_evals[0].loss, first_evals[1].loss);
    assert_eq!(first_evals[0].examples, first_evals[1].examples);
    // The first batch is another one.
    assert_ne!(
        column(&p.join("base"), "loss"),
        column(&p.join("reordered"), "loss")
    );
}
