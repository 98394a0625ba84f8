//! # ragl-index
//!
//! Search over passage embeddings, as REALM's retriever needs it: `p(z|x) ∝ exp(q·d)` asks
//! for the top-k documents by maximum inner product (MIPS).
//!
//! - [`exact`]: exact MIPS or L2 by blocked GEMM over all vectors, multi-threaded, with a
//!   per-query top-k; the ground truth every approximate result is audited against.
//! - [`hnsw`]: approximate search with usearch's HNSW (inner product or L2; f32, f16 or i8
//!   storage).
//! - [`bm25`]: a lexical BM25 index, the baseline every dense result is compared to.
//! - [`artifact`]: an index on disk is a directory with a manifest (encoder fingerprint,
//!   dimension, metric, count, format version, file hashes); [`build`] writes one in
//!   resumable chunks, or one shard of a corpus, and merges shards.
//!
//! The crate knows nothing of models: vectors come in as `f32` rows (from `ragl-retriever`,
//! or from a `.npy` a user made elsewhere).

pub mod artifact;
pub mod audit;
pub mod bm25;
pub mod build;
pub mod error;
pub mod exact;
pub mod graph;
pub mod hnsw;
pub mod simd;
pub mod store;
pub mod topk;

pub use artifact::{Index, IndexConfig};
pub use error::{Error, Result};
pub use topk::Hit;

/// How two vectors are compared. Scores are "higher is better" everywhere in ragl: the inner
/// product for `Ip`, the negated squared distance for `L2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Ip,
    L2,
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ip" => Ok(Metric::Ip),
            "l2" => Ok(Metric::L2),
            _ => Err(format!("unknown metric {s:?} (expected ip or l2)")),
        }
    }
}

/// Storage type of the vectors inside an HNSW graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F16,
    I8,
}

impl std::str::FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Dtype::F32),
            "f16" => Ok(Dtype::F16),
            "i8" => Ok(Dtype::I8),
            _ => Err(format!("unknown dtype {s:?} (expected f32, f16 or i8)")),
        }
    }
}
