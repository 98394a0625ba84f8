//! `ragl knnmt build|eval`: kNN-MT datastores and decoding with them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use indicatif::ProgressBar;
use ragl_core::read::{Input, Lines};
use ragl_eval::bleu::{Bleu, BleuConfig};
use ragl_index::artifact::IndexConfig;
use ragl_index::build::Stage;
use ragl_index::hnsw::HnswConfig;
use ragl_index::{Dtype, Metric};
use ragl_knn::datastore::{self, BuildConfig, Datastore};
use ragl_knn::sweep::{self, Run, Setting};
use ragl_mt::beam::NoHook;
use ragl_mt::checkpoint::MtModel;

use crate::backend::DeviceSpec;
use crate::commands::mt::BeamArgs;

#[derive(clap::Subcommand)]
pub enum KnnmtCommand {
    /// Teacher-force a model over parallel text and index its decoder states.
    Build(BuildArgs),
    /// Translate with and without the datastore; print both BLEU scores and speeds.
    Eval(EvalArgs),
    /// Join the shards of a sharded build (`build --shard i/n`) into one datastore.
    Merge(MergeArgs),
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Model directory or run directory (the model that will decode with the datastore).
    #[arg(long)]
    model: PathBuf,
    /// Source side of the in-domain parallel text, one sentence a line.
    #[arg(long)]
    src: PathBuf,
    /// Target side, line-aligned with --src.
    #[arg(long)]
    tgt: PathBuf,
    /// The datastore directory to write.
    #[arg(long)]
    out: PathBuf,
    /// hnsw (default) or exact.
    #[arg(long, default_value = "hnsw", value_parser = ["hnsw", "exact"])]
    kind: String,
    /// Key storage: f16 (default; the keys live only inside the HNSW graph, half the size)
    /// or f32 (kept in `vectors.f32` too, which exact search and audits need).
    #[arg(long, default_value = "f16", value_parser = ["f16", "f32"])]
    keys: String,
    /// Build from the first fraction of the sentence pairs only (datastore-size curves).
    #[arg(long, default_value_t = 1.0)]
    fraction: f64,
    /// Build only shard i of n (`i/n`, 0-based) of the keys, as an exact datastore with
    /// f32 keys; `ragl knnmt merge` joins the shards.
    #[arg(long)]
    shard: Option<String>,
    /// Keys per resumable chunk: a killed build restarts from its last complete chunk.
    #[arg(long, default_value_t = BuildConfig::default().chunk_keys)]
    chunk_keys: usize,
    #[command(flatten)]
    graph: GraphArgs,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

#[derive(clap::Args)]
pub struct GraphArgs {
    /// Threads inserting into the HNSW graph (default: all). With 1 the graph is
    /// reproducible bit for bit; with more it depends on thread timing.
    #[arg(long)]
    graph_threads: Option<usize>,
}

impl GraphArgs {
    fn threads(&self) -> usize {
        self.graph_threads
            .unwrap_or_else(rayon::current_num_threads)
            .max(1)
    }
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shard datastores (all n of them, any order).
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The merged datastore directory.
    #[arg(long)]
    out: PathBuf,
    /// hnsw (default) or exact.
    #[arg(long, default_value = "hnsw", value_parser = ["hnsw", "exact"])]
    kind: String,
    /// Key storage, as for `build`.
    #[arg(long, default_value = "f16", value_parser = ["f16", "f32"])]
    keys: String,
    #[command(flatten)]
    graph: GraphArgs,
}

/// The index of a datastore: L2, HNSW with f16 keys inside the graph by default.
fn index_config(kind: &str, keys: &str) -> Result<IndexConfig> {
    let f16 = keys == "f16";
    Ok(match kind {
        "exact" if f16 => {
            crate::bad_input!("an exact datastore keeps f32 keys: add --keys f32")
        }
        "exact" => IndexConfig::Exact { metric: Metric::L2 },
        _ => IndexConfig::Hnsw {
            metric: Metric::L2,
            hnsw: HnswConfig {
                dtype: if f16 { Dtype::F16 } else { Dtype::F32 },
                graph_only: f16,
                ..HnswConfig::default()
            },
        },
    })
}

fn stage_bar() -> ProgressBar {
    let bar = crate::progress::bar(0);
    bar.set_style(crate::progress::style(
        "{spinner} {msg} [{elapsed_precise}] {wide_bar} {pos}/{len} keys  {rate}  ETA {eta}",
    ));
    bar
}

fn on_stage(bar: &ProgressBar) -> impl FnMut(Stage, ragl_core::progress::Progress) + Send + '_ {
    move |stage, p| {
        bar.set_message(match stage {
            Stage::Embed => "teacher-forcing",
            Stage::Graph => "hnsw graph",
        });
        if let Some(total) = p.total {
            bar.set_length(total);
        }
        bar.set_position(p.done);
    }
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The translation model the datastore was built from (model or run directory).
    #[arg(long)]
    model: PathBuf,
    /// A datastore from `ragl knnmt build` with this model.
    #[arg(long)]
    datastore: PathBuf,
    /// Source sentences, one a line; `-` is standard input.
    #[arg(short, long)]
    input: PathBuf,
    /// Reference translations, line-aligned with the input.
    #[arg(long = "ref")]
    reference: PathBuf,
    /// Neighbours retrieved per decoding step.
    #[arg(long, default_value_t = 8)]
    k: usize,
    /// Weight of the kNN distribution: p = λ·p_kNN + (1−λ)·p_MT.
    #[arg(long, default_value_t = 0.5)]
    lambda: f32,
    /// Temperature T of p_kNN(y) ∝ Σ exp(−d/T) (distances are squared L2).
    #[arg(long, default_value_t = 10.0)]
    temperature: f32,
    /// Evaluate every combination of these (comma-separated) instead of one setting.
    #[arg(long)]
    sweep: bool,
    /// With --sweep: the λ values, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.2,0.4,0.6,0.8")]
    lambdas: Vec<f32>,
    /// With --sweep: the k values, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    ks: Vec<usize>,
    /// With --sweep: the temperatures, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    temperatures: Vec<f32>,
    /// Only the first N sentences (a tuning subset).
    #[arg(long)]
    limit: Option<usize>,
    /// HNSW search beam (efSearch) for the datastore.
    #[arg(long)]
    ef: Option<usize>,
    /// Write the kNN-MT translations here (and the base ones to PATH.base); `-` is standard
    /// output (the table then goes to standard error, and no base file is written).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// With --sweep: a PNG of BLEU against λ, one line per (k, T), and the base model.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write the results (and the sweep table) as a JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print the JSON report on standard output instead of the table.
    #[arg(long)]
    json: bool,
    /// Skip the base-model decode (when its BLEU is already known, e.g. datastore-size
    /// curves); no base column or speed ratio then.
    #[arg(long, conflicts_with_all = ["plot", "output"])]
    no_base: bool,
    #[command(flatten)]
    beam: BeamArgs,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

pub fn run(c: KnnmtCommand) -> Result<()> {
    match c {
        KnnmtCommand::Build(a) => {
            crate::backend::with_device!(a.device, B, device, build::<B>(&a, device))
        }
        KnnmtCommand::Eval(a) => {
            crate::backend::with_device!(a.device, B, device, eval::<B>(&a, device))
        }
        KnnmtCommand::Merge(a) => merge(&a),
    }
}

fn load<B: Backend>(path: &std::path::Path, device: &B::Device) -> Result<MtModel<B>> {
    ragl_mt::checkpoint::load::<B>(path, device)
        .with_context(|| format!("loading {}", path.display()))
}

fn build<B: Backend>(a: &BuildArgs, device: B::Device) -> Result<()> {
    if !(a.fraction > 0.0 && a.fraction <= 1.0) {
        crate::bad_input!("--fraction must be in (0, 1]");
    }
    let m = load::<B>(&a.model, &device)?;
    let shard = a
        .shard
        .as_deref()
        .map(crate::commands::index::parse_shard)
        .transpose()?;
    if shard.is_some() && (a.kind != "exact" || a.keys != "f32") {
        crate::bad_input!(
            "a shard is built as an exact datastore: add --kind exact --keys f32, and choose the final kind in `ragl knnmt merge`"
        );
    }
    if a.chunk_keys == 0 {
        crate::bad_input!("--chunk-keys must be at least 1");
    }
    let cfg = BuildConfig {
        index: index_config(&a.kind, &a.keys)?,
        fraction: a.fraction,
        shard,
        chunk_keys: a.chunk_keys,
        ..BuildConfig::default()
    };
    let bar = stage_bar();
    let t = Instant::now();
    let r = datastore::build(
        &m,
        &a.src,
        &a.tgt,
        &a.out,
        &cfg,
        a.graph.threads(),
        on_stage(&bar),
    )?;
    bar.finish_and_clear();
    eprintln!(
        "datastore {}: {} keys from {} sentence pairs ({} resumed from an interrupted build) in {:.1}s, model {}",
        a.out.display(),
        r.keys,
        r.sentences,
        r.resumed_keys,
        t.elapsed().as_secs_f64(),
        m.fingerprint
    );
    Ok(())
}

fn merge(a: &MergeArgs) -> Result<()> {
    let index = index_config(&a.kind, &a.keys)?;
    let bar = stage_bar();
    let t = Instant::now();
    let r = datastore::merge(&a.shards, &a.out, index, a.graph.threads(), on_stage(&bar))?;
    bar.finish_and_clear();
    eprintln!(
        "merged {} shards into {} ({} keys, {}) in {:.1}s",
        a.shards.len(),
        a.out.display(),
        r.keys,
        index.name(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn eval<B: Backend>(a: &EvalArgs, device: B::Device) -> Result<()> {
    if a.json && a.output.as_deref() == Some(std::path::Path::new("-")) {
        crate::bad_input!("--json and -o - both want standard output: write one to a file");
    }
    let m = load::<B>(&a.model, &device)?;
    let beam = a.beam.config(&m.generation)?;
    let ds = Datastore::open(&a.datastore, Some(&m.fingerprint))
        .with_context(|| format!("opening datastore {}", a.datastore.display()))?;
    if let Some(ef) = a.ef {
        ds.index.set_expansion_search(ef);
    }
    let mut src_text = Lines::read_all(&Input::from_arg(&a.input))?;
    let mut refs = Lines::read_all(&Input::from_arg(&a.reference))?;
    if src_text.len() != refs.len() {
        crate::bad_input!(
            "{} has {} lines but {} has {}: they must be line-aligned",
            a.input.display(),
            src_text.len(),
            a.reference.display(),
            refs.len()
        );
    }
    if let Some(n) = a.limit {
        src_text.truncate(n);
        refs.truncate(n);
    }
    let mut src = Vec::with_capacity(src_text.len());
    for s in &src_text {
        src.push(m.vocab.encode_source(s)?);
    }
    eprintln!(
        "{} sentences, datastore of {} keys ({}), beam {}",
        src.len(),
        ds.len(),
        ds.index.meta.index.name(),
        beam.beam
    );
    let bar = |label: &str, n: usize| {
        let bar = crate::progress::bar(n as u64);
        bar.set_style(
            crate::progress::style(&format!("{{spinner}} {label} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} sentences  ETA {{eta}}")),
        );
        bar
    };
    let base = if a.no_base {
        None
    } else {
        let b = bar("base", src.len());
        let r = sweep::decode(&m, &src, &refs, &beam, &mut NoHook, |n| b.inc(n as u64))?;
        b.finish_and_clear();
        Some(r)
    };
    let settings = if a.sweep {
        Setting::grid(&a.ks, &a.lambdas, &a.temperatures)
    } else {
        vec![Setting {
            k: a.k,
            lambda: a.lambda,
            temperature: a.temperature,
        }]
    };
    let mut runs = Vec::with_capacity(settings.len());
    let mut rows = Vec::new();
    for &st in &settings {
        let Setting {
            k,
            lambda,
            temperature,
        } = st;
        let b = bar("kNN-MT", src.len());
        let r = sweep::decode_knn(&m, &ds, &src, &refs, &beam, st, |n| b.inc(n as u64))?;
        b.finish_and_clear();
        let search = r.search_secs;
        match &base {
            Some(base) => eprintln!(
                "k {k:>3}  λ {lambda:.2}  T {temperature:>6.1}  BLEU {:.2}  ({:+.2})  {:.1}s; per decoder row {:.2}× base (search {:.1}s)",
                r.bleu,
                r.bleu - base.bleu,
                r.secs,
                r.us_per_row() / base.us_per_row(),
                search
            ),
            None => eprintln!(
                "k {k:>3}  λ {lambda:.2}  T {temperature:>6.1}  BLEU {:.2}  {:.1}s (search {:.1}s)",
                r.bleu, r.secs, search
            ),
        }
        rows.push(serde_json::json!({
            "k": k, "lambda": lambda, "temperature": temperature, "bleu": r.bleu,
            "secs": r.secs, "search_secs": search, "tokens": r.tokens, "rows": r.rows,
        }));
        runs.push(r);
    }
    if let (Some(p), Some(base)) = (&a.plot, &base) {
        let mut series: Vec<crate::plot::Series> = Vec::new();
        for (st, r) in settings.iter().zip(&runs) {
            let (k, l, t, bleu) = (st.k, st.lambda, st.temperature, r.bleu);
            let name = format!("kNN-MT k={k} T={t}");
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((l as f64, bleu)),
                None => series.push(crate::plot::Series {
                    name,
                    points: vec![(l as f64, bleu)],
                }),
            }
        }
        let xs: Vec<f64> = settings.iter().map(|s| s.lambda as f64).collect();
        let (lo, hi) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        series.push(crate::plot::Series {
            name: "base (λ = 0)".into(),
            points: vec![(0.0f64.min(lo), base.bleu), (hi, base.bleu)],
        });
        let title = format!(
            "BLEU vs λ on {} ({} sentences)",
            a.input.file_name().unwrap_or_default().to_string_lossy(),
            src.len()
        );
        crate::plot::line_chart(
            p,
            &title,
            "λ (weight of the kNN distribution)",
            "BLEU",
            &series,
            false,
        )?;
        eprintln!("wrote {}", p.display());
    }
    let i = sweep::best(&runs).expect("at least one setting");
    let (
        knn,
        Setting {
            k,
            lambda,
            temperature,
        },
    ) = (&runs[i], settings[i]);
    let sig = Bleu::new(BleuConfig::default()).signature(1).to_string();
    // The table is the result on stdout, unless the translations or the JSON report go there.
    let to_stdout = a.output.as_deref() != Some(std::path::Path::new("-")) && !a.json;
    let table = |line: String| {
        if to_stdout {
            println!("{line}")
        } else if !a.json {
            eprintln!("{line}")
        }
    };
    table(format!(
        "{:<10} {:>8} {:>10} {:>12} {:>14}",
        "system", "BLEU", "seconds", "tokens/s", "µs/dec. row"
    ));
    let line = |name: &str, r: &Run| {
        table(format!(
            "{name:<10} {:>8.2} {:>10.1} {:>12.0} {:>14.1}",
            r.bleu,
            r.secs,
            r.tokens as f64 / r.secs,
            r.us_per_row()
        ))
    };
    if let Some(base) = &base {
        line("base", base);
    }
    line("kNN-MT", knn);
    table(match &base {
        Some(base) => format!(
            "kNN-MT − base: {:+.2} BLEU; time {:.2}× base over the same sentences, {:.2}× per decoder row (k {k}, λ {lambda}, T {temperature}); {sig}",
            knn.bleu - base.bleu,
            knn.secs / base.secs,
            knn.us_per_row() / base.us_per_row()
        ),
        None => format!("kNN-MT (k {k}, λ {lambda}, T {temperature}); {sig}"),
    });
    if let Some(p) = &a.output {
        let write = |p: &std::path::Path, hyps: &[String]| {
            crate::write_output(p, |w| {
                for h in hyps {
                    writeln!(w, "{h}")?;
                }
                Ok(())
            })
        };
        write(p, &knn.hyps)?;
        if let Some(base) = base.as_ref().filter(|_| p != std::path::Path::new("-")) {
            let mut base_path = p.clone().into_os_string();
            base_path.push(".base");
            write(std::path::Path::new(&base_path), &base.hyps)?;
        }
    }
    if a.report.is_some() || a.json {
        let j = serde_json::json!({
            "sentences": src.len(), "datastore_keys": ds.len(), "beam": beam.beam,
            "base": base.as_ref().map(|b| serde_json::json!(
                {"bleu": b.bleu, "secs": b.secs, "tokens": b.tokens, "rows": b.rows})),
            "best": {"k": k, "lambda": lambda, "temperature": temperature, "bleu": knn.bleu,
                     "secs": knn.secs, "tokens": knn.tokens, "rows": knn.rows},
            "index": ds.index.meta.index,
            "settings": rows, "signature": sig,
        });
        let text = serde_json::to_string_pretty(&j)?;
        if let Some(p) = &a.report {
            ragl_core::atomic::write_bytes_atomic(p, text.as_bytes())?;
        }
        if a.json {
            println!("{text}");
        }
    }
    Ok(())
}
