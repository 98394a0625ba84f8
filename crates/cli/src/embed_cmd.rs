//! `ragl embed`: JSONL texts → `.npy` embeddings + `.ids`, with a progress bar.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use ragl_core::read::Input;
use ragl_model::checkpoint;
use ragl_model::encode::{Encoder, Pooling, embed_jsonl};
use ragl_model::tokenizer::TextTokenizer;

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
    /// cls, mean, or auto (mean for sentence-transformers checkpoints, else cls).
    #[arg(long, default_value = "auto")]
    pooling: String,
    /// L2-normalise the vectors: yes, no, or auto (yes when the sentence-transformers
    /// modules.json lists a Normalize module, as all-MiniLM-L6-v2's does).
    #[arg(long, default_value = "auto", value_parser = ["auto", "yes", "no"])]
    normalize: String,
    /// Maximum tokens per text (longer texts are truncated and counted).
    #[arg(long, default_value_t = 256)]
    max_len: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Skip (and count) records with an empty text instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
}

fn pooling_for(model: &Path, arg: &str) -> Result<Pooling> {
    if arg != "auto" {
        return arg
            .parse()
            .map_err(|e: String| anyhow::Error::new(crate::BadInput(e)));
    }
    let st = model.join("1_Pooling/config.json");
    let mean = std::fs::read_to_string(st)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["pooling_mode_mean_tokens"].as_bool())
        .unwrap_or(false);
    Ok(if mean { Pooling::Mean } else { Pooling::Cls })
}

pub fn run(a: EmbedArgs) -> Result<()> {
    crate::backend::with_device!(a.device, B, device, run_on::<B>(&a, device))
}

fn run_on<B: Backend>(a: &EmbedArgs, device: B::Device) -> Result<()> {
    let pooling = pooling_for(&a.model, &a.pooling)?;
    if a.max_len < 2 || a.batch_size == 0 {
        crate::bad_input!("--max-len must be at least 2 and --batch-size at least 1");
    }
    let ckpt = checkpoint::load::<B>(&a.model, &device)
        .with_context(|| format!("loading {}", a.model.display()))?;
    if a.max_len > ckpt.config.max_position_embeddings {
        crate::bad_input!(
            "--max-len {} exceeds the model's max_position_embeddings {}",
            a.max_len,
            ckpt.config.max_position_embeddings
        );
    }
    if !ckpt.report.unused.is_empty() {
        eprintln!(
            "note: {} tensor(s) in the checkpoint are not used by BertModel: {}",
            ckpt.report.unused.len(),
            ckpt.report.unused.join(", ")
        );
    }
    let tok = TextTokenizer::from_dir(&a.model, a.max_len)?;
    let mut encoder = Encoder::new(ckpt.bert, tok, pooling, device);
    // burn-flex keeps one batch on about one core: run one batch per core on the CPU.
    encoder.concurrent_batches = match a.device {
        DeviceSpec::Cpu => rayon::current_num_threads(),
        DeviceSpec::Cuda(_) => 1,
    };
    encoder.normalize = match a.normalize.as_str() {
        "yes" => true,
        "no" => false,
        _ => std::fs::read_to_string(a.model.join("modules.json"))
            .is_ok_and(|m| m.contains("models.Normalize")),
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} embed [{elapsed_precise}] {wide_bar} {pos}/{len} texts  {per_sec}  ETA {eta}")
            .expect("template"),
    );
    let t = Instant::now();
    let input = Input::from_arg(&a.input);
    let s = embed_jsonl(
        &encoder,
        &input,
        &a.output,
        a.batch_size,
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
        a.max_len,
        s.skipped
    );
    eprintln!(
        "wrote {} and {}",
        a.output.display(),
        a.output.with_extension("ids").display()
    );
    Ok(())
}
