//! `ragl knnlm build|eval`: kNN-LM datastores over text and perplexity with them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::Backend;
use ragl_index::artifact::IndexConfig;
use ragl_index::hnsw::HnswConfig;
use ragl_index::{Dtype, Metric};
use ragl_knn::datastore::Datastore;
use ragl_knn::lm::{Grid, LmBuildConfig};
use ragl_lm::score::KeyPoint;
use ragl_lm::windows::Window;

use crate::backend::DeviceSpec;
use crate::commands::lm::{TextArgs, load};

#[derive(clap::Subcommand)]
pub enum KnnlmCommand {
    /// Run a language model over a text and index every position's context vector with the
    /// token that follows it.
    Build(BuildArgs),
    /// Perplexity of the language model alone and interpolated with the datastore.
    Eval(EvalArgs),
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// A GPT-2 checkpoint directory or model id (the model that will score with it).
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    text: TextArgs,
    /// The datastore directory to write.
    #[arg(long)]
    out: PathBuf,
    /// The key: the last block's feed-forward input (after its LayerNorm; the kNN-LM paper's
    /// best) or the LM head's input.
    #[arg(long, default_value = "ffn-input")]
    key: KeyPoint,
    /// exact (default; every neighbour exact) or hnsw.
    #[arg(long, default_value = "exact", value_parser = ["exact", "hnsw"])]
    kind: String,
    /// Keys per resumable chunk: a killed build restarts from its last complete chunk.
    #[arg(long, default_value_t = 65536)]
    chunk_keys: usize,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The language model the datastore was built with.
    #[arg(long)]
    model: PathBuf,
    /// A datastore from `ragl knnlm build` with this model.
    #[arg(long)]
    datastore: PathBuf,
    #[command(flatten)]
    text: TextArgs,
    /// Neighbours (comma-separated for a sweep).
    #[arg(long, value_delimiter = ',', default_value = "1024")]
    k: Vec<usize>,
    /// Weight of p_kNN: p = λ·p_kNN + (1−λ)·p_LM (comma-separated for a sweep).
    #[arg(long, value_delimiter = ',', default_value = "0.25")]
    lambda: Vec<f32>,
    /// Temperature T of p_kNN(y) ∝ Σ exp(−d/T), d squared L2 (comma-separated for a sweep).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    temperature: Vec<f32>,
    /// HNSW search beam (efSearch), for an HNSW datastore.
    #[arg(long)]
    ef: Option<usize>,
    /// Print a JSON report instead of the table.
    #[arg(long)]
    json: bool,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

pub fn run(c: KnnlmCommand) -> Result<()> {
    match c {
        KnnlmCommand::Build(a) => {
            crate::backend::with_device!(a.device, B, device, build::<B>(&a, device))
        }
        KnnlmCommand::Eval(a) => {
            crate::backend::with_device!(a.device, B, device, eval::<B>(&a, device))
        }
    }
}

fn build<B: Backend>(a: &BuildArgs, device: B::Device) -> Result<()> {
    if a.chunk_keys == 0 {
        crate::bad_input!("--chunk-keys must be at least 1");
    }
    let m = load::<B>(&a.model, &device)?;
    let windows = a.text.windows(&m)?;
    let index = match a.kind.as_str() {
        "exact" => IndexConfig::Exact { metric: Metric::L2 },
        _ => IndexConfig::Hnsw {
            metric: Metric::L2,
            hnsw: HnswConfig {
                dtype: Dtype::F32,
                ..HnswConfig::default()
            },
        },
    };
    let cfg = LmBuildConfig {
        index,
        key: a.key,
        max_len: windows.iter().map(|w| w.ids.len()).max().unwrap_or(0),
        stride: a.text.stride.unwrap_or(0),
        per_line: a.text.per_line,
        batch: a.text.batch_size,
        chunk_keys: a.chunk_keys,
    };
    let bar = crate::progress::bar(0);
    bar.set_style(crate::progress::style(
        "{spinner} {msg} [{elapsed_precise}] {wide_bar} {pos}/{len} keys  {rate}  ETA {eta}",
    ));
    let t = Instant::now();
    let r = ragl_knn::lm::build(
        &m,
        &a.text.text,
        &windows,
        &a.out,
        &cfg,
        rayon::current_num_threads(),
        |stage, p| {
            bar.set_message(match stage {
                ragl_index::build::Stage::Embed => "keys",
                ragl_index::build::Stage::Graph => "hnsw graph",
            });
            if let Some(total) = p.total {
                bar.set_length(total);
            }
            bar.set_position(p.done);
        },
    )?;
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "{} keys ({}-d, {:?}) from {} windows in {secs:.1}s ({:.0} keys/s{}) → {}",
        r.keys,
        m.model.d_model(),
        a.key,
        r.sentences,
        r.keys as f64 / secs,
        if r.resumed_keys > 0 {
            format!(", {} resumed", r.resumed_keys)
        } else {
            String::new()
        },
        a.out.display()
    );
    Ok(())
}

