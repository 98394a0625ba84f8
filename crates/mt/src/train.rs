//! Training: label-smoothed cross-entropy, AdamW (β = 0.9, 0.98), inverse-square-root
//! learning rate after a linear warm-up (fairseq's `inverse_sqrt`), batches by token count,
//! dropout reseeded per step, and checkpoints that hold the model, the optimiser state and
//! the data position, so that a resumed run continues where the last checkpoint left off
//! (same batches, same order, same dropout masks).
//!
//! A run directory holds `config.json` (the resolved config), `metrics.csv`,
//! `checkpoints/step-NNNNNNN/` (model directories plus `optim.mpk` and `state.json`) and
//! `last`, naming the newest checkpoint.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::Recorder as _;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use ragl_model::parallel::data_parallel;

use crate::checkpoint::{self, Recorder};
use crate::data::{self, FilePair, Pair, Rng};
use crate::model::{ModelConfig, Seq2Seq};
use crate::vocab::Vocab;
use crate::{Error, Result};

/// A training run, as `configs/mt/*.toml` write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub train: Vec<FilePair>,
    #[serde(default)]
    pub dev: Option<FilePair>,
    #[serde(default = "vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "min_frequency")]
    pub min_frequency: u64,
    /// Pairs with a side longer than this many subwords are left out of training (counted).
    #[serde(default = "max_len")]
    pub max_len: usize,
}

fn vocab_size() -> usize {
    8000
}
fn min_frequency() -> u64 {
    2
}
fn max_len() -> usize {
    128
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub max_tokens: usize,
    pub lr: f64,
    pub warmup: usize,
    pub label_smoothing: f64,
    pub weight_decay: f32,
    pub clip_norm: f32,
    pub seed: u64,
    /// Stop after this many updates / epochs / minutes of training (whichever comes first).
    pub max_steps: Option<u64>,
    pub max_epochs: Option<u64>,
    pub max_minutes: Option<f64>,
    pub save_every: u64,
    pub keep_last: usize,
    pub dev_every: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            max_tokens: 4096,
            lr: 7e-4,
            warmup: 1000,
            label_smoothing: 0.1,
            weight_decay: 1e-4,
            clip_norm: 0.0,
            seed: 1,
            max_steps: None,
            max_epochs: None,
            max_minutes: None,
            save_every: 500,
            keep_last: 5,
            dev_every: 500,
        }
    }
}

impl RunConfig {
    pub fn from_toml(path: &Path) -> Result<RunConfig> {
        Ok(ragl_core::read::toml_file(path)?)
    }

    /// Learning rate at update `step` (1-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        let t = &self.train;
        let w = t.warmup.max(1) as f64;
        let s = step.max(1) as f64;
        if s < w {
            t.lr * s / w
        } else {
            t.lr * (w / s).sqrt()
        }
    }
}

/// Where training stands; saved with every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub step: u64,
    pub epoch: u64,
    /// Index into the epoch's shuffled batch order of the next batch.
    pub batch: usize,
    pub elapsed_secs: f64,
    pub tokens: u64,
}

/// What the loop reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        resumed_from: Option<u64>,
        pairs: usize,
        dropped: usize,
        batches_per_epoch: usize,
        parameters: usize,
    },
    Step {
        step: u64,
        epoch: u64,
        lr: f64,
        loss: f64,
        nll: f64,
        tokens_per_sec: f64,
    },
    Dev {
        step: u64,
        nll: f64,
    },
    Saved {
        step: u64,
        dir: PathBuf,
    },
}

