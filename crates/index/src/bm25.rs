//! BM25: the lexical baseline.
//!
//! Scoring follows Lucene's `BM25Similarity` (as used by Anserini/Pyserini, the usual BM25
//! peers in open-domain QA): `idf(t) · tf / (tf + k1·(1 − b + b·|d|/avgdl))` with
//! `idf(t) = ln(1 + (N − df + 0.5)/(df + 0.5))`, summed over the query's terms, and the
//! Anserini defaults k1 = 0.9, b = 0.4. Two deliberate differences from Lucene: document
//! lengths are exact (Lucene rounds them to one byte), and the analyzer below is ours.
//!
//! Analyzer: lowercase, split into runs of letters and digits, drop Lucene's English stop
//! words and the possessive `s`, then the Snowball English (Porter 2) stemmer. Titles are
//! indexed with the text.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use rayon::prelude::*;
use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::topk::{Hit, TopK};
use crate::{Error, Result};
use ragl_core::Error as CoreError;

pub const BM25_FILE: &str = "bm25.bin";
const MAGIC: &[u8; 8] = b"RAGLBM25";

/// Lucene's `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`.
const STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bm25Config {
    pub k1: f32,
    pub b: f32,
}

impl Default for Bm25Config {
    fn default() -> Self {
        Bm25Config { k1: 0.9, b: 0.4 }
    }
}

/// Text → index terms.
pub struct Analyzer {
    stemmer: Stemmer,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer {
            stemmer: Stemmer::create(Algorithm::English),
        }
    }
}

impl Analyzer {
    pub fn terms(&self, text: &str) -> Vec<String> {
        let lower = text.to_lowercase();
        lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && *w != "s" && !STOP_WORDS.contains(w))
            .map(|w| self.stemmer.stem(w).into_owned())
            .collect()
    }
}

/// An inverted index: term → (document, term frequency) postings.
pub struct Bm25 {
    cfg: Bm25Config,
    doc_len: Vec<u32>,
    avgdl: f32,
    terms: FxHashMap<String, Vec<(u32, u32)>>,
    analyzer: Analyzer,
}

