//! Corpus and sentence BLEU, equal to sacrebleu 2.6.0 in every n-gram count and every
//! printed digit.
//!
//! Upstream: `sacrebleu/metrics/bleu.py` (`BLEU.compute_bleu`, `_get_closest_ref_len`,
//! `_extract_reference_info`, `_compute_segment_statistics`) and `metrics/helpers.py`
//! (`extract_all_word_ngrams`). Floating-point operations are done in the same order as the
//! Python code, so the scores are bit-identical, not merely close.

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::signature::Signature;
use crate::tokenize::Tokenizer;
use ragl_core::text::{py_rstrip, py_split};

pub const MAX_NGRAM_ORDER: usize = 4;

/// Smoothing, as in Chen & Cherry (2014) and sacrebleu's `--smooth-method`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Smooth {
    None,
    /// Method 1: zero counts get `value` (default 0.1).
    Floor(f64),
    /// Method 2: add `value` (default 1) to counts and totals of orders above 1.
    AddK(f64),
    /// Method 3: NIST / mteval-v13a exponential decay (the default).
    Exp,
}

impl Smooth {
    pub const NAMES: [&'static str; 4] = ["exp", "floor", "add-k", "none"];

    /// Builds the method from its name and optional value, with sacrebleu's defaults.
    pub fn from_name(name: &str, value: Option<f64>) -> Option<Self> {
        Some(match name {
            "none" => Smooth::None,
            "floor" => Smooth::Floor(value.unwrap_or(0.1)),
            "add-k" => Smooth::AddK(value.unwrap_or(1.0)),
            "exp" => Smooth::Exp,
            _ => return None,
        })
    }

    /// The signature field: `exp`, `floor[0.10]`, `add-k[1.00]`, `none`.
    pub fn signature(self) -> String {
        match self {
            Smooth::None => "none".into(),
            Smooth::Exp => "exp".into(),
            Smooth::Floor(v) => format!("floor[{v:.2}]"),
            Smooth::AddK(v) => format!("add-k[{v:.2}]"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BleuConfig {
    pub tokenizer: Tokenizer,
    pub lowercase: bool,
    pub smooth: Smooth,
    pub effective_order: bool,
}

impl Default for BleuConfig {
    fn default() -> Self {
        BleuConfig {
            tokenizer: Tokenizer::ThirteenA,
            lowercase: false,
            smooth: Smooth::Exp,
            effective_order: false,
        }
    }
}

/// Sufficient statistics of one or more segments: lengths and per-order n-gram counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BleuStats {
    pub sys_len: u64,
    pub ref_len: u64,
    pub correct: [u64; MAX_NGRAM_ORDER],
    pub total: [u64; MAX_NGRAM_ORDER],
}

impl std::ops::AddAssign for BleuStats {
    fn add_assign(&mut self, o: Self) {
        self.sys_len += o.sys_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_NGRAM_ORDER {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }
}

/// A BLEU score with everything sacrebleu prints. `counts` and `totals` are as sacrebleu
/// reports them, i.e. after add-k smoothing has added `k` to orders above 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BleuScore {
    pub name: &'static str,
    pub score: f64,
    pub counts: Vec<f64>,
    pub totals: Vec<f64>,
    pub precisions: Vec<f64>,
    pub bp: f64,
    pub sys_len: u64,
    pub ref_len: u64,
}

impl BleuScore {
    pub fn ratio(&self) -> f64 {
        if self.ref_len > 0 {
            self.sys_len as f64 / self.ref_len as f64
        } else {
            0.0
        }
    }

    /// `59.6/33.1/20.4/12.8 (BP = 1.000 ratio = 1.002 hyp_len = 100 ref_len = 99)`.
    pub fn verbose(&self) -> String {
        let prec: Vec<String> = self.precisions.iter().map(|p| format!("{p:.1}")).collect();
        format!(
            "{} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            prec.join("/"),
            self.bp,
            self.ratio(),
            self.sys_len,
            self.ref_len
        )
    }

    /// `BLEU = 27.31 59.6/...`, as `str()` of a sacrebleu score with `width` decimals.
    pub fn format(&self, width: usize) -> String {
        format!("{} = {:.width$} {}", self.name, self.score, self.verbose())
    }
}

/// References of one segment, pre-processed: their vocabulary, n-gram counts (max over
/// references) keyed by token ids, and the length of each reference.
///
/// N-grams are keyed by the ids of their tokens in a per-segment vocabulary, packed into a
/// `u128` (unused slots `u32::MAX`), which is exact (no hashing of text into a lossy key)
/// and avoids allocating a string per n-gram.
#[derive(Debug, Clone, Default)]
pub struct RefInfo {
    vocab: FxHashMap<String, u32>,
    ngrams: FxHashMap<u128, u32>,
    lens: Vec<u64>,
}

/// BLEU with a fixed configuration.
#[derive(Debug, Clone)]
pub struct Bleu {
    pub config: BleuConfig,
}

#[inline]
fn ngram_key(ids: &[u32]) -> u128 {
    let mut k = [u32::MAX; MAX_NGRAM_ORDER];
    k[..ids.len()].copy_from_slice(ids);
    (k[0] as u128) | (k[1] as u128) << 32 | (k[2] as u128) << 64 | (k[3] as u128) << 96
}

/// Counts n-grams of orders 1..=4 over runs of known ids; `None` ids (tokens absent from
/// every reference) break n-grams, which then cannot match.
fn count_ngrams(ids: &[Option<u32>], into: &mut FxHashMap<u128, u32>) {
    let mut buf = [0u32; MAX_NGRAM_ORDER];
    for start in 0..ids.len() {
        for n in 1..=MAX_NGRAM_ORDER.min(ids.len() - start) {
            match ids[start + n - 1] {
                Some(id) => buf[n - 1] = id,
                None => break,
            }
            *into.entry(ngram_key(&buf[..n])).or_insert(0) += 1;
        }
    }
}

impl Bleu {
    pub fn new(config: BleuConfig) -> Self {
        Bleu { config }
    }

    /// `_preprocess_segment`: lowercase (optionally), strip trailing whitespace, tokenize.
    pub fn preprocess(&self, sent: &str) -> String {
        if self.config.lowercase {
            self.config
                .tokenizer
                .tokenize(py_rstrip(&sent.to_lowercase()))
        } else {
            self.config.tokenizer.tokenize(py_rstrip(sent))
        }
    }

    /// `_extract_reference_info` over the raw references of one segment.
    pub fn reference_info<S: AsRef<str>>(&self, refs: &[S]) -> RefInfo {
        let mut info = RefInfo::default();
        let mut counts = FxHashMap::default();
        counts.reserve(64);
        for r in refs {
            let tok = self.preprocess(r.as_ref());
            let ids: Vec<Option<u32>> = py_split(&tok)
                .map(|t| {
                    let next = info.vocab.len() as u32;
                    Some(*info.vocab.entry(t.to_owned()).or_insert(next))
                })
                .collect();
            info.lens.push(ids.len() as u64);
            counts.clear();
            count_ngrams(&ids, &mut counts);
            for (&k, &c) in &counts {
                let e = info.ngrams.entry(k).or_insert(0);
                *e = (*e).max(c);
            }
        }
        info
    }

    /// `_compute_segment_statistics` of a raw hypothesis against prepared references.
    pub fn segment_stats(&self, hyp: &str, refs: &RefInfo) -> BleuStats {
        let tok = self.preprocess(hyp);
        let ids: Vec<Option<u32>> = py_split(&tok).map(|t| refs.vocab.get(t).copied()).collect();
        let hyp_len = ids.len() as u64;
        let mut st = BleuStats {
            sys_len: hyp_len,
            ref_len: closest_ref_len(hyp_len, &refs.lens),
            ..Default::default()
        };
        for n in 1..=MAX_NGRAM_ORDER {
            st.total[n - 1] = (hyp_len + 1).saturating_sub(n as u64);
        }
        let mut counts = FxHashMap::default();
        counts.reserve(ids.len() * MAX_NGRAM_ORDER);
        count_ngrams(&ids, &mut counts);
        for (k, c) in counts {
            if let Some(&r) = refs.ngrams.get(&k) {
                let n = MAX_NGRAM_ORDER
                    - (0..MAX_NGRAM_ORDER)
                        .filter(|i| (k >> (32 * i)) as u32 == u32::MAX)
                        .count();
                st.correct[n - 1] += c.min(r) as u64;
            }
        }
        st
    }

    /// Statistics of a whole corpus: `refs[k][i]` is reference stream `k` of segment `i`.
    /// Segments are scored in parallel; the statistics are integers, so their sum (and the
    /// score) does not depend on the order.
    pub fn corpus_stats<S: AsRef<str> + Sync, R: AsRef<str> + Sync>(
        &self,
        hyps: &[S],
        refs: &[Vec<R>],
    ) -> BleuStats {
        use rayon::prelude::*;
        (0..hyps.len())
            .into_par_iter()
            .with_min_len(64)
            .map(|i| {
                let seg_refs: Vec<&str> = refs.iter().map(|r| r[i].as_ref()).collect();
                self.segment_stats(hyps[i].as_ref(), &self.reference_info(&seg_refs))
            })
            .reduce(BleuStats::default, |mut a, b| {
                a += b;
                a
            })
    }

    pub fn corpus_score<S: AsRef<str> + Sync, R: AsRef<str> + Sync>(
        &self,
        hyps: &[S],
        refs: &[Vec<R>],
    ) -> BleuScore {
        self.score(&self.corpus_stats(hyps, refs))
    }

    /// `BLEU.compute_bleu`, operation for operation.
    pub fn score(&self, st: &BleuStats) -> BleuScore {
        let (sys_len, ref_len) = (st.sys_len, st.ref_len);
        let mut correct: Vec<f64> = st.correct.iter().map(|&c| c as f64).collect();
        let mut total: Vec<f64> = st.total.iter().map(|&c| c as f64).collect();
        let mut bp = 1.0;
        if sys_len < ref_len {
            bp = if sys_len > 0 {
                (1.0 - ref_len as f64 / sys_len as f64).exp()
            } else {
                0.0
            };
        }
        let mut precisions = vec![0.0f64; MAX_NGRAM_ORDER];
        let done = |score, correct, total, precisions| BleuScore {
            name: "BLEU",
            score,
            counts: correct,
            totals: total,
            precisions,
            bp,
            sys_len,
            ref_len,
        };
        if st.correct.iter().all(|&c| c == 0) {
            return done(0.0, correct, total, precisions);
        }
        let mut smooth_mteval = 1.0f64;
        let mut eff_order = MAX_NGRAM_ORDER;
        for n in 1..=MAX_NGRAM_ORDER {
            if let Smooth::AddK(k) = self.config.smooth
                && n > 1
            {
                correct[n - 1] += k;
                total[n - 1] += k;
            }
            if total[n - 1] == 0.0 {
                break;
            }
            if self.config.effective_order {
                eff_order = n;
            }
            if correct[n - 1] == 0.0 {
                match self.config.smooth {
                    Smooth::Exp => {
                        smooth_mteval *= 2.0;
                        precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1]);
                    }
                    Smooth::Floor(v) => precisions[n - 1] = 100.0 * v / total[n - 1],
                    _ => {}
                }
            } else {
                precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1];
            }
        }
        let mut log_sum = 0.0f64;
        for &p in &precisions[..eff_order] {
            log_sum += my_log(p);
        }
        let score = bp * (log_sum / eff_order as f64).exp();
        done(score, correct, total, precisions)
    }

    /// The reproducibility signature, `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:…`.
    pub fn signature(&self, nrefs: usize) -> Signature {
        let c = &self.config;
        Signature::new(vec![
            ("nrefs", nrefs.to_string()),
            ("case", if c.lowercase { "lc" } else { "mixed" }.into()),
            ("eff", if c.effective_order { "yes" } else { "no" }.into()),
            ("tok", c.tokenizer.signature().into()),
            ("smooth", c.smooth.signature()),
        ])
    }
}

/// `utils.my_log`: log, floored for zero.
fn my_log(x: f64) -> f64 {
    if x == 0.0 { -9999999999.0 } else { x.ln() }
}

/// `_get_closest_ref_len`: the closest length, the shorter one on ties.
fn closest_ref_len(hyp_len: u64, ref_lens: &[u64]) -> u64 {
    let mut best: Option<(u64, u64)> = None;
    for &r in ref_lens {
        let diff = hyp_len.abs_diff(r);
        match best {
            None => best = Some((diff, r)),
            Some((d, l)) if diff < d || (diff == d && r < l) => best = Some((diff, r)),
            _ => {}
        }
    }
    best.map_or(u64::MAX, |(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bleu() -> Bleu {
        Bleu::new(BleuConfig::default())
    }

    // Reference values from sacrebleu 2.6.0:
    //   sacrebleu.metrics.BLEU().corpus_score(hyps, [refs]); repr(score.score)
    #[test]
    fn corpus_bleu_matches_sacrebleu() {
        let hyps = [
            "The cat sat on the mat.",
            "A quick brown fox jumps over the dog!",
        ];
        let refs = vec![vec![
            "The cat sat on a mat.",
            "The quick brown fox jumped over the lazy dog.",
        ]];
        let s = bleu().corpus_score(&hyps, &refs);
        assert_eq!(s.counts, [12.0, 7.0, 3.0, 1.0]);
        assert_eq!(s.totals, [16.0, 14.0, 12.0, 10.0]);
        assert_eq!((s.sys_len, s.ref_len), (16, 17));
        assert_eq!(s.score, 29.231386414219934);
        assert_eq!(
            s.format(2),
            "BLEU = 29.23 75.0/50.0/25.0/10.0 (BP = 0.939 ratio = 0.941 hyp_len = 16 ref_len = 17)"
        );
    }

    #[test]
    fn closest_reference_prefers_shorter_on_ties() {
        assert_eq!(closest_ref_len(5, &[7, 3]), 3);
        assert_eq!(closest_ref_len(5, &[6, 4, 9]), 4);
    }

    #[test]
    fn no_matches_scores_zero() {
        let s = bleu().corpus_score(&["x y z"], &[vec!["a b c"]]);
        assert_eq!(s.score, 0.0);
        assert_eq!(s.precisions, [0.0; 4]);
    }
}
