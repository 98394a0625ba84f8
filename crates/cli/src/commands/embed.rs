//! `ragl embed`: JSONL texts → `.npy` embeddings + `.ids`, with a progress bar.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;

use ragl_core::read::Input;
use ragl_model::checkpoint::LoadReport;
use ragl_model::encode::{Encoder, EncoderSpec, Pooling, embed_jsonl};

use crate::backend::DeviceSpec;

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// HF checkpoint directory (config.json, model.safetensors, tokenizer.json or vocab.txt).
    #[arg(long)]
    model: PathBuf,
    /// JSONL of {"id","text"} or {"id","title","text"}; `-` reads standard input.
    #[arg(long)]
    input: PathBuf,
    /// Output `.npy` ([n, dim] float32, readable by numpy.load); ids go to the same path
    /// with the extension `.ids`, one per line, in the same order.
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    enc: EncoderArgs,
    /// Skip (and count) records with an empty text instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
}

/// How passages and queries are encoded.
#[derive(clap::Args, Clone)]
pub struct EncoderArgs {
    /// cls, mean, or auto (mean for sentence-transformers checkpoints, else cls).
    #[arg(long, default_value = "auto")]
    pub pooling: String,
    /// L2-normalise the vectors: yes, no, or auto (yes when the sentence-transformers
    /// modules.json lists a Normalize module, as all-MiniLM-L6-v2's does).
    #[arg(long, default_value = "auto", value_parser = ["auto", "yes", "no"])]
    pub normalize: String,
    /// Maximum tokens per text (longer texts are truncated and counted).
    #[arg(long, default_value_t = 256)]
    pub max_len: usize,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

impl EncoderArgs {
    pub fn spec(&self, model: &Path) -> Result<EncoderSpec> {
        Ok(EncoderSpec::resolve(
            model,
            pooling_arg(&self.pooling)?,
            normalize_arg(&self.normalize),
            self.max_len,
        ))
    }
}

/// `auto` → None (resolved from the checkpoint), else the parsed value.
pub fn pooling_arg(arg: &str) -> Result<Option<Pooling>> {
    if arg == "auto" {
        return Ok(None);
    }
    arg.parse()
        .map(Some)
        .map_err(|e: String| anyhow::Error::new(crate::BadInput(e)))
}

pub fn normalize_arg(arg: &str) -> Option<bool> {
    match arg {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Loads an encoder for the CLI: bad sizes are exit-2 errors, unused tensors a note, and on
/// the CPU one batch runs per core (burn-flex keeps one batch on about one core).
pub fn load_encoder<B: Backend>(
    spec: &EncoderSpec,
    device: &DeviceSpec,
    dev: &B::Device,
) -> Result<(Encoder<B>, LoadReport)> {
    if spec.max_len < 2 {
        crate::bad_input!("--max-len must be at least 2");
    }
    let (mut encoder, report) = spec
        .load::<B>(dev)
        .with_context(|| format!("loading {}", spec.model.display()))?;
    if !report.unused.is_empty() {
        eprintln!(
            "note: {} tensor(s) in the checkpoint are not used by BertModel: {}",
            report.unused.len(),
            report.unused.join(", ")
        );
    }
    encoder.concurrent_batches = match device {
        DeviceSpec::Cpu => rayon::current_num_threads(),
        DeviceSpec::Cuda(_) => 1,
    };
    Ok((encoder, report))
}

pub fn run(a: EmbedArgs) -> Result<()> {
    crate::backend::with_device!(a.enc.device, B, device, run_on::<B>(&a, device))
}

fn run_on<B: Backend>(a: &EmbedArgs, device: B::Device) -> Result<()> {
    if a.enc.batch_size == 0 {
        crate::bad_input!("--batch-size must be at least 1");
    }
    let spec = a.enc.spec(&a.model)?;
    let (encoder, _) = load_encoder::<B>(&spec, &a.enc.device, &device)?;
    let pooling = spec.pooling;
    let bar = crate::progress::bar(0);
    bar.set_style(crate::progress::style(
        "{spinner} embed [{elapsed_precise}] {wide_bar} {pos}/{len} texts  {rate}  ETA {eta}",
    ));
    let t = Instant::now();
    let input = Input::from_arg(&a.input);
    let s = embed_jsonl(
        &encoder,
        &input,
        &a.output,
        a.enc.batch_size,
        a.skip_invalid,
        |p| {
            if let Some(total) = p.total {
                bar.set_length(total);
            }
            bar.set_position(p.done);
        },
    )?;
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "embedded {} texts (dim {}, {:?} pooling{}) in {:.1}s: {:.1} texts/s; {} truncated to {} tokens; {} skipped",
        s.rows,
        s.dim,
        pooling,
        if encoder.normalize {
            ", L2-normalised"
        } else {
            ""
        },
        secs,
        s.rows as f64 / secs,
        s.truncated,
        a.enc.max_len,
        s.skipped
    );
    eprintln!(
        "wrote {} and {}",
        a.output.display(),
        a.output.with_extension("ids").display()
    );
    Ok(())
}
