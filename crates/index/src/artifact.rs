//! An index on disk: a directory with `manifest.json` and its data files.
//!
//! ```text
//! IDX/manifest.json   kind "index", format version, config (below), encoder fingerprint,
//!                     counts, SHA-256 of every file
//! IDX/ids.txt         passage ids, one per line, in row order
//! IDX/vectors.f32     dense kinds: [n, dim] little-endian f32, memory-mapped for exact
//!                     search, read into huge pages for HNSW (absent from a graph-only
//!                     HNSW index, whose f16/i8 vectors live in the graph)
//! IDX/hnsw.usearch    hnsw: the usearch graph (memory-mapped)
//! IDX/bm25.bin        bm25: the inverted index
//! ```
//!
//! Opening an index checks kind, version, sizes and every file hash before anything reads
//! the data: usearch trusts its input, so a damaged graph must be refused, not loaded.

use std::path::{Path, PathBuf};

use ragl_core::manifest::Manifest;
use serde::{Deserialize, Serialize};

use crate::bm25::{BM25_FILE, Bm25, Bm25Config};
use crate::hnsw::{HNSW_FILE, Hnsw, HnswConfig};
use crate::store::{IDS_FILE, VECTORS_FILE, Vectors, read_ids};
use crate::topk::Hit;
use crate::{Error, Metric, Result, exact};

pub const KIND: &str = "index";
pub const FORMAT_VERSION: u32 = 1;

/// What kind of index, with its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum IndexConfig {
    Exact { metric: Metric },
    Hnsw { metric: Metric, hnsw: HnswConfig },
    Bm25 { bm25: Bm25Config },
}

impl IndexConfig {
    pub fn metric(&self) -> Option<Metric> {
        match self {
            IndexConfig::Exact { metric } | IndexConfig::Hnsw { metric, .. } => Some(*metric),
            IndexConfig::Bm25 { .. } => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            IndexConfig::Exact { .. } => "exact",
            IndexConfig::Hnsw { .. } => "hnsw",
            IndexConfig::Bm25 { .. } => "bm25",
        }
    }
}

/// Which rows of a corpus a shard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
    pub first_row: usize,
}

/// The `config` section of an index manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexMeta {
    pub index: IndexConfig,
    /// Vector dimension (0 for BM25).
    pub dim: usize,
    /// How the passages were encoded (model path, pooling, normalisation, max length);
    /// opaque to this crate, used by the retriever to encode queries the same way.
    #[serde(default)]
    pub encoder: serde_json::Value,
    /// Fingerprint of the query tower paired with the document tower that made the
    /// vectors (the same model for a tied dual encoder).
    #[serde(default)]
    pub query_fingerprint: Option<String>,
    /// SHA-256 of the passages file (or of the vectors a user supplied).
    pub source_sha256: String,
    #[serde(default)]
    pub shard: Option<ShardInfo>,
}

enum Body {
    Dense {
        /// `None` for a graph-only HNSW index (its vectors live inside the graph).
        vectors: Option<Vectors>,
        norms: Option<Vec<f32>>,
        hnsw: Option<Hnsw>,
    },
    Bm25(Bm25),
}

/// A loaded index.
pub struct Index {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub meta: IndexMeta,
    pub ids: Vec<String>,
    body: Body,
}

/// Exact search even over an HNSW index (for audits), or whatever the index is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    Default,
    Exact,
}

pub fn read_meta(dir: &Path) -> Result<(Manifest, IndexMeta)> {
    let manifest = Manifest::open_checked(dir, KIND, FORMAT_VERSION, None)?;
    let meta: IndexMeta =
        serde_json::from_value(manifest.config.clone()).map_err(|e| Error::Corrupt {
            path: dir.join(ragl_core::manifest::MANIFEST_FILE),
            message: format!("config is not an index config: {e}"),
        })?;
    Ok((manifest, meta))
}

