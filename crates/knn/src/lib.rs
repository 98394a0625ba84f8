//! # ragl-knn
//!
//! kNN-MT (Khandelwal et al., 2021) decomposed as knn-box does it: a [`datastore`] of
//! (decoder state → next target token) pairs built by teacher-forcing the translation model
//! over parallel text, searched by L2 through a ragl index (HNSW or exact); a [`combiner`]
//! that turns the k nearest neighbours into `p_kNN(y) ∝ Σ_{i: v_i = y} exp(-d_i / T)` and
//! mixes it with the model, `p = λ·p_kNN + (1-λ)·p_MT`. Variants (adaptive kNN-MT, kNN-LM)
//! are new combiners, not forks. [`lm`] is kNN-LM: the same datastore keyed on a language
//! model's context vectors over any text, and perplexity interpolated with `p_kNN`. [`KnnHook`] plugs a datastore and a combiner into
//! `ragl_mt::beam`, searching the neighbours of all hypotheses of all sentences at once.
//!
//! ```no_run
//! # fn main() -> ragl_knn::Result<()> {
//! use burn::backend::Flex;
//! use std::path::Path;
//! let m = ragl_mt::checkpoint::load::<Flex>(Path::new("runs/mt-base"), &Default::default())?;
//! let ds = ragl_knn::datastore::Datastore::open(Path::new("ds/koran"), Some(&m.fingerprint))?;
//! let mut hook = ragl_knn::KnnHook::new(&ds, 8, ragl_knn::combiner::KnnMt { lambda: 0.5, temperature: 10.0 });
//! let out = ragl_mt::beam::translate(&m, &["Im Namen Gottes."], &Default::default(), &mut hook)?;
//! # Ok(()) }
//! ```

pub mod combiner;
pub mod datastore;
pub mod lm;
pub mod sweep;

use std::path::PathBuf;

pub use combiner::{Combiner, KnnHook};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    #[error(transparent)]
    Index(#[from] ragl_index::Error),
    #[error(transparent)]
    Mt(#[from] ragl_mt::Error),
    #[error(transparent)]
    Lm(#[from] ragl_lm::Error),
    #[error(transparent)]
    Model(#[from] ragl_model::Error),
    #[error("{path}: {message}")]
    Datastore { path: PathBuf, message: String },
}

impl Error {
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Index(e) => e.is_bad_input(),
            Error::Mt(e) => e.is_bad_input(),
            Error::Lm(e) => e.is_bad_input(),
            Error::Model(e) => e.is_bad_input(),
            Error::Datastore { .. } => true,
        }
    }
}
