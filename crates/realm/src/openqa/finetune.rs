//! The fine-tuning loop (`ragl finetune-qa`): retrieve with the current query tower,
//! descend on the marginal likelihood of the gold spans, dev EM every `dev_every` steps,
//! the best model to `RUN/best`, early stopping, checkpoints.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use ragl_core::qa::QaExample;
use ragl_core::read::Input;
use ragl_core::rng::Rng;
use ragl_model::parallel::data_parallel;
use ragl_reader::span::AnswerMatcher;

use super::checkpoint::*;
use super::config::*;
use super::model::{OpenQa, RetrievalContext, own_passages, retrieve};
use super::predict::*;
use crate::{Error, Result};

const METRICS_HEADER: &str = "step,epoch,lr,loss,questions_with_gold,secs,dev_em";

/// One progress report of [`finetune`].
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    pub step: u64,
    pub total: u64,
    pub loss: f64,
    pub dev_em: Option<f64>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct FinetuneSummary {
    pub steps: u64,
    pub best_dev_em: f64,
    pub best_step: u64,
    pub minutes: f64,
    /// Training questions with no gold span in their top-k (they teach nothing).
    pub no_gold: u64,
    /// The checkpoint step this run continued from.
    pub resumed_from: Option<u64>,
}

fn read_questions(path: &Path) -> Result<Vec<QaExample>> {
    let input = Input::from_arg(path);
    let format = ragl_eval::qa_data::GoldFormat::detect(&input)?;
    Ok(ragl_eval::qa_data::read_gold(&input, format)?)
}

