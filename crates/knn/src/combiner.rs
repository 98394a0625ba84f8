//! Combiners: how the k nearest neighbours change the model's next-token distribution.

use ragl_index::artifact::SearchMode;
use std::sync::atomic::{AtomicU64, Ordering};

use ragl_mt::beam::{SharedStepHook, StepHook};

use crate::datastore::Datastore;

/// One retrieved neighbour: its squared L2 distance and its value (target token id).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    pub distance: f32,
    pub value: u32,
}

/// Rewrites one row of model log-probabilities given that row's neighbours.
pub trait Combiner: Sync {
    fn combine(&self, log_probs: &mut [f32], neighbours: &[Neighbour]);
}

/// Vanilla kNN-MT: `p = λ·p_kNN + (1-λ)·p_MT` with `p_kNN(y) ∝ Σ_{v_i = y} exp(-d_i / T)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnnMt {
    pub lambda: f32,
    pub temperature: f32,
}

impl KnnMt {
    /// `p_kNN` as (token, probability) pairs, one per distinct value.
    pub fn knn_distribution(&self, neighbours: &[Neighbour]) -> Vec<(u32, f32)> {
        if neighbours.is_empty() {
            return Vec::new();
        }
        let logits: Vec<f32> = neighbours
            .iter()
            .map(|n| -n.distance / self.temperature)
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let w: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f32 = w.iter().sum();
        let mut out: Vec<(u32, f32)> = Vec::with_capacity(neighbours.len());
        for (n, w) in neighbours.iter().zip(w) {
            match out.iter_mut().find(|(v, _)| *v == n.value) {
                Some((_, p)) => *p += w / z,
                None => out.push((n.value, w / z)),
            }
        }
        out
    }
}

impl Combiner for KnnMt {
    fn combine(&self, log_probs: &mut [f32], neighbours: &[Neighbour]) {
        let lambda = self.lambda.clamp(0.0, 1.0);
        if neighbours.is_empty() || lambda == 0.0 {
            return;
        }
        let knn = self.knn_distribution(neighbours);
        // Tokens no neighbour proposes keep (1-λ)·p_MT: a shift in log space.
        let shift = (1.0 - lambda).ln();
        let mt_of: Vec<f32> = knn.iter().map(|&(v, _)| log_probs[v as usize]).collect();
        for lp in log_probs.iter_mut() {
            *lp += shift;
        }
        for ((v, p), mt) in knn.into_iter().zip(mt_of) {
            let mixed = lambda * p + (1.0 - lambda) * mt.exp();
            log_probs[v as usize] = mixed.ln();
        }
    }
}

/// A beam-search hook that searches a datastore for every hypothesis of a step at once and
/// applies a combiner to each row.
pub struct KnnHook<'a, C: Combiner> {
    pub datastore: &'a Datastore,
    pub k: usize,
    pub combiner: C,
    /// Nanoseconds spent searching (summed over the batches decoding side by side).
    search_nanos: AtomicU64,
    queries: AtomicU64,
}

impl<'a, C: Combiner> KnnHook<'a, C> {
    pub fn new(datastore: &'a Datastore, k: usize, combiner: C) -> Self {
        KnnHook {
            datastore,
            k,
            combiner,
            search_nanos: AtomicU64::new(0),
            queries: AtomicU64::new(0),
        }
    }

    /// Seconds spent searching, for the speed report (thread time: batches decoding side
    /// by side each add theirs).
    pub fn search_secs(&self) -> f64 {
        self.search_nanos.load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// Decoder states searched.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

impl<C: Combiner> StepHook for KnnHook<'_, C> {
    fn adjust(&mut self, hidden: &[f32], d: usize, log_probs: &mut [f32], vocab: usize) {
        self.adjust_shared(hidden, d, log_probs, vocab);
    }

    fn as_shared(&self) -> Option<&dyn SharedStepHook> {
        Some(self)
    }
}

impl<C: Combiner> SharedStepHook for KnnHook<'_, C> {
    fn adjust_shared(&self, hidden: &[f32], d: usize, log_probs: &mut [f32], vocab: usize) {
        let t = std::time::Instant::now();
        let hits = self
            .datastore
            .index
            .search_vectors(hidden, self.k, SearchMode::Default)
            .expect("datastore dimension checked when opened");
        self.search_nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.queries
            .fetch_add((hidden.len() / d.max(1)) as u64, Ordering::Relaxed);
        for (r, row_hits) in hits.iter().enumerate() {
            let neighbours: Vec<Neighbour> = row_hits
                .iter()
                .map(|h| Neighbour {
                    distance: -h.score,
                    value: self.datastore.values[h.row as usize],
                })
                .collect();
            self.combiner
                .combine(&mut log_probs[r * vocab..(r + 1) * vocab], &neighbours);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_distribution_aggregates_values_and_sums_to_one() {
        let c = KnnMt {
            lambda: 0.5,
            temperature: 1.0,
        };
        let n = [
            Neighbour {
                distance: 0.0,
                value: 7,
            },
            Neighbour {
                distance: 0.0,
                value: 7,
            },
            Neighbour {
                distance: 0.0,
                value: 9,
            },
        ];
        let p = c.knn_distribution(&n);
        assert_eq!(p.len(), 2);
        assert!((p[0].1 - 2.0 / 3.0).abs() < 1e-6 && (p[1].1 - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn combined_distribution_is_the_interpolation() {
        let c = KnnMt {
            lambda: 0.25,
            temperature: 10.0,
        };
        let p_mt = [0.1f32, 0.2, 0.3, 0.4];
        let mut lp: Vec<f32> = p_mt.iter().map(|p| p.ln()).collect();
        let n = [
            Neighbour {
                distance: 3.0,
                value: 1,
            },
            Neighbour {
                distance: 5.0,
                value: 3,
            },
        ];
        c.combine(&mut lp, &n);
        let w1 = (-0.3f32).exp();
        let w3 = (-0.5f32).exp();
        let knn = [0.0, w1 / (w1 + w3), 0.0, w3 / (w1 + w3)];
        let mut total = 0.0;
        for i in 0..4 {
            let want = 0.25 * knn[i] + 0.75 * p_mt[i];
            assert!((lp[i].exp() - want).abs() < 1e-6, "{i}");
            total += lp[i].exp();
        }
        assert!((total - 1.0).abs() < 1e-5);
    }
}
