//! `ragl index build|merge|info|audit` and `ragl retrieve`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use ragl_core::read::Input;
use ragl_core::run::{RunFormat, write_entry};
use ragl_index::artifact::{IndexConfig, SearchMode, read_meta};
use ragl_index::audit::Audit;
use ragl_index::bm25::Bm25Config;
use ragl_index::build::Stage;
use ragl_index::hnsw::HnswConfig;
use ragl_index::{Dtype, Index, Metric};
use ragl_retriever::corpus::{CorpusBuild, DocTower, build_bm25_index, build_dense_index};
use ragl_retriever::queries::{Query, read_queries};
use ragl_retriever::search::{Retriever, recorded_encoder, recorded_query_encoder};

use crate::commands::embed::{EncoderArgs, load_encoder};

#[derive(Subcommand)]
pub enum IndexCommand {
    /// Encode passages (or take precomputed vectors) into an exact, HNSW or BM25 index.
    Build(BuildArgs),
    /// Merge the shards of a sharded build into one index.
    Merge(MergeArgs),
    /// Show an index's manifest and verify its files.
    Info(InfoArgs),
    /// Recall@k of an HNSW index against exact search, and the score drift.
    Audit(AuditArgs),
    /// A released REALM open-QA checkpoint's blocks (`block_emb`, `block_records.npy`) as
    /// an index whose query tower is the checkpoint's embedder, and a passages file.
    Import(ImportArgs),
}

/// Index kind and its settings.
#[derive(Args, Clone)]
pub struct KindArgs {
    /// exact (brute-force MIPS), hnsw (approximate, usearch) or bm25 (lexical).
    #[arg(long, default_value = "exact", value_parser = ["exact", "hnsw", "bm25"])]
    kind: String,
    /// Similarity of dense indexes: ip (inner product, REALM/DPR) or l2.
    #[arg(long, default_value = "ip")]
    metric: Metric,
    /// Storage of the vectors inside the HNSW graph: f32, f16 or i8 (i8 assumes unit-norm
    /// vectors). Exact search always uses the f32 vectors.
    #[arg(long, default_value = "f32")]
    dtype: Dtype,
    /// HNSW edges per node (M).
    #[arg(long, default_value_t = HnswConfig::default().connectivity)]
    connectivity: usize,
    /// HNSW beam width while inserting (efConstruction).
    #[arg(long, default_value_t = HnswConfig::default().expansion_add)]
    expansion_add: usize,
    /// HNSW beam width while searching (efSearch); `ragl retrieve --ef` overrides it.
    #[arg(long, default_value_t = HnswConfig::default().expansion_search)]
    expansion_search: usize,
    /// BM25 k1.
    #[arg(long, default_value_t = Bm25Config::default().k1)]
    k1: f32,
    /// BM25 b.
    #[arg(long, default_value_t = Bm25Config::default().b)]
    b: f32,
    /// Threads inserting into the HNSW graph (default: all). With 1 the graph is
    /// reproducible bit for bit; with more it depends on thread timing.
    #[arg(long)]
    graph_threads: Option<usize>,
}

impl KindArgs {
    fn config(&self) -> Result<IndexConfig> {
        if self.dtype != Dtype::F32 && self.kind != "hnsw" {
            crate::bad_input!("--dtype applies to hnsw indexes only (exact search is f32)");
        }
        Ok(match self.kind.as_str() {
            "exact" => IndexConfig::Exact {
                metric: self.metric,
            },
            "hnsw" => IndexConfig::Hnsw {
                metric: self.metric,
                hnsw: HnswConfig {
                    dtype: self.dtype,
                    connectivity: self.connectivity,
                    expansion_add: self.expansion_add,
                    expansion_search: self.expansion_search,
                    graph_only: false,
                },
            },
            _ => IndexConfig::Bm25 {
                bm25: Bm25Config {
                    k1: self.k1,
                    b: self.b,
                },
            },
        })
    }

    fn graph_threads(&self) -> usize {
        self.graph_threads
            .unwrap_or_else(rayon::current_num_threads)
            .max(1)
    }
}

