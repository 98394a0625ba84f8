//! `ragl lm train`: a GPT-2 of ragl's own, trained from scratch on text files — a byte-level
//! BPE learned from the training text, then next-token cross-entropy over random windows of
//! the token stream, AdamW with linear warm-up and linear decay, gradients data-parallel
//! over the cores (the plumbing `mt train` uses). The model is saved in transformers'
//! GPT-2 layout, so every `lm`/`knnlm` command and transformers itself load it.
//!
//! A run directory holds `config.json` (the resolved run config), `metrics.csv`,
//! `checkpoints/step-NNNNNNN/` (a GPT-2 directory plus burn's `model.mpk` and `optim.mpk`, and
//! `state.json`) and
//! `last`, naming the newest checkpoint. Windows are drawn from a generator seeded by the
//! run's seed and the step, so a resumed run sees exactly the batches an uninterrupted one
//! would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder as _};
use burn::tensor::backend::AutodiffBackend;
use ragl_model::gpt2::{Gpt2, Gpt2Config};
use ragl_model::parallel::data_parallel;
use serde::{Deserialize, Serialize};

use crate::windows::Window;
use crate::{Error, Result};

type Recorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// A training run, as `configs/lm/*.toml` write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub data: DataConfig,
    pub model: ModelShape,
    #[serde(default)]
    pub train: TrainConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Text files; each is one stream, files separated by `<|endoftext|>`.
    pub train: Vec<PathBuf>,
    /// Held-out text scored every `dev_every` steps (windows of the context, stride half).
    #[serde(default)]
    pub dev: Option<PathBuf>,
    #[serde(default = "vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "min_frequency")]
    pub min_frequency: u64,
}

fn vocab_size() -> usize {
    8000
}
fn min_frequency() -> u64 {
    2
}

/// The GPT-2 shape (the rest of `Gpt2Config` takes transformers' defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelShape {
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Windows (of `n_positions` tokens) per update.
    pub batch: usize,
    pub lr: f64,
    pub warmup: u64,
    pub weight_decay: f32,
    pub clip_norm: f32,
    pub seed: u64,
    /// Updates of the schedule (the learning rate reaches 0 there).
    pub steps: u64,
    /// Stop earlier after this many minutes (the run resumes where it stopped).
    pub max_minutes: Option<f64>,
    pub save_every: u64,
    pub dev_every: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch: 16,
            lr: 1e-3,
            warmup: 100,
            weight_decay: 0.01,
            clip_norm: 1.0,
            seed: 1,
            steps: 1000,
            max_minutes: None,
            save_every: 100,
            dev_every: 100,
        }
    }
}

impl RunConfig {
    pub fn from_toml(path: &Path) -> Result<RunConfig> {
        Ok(ragl_core::read::toml_file(path)?)
    }

    /// Learning rate at update `step` (1-based): linear warm-up, then linear decay to 0.
    pub fn lr_at(&self, step: u64) -> f64 {
        let t = &self.train;
        let w = t.warmup.max(1);
        if step < w {
            t.lr * step as f64 / w as f64
        } else {
            t.lr * (t.steps.saturating_sub(step) as f64 / (t.steps - w.min(t.steps)).max(1) as f64)
        }
    }

    fn gpt2(&self, vocab: usize, eot: u32) -> Gpt2Config {
        let m = &self.model;
        serde_json::from_value(serde_json::json!({
            "vocab_size": vocab, "n_positions": m.n_positions, "n_embd": m.n_embd,
            "n_layer": m.n_layer, "n_head": m.n_head, "bos_token_id": eot, "eos_token_id": eot,
        }))
        .expect("a GPT-2 config")
    }
}

/// Where training stands; saved with every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub step: u64,
    pub tokens: u64,
    pub elapsed_secs: f64,
}

/// What training reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        resumed_from: Option<u64>,
        tokens: usize,
        parameters: usize,
    },
    Step {
        step: u64,
        lr: f64,
        loss: f64,
        tokens_per_sec: f64,
    },
    Dev {
        step: u64,
        perplexity: f64,
    },
    Saved {
        step: u64,
        dir: PathBuf,
    },
}

const METRICS_HEADER: &str = "step,lr,loss,tokens_per_sec,elapsed_secs,dev_perplexity";

/// SplitMix64's finaliser: a bijection of u64 with full avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The window offsets of a step, from the seed and the step alone. Each step's sequence
/// starts at a hashed point: SplitMix64 seeded with `seed ^ step·γ` would make step s+1's
/// windows step s's shifted by one, so a run would see each window in 32 consecutive
/// batches and memorise them.
fn offsets(seed: u64, step: u64, n: usize, max: usize) -> Vec<usize> {
    let mut x = mix(mix(seed) ^ mix(step.wrapping_add(0x5851_F42D_4C95_7F2D)));
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            (mix(x) % max as u64) as usize
        })
        .collect()
}

