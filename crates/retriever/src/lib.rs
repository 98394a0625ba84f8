//! # ragl-retriever
//!
//! REALM's retriever as a standalone tool: a document tower encodes the corpus into an
//! index ([`corpus`]), a query tower encodes questions, and the index returns the top-k
//! passages by inner product ([`search`]); BM25 indexes take the question text directly.
//! The two towers may be one model (tied, as in REALM's initialisation from one BERT) or
//! two (DPR); the index records the fingerprints of both so that a query encoder that does
//! not belong to it is refused.

pub mod corpus;
pub mod fusion;
pub mod queries;
pub mod search;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    #[error(transparent)]
    Model(#[from] ragl_model::Error),
    #[error(transparent)]
    Index(#[from] ragl_index::Error),
    #[error(transparent)]
    Eval(#[from] ragl_eval::Error),
    /// A query encoder, index and request that do not belong together.
    #[error("{0}")]
    Mismatch(String),
}

impl Error {
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Model(e) => e.is_bad_input(),
            Error::Index(e) => e.is_bad_input(),
            Error::Eval(_) | Error::Mismatch(_) => true,
        }
    }
}