fn eval<B: Backend>(a: &EvalArgs, device: B::Device) -> Result<()> {
    let m = load::<B>(&a.model, &device)?;
    let ds = Datastore::open(&a.datastore, Some(&m.fingerprint))?;
    if ds.manifest.config["model"] != "lm" {
        crate::bad_input!(
            "{} is a kNN-MT datastore (decoder states of a translation model), not a kNN-LM one",
            a.datastore.display()
        );
    }
    let key: KeyPoint =
        serde_json::from_value(ds.manifest.config["build"]["key"].clone()).unwrap_or_default();
    if let Some(ef) = a.ef {
        ds.index.set_expansion_search(ef);
    }
    let windows = a.text.windows(&m)?;
    let grid = Grid {
        ks: a.k.clone(),
        lambdas: a.lambda.clone(),
        temperatures: a.temperature.clone(),
    };
    if grid.ks.contains(&0) || grid.lambdas.iter().any(|l| !(0.0..=1.0).contains(l)) {
        crate::bad_input!("--k must be at least 1 and --lambda within [0, 1]");
    }
    let total: usize = windows.iter().map(Window::scored).sum();
    let bar = crate::progress::bar(total as u64);
    bar.set_style(crate::progress::style(
        "{spinner} knnlm eval [{elapsed_precise}] {wide_bar} {pos}/{len} tokens  {rate}  ETA {eta}",
    ));
    let t = Instant::now();
    let e = ragl_knn::lm::evaluate(&m, &ds, &windows, &grid, key, a.text.batch_size, |n| {
        bar.inc(n as u64)
    })?;
    let secs = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let best = e.best().copied().expect("a non-empty grid");
    let report = serde_json::json!({
        "model": m.dir, "datastore": a.datastore, "keys": ds.len(), "key": key,
        "text": a.text.text, "tokens": e.lm.tokens,
        "lm": {"nll": e.lm.nll, "perplexity": e.lm.perplexity()},
        "settings": e.settings.iter().map(|s| serde_json::json!({
            "k": s.k, "lambda": s.lambda, "temperature": s.temperature,
            "perplexity": s.perplexity.perplexity(),
        })).collect::<Vec<_>>(),
        "best": {"k": best.k, "lambda": best.lambda, "temperature": best.temperature,
                 "perplexity": best.perplexity.perplexity()},
        "seconds": secs, "model_seconds": e.model_secs, "search_seconds": e.search_secs,
        "tokens_per_second": e.lm.tokens as f64 / secs,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} tokens, datastore of {} keys ({key:?})",
        e.lm.tokens,
        ds.len()
    );
    println!("{:>6} {:>6} {:>6} {:>12}", "k", "λ", "T", "perplexity");
    println!(
        "{:>6} {:>6} {:>6} {:>12.3}",
        "-",
        "0",
        "-",
        e.lm.perplexity()
    );
    for s in &e.settings {
        println!(
            "{:>6} {:>6} {:>6} {:>12.3}",
            s.k,
            s.lambda,
            s.temperature,
            s.perplexity.perplexity()
        );
    }
    println!(
        "best: k {} λ {} T {}: perplexity {:.3} vs {:.3} ({:+.1}%); {:.0} tokens/s (model {:.1}s, search {:.1}s)",
        best.k,
        best.lambda,
        best.temperature,
        best.perplexity.perplexity(),
        e.lm.perplexity(),
        100.0 * (best.perplexity.perplexity() / e.lm.perplexity() - 1.0),
        e.lm.tokens as f64 / secs,
        e.model_secs,
        e.search_secs
    );
    Ok(())
}