/// Fine-tunes from `cfg` into `run_dir` (`config.json`, `metrics.csv`, `best/`,
/// `checkpoint/`), resuming from `run_dir/checkpoint` when it is there.
pub fn finetune<B: AutodiffBackend>(
    cfg: &FinetuneConfig,
    run_dir: &Path,
    device: &B::Device,
    workers: usize,
    mut progress: impl FnMut(StepReport),
) -> Result<FinetuneSummary> {
    // One writer at a time: a second job aimed at the same output is refused.
    let _lock = ragl_core::lock::WriterLock::acquire(run_dir)?;
    let t0 = Instant::now();
    let t = &cfg.train;
    B::seed(device, t.seed);
    let index = ragl_index::Index::open(&cfg.data.index)?;
    let passages = passages_by_row(&cfg.data.passages, &index)?;
    let train = read_questions(&cfg.data.train)?;
    let mut dev = read_questions(&cfg.data.dev)?;
    dev.truncate(t.dev_limit.max(1));
    let train_m = matchers(&train)?;
    if t.own_passages
        && let Some(e) = train.iter().find(|e| e.context.is_none())
    {
        return Err(Error::Mismatch(format!(
            "{}: train.own_passages needs each training question's passage (`context`), and this one has none",
            e.source
        )));
    }
    let l = match &cfg.model.init {
        Some(dir) => {
            let l = load::<B>(dir, device)?;
            let same =
                |a: &Path, b: &Path| std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok();
            if !same(&l.meta.index, &index.dir) {
                return Err(Error::Mismatch(format!(
                    "{}: trained over index {}, but data.index is {}",
                    dir.display(),
                    l.meta.index.display(),
                    index.dir.display()
                )));
            }
            l
        }
        None => init::<B>(cfg, &index, device)?,
    };
    let Loaded {
        mut model,
        meta,
        query_tokenizer,
        reader_tokenizer,
        pooling,
    } = l;
    let bq = t.batch_questions.max(1);
    let per_epoch = train.len().div_ceil(bq) as u64;
    let total = t
        .max_steps
        .unwrap_or(u64::MAX)
        .min(per_epoch * t.epochs.max(1));
    let mut optim_cfg = AdamWConfig::new()
        .with_weight_decay(t.weight_decay)
        .with_epsilon(1e-8);
    if t.clip_norm > 0.0 {
        optim_cfg = optim_cfg.with_grad_clipping(Some(GradientClippingConfig::Norm(t.clip_norm)));
    }
    let mut optim = optim_cfg.init::<B, OpenQa<B>>();
    let ckpt_dir = run_dir.join("checkpoint");
    let mut resumed = None;
    if ckpt_dir.exists() {
        let (m, o, st) = load_checkpoint::<B, _>(&ckpt_dir, optim, device)?;
        if resumable_part(&st.config) != resumable_part(cfg) {
            return Err(Error::Mismatch(format!(
                "{}: written by a run with another config; use a new run directory, or delete the checkpoint to start over",
                ckpt_dir.display()
            )));
        }
        (model, optim, resumed) = (m, o, Some(st));
    }
    if !cfg.model.train_query {
        model.query = model.query.no_grad();
    }
    std::fs::create_dir_all(run_dir).map_err(|e| ragl_core::Error::io(run_dir, e))?;
    ragl_core::atomic::write_bytes_atomic(
        &run_dir.join("config.json"),
        &serde_json::to_vec_pretty(cfg).expect("config serialises"),
    )?;
    let metrics_path = run_dir.join("metrics.csv");
    // A resumed run drops the rows written after its checkpoint, then appends.
    ragl_core::atomic::truncate_steps(
        &metrics_path,
        METRICS_HEADER,
        resumed.as_ref().map_or(0, |s: &CkptState| s.step),
    )?;
    let mut metrics = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .map_err(|e| ragl_core::Error::io(&metrics_path, e))?,
    );
    let lr_at = |s: u64| crate::warmup_linear_decay(t.lr, t.warmup, total, s);
    let dev_questions: Vec<&str> = dev.iter().map(|e| e.question.as_str()).collect();
    let mut summary = FinetuneSummary {
        steps: 0,
        best_dev_em: f64::NEG_INFINITY,
        best_step: 0,
        minutes: 0.0,
        no_gold: 0,
        resumed_from: None,
    };
    let mut stale = 0usize;
    let mut step = 0u64;
    if let Some(st) = &resumed {
        (summary.best_dev_em, summary.best_step, summary.no_gold) =
            (st.best_dev_em, st.best_step, st.no_gold);
        (summary.resumed_from, summary.steps, stale, step) =
            (Some(st.step), st.step, st.stale, st.step);
    }
    let start = step;
    let out_of_time = || {
        t.max_minutes
            .is_some_and(|m| t0.elapsed().as_secs_f64() / 60.0 >= m)
    };
    let checkpoint = |model: &OpenQa<B>, optim: &_, step, summary: &FinetuneSummary, stale| {
        let state = CkptState {
            step,
            best_dev_em: summary.best_dev_em,
            best_step: summary.best_step,
            stale,
            no_gold: summary.no_gold,
            config: cfg.clone(),
        };
        save_checkpoint(&ckpt_dir, model, optim, &meta, state)
    };
    // Built once: tokenizers and passages serve every step and every evaluation.
    let ctx = RetrievalContext {
        index: &index,
        passages: &passages,
        query_tokenizer: &query_tokenizer,
        reader_tokenizer: &reader_tokenizer,
        reader: &meta.span,
        k: cfg.model.k,
    };
    'epochs: for epoch in 0..t.epochs.max(1) {
        let mut order: Vec<usize> = (0..train.len()).collect();
        Rng::new(t.seed ^ (epoch + 1).wrapping_mul(0x9E37_79B9)).shuffle(&mut order);
        for (pos, chunk) in order.chunks(bq).enumerate() {
            if epoch * per_epoch + (pos as u64) < start {
                continue; // done before the checkpoint this run resumed from
            }
            if step >= total || t.stop_after.is_some_and(|s| step >= s) || out_of_time() {
                break 'epochs;
            }
            step += 1;
            // Seeded by the step, so a resumed run draws what an uninterrupted one would.
            B::seed(device, t.seed.wrapping_add(step));
            let qs: Vec<&str> = chunk.iter().map(|&i| train[i].question.as_str()).collect();
            let ms: Vec<AnswerMatcher> = chunk.iter().map(|&i| train_m[i].clone()).collect();
            let items = if t.own_passages {
                // Titled as the corpus chunker titles SQuAD's passages.
                let titles: Vec<Option<String>> = chunk
                    .iter()
                    .map(|&i| {
                        train[i]
                            .title
                            .as_deref()
                            .map(ragl_corpus::document::squad_title)
                    })
                    .collect();
                let own: Vec<(Option<&str>, &str)> = chunk
                    .iter()
                    .zip(&titles)
                    .map(|(&i, t)| {
                        (
                            t.as_deref(),
                            train[i].context.as_deref().unwrap_or_default(),
                        )
                    })
                    .collect();
                own_passages(&ctx, &qs, &own, &ms)?
            } else {
                retrieve(&model.valid(), pooling, &ctx, &qs, Some(&ms))?.0
            };
            let lr = lr_at(step);
            let gold: Vec<_> = items
                .into_iter()
                .filter(|r| r.gold.contains(&true))
                .collect();
            let (loss, n) = if gold.is_empty() {
                (f64::NAN, 0)
            } else {
                // Each worker's mean is scaled by its share, so the parts sum to the
                // batch mean and the update is the same as one worker's.
                let n = gold.len();
                let parts: Vec<&[_]> = gold.chunks(n.div_ceil(workers.max(1))).collect();
                let (values, grads) = data_parallel(&model, &parts, |m, part| {
                    let (loss, k) = m.loss(part, pooling).expect("every part has a gold span");
                    let loss = loss * (k as f32 / n as f32);
                    let v = loss.clone().into_scalar().elem::<f64>();
                    (v, GradientsParams::from_grads(loss.backward(), m))
                });
                model = optim.step(lr, model, grads);
                (values.iter().sum(), n)
            };
            summary.no_gold += (chunk.len() - n) as u64;
            let mut dev_em = None;
            // A run cut by its time limit stops before the next step: evaluate this one, so
            // that the steps since the last evaluation are not lost to the best model.
            let last = step == total || t.stop_after == Some(step) || out_of_time();
            if t.dev_every > 0 && (step.is_multiple_of(t.dev_every) || last) {
                let inner = model.valid();
                let preds = predict_with(&inner, pooling, &ctx, &dev_questions, bq * 4, |_| {})?;
                let em = exact_match(&preds, &dev)?;
                dev_em = Some(em);
                if em > summary.best_dev_em {
                    summary.best_dev_em = em;
                    summary.best_step = step;
                    stale = 0;
                    save(&inner, &meta, &run_dir.join("best"))?;
                } else {
                    stale += 1;
                }
            }
            writeln!(
                metrics,
                "{step},{epoch},{lr:.3e},{loss:.5},{n},{:.1},{}",
                t0.elapsed().as_secs_f64(),
                dev_em.map(|e| format!("{e:.2}")).unwrap_or_default()
            )
            .map_err(|e| ragl_core::Error::io(&metrics_path, e))?;
            if step.is_multiple_of(20) || dev_em.is_some() {
                metrics
                    .flush()
                    .map_err(|e| ragl_core::Error::io(&metrics_path, e))?;
            }
            progress(StepReport {
                step,
                total,
                loss,
                dev_em,
            });
            summary.steps = step;
            if t.checkpoint_every > 0 && step.is_multiple_of(t.checkpoint_every) {
                metrics
                    .flush()
                    .map_err(|e| ragl_core::Error::io(&metrics_path, e))?;
                checkpoint(&model, &optim, step, &summary, stale)?;
            }
            if t.patience > 0 && stale >= t.patience {
                break 'epochs;
            }
        }
    }
    metrics
        .flush()
        .map_err(|e| ragl_core::Error::io(&metrics_path, e))?;
    if t.checkpoint_every > 0 && step > start && !step.is_multiple_of(t.checkpoint_every) {
        checkpoint(&model, &optim, step, &summary, stale)?;
    }
    summary.minutes = t0.elapsed().as_secs_f64() / 60.0;
    Ok(summary)
}
