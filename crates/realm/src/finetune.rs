//! The open-QA fine-tuning loop (`ragl finetune-qa`) and prediction (`ragl predict-qa`).
//!
//! A run reads a TOML config (`configs/qa/`): NQ-open JSONL questions (`ragl qa split`
//! writes them), the passages and the dense index built over them, the reader's starting
//! BERT checkpoint; the query tower starts from the encoder the index records, so that its
//! first scores are the index's own. Every step retrieves the top-k passages of a batch of
//! questions with the current query tower, and descends on the marginal likelihood
//! ([`crate::openqa`]); AdamW with linear warm-up and decay. Dev exact match is measured
//! every `dev_every` steps; the best model so far is saved to `RUN/best/` (manifest kind
//! `qa-model`), and training stops early after `patience` evaluations without a gain.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder as _};
use burn::tensor::backend::AutodiffBackend;
use ragl_core::passage::Passage;
use ragl_core::qa::QaExample;
use ragl_core::read::Input;
use ragl_core::rng::Rng;
use ragl_model::bert::BertConfig;
use ragl_model::encode::EncoderSpec;
use ragl_model::parallel::data_parallel;
use ragl_model::tokenizer::TextTokenizer;
use ragl_reader::span::{AnswerMatcher, SpanReader, SpanReaderConfig};
use serde::{Deserialize, Serialize};

use crate::openqa::{OpenQa, QueryPooling, RetrievalContext, own_passages, retrieve};
use crate::{Error, Result};

pub const KIND: &str = "qa-model";
pub const FORMAT_VERSION: u32 = 1;
const WEIGHTS: &str = "model.mpk";
const METRICS_HEADER: &str = "step,epoch,lr,loss,questions_with_gold,secs,dev_em";
type Recorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// `configs/qa/*.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub train: PathBuf,
    pub dev: PathBuf,
    /// Passages JSONL (`{"id","title"?,"text"}`), the corpus the index was built from.
    pub passages: PathBuf,
    /// A dense index over the passages with f32 vectors (exact, or HNSW with f32 keys).
    pub index: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The reader's starting BERT (HF directory); not needed with `init`.
    #[serde(default)]
    pub reader: PathBuf,
    /// Documents retrieved per question.
    #[serde(default = "default_k")]
    pub k: usize,
    /// The query tower's starting BERT (default: the index's encoder). A `ragl pretrain`
    /// run's `export/query`, with the index built from its `export/doc`.
    #[serde(default)]
    pub query: Option<PathBuf>,
    /// Start from a `ragl finetune-qa` model directory (its query tower, reader and span
    /// head) instead of `reader`/`query`: to continue a run whose schedule ended, or to
    /// fine-tune further on other data. The optimiser starts afresh.
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// Train the query tower (REALM) or keep it fixed.
    #[serde(default = "yes")]
    pub train_query: bool,
    #[serde(default)]
    pub span: SpanReaderConfig,
}

fn default_k() -> usize {
    4
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub lr: f64,
    pub warmup: u64,
    pub weight_decay: f32,
    pub clip_norm: f32,
    pub batch_questions: usize,
    pub epochs: u64,
    pub max_steps: Option<u64>,
    /// Stop after this many steps while the learning-rate schedule still follows
    /// `max_steps` (a shorter run on the same schedule).
    pub stop_after: Option<u64>,
    pub max_minutes: Option<f64>,
    pub seed: u64,
    pub dev_every: u64,
    /// Dev questions used for early stopping (the first N).
    pub dev_limit: usize,
    /// Evaluations without a better dev EM before stopping.
    pub patience: usize,
    /// Steps between resumable checkpoints in `RUN/checkpoint` (0: none). One is also
    /// written when a run stops early (`stop_after`, `max_minutes`).
    pub checkpoint_every: u64,
    /// Train the reader on each question's own passage (its `context`, as SQuAD gives it)
    /// instead of the retrieved top-k: a reading-comprehension warm-up that costs a k-th
    /// per question, before fine-tuning with retrieval from its best model (`model.init`).
    /// The query tower gets no gradient; dev evaluation still retrieves.
    pub own_passages: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lr: 3e-5,
            warmup: 100,
            weight_decay: 0.01,
            clip_norm: 1.0,
            batch_questions: 4,
            epochs: 1,
            max_steps: None,
            stop_after: None,
            max_minutes: None,
            seed: 1,
            dev_every: 200,
            dev_limit: 300,
            patience: 3,
            checkpoint_every: 50,
            own_passages: false,
        }
    }
}

