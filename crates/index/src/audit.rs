//! The audit of an HNSW index against exact search over its own vectors: recall@k of the
//! approximate top-k at each efSearch, queries per second (median of three timed
//! searches, as faiss benchmarks report: the first also pays for page faults on the
//! memory-mapped graph), and the drift of the scores HNSW reports from the exact f32 score
//! of the same row (f16 or i8 keys inside the graph move them).

use std::collections::HashSet;
use std::time::Instant;

use crate::artifact::{Index, IndexConfig, SearchMode};
use crate::hnsw::HnswConfig;
use crate::{Error, Hit, Metric, Result};

/// One efSearch's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuditRow {
    pub ef: usize,
    pub recall: f64,
    pub queries_per_s: f64,
    pub mean_abs_drift: f64,
    pub max_abs_drift: f64,
}

/// An HNSW index, its queries and their exact top-k, ready to be compared at any efSearch.
pub struct Audit<'a> {
    idx: &'a Index,
    queries: Vec<f32>,
    k: usize,
    exact: Vec<Vec<Hit>>,
    pub hnsw: HnswConfig,
    pub metric: Metric,
    /// Exact search's speed over the same queries.
    pub exact_queries_per_s: f64,
}

impl<'a> Audit<'a> {
    /// `queries`: row-major vectors of the index's dimension, or `None` for `sample` rows
    /// of the index itself at an even stride (deterministic, spread over the corpus).
    pub fn new(idx: &'a Index, queries: Option<Vec<f32>>, sample: usize, k: usize) -> Result<Self> {
        let IndexConfig::Hnsw { hnsw, metric } = idx.meta.index else {
            return Err(Error::Mismatch(format!(
                "{} is not an HNSW index: nothing to audit",
                idx.dir.display()
            )));
        };
        let dim = idx.meta.dim;
        let vecs = idx
            .vectors()
            .ok_or_else(|| Error::Mismatch(format!("{} holds no vectors", idx.dir.display())))?;
        let queries = match queries {
            Some(q) => {
                if q.is_empty() || !q.len().is_multiple_of(dim) {
                    return Err(Error::Mismatch(format!(
                        "{} query values are not rows of the index's {dim}-d vectors",
                        q.len()
                    )));
                }
                q
            }
            None => {
                let n = idx.len();
                let m = sample.min(n).max(1);
                (0..m).flat_map(|i| vecs.row(i * n / m).to_vec()).collect()
            }
        };
        let nq = queries.len() / dim;
        let t = Instant::now();
        let exact = idx.search_vectors(&queries, k, SearchMode::Exact)?;
        let exact_queries_per_s = nq as f64 / t.elapsed().as_secs_f64();
        Ok(Audit {
            idx,
            queries,
            k,
            exact,
            hnsw,
            metric,
            exact_queries_per_s,
        })
    }

    pub fn queries(&self) -> usize {
        self.queries.len() / self.idx.meta.dim
    }

    /// Searches at efSearch `ef` (left set on the index) and compares with exact search.
    pub fn at(&self, ef: usize) -> Result<AuditRow> {
        let idx = self.idx;
        let dim = idx.meta.dim;
        let vecs = idx.vectors().expect("checked in new");
        idx.set_expansion_search(ef);
        let mut times = Vec::with_capacity(3);
        let mut approx = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            approx = idx.search_vectors(&self.queries, self.k, SearchMode::Default)?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let (mut found, mut total) = (0usize, 0usize);
        let (mut drift_sum, mut drift_max, mut drift_n) = (0f64, 0f64, 0usize);
        for (qi, (ap, ex)) in approx.iter().zip(&self.exact).enumerate() {
            let want: HashSet<u32> = ex.iter().map(|h| h.row).collect();
            found += ap.iter().filter(|h| want.contains(&h.row)).count();
            total += ex.len();
            let q = &self.queries[qi * dim..(qi + 1) * dim];
            for h in ap {
                let x = vecs.row(h.row as usize);
                let s = match self.metric {
                    Metric::Ip => q.iter().zip(x).map(|(a, b)| a * b).sum::<f32>(),
                    Metric::L2 => -q.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(),
                };
                let d = (s - h.score).abs() as f64;
                drift_sum += d;
                drift_max = drift_max.max(d);
                drift_n += 1;
            }
        }
        Ok(AuditRow {
            ef,
            recall: found as f64 / total.max(1) as f64,
            queries_per_s: self.queries() as f64 / times[1],
            mean_abs_drift: drift_sum / drift_n.max(1) as f64,
            max_abs_drift: drift_max,
        })
    }
}
