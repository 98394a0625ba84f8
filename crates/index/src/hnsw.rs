//! Approximate search: usearch's HNSW graph.
//!
//! Keys are row numbers of the index, so a hit maps back to `ids.txt` like an exact hit.
//! Scores are converted to ragl's "higher is better": usearch's inner-product distance is
//! `1 − q·x`, its L2 distance the squared distance.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use usearch::{Index as UIndex, IndexOptions, MetricKind, ScalarKind};

use crate::topk::{Hit, sort_hits};
use crate::{Dtype, Error, Metric, Result};

pub const HNSW_FILE: &str = "hnsw.usearch";

/// HNSW settings. usearch's defaults (connectivity 16, expansion 128 when adding, 64 when
/// searching) are ragl's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswConfig {
    pub dtype: Dtype,
    /// Edges per node (M in the HNSW paper).
    pub connectivity: usize,
    /// Beam width while inserting (efConstruction).
    pub expansion_add: usize,
    /// Beam width while searching (efSearch); can be changed at search time.
    pub expansion_search: usize,
    /// Keep the vectors only inside the graph, in `dtype`: no `vectors.f32` beside it.
    /// Halves a datastore's size with f16 (kNN-MT keys), at the price of exact search.
    #[serde(default)]
    pub graph_only: bool,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            dtype: Dtype::F32,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 64,
            graph_only: false,
        }
    }
}

fn usearch_err(e: impl std::fmt::Display) -> Error {
    Error::Usearch(e.to_string())
}

/// Replaces usearch's f32 kernels with ragl's (f32 accumulation, see [`crate::simd`]).
/// Custom metrics are not saved with the graph, so this runs after every build and view.
fn use_fast_f32_metric(index: &mut UIndex, dim: usize, metric: Metric, cfg: &HnswConfig) {
    if cfg.dtype != Dtype::F32 {
        return;
    }
    let f: Box<dyn Fn(*const f32, *const f32) -> f32 + Send + Sync> = match metric {
        // SAFETY: usearch passes pointers to two stored or query vectors of `dim` floats.
        Metric::Ip => Box::new(move |a, b| unsafe {
            1.0 - crate::simd::dot(
                std::slice::from_raw_parts(a, dim),
                std::slice::from_raw_parts(b, dim),
            )
        }),
        Metric::L2 => Box::new(move |a, b| unsafe {
            crate::simd::l2sq(
                std::slice::from_raw_parts(a, dim),
                std::slice::from_raw_parts(b, dim),
            )
        }),
    };
    index.change_metric::<f32>(f);
}

fn simd_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return "avx2+fma";
    }
    "portable"
}

fn options(dim: usize, metric: Metric, cfg: &HnswConfig) -> IndexOptions {
    IndexOptions {
        dimensions: dim,
        metric: match metric {
            Metric::Ip => MetricKind::IP,
            Metric::L2 => MetricKind::L2sq,
        },
        quantization: match cfg.dtype {
            Dtype::F32 => ScalarKind::F32,
            Dtype::F16 => ScalarKind::F16,
            Dtype::I8 => ScalarKind::I8,
        },
        connectivity: cfg.connectivity,
        expansion_add: cfg.expansion_add,
        expansion_search: cfg.expansion_search,
        multi: false,
    }
}

/// An HNSW graph over the rows of an index.
pub struct Hnsw {
    index: UIndex,
    metric: Metric,
    dim: usize,
    /// The adjacency copied out for ragl's own prefetching search (f32 storage only).
    graph: Option<crate::graph::Graph>,
    ef: std::sync::atomic::AtomicUsize,
}

