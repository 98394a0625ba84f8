//! # ragl-mt
//!
//! The translation model kNN-MT needs: a datastore must be built from the very model that
//! decodes, so ragl trains its own. A joint BPE vocabulary ([`vocab`]), a transformer
//! encoder-decoder in burn ([`model`]), batches by token count ([`data`]), training with
//! label smoothing, inverse-square-root warm-up and resumable checkpoints ([`train`]),
//! checkpoint files and averaging ([`checkpoint`]), and batched beam search with a hook
//! that lets a combiner (kNN-MT) rewrite each step's distribution ([`beam`]).
//!
//! ```no_run
//! # fn main() -> ragl_mt::Result<()> {
//! use burn::backend::Flex;
//! let m = ragl_mt::checkpoint::load::<Flex>(std::path::Path::new("run/last"), &Default::default())?;
//! let out = ragl_mt::beam::translate(&m, &["Ein Hund läuft."], &ragl_mt::beam::BeamConfig::default(), &mut ragl_mt::beam::NoHook)?;
//! println!("{}", out[0]);
//! # Ok(()) }
//! ```

pub mod beam;
pub mod checkpoint;
pub mod data;
pub mod hf;
pub mod model;
pub mod moses;
pub mod score;
pub mod train;
pub mod vocab;

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    /// A Hugging Face checkpoint's files (weights, SentencePiece models, the cache lookup).
    #[error(transparent)]
    Model(#[from] ragl_model::Error),
    #[error("{path}:{line}: {message}")]
    Data {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("vocabulary: {0}")]
    Vocab(String),
    #[error("{path}: {message}")]
    Artifact { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    /// Weights or optimiser state that could not be written (a full disk, a size limit).
    #[error("cannot write {}: {message}", path.display())]
    Record { path: PathBuf, message: String },
}

impl Error {
    /// Whether the user can fix this in their files or flags (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Model(e) => e.is_bad_input(),
            Error::Data { .. } | Error::Artifact { .. } | Error::Config { .. } => true,
            // A write that fails is the disk's or the path's, which the user can fix.
            Error::Record { .. } => true,
            Error::Vocab(_) => false,
        }
    }
}
