//! `ragl lm perplexity`: a decoder-only language model (GPT-2 layout) scored on text.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use ragl_lm::windows::{Text, Window};
use ragl_model::gpt2::Gpt2Checkpoint;

use crate::backend::DeviceSpec;

#[derive(clap::Subcommand)]
pub enum LmCommand {
    /// Perplexity of a language model on a text (tokens, NLL, perplexity, tokens/s).
    Perplexity(PerplexityArgs),
    /// Train a GPT-2 of ragl's own from scratch on text (BPE learned from it); resumes.
    Train(TrainArgs),
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The run config (`configs/lm/*.toml`).
    #[arg(long)]
    config: PathBuf,
    /// The run directory (created; an existing run resumes from its last checkpoint).
    #[arg(long)]
    run: PathBuf,
    /// Stop after this many minutes (rerun the same command to continue).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

/// The text to score and how it is cut into windows.
#[derive(clap::Args, Clone)]
pub struct TextArgs {
    /// The text: one stream (default) or, with --per-line, one document per line; `-` is
    /// standard input.
    #[arg(long)]
    pub text: PathBuf,
    /// Each line is a document, scored alone after the model's BOS token (not scored).
    #[arg(long)]
    pub per_line: bool,
    /// Tokens per window (default: the model's context, n_positions).
    #[arg(long)]
    pub max_len: Option<usize>,
    /// A new window every this many tokens (default: half the window); every token is scored
    /// once, with at least max-len − stride tokens of context after the first window.
    #[arg(long)]
    pub stride: Option<usize>,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
}

impl TextArgs {
    /// Reads and tokenises the text into windows for `m`.
    pub fn windows<B: Backend>(&self, m: &Gpt2Checkpoint<B>) -> Result<Vec<Window>> {
        let ctx = m.config.n_positions;
        let max_len = self.max_len.unwrap_or(ctx);
        if max_len > ctx {
            crate::bad_input!("--max-len {max_len} is longer than the model's context ({ctx})");
        }
        if self.batch_size == 0 {
            crate::bad_input!("--batch-size must be at least 1");
        }
        let stride = self.stride.unwrap_or((max_len / 2).max(1));
        if stride == 0 || stride > max_len {
            crate::bad_input!("--stride must be between 1 and --max-len ({max_len})");
        }
        let input = ragl_core::read::Input::from_arg(&self.text);
        let text = if self.per_line {
            let lines: Vec<String> = ragl_core::read::Lines::open(&input)?
                .map(|l| l.map(|l| l.text))
                .collect::<std::result::Result<_, _>>()?;
            Text::Lines(lines.into_iter().filter(|l| !l.trim().is_empty()).collect())
        } else {
            Text::Stream(input.read_to_string()?)
        };
        let w =
            ragl_lm::windows::windows(&m.tokenizer, &text, m.config.bos_token_id, max_len, stride)?;
        if w.is_empty() {
            crate::bad_input!(
                "{}: no token to score (the text is empty{})",
                self.text.display(),
                if self.per_line {
                    ""
                } else {
                    ", or a single token"
                }
            );
        }
        Ok(w)
    }
}

#[derive(clap::Args)]
pub struct PerplexityArgs {
    /// A GPT-2 checkpoint directory (`config.json` with model_type gpt2, weights, tokenizer)
    /// or a model id in the local Hugging Face cache.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    text: TextArgs,
    /// Print a JSON object instead of the line.
    #[arg(long)]
    json: bool,
    /// Write every scored token's log-probability (natural log, f32) to this .npy file.
    #[arg(long)]
    log_probs: Option<PathBuf>,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

pub fn run(c: LmCommand) -> Result<()> {
    match c {
        LmCommand::Perplexity(a) => {
            crate::backend::with_device!(a.device, B, device, perplexity::<B>(&a, device))
        }
        LmCommand::Train(a) => crate::backend::with_device!(
            a.device,
            B,
            device,
            train::<burn::backend::Autodiff<B>>(&a, device)
        ),
    }
}

fn train<B: burn::tensor::backend::AutodiffBackend>(
    a: &TrainArgs,
    device: B::Device,
) -> Result<()> {
    let mut cfg = ragl_lm::train::RunConfig::from_toml(&a.config)?;
    if a.max_minutes.is_some() {
        cfg.train.max_minutes = a.max_minutes;
    }
    let bar = crate::progress::bar(cfg.train.steps);
    bar.set_style(crate::progress::style(
        "{spinner} lm train [{elapsed_precise}] {wide_bar} {pos}/{len} steps  {msg}  ETA {eta}",
    ));
    let st =
        ragl_lm::train::train::<B>(&cfg, &a.run, &device, rayon::current_num_threads(), |e| {
            use ragl_lm::train::Event;
            match e {
                Event::Started {
                    resumed_from,
                    tokens,
                    parameters,
                } => {
                    if let Some(s) = resumed_from {
                        bar.set_position(s);
                    }
                    bar.println(format!(
                        "{} parameters, {tokens} training tokens{}",
                        parameters,
                        resumed_from
                            .map(|s| format!(", resumed at step {s}"))
                            .unwrap_or_default()
                    ));
                }
                Event::Step {
                    step,
                    loss,
                    tokens_per_sec,
                    ..
                } => {
                    bar.set_position(step);
                    bar.set_message(format!("loss {loss:.3}  {tokens_per_sec:.0} tok/s"));
                }
                Event::Dev { step, perplexity } => {
                    bar.println(format!("step {step}: dev perplexity {perplexity:.2}"))
                }
                Event::Saved { .. } => {}
            }
        })?;
    bar.finish_and_clear();
    eprintln!(
        "step {} of {}, {} tokens in {:.1} min → {}",
        st.step,
        cfg.train.steps,
        st.tokens,
        st.elapsed_secs / 60.0,
        ragl_lm::train::resolve(&a.run).display()
    );
    Ok(())
}

/// Loads a GPT-2 for the CLI.
pub fn load<B: Backend>(model: &std::path::Path, device: &B::Device) -> Result<Gpt2Checkpoint<B>> {
    let dir = ragl_lm::train::resolve(&ragl_model::hub::resolve(model)?);
    ragl_model::gpt2::load::<B>(&dir, device).with_context(|| format!("loading {}", dir.display()))
}

fn perplexity<B: Backend>(a: &PerplexityArgs, device: B::Device) -> Result<()> {
    let m = load::<B>(&a.model, &device)?;
    let windows = a.text.windows(&m)?;
    let total: usize = windows.iter().map(Window::scored).sum();
    let bar = crate::progress::bar(total as u64);
    bar.set_style(crate::progress::style(
        "{spinner} perplexity [{elapsed_precise}] {wide_bar} {pos}/{len} tokens  {rate}  ETA {eta}",
    ));
    let t = Instant::now();
    let mut p = ragl_lm::score::Perplexity::default();
    let mut all = Vec::new();
    ragl_lm::score::score(&m.model, &windows, a.text.batch_size, None, |s| {
        for &l in &s.log_probs {
            p.add(l);
        }
        if a.log_probs.is_some() {
            all.extend_from_slice(&s.log_probs);
        }
        bar.inc(s.log_probs.len() as u64);
        Ok(())
    })?;
    let secs = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(path) = &a.log_probs {
        let mut w = ragl_core::npy::NpyWriter::create(path, 1)?;
        for l in &all {
            w.write_row(std::slice::from_ref(l))?;
        }
        w.finish()?;
    }
    let report = serde_json::json!({
        "model": m.dir, "text": a.text.text, "per_line": a.text.per_line,
        "windows": windows.len(), "tokens": p.tokens, "nll": p.nll,
        "perplexity": p.perplexity(), "seconds": secs, "tokens_per_second": p.tokens as f64 / secs,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} tokens in {} windows: NLL {:.4} nats/token, perplexity {:.3} ({:.0} tokens/s)",
            p.tokens,
            windows.len(),
            p.nll / p.tokens.max(1) as f64,
            p.perplexity(),
            p.tokens as f64 / secs
        );
    }
    Ok(())
}
