//! The training loop: data, ICT warm start, the first index, then per step the refresher's
//! swap, the batch loss, AdamW for the towers and the reader, `metrics.csv`, held-out
//! evaluations and checkpoints; a run resumes from its checkpoint.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use ragl_core::rng::Rng;
use ragl_model::bert::Bert;

use super::checkpoint::{CkptState, load_checkpoint, save_checkpoint};
use super::config::{PretrainConfig, RefreshMode, Retrieval};
use super::data::{MaskedExample, RunData, batch_at, split};
use super::eval::{
    EVAL_HEADER, EXAMPLES_HEADER, EvalReport, csv_field, eval_line, evaluate_examples,
};
use super::loss::{StepContext, batch_loss};
use super::model::{Realm, export, init};
use super::refresh::{Snapshot, embed_corpus, spawn_refresher};
use crate::{Error, Result};

/// One progress report.
#[derive(Debug, Clone, Copy)]
pub struct PretrainReport {
    pub step: u64,
    pub total: u64,
    pub loss: f64,
    pub accuracy: f64,
    pub utility: f64,
    pub staleness: u64,
    pub refreshes: u64,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct PretrainSummary {
    pub steps: u64,
    pub resumed_from: Option<u64>,
    pub refreshes: u64,
    pub minutes: f64,
    pub first: Option<EvalReport>,
    pub last: Option<EvalReport>,
    /// Examples read, and those kept (all of them unless `data.span_elsewhere`).
    pub examples_read: usize,
    pub examples_kept: usize,
    /// Seconds training waited for a refresh (only `refresh.swap_after` ever waits).
    pub refresh_wait_secs: f64,
}

const METRICS_HEADER: &str = "step,lr,loss,token_acc,span_acc,utility,null_token_acc,index_step,staleness,stale_gap,refresh,secs,ru_top,span_hit,p_null";

/// The step of a CSV's last row.
fn last_step_of(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().skip(1).last()?.split(',').next()?.parse().ok()
}

fn append(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| ragl_core::Error::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| ragl_core::Error::io(path, e))?;
    Ok(())
}

/// Trains from `cfg` into `run_dir`, resuming from `run_dir/checkpoint` when it is there.
/// `max_steps` / `max_minutes` override the config's (to stop a run early; the schedule
/// still follows the config's `max_steps`).
pub fn pretrain<B: AutodiffBackend>(
    cfg: &PretrainConfig,
    run_dir: &Path,
    device: &B::Device,
    stop_after: Option<u64>,
    progress: impl FnMut(PretrainReport),
    on_eval: impl FnMut(&EvalReport),
) -> Result<PretrainSummary>
where
    Bert<B::InnerBackend>: Send + 'static,
{
    pretrain_with_ict::<B>(cfg, run_dir, device, stop_after, progress, on_eval, |_| {})
}

