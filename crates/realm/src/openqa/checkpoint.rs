//! Saved QA models (`RUN/best`, manifest kind `qa-model`: query tower, span reader and
//! what they need to run) and the run checkpoint (model, AdamW state, step, best dev EM),
//! from which a run resumes exactly.

use std::path::{Path, PathBuf};

use burn::optim::Optimizer;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder as _};
use burn::tensor::backend::AutodiffBackend;
use ragl_model::bert::BertConfig;
use ragl_model::encode::EncoderSpec;
use ragl_model::realm::RealmProjection;
use ragl_model::tokenizer::TextTokenizer;
use ragl_reader::span::{SpanReader, SpanReaderConfig};
use serde::{Deserialize, Serialize};

use super::config::FinetuneConfig;
use super::model::{OpenQa, QueryPooling};
use crate::{Error, Result};

pub const KIND: &str = "qa-model";
pub const FORMAT_VERSION: u32 = 1;
const WEIGHTS: &str = "model.mpk";

type Recorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// What a saved QA model needs besides its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QaModelMeta {
    pub query: EncoderSpec,
    pub query_config: BertConfig,
    /// The width of the query tower's REALM projection, when it has one.
    #[serde(default)]
    pub query_projection: Option<usize>,
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
    // A REALM embedder brings its projection; any other tower is a BERT checkpoint.
    let (q_bert, q_config, q_projection) = if ragl_model::realm::is_realm_dir(&spec.model) {
        let l = ragl_model::realm::load_embedder::<B>(&spec.model, device)?;
        (l.embedder.bert, l.config.bert, Some(l.embedder.projection))
    } else {
        let q = ragl_model::checkpoint::load::<B>(&spec.model, device)?;
        (q.bert, q.config, None)
    };
    let r = ragl_model::checkpoint::load::<B>(&cfg.model.reader, device)?;
    let meta = QaModelMeta {
        query: spec.clone(),
        query_config: q_config,
        query_projection: q_projection.as_ref().map(|p| p.dim()),
        reader: std::fs::canonicalize(&cfg.model.reader).unwrap_or(cfg.model.reader.clone()),
        reader_config: r.config.clone(),
        span: cfg.model.span,
        index: index.dir.clone(),
    };
    let model = OpenQa {
        query: q_bert,
        query_projection: q_projection,
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
    let _staging = ragl_core::atomic::StagingGuard::new(&staging);
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
        .map_err(|e| Error::save(staging, e))?;
    let mut m = ragl_core::manifest::Manifest::new(kind, FORMAT_VERSION);
    m.config = serde_json::to_value(meta).expect("meta serialises");
    m.counts
        .insert("parameters".into(), model.num_params() as u64);
    m.add_file(staging, WEIGHTS)?;
    m.model_fingerprint = m.files.get(WEIGHTS).cloned();
    Ok(m)
}

fn skeleton<B: Backend>(meta: &QaModelMeta, device: &B::Device) -> OpenQa<B> {
    // REALM's projection reads the BERT pooler's output.
    let (query, _) = meta
        .query_config
        .init::<B>(meta.query_projection.is_some(), device);
    let (reader, _) = meta.reader_config.init::<B>(false, device);
    let c = &meta.query_config;
    OpenQa {
        query,
        query_projection: meta
            .query_projection
            .map(|p| RealmProjection::new(c.hidden_size, p, c.layer_norm_eps, device)),
        reader: SpanReader::new(reader, &meta.span, device),
    }
}

const CKPT_KIND: &str = "qa-finetune-checkpoint";
const OPTIM: &str = "optim";

/// Where a run stands: with the weights and the optimiser, enough to continue it exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CkptState {
    pub step: u64,
    pub best_dev_em: f64,
    pub best_step: u64,
    pub stale: usize,
    pub no_gold: u64,
    /// The run's config, to refuse resuming under another.
    pub config: FinetuneConfig,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct CkptConfig {
    pub meta: QaModelMeta,
    pub state: CkptState,
}

pub(crate) fn save_checkpoint<B: AutodiffBackend, O: Optimizer<OpenQa<B>, B>>(
    dir: &Path,
    model: &OpenQa<B>,
    optim: &O,
    meta: &QaModelMeta,
    state: CkptState,
) -> Result<()> {
    let staging = ragl_core::atomic::temp_path(dir);
    let _staging = ragl_core::atomic::StagingGuard::new(&staging);
    let mut m = stage_model(model, meta, &staging, CKPT_KIND)?;
    Recorder::new()
        .record(optim.to_record(), staging.join(OPTIM))
        .map_err(|e| Error::save(&staging, e))?;
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

pub(crate) fn load_checkpoint<B: AutodiffBackend, O: Optimizer<OpenQa<B>, B>>(
    dir: &Path,
    optim: O,
    device: &B::Device,
) -> Result<(OpenQa<B>, O, CkptState)> {
    let m = ragl_core::manifest::Manifest::open_checked(dir, CKPT_KIND, FORMAT_VERSION, None)?;
    m.verify_files(dir)?;
    let c: CkptConfig =
        serde_json::from_value(m.config.clone()).map_err(|e| Error::load(dir, e))?;
    let rec = Recorder::new();
    let model = skeleton::<B>(&c.meta, device)
        .load_file(dir.join("model"), &rec, device)
        .map_err(|e| Error::load(dir, e))?;
    let orec = rec
        .load(dir.join(OPTIM), device)
        .map_err(|e| Error::load(dir, e))?;
    Ok((model, optim.load_record(orec), c.state))
}

/// The parts of a config that must not change when a run resumes (the stopping rules may).
pub(crate) fn resumable_part(c: &FinetuneConfig) -> serde_json::Value {
    let mut c = c.clone();
    (c.train.stop_after, c.train.max_minutes) = (None, None);
    serde_json::to_value(c).expect("config serialises")
}

/// Loads a QA model directory written by [`save`].
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<Loaded<B>> {
    let m = ragl_core::manifest::Manifest::open_checked(dir, KIND, FORMAT_VERSION, None)?;
    m.verify_files(dir)?;
    let meta: QaModelMeta =
        serde_json::from_value(m.config.clone()).map_err(|e| Error::load(dir, e))?;
    let model = skeleton::<B>(&meta, device)
        .load_file(dir.join("model"), &Recorder::new(), device)
        .map_err(|e| Error::load(&dir.join(WEIGHTS), e))?;
    finish_load(model, meta)
}
