//! The run configuration (`configs/realm/*.toml`): data, towers and reader, the
//! refresher, the optimiser, and the ICT warm start; checked when read, so that a bad
//! combination is a `file: message` error before any work starts.

use std::path::{Path, PathBuf};

use ragl_model::encode::Pooling;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `configs/realm/*.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    pub data: PretrainData,
    pub model: PretrainModel,
    #[serde(default)]
    pub refresh: RefreshConfig,
    #[serde(default)]
    pub train: PretrainTrain,
    /// The retriever's warm start (REALM's ICT), run once before the first index is built.
    #[serde(default)]
    pub ict: crate::ict::IctConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainData {
    /// Masked examples, `ragl mask make` JSONL.
    pub examples: PathBuf,
    /// The corpus the examples were made from: the documents to retrieve.
    pub passages: PathBuf,
    /// Examples held out for evaluation (drawn by the seed).
    #[serde(default = "d_heldout")]
    pub heldout: usize,
    /// Keep only the examples whose masked span occurs in a passage other than their own
    /// (its word pieces, in the part the reader sees): REALM's premise that the corpus
    /// holds what a masked span needs, which Wikipedia's redundancy gives and a small
    /// corpus does not. The held-out split is drawn from what is kept.
    #[serde(default)]
    pub span_elsewhere: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retrieval {
    /// MIPS over the (stale) index: REALM.
    Dense,
    /// k documents drawn uniformly: does *which* documents matter?
    Random,
    /// No documents but ∅: BERT's MLM on the same examples.
    None,
    /// Up to k passages that hold the masked span (as the reader sees them), drawn at
    /// random, the rest of the k random others: retrieval as good as the corpus allows.
    /// The ceiling of what documents can give this reader, and a warm-up that teaches it to
    /// copy from passages other than the sentence's own.
    Oracle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainModel {
    /// Query tower's starting BERT (HF directory).
    pub query: PathBuf,
    /// Doc tower's starting BERT (default: the query tower's).
    #[serde(default)]
    pub doc: Option<PathBuf>,
    /// The knowledge-augmented encoder: a BERT with an MLM head.
    pub reader: PathBuf,
    /// Start the reader's MLM head afresh (its decoder tied to the reader's word
    /// embeddings), for a reader checkpoint without one, such as a sentence encoder
    /// (MiniLM), or to drop a head trained for something else (a SPLADE fine-tune).
    #[serde(default)]
    pub fresh_mlm_head: bool,
    #[serde(default)]
    pub pooling: Pooling,
    #[serde(default = "yes")]
    pub normalize: bool,
    /// `p(z|x) ∝ exp(scale · q·d)`: with normalised vectors, the inverse temperature.
    #[serde(default = "d_scale")]
    pub score_scale: f32,
    /// Word pieces of a document seen by the doc tower.
    #[serde(default = "d_doc_len")]
    pub doc_max_len: usize,
    /// Length of `[CLS] x [SEP] z [SEP]` for the reader.
    #[serde(default = "d_reader_len")]
    pub reader_max_len: usize,
    #[serde(default = "d_k")]
    pub k: usize,
    #[serde(default = "yes")]
    pub null_doc: bool,
    #[serde(default = "yes")]
    pub exclude_own: bool,
    #[serde(default = "d_retrieval")]
    pub retrieval: Retrieval,
    /// Where the sum over documents is taken: over the whole masked span (the paper's
    /// `p(y|x) = Σ_z p(z|x) Π_j p(y_j|z,x)`), or per masked token (REALM's released code).
    #[serde(default)]
    pub marginal: Marginal,
}

/// How `p(y|x)` marginalises over the retrieved documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Marginal {
    /// `log Σ_z p(z|x) Π_j p(y_j|z,x)`: one posterior per sentence (REALM's equation 2).
    #[default]
    Span,
    /// `Σ_j log Σ_z p(z|x) p(y_j|z,x)`: each masked token picks its own documents, as in
    /// `language/realm/model.py` (there averaged over masks; here summed per sentence, so
    /// that losses and utilities stay in nats per sentence under both settings).
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefreshMode {
    /// A background thread re-embeds the corpus; training never waits.
    Async,
    /// The refresh runs in place at the snapshot step: reproducible, slower.
    Sync,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshConfig {
    /// Steps between doc-tower snapshots; 0 = never refresh (the index of step 0 stays).
    pub every: u64,
    pub mode: RefreshMode,
    /// Documents per forward pass when re-embedding.
    pub batch_size: usize,
    /// CPU threads the background re-embedding may use; 0 = all, shared with training (the
    /// refresh finishes soonest and training slows most while it runs). A smaller number
    /// keeps a known share of the cores for training, at the price of a staler index.
    pub threads: usize,
    /// With `mode = "async"`: the index made from the snapshot after step S is first used by
    /// step S + `swap_after`, and training waits for it there if it is not done yet. 0 (the
    /// default, REALM's way) swaps it in as soon as it is done and never waits; the step
    /// that happens on then depends on the machine's speed and load, so two runs with the
    /// same seed diverge from the first swap that lands on a different step. Set it a little
    /// above the lag `metrics.csv` shows to get reproducible runs at no cost in speed.
    pub swap_after: u64,
}

impl PretrainModel {
    /// The towers' scoring, as the ICT warm start trains it.
    pub fn scoring(&self) -> crate::ict::Scoring {
        crate::ict::Scoring {
            pooling: self.pooling,
            normalize: self.normalize,
            scale: self.score_scale,
        }
    }
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            every: 50,
            mode: RefreshMode::Async,
            batch_size: 32,
            threads: 0,
            swap_after: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainTrain {
    /// Peak learning rate of the towers (and of the reader unless `reader_lr` is set). 0
    /// freezes both towers: a fixed retriever, the reader alone trained.
    pub lr: f64,
    /// Peak learning rate of the reader (same schedule): a small reader such as bert-tiny
    /// wants a larger one than the towers, which must not drift far from their index.
    pub reader_lr: Option<f64>,
    pub warmup: u64,
    pub weight_decay: f32,
    pub clip_norm: f32,
    /// Examples per step.
    pub batch: usize,
    pub max_steps: u64,
    pub max_minutes: Option<f64>,
    pub seed: u64,
    /// Seed of the batch order alone (default: `seed`; the held-out split always follows
    /// `seed`): a run that continues another's model with the same held-out examples
    /// sees its training examples in a different order instead of the same ones again.
    pub data_seed: Option<u64>,
    /// Steps between held-out evaluations (0: only at the end).
    pub eval_every: u64,
    /// Steps between checkpoints (0: only at the end).
    pub save_every: u64,
    /// Weight of an extra reader loss: the mean over the retrieved documents of
    /// `−log p(y|z,x)`, each document read on its own. Not REALM's objective, whose reader
    /// learns only through the marginal: once the towers put most of `p(z|x)` on ∅, the
    /// posterior that weights the reader's gradient does too, and the reader stops learning
    /// to read documents. This term keeps it learning to copy from the ones that hold the
    /// span and to ignore the others. 0 (default) is REALM's.
    pub doc_read_loss: f32,
    /// Train the query tower alone and keep the doc tower as it starts, as ORQA and RAG
    /// do. The index then never goes stale, so the retrieved documents are scored from its
    /// vectors (no doc-tower pass: on a CPU most of a step's cost) and `[refresh]` must be
    /// off. Not REALM's setting, which trains both towers; it buys many more steps for the
    /// same time.
    pub freeze_doc: bool,
}

impl Default for PretrainTrain {
    fn default() -> Self {
        PretrainTrain {
            lr: 1e-4,
            reader_lr: None,
            warmup: 50,
            weight_decay: 0.01,
            clip_norm: 1.0,
            batch: 4,
            max_steps: 1000,
            max_minutes: None,
            seed: 1,
            data_seed: None,
            eval_every: 100,
            save_every: 100,
            doc_read_loss: 0.0,
            freeze_doc: false,
        }
    }
}

fn d_heldout() -> usize {
    300
}
fn yes() -> bool {
    true
}
fn d_scale() -> f32 {
    20.0
}
fn d_doc_len() -> usize {
    128
}
fn d_reader_len() -> usize {
    256
}
fn d_k() -> usize {
    8
}
fn d_retrieval() -> Retrieval {
    Retrieval::Dense
}

impl PretrainConfig {
    pub fn from_toml(path: &Path) -> Result<Self> {
        let cfg: PretrainConfig = ragl_core::read::toml_file(path)?;
        if cfg.model.retrieval != Retrieval::None && cfg.model.k == 0 {
            return Err(Error::config(
                path,
                "model.k must be at least 1 with retrieval (use retrieval = \"none\" for no documents)",
            ));
        }
        if cfg.model.retrieval == Retrieval::None && !cfg.model.null_doc {
            return Err(Error::config(
                path,
                "retrieval = \"none\" needs the null document",
            ));
        }
        let t = &cfg.train;
        if !(t.lr >= 0.0 && t.reader_lr.unwrap_or(t.lr) > 0.0) {
            return Err(Error::config(
                path,
                "train.lr must be ≥ 0 (0 freezes the towers) and the reader's learning rate (train.reader_lr, else train.lr) > 0",
            ));
        }
        let r = &cfg.refresh;
        if r.swap_after > 0
            && (r.mode != RefreshMode::Async || r.swap_after < 2 || r.swap_after > r.every)
        {
            return Err(Error::config(
                path,
                format!(
                    "refresh.swap_after = {} needs mode = \"async\" and 2 ≤ swap_after ≤ every ({}): the snapshot after step S is taken as step S + 1 begins",
                    r.swap_after, r.every
                ),
            ));
        }
        if t.freeze_doc && cfg.refresh.every > 0 {
            return Err(Error::config(
                path,
                "train.freeze_doc keeps the index exact: set [refresh] every = 0",
            ));
        }
        Ok(cfg)
    }

    pub(crate) fn doc_dir(&self) -> &Path {
        self.model.doc.as_deref().unwrap_or(&self.model.query)
    }
}