/// Trains (or resumes) the run in `run_dir`; returns the final state.
pub fn train<B: AutodiffBackend>(
    cfg: &RunConfig,
    run_dir: &Path,
    device: &B::Device,
    workers: usize,
    mut events: impl FnMut(Event),
) -> Result<TrainState> {
    // One writer at a time: a second job aimed at the same output is refused.
    let _lock = ragl_core::lock::WriterLock::acquire(run_dir)?;
    let workers = workers.max(1);
    let io = |p: &Path, e| Error::Core(ragl_core::Error::io(p, e));
    let cfg_path = run_dir.join("config.json");
    // The model's shape is checked before anything is written (the vocabulary's real size
    // is known only once it is trained; its configured size stands in for it here).
    let mut shape = cfg.model.clone();
    shape.vocab_size = cfg.data.vocab_size.max(shape.vocab_size).max(5);
    shape.validate().map_err(|message| Error::Config {
        path: cfg_path.clone(),
        message,
    })?;
    std::fs::create_dir_all(run_dir.join("checkpoints")).map_err(|e| io(run_dir, e))?;
    let resume = run_dir.join("last").is_file();

    let (vocab, mut model_cfg, mut model, state, optim_path) = if resume {
        let saved: RunConfig =
            serde_json::from_slice(&std::fs::read(&cfg_path).map_err(|e| io(&cfg_path, e))?)
                .map_err(|e| Error::Artifact {
                    path: cfg_path.clone(),
                    message: e.to_string(),
                })?;
        // Limits may change between sessions; what defines the model and its data may not.
        if saved.data != cfg.data || saved.model.d_model != cfg.model.d_model {
            return Err(Error::Artifact {
                path: run_dir.to_path_buf(),
                message: "this run was started with another data or model config; use a new run directory".into(),
            });
        }
        let dir = checkpoint::resolve(run_dir)?;
        let m = checkpoint::load::<B>(&dir, device)?;
        let st: TrainState = read_json(&dir.join("state.json"))?;
        (m.vocab, m.config, m.model, st, Some(dir.join("optim")))
    } else {
        let mut texts = Vec::new();
        for fp in &cfg.data.train {
            for (s, t) in data::read_parallel(&fp.src, &fp.tgt)? {
                texts.push(s);
                texts.push(t);
            }
        }
        let vocab = Vocab::train(texts.iter(), cfg.data.vocab_size, cfg.data.min_frequency)?;
        let mut mc = cfg.model.clone();
        mc.vocab_size = vocab.size();
        mc.validate().map_err(|message| Error::Config {
            path: cfg_path.clone(),
            message,
        })?;
        B::seed(device, cfg.train.seed);
        let model = mc.init::<B>(device);
        let st = TrainState {
            step: 0,
            epoch: 0,
            batch: 0,
            elapsed_secs: 0.0,
            tokens: 0,
        };
        (vocab, mc, model, st, None)
    };
    model_cfg.dropout = cfg.model.dropout;
    let json = serde_json::to_vec_pretty(cfg).expect("config serialises");
    ragl_core::atomic::write_bytes_atomic(&cfg_path, &json)?;

    let mut pairs_text = Vec::new();
    for fp in &cfg.data.train {
        pairs_text.extend(data::read_parallel(&fp.src, &fp.tgt)?);
    }
    let (pairs, dropped) = data::encode_pairs(&vocab, &pairs_text, cfg.data.max_len)?;
    drop(pairs_text);
    let batches = data::batches_by_tokens(&pairs, cfg.train.max_tokens);
    let dev: Option<(Vec<Pair>, Vec<Vec<usize>>)> = match &cfg.data.dev {
        Some(fp) => {
            let (p, _) =
                data::encode_pairs(&vocab, &data::read_parallel(&fp.src, &fp.tgt)?, usize::MAX)?;
            let b = data::batches_by_tokens(&p, cfg.train.max_tokens);
            Some((p, b))
        }
        None => None,
    };

    let t = &cfg.train;
    let mut optim_cfg = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.98)
        .with_epsilon(1e-8)
        .with_weight_decay(t.weight_decay);
    if t.clip_norm > 0.0 {
        optim_cfg = optim_cfg.with_grad_clipping(Some(GradientClippingConfig::Norm(t.clip_norm)));
    }
    let mut optim = optim_cfg.init::<B, Seq2Seq<B>>();
    if let Some(p) = optim_path {
        let rec = Recorder::new()
            .load(p.clone(), device)
            .map_err(|e| Error::Artifact {
                path: p,
                message: e.to_string(),
            })?;
        optim = optim.load_record(rec);
    }

    let metrics_path = run_dir.join("metrics.csv");
    let mut metrics = open_metrics(&metrics_path, state.step)?;
    events(Event::Started {
        resumed_from: resume.then_some(state.step),
        pairs: pairs.len(),
        dropped,
        batches_per_epoch: batches.len(),
        parameters: model.num_params(),
    });

    let mut st = state;
    let clock = Instant::now();
    let base_elapsed = st.elapsed_secs;
    let mut window = (Instant::now(), 0u64);
    let done = |st: &TrainState| {
        t.max_steps.is_some_and(|m| st.step >= m)
            || t.max_epochs.is_some_and(|m| st.epoch >= m)
            || t.max_minutes.is_some_and(|m| st.elapsed_secs >= m * 60.0)
    };
    let save = |model: &Seq2Seq<B>, optim: &_, st: &TrainState, events: &mut dyn FnMut(Event)| {
        save_checkpoint::<B>(run_dir, model, &model_cfg, &vocab, optim, st, t.keep_last)
            .map(|dir| events(Event::Saved { step: st.step, dir }))
    };
    'outer: while !done(&st) {
        let mut order: Vec<usize> = (0..batches.len()).collect();
        Rng::new(t.seed ^ (st.epoch + 1).wrapping_mul(0x9E37_79B9)).shuffle(&mut order);
        while st.batch < order.len() {
            let idx = &batches[order[st.batch]];
            B::seed(device, t.seed.wrapping_mul(1_000_003).wrapping_add(st.step));
            let (loss_sum, nll_sum, ntok, grads) =
                parallel_step(&model, &pairs, idx, workers, t.label_smoothing, device);
            let loss_v = loss_sum / ntok as f64;
            let nll_v = nll_sum / ntok as f64;
            let b = data::Padded {
                tokens: ntok,
                ..Default::default()
            };
            let lr = cfg.lr_at(st.step + 1);
            model = optim.step(lr, model, grads);
            st.step += 1;
            st.batch += 1;
            st.tokens += b.tokens as u64;
            st.elapsed_secs = base_elapsed + clock.elapsed().as_secs_f64();
            window.1 += b.tokens as u64;
            let tps = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
            if st.step.is_multiple_of(50) {
                window = (Instant::now(), 0);
            }
            writeln!(
                metrics,
                "{},{},{:.3e},{:.5},{:.5},{},{:.1},{:.1}",
                st.step, st.epoch, lr, loss_v, nll_v, b.tokens, tps, st.elapsed_secs
            )
            .map_err(|e| io(&metrics_path, e))?;
            events(Event::Step {
                step: st.step,
                epoch: st.epoch,
                lr,
                loss: loss_v,
                nll: nll_v,
                tokens_per_sec: tps,
            });
            if st.step.is_multiple_of(20) {
                metrics.flush().map_err(|e| io(&metrics_path, e))?;
            }
            if let Some((dp, db)) = &dev
                && t.dev_every > 0
                && st.step.is_multiple_of(t.dev_every)
            {
                let nll = dev_nll(&model.valid(), dp, db, device);
                events(Event::Dev { step: st.step, nll });
                writeln!(metrics, "{},{},,,,,,,{nll:.5}", st.step, st.epoch)
                    .map_err(|e| io(&metrics_path, e))?;
            }
            if t.save_every > 0 && st.step.is_multiple_of(t.save_every) {
                metrics.flush().map_err(|e| io(&metrics_path, e))?;
                save(&model, &optim, &st, &mut events)?;
            }
            if done(&st) {
                break 'outer;
            }
        }
        st.epoch += 1;
        st.batch = 0;
    }
    metrics.flush().map_err(|e| io(&metrics_path, e))?;
    let last_saved = checkpoint::resolve(run_dir)
        .ok()
        .and_then(|d| read_json::<TrainState>(&d.join("state.json")).ok())
        .map(|s| s.step);
    if last_saved != Some(st.step) {
        save(&model, &optim, &st, &mut events)?;
    }
    Ok(st)
}