/// Reads the training files as one token stream (files joined by `eot`).
fn stream(tok: &tokenizers::Tokenizer, files: &[PathBuf], eot: u32) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for f in files {
        let text = ragl_core::read::Input::File(f.clone()).read_to_string()?;
        let e = tok.encode(text.as_str(), false).map_err(|e| Error::Text {
            what: f.display().to_string(),
            message: e.to_string(),
        })?;
        if !ids.is_empty() {
            ids.push(eot);
        }
        ids.extend_from_slice(e.get_ids());
    }
    Ok(ids)
}

/// Mean next-token cross-entropy of `[b, s]` windows (every position predicts the next).
fn loss<B: Backend>(model: &Gpt2<B>, rows: &[&[u32]], device: &B::Device) -> Tensor<B, 1> {
    let (b, s) = (rows.len(), rows[0].len() - 1);
    let input: Vec<i64> = rows
        .iter()
        .flat_map(|r| r[..s].iter().map(|&t| t as i64))
        .collect();
    let target: Vec<i64> = rows
        .iter()
        .flat_map(|r| r[1..].iter().map(|&t| t as i64))
        .collect();
    let states = model.forward(Tensor::from_data(TensorData::new(input, [b, s]), device));
    let d = model.d_model();
    let logits = model.logits(states.last.reshape([b * s, d]));
    let lp = burn::tensor::activation::log_softmax(logits, 1);
    let t = Tensor::<B, 2, Int>::from_data(TensorData::new(target, [b * s, 1]), device);
    lp.gather(1, t).mean().neg()
}

fn checkpoint_dir(run: &Path, step: u64) -> PathBuf {
    run.join("checkpoints").join(format!("step-{step:07}"))
}

/// The newest checkpoint of a run directory (its `last` file), or `dir` itself when it is
/// a model directory.
pub fn resolve(dir: &Path) -> PathBuf {
    match std::fs::read_to_string(dir.join("last")) {
        Ok(name) => dir.join(name.trim()),
        Err(_) => dir.to_path_buf(),
    }
}