impl FinetuneConfig {
    pub fn from_toml(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ragl_core::Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].lines().count().max(1))
                .unwrap_or(0);
            Error::Mismatch(format!("{}:{line}: {}", path.display(), e.message()))
        })
    }
}

/// What a saved QA model needs besides its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QaModelMeta {
    pub query: EncoderSpec,
    pub query_config: BertConfig,
    /// The reader's BERT directory (its tokenizer is read from there).
    pub reader: PathBuf,
    pub reader_config: BertConfig,
    pub span: SpanReaderConfig,
    /// The index the query tower was trained against.
    pub index: PathBuf,
}

/// Everything loaded for training or prediction.
pub struct Loaded<B: Backend> {
    pub model: OpenQa<B>,
    pub meta: QaModelMeta,
    pub query_tokenizer: TextTokenizer,
    pub reader_tokenizer: TextTokenizer,
    pub pooling: QueryPooling,
}

/// Builds the starting model: the index's query encoder and the reader checkpoint.
pub fn init<B: Backend>(
    cfg: &FinetuneConfig,
    index: &ragl_index::Index,
    device: &B::Device,
) -> Result<Loaded<B>> {
    let recorded = EncoderSpec::from_manifest(&index.meta.encoder, true);
    let spec = match (&cfg.model.query, recorded) {
        (Some(q), Some(r)) => {
            EncoderSpec::resolve(q, Some(r.pooling), Some(r.normalize), r.max_len)
        }
        (Some(q), None) => EncoderSpec::resolve(q, None, None, 64),
        (None, Some(r)) => r,
        (None, None) => {
            return Err(Error::Mismatch(format!(
                "{}: the index records no BERT encoder (BM25 or user vectors): set model.query to the query tower's checkpoint",
                index.dir.display()
            )));
        }
    };
    if cfg.model.reader.as_os_str().is_empty() {
        return Err(Error::Mismatch(
            "the config names no model.reader (a BERT directory) and no model.init (a QA model)"
                .into(),
        ));
    }
    let q = ragl_model::checkpoint::load::<B>(&spec.model, device)?;
    let r = ragl_model::checkpoint::load::<B>(&cfg.model.reader, device)?;
    let meta = QaModelMeta {
        query: spec.clone(),
        query_config: q.config.clone(),
        reader: std::fs::canonicalize(&cfg.model.reader).unwrap_or(cfg.model.reader.clone()),
        reader_config: r.config.clone(),
        span: cfg.model.span,
        index: index.dir.clone(),
    };
    let model = OpenQa {
        query: q.bert,
        reader: SpanReader::new(r.bert, &cfg.model.span, device),
    };
    finish_load(model, meta)
}

fn finish_load<B: Backend>(model: OpenQa<B>, meta: QaModelMeta) -> Result<Loaded<B>> {
    let query_tokenizer = TextTokenizer::from_dir(&meta.query.model, meta.query.max_len)?;
    let reader_tokenizer = TextTokenizer::from_dir(&meta.reader, meta.span.max_len)?;
    let pooling = QueryPooling {
        pooling: meta.query.pooling,
        normalize: meta.query.normalize,
        pad_id: query_tokenizer.pad_id,
    };
    Ok(Loaded {
        model,
        meta,
        query_tokenizer,
        reader_tokenizer,
        pooling,
    })
}

/// Saves a QA model directory (weights, meta, manifest), atomically.
pub fn save<B: Backend>(model: &OpenQa<B>, meta: &QaModelMeta, dir: &Path) -> Result<()> {
    let staging = ragl_core::atomic::temp_path(dir);
    let m = stage_model(model, meta, &staging, KIND)?;
    m.write(&staging)?;
    ragl_core::atomic::publish_dir(&staging, dir)?;
    Ok(())
}