const METRICS_HEADER: &str = "step,epoch,lr,loss,nll,tokens,tokens_per_sec,elapsed_secs,dev_nll";

/// Opens `metrics.csv` for appending, dropping rows past `step` (written after the
/// checkpoint a resumed run restarts from).
fn open_metrics(path: &Path, step: u64) -> Result<std::io::BufWriter<std::fs::File>> {
    ragl_core::atomic::truncate_steps(path, METRICS_HEADER, step)?;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| ragl_core::Error::io(path, e))?;
    Ok(std::io::BufWriter::new(f))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| ragl_core::Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Artifact {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// One update's gradients, computed data-parallel: the batch's rows are split between
/// `workers` threads, each with its own autodiff copy of the model (burn-flex runs most
/// element-wise work of one graph on one core), and the gradients are summed. The loss is
/// normalised by the whole batch's token count, so the sum is the full batch's gradient.
/// Returns (loss sum, nll sum, tokens, gradients).
fn parallel_step<B: AutodiffBackend>(
    model: &Seq2Seq<B>,
    pairs: &[Pair],
    idx: &[usize],
    workers: usize,
    smoothing: f64,
    device: &B::Device,
) -> (f64, f64, usize, GradientsParams) {
    let total: usize = idx.iter().map(|&i| pairs[i].tgt.len() + 1).sum();
    let parts = split_rows(pairs, idx, workers);
    let run = |m: &Seq2Seq<B>, part: &Vec<usize>| {
        let b = data::pad_batch(pairs, part, &model.specials);
        let (src, tin, tout) = tensors::<B>(&b, device);
        let (loss, nll) = m.loss(src, tin, tout, smoothing);
        let loss = loss / total as f64;
        let lv = loss.clone().into_scalar().elem::<f64>() * total as f64;
        let nv = nll.into_scalar().elem::<f64>();
        ((lv, nv), GradientsParams::from_grads(loss.backward(), m))
    };
    let (outs, grads) = data_parallel(model, &parts, run);
    let (l, n) = outs
        .iter()
        .fold((0.0, 0.0), |(l, n), (l2, n2)| (l + l2, n + n2));
    (l, n, total, grads)
}

/// Splits a batch's rows into up to `n` parts of about equal target tokens.
fn split_rows(pairs: &[Pair], idx: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.min(idx.len()).max(1);
    let total: usize = idx.iter().map(|&i| pairs[i].tgt.len() + 1).sum();
    let mut parts = vec![Vec::new()];
    let mut acc = 0;
    for &i in idx {
        let share = total * parts.len() / n;
        if acc >= share && parts.len() < n && !parts.last().unwrap().is_empty() {
            parts.push(Vec::new());
        }
        acc += pairs[i].tgt.len() + 1;
        parts.last_mut().unwrap().push(i);
    }
    parts
}

pub fn tensors<B: Backend>(
    b: &data::Padded,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
    let t = |v: &Vec<i64>, w: usize| {
        Tensor::<B, 2, Int>::from_data(TensorData::new(v.clone(), [b.rows, w]), device)
    };
    (
        t(&b.src, b.src_len),
        t(&b.tgt_in, b.tgt_len),
        t(&b.tgt_out, b.tgt_len),
    )
}

/// Per-token negative log-likelihood of `pairs` (no dropout, no smoothing).
pub fn dev_nll<B: Backend>(
    model: &Seq2Seq<B>,
    pairs: &[Pair],
    batches: &[Vec<usize>],
    device: &B::Device,
) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for idx in batches {
        let b = data::pad_batch(pairs, idx, &model.specials);
        let (s, i, o) = tensors::<B>(&b, device);
        let (_, nll) = model.loss(s, i, o, 0.0);
        sum += nll.into_scalar().elem::<f64>();
        n += b.tokens;
    }
    sum / n.max(1) as f64
}

