//! Errors of index building and search.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    /// The index is damaged or not one ragl can read (truncated file, hash mismatch, ...).
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// A request that cannot be served by this index (wrong dimension, unknown id, ...).
    #[error("{0}")]
    Mismatch(String),
    /// usearch reported a failure.
    #[error("usearch: {0}")]
    Usearch(String),
}

impl Error {
    /// True when the user's input (not the machine) is at fault: the CLI exits with 2.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Corrupt { .. } | Error::Mismatch(_) => true,
            Error::Usearch(_) => false,
        }
    }
}