/// Writes the weights into a fresh `staging` and returns its manifest, not yet written.
fn stage_model<B: Backend>(
    model: &OpenQa<B>,
    meta: &QaModelMeta,
    staging: &Path,
    kind: &str,
) -> Result<ragl_core::manifest::Manifest> {
    let _ = std::fs::remove_dir_all(staging);
    std::fs::create_dir_all(staging).map_err(|e| ragl_core::Error::io(staging, e))?;
    model
        .clone()
        .save_file(staging.join("model"), &Recorder::new())
        .map_err(|e| Error::Mismatch(format!("saving {}: {e}", staging.display())))?;
    let mut m = ragl_core::manifest::Manifest::new(kind, FORMAT_VERSION);
    m.config = serde_json::to_value(meta).expect("meta serialises");
    m.counts
        .insert("parameters".into(), model.num_params() as u64);
    m.add_file(staging, WEIGHTS)?;
    m.model_fingerprint = m.files.get(WEIGHTS).cloned();
    Ok(m)
}

fn skeleton<B: Backend>(meta: &QaModelMeta, device: &B::Device) -> OpenQa<B> {
    let (query, _) = meta.query_config.init::<B>(false, device);
    let (reader, _) = meta.reader_config.init::<B>(false, device);
    OpenQa {
        query,
        reader: SpanReader::new(reader, &meta.span, device),
    }
}

const CKPT_KIND: &str = "qa-finetune-checkpoint";
const OPTIM: &str = "optim";

/// Where a run stands: with the weights and the optimiser, enough to continue it exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CkptState {
    step: u64,
    best_dev_em: f64,
    best_step: u64,
    stale: usize,
    no_gold: u64,
    /// The run's config, to refuse resuming under another.
    config: FinetuneConfig,
}

#[derive(Serialize, Deserialize)]
struct CkptConfig {
    meta: QaModelMeta,
    state: CkptState,
}

fn save_checkpoint<B: AutodiffBackend, O: Optimizer<OpenQa<B>, B>>(
    dir: &Path,
    model: &OpenQa<B>,
    optim: &O,
    meta: &QaModelMeta,
    state: CkptState,
) -> Result<()> {
    let staging = ragl_core::atomic::temp_path(dir);
    let mut m = stage_model(model, meta, &staging, CKPT_KIND)?;
    Recorder::new()
        .record(optim.to_record(), staging.join(OPTIM))
        .map_err(|e| Error::Mismatch(format!("saving {}: {e}", staging.display())))?;
    m.add_file(&staging, "optim.mpk")?;
    m.config = serde_json::to_value(CkptConfig {
        meta: meta.clone(),
        state,
    })
    .expect("checkpoint serialises");
    m.write(&staging)?;
    ragl_core::atomic::publish_dir(&staging, dir)?;
    Ok(())
}

fn load_checkpoint<B: AutodiffBackend, O: Optimizer<OpenQa<B>, B>>(
    dir: &Path,
    optim: O,
    device: &B::Device,
) -> Result<(OpenQa<B>, O, CkptState)> {
    let m = ragl_core::manifest::Manifest::open_checked(dir, CKPT_KIND, FORMAT_VERSION, None)?;
    m.verify_files(dir)?;
    let c: CkptConfig = serde_json::from_value(m.config.clone())
        .map_err(|e| Error::Mismatch(format!("{}: {e}", dir.display())))?;
    let rec = Recorder::new();
    let model = skeleton::<B>(&c.meta, device)
        .load_file(dir.join("model"), &rec, device)
        .map_err(|e| Error::Mismatch(format!("{}: {e}", dir.display())))?;
    let orec = rec
        .load(dir.join(OPTIM), device)
        .map_err(|e| Error::Mismatch(format!("{}: {e}", dir.display())))?;
    Ok((model, optim.load_record(orec), c.state))
}