impl Hnsw {
    /// Inserts every row of `vectors` ([n, dim]). With `threads > 1` rows are inserted
    /// concurrently, which is fast but makes the graph depend on thread timing; with one
    /// thread the graph, and so the saved file, is reproducible bit for bit.
    pub fn build(
        vectors: &[f32],
        dim: usize,
        metric: Metric,
        cfg: &HnswConfig,
        threads: usize,
        mut progress: impl FnMut(usize) + Send,
    ) -> Result<Self> {
        let n = vectors.len() / dim;
        let mut index = UIndex::new(&options(dim, metric, cfg)).map_err(usearch_err)?;
        use_fast_f32_metric(&mut index, dim, metric, cfg);
        let threads = threads.max(1);
        index
            .reserve_capacity_and_threads(n, threads)
            .map_err(usearch_err)?;
        const STEP: usize = 4096;
        if threads == 1 {
            for (c, chunk) in vectors.chunks(STEP * dim).enumerate() {
                for (i, row) in chunk.chunks_exact(dim).enumerate() {
                    index.add((c * STEP + i) as u64, row).map_err(usearch_err)?;
                }
                progress((c * STEP + chunk.len() / dim).min(n));
            }
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(usearch_err)?;
            for (c, chunk) in vectors.chunks(STEP * dim * threads).enumerate() {
                let base = c * STEP * threads;
                pool.install(|| {
                    chunk
                        .par_chunks_exact(dim)
                        .enumerate()
                        .try_for_each(|(i, row)| index.add((base + i) as u64, row))
                })
                .map_err(usearch_err)?;
                progress(base + chunk.len() / dim);
            }
        }
        Ok(Hnsw {
            index,
            metric,
            dim,
            graph: None,
            ef: cfg.expansion_search.into(),
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let s = path
            .to_str()
            .ok_or_else(|| Error::Mismatch(format!("{} is not UTF-8", path.display())))?;
        self.index.save(s).map_err(usearch_err)
    }

    /// Memory-maps a saved graph. The caller has checked the file's hash against the
    /// manifest: usearch trusts its input, and a damaged file could crash it.
    pub fn view(path: &Path, dim: usize, metric: Metric, cfg: &HnswConfig) -> Result<Self> {
        let s = path
            .to_str()
            .ok_or_else(|| Error::Mismatch(format!("{} is not UTF-8", path.display())))?;
        let mut index = UIndex::new(&options(dim, metric, cfg)).map_err(usearch_err)?;
        index.view(s).map_err(usearch_err)?;
        use_fast_f32_metric(&mut index, dim, metric, cfg);
        let graph = (cfg.dtype == Dtype::F32)
            .then(|| crate::graph::Graph::export(&index, index.size(), cfg.connectivity));
        if index.dimensions() != dim {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "graph of dimension {}, manifest says {dim}",
                    index.dimensions()
                ),
            });
        }
        Ok(Hnsw {
            index,
            metric,
            dim,
            graph,
            ef: cfg.expansion_search.into(),
        })
    }

    pub fn len(&self) -> usize {
        self.index.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The SIMD kernels usearch picked for this index's metric (for benchmark reports).
    pub fn acceleration(&self) -> String {
        match self.index.scalar_kind() {
            usearch::ScalarKind::F32 => format!("ragl f32 ({})", simd_name()),
            _ => format!("usearch {}", self.index.hardware_acceleration()),
        }
    }

    pub fn set_expansion_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
        self.ef.store(ef, std::sync::atomic::Ordering::Relaxed);
    }

    /// Top-k of each query with ragl's prefetching search over `vectors` (the index's f32
    /// rows), when the graph was copied out; else through usearch.
    pub fn search_with(&self, vectors: &[f32], queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let Some(g) = &self.graph else {
            return self.search(queries, k);
        };
        let ef = self.ef.load(std::sync::atomic::Ordering::Relaxed);
        Ok(queries
            .par_chunks_exact(self.dim)
            .map_init(
                || crate::graph::Scratch::new(g.len()),
                |scratch, q| g.search(vectors, self.dim, self.metric, q, k, ef, scratch),
            )
            .collect())
    }

    /// Top-k of each query (rows of `queries`) through usearch, queries in parallel.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let k = k.min(self.len());
        queries
            .par_chunks_exact(self.dim)
            .map(|q| {
                let m = self.index.search(q, k).map_err(usearch_err)?;
                let mut hits: Vec<Hit> = m
                    .keys
                    .iter()
                    .zip(&m.distances)
                    .map(|(&key, &d)| Hit {
                        row: key as u32,
                        score: match self.metric {
                            Metric::Ip => 1.0 - d,
                            Metric::L2 => -d,
                        },
                    })
                    .collect();
                sort_hits(&mut hits);
                Ok(hits)
            })
            .collect()
    }
}