impl Bm25 {
    /// Indexes documents in order (document `i` is row `i` of the index).
    pub fn build<'a>(cfg: Bm25Config, docs: impl IntoIterator<Item = &'a str>) -> Self {
        let analyzer = Analyzer::default();
        let mut terms: FxHashMap<String, Vec<(u32, u32)>> = FxHashMap::default();
        let mut doc_len = Vec::new();
        let mut tf: FxHashMap<String, u32> = FxHashMap::default();
        for (d, text) in docs.into_iter().enumerate() {
            tf.clear();
            let ts = analyzer.terms(text);
            doc_len.push(ts.len() as u32);
            for t in ts {
                *tf.entry(t).or_default() += 1;
            }
            for (t, n) in tf.drain() {
                terms.entry(t).or_default().push((d as u32, n));
            }
        }
        let avgdl = avg(&doc_len);
        Bm25 {
            cfg,
            doc_len,
            avgdl,
            terms,
            analyzer,
        }
    }

    pub fn len(&self) -> usize {
        self.doc_len.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }

    pub fn vocabulary_size(&self) -> usize {
        self.terms.len()
    }

    fn score_into(&self, query: &str, acc: &mut [f32], touched: &mut Vec<u32>) {
        let n = self.len() as f32;
        let Bm25Config { k1, b } = self.cfg;
        for t in self.analyzer.terms(query) {
            let Some(post) = self.terms.get(&t) else {
                continue;
            };
            let df = post.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(d, tf) in post {
                let tf = tf as f32;
                let norm = k1 * (1.0 - b + b * self.doc_len[d as usize] as f32 / self.avgdl);
                if acc[d as usize] == 0.0 {
                    touched.push(d);
                }
                acc[d as usize] += idf * tf / (tf + norm);
            }
        }
    }

    /// Top-k documents of each query, queries in parallel. Documents sharing no term with
    /// the query are never returned, so a result may have fewer than k hits.
    pub fn search(&self, queries: &[String], k: usize) -> Vec<Vec<Hit>> {
        queries
            .par_iter()
            .map_init(
                || (vec![0f32; self.len()], Vec::new()),
                |(acc, touched), q| {
                    self.score_into(q, acc, touched);
                    let mut top = TopK::new(k);
                    for &d in touched.iter() {
                        top.push(d, acc[d as usize]);
                        acc[d as usize] = 0.0;
                    }
                    touched.clear();
                    top.into_sorted()
                },
            )
            .collect()
    }

    /// Writes the index (terms sorted, so the file is reproducible).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = ragl_core::atomic::temp_path(path);
        let f = std::fs::File::create(&tmp).map_err(|e| CoreError::io(&tmp, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let io = |e| CoreError::io(&tmp, e);
        let mut keys: Vec<&String> = self.terms.keys().collect();
        keys.sort();
        w.write_all(MAGIC).map_err(io)?;
        w.write_all(&(self.doc_len.len() as u64).to_le_bytes())
            .map_err(io)?;
        for l in &self.doc_len {
            w.write_all(&l.to_le_bytes()).map_err(io)?;
        }
        w.write_all(&(keys.len() as u64).to_le_bytes())
            .map_err(io)?;
        for t in keys {
            let post = &self.terms[t];
            w.write_all(&(t.len() as u32).to_le_bytes()).map_err(io)?;
            w.write_all(t.as_bytes()).map_err(io)?;
            w.write_all(&(post.len() as u32).to_le_bytes())
                .map_err(io)?;
            for (d, tf) in post {
                w.write_all(&d.to_le_bytes()).map_err(io)?;
                w.write_all(&tf.to_le_bytes()).map_err(io)?;
            }
        }
        let f = w
            .into_inner()
            .map_err(|e| CoreError::io(&tmp, e.into_error()))?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| CoreError::io(path, e))?;
        Ok(())
    }

    pub fn load(path: &Path, cfg: Bm25Config) -> Result<Self> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| CoreError::io(path, e))?;
        let corrupt = |m: &str| Error::Corrupt {
            path: path.to_path_buf(),
            message: m.to_owned(),
        };
        let mut r = Reader { b: &bytes, pos: 0 };
        if r.take(8).ok_or_else(|| corrupt("too short"))? != MAGIC {
            return Err(corrupt("not a ragl BM25 file"));
        }
        let trunc = || corrupt("truncated");
        let n = r.u64().ok_or_else(trunc)? as usize;
        if n > bytes.len() / 4 {
            return Err(corrupt("document count larger than the file"));
        }
        let doc_len: Vec<u32> = (0..n)
            .map(|_| r.u32())
            .collect::<Option<_>>()
            .ok_or_else(trunc)?;
        let nt = r.u64().ok_or_else(trunc)? as usize;
        let mut terms = FxHashMap::default();
        terms.reserve(nt.min(bytes.len()));
        for _ in 0..nt {
            let len = r.u32().ok_or_else(trunc)? as usize;
            let t = std::str::from_utf8(r.take(len).ok_or_else(trunc)?)
                .map_err(|_| corrupt("a term is not UTF-8"))?
                .to_owned();
            let df = r.u32().ok_or_else(trunc)? as usize;
            if df > (bytes.len() - r.pos) / 8 {
                return Err(trunc());
            }
            let mut post = Vec::with_capacity(df);
            for _ in 0..df {
                let (d, tf) = (r.u32().ok_or_else(trunc)?, r.u32().ok_or_else(trunc)?);
                if d as usize >= n {
                    return Err(corrupt("a posting names a document beyond the index"));
                }
                post.push((d, tf));
            }
            terms.insert(t, post);
        }
        if r.pos != bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        let avgdl = avg(&doc_len);
        Ok(Bm25 {
            cfg,
            doc_len,
            avgdl,
            terms,
            analyzer: Analyzer::default(),
        })
    }
}

fn avg(lens: &[u32]) -> f32 {
    if lens.is_empty() {
        return 1.0;
    }
    (lens.iter().map(|&l| l as f64).sum::<f64>() / lens.len() as f64).max(1e-9) as f32
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzer_stems_and_drops_stop_words() {
        let a = Analyzer::default();
        assert_eq!(
            a.terms("The Normans' conquests of England"),
            vec!["norman", "conquest", "england"]
        );
        assert_eq!(
            a.terms("Beyoncé's 2003 album"),
            vec!["beyoncé", "2003", "album"]
        );
    }

    #[test]
    fn scores_like_lucene_and_round_trips() {
        let docs = ["the cat sat", "a dog and a cat and a cat", "birds fly"];
        let idx = Bm25::build(Bm25Config::default(), docs);
        let hits = idx.search(&["cat".to_owned()], 10);
        // df = 2 of N = 3; doc lengths 2, 3, 2 (stop words dropped): avgdl = 7/3.
        let idf = (1.0f32 + (3.0 - 2.0 + 0.5) / (2.0 + 0.5)).ln();
        let s = |tf: f32, dl: f32| idf * tf / (tf + 0.9 * (1.0 - 0.4 + 0.4 * dl / (7.0 / 3.0)));
        assert_eq!(hits[0].len(), 2);
        assert_eq!(hits[0][0].row, 1);
        assert!((hits[0][0].score - s(2.0, 3.0)).abs() < 1e-6);
        assert!((hits[0][1].score - s(1.0, 2.0)).abs() < 1e-6);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(BM25_FILE);
        idx.save(&p).unwrap();
        let back = Bm25::load(&p, Bm25Config::default()).unwrap();
        assert_eq!(back.search(&["cat".to_owned()], 10), hits);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(Bm25::load(&p, Bm25Config::default()).is_err());
    }
}
