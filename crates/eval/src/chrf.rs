//! chrF (Popović 2015) and chrF++ (Popović 2017), equal to sacrebleu 2.6.0.
//!
//! Upstream: `sacrebleu/metrics/chrf.py` and `metrics/helpers.py`. Character n-grams are
//! over Unicode code points (Python string indexing) of the segment with whitespace removed
//! (unless `whitespace`); word n-grams (chrF++) split one ASCII punctuation mark off the end
//! or the start of each word.

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::signature::Signature;
use ragl_core::text::py_split;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChrfConfig {
    pub char_order: usize,
    pub word_order: usize,
    pub beta: u32,
    pub lowercase: bool,
    pub whitespace: bool,
    pub eps_smoothing: bool,
}

impl Default for ChrfConfig {
    fn default() -> Self {
        ChrfConfig {
            char_order: 6,
            word_order: 0,
            beta: 2,
            lowercase: false,
            whitespace: false,
            eps_smoothing: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChrfScore {
    pub name: String,
    pub score: f64,
    pub char_order: usize,
    pub word_order: usize,
    pub beta: u32,
}

impl ChrfScore {
    pub fn format(&self, width: usize) -> String {
        format!("{} = {:.width$}", self.name, self.score)
    }
}

/// Per-order n-gram counters of one segment: char orders first, then word orders.
type Counters = Vec<FxHashMap<Vec<char>, u32>>;

#[derive(Debug, Clone)]
pub struct Chrf {
    pub config: ChrfConfig,
}

const PUNCTS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

impl Chrf {
    pub fn new(config: ChrfConfig) -> Self {
        Chrf { config }
    }

    fn order(&self) -> usize {
        self.config.char_order + self.config.word_order
    }

    fn preprocess(&self, s: &str) -> String {
        if self.config.lowercase {
            s.to_lowercase()
        } else {
            s.to_owned()
        }
    }

    /// `_remove_punctuation`.
    fn words(sent: &str) -> Vec<Vec<char>> {
        let mut out = Vec::new();
        for w in py_split(sent) {
            let cs: Vec<char> = w.chars().collect();
            if cs.len() == 1 {
                out.push(cs);
            } else if PUNCTS.contains(cs[cs.len() - 1]) {
                out.push(cs[..cs.len() - 1].to_vec());
                out.push(vec![cs[cs.len() - 1]]);
            } else if PUNCTS.contains(cs[0]) {
                out.push(vec![cs[0]]);
                out.push(cs[1..].to_vec());
            } else {
                out.push(cs);
            }
        }
        out
    }

    fn counters(&self, sent: &str) -> Counters {
        let sent = self.preprocess(sent);
        let chars: Vec<char> = if self.config.whitespace {
            sent.chars().collect()
        } else {
            py_split(&sent).flat_map(str::chars).collect()
        };
        let mut out: Counters = Vec::with_capacity(self.order());
        for n in 1..=self.config.char_order {
            let mut m = FxHashMap::default();
            for w in chars.windows(n) {
                *m.entry(w.to_vec()).or_insert(0) += 1;
            }
            out.push(m);
        }
        if self.config.word_order > 0 {
            let words = Self::words(&sent);
            for n in 1..=self.config.word_order {
                let mut m = FxHashMap::default();
                for w in words.windows(n) {
                    // ' '.join(tokens[i:i+n]) as the key.
                    let mut key = Vec::new();
                    for (j, t) in w.iter().enumerate() {
                        if j > 0 {
                            key.push(' ');
                        }
                        key.extend_from_slice(t);
                    }
                    *m.entry(key).or_insert(0) += 1;
                }
                out.push(m);
            }
        }
        out
    }

    /// `_compute_segment_statistics`: the [hyp, ref, match] triples, per order, of the
    /// reference with the best f-score (the first on ties).
    pub fn segment_stats<S: AsRef<str>>(&self, hyp: &str, refs: &[S]) -> Vec<u64> {
        let h = self.counters(hyp);
        let mut best: Vec<u64> = Vec::new();
        let mut best_f = -1.0;
        for r in refs {
            let r = self.counters(r.as_ref());
            let mut stats = Vec::with_capacity(3 * self.order());
            for (hc, rc) in h.iter().zip(&r) {
                let (mut matched, mut hyp_count) = (0u64, 0u64);
                for (ng, &c) in hc {
                    hyp_count += c as u64;
                    if let Some(&rcount) = rc.get(ng) {
                        matched += c.min(rcount) as u64;
                    }
                }
                let ref_count: u64 = rc.values().map(|&c| c as u64).sum();
                stats.extend([
                    if rc.is_empty() { 0 } else { hyp_count },
                    ref_count,
                    matched,
                ]);
            }
            let f = self.f_score(&stats);
            if f > best_f {
                best_f = f;
                best = stats;
            }
        }
        best
    }

    /// `_compute_f_score`, operation for operation.
    pub fn f_score(&self, stats: &[u64]) -> f64 {
        let eps = 1e-16;
        let mut score = 0.0f64;
        let mut effective_order = 0u32;
        let factor = (self.config.beta as f64).powi(2);
        let (mut avg_prec, mut avg_rec) = (0.0f64, 0.0f64);
        for i in 0..self.order() {
            let (n_hyp, n_ref, n_match) = (stats[3 * i], stats[3 * i + 1], stats[3 * i + 2]);
            let prec = if n_hyp > 0 {
                n_match as f64 / n_hyp as f64
            } else {
                eps
            };
            let rec = if n_ref > 0 {
                n_match as f64 / n_ref as f64
            } else {
                eps
            };
            let denom = factor * prec + rec;
            score += if denom > 0.0 {
                (1.0 + factor) * prec * rec / denom
            } else {
                eps
            };
            if n_hyp > 0 && n_ref > 0 {
                avg_prec += prec;
                avg_rec += rec;
                effective_order += 1;
            }
        }
        if self.config.eps_smoothing {
            return 100.0 * score / self.order() as f64;
        }
        if effective_order == 0 {
            avg_prec = 0.0;
            avg_rec = 0.0;
        } else {
            avg_prec /= effective_order as f64;
            avg_rec /= effective_order as f64;
        }
        if avg_prec + avg_rec != 0.0 {
            let mut score = (1.0 + factor) * avg_prec * avg_rec;
            score /= (factor * avg_prec) + avg_rec;
            100.0 * score
        } else {
            0.0
        }
    }

    /// Summed statistics of a corpus; `refs[k][i]` is reference stream `k` of segment `i`.
    /// Segments are scored in parallel; integer statistics make the sum order-free.
    pub fn corpus_stats<S: AsRef<str> + Sync, R: AsRef<str> + Sync>(
        &self,
        hyps: &[S],
        refs: &[Vec<R>],
    ) -> Vec<u64> {
        use rayon::prelude::*;
        let n = 3 * self.order();
        (0..hyps.len())
            .into_par_iter()
            .with_min_len(64)
            .map(|i| {
                let seg: Vec<&str> = refs.iter().map(|r| r[i].as_ref()).collect();
                self.segment_stats(hyps[i].as_ref(), &seg)
            })
            .reduce(
                || vec![0u64; n],
                |mut a, b| {
                    for (t, s) in a.iter_mut().zip(b) {
                        *t += s;
                    }
                    a
                },
            )
    }

    pub fn score(&self, stats: &[u64]) -> ChrfScore {
        ChrfScore {
            name: format!(
                "chrF{}{}",
                self.config.beta,
                "+".repeat(self.config.word_order)
            ),
            score: self.f_score(stats),
            char_order: self.config.char_order,
            word_order: self.config.word_order,
            beta: self.config.beta,
        }
    }

    pub fn corpus_score<S: AsRef<str> + Sync, R: AsRef<str> + Sync>(
        &self,
        hyps: &[S],
        refs: &[Vec<R>],
    ) -> ChrfScore {
        self.score(&self.corpus_stats(hyps, refs))
    }

    /// `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:…`.
    pub fn signature(&self, nrefs: usize) -> Signature {
        let c = &self.config;
        Signature::new(vec![
            ("nrefs", nrefs.to_string()),
            ("case", if c.lowercase { "lc" } else { "mixed" }.into()),
            ("eff", if c.eps_smoothing { "no" } else { "yes" }.into()),
            ("nc", c.char_order.to_string()),
            ("nw", c.word_order.to_string()),
            ("space", if c.whitespace { "yes" } else { "no" }.into()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From sacrebleu 2.6.0: CHRF(word_order=w).corpus_score(hyps, [refs]).score
    #[test]
    fn chrf_and_chrf_plus_plus_match_sacrebleu() {
        let hyps = [
            "The cat sat on the mat.",
            "A quick brown fox jumps over the dog!",
        ];
        let refs = vec![vec![
            "The cat sat on a mat.",
            "The quick brown fox jumped over the lazy dog.",
        ]];
        let c = Chrf::new(ChrfConfig::default()).corpus_score(&hyps, &refs);
        assert_eq!(c.name, "chrF2");
        assert_eq!(c.score, CHRF);
        let cpp = Chrf::new(ChrfConfig {
            word_order: 2,
            ..Default::default()
        })
        .corpus_score(&hyps, &refs);
        assert_eq!(cpp.name, "chrF2++");
        assert_eq!(cpp.score, CHRFPP);
    }
    const CHRF: f64 = 64.01841307905406;
    const CHRFPP: f64 = 62.85805700104409;
}
