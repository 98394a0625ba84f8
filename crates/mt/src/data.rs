//! Parallel text: line-aligned source/target files read together (a length mismatch or an
//! empty line is an error naming the file and line), encoded with the joint vocabulary, and
//! grouped into batches by token count as fairseq's `--max-tokens` does: pairs sorted by
//! length so that a batch pads little, the batch order shuffled by a seed each epoch.

use std::path::{Path, PathBuf};

use ragl_core::read::{Input, Lines};

use crate::vocab::{Specials, Vocab};
use crate::{Error, Result};

/// Reads two line-aligned files. A trailing line without `\n` counts as a line.
pub fn read_parallel(src: &Path, tgt: &Path) -> Result<Vec<(String, String)>> {
    let s = Lines::read_all(&Input::from_arg(src))?;
    let t = Lines::read_all(&Input::from_arg(tgt))?;
    if s.len() != t.len() {
        return Err(Error::Data {
            path: tgt.to_path_buf(),
            line: s.len().min(t.len()) as u64 + 1,
            message: format!(
                "{} has {} lines but {} has {}: source and target must be line-aligned",
                src.display(),
                s.len(),
                tgt.display(),
                t.len()
            ),
        });
    }
    for (i, (a, b)) in s.iter().zip(&t).enumerate() {
        for (text, path) in [(a, src), (b, tgt)] {
            if text.trim().is_empty() {
                return Err(Error::Data {
                    path: path.to_path_buf(),
                    line: i as u64 + 1,
                    message: "empty line in parallel text".into(),
                });
            }
        }
    }
    Ok(s.into_iter().zip(t).collect())
}

/// A source/target file pair, as configs name them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FilePair {
    pub src: PathBuf,
    pub tgt: PathBuf,
}

/// An encoded pair; `tgt` has no `<s>`/`</s>`, `src` ends with `</s>` (fairseq).
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub src: Vec<u32>,
    pub tgt: Vec<u32>,
}

/// Encodes pairs, dropping (and counting) those longer than `max_len` subwords on a side.
pub fn encode_pairs(
    vocab: &Vocab,
    pairs: &[(String, String)],
    max_len: usize,
) -> Result<(Vec<Pair>, usize)> {
    let mut out = Vec::with_capacity(pairs.len());
    let mut dropped = 0;
    for (s, t) in pairs {
        let src = vocab.encode_source(s)?;
        let tgt = vocab.encode_target(t)?;
        if src.len() > max_len || tgt.len() + 1 > max_len {
            dropped += 1;
            continue;
        }
        out.push(Pair { src, tgt });
    }
    Ok((out, dropped))
}

/// Indices of pairs, grouped so that `rows × longest side (+1)` stays within `max_tokens`.
pub fn batches_by_tokens(pairs: &[Pair], max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&i| (pairs[i].tgt.len(), pairs[i].src.len(), i));
    let mut out = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut width = 0;
    for i in order {
        let w = pairs[i].src.len().max(pairs[i].tgt.len() + 1);
        let nw = width.max(w);
        if !cur.is_empty() && nw * (cur.len() + 1) > max_tokens {
            out.push(std::mem::take(&mut cur));
            width = 0;
        }
        width = width.max(w);
        cur.push(i);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A padded batch as flat row-major id arrays: `src [rows, s]`, `tgt_in`/`tgt_out [rows, t]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Padded {
    pub rows: usize,
    pub src_len: usize,
    pub tgt_len: usize,
    pub src: Vec<i64>,
    pub tgt_in: Vec<i64>,
    pub tgt_out: Vec<i64>,
    /// Real (non-pad) target tokens, `</s>` included.
    pub tokens: usize,
}

/// `sp` gives the pad id, the decoder's first input and the end token.
pub fn pad_batch(pairs: &[Pair], idx: &[usize], sp: &Specials) -> Padded {
    let rows = idx.len();
    let s = idx.iter().map(|&i| pairs[i].src.len()).max().unwrap_or(0);
    let t = idx
        .iter()
        .map(|&i| pairs[i].tgt.len() + 1)
        .max()
        .unwrap_or(0);
    let pad = sp.pad as i64;
    let mut src = vec![pad; rows * s];
    let mut tgt_in = vec![pad; rows * t];
    let mut tgt_out = vec![pad; rows * t];
    let mut tokens = 0;
    for (r, &i) in idx.iter().enumerate() {
        let p = &pairs[i];
        for (j, &id) in p.src.iter().enumerate() {
            src[r * s + j] = id as i64;
        }
        tgt_in[r * t] = sp.bos as i64;
        for (j, &id) in p.tgt.iter().enumerate() {
            tgt_in[r * t + j + 1] = id as i64;
            tgt_out[r * t + j] = id as i64;
        }
        tgt_out[r * t + p.tgt.len()] = sp.eos as i64;
        tokens += p.tgt.len() + 1;
    }
    Padded {
        rows,
        src_len: s,
        tgt_len: t,
        src,
        tgt_in,
        tgt_out,
        tokens,
    }
}

pub use ragl_core::rng::Rng;

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(s: usize, t: usize) -> Pair {
        Pair {
            src: vec![5; s],
            tgt: vec![6; t],
        }
    }

    #[test]
    fn batches_respect_the_token_budget_and_cover_every_pair() {
        let pairs: Vec<Pair> = (1..50).map(|i| pair(i % 13 + 1, i % 7 + 1)).collect();
        let bs = batches_by_tokens(&pairs, 40);
        let mut seen: Vec<usize> = bs.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..pairs.len()).collect::<Vec<_>>());
        for b in &bs {
            let p = pad_batch(&pairs, b, &Specials::default());
            assert!(p.rows * p.src_len.max(p.tgt_len) <= 40 || p.rows == 1);
        }
    }

    #[test]
    fn padding_shifts_the_target() {
        let pairs = vec![
            Pair {
                src: vec![7, 2],
                tgt: vec![8, 9],
            },
            Pair {
                src: vec![7, 7, 2],
                tgt: vec![8],
            },
        ];
        let p = pad_batch(&pairs, &[0, 1], &Specials::default());
        assert_eq!(p.src, vec![7, 2, 0, 7, 7, 2]);
        assert_eq!(p.tgt_in, vec![1, 8, 9, 1, 8, 0]);
        assert_eq!(p.tgt_out, vec![8, 9, 2, 8, 2, 0]);
        assert_eq!(p.tokens, 5);
    }

    #[test]
    fn mismatched_and_empty_lines_are_errors_with_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let (s, t) = (d.path().join("a.de"), d.path().join("a.en"));
        std::fs::write(&s, "eins\nzwei\n").unwrap();
        std::fs::write(&t, "one\n").unwrap();
        let e = read_parallel(&s, &t).unwrap_err().to_string();
        assert!(e.contains("a.en") && e.contains("line-aligned"), "{e}");
        std::fs::write(&t, "one\n \n").unwrap();
        let e = read_parallel(&s, &t).unwrap_err().to_string();
        assert!(e.contains("a.en:2"), "{e}");
        // A last line without a newline is still a line.
        std::fs::write(&t, "one\ntwo").unwrap();
        assert_eq!(read_parallel(&s, &t).unwrap().len(), 2);
    }
}
