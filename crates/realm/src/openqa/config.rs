//! The fine-tuning run configuration (`configs/qa/*.toml`): questions, passages and
//! index, the reader's start, k, and the optimiser.

use std::path::{Path, PathBuf};

use ragl_reader::span::SpanReaderConfig;
use serde::{Deserialize, Serialize};

use crate::Result;

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
        Ok(ragl_core::read::toml_file(path)?)
    }
}
