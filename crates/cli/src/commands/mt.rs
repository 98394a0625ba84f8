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
    /// Score given translations by teacher forcing: per-token log-probabilities as JSONL.
    Score(ScoreArgs),
    /// Token ids of lines of text, as the model's tokenizer gives them (one line of ids each).
    Tokenize(TokenizeArgs),
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
    /// Beam size (1: greedy). Default: the model's own (a Marian checkpoint's
    /// generation config), else 5.
    #[arg(long)]
    pub beam: Option<usize>,
    /// Length penalty: hypotheses are ranked by log-probability / length^this
    /// (default: the model's, else 1.0).
    #[arg(long)]
    pub len_penalty: Option<f64>,
    /// Stop a sentence once it has `beam` finished hypotheses (true: fairseq's rule) or go
    /// on while a live one could still win (false: transformers' default). Default: the
    /// model's (true for ragl's models, the generation config's for Marian).
    #[arg(long)]
    pub early_stopping: Option<bool>,
    /// Longest output in subwords, `</s>` included (default: 1.2 × source + 10 for ragl's
    /// models, the generation config's max_length − 1 for Marian).
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Sentences decoded together.
    #[arg(long, default_value_t = 32)]
    pub batch_sentences: usize,
}

impl BeamArgs {
    /// The flags given, over the model's own defaults.
    pub fn config(&self, model: &BeamConfig) -> Result<BeamConfig> {
        if self.beam == Some(0) || self.batch_sentences == 0 || self.max_len == Some(0) {
            crate::bad_input!("--beam, --max-len and --batch-sentences must be at least 1");
        }
        let mut c = model.clone();
        c.beam = self.beam.unwrap_or(c.beam);
        c.len_penalty = self.len_penalty.unwrap_or(c.len_penalty);
        c.early_stopping = self.early_stopping.unwrap_or(c.early_stopping);
        if let Some(n) = self.max_len {
            c.max_len_a = 0.0;
            c.max_len_b = n;
        }
        c.batch_sentences = self.batch_sentences;
        Ok(c)
    }
}

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// A model: see `ragl mt translate --model`.
    #[arg(long)]
    model: PathBuf,
    /// Source sentences, one a line.
    #[arg(long)]
    source: PathBuf,
    /// Their translations, line-aligned.
    #[arg(long)]
    target: PathBuf,
    /// JSONL, one object a pair: `line`, `tokens` (target ids, `</s>` last), `log_probs`,
    /// `score` (their sum); `-` is standard output.
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    /// Also write every position's raw output logits, `[target tokens, vocab]` f32 .npy.
    #[arg(long)]
    logits: Option<PathBuf>,
    /// Pairs scored together.
    #[arg(long, default_value_t = 16)]
    batch_sentences: usize,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

#[derive(clap::Args)]
pub struct TokenizeArgs {
    /// A model: see `ragl mt translate --model`.
    #[arg(long)]
    model: PathBuf,
    /// Lines of text; `-` is standard input.
    #[arg(short, long, default_value = "-")]
    input: PathBuf,
    /// Space-separated ids, one line each; `-` is standard output.
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    /// Tokenize as target text (no `</s>`; a Marian model's target SentencePiece).
    #[arg(long)]
    target: bool,
}

#[derive(clap::Args)]
pub struct TranslateArgs {
    /// A model: a ragl model or run directory (its last checkpoint), a Hugging Face Marian
    /// directory (opus-mt), or a model id in the local Hugging Face cache
    /// (`Helsinki-NLP/opus-mt-de-en`; ragl never downloads).
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
        MtCommand::Score(a) => {
            crate::backend::with_device!(a.device, B, device, score::<B>(&a, device))
        }
        MtCommand::Tokenize(a) => tokenize(&a),
    }
}

fn score<B: Backend>(a: &ScoreArgs, device: B::Device) -> Result<()> {
    let m = ragl_mt::checkpoint::load::<B>(&a.model, &device)
        .with_context(|| format!("loading {}", a.model.display()))?;
    let pairs = ragl_mt::data::read_parallel(&a.source, &a.target)?;
    let bar = crate::progress::bar(pairs.len() as u64);
    let mut npy = match &a.logits {
        Some(p) => Some(ragl_core::npy::NpyWriter::create(p, m.model.vocab_size())?),
        None => None,
    };
    let mut failed: Option<ragl_core::Error> = None;
    let mut sink = |_: usize, rows: &[f32]| {
        if let Some(w) = npy.as_mut() {
            for row in rows.chunks(m.model.vocab_size()) {
                if let Err(e) = w.write_row(row)
                    && failed.is_none()
                {
                    failed = Some(e);
                }
            }
        }
    };
    let want_logits = a.logits.is_some();
    let scored = ragl_mt::score::score(
        &m,
        &pairs,
        a.batch_sentences,
        want_logits.then_some(&mut sink as &mut dyn FnMut(usize, &[f32])),
        |n| bar.inc(n as u64),
    )?;
    bar.finish_and_clear();
    if let Some(e) = failed {
        return Err(e.into());
    }
    if let Some(w) = npy {
        w.finish()?;
    }
    crate::write_output(&a.output, |w| {
        for (i, s) in scored.iter().enumerate() {
            let total: f64 = s.log_probs.iter().map(|&x| f64::from(x)).sum();
            let line = serde_json::json!({
                "line": i + 1, "tokens": s.tokens, "log_probs": s.log_probs, "score": total,
            });
            writeln!(w, "{line}")?;
        }
        Ok(())
    })?;
    Ok(())
}

fn tokenize(a: &TokenizeArgs) -> Result<()> {
    type B = burn::backend::Flex;
    let m = ragl_mt::checkpoint::load::<B>(&a.model, &Default::default())
        .with_context(|| format!("loading {}", a.model.display()))?;
    let lines = Lines::read_all(&Input::from_arg(&a.input))?;
    let mut out = Vec::with_capacity(lines.len());
    for l in &lines {
        out.push(ragl_mt::score::tokenize(&m, l, a.target)?);
    }
    crate::write_output(&a.output, |w| {
        for ids in &out {
            let s: Vec<String> = ids.iter().map(u32::to_string).collect();
            writeln!(w, "{}", s.join(" "))?;
        }
        Ok(())
    })?;
    Ok(())
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
    let m = ragl_mt::checkpoint::load::<B>(&a.model, &device)
        .with_context(|| format!("loading {}", a.model.display()))?;
    let beam = a.beam.config(&m.generation)?;
    let lines = Lines::read_all(&Input::from_arg(&a.input))?;
    let t = Instant::now();
    let bar = crate::progress::bar(lines.len() as u64);
    bar.set_style(crate::progress::style(
        "{spinner} translate [{elapsed_precise}] {wide_bar} {pos}/{len} sentences  ETA {eta}",
    ));
    let mut enc = Vec::with_capacity(lines.len());
    for l in &lines {
        enc.push(m.vocab.encode_source(l)?);
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
