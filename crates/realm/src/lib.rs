//! # ragl-realm
//!
//! REALM's training procedures. [`ict`] is the Inverse Cloze Task warm start of the retriever.
//! [`openqa`] is open-domain QA fine-tuning as REALM does it
//! (after ORQA): the query tower and the span reader are trained, the document index stays
//! fixed, and the retrieval scores of the top-k documents enter the reader's joint softmax,
//! so the marginal likelihood of the gold spans trains the query tower too. Pretraining with
//! an asynchronously refreshed index is [`pretrain`]: the masked-LM likelihood marginalised
//! over retrieved documents and ∅, both towers trained through it, the index re-embedded
//! by a background thread while training goes on.

pub mod ict;
pub mod openqa;
pub mod pretrain;
pub mod released;

/// The learning rate at `step` (1-based) of BERT's schedule: linear warm-up over `warmup`
/// steps to `peak`, then linear decay to 0 at `total`.
pub fn warmup_linear_decay(peak: f64, warmup: u64, total: u64, step: u64) -> f64 {
    let w = warmup.max(1);
    if step < w {
        peak * step as f64 / w as f64
    } else {
        peak * (total.saturating_sub(step) as f64 / (total - w.min(total)).max(1) as f64)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    #[error(transparent)]
    Model(#[from] ragl_model::Error),
    #[error(transparent)]
    Reader(#[from] ragl_reader::Error),
    #[error(transparent)]
    Eval(#[from] ragl_eval::Error),
    #[error(transparent)]
    Index(#[from] ragl_index::Error),
    /// A run config that asks for something inconsistent (one that does not parse is a
    /// `Core` error naming the line).
    #[error("{}: {message}", path.display())]
    Config {
        path: std::path::PathBuf,
        message: String,
    },
    /// Weights, optimiser state or a checkpoint's record that could not be written.
    #[error("saving {}: {message}", path.display())]
    Save {
        path: std::path::PathBuf,
        message: String,
    },
    /// A checkpoint or model directory whose records do not load (damaged, or written by
    /// another model shape).
    #[error("{}: {message}", path.display())]
    Load {
        path: std::path::PathBuf,
        message: String,
    },
    /// A background worker (the index refresher) that stopped or could not start.
    #[error("{0}")]
    Worker(String),
    /// Inputs that do not fit together (vocabularies, sizes, examples and passages).
    #[error("{0}")]
    Mismatch(String),
}

impl Error {
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Model(e) => e.is_bad_input(),
            Error::Reader(e) => e.is_bad_input(),
            Error::Eval(e) => e.is_bad_input(),
            Error::Index(e) => e.is_bad_input(),
            // A save that fails is the disk's or the path's, which the user can fix.
            Error::Config { .. } | Error::Load { .. } | Error::Save { .. } | Error::Mismatch(_) => {
                true
            }
            Error::Worker(_) => false,
        }
    }

    pub(crate) fn config(path: &std::path::Path, message: impl Into<String>) -> Self {
        Error::Config {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn save(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Error::Save {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    pub(crate) fn load(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Error::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}