/// [`pretrain`], reporting each step of the ICT warm start (`[ict]`) to `on_ict`.
pub fn pretrain_with_ict<B: AutodiffBackend>(
    cfg: &PretrainConfig,
    run_dir: &Path,
    device: &B::Device,
    stop_after: Option<u64>,
    mut progress: impl FnMut(PretrainReport),
    mut on_eval: impl FnMut(&EvalReport),
    on_ict: impl FnMut(&crate::ict::IctStep),
) -> Result<PretrainSummary>
where
    Bert<B::InnerBackend>: Send + 'static,
{
    // One writer at a time: a second job aimed at the same output is refused.
    let _lock = ragl_core::lock::WriterLock::acquire(run_dir)?;
    let t0 = Instant::now();
    let t = &cfg.train;
    let m = &cfg.model;
    B::seed(device, t.seed);
    std::fs::create_dir_all(run_dir).map_err(|e| ragl_core::Error::io(run_dir, e))?;
    let cfg_path = run_dir.join("config.json");
    let cfg_json = serde_json::to_vec_pretty(cfg).expect("config serialises");
    let ckpt_dir = run_dir.join("checkpoint");
    if ckpt_dir.exists() {
        let old = std::fs::read(&cfg_path).map_err(|e| ragl_core::Error::io(&cfg_path, e))?;
        let old: PretrainConfig =
            serde_json::from_slice(&old).map_err(|e| Error::load(&cfg_path, e))?;
        if old.data != cfg.data
            || old.model != cfg.model
            || old.refresh != cfg.refresh
            || old.ict != cfg.ict
        {
            return Err(Error::Mismatch(format!(
                "{} holds a run with another configuration; use a new --run directory",
                run_dir.display()
            )));
        }
    }
    ragl_core::atomic::write_bytes_atomic(&cfg_path, &cfg_json)?;

    let RunData {
        tower_tok,
        reader_tok,
        sep,
        corpus,
        examples,
        examples_read,
    } = RunData::load(cfg)?;
    let (train_ix, held_ix) = split(examples.len(), cfg.data.heldout, t.seed);
    let held: Vec<&MaskedExample> = held_ix.iter().map(|&i| &examples[i]).collect();
    let ctx = StepContext {
        cfg,
        corpus: &corpus,
        tower_pad: tower_tok.pad_id,
        reader_pad: reader_tok.pad_id,
        sep,
    };

    let mut optim_cfg = AdamWConfig::new()
        .with_weight_decay(t.weight_decay)
        .with_epsilon(1e-8);
    if t.clip_norm > 0.0 {
        optim_cfg = optim_cfg.with_grad_clipping(Some(GradientClippingConfig::Norm(t.clip_norm)));
    }
    let optims = [
        optim_cfg.clone().init::<B, Realm<B>>(),
        optim_cfg.init::<B, Realm<B>>(),
    ];
    let metrics = run_dir.join("metrics.csv");
    let evals = run_dir.join("eval.csv");
    let eval_examples = run_dir.join("eval_examples.csv");
    let (
        mut model,
        [mut optim, mut optim_reader],
        mut snap,
        configs,
        mut step,
        mut refreshes,
        resumed,
        elapsed0,
    ) = if ckpt_dir.exists() {
        let (model, optims, st, snap) = load_checkpoint::<B, _>(&ckpt_dir, optims, device)?;
        ragl_core::atomic::truncate_steps(&metrics, METRICS_HEADER, st.step)?;
        ragl_core::atomic::truncate_steps(&evals, EVAL_HEADER, st.step)?;
        ragl_core::atomic::truncate_steps(&eval_examples, EXAMPLES_HEADER, st.step)?;
        let s = st.step;
        (
            model,
            optims,
            snap,
            st.configs,
            s,
            st.refreshes,
            Some(s),
            st.elapsed_secs,
        )
    } else {
        let (mut model, configs) = init::<B>(cfg, device)?;
        if cfg.ict.steps > 0 {
            let towers = crate::ict::Towers {
                query: model.query,
                doc: model.doc,
            };
            let (towers, log) = crate::ict::warm_start(
                towers,
                &corpus.passages,
                &tower_tok,
                &m.scoring(),
                &cfg.ict,
                t.seed,
                on_ict,
            )?;
            model.query = towers.query;
            model.doc = towers.doc;
            let path = run_dir.join("ict.csv");
            ragl_core::atomic::write_atomic(&path, |w| {
                writeln!(w, "step,loss,accuracy")?;
                for r in &log {
                    writeln!(w, "{},{:.5},{:.2}", r.step, r.loss, r.accuracy)?;
                }
                Ok(())
            })?;
        }
        let inner = model.doc.valid();
        // Only MIPS reads the index.
        let vectors = if m.retrieval == Retrieval::Dense {
            embed_corpus(
                &inner,
                &corpus.tower,
                m,
                tower_tok.pad_id,
                cfg.refresh.batch_size,
                device,
            )
        } else {
            Vec::new()
        };
        let snap = Snapshot {
            step: 0,
            dim: inner.hidden_size(),
            vectors,
        };
        ragl_core::atomic::truncate_steps(&metrics, METRICS_HEADER, 0)?;
        ragl_core::atomic::truncate_steps(&evals, EVAL_HEADER, 0)?;
        ragl_core::atomic::truncate_steps(&eval_examples, EXAMPLES_HEADER, 0)?;
        (model, optims, snap, configs, 0, 0, None, 0.0)
    };
    let elapsed = |t0: &Instant| elapsed0 + t0.elapsed().as_secs_f64();

    let refreshing = cfg.refresh.every > 0 && m.retrieval == Retrieval::Dense;
    let mut refresher = if refreshing && cfg.refresh.mode == RefreshMode::Async {
        Some(spawn_refresher::<B::InnerBackend>(
            std::sync::Arc::new(corpus.tower.clone()),
            m.clone(),
            tower_tok.pad_id,
            &cfg.refresh,
            device.clone(),
        )?)
    } else {
        None
    };
    let total = t.max_steps;
    let stop = stop_after.map_or(total, |s| s.min(total));
    let lr_at = |s: u64| crate::warmup_linear_decay(t.lr, t.warmup, total, s);
    let state = |snap: &Snapshot, step, refreshes| CkptState {
        step,
        snapshot_step: snap.step,
        dim: snap.dim,
        refreshes,
        elapsed_secs: elapsed(&t0),
        configs: configs.clone(),
    };
    let reader_lr_at =
        |s: u64| crate::warmup_linear_decay(t.reader_lr.unwrap_or(t.lr), t.warmup, total, s);
    let eval_batch = t.batch.max(1) * 2;
    // A held-out evaluation, appended to eval.csv and, one row an example, eval_examples.csv.
    let eval_at = |model: &Realm<B>, snap: &Snapshot, step: u64| -> Result<EvalReport> {
        let (e, each) = evaluate_examples(&model.valid(), &ctx, &held, snap, eval_batch, step);
        append(&evals, &eval_line(&e))?;
        let rows: Vec<String> = held
            .iter()
            .zip(&each)
            .map(|(x, v)| {
                format!(
                    "{step},{},{:.5},{:.5},{:.5},{:.4},{}",
                    csv_field(&x.id),
                    v.loss,
                    v.null_loss,
                    v.null_loss - v.loss,
                    v.p_null,
                    u8::from(v.span_hit)
                )
            })
            .collect();
        append(&eval_examples, &rows.join("\n"))?;
        Ok(e)
    };
    let mut summary = PretrainSummary {
        steps: step,
        resumed_from: resumed,
        refreshes,
        minutes: 0.0,
        first: None,
        last: None,
        examples_read,
        examples_kept: examples.len(),
        refresh_wait_secs: 0.0,
    };
    // The held-out evaluation of the resume step is already in eval.csv when it was made.
    let mut last_eval = if resumed.is_some() {
        last_step_of(&evals).unwrap_or(u64::MAX)
    } else {
        u64::MAX
    };
    let mut last_saved = if resumed.is_some() { step } else { u64::MAX };
    if resumed.is_none() {
        last_eval = 0;
        let e = eval_at(&model, &snap, 0)?;
        on_eval(&e);
        summary.first = Some(e);
    }
    while step < stop {
        if t.max_minutes
            .is_some_and(|mm| t0.elapsed().as_secs_f64() / 60.0 >= mm)
        {
            break;
        }
        let mut event = String::new();
        // Swap in a finished refresh (see `refresh.swap_after`).
        if let Some(r) = refresher.as_mut()
            && let Some((s, waited)) = r.poll(step, cfg.refresh.swap_after)?
        {
            summary.refresh_wait_secs += waited;
            event = format!("swap@{}", s.step);
            snap = s;
            refreshes += 1;
        }
        if refreshing && step > 0 && step.is_multiple_of(cfg.refresh.every) {
            match refresher.as_mut() {
                Some(r) => {
                    event = if !r.start(step, || model.doc.valid())? {
                        format!("{event}skip")
                    } else if event.is_empty() {
                        "start".into()
                    } else {
                        format!("{event}+start")
                    };
                }
                None => {
                    let inner = model.doc.valid();
                    snap = Snapshot {
                        step,
                        dim: inner.hidden_size(),
                        vectors: embed_corpus(
                            &inner,
                            &corpus.tower,
                            m,
                            tower_tok.pad_id,
                            cfg.refresh.batch_size,
                            device,
                        ),
                    };
                    refreshes += 1;
                    event = format!("sync@{step}");
                }
            }
        }
        let ix = batch_at(&train_ix, t.batch, t.data_seed.unwrap_or(t.seed), step);
        let batch: Vec<&MaskedExample> = ix.iter().map(|&i| &examples[i]).collect();
        let mut rng = Rng::new(t.seed ^ step.wrapping_mul(0xA24B_AED4_963E_E407));
        step += 1;
        let (loss, s) = batch_loss(&model, &ctx, &batch, &snap, &mut rng, !t.freeze_doc);
        let lr = lr_at(step);
        let mut g = loss.backward();
        let reader_grads = GradientsParams::from_module(&mut g, &model.reader);
        let tower_grads = if t.freeze_doc {
            GradientsParams::from_module(&mut g, &model.query)
        } else {
            GradientsParams::from_grads(g, &model)
        };
        if t.lr > 0.0 {
            model = optim.step(lr, model, tower_grads);
        }
        model = optim_reader.step(reader_lr_at(step), model, reader_grads);
        // Only MIPS reads the index; other modes have none to be stale, and a frozen doc
        // tower's index is exact.
        let staleness = if m.retrieval == Retrieval::Dense && !t.freeze_doc {
            step - 1 - snap.step
        } else {
            0
        };
        let acc = 100.0 * s.tokens_right as f64 / s.tokens.max(1) as f64;
        append(
            &metrics,
            &format!(
                "{step},{lr:.3e},{:.5},{acc:.2},{:.2},{:.5},{:.2},{},{staleness},{:.5},{event},{:.3},{:.5},{:.2},{:.4}",
                s.loss,
                100.0 * s.spans_right as f64 / s.examples.max(1) as f64,
                s.utility,
                100.0 * s.null_tokens_right as f64 / s.tokens.max(1) as f64,
                snap.step,
                s.stale_gap,
                elapsed(&t0),
                s.ru_top,
                100.0 * s.span_hits as f64 / s.examples.max(1) as f64,
                s.p_null / s.examples.max(1) as f64
            ),
        )?;
        progress(PretrainReport {
            step,
            total,
            loss: s.loss,
            accuracy: acc,
            utility: s.utility,
            staleness,
            refreshes,
        });
        if t.eval_every > 0 && step.is_multiple_of(t.eval_every) {
            let e = eval_at(&model, &snap, step)?;
            on_eval(&e);
            last_eval = step;
            summary.last = Some(e);
        }
        if t.save_every > 0 && step.is_multiple_of(t.save_every) {
            let st = state(&snap, step, refreshes);
            save_checkpoint(&ckpt_dir, &model, [&optim, &optim_reader], &st, &snap)?;
            last_saved = step;
        }
    }
    // However the loop ended (all steps, --stop-after, the time budget): the held-out
    // numbers, a checkpoint and the exported towers of the last step.
    if last_eval != step {
        let e = eval_at(&model, &snap, step)?;
        on_eval(&e);
        summary.last = Some(e);
    }
    if last_saved != step {
        let st = state(&snap, step, refreshes);
        save_checkpoint(&ckpt_dir, &model, [&optim, &optim_reader], &st, &snap)?;
    }
    export(&model.valid(), &configs, cfg, &run_dir.join("export"))?;
    summary.steps = step;
    summary.refreshes = refreshes;
    summary.minutes = t0.elapsed().as_secs_f64() / 60.0;
    Ok(summary)
}
