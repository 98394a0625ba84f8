//! # ragl-realm
//!
//! REALM's training procedures. [`openqa`] is open-domain QA fine-tuning as REALM does it
//! (after ORQA): the query tower and the span reader are trained, the document index stays
//! fixed, and the retrieval scores of the top-k documents enter the reader's joint softmax,
//! so the marginal likelihood of the gold spans trains the query tower too. Pretraining with
//! an asynchronously refreshed index follows in this crate.

pub mod finetune;
pub mod openqa;
pub mod pretrain;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    #[error(transparent)]
    Model(#[from] ragl_model::Error),
    #[error(transparent)]
    Reader(#[from] ragl_reader::Error),
    #[error("{0}")]
    Mismatch(String),
}

impl Error {
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Model(e) => e.is_bad_input(),
            Error::Reader(e) => e.is_bad_input(),
            Error::Mismatch(_) => true,
        }
    }
}
