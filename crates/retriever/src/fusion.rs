//! Hybrid retrieval: fusing the runs of several retrievers (BM25 and a dense index, as in
//! DPR's "BM25 + DPR") into one ranking.
//!
//! - `Rrf`: reciprocal rank fusion (Cormack et al., 2009), `Σ_r w_r / (c + rank_r(d))` with
//!   rank starting at 1 and c = 60; a passage missing from a run gets nothing from it.
//! - `Linear`: `Σ_r w_r · s̃_r(d)`, where each run's scores are min–max normalised per query
//!   (so BM25's unbounded scores and cosine similarities are comparable); a passage missing
//!   from a run gets that run's minimum, 0.

use std::collections::HashMap;

use ragl_core::run::{RunEntry, RunHit};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    Rrf { c: f32 },
    Linear,
}

/// Fuses `runs` (each covering the same queries) with per-run `weights`, keeping the top
/// `k` of each query. Queries are in the order of the first run.
pub fn fuse(
    runs: &[Vec<RunEntry>],
    weights: &[f32],
    method: Fusion,
    k: usize,
) -> Result<Vec<RunEntry>> {
    if runs.is_empty() || runs.len() != weights.len() {
        return Err(Error::Mismatch(format!(
            "{} runs but {} weights",
            runs.len(),
            weights.len()
        )));
    }
    let maps: Vec<HashMap<&str, &RunEntry>> = runs
        .iter()
        .map(|r| r.iter().map(|e| (e.qid.as_str(), e)).collect())
        .collect();
    for (i, m) in maps.iter().enumerate() {
        if m.len() != runs[0].len() || runs[0].iter().any(|e| !m.contains_key(e.qid.as_str())) {
            return Err(Error::Mismatch(format!(
                "run {} does not cover the same queries as run 1",
                i + 1
            )));
        }
    }
    Ok(runs[0]
        .iter()
        .map(|first| {
            let mut acc: HashMap<&str, f32> = HashMap::new();
            for (m, &w) in maps.iter().zip(weights) {
                let e = m[first.qid.as_str()];
                match method {
                    Fusion::Rrf { c } => {
                        for (rank, h) in e.hits.iter().enumerate() {
                            *acc.entry(&h.id).or_default() += w / (c + rank as f32 + 1.0);
                        }
                    }
                    Fusion::Linear => {
                        let (lo, hi) = e
                            .hits
                            .iter()
                            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), h| {
                                (lo.min(h.score), hi.max(h.score))
                            });
                        let span = if hi > lo { hi - lo } else { 1.0 };
                        for h in &e.hits {
                            *acc.entry(&h.id).or_default() += w * (h.score - lo) / span;
                        }
                    }
                }
            }
            let mut hits: Vec<RunHit> = acc
                .into_iter()
                .map(|(id, score)| RunHit {
                    id: id.to_owned(),
                    score,
                })
                .collect();
            // Best first; ties by id, so the output does not depend on hash order.
            hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
            hits.truncate(k);
            RunEntry {
                qid: first.qid.clone(),
                question: first.question.clone(),
                hits,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(hits: &[(&str, f32)]) -> Vec<RunEntry> {
        vec![RunEntry {
            qid: "q".into(),
            question: None,
            hits: hits
                .iter()
                .map(|(id, s)| RunHit {
                    id: id.to_string(),
                    score: *s,
                })
                .collect(),
        }]
    }

    #[test]
    fn rrf_and_linear_reward_agreement() {
        let bm25 = run(&[("a", 12.0), ("b", 11.0), ("c", 2.0)]);
        let dense = run(&[("b", 0.9), ("c", 0.8), ("d", 0.1)]);
        let r = fuse(
            &[bm25.clone(), dense.clone()],
            &[1.0, 1.0],
            Fusion::Rrf { c: 60.0 },
            2,
        )
        .unwrap();
        assert_eq!(
            r[0].hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            vec!["b", "c"]
        );
        let l = fuse(&[bm25, dense], &[1.0, 1.0], Fusion::Linear, 4).unwrap();
        assert_eq!(l[0].hits[0].id, "b");
        assert!((l[0].hits[0].score - (0.9 + 1.0)).abs() < 1e-6);
        assert!(fuse(&[run(&[]), vec![]], &[1.0, 1.0], Fusion::Linear, 1).is_err());
    }
}
