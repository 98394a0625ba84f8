//! `ragl finetune-qa` and `ragl predict-qa`: REALM's open-domain QA fine-tuning and
//! prediction (the loop and model live in `ragl_realm::openqa`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;

use ragl_realm::openqa::{self, FinetuneConfig};

use crate::backend::DeviceSpec;

#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// TOML config (see configs/qa/).
    #[arg(long)]
    config: PathBuf,
    /// Run directory: config.json, metrics.csv, best/ (the best model on dev EM).
    #[arg(long)]
    run: PathBuf,
    /// Steps of the schedule (overrides the config's `max_steps`).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Stop after this many steps, the learning-rate schedule still following the config's
    /// `max_steps`.
    #[arg(long)]
    stop_after: Option<u64>,
    /// Stop after this many minutes (overrides the config; a checkpoint is written).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

#[derive(clap::Args)]
pub struct PredictArgs {
    /// A QA model directory (`RUN/best` of `ragl finetune-qa`), or a released REALM open-QA
    /// checkpoint (`google/realm-orqa-nq-openqa`: a directory or a model id in the local
    /// Hugging Face cache, with its `block_records.npy`), which answers as transformers'
    /// `RealmForOpenQA` does.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The dense index (default: the one the model was trained against).
    #[arg(long)]
    index: Option<PathBuf>,
    /// Passages JSONL of the index (not for a REALM checkpoint, which brings its blocks).
    #[arg(long)]
    passages: Option<PathBuf>,
    /// Questions in any gold format `ragl eval qa` reads; `-` (the default) is standard input.
    #[arg(short = 'i', long, default_value = "-")]
    questions: PathBuf,
    /// Passages retrieved and read per question (0: closed-book, the question alone);
    /// default 4, or a REALM checkpoint's `reader_beam_size`.
    #[arg(long)]
    k: Option<usize>,
    /// Questions per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Predictions as NQ-open/EfficientQA JSONL: `{"question","prediction"}` plus `id`
    /// (where the questions have one), the supporting `passage` and its `score`; `-` (the
    /// default) is standard output.
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

pub fn finetune_cmd(a: FinetuneArgs) -> Result<()> {
    crate::backend::with_device!(a.device, B, device, run_finetune::<B>(&a, device))
}

pub fn predict_cmd(a: PredictArgs) -> Result<()> {
    crate::backend::with_device!(a.device, B, device, run_predict::<B>(&a, device))
}

fn run_finetune<B: Backend>(a: &FinetuneArgs, device: B::Device) -> Result<()> {
    let mut cfg = FinetuneConfig::from_toml(&a.config)?;
    if a.max_steps.is_some() {
        cfg.train.max_steps = a.max_steps;
    }
    if a.max_minutes.is_some() {
        cfg.train.max_minutes = a.max_minutes;
    }
    if a.stop_after.is_some() {
        cfg.train.stop_after = a.stop_after;
    }
    let bar = crate::progress::bar(0);
    bar.set_style(crate::progress::style(
        "{spinner} finetune-qa [{elapsed_precise}] {wide_bar} step {pos}/{len} {msg}  ETA {eta}",
    ));
    let mut last_dev = String::new();
    let workers = a.device.training_workers();
    let s = openqa::finetune::<Autodiff<B>>(&cfg, &a.run, &device, workers, |r| {
        bar.set_length(r.total);
        bar.set_position(r.step);
        if let Some(em) = r.dev_em {
            last_dev = format!("dev EM {em:.2}");
            crate::commands::mt::say(&bar, format!("step {}: dev EM {em:.2}", r.step));
        }
        bar.set_message(format!("loss {:.3} {last_dev}", r.loss));
    })?;
    bar.finish_and_clear();
    if let Some(from) = s.resumed_from {
        eprintln!(
            "resumed from the checkpoint of step {from} in {}",
            a.run.join("checkpoint").display()
        );
    }
    eprintln!(
        "trained {} steps in {:.1} min; best dev EM {:.2} at step {} (saved to {}); {} training questions had no gold span in their top-k",
        s.steps,
        s.minutes,
        s.best_dev_em,
        s.best_step,
        a.run.join("best").display(),
        s.no_gold
    );
    Ok(())
}

fn run_predict<B: Backend>(a: &PredictArgs, device: B::Device) -> Result<()> {
    let dir = ragl_model::hub::resolve(&a.checkpoint)?;
    if ragl_realm::released::is_released(&dir) {
        return run_released::<B>(a, &dir, device);
    }
    let Some(passages_path) = &a.passages else {
        crate::bad_input!(
            "--passages is required with a ragl QA model (the index's passages JSONL)"
        );
    };
    let k = a.k.unwrap_or(4);
    let l = openqa::load::<B>(&a.checkpoint, &device)
        .with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let index_dir = a.index.clone().unwrap_or(l.meta.index.clone());
    let index = ragl_index::Index::open(&index_dir)?;
    let passages = openqa::passages_by_row(passages_path, &index)?;
    let input = ragl_core::read::Input::from_arg(&a.questions);
    let format = ragl_eval::qa_data::GoldFormat::detect(&input)?;
    let exs = ragl_eval::qa_data::read_gold(&input, format)?;
    let questions: Vec<&str> = exs.iter().map(|e| e.question.as_str()).collect();
    let bar = crate::progress::bar(questions.len() as u64);
    bar.set_style(
        crate::progress::style(
            "{spinner} predict-qa [{elapsed_precise}] {wide_bar} {pos}/{len} questions  {rate}  ETA {eta}",
        ),
    );
    let t = Instant::now();
    let preds = openqa::predict(&l, &index, &passages, &questions, k, a.batch_size, |n| {
        bar.inc(n as u64)
    })?;
    let secs = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    crate::write_output(&a.output, |w| {
        for (e, p) in exs.iter().zip(&preds) {
            let row = serde_json::json!({
                "id": e.id, "question": e.question, "prediction": p.text,
                "passage": p.passage, "score": p.score,
            });
            serde_json::to_writer(&mut *w, &row)?;
            writeln!(w)?;
        }
        Ok(())
    })?;
    let em = openqa::exact_match(&preds, &exs)?;
    eprintln!(
        "{} questions in {secs:.1}s ({:.1} questions/s), k {k}; EM {em:.2} → {}",
        exs.len(),
        exs.len() as f64 / secs,
        a.output.display()
    );
    Ok(())
}

/// `predict-qa` with a released REALM open-QA checkpoint.
fn run_released<B: Backend>(
    a: &PredictArgs,
    dir: &std::path::Path,
    device: B::Device,
) -> Result<()> {
    if a.passages.is_some() || a.index.is_some() {
        crate::bad_input!(
            "--passages and --index do not apply to a REALM checkpoint: it reads its own block_emb and block_records.npy"
        );
    }
    let t = Instant::now();
    let mut m = ragl_realm::released::Released::<B>::open(dir, &device)
        .with_context(|| format!("loading {}", dir.display()))?;
    if let Some(k) = a.k {
        if k == 0 {
            crate::bad_input!("--k must be at least 1 for a REALM checkpoint");
        }
        m.k = k.min(m.blocks.rows);
    }
    let load_secs = t.elapsed().as_secs_f64();
    let input = ragl_core::read::Input::from_arg(&a.questions);
    let format = ragl_eval::qa_data::GoldFormat::detect(&input)?;
    let exs = ragl_eval::qa_data::read_gold(&input, format)?;
    let bar = crate::progress::bar(exs.len() as u64);
    bar.set_style(crate::progress::style(
        "{spinner} predict-qa [{elapsed_precise}] {wide_bar} {pos}/{len} questions  {rate}  ETA {eta}",
    ));
    let t = Instant::now();
    let questions: Vec<&str> = exs.iter().map(|e| e.question.as_str()).collect();
    let answers = m.answer_many(&questions, |n| bar.inc(n as u64))?;
    let secs = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    crate::write_output(&a.output, |w| {
        for (e, p) in exs.iter().zip(&answers) {
            let row = serde_json::json!({
                "id": e.id, "question": e.question, "prediction": p.text,
                "block": p.block, "score": p.score,
                "retrieved": p.retrieved.iter().map(|r| r.0).collect::<Vec<_>>(),
                "retrieval_scores": p.retrieved.iter().map(|r| r.1).collect::<Vec<_>>(),
            });
            serde_json::to_writer(&mut *w, &row)?;
            writeln!(w)?;
        }
        Ok(())
    })?;
    let preds: Vec<openqa::Prediction> = answers
        .iter()
        .map(|p| openqa::Prediction {
            text: p.text.clone(),
            passage: Some(p.block.to_string()),
            score: p.score,
        })
        .collect();
    let em = openqa::exact_match(&preds, &exs)?;
    eprintln!(
        "{} questions in {secs:.1}s ({:.1} questions/s; load {load_secs:.1}s), {} blocks, k {}; EM {em:.2} → {}",
        exs.len(),
        exs.len() as f64 / secs,
        m.blocks.rows,
        m.k,
        a.output.display()
    );
    Ok(())
}
