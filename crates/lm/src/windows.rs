//! Text → scoring windows.
//!
//! *Stream*: the whole text is one token sequence, cut into windows of at most `max_len`
//! tokens that start every `stride` tokens; each window scores only the tokens the previous
//! one did not, so every token but the first is scored exactly once, with at least
//! `max_len − stride` tokens of context once the first window is full (transformers'
//! perplexity guide; the kNN-LM paper's evaluation with its context window). *Per line*:
//! each line is a document, `BOS + tokens`; every token is scored, the BOS is not; a line
//! longer than the context is windowed the same way.

use crate::{Error, Result};

/// What to score.
#[derive(Debug, Clone)]
pub enum Text {
    /// One stream (a file's whole text).
    Stream(String),
    /// One document per entry (a file's lines).
    Lines(Vec<String>),
}

/// One window: token ids, and the first position whose token is scored (each scored token
/// is predicted from the state one position before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub ids: Vec<u32>,
    pub score_from: usize,
}

impl Window {
    /// Tokens this window scores.
    pub fn scored(&self) -> usize {
        self.ids.len() - self.score_from
    }
}

/// Windows over `ids` (one document), scoring positions from `first` on.
pub fn cut(ids: &[u32], first: usize, max_len: usize, stride: usize) -> Vec<Window> {
    let mut out = Vec::new();
    if ids.len() <= first {
        return out;
    }
    let stride = stride.clamp(1, max_len);
    let mut begin = 0usize;
    let mut scored_to = first; // tokens before this are scored (or not to be)
    loop {
        let end = (begin + max_len).min(ids.len());
        if end > scored_to {
            out.push(Window {
                ids: ids[begin..end].to_vec(),
                score_from: scored_to - begin,
            });
            scored_to = end;
        }
        if end == ids.len() {
            break;
        }
        begin += stride;
    }
    out
}

/// Tokenises `text` with `tokenizer` and cuts it into windows of at most `max_len` tokens
/// (`max_len` ≥ 2), a new window every `stride` tokens.
pub fn windows(
    tokenizer: &tokenizers::Tokenizer,
    text: &Text,
    bos: u32,
    max_len: usize,
    stride: usize,
) -> Result<Vec<Window>> {
    if max_len < 2 {
        return Err(Error::Text {
            what: "--max-len".into(),
            message: format!("{max_len}: a window needs at least 2 tokens"),
        });
    }
    let encode = |s: &str| -> Result<Vec<u32>> {
        tokenizer
            .encode(s, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Text {
                what: "tokenizer".into(),
                message: e.to_string(),
            })
    };
    Ok(match text {
        Text::Stream(s) => cut(&encode(s)?, 1, max_len, stride),
        Text::Lines(lines) => {
            let mut out = Vec::new();
            for line in lines {
                let mut ids = vec![bos];
                ids.extend(encode(line)?);
                out.extend(cut(&ids, 1, max_len, stride));
            }
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_after_the_first_is_scored_once_with_the_stride_as_context() {
        let ids: Vec<u32> = (0..10).collect();
        let w = cut(&ids, 1, 4, 2);
        let scored: Vec<u32> = w
            .iter()
            .flat_map(|w| w.ids[w.score_from..].to_vec())
            .collect();
        assert_eq!(scored, (1..10).collect::<Vec<_>>());
        // Windows [0,4), [2,6), [4,8), [6,10): after the first, each scores its last two.
        assert_eq!(w.len(), 4);
        assert_eq!((w[1].ids[0], w[1].score_from), (2, 2));
        assert!(w.iter().all(|w| w.ids.len() <= 4));
        // A stride of the whole window: disjoint windows, no overlap.
        let w = cut(&ids, 1, 5, 5);
        assert_eq!(w.len(), 2);
        assert_eq!((w[1].ids.clone(), w[1].score_from), ((5..10).collect(), 0));
        // Too short to score anything.
        assert!(cut(&[7], 1, 4, 2).is_empty());
    }
}
