//! `ragl knnmt build|eval`: kNN-MT datastores and decoding with them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use ragl_core::read::{Input, Lines};
use ragl_eval::bleu::{Bleu, BleuConfig};
use ragl_index::Metric;
use ragl_index::artifact::IndexConfig;
use ragl_index::build::Stage;
use ragl_knn::KnnHook;
use ragl_knn::combiner::KnnMt;
use ragl_knn::datastore::{self, BuildConfig, Datastore};
use ragl_mt::beam::{NoHook, StepHook};
use ragl_mt::checkpoint::MtModel;

use crate::backend::DeviceSpec;
use crate::mt_cmd::BeamArgs;

#[derive(clap::Subcommand)]
pub enum KnnmtCommand {
    /// Teacher-force a model over parallel text and index its decoder states.
    Build(BuildArgs),
    /// Translate with and without the datastore; print both BLEU scores and speeds.
    Eval(EvalArgs),
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Model directory or run directory (the model that will decode with the datastore).
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    src: PathBuf,
    #[arg(long)]
    tgt: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// hnsw (default) or exact.
    #[arg(long, default_value = "hnsw", value_parser = ["hnsw", "exact"])]
    kind: String,
    /// Build from the first fraction of the sentence pairs only (datastore-size curves).
    #[arg(long, default_value_t = 1.0)]
    fraction: f64,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    datastore: PathBuf,
    /// Source sentences.
    #[arg(short, long)]
    input: PathBuf,
    /// Reference translations, line-aligned with the input.
    #[arg(long = "ref")]
    reference: PathBuf,
    #[arg(long, default_value_t = 8)]
    k: usize,
    #[arg(long, default_value_t = 0.5)]
    lambda: f32,
    #[arg(long, default_value_t = 10.0)]
    temperature: f32,
    /// Evaluate every combination of these (comma-separated) instead of one setting.
    #[arg(long)]
    sweep: bool,
    #[arg(long, value_delimiter = ',', default_value = "0.2,0.4,0.6,0.8")]
    lambdas: Vec<f32>,
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    ks: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    temperatures: Vec<f32>,
    /// Only the first N sentences (a tuning subset).
    #[arg(long)]
    limit: Option<usize>,
    /// HNSW search beam (efSearch) for the datastore.
    #[arg(long)]
    ef: Option<usize>,
    /// Write the kNN-MT translations here (and the base ones to PATH.base).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// With --sweep: a PNG of BLEU against λ, one line per (k, T), and the base model.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write the results (and the sweep table) as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    beam: BeamArgs,
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
    let index = match a.kind.as_str() {
        "exact" => IndexConfig::Exact { metric: Metric::L2 },
        _ => IndexConfig::Hnsw {
            metric: Metric::L2,
            hnsw: Default::default(),
        },
    };
    let cfg = BuildConfig {
        index,
        fraction: a.fraction,
        ..BuildConfig::default()
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{elapsed_precise}] {wide_bar} {pos}/{len} keys  {per_sec}  ETA {eta}",
        )
        .expect("template"),
    );
    let t = Instant::now();
    let r = datastore::build(
        &m,
        &a.src,
        &a.tgt,
        &a.out,
        &cfg,
        rayon::current_num_threads(),
        |stage, p| {
            bar.set_message(match stage {
                Stage::Embed => "teacher-forcing",
                Stage::Graph => "hnsw graph",
            });
            if let Some(total) = p.total {
                bar.set_length(total);
            }
            bar.set_position(p.done);
        },
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

struct Run {
    hyps: Vec<String>,
    bleu: f64,
    secs: f64,
    tokens: usize,
}

fn decode<B: Backend>(
    m: &MtModel<B>,
    src: &[Vec<u32>],
    refs: &[String],
    beam: &ragl_mt::beam::BeamConfig,
    hook: &mut dyn StepHook,
    label: &str,
) -> Result<Run> {
    let bar = ProgressBar::new(src.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {label} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} sentences  ETA {{eta}}"))
            .expect("template"),
    );
    let t = Instant::now();
    let out = ragl_mt::beam::translate_ids(&m.model, src, beam, hook, |n| bar.inc(n as u64));
    let secs = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let tokens = out.iter().map(|o| o.len() + 1).sum();
    let hyps: Vec<String> = out
        .iter()
        .map(|o| m.vocab.decode(o))
        .collect::<ragl_mt::Result<_>>()?;
    let bleu = Bleu::new(BleuConfig::default())
        .corpus_score(&hyps, &[refs.to_vec()])
        .score;
    Ok(Run {
        hyps,
        bleu,
        secs,
        tokens,
    })
}

