//! Sweeps of kNN-MT's settings (k, λ, T): the test set decoded by the base model and with
//! the datastore at each setting, each run's BLEU (sacrebleu's default 13a) and its cost
//! per decoder row, so that the two systems are compared on the same unit of work whatever
//! lengths their outputs have.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use burn::tensor::backend::Backend;
use ragl_eval::bleu::{Bleu, BleuConfig};
use ragl_mt::beam::{BeamConfig, SharedStepHook, StepHook};
use ragl_mt::checkpoint::MtModel;

use crate::Result;
use crate::combiner::{KnnHook, KnnMt};
use crate::datastore::Datastore;

/// One kNN-MT setting: neighbours, interpolation weight, temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    pub k: usize,
    pub lambda: f32,
    pub temperature: f32,
}

impl Setting {
    /// Every combination of the three lists, k outermost, then λ, then T.
    pub fn grid(ks: &[usize], lambdas: &[f32], temperatures: &[f32]) -> Vec<Setting> {
        let mut v = Vec::with_capacity(ks.len() * lambdas.len() * temperatures.len());
        for &k in ks {
            for &lambda in lambdas {
                for &temperature in temperatures {
                    v.push(Setting {
                        k,
                        lambda,
                        temperature,
                    });
                }
            }
        }
        v
    }
}

/// One decoding of the test set.
#[derive(Debug, Clone)]
pub struct Run {
    pub hyps: Vec<String>,
    pub bleu: f64,
    pub secs: f64,
    /// Output tokens, `</s>` included.
    pub tokens: usize,
    /// Decoder rows scored (hypotheses × steps).
    pub rows: u64,
    /// Seconds spent searching the datastore (0 for the base model).
    pub search_secs: f64,
}

impl Run {
    /// Microseconds per decoder row (one hypothesis advanced one step).
    pub fn us_per_row(&self) -> f64 {
        self.secs * 1e6 / self.rows.max(1) as f64
    }
}

/// Counts the decoder rows that pass through a hook.
struct Counted<'a> {
    inner: &'a mut dyn StepHook,
    rows: u64,
}

impl StepHook for Counted<'_> {
    fn wants_hidden(&self) -> bool {
        self.inner.wants_hidden()
    }
    fn adjust(&mut self, hidden: &[f32], d: usize, log_probs: &mut [f32], vocab: usize) {
        self.rows += (log_probs.len() / vocab.max(1)) as u64;
        self.inner.adjust(hidden, d, log_probs, vocab);
    }
}

/// Counts the rows through a hook that batches may share (`None`: the base model), so that
/// counting does not make decoding serial.
struct SharedCounted<'a> {
    inner: Option<&'a dyn SharedStepHook>,
    rows: AtomicU64,
}

impl StepHook for SharedCounted<'_> {
    fn wants_hidden(&self) -> bool {
        self.inner.is_some_and(|h| h.wants_hidden())
    }
    fn adjust(&mut self, hidden: &[f32], d: usize, log_probs: &mut [f32], vocab: usize) {
        self.adjust_shared(hidden, d, log_probs, vocab);
    }
    fn as_shared(&self) -> Option<&dyn SharedStepHook> {
        Some(self)
    }
}

impl SharedStepHook for SharedCounted<'_> {
    fn wants_hidden(&self) -> bool {
        self.inner.is_some_and(|h| h.wants_hidden())
    }
    fn adjust_shared(&self, hidden: &[f32], d: usize, log_probs: &mut [f32], vocab: usize) {
        self.rows
            .fetch_add((log_probs.len() / vocab.max(1)) as u64, Ordering::Relaxed);
        if let Some(h) = self.inner {
            h.adjust_shared(hidden, d, log_probs, vocab);
        }
    }
}

/// Decodes `src` (ids ending with `</s>`) with `hook` and scores it against `refs`;
/// `progress` receives the sentences finished.
pub fn decode<B: Backend>(
    m: &MtModel<B>,
    src: &[Vec<u32>],
    refs: &[String],
    beam: &BeamConfig,
    hook: &mut dyn StepHook,
    progress: impl FnMut(usize) + Send,
) -> Result<Run> {
    let t = Instant::now();
    let (out, rows) = if hook.is_identity() || hook.as_shared().is_some() {
        let mut counted = SharedCounted {
            inner: hook.as_shared(),
            rows: AtomicU64::new(0),
        };
        let out = ragl_mt::beam::translate_ids(&m.model, src, beam, &mut counted, progress);
        (out, counted.rows.into_inner())
    } else {
        let mut counted = Counted {
            inner: hook,
            rows: 0,
        };
        let out = ragl_mt::beam::translate_ids(&m.model, src, beam, &mut counted, progress);
        (out, counted.rows)
    };
    let secs = t.elapsed().as_secs_f64();
    let tokens = out.iter().map(|o| o.len() + 1).sum();
    let hyps: Vec<String> = out
        .iter()
        .map(|o| m.vocab.decode(o))
        .collect::<ragl_mt::Result<_>>()?;
    let bleu = Bleu::new(BleuConfig::default())
        .corpus_score(&hyps, &[refs.to_vec()])
        .score;
    Ok(Run {
        hyps,
        bleu,
        secs,
        tokens,
        rows,
        search_secs: 0.0,
    })
}

/// Decodes `src` with the datastore at `setting`.
pub fn decode_knn<B: Backend>(
    m: &MtModel<B>,
    ds: &Datastore,
    src: &[Vec<u32>],
    refs: &[String],
    beam: &BeamConfig,
    setting: Setting,
    progress: impl FnMut(usize) + Send,
) -> Result<Run> {
    let mut hook = KnnHook::new(
        ds,
        setting.k,
        KnnMt {
            lambda: setting.lambda,
            temperature: setting.temperature,
        },
    );
    let mut r = decode(m, src, refs, beam, &mut hook, progress)?;
    r.search_secs = hook.search_secs();
    Ok(r)
}

/// The index of the best-scoring run (the first of equals), `None` for no runs.
pub fn best(runs: &[Run]) -> Option<usize> {
    runs.iter()
        .enumerate()
        .fold(None, |b: Option<(usize, f64)>, (i, r)| match b {
            Some((_, s)) if s >= r.bleu => b,
            _ => Some((i, r.bleu)),
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_runs_k_outermost() {
        let g = Setting::grid(&[4, 8], &[0.2, 0.5], &[10.0]);
        let ks: Vec<usize> = g.iter().map(|s| s.k).collect();
        assert_eq!(ks, [4, 4, 8, 8]);
        assert_eq!(g[1].lambda, 0.5);
    }

    #[test]
    fn the_best_run_is_the_first_of_the_highest() {
        let run = |bleu| Run {
            hyps: vec![],
            bleu,
            secs: 1.0,
            tokens: 1,
            rows: 1,
            search_secs: 0.0,
        };
        assert_eq!(best(&[run(1.0), run(3.0), run(3.0), run(2.0)]), Some(1));
        assert_eq!(best(&[]), None);
    }
}