/// The parts of a config that must not change when a run resumes (the stopping rules may).
fn resumable_part(c: &FinetuneConfig) -> serde_json::Value {
    let mut c = c.clone();
    (c.train.stop_after, c.train.max_minutes) = (None, None);
    serde_json::to_value(c).expect("config serialises")
}

/// Loads a QA model directory written by [`save`].
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<Loaded<B>> {
    let m = ragl_core::manifest::Manifest::open_checked(dir, KIND, FORMAT_VERSION, None)?;
    m.verify_files(dir)?;
    let meta: QaModelMeta = serde_json::from_value(m.config.clone())
        .map_err(|e| Error::Mismatch(format!("{}: {e}", dir.display())))?;
    let model = skeleton::<B>(&meta, device)
        .load_file(dir.join("model"), &Recorder::new(), device)
        .map_err(|e| Error::Mismatch(format!("{}: {e}", dir.join(WEIGHTS).display())))?;
    finish_load(model, meta)
}

/// Reads passages and orders them by index row (the index's ids).
pub fn passages_by_row(path: &Path, index: &ragl_index::Index) -> Result<Vec<Passage>> {
    let mut by_id = std::collections::HashMap::new();
    for p in ragl_core::passage::Passages::open(&Input::from_arg(path), false)? {
        let p = p?;
        by_id.insert(p.id.clone(), p);
    }
    index
        .ids
        .iter()
        .map(|id| {
            by_id.remove(id).ok_or_else(|| {
                Error::Mismatch(format!(
                    "index {} has passage {id:?}, which {} does not",
                    index.dir.display(),
                    path.display()
                ))
            })
        })
        .collect()
}

fn matchers(exs: &[QaExample]) -> Result<Vec<AnswerMatcher>> {
    exs.iter()
        .map(|e| AnswerMatcher::new(&e.answer).map_err(Error::from))
        .collect()
}

/// Predicted answer text for each question, with its passage row and score.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub text: String,
    pub passage: Option<String>,
    pub score: f32,
}

/// Predicts answers in batches of `batch` questions.
pub fn predict<B: Backend>(
    l: &Loaded<B>,
    index: &ragl_index::Index,
    passages: &[Passage],
    questions: &[&str],
    k: usize,
    batch: usize,
    progress: impl FnMut(usize),
) -> Result<Vec<Prediction>> {
    let ctx = RetrievalContext {
        index,
        passages,
        query_tokenizer: &l.query_tokenizer,
        reader_tokenizer: &l.reader_tokenizer,
        reader: &l.meta.span,
        k,
    };
    predict_with(&l.model, l.pooling, &ctx, questions, batch, progress)
}

