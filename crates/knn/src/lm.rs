//! kNN-LM (Khandelwal et al., 2020): a datastore of (context vector → next token) over any
//! text, built by running a language model over it, and perplexity with
//! `p(y|x) = λ·p_kNN(y|x) + (1−λ)·p_LM(y|x)`, `p_kNN(y|x) ∝ Σ_{i: v_i = y} exp(−d_i / T)`
//! over the k nearest keys by squared L2 distance (the paper: k 1024, λ 0.25, T 1).
//!
//! The datastore is the kNN-MT one (`datastore::Datastore`: `values.u32`, an index under
//! `index/`, the model's fingerprint in the manifest); only how keys are made differs: every
//! scored token of the text's windows (`ragl_lm::windows`), its key the state chosen by
//! [`KeyPoint`]. Evaluation searches once with the largest k asked for and scores every
//! (k, λ, T) of a grid from the same neighbours, so a sweep costs one search.

use std::path::Path;

use burn::prelude::*;
use ragl_core::progress::Progress;
use ragl_index::artifact::{IndexConfig, IndexMeta, SearchMode};
use ragl_index::build::{BuildSpec, Stage};
use ragl_lm::score::{KeyPoint, Perplexity, score};
use ragl_lm::windows::Window;
use ragl_model::gpt2::Gpt2Checkpoint;
use serde::{Deserialize, Serialize};

use crate::datastore::{BuildReport, Datastore, INDEX_DIR};
use crate::{Error, Result};

/// How a kNN-LM datastore is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmBuildConfig {
    pub index: IndexConfig,
    pub key: KeyPoint,
    /// Windows of the text, as evaluation cuts them.
    pub max_len: usize,
    pub stride: usize,
    pub per_line: bool,
    /// Windows per forward pass.
    pub batch: usize,
    /// Keys per resumable chunk.
    pub chunk_keys: usize,
}

/// Builds a kNN-LM datastore at `out` from `windows` of the text at `text` (its hash is
/// recorded) with model `m`.
pub fn build<B: Backend>(
    m: &Gpt2Checkpoint<B>,
    text: &Path,
    windows: &[Window],
    out: &Path,
    cfg: &LmBuildConfig,
    threads: usize,
    progress: impl FnMut(Stage, Progress) + Send,
) -> Result<BuildReport> {
    let _lock = ragl_core::lock::WriterLock::acquire(out)?;
    crate::datastore::require_l2(&cfg.index, out, "kNN-LM")?;
    // One record per scored token: (window, position).
    let records: Vec<(u32, u32)> = windows
        .iter()
        .enumerate()
        .flat_map(|(i, w)| (w.score_from.max(1)..w.ids.len()).map(move |t| (i as u32, t as u32)))
        .collect();
    if records.is_empty() {
        return Err(Error::Datastore {
            path: text.to_path_buf(),
            message: "the text has no token to predict (empty, or one token)".into(),
        });
    }
    let d = m.model.d_model();
    let source_sha256 = ragl_core::manifest::sha256_file(text)?;
    let spec = BuildSpec {
        meta: IndexMeta {
            index: cfg.index,
            dim: d,
            encoder: serde_json::json!({"lm_model": m.dir, "key": cfg.key}),
            query_fingerprint: Some(m.fingerprint.clone()),
            source_sha256: source_sha256.clone(),
            shard: None,
        },
        model_fingerprint: Some(m.fingerprint.clone()),
        chunk_rows: cfg.chunk_keys,
    };
    std::fs::create_dir_all(out).map_err(|e| ragl_core::Error::io(out, e))?;
    let _ = std::fs::remove_file(out.join(ragl_core::manifest::MANIFEST_FILE));
    let source = records
        .iter()
        .map(|&(i, t)| Ok((format!("{i}:{t}"), (i, t))));
    let summary = ragl_index::build::build_dense(
        &out.join(INDEX_DIR),
        &spec,
        source,
        records.len(),
        |chunk: &[(u32, u32)], _| chunk_keys(m, windows, chunk, cfg),
        threads,
        progress,
    )?;
    let mut values = Vec::with_capacity(records.len() * 4);
    for &(i, t) in &records {
        values.extend_from_slice(&windows[i as usize].ids[t as usize].to_le_bytes());
    }
    crate::datastore::publish(
        out,
        &values,
        serde_json::json!({
            "model": "lm", "text": text, "source_sha256": source_sha256, "build": cfg, "dim": d,
        }),
        Some(m.fingerprint.clone()),
        &[
            ("keys", records.len() as u64),
            ("windows", windows.len() as u64),
        ],
    )?;
    Ok(BuildReport {
        sentences: windows.len(),
        keys: records.len(),
        resumed_keys: summary.resumed_rows,
    })
}

/// The keys of `chunk`'s records: the windows they fall in are run whole, their rows kept.
fn chunk_keys<B: Backend>(
    m: &Gpt2Checkpoint<B>,
    windows: &[Window],
    chunk: &[(u32, u32)],
    cfg: &LmBuildConfig,
) -> std::result::Result<Vec<f32>, ragl_index::Error> {
    let (first, last) = (chunk[0].0 as usize, chunk[chunk.len() - 1].0 as usize);
    let d = m.model.d_model();
    let mut rows: Vec<f32> = Vec::new();
    score(
        &m.model,
        &windows[first..=last],
        cfg.batch,
        Some(cfg.key),
        |s| {
            rows.extend(s.keys);
            Ok(())
        },
    )
    .map_err(|e| ragl_index::Error::Mismatch(e.to_string()))?;
    // Row offset of each window's first scored token.
    let mut offset = Vec::with_capacity(last - first + 1);
    let mut at = 0usize;
    for w in &windows[first..=last] {
        offset.push(at);
        at += w.ids.len() - w.score_from.max(1);
    }
    let mut out = Vec::with_capacity(chunk.len() * d);
    for &(i, t) in chunk {
        let w = &windows[i as usize];
        let r = offset[i as usize - first] + t as usize - w.score_from.max(1);
        out.extend_from_slice(&rows[r * d..(r + 1) * d]);
    }
    Ok(out)
}