fn eval<B: Backend>(a: &EvalArgs, device: B::Device) -> Result<()> {
    let beam = a.beam.config()?;
    let m = load::<B>(&a.model, &device)?;
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
        let mut ids = m.vocab.encode(s)?;
        ids.push(ragl_mt::vocab::EOS);
        src.push(ids);
    }
    eprintln!(
        "{} sentences, datastore of {} keys ({}), beam {}",
        src.len(),
        ds.len(),
        ds.index.meta.index.name(),
        beam.beam
    );
    let base = decode(&m, &src, &refs, &beam, &mut NoHook, "base")?;
    let settings: Vec<(usize, f32, f32)> = if a.sweep {
        let mut v = Vec::new();
        for &k in &a.ks {
            for &l in &a.lambdas {
                for &t in &a.temperatures {
                    v.push((k, l, t));
                }
            }
        }
        v
    } else {
        vec![(a.k, a.lambda, a.temperature)]
    };
    let mut rows = Vec::new();
    let mut best: Option<(Run, (usize, f32, f32), f64)> = None;
    for &(k, lambda, temperature) in &settings {
        let mut hook = KnnHook::new(
            &ds,
            k,
            KnnMt {
                lambda,
                temperature,
            },
        );
        let r = decode(&m, &src, &refs, &beam, &mut hook, "kNN-MT")?;
        let search = hook.search_secs;
        eprintln!(
            "k {k:>3}  λ {lambda:.2}  T {temperature:>6.1}  BLEU {:.2}  ({:+.2})  {:.1}s ({:.2}× base; search {:.1}s)",
            r.bleu,
            r.bleu - base.bleu,
            r.secs,
            r.secs / base.secs,
            search
        );
        rows.push(serde_json::json!({
            "k": k, "lambda": lambda, "temperature": temperature, "bleu": r.bleu,
            "secs": r.secs, "search_secs": search, "tokens": r.tokens,
        }));
        if best.as_ref().is_none_or(|b| r.bleu > b.0.bleu) {
            best = Some((r, (k, lambda, temperature), search));
        }
    }
    if let Some(p) = &a.plot {
        let mut series: Vec<crate::plot::Series> = Vec::new();
        for &(k, l, t) in &settings {
            let name = format!("kNN-MT k={k} T={t}");
            let bleu = rows
                .iter()
                .find(|r| r["k"] == k && r["lambda"] == l && r["temperature"] == t)
                .and_then(|r| r["bleu"].as_f64())
                .unwrap_or(f64::NAN);
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((l as f64, bleu)),
                None => series.push(crate::plot::Series {
                    name,
                    points: vec![(l as f64, bleu)],
                }),
            }
        }
        let xs: Vec<f64> = settings.iter().map(|s| s.1 as f64).collect();
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
    let (knn, (k, lambda, temperature), _) = best.expect("at least one setting");
    let sig = Bleu::new(BleuConfig::default()).signature(1).to_string();
    println!(
        "{:<10} {:>8} {:>10} {:>12}",
        "system", "BLEU", "seconds", "tokens/s"
    );
    println!(
        "{:<10} {:>8.2} {:>10.1} {:>12.0}",
        "base",
        base.bleu,
        base.secs,
        base.tokens as f64 / base.secs
    );
    println!(
        "{:<10} {:>8.2} {:>10.1} {:>12.0}",
        "kNN-MT",
        knn.bleu,
        knn.secs,
        knn.tokens as f64 / knn.secs
    );
    println!(
        "kNN-MT − base: {:+.2} BLEU; time ratio {:.2}× (k {k}, λ {lambda}, T {temperature}); {sig}",
        knn.bleu - base.bleu,
        knn.secs / base.secs
    );
    if let Some(p) = &a.output {
        let write = |p: &std::path::Path, hyps: &[String]| {
            crate::write_output(p, |w| {
                use std::io::Write;
                for h in hyps {
                    writeln!(w, "{h}")?;
                }
                Ok(())
            })
        };
        write(p, &knn.hyps)?;
        let mut base_path = p.clone().into_os_string();
        base_path.push(".base");
        write(std::path::Path::new(&base_path), &base.hyps)?;
    }
    if let Some(p) = &a.json {
        let j = serde_json::json!({
            "sentences": src.len(), "datastore_keys": ds.len(), "beam": beam.beam,
            "base": {"bleu": base.bleu, "secs": base.secs, "tokens": base.tokens},
            "best": {"k": k, "lambda": lambda, "temperature": temperature, "bleu": knn.bleu, "secs": knn.secs},
            "settings": rows, "signature": sig,
        });
        ragl_core::atomic::write_bytes_atomic(p, serde_json::to_string_pretty(&j)?.as_bytes())?;
    }
    Ok(())
}