fn predict_with<B: Backend>(
    model: &OpenQa<B>,
    pooling: QueryPooling,
    ctx: &RetrievalContext,
    questions: &[&str],
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Prediction>> {
    use rayon::prelude::*;
    // One batch's ops keep about one core busy on the CPU backend, so batches run side by
    // side, as many as rayon has threads; order is kept.
    let chunks: Vec<&[&str]> = questions.chunks(batch.max(1)).collect();
    let width = rayon::current_num_threads().max(1);
    let mut out = Vec::with_capacity(questions.len());
    for group in chunks.chunks(width) {
        let done: Vec<Result<Vec<Prediction>>> = group
            .par_iter()
            .map(|chunk| predict_chunk(model, pooling, ctx, chunk))
            .collect();
        for (chunk, r) in group.iter().zip(done) {
            out.extend(r?);
            progress(chunk.len());
        }
    }
    Ok(out)
}

fn predict_chunk<B: Backend>(
    model: &OpenQa<B>,
    pooling: QueryPooling,
    ctx: &RetrievalContext,
    chunk: &[&str],
) -> Result<Vec<Prediction>> {
    let passages = ctx.passages;
    let (items, rows) = retrieve(model, pooling, ctx, chunk, None)?;
    let preds = model.predict(&items, pooling);
    Ok(preds
        .into_iter()
        .zip(rows)
        .zip(chunk)
        .map(|((best, rows), question)| match best {
            // Closed-book: the span is in the question, the only text there is.
            Some(b) if rows.is_empty() => Prediction {
                text: question[b.bytes.0..b.bytes.1].to_string(),
                passage: None,
                score: b.score,
            },
            Some(b) => {
                let p = &passages[rows[b.doc] as usize];
                Prediction {
                    text: p.text[b.bytes.0..b.bytes.1].to_string(),
                    passage: Some(p.id.clone()),
                    score: b.score,
                }
            }
            None => Prediction {
                text: String::new(),
                passage: None,
                score: f32::NEG_INFINITY,
            },
        })
        .collect())
}

/// Exact match of predictions against examples' answers.
pub fn exact_match(preds: &[Prediction], exs: &[QaExample]) -> Result<f64> {
    let mut correct = 0usize;
    for (p, e) in preds.iter().zip(exs) {
        let gold =
            ragl_eval::qa_data::gold_answers(e).map_err(|e| Error::Mismatch(e.to_string()))?;
        if gold.score(&p.text).0 {
            correct += 1;
        }
    }
    Ok(100.0 * correct as f64 / exs.len().max(1) as f64)
}

/// One progress report of [`finetune`].
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    pub step: u64,
    pub total: u64,
    pub loss: f64,
    pub dev_em: Option<f64>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct FinetuneSummary {
    pub steps: u64,
    pub best_dev_em: f64,
    pub best_step: u64,
    pub minutes: f64,
    /// Training questions with no gold span in their top-k (they teach nothing).
    pub no_gold: u64,
    /// The checkpoint step this run continued from.
    pub resumed_from: Option<u64>,
}

fn read_questions(path: &Path) -> Result<Vec<QaExample>> {
    let input = Input::from_arg(path);
    let format = ragl_eval::qa_data::GoldFormat::detect(&input)
        .map_err(|e| Error::Mismatch(e.to_string()))?;
    ragl_eval::qa_data::read_gold(&input, format).map_err(|e| Error::Mismatch(e.to_string()))
}

/// Fine-tunes from `cfg` into `run_dir` (`config.json`, `metrics.csv`, `best/`,
/// `checkpoint/`), resuming from `run_dir/checkpoint` when it is there.
pub fn finetune<B: AutodiffBackend>(
    cfg: &FinetuneConfig,
    run_dir: &Path,
    device: &B::Device,
    workers: usize,
    mut progress: impl FnMut(StepReport),
) -> Result<FinetuneSummary> {
    let t0 = Instant::now();
    let t = &cfg.train;
    B::seed(device, t.seed);
    let index =
        ragl_index::Index::open(&cfg.data.index).map_err(|e| Error::Mismatch(e.to_string()))?;
    let passages = passages_by_row(&cfg.data.passages, &index)?;
    let train = read_questions(&cfg.data.train)?;
    let mut dev = read_questions(&cfg.data.dev)?;
    dev.truncate(t.dev_limit.max(1));
    let train_m = matchers(&train)?;
    if t.own_passages
        && let Some(e) = train.iter().find(|e| e.context.is_none())
    {
        return Err(Error::Mismatch(format!(
            "{}: train.own_passages needs each training question's passage (`context`), and this one has none",
            e.source
        )));
    }
    let l = match &cfg.model.init {
        Some(dir) => {
            let l = load::<B>(dir, device)?;
            let same =
                |a: &Path, b: &Path| std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok();
            if !same(&l.meta.index, &index.dir) {
                return Err(Error::Mismatch(format!(
                    "{}: trained over index {}, but data.index is {}",
                    dir.display(),
                    l.meta.index.display(),
                    index.dir.display()
                )));
            }
            l
        }
        None => init::<B>(cfg, &index, device)?,
    };
    let Loaded {
        mut model,
        meta,
        query_tokenizer,
        reader_tokenizer,
        pooling,
    } = l;
    let bq = t.batch_questions.max(1);
    let per_epoch = train.len().div_ceil(bq) as u64;
    let total = t
        .max_steps
        .unwrap_or(u64::MAX)
        .min(per_epoch * t.epochs.max(1));
    let mut optim_cfg = AdamWConfig::new()
        .with_weight_decay(t.weight_decay)
        .with_epsilon(1e-8);
    if t.clip_norm > 0.0 {
        optim_cfg = optim_cfg.with_grad_clipping(Some(GradientClippingConfig::Norm(t.clip_norm)));
    }
    let mut optim = optim_cfg.init::<B, OpenQa<B>>();
    let ckpt_dir = run_dir.join("checkpoint");
    let mut resumed = None;
    if ckpt_dir.exists() {
        let (m, o, st) = load_checkpoint::<B, _>(&ckpt_dir, optim, device)?;
        if resumable_part(&st.config) != resumable_part(cfg) {
            return Err(Error::Mismatch(format!(
                "{}: written by a run with another config; use a new run directory, or delete the checkpoint to start over",
                ckpt_dir.display()
            )));
        }
        (model, optim, resumed) = (m, o, Some(st));
    }
    if !cfg.model.train_query {
        model.query = model.query.no_grad();
    }
    std::fs::create_dir_all(run_dir).map_err(|e| ragl_core::Error::io(run_dir, e))?;
    ragl_core::atomic::write_bytes_atomic(
        &run_dir.join("config.json"),
        &serde_json::to_vec_pretty(cfg).expect("config serialises"),
    )?;
    let metrics_path = run_dir.join("metrics.csv");
    // A resumed run drops the rows written after its checkpoint, then appends.
    ragl_core::atomic::truncate_steps(
        &metrics_path,
        METRICS_HEADER,
        resumed.as_ref().map_or(0, |s: &CkptState| s.step),
    )?;
    let mut metrics = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .map_err(|e| ragl_core::Error::io(&metrics_path, e))?,
    );
    let lr_at = |s: u64| crate::warmup_linear_decay(t.lr, t.warmup, total, s);
    let dev_questions: Vec<&str> = dev.iter().map(|e| e.question.as_str()).collect();
    let mut summary = FinetuneSummary {
        steps: 0,
        best_dev_em: f64::NEG_INFINITY,
        best_step: 0,
        minutes: 0.0,
        no_gold: 0,
        resumed_from: None,
    };
    let mut stale = 0usize;
    let mut step = 0u64;
    if let Some(st) = &resumed {
        (summary.best_dev_em, summary.best_step, summary.no_gold) =
            (st.best_dev_em, st.best_step, st.no_gold);
        (summary.resumed_from, summary.steps, stale, step) =
            (Some(st.step), st.step, st.stale, st.step);
    }
    let start = step;
    let out_of_time = || {
        t.max_minutes
            .is_some_and(|m| t0.elapsed().as_secs_f64() / 60.0 >= m)
    };
    let checkpoint = |model: &OpenQa<B>, optim: &_, step, summary: &FinetuneSummary, stale| {
        let state = CkptState {
            step,
            best_dev_em: summary.best_dev_em,
            best_step: summary.best_step,
            stale,
            no_gold: summary.no_gold,
            config: cfg.clone(),
        };
        save_checkpoint(&ckpt_dir, model, optim, &meta, state)
    };
    // Built once: tokenizers and passages serve every step and every evaluation.
    let ctx = RetrievalContext {
        index: &index,
        passages: &passages,
        query_tokenizer: &query_tokenizer,
        reader_tokenizer: &reader_tokenizer,
        reader: &meta.span,
        k: cfg.model.k,
    };
    'epochs: for epoch in 0..t.epochs.max(1) {
        let mut order: Vec<usize> = (0..train.len()).collect();
        Rng::new(t.seed ^ (epoch + 1).wrapping_mul(0x9E37_79B9)).shuffle(&mut order);
        for (pos, chunk) in order.chunks(bq).enumerate() {
            if epoch * per_epoch + (pos as u64) < start {
                continue; // done before the checkpoint this run resumed from
            }
            if step >= total || t.stop_after.is_some_and(|s| step >= s) || out_of_time() {
                break 'epochs;
            }
            step += 1;
            // Seeded by the step, so a resumed run draws what an uninterrupted one would.
            B::seed(device, t.seed.wrapping_add(step));
            let qs: Vec<&str> = chunk.iter().map(|&i| train[i].question.as_str()).collect();
            let ms: Vec<AnswerMatcher> = chunk.iter().map(|&i| train_m[i].clone()).collect();
            let items = if t.own_passages {
                // Titled as the corpus chunker titles SQuAD's passages.
                let titles: Vec<Option<String>> = chunk
                    .iter()
                    .map(|&i| {
                        train[i]
                            .title
                            .as_deref()
                            .map(ragl_corpus::document::squad_title)
                    })
                    .collect();
                let own: Vec<(Option<&str>, &str)> = chunk
                    .iter()
                    .zip(&titles)
                    .map(|(&i, t)| {
                        (
                            t.as_deref(),
                            train[i].context.as_deref().unwrap_or_default(),
                        )
                    })
                    .collect();
                own_passages(&ctx, &qs, &own, &ms)?
            } else {
                retrieve(&model.valid(), pooling, &ctx, &qs, Some(&ms))?.0
            };
            let lr = lr_at(step);
            let gold: Vec<_> = items
                .into_iter()
                .filter(|r| r.gold.contains(&true))
                .collect();
            let (loss, n) = if gold.is_empty() {
                (f64::NAN, 0)
            } else {
                // Each worker's mean is scaled by its share, so the parts sum to the
                // batch mean and the update is the same as one worker's.
                let n = gold.len();
                let parts: Vec<&[_]> = gold.chunks(n.div_ceil(workers.max(1))).collect();
                let (values, grads) = data_parallel(&model, &parts, |m, part| {
                    let (loss, k) = m.loss(part, pooling).expect("every part has a gold span");
                    let loss = loss * (k as f32 / n as f32);
                    let v = loss.clone().into_scalar().elem::<f64>();
                    (v, GradientsParams::from_grads(loss.backward(), m))
                });
                model = optim.step(lr, model, grads);
                (values.iter().sum(), n)
            };
            summary.no_gold += (chunk.len() - n) as u64;
            let mut dev_em = None;
            // A run cut by its time limit stops before the next step: evaluate this one, so
            // that the steps since the last evaluation are not lost to the best model.
            let last = step == total || t.stop_after == Some(step) || out_of_time();
            if t.dev_every > 0 && (step.is_multiple_of(t.dev_every) || last) {
                let inner = model.valid();
                let preds = predict_with(&inner, pooling, &ctx, &dev_questions, bq * 4, |_| {})?;
                let em = exact_match(&preds, &dev)?;
                dev_em = Some(em);
                if em > summary.best_dev_em {
                    summary.best_dev_em = em;
                    summary.best_step = step;
                    stale = 0;
                    save(&inner, &meta, &run_dir.join("best"))?;
                } else {
                    stale += 1;
                }
            }
            writeln!(
                metrics,
                "{step},{epoch},{lr:.3e},{loss:.5},{n},{:.1},{}",
                t0.elapsed().as_secs_f64(),
                dev_em.map(|e| format!("{e:.2}")).unwrap_or_default()
            )
            .map_err(|e| ragl_core::Error::io(&metrics_path, e))?;
            if step.is_multiple_of(20) || dev_em.is_some() {
                metrics
                    .flush()
                    .map_err(|e| ragl_core::Error::io(&metrics_path, e))?;
            }
            progress(StepReport {
                step,
                total,
                loss,
                dev_em,
            });
            summary.steps = step;
            if t.checkpoint_every > 0 && step.is_multiple_of(t.checkpoint_every) {
                metrics
                    .flush()
                    .map_err(|e| ragl_core::Error::io(&metrics_path, e))?;
                checkpoint(&model, &optim, step, &summary, stale)?;
            }
            if t.patience > 0 && stale >= t.patience {
                break 'epochs;
            }
        }
    }
    metrics
        .flush()
        .map_err(|e| ragl_core::Error::io(&metrics_path, e))?;
    if t.checkpoint_every > 0 && step > start && !step.is_multiple_of(t.checkpoint_every) {
        checkpoint(&model, &optim, step, &summary, stale)?;
    }
    summary.minutes = t0.elapsed().as_secs_f64() / 60.0;
    Ok(summary)
}