/// A grid of kNN-LM settings, all scored from one search with the largest k.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub ks: Vec<usize>,
    pub lambdas: Vec<f32>,
    pub temperatures: Vec<f32>,
}

/// One setting's perplexity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    pub k: usize,
    pub lambda: f32,
    pub temperature: f32,
    pub perplexity: Perplexity,
}

/// What an evaluation measured.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The LM alone.
    pub lm: Perplexity,
    /// Every setting of the grid, in `ks × temperatures × lambdas` order.
    pub settings: Vec<Setting>,
    /// Seconds in the model, and in the datastore search.
    pub model_secs: f64,
    pub search_secs: f64,
}

impl Evaluation {
    /// The setting of lowest perplexity.
    pub fn best(&self) -> Option<&Setting> {
        self.settings
            .iter()
            .min_by(|a, b| a.perplexity.nll.total_cmp(&b.perplexity.nll))
    }
}

/// `p_kNN(y)` of the target from its neighbours (sorted nearest first): `distances` (squared
/// L2) and whether each one's value is the target; the first `k` are used.
pub fn knn_prob(distances: &[f32], matches: &[bool], k: usize, temperature: f32) -> f32 {
    let k = k.min(distances.len());
    if k == 0 {
        return 0.0;
    }
    let best = -distances[0] / temperature;
    let mut z = 0.0f64;
    let mut hit = 0.0f64;
    for i in 0..k {
        let w = ((-distances[i] / temperature - best) as f64).exp();
        z += w;
        if matches[i] {
            hit += w;
        }
    }
    (hit / z) as f32
}

/// Perplexity of `m` over `windows`, alone and with `ds` for every setting of `grid`.
pub fn evaluate<B: Backend>(
    m: &Gpt2Checkpoint<B>,
    ds: &Datastore,
    windows: &[Window],
    grid: &Grid,
    key: KeyPoint,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<Evaluation> {
    let k_max = grid.ks.iter().copied().max().unwrap_or(0).min(ds.len());
    if k_max == 0 || grid.lambdas.is_empty() || grid.temperatures.is_empty() {
        return Err(Error::Datastore {
            path: ds.dir.clone(),
            message: "the grid needs at least one k ≥ 1, one λ and one temperature".into(),
        });
    }
    let mut lm = Perplexity::default();
    let mut settings: Vec<Setting> = Vec::new();
    for &k in &grid.ks {
        for &temperature in &grid.temperatures {
            for &lambda in &grid.lambdas {
                settings.push(Setting {
                    k,
                    lambda,
                    temperature,
                    perplexity: Perplexity::default(),
                });
            }
        }
    }
    let (mut model_secs, mut search_secs) = (0.0, 0.0);
    let mut t = std::time::Instant::now();
    score(&m.model, windows, batch, Some(key), |s| {
        model_secs += t.elapsed().as_secs_f64();
        let ts = std::time::Instant::now();
        let hits = ds
            .index
            .search_vectors(&s.keys, k_max, SearchMode::Default)
            .map_err(|e| ragl_lm::Error::Text {
                what: ds.dir.display().to_string(),
                message: e.to_string(),
            })?;
        search_secs += ts.elapsed().as_secs_f64();
        for ((&y, &lp), row) in s.targets.iter().zip(&s.log_probs).zip(&hits) {
            lm.add(lp);
            let distances: Vec<f32> = row.iter().map(|h| -h.score).collect();
            let matches: Vec<bool> = row.iter().map(|h| ds.values[h.row as usize] == y).collect();
            let p_lm = (lp as f64).exp();
            let mut i = 0;
            for &k in &grid.ks {
                for &temperature in &grid.temperatures {
                    let p_knn = knn_prob(&distances, &matches, k, temperature) as f64;
                    for &lambda in &grid.lambdas {
                        let l = lambda.clamp(0.0, 1.0) as f64;
                        let p = l * p_knn + (1.0 - l) * p_lm;
                        settings[i].perplexity.add(p.ln() as f32);
                        i += 1;
                    }
                }
            }
        }
        progress(s.targets.len());
        t = std::time::Instant::now();
        Ok(())
    })?;
    Ok(Evaluation {
        lm,
        settings,
        model_secs,
        search_secs,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn knn_prob_is_the_share_of_the_target_s_weight() {
        let d = [0.0f32, 1.0, 2.0];
        let m = [true, false, true];
        let w: Vec<f32> = d.iter().map(|x| (-x).exp()).collect();
        let want = (w[0] + w[2]) / (w[0] + w[1] + w[2]);
        assert!((super::knn_prob(&d, &m, 3, 1.0) - want).abs() < 1e-6);
        assert_eq!(super::knn_prob(&d, &m, 1, 1.0), 1.0);
        assert_eq!(super::knn_prob(&d, &[false; 3], 3, 1.0), 0.0);
        // A higher temperature flattens the weights.
        assert!(super::knn_prob(&d, &m, 3, 100.0) < want);
    }
}