#[derive(Args)]
pub struct BuildArgs {
    /// Passages JSONL ({"id","text"} or {"id","title","text"}), e.g. from `ragl corpus chunk`.
    #[arg(long, required_unless_present = "vectors", conflicts_with = "vectors")]
    passages: Option<PathBuf>,
    /// Precomputed vectors instead of passages: an `.npy` [n, dim] f32 (e.g. from
    /// `ragl embed` or numpy), with ids in the same path's `.ids` file when it exists.
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// Document tower: HF checkpoint directory (not needed for bm25 or --vectors).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Query tower, when it differs from the document tower (DPR-style); recorded so that
    /// `ragl retrieve` refuses any other query encoder.
    #[arg(long)]
    query_model: Option<PathBuf>,
    /// Output index directory.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    kind: KindArgs,
    #[command(flatten)]
    enc: EncoderArgs,
    /// Build only shard i of n (`i/n`, 0-based): rows [i·N/n, (i+1)·N/n) as an exact index;
    /// `ragl index merge` joins the shards.
    #[arg(long)]
    shard: Option<String>,
    /// Passages per resumable chunk: a killed build restarts from its last whole chunk.
    #[arg(long, default_value_t = 4096)]
    chunk_rows: usize,
    /// Skip (and count) passages with an empty text instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
}

#[derive(Args)]
pub struct MergeArgs {
    /// Output index directory.
    #[arg(long)]
    out: PathBuf,
    /// The shard directories (all n of them, any order).
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    #[command(flatten)]
    kind: KindArgs,
}

