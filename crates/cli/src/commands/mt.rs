//! `ragl mt train|translate|average`: the translation model kNN-MT builds on.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use indicatif::ProgressBar;
use ragl_core::read::{Input, Lines};
use ragl_mt::beam::{BeamConfig, NoHook};
use ragl_mt::train::{Event, RunConfig};

use crate::backend::DeviceSpec;

#[derive(clap::Subcommand)]
pub enum MtCommand {
    /// Train (or resume) a transformer from a TOML config; checkpoints go to --run.
    Train(TrainArgs),
    /// Translate lines of source text (stdin → stdout by default).
    Translate(TranslateArgs),
    /// Average the weights of a run's last N checkpoints into a new model directory.
    Average(AverageArgs),
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// TOML run config (see configs/mt/); relative data paths are relative to the current
    /// directory.
    #[arg(long)]
    config: PathBuf,
    /// Run directory: config.json, metrics.csv, checkpoints/, last. An existing run resumes
    /// from its last checkpoint.
    #[arg(long)]
    run: PathBuf,
    /// Override the config's limits for this invocation.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Stop after this many minutes (overrides the config; a checkpoint is written).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Stop after this many epochs (overrides the config).
    #[arg(long)]
    max_epochs: Option<u64>,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

#[derive(clap::Args)]
pub struct BeamArgs {
    /// Beam size (1: greedy).
    #[arg(long, default_value_t = 5)]
    pub beam: usize,
    /// Length penalty: hypotheses are ranked by log-probability / length^this.
    #[arg(long, default_value_t = 1.0)]
    pub len_penalty: f64,
    /// Sentences decoded together.
    #[arg(long, default_value_t = 32)]
    pub batch_sentences: usize,
}

impl BeamArgs {
    pub fn config(&self) -> Result<BeamConfig> {
        if self.beam == 0 || self.batch_sentences == 0 {
            crate::bad_input!("--beam and --batch-sentences must be at least 1");
        }
        Ok(BeamConfig {
            beam: self.beam,
            len_penalty: self.len_penalty,
            batch_sentences: self.batch_sentences,
            ..BeamConfig::default()
        })
    }
}

#[derive(clap::Args)]
pub struct TranslateArgs {
    /// A model directory, or a run directory (its last checkpoint).
    #[arg(long)]
    model: PathBuf,
    /// Source sentences, one a line; `-` is standard input.
    #[arg(short, long, default_value = "-")]
    input: PathBuf,
    /// Translations, one a line; `-` (the default) is standard output.
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    #[command(flatten)]
    beam: BeamArgs,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

#[derive(clap::Args)]
pub struct AverageArgs {
    /// A `ragl mt train` run directory.
    #[arg(long)]
    run: PathBuf,
    /// How many of the newest checkpoints to average.
    #[arg(long, default_value_t = 5)]
    last: usize,
    /// The averaged model directory.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(c: MtCommand) -> Result<()> {
    match c {
        MtCommand::Train(a) => {
            crate::backend::with_device!(a.device, B, device, train::<B>(&a, device))
        }
        MtCommand::Translate(a) => {
            crate::backend::with_device!(a.device, B, device, translate::<B>(&a, device))
        }
        MtCommand::Average(a) => average(&a),
    }
}

fn train<B: Backend>(a: &TrainArgs, device: B::Device) -> Result<()> {
    let mut cfg = RunConfig::from_toml(&a.config)?;
    if a.max_steps.is_some() {
        cfg.train.max_steps = a.max_steps;
    }
    if a.max_minutes.is_some() {
        cfg.train.max_minutes = a.max_minutes;
    }
    if a.max_epochs.is_some() {
        cfg.train.max_epochs = a.max_epochs;
    }
    let bar = crate::progress::bar(cfg.train.max_steps.unwrap_or(0));
    bar.set_style(crate::progress::style(
        "{spinner} mt train [{elapsed_precise}] {wide_bar} step {pos}/{len} {msg}",
    ));
    let mut last_dev = String::new();
    let workers = a.device.training_workers();
    let st = ragl_mt::train::train::<Autodiff<B>>(&cfg, &a.run, &device, workers, |e| match e {
        Event::Started {
            resumed_from,
            pairs,
            dropped,
            batches_per_epoch,
            parameters,
        } => {
            say(
                &bar,
                format!(
                    "{} {} pairs ({} longer than {} subwords left out), {} batches/epoch, {:.2}M parameters",
                    match resumed_from {
                        Some(s) => format!("resuming at step {s}:"),
                        None => "training:".into(),
                    },
                    pairs,
                    dropped,
                    cfg.data.max_len,
                    batches_per_epoch,
                    parameters as f64 / 1e6
                ),
            );
        }
        Event::Step {
            step,
            epoch,
            lr,
            loss,
            nll,
            tokens_per_sec,
        } => {
            bar.set_position(step);
            if bar.is_hidden() && step.is_multiple_of(100) {
                eprintln!(
                    "step {step} epoch {epoch} loss {loss:.3} ppl {:.1} lr {lr:.2e} {tokens_per_sec:.0} tok/s",
                    nll.exp()
                );
            }
            bar.set_message(format!(
                "epoch {epoch} loss {loss:.3} ppl {:.1} lr {lr:.2e} {tokens_per_sec:.0} tok/s{last_dev}",
                nll.exp()
            ));
        }
        Event::Dev { step, nll } => {
            last_dev = format!(" dev ppl {:.2}", nll.exp());
            say(
                &bar,
                format!("step {step}: dev nll {nll:.4} ppl {:.2}", nll.exp()),
            );
        }
        Event::Saved { step, dir } => {
            say(&bar, format!("step {step}: saved {}", dir.display()));
        }
    })?;
    bar.finish_and_clear();
    eprintln!(
        "trained to step {} (epoch {}, {:.1} min, {} target tokens); last checkpoint: {}",
        st.step,
        st.epoch,
        st.elapsed_secs / 60.0,
        st.tokens,
        ragl_mt::checkpoint::resolve(&a.run)?.display()
    );
    Ok(())
}

fn translate<B: Backend>(a: &TranslateArgs, device: B::Device) -> Result<()> {
    let beam = a.beam.config()?;
    let m = ragl_mt::checkpoint::load::<B>(&a.model, &device)
        .with_context(|| format!("loading {}", a.model.display()))?;
    let lines = Lines::read_all(&Input::from_arg(&a.input))?;
    let t = Instant::now();
    let bar = crate::progress::bar(lines.len() as u64);
    bar.set_style(crate::progress::style(
        "{spinner} translate [{elapsed_precise}] {wide_bar} {pos}/{len} sentences  ETA {eta}",
    ));
    let mut enc = Vec::with_capacity(lines.len());
    for l in &lines {
        let mut ids = m.vocab.encode(l)?;
        ids.push(ragl_mt::vocab::EOS);
        enc.push(ids);
    }
    let out =
        ragl_mt::beam::translate_ids(&m.model, &enc, &beam, &mut NoHook, |n| bar.inc(n as u64));
    bar.finish_and_clear();
    let tokens: usize = out.iter().map(|o| o.len() + 1).sum();
    let text: Vec<String> = out
        .iter()
        .map(|o| m.vocab.decode(o))
        .collect::<ragl_mt::Result<_>>()?;
    let secs = t.elapsed().as_secs_f64();
    crate::write_output(&a.output, |w| {
        for s in &text {
            writeln!(w, "{s}")?;
        }
        Ok(())
    })?;
    eprintln!(
        "translated {} sentences in {:.1}s ({:.1} sentences/s, {:.0} output tokens/s, beam {})",
        lines.len(),
        secs,
        lines.len() as f64 / secs,
        tokens as f64 / secs,
        beam.beam
    );
    Ok(())
}

fn average(a: &AverageArgs) -> Result<()> {
    type B = burn::backend::Flex;
    let device = Default::default();
    let dirs = ragl_mt::train::last_checkpoints(&a.run, a.last)?;
    if dirs.is_empty() {
        crate::bad_input!("{}: no checkpoints", a.run.display());
    }
    let mut models = Vec::new();
    let mut first = None;
    for d in &dirs {
        let m = ragl_mt::checkpoint::load::<B>(d, &device)?;
        models.push(m.model);
        first.get_or_insert((m.config, m.vocab));
    }
    let (config, vocab) = first.expect("one model");
    let avg = ragl_mt::checkpoint::average(models);
    let staging = a.out.with_file_name(format!(
        ".{}.partial",
        a.out.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    let _staging = ragl_core::atomic::StagingGuard::new(&staging);
    let fp = ragl_mt::checkpoint::write(&avg, &config, &vocab, &staging)?;
    ragl_core::atomic::publish_dir(&staging, &a.out)?;
    eprintln!(
        "averaged {} checkpoints ({} .. {}) into {} (fingerprint {fp})",
        dirs.len(),
        dirs[0].display(),
        dirs[dirs.len() - 1].display(),
        a.out.display()
    );
    Ok(())
}

/// A line above the bar, or on stderr when the bar is hidden (not a terminal: a log file),
/// where indicatif would drop it.
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