impl Index {
    /// Opens `dir`, verifying its manifest and the hash of every file.
    pub fn open(dir: &Path) -> Result<Self> {
        let (manifest, meta) = read_meta(dir)?;
        for name in manifest.files.keys() {
            if name.contains('/') || name.contains("..") {
                return Err(Error::Corrupt {
                    path: dir.to_path_buf(),
                    message: format!("manifest lists a file outside the index: {name}"),
                });
            }
        }
        let want: &[&str] = match meta.index {
            IndexConfig::Exact { .. } => &[IDS_FILE, VECTORS_FILE],
            IndexConfig::Hnsw { hnsw, .. } if hnsw.graph_only => &[IDS_FILE, HNSW_FILE],
            IndexConfig::Hnsw { .. } => &[IDS_FILE, VECTORS_FILE, HNSW_FILE],
            IndexConfig::Bm25 { .. } => &[IDS_FILE, BM25_FILE],
        };
        for f in want {
            if !manifest.files.contains_key(*f) {
                return Err(Error::Corrupt {
                    path: dir.to_path_buf(),
                    message: format!("manifest does not list {f}"),
                });
            }
        }
        manifest.verify_files(dir).map_err(|e| match e {
            ragl_core::Error::Artifact { path, message } => Error::Corrupt { path, message },
            e => Error::Core(e),
        })?;
        let rows = *manifest.counts.get("vectors").unwrap_or(&0) as usize;
        let ids = read_ids(&dir.join(IDS_FILE), rows)?;
        let body = match meta.index {
            IndexConfig::Bm25 { bm25 } => {
                let b = Bm25::load(&dir.join(BM25_FILE), bm25)?;
                if b.len() != rows {
                    return Err(Error::Corrupt {
                        path: dir.join(BM25_FILE),
                        message: format!("{} documents, manifest counts {rows}", b.len()),
                    });
                }
                Body::Bm25(b)
            }
            IndexConfig::Exact { metric } | IndexConfig::Hnsw { metric, .. } => {
                if meta.dim == 0 {
                    return Err(Error::Corrupt {
                        path: dir.to_path_buf(),
                        message: "dense index with dimension 0".into(),
                    });
                }
                let graph_only =
                    matches!(meta.index, IndexConfig::Hnsw { hnsw, .. } if hnsw.graph_only);
                let vectors = if graph_only {
                    None
                } else if matches!(meta.index, IndexConfig::Hnsw { .. }) {
                    // Graph search reads vectors at random: keep them in huge pages.
                    Some(Vectors::load_resident(
                        &dir.join(VECTORS_FILE),
                        rows,
                        meta.dim,
                    )?)
                } else {
                    Some(Vectors::open(&dir.join(VECTORS_FILE), rows, meta.dim)?)
                };
                let norms = vectors
                    .as_ref()
                    .filter(|_| metric == Metric::L2)
                    .map(|v| exact::squared_norms(v.as_slice(), meta.dim));
                let hnsw = match meta.index {
                    IndexConfig::Hnsw { hnsw, .. } => {
                        let h = Hnsw::view(&dir.join(HNSW_FILE), meta.dim, metric, &hnsw)?;
                        if h.len() != rows {
                            return Err(Error::Corrupt {
                                path: dir.join(HNSW_FILE),
                                message: format!("{} nodes, manifest counts {rows}", h.len()),
                            });
                        }
                        Some(h)
                    }
                    _ => None,
                };
                Body::Dense {
                    vectors,
                    norms,
                    hnsw,
                }
            }
        };
        Ok(Index {
            dir: dir.to_path_buf(),
            manifest,
            meta,
            ids,
            body,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn is_dense(&self) -> bool {
        matches!(self.body, Body::Dense { .. })
    }

    pub fn vectors(&self) -> Option<&Vectors> {
        match &self.body {
            Body::Dense { vectors, .. } => vectors.as_ref(),
            Body::Bm25(_) => None,
        }
    }

    /// The SIMD kernels of an HNSW index.
    pub fn acceleration(&self) -> Option<String> {
        match &self.body {
            Body::Dense { hnsw: Some(h), .. } => Some(h.acceleration()),
            _ => None,
        }
    }

    /// Changes HNSW's search beam (efSearch); no effect on other kinds.
    pub fn set_expansion_search(&self, ef: usize) {
        if let Body::Dense { hnsw: Some(h), .. } = &self.body {
            h.set_expansion_search(ef);
        }
    }

    /// Top-k rows for each query vector (rows of `queries`).
    pub fn search_vectors(
        &self,
        queries: &[f32],
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<Vec<Hit>>> {
        let Body::Dense {
            vectors,
            norms,
            hnsw,
        } = &self.body
        else {
            return Err(Error::Mismatch(format!(
                "{} is a BM25 index: it is searched with query text, not vectors",
                self.dir.display()
            )));
        };
        let dim = self.meta.dim;
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::Mismatch(format!(
                "query vectors have {} values, not a multiple of the index dimension {dim}",
                queries.len()
            )));
        }
        match (hnsw, vectors, mode) {
            (Some(h), Some(v), SearchMode::Default) => h.search_with(v.as_slice(), queries, k),
            (Some(h), None, SearchMode::Default) => h.search(queries, k),
            (_, None, SearchMode::Exact) | (None, None, _) => Err(Error::Mismatch(format!(
                "{} keeps its vectors only inside its HNSW graph (graph_only): exact search needs vectors.f32",
                self.dir.display()
            ))),
            (_, Some(v), _) => Ok(exact::search(
                v.as_slice(),
                norms.as_deref(),
                dim,
                self.meta.index.metric().unwrap(),
                queries,
                k,
            )),
        }
    }

    /// Top-k rows for each query text (BM25 indexes).
    pub fn search_text(&self, queries: &[String], k: usize) -> Result<Vec<Vec<Hit>>> {
        match &self.body {
            Body::Bm25(b) => Ok(b.search(queries, k)),
            Body::Dense { .. } => Err(Error::Mismatch(format!(
                "{} is a dense index: queries must be encoded first",
                self.dir.display()
            ))),
        }
    }
}