#[derive(Args)]
pub struct InfoArgs {
    /// Index directory.
    index: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AuditArgs {
    /// An HNSW index directory.
    #[arg(long)]
    index: PathBuf,
    /// Query vectors (`.npy`); default: a sample of the index's own vectors.
    #[arg(long)]
    query_vectors: Option<PathBuf>,
    /// Queries sampled from the index when no query vectors are given.
    #[arg(long, default_value_t = 1000)]
    sample: usize,
    /// Neighbours compared per query (recall@k).
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// efSearch values to audit (comma-separated); default: the index's own.
    #[arg(long, value_delimiter = ',')]
    ef: Vec<usize>,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RetrieveArgs {
    /// Index directory.
    #[arg(long)]
    index: PathBuf,
    /// Queries: JSONL {"id","text"|"question"}, or a QA file (NQ-open, WebQuestions,
    /// CuratedTREC, SQuAD); `-` reads JSONL queries from standard input, as does leaving
    /// out both this and `--query-vectors`.
    #[arg(short = 'i', long)]
    queries: Option<PathBuf>,
    /// auto, queries, or a QA format name.
    #[arg(long, default_value = "auto")]
    query_format: String,
    /// Precomputed query vectors (`.npy`) instead of query text (query ids are row numbers).
    #[arg(long, conflicts_with = "queries")]
    query_vectors: Option<PathBuf>,
    /// Query tower; default: the encoder recorded in the index.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Search with a query encoder that is not the one the index was built for.
    #[arg(long)]
    allow_foreign_encoder: bool,
    /// Passages retrieved per query.
    #[arg(long, default_value_t = 20)]
    k: usize,
    /// jsonl or trec.
    #[arg(long, default_value = "jsonl")]
    format: RunFormat,
    /// Output run file; `-` (the default) writes standard output.
    #[arg(long, short = 'o', default_value = "-")]
    output: PathBuf,
    /// Exact search even on an HNSW index.
    #[arg(long)]
    exact: bool,
    /// HNSW efSearch for this search.
    #[arg(long)]
    ef: Option<usize>,
    #[command(flatten)]
    enc: EncoderArgs,
}

pub fn run(c: IndexCommand) -> Result<()> {
    match c {
        IndexCommand::Build(a) => build(a),
        IndexCommand::Merge(a) => merge(a),
        IndexCommand::Info(a) => info(a),
        IndexCommand::Audit(a) => audit(a),
        IndexCommand::Import(a) => import(a),
    }
}

#[derive(Args)]
pub struct ImportArgs {
    /// A `RealmForOpenQA` checkpoint (realm-orqa-*-openqa): a directory or a hub id in the
    /// local Hugging Face cache.
    #[arg(long)]
    realm: PathBuf,
    /// Output index directory.
    #[arg(long)]
    out: PathBuf,
    /// Also write the blocks as passages JSONL (`{"id","text"}`, id = row).
    #[arg(long)]
    passages: Option<PathBuf>,
    #[command(flatten)]
    kind: KindArgs,
    /// Rows per resumable chunk while writing the index.
    #[arg(long, default_value_t = 262_144)]
    chunk_rows: usize,
}

fn import(a: ImportArgs) -> Result<()> {
    let config = a.kind.config()?;
    if matches!(config, IndexConfig::Bm25 { .. }) {
        crate::bad_input!("REALM's blocks are imported as a dense index (exact or hnsw)");
    }
    if a.chunk_rows == 0 {
        crate::bad_input!("--chunk-rows must be at least 1");
    }
    let dir = ragl_model::hub::resolve(&a.realm)?;
    let t = Instant::now();
    let spec = ragl_realm::released::import::ImportSpec {
        dir: &dir,
        out: &a.out,
        passages: a.passages.as_deref(),
        config,
        chunk_rows: a.chunk_rows,
        threads: a.kind.graph_threads(),
    };
    let done = ragl_realm::released::import::import(&spec, stage_bars())?;
    eprintln!(
        "imported {} blocks ({}-d) from {} in {:.1}s → {}{}",
        done.rows,
        done.dim,
        dir.display(),
        t.elapsed().as_secs_f64(),
        a.out.display(),
        done.passages
            .map(|p| format!(", passages → {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

fn bar(what: &str) -> ProgressBar {
    let b = crate::progress::bar(0);
    b.set_style(
        crate::progress::style(&format!(
            "{{spinner}} {what} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}}  {{rate}}  ETA {{eta}}"
        )),
    );
    b
}

/// A progress callback drawing one bar per stage.
fn stage_bars() -> impl FnMut(Stage, ragl_core::progress::Progress) + Send {
    let embed = bar("embed");
    let graph = bar("graph");
    move |stage, p| {
        let b = match stage {
            Stage::Embed => &embed,
            Stage::Graph => {
                embed.finish_and_clear();
                &graph
            }
        };
        if let Some(t) = p.total {
            b.set_length(t);
        }
        b.set_position(p.done);
        if p.total == Some(p.done) {
            b.finish_and_clear();
        }
    }
}

pub(crate) fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let parsed = s
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => crate::bad_input!("--shard {s:?}: expected i/n with 0 <= i < n, e.g. 0/4"),
    }
}

fn build(a: BuildArgs) -> Result<()> {
    let config = a.kind.config()?;
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    if shard.is_some() && !matches!(config, IndexConfig::Exact { .. }) {
        crate::bad_input!(
            "a shard is built as an exact index; choose the final kind in `ragl index merge`"
        );
    }
    if a.chunk_rows == 0 || a.enc.batch_size == 0 {
        crate::bad_input!("--chunk-rows and --batch-size must be at least 1");
    }
    let t = Instant::now();
    if let Some(v) = &a.vectors {
        if matches!(config, IndexConfig::Bm25 { .. }) {
            crate::bad_input!("a BM25 index is built from --passages, not vectors");
        }
        let s = ragl_index::build::build_from_npy(
            &a.out,
            v,
            config,
            shard,
            a.chunk_rows,
            a.kind.graph_threads(),
            stage_bars(),
        )?;
        eprintln!(
            "indexed {} vectors in {:.1}s → {}",
            s.rows,
            t.elapsed().as_secs_f64(),
            a.out.display()
        );
        return Ok(());
    }
    let passages = a
        .passages
        .clone()
        .expect("clap requires --passages or --vectors");
    let b = CorpusBuild {
        passages: &passages,
        out: &a.out,
        config,
        shard,
        chunk_rows: a.chunk_rows,
        batch_size: a.enc.batch_size,
        skip_invalid: a.skip_invalid,
        graph_threads: a.kind.graph_threads(),
    };
    let s = if let IndexConfig::Bm25 { .. } = config {
        build_bm25_index(&b)?
    } else {
        let Some(model) = &a.model else {
            crate::bad_input!("a dense index needs --model (the document tower)");
        };
        let spec = a.enc.spec(model)?;
        crate::backend::with_device!(a.enc.device, B, device, {
            let (doc, report) = load_encoder::<B>(&spec, &a.enc.device, &device)?;
            let query_fingerprint = match &a.query_model {
                Some(q) => ragl_model::checkpoint::fingerprint(q)
                    .with_context(|| format!("reading {}", q.display()))?,
                None => report.fingerprint.clone(),
            };
            let tower = DocTower {
                encoder: &doc,
                spec: &spec,
                fingerprint: report.fingerprint,
                query_fingerprint,
                query_model: a.query_model.clone(),
            };
            build_dense_index::<B>(&b, &tower, stage_bars())?
        })
    };
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "indexed {} passages ({}; {} resumed from an interrupted build) in {:.1}s: {:.1} passages/s → {}",
        s.rows,
        config.name(),
        s.resumed_rows,
        secs,
        (s.rows - s.resumed_rows) as f64 / secs,
        a.out.display()
    );
    eprintln!("manifest sha256 {}", s.manifest_sha256);
    Ok(())
}

/// Streams the ids of `path.ids` if present, else numbers the rows; checks the count.
fn merge(a: MergeArgs) -> Result<()> {
    let config = a.kind.config()?;
    let t = Instant::now();
    let s = ragl_index::build::merge(
        &a.shards,
        &a.out,
        config,
        a.kind.graph_threads(),
        stage_bars(),
    )?;
    eprintln!(
        "merged {} shards, {} vectors, into a {} index in {:.1}s → {}",
        a.shards.len(),
        s.rows,
        config.name(),
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    eprintln!("manifest sha256 {}", s.manifest_sha256);
    Ok(())
}

fn info(a: InfoArgs) -> Result<()> {
    let (m, meta) = read_meta(&a.index)?;
    let t = Instant::now();
    let idx = Index::open(&a.index)?;
    let verify = t.elapsed().as_secs_f64();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(());
    }
    println!("index     {}", a.index.display());
    println!(
        "kind      {} (format {}, ragl {})",
        meta.index.name(),
        m.format_version,
        m.ragl_version
    );
    println!("config    {}", serde_json::to_string(&meta.index)?);
    println!("rows      {}", idx.len());
    if meta.dim > 0 {
        println!("dim       {}", meta.dim);
    }
    if let Some(e) = recorded_encoder(&idx) {
        println!(
            "encoder   {} ({:?} pooling, normalize {}, max_len {})",
            e.model.display(),
            e.pooling,
            e.normalize,
            e.max_len
        );
    }
    if let (Some(d), Some(q)) = (recorded_encoder(&idx), recorded_query_encoder(&idx))
        && d.model != q.model
    {
        println!("query     {}", q.model.display());
    }
    if let Some(f) = &m.model_fingerprint {
        println!("doc tower {f}");
    }
    if let Some(f) = &meta.query_fingerprint {
        println!("query     {f}");
    }
    if let Some(s) = meta.shard {
        println!(
            "shard     {}/{} (first row {})",
            s.index, s.count, s.first_row
        );
    }
    println!("source    sha256 {}", meta.source_sha256);
    for (f, h) in &m.files {
        let size = std::fs::metadata(a.index.join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        println!("file      {f}  {size} bytes  sha256 {}", &h[..16]);
    }
    println!("verified  all file hashes match ({verify:.2}s)");
    Ok(())
}

fn audit(a: AuditArgs) -> Result<()> {
    let idx = Index::open(&a.index)?;
    let queries = match &a.query_vectors {
        Some(p) => {
            let (_, d, v) = ragl_core::npy::read_f32(p)?;
            if d != idx.meta.dim {
                crate::bad_input!(
                    "{}: {d}-d query vectors, the index holds {}-d vectors",
                    p.display(),
                    idx.meta.dim
                );
            }
            Some(v)
        }
        None => None,
    };
    let audit = Audit::new(&idx, queries, a.sample, a.k)?;
    let nq = audit.queries();
    let efs = if a.ef.is_empty() {
        vec![audit.hnsw.expansion_search]
    } else {
        a.ef.clone()
    };
    if !a.json {
        println!(
            "audit {}: {nq} queries, k = {}, {:?} metric, {:?} storage ({} kernels); exact search {:.0} queries/s",
            a.index.display(),
            a.k,
            audit.metric,
            audit.hnsw.dtype,
            idx.acceleration().unwrap_or_default(),
            audit.exact_queries_per_s
        );
        println!(
            "{:>6}  {:>10}  {:>12}  {:>14}  {:>14}",
            "ef", "recall@k", "queries/s", "mean |drift|", "max |drift|"
        );
    }
    for ef in efs {
        let r = audit.at(ef)?;
        if a.json {
            println!(
                "{}",
                serde_json::json!({"ef": ef, "k": a.k, "queries": nq, "recall": r.recall, "queries_per_s": r.queries_per_s, "exact_queries_per_s": audit.exact_queries_per_s, "mean_abs_drift": r.mean_abs_drift, "max_abs_drift": r.max_abs_drift})
            );
        } else {
            println!(
                "{ef:>6}  {:>10.4}  {:>12.0}  {:>14.3e}  {:>14.3e}",
                r.recall, r.queries_per_s, r.mean_abs_drift, r.max_abs_drift
            );
        }
    }
    Ok(())
}

pub fn retrieve(a: RetrieveArgs) -> Result<()> {
    if a.k == 0 {
        crate::bad_input!("--k must be at least 1");
    }
    if let Some(p) = &a.query_vectors {
        return retrieve_vectors(&a, p);
    }
    let input = Input::from_arg(a.queries.as_deref().unwrap_or(Path::new("-")));
    let queries = read_queries(&input, &a.query_format)?;
    if queries.is_empty() {
        crate::bad_input!("{}: no queries", input.name().display());
    }
    crate::backend::with_device!(
        a.enc.device,
        B,
        device,
        retrieve_on::<B>(&a, &queries, device)
    )
}

fn retrieve_on<B: Backend>(a: &RetrieveArgs, queries: &[Query], device: B::Device) -> Result<()> {
    let index = Index::open(&a.index)?;
    let enc = if index.is_dense() {
        let spec = match (&a.model, recorded_query_encoder(&index)) {
            (Some(m), rec) => {
                let mut s = a.enc.spec(m)?;
                if let Some(r) = rec
                    && a.enc.max_len == 256
                {
                    s.max_len = r.max_len;
                }
                s
            }
            (None, Some(r)) => r,
            (None, None) => crate::bad_input!(
                "{} was built from vectors and records no encoder: pass --model, or --query-vectors",
                a.index.display()
            ),
        };
        let (enc, report) = load_encoder::<B>(&spec, &a.enc.device, &device)?;
        Some((enc, report.fingerprint))
    } else {
        None
    };
    let mut r = Retriever::new(index, enc, a.allow_foreign_encoder)?;
    r.batch_size = a.enc.batch_size.max(1);
    if let Some(ef) = a.ef {
        r.index.set_expansion_search(ef);
    }
    let mode = if a.exact {
        SearchMode::Exact
    } else {
        SearchMode::Default
    };
    let t = Instant::now();
    let b = bar("retrieve");
    b.set_length(queries.len() as u64);
    let mut out = open_output(&a.output)?;
    const CHUNK: usize = 1024;
    for chunk in queries.chunks(CHUNK) {
        for e in r.retrieve(chunk, a.k, mode)? {
            write_entry(&mut out, &e, a.format).context("writing the run")?;
        }
        b.inc(chunk.len() as u64);
    }
    out.flush().context("writing the run")?;
    b.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "retrieved top-{} for {} queries in {:.2}s ({:.1} queries/s)",
        a.k,
        queries.len(),
        secs,
        queries.len() as f64 / secs
    );
    Ok(())
}

fn open_output(p: &Path) -> Result<Box<dyn Write>> {
    Ok(if p == Path::new("-") {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))
    })
}

fn retrieve_vectors(a: &RetrieveArgs, npy: &Path) -> Result<()> {
    let index = Index::open(&a.index)?;
    if !index.is_dense() {
        crate::bad_input!(
            "{} is a BM25 index: query vectors do not apply",
            a.index.display()
        );
    }
    let (rows, dim, q) = ragl_core::npy::read_f32(npy)?;
    if dim != index.meta.dim {
        crate::bad_input!(
            "{}: {dim}-d query vectors, the index holds {}-d vectors",
            npy.display(),
            index.meta.dim
        );
    }
    if let Some(ef) = a.ef {
        index.set_expansion_search(ef);
    }
    let mode = if a.exact {
        SearchMode::Exact
    } else {
        SearchMode::Default
    };
    let t = Instant::now();
    let hits = index.search_vectors(&q, a.k, mode)?;
    let secs = t.elapsed().as_secs_f64();
    let mut out = open_output(&a.output)?;
    for (i, hs) in hits.into_iter().enumerate() {
        let e = ragl_core::run::RunEntry {
            qid: i.to_string(),
            question: None,
            hits: hs
                .into_iter()
                .map(|h| ragl_core::run::RunHit {
                    id: index.ids[h.row as usize].clone(),
                    score: h.score,
                })
                .collect(),
        };
        write_entry(&mut out, &e, a.format).context("writing the run")?;
    }
    out.flush().context("writing the run")?;
    eprintln!(
        "searched {rows} query vectors over {} vectors ({}{}) in {secs:.3}s: {:.1} queries/s",
        index.len(),
        index.meta.index.name(),
        if a.exact { ", exact" } else { "" },
        rows as f64 / secs
    );
    Ok(())
}

#[derive(Args)]
pub struct FuseArgs {
    /// Run files to fuse (JSONL or TREC), e.g. one from a BM25 index and one from a dense one.
    #[arg(long = "run", required = true, num_args = 1)]
    runs: Vec<PathBuf>,
    /// One weight per run (default: all 1).
    #[arg(long = "weight")]
    weights: Vec<f32>,
    /// rrf (reciprocal rank fusion) or linear (weighted sum of per-query min-max scores).
    #[arg(long, default_value = "rrf", value_parser = ["rrf", "linear"])]
    method: String,
    /// RRF's rank offset c.
    #[arg(long, default_value_t = 60.0)]
    rrf_c: f32,
    /// Passages kept per query in the fused run.
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// jsonl or trec.
    #[arg(long, default_value = "jsonl")]
    format: RunFormat,
    /// Fused run file; `-` (the default) is standard output.
    #[arg(long, short = 'o', default_value = "-")]
    output: PathBuf,
}

pub fn fuse(a: FuseArgs) -> Result<()> {
    use ragl_retriever::fusion::{Fusion, fuse};
    let runs = a
        .runs
        .iter()
        .map(|p| ragl_core::run::read_run(&Input::from_arg(p)))
        .collect::<ragl_core::Result<Vec<_>>>()?;
    let weights = if a.weights.is_empty() {
        vec![1.0; runs.len()]
    } else {
        a.weights.clone()
    };
    let method = match a.method.as_str() {
        "rrf" => Fusion::Rrf { c: a.rrf_c },
        _ => Fusion::Linear,
    };
    let fused = fuse(&runs, &weights, method, a.k)?;
    let mut out = open_output(&a.output)?;
    for e in &fused {
        write_entry(&mut out, e, a.format).context("writing the run")?;
    }
    out.flush().context("writing the run")?;
    eprintln!(
        "fused {} runs over {} queries ({})",
        runs.len(),
        fused.len(),
        a.method
    );
    Ok(())
}
