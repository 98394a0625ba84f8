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
    /// A QA model directory (`RUN/best` of `ragl finetune-qa`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The dense index (default: the one the model was trained against).
    #[arg(long)]
    index: Option<PathBuf>,
    /// Passages JSONL of the index.
    #[arg(long)]
    passages: PathBuf,
    /// Questions in any gold format `ragl eval qa` reads; `-` (the default) is standard input.
    #[arg(short = 'i', long, default_value = "-")]
    questions: PathBuf,
    /// Passages retrieved and read per question (0: closed-book, the question alone).
    #[arg(long, default_value_t = 4)]
    k: usize,
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
    let l = openqa::load::<B>(&a.checkpoint, &device)
        .with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let index_dir = a.index.clone().unwrap_or(l.meta.index.clone());
    let index = ragl_index::Index::open(&index_dir)?;
    let passages = openqa::passages_by_row(&a.passages, &index)?;
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
    let preds = openqa::predict(&l, &index, &passages, &questions, a.k, a.batch_size, |n| {
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
        "{} questions in {secs:.1}s ({:.1} questions/s), k {}; EM {em:.2} → {}",
        exs.len(),
        exs.len() as f64 / secs,
        a.k,
        a.output.display()
    );
    Ok(())
}