fn save_checkpoint<B: AutodiffBackend>(
    run_dir: &Path,
    model: &Seq2Seq<B>,
    cfg: &ModelConfig,
    vocab: &Vocab,
    optim: &impl Optimizer<Seq2Seq<B>, B>,
    st: &TrainState,
    keep_last: usize,
) -> Result<PathBuf> {
    let ckpts = run_dir.join("checkpoints");
    let name = format!("step-{:07}", st.step);
    let staging = ckpts.join(format!(".{name}.partial"));
    let _staging = ragl_core::atomic::StagingGuard::new(&staging);
    let _ = std::fs::remove_dir_all(&staging);
    checkpoint::write(&model.valid(), cfg, vocab, &staging)?;
    Recorder::new()
        .record(optim.to_record(), staging.join("optim"))
        .map_err(|e| Error::Record {
            path: staging.join("optim.mpk"),
            message: e.to_string(),
        })?;
    let state = serde_json::to_vec_pretty(st).expect("state serialises");
    ragl_core::atomic::write_bytes_atomic(&staging.join("state.json"), &state)?;
    let dest = ckpts.join(&name);
    ragl_core::atomic::publish_dir(&staging, &dest)?;
    ragl_core::atomic::write_bytes_atomic(&run_dir.join("last"), format!("{name}\n").as_bytes())?;
    // Keep the newest `keep_last`.
    let all = checkpoints(run_dir)?;
    if keep_last > 0 && all.len() > keep_last {
        for old in &all[..all.len() - keep_last] {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    Ok(dest)
}

/// All checkpoint directories of a run, oldest first (names are zero-padded steps).
fn checkpoints(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let ckpts = run_dir.join("checkpoints");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&ckpts)
        .map_err(|e| ragl_core::Error::io(&ckpts, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
        })
        .collect();
    all.sort();
    Ok(all)
}

/// The newest `n` checkpoints of a run, oldest first.
pub fn last_checkpoints(run_dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let mut all = checkpoints(run_dir)?;
    let k = all.len().saturating_sub(n);
    Ok(all.split_off(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type B = Autodiff<Flex>;

    /// The shipped config parses (unknown fields are denied, so a renamed option fails).
    #[test]
    fn shipped_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/mt/base.toml");
        RunConfig::from_toml(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }

    fn fixture(dir: &Path) -> RunConfig {
        let (s, t) = ragl_testkit::mt::write_pair(dir, "t");
        let text = ragl_testkit::mt::TinyMt {
            max_steps: 60,
            save_every: Some(30),
            ..Default::default()
        }
        .toml(&s, &t);
        let p = dir.join("c.toml");
        std::fs::write(&p, text).unwrap();
        RunConfig::from_toml(&p).unwrap()
    }

    fn losses(run: &Path) -> Vec<f64> {
        std::fs::read_to_string(run.join("metrics.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(4).and_then(|x| x.parse().ok()))
            .collect()
    }

    #[test]
    fn loss_falls_with_one_and_two_workers() {
        for workers in [1, 2] {
            let d = tempfile::tempdir().unwrap();
            let cfg = fixture(d.path());
            let run = d.path().join("run");
            train::<B>(&cfg, &run, &Default::default(), workers, |_| {}).unwrap();
            let l = losses(&run);
            let (first, last) = (l[0], l[l.len() - 1]);
            assert!(
                last < first * 0.5,
                "workers {workers}: nll {first} -> {last}"
            );
        }
    }

    #[test]
    fn resumed_run_continues_from_its_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = fixture(d.path());
        let run = d.path().join("run");
        cfg.train.max_steps = Some(30);
        let st = train::<B>(&cfg, &run, &Default::default(), 1, |_| {}).unwrap();
        assert_eq!(st.step, 30);
        cfg.train.max_steps = Some(45);
        let mut resumed = None;
        let st = train::<B>(&cfg, &run, &Default::default(), 1, |e| {
            if let Event::Started { resumed_from, .. } = e {
                resumed = resumed_from;
            }
        })
        .unwrap();
        assert_eq!((resumed, st.step), (Some(30), 45));
        assert_eq!(losses(&run).len(), 45);
    }
}