/// Trains (or resumes) the run in `run_dir` with `workers` data-parallel threads.
pub fn train<B: AutodiffBackend>(
    cfg: &RunConfig,
    run_dir: &Path,
    device: &B::Device,
    workers: usize,
    mut events: impl FnMut(Event),
) -> Result<TrainState> {
    let _lock = ragl_core::lock::WriterLock::acquire(run_dir)?;
    let cfg_path = run_dir.join("config.json");
    let bad = |message: String| Error::Text {
        what: cfg_path.display().to_string(),
        message,
    };
    if cfg.data.train.is_empty() || cfg.train.batch == 0 || cfg.train.steps == 0 {
        return Err(bad(
            "data.train, train.batch and train.steps must not be empty or 0".into(),
        ));
    }
    cfg.gpt2(cfg.data.vocab_size.max(300), 0)
        .validate()
        .map_err(bad)?;
    std::fs::create_dir_all(run_dir.join("checkpoints"))
        .map_err(|e| ragl_core::Error::io(run_dir, e))?;
    let resume = run_dir.join("last").is_file();
    let (tok, mut model, gcfg, mut st, optim_path) = if resume {
        let saved: RunConfig = serde_json::from_slice(
            &std::fs::read(&cfg_path).map_err(|e| ragl_core::Error::io(&cfg_path, e))?,
        )
        .map_err(|e| bad(e.to_string()))?;
        if saved.data != cfg.data || saved.model != cfg.model || saved.train.seed != cfg.train.seed
        {
            return Err(bad(
                "this run was started with another data, model or seed; use a new run directory"
                    .into(),
            ));
        }
        let dir = resolve(run_dir);
        let m = ragl_model::gpt2::load::<B>(&dir, device)?;
        let st: TrainState = serde_json::from_slice(
            &std::fs::read(dir.join("state.json"))
                .map_err(|e| ragl_core::Error::io(dir.join("state.json"), e))?,
        )
        .map_err(|e| bad(e.to_string()))?;
        // The optimiser's moments are keyed by parameter ids, which only burn's own record
        // keeps (the safetensors copy is for everyone else).
        let model = m
            .model
            .load_file(dir.join("model"), &Recorder::new(), device)
            .map_err(|e| bad(format!("{}: {e}", dir.join("model.mpk").display())))?;
        (m.tokenizer, model, m.config, st, Some(dir.join("optim")))
    } else {
        let texts: Vec<String> = cfg
            .data
            .train
            .iter()
            .map(|f| ragl_core::read::Input::File(f.clone()).read_to_string())
            .collect::<std::result::Result<_, _>>()?;
        let lines = texts.iter().flat_map(|t| t.lines());
        let tok = crate::bpe::train(lines, cfg.data.vocab_size, cfg.data.min_frequency)?;
        let eot = tok
            .token_to_id(crate::bpe::END_OF_TEXT)
            .expect("the trainer adds the special token");
        let gcfg = cfg.gpt2(tok.get_vocab_size(true), eot);
        B::seed(device, cfg.train.seed);
        let model = gcfg.init::<B>(device);
        let st = TrainState {
            step: 0,
            tokens: 0,
            elapsed_secs: 0.0,
        };
        (tok, model, gcfg, st, None)
    };
    ragl_core::atomic::write_bytes_atomic(
        &cfg_path,
        &serde_json::to_vec_pretty(cfg).expect("config serialises"),
    )?;
    let eot = gcfg.eos_token_id;
    let ids = stream(&tok, &cfg.data.train, eot)?;
    let len = gcfg.n_positions + 1;
    if ids.len() <= len {
        return Err(bad(format!(
            "the training text has {} tokens, fewer than one window of {len}",
            ids.len()
        )));
    }
    let dev: Option<Vec<Window>> = match &cfg.data.dev {
        Some(p) => {
            let text = ragl_core::read::Input::File(p.clone()).read_to_string()?;
            let w = crate::windows::windows(
                &tok,
                &crate::windows::Text::Stream(text),
                eot,
                gcfg.n_positions,
                gcfg.n_positions / 2,
            )?;
            Some(w)
        }
        None => None,
    };
    let t = &cfg.train;
    let mut optim_cfg = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.95)
        .with_epsilon(1e-8)
        .with_weight_decay(t.weight_decay);
    if t.clip_norm > 0.0 {
        optim_cfg = optim_cfg.with_grad_clipping(Some(GradientClippingConfig::Norm(t.clip_norm)));
    }
    let mut optim = optim_cfg.init::<B, Gpt2<B>>();
    if let Some(p) = optim_path {
        let rec = Recorder::new()
            .load(p.clone(), device)
            .map_err(|e| bad(format!("{}: {e}", p.display())))?;
        optim = optim.load_record(rec);
    }
    let metrics_path = run_dir.join("metrics.csv");
    ragl_core::atomic::truncate_steps(&metrics_path, METRICS_HEADER, st.step)?;
    let io = |e| Error::Core(ragl_core::Error::io(&metrics_path, e));
    let mut metrics = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .map_err(io)?,
    );
    events(Event::Started {
        resumed_from: resume.then_some(st.step),
        tokens: ids.len(),
        parameters: model.num_params(),
    });
    let clock = Instant::now();
    let base = st.elapsed_secs;
    let workers = workers.clamp(1, t.batch);
    let save = |model: &Gpt2<B>, optim: &_, st: &TrainState| -> Result<PathBuf> {
        let dir = checkpoint_dir(run_dir, st.step);
        let tmp = ragl_core::atomic::temp_path(&dir);
        let _ = std::fs::remove_dir_all(&tmp);
        ragl_model::gpt2::save(&tmp, &gcfg, model)?;
        model
            .clone()
            .save_file(tmp.join("model"), &Recorder::new())
            .map_err(|e| bad(e.to_string()))?;
        tok.save(tmp.join("tokenizer.json"), false)
            .map_err(|e| bad(e.to_string()))?;
        Recorder::new()
            .record(
                burn::optim::Optimizer::<Gpt2<B>, B>::to_record(optim),
                tmp.join("optim"),
            )
            .map_err(|e| bad(e.to_string()))?;
        ragl_core::atomic::write_bytes_atomic(
            &tmp.join("state.json"),
            &serde_json::to_vec_pretty(st).expect("state serialises"),
        )?;
        ragl_core::atomic::publish_dir(&tmp, &dir)?;
        let name = dir
            .strip_prefix(run_dir)
            .expect("inside the run")
            .display()
            .to_string();
        ragl_core::atomic::write_bytes_atomic(&run_dir.join("last"), name.as_bytes())?;
        Ok(dir)
    };
    let stop = |st: &TrainState| {
        st.step >= t.steps
            || t.max_minutes
                .is_some_and(|m| clock.elapsed().as_secs_f64() >= m * 60.0)
    };
    while !stop(&st) {
        let starts = offsets(t.seed, st.step, t.batch, ids.len() - len);
        let rows: Vec<&[u32]> = starts.iter().map(|&o| &ids[o..o + len]).collect();
        let parts: Vec<Vec<&[u32]>> = rows
            .chunks(t.batch.div_ceil(workers))
            .map(|c| c.to_vec())
            .collect();
        let step_t = Instant::now();
        let (losses, grads) = data_parallel(&model, &parts, |m: &Gpt2<B>, part| {
            // Each part's mean, weighted by its share of the batch: the sum is the batch mean.
            let l = loss(m, part, device) * (part.len() as f64 / t.batch as f64);
            let v = l.clone().into_scalar().elem::<f64>();
            (v, GradientsParams::from_grads(l.backward(), m))
        });
        let loss_v: f64 = losses.iter().sum();
        let lr = cfg.lr_at(st.step + 1);
        model = optim.step(lr, model, grads);
        st.step += 1;
        st.tokens += (t.batch * (len - 1)) as u64;
        st.elapsed_secs = base + clock.elapsed().as_secs_f64();
        let tps = (t.batch * (len - 1)) as f64 / step_t.elapsed().as_secs_f64().max(1e-9);
        writeln!(
            metrics,
            "{},{lr:.3e},{loss_v:.5},{tps:.1},{:.1},",
            st.step, st.elapsed_secs
        )
        .map_err(io)?;
        events(Event::Step {
            step: st.step,
            lr,
            loss: loss_v,
            tokens_per_sec: tps,
        });
        if let Some(w) = &dev
            && t.dev_every > 0
            && (st.step.is_multiple_of(t.dev_every) || st.step == t.steps)
        {
            let p = crate::score::perplexity(&model.valid(), w, 8)?.perplexity();
            writeln!(metrics, "{},,,,,{p:.4}", st.step).map_err(io)?;
            events(Event::Dev {
                step: st.step,
                perplexity: p,
            });
        }
        if t.save_every > 0 && st.step.is_multiple_of(t.save_every) {
            metrics.flush().map_err(io)?;
            let dir = save(&model, &optim, &st)?;
            events(Event::Saved { step: st.step, dir });
        }
    }
    metrics.flush().map_err(io)?;
    let last = resolve(run_dir);
    if !last.join("state.json").is_file() || last != checkpoint_dir(run_dir, st.step) {
        let dir = save(&model, &optim, &st)?;
        events(Event::Saved { step: st.step, dir });
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    /// The training loss of a window is the mean of the scored log-probabilities of the
    /// same tokens, as inference computes them.
    #[test]
    fn the_training_loss_is_the_scoring_nll() {
        use burn::prelude::*;
        let cfg: super::Gpt2Config = serde_json::from_value(serde_json::json!({
            "vocab_size": 40, "n_positions": 32, "n_embd": 16, "n_layer": 2, "n_head": 2,
            "initializer_range": 0.3,
        }))
        .unwrap();
        let device = Default::default();
        Flex::seed(&device, 2);
        let m = cfg.init::<Flex>(&device);
        let ids: Vec<u32> = (0..40).map(|i| (i * 7 + 3) % 40).collect();
        let rows: Vec<&[u32]> = vec![&ids[0..17], &ids[5..22], &ids[20..37]];
        let train = super::loss(&m, &rows, &device).into_scalar().elem::<f64>();
        let windows: Vec<crate::windows::Window> = rows
            .iter()
            .map(|r| crate::windows::Window {
                ids: r[..17].to_vec(),
                score_from: 1,
            })
            .collect();
        let p = crate::score::perplexity(&m, &windows, 3).unwrap();
        let nll = p.nll / p.tokens as f64;
        assert_eq!(p.tokens, 48);
        assert!(
            (train - nll).abs() < 1e-4,
            "training loss {train} vs scoring NLL {nll}"
        );
    }

    #[test]
    fn offsets_depend_on_seed_and_step_only_and_batches_do_not_overlap() {
        let a = super::offsets(1, 5, 4, 100);
        assert_eq!(a, super::offsets(1, 5, 4, 100));
        assert_ne!(a, super::offsets(1, 6, 4, 100));
        assert!(a.iter().all(|&o| o < 100));
        // Consecutive steps draw unrelated windows (not the last step's, shifted).
        let max = 1 << 40;
        for step in 0..50 {
            let x = super::offsets(1, step, 32, max);
            let y = super::offsets(1, step + 1, 32, max);
            assert!(x.iter().all(|o| !y.contains(o)), "step {step}");
        }
        assert_ne!(super::offsets(1, 3, 8, max), super::offsets(2, 3, 8, max));
    }
}
