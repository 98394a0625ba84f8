//! Documents → passages: windows of whole sentences that fit a token budget together with
//! the title, as the encoder will see them (`[CLS] title [SEP] text [SEP]`).
//!
//! Token counts come from a caller-supplied counter (the model's tokenizer; this crate
//! knows no models). BERT's pre-tokeniser splits at whitespace, so the counts of
//! whitespace-separated pieces add up exactly to the count of the passage they form.
//! A sentence longer than the budget is cut at word boundaries. Exact duplicates (same
//! title and text) are dropped and counted; the duplicate set keeps an 8-byte hash per
//! passage, the only state that grows with the corpus.

use std::hash::{Hash, Hasher};

use ragl_core::Result;
use rustc_hash::{FxHashSet, FxHasher};
use serde::Serialize;

use crate::document::Document;
use crate::sentences;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    /// Token budget of a whole encoder input, special tokens and title included.
    pub max_tokens: usize,
    /// Tokens of overlap: each window starts with the trailing sentences of the previous
    /// one that fit in this many tokens (0: no overlap).
    pub stride: usize,
}

/// One passage, as written (JSONL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassageOut {
    pub id: String,
    pub doc_id: String,
    pub title: String,
    pub text: String,
    /// Character (Unicode scalar) offsets into the document text, as Python's `str`
    /// indexes it: `doc.text[char_start:char_end] == text`.
    pub char_start: usize,
    pub char_end: usize,
    /// Encoder tokens of `[CLS] title [SEP] text [SEP]`.
    pub tokens: usize,
}

/// What a chunking run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChunkStats {
    pub documents: u64,
    pub empty_documents: u64,
    pub passages: u64,
    pub duplicates: u64,
    /// Sentences longer than the budget, cut at word boundaries.
    pub split_sentences: u64,
    /// Titles cut to a quarter of the budget.
    pub cut_titles: u64,
    /// `histogram[n]` = passages of n tokens.
    #[serde(skip)]
    pub histogram: Vec<u64>,
}

impl ChunkStats {
    /// The q-th percentile (0–100) of passage token lengths.
    pub fn percentile(&self, q: f64) -> usize {
        let total: u64 = self.histogram.iter().sum();
        if total == 0 {
            return 0;
        }
        let want = ((q / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (n, &c) in self.histogram.iter().enumerate() {
            seen += c;
            if seen >= want {
                return n;
            }
        }
        self.histogram.len() - 1
    }
}

/// Byte range of a piece of text (a sentence, or part of one) and its token count.
#[derive(Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    tokens: usize,
}

pub struct Chunker<C> {
    cfg: ChunkConfig,
    count: C,
    seen: FxHashSet<u64>,
    pub stats: ChunkStats,
}

fn words(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut w: Option<usize> = None;
    for (i, c) in text[start..end].char_indices() {
        let b = start + i;
        match (c.is_whitespace(), w) {
            (true, Some(s)) => {
                out.push((s, b));
                w = None;
            }
            (false, None) => w = Some(b),
            _ => {}
        }
    }
    if let Some(s) = w {
        out.push((s, end));
    }
    out
}

impl<C: FnMut(&[&str]) -> Result<Vec<usize>>> Chunker<C> {
    pub fn new(cfg: ChunkConfig, count: C) -> Self {
        assert!(cfg.max_tokens >= 8, "budget too small");
        Chunker {
            cfg,
            count,
            seen: FxHashSet::default(),
            stats: ChunkStats {
                histogram: vec![0; cfg.max_tokens + 1],
                ..Default::default()
            },
        }
    }

    /// Chunks a batch of documents (batched so the tokenizer runs in parallel), handing each
    /// passage to `out` in document order.
    pub fn chunk(
        &mut self,
        docs: &[Document],
        mut out: impl FnMut(PassageOut) -> Result<()>,
    ) -> Result<()> {
        let sents: Vec<Vec<(usize, usize)>> =
            docs.iter().map(|d| sentences::split(&d.text)).collect();
        let mut texts: Vec<&str> = Vec::new();
        for (d, ss) in docs.iter().zip(&sents) {
            texts.push(&d.title);
            texts.extend(ss.iter().map(|&(s, e)| &d.text[s..e]));
        }
        // Every word is at least one token, so a sentence of more words than the budget is
        // over-long without asking the tokenizer (which would hold a 10 MB run-on sentence
        // in memory as one encoding); `fit` cuts it at words.
        let limit = self.cfg.max_tokens;
        let short: Vec<bool> = texts
            .iter()
            .map(|t| t.split_whitespace().nth(limit).is_none())
            .collect();
        let whole: Vec<&str> = texts
            .iter()
            .zip(&short)
            .filter(|(_, s)| **s)
            .map(|(t, _)| *t)
            .collect();
        let mut whole_counts = (self.count)(&whole)?.into_iter();
        let counts: Vec<usize> = short
            .iter()
            .map(|&s| {
                if s {
                    whole_counts.next().expect("one count per text")
                } else {
                    usize::MAX / 2
                }
            })
            .collect();
        let mut at = 0;
        for (d, ss) in docs.iter().zip(&sents) {
            self.stats.documents += 1;
            let mut title_tokens = counts[at];
            at += 1;
            let pieces: Vec<Piece> = ss
                .iter()
                .zip(&counts[at..at + ss.len()])
                .map(|(&(start, end), &tokens)| Piece { start, end, tokens })
                .collect();
            at += ss.len();
            if pieces.is_empty() {
                self.stats.empty_documents += 1;
                continue;
            }
            let mut title = d.title.trim().to_owned();
            if title_tokens > self.cfg.max_tokens / 4 {
                (title, title_tokens) = self.cut(&title, self.cfg.max_tokens / 4)?;
                self.stats.cut_titles += 1;
            }
            let overhead = if title.is_empty() {
                2
            } else {
                3 + title_tokens
            };
            let budget = self.cfg.max_tokens - overhead;
            let pieces = self.fit(&d.text, pieces, budget)?;
            self.windows(d, &title, overhead, &pieces, budget, &mut out)?;
        }
        Ok(())
    }

    /// Cuts `text` to its longest word prefix of at most `limit` tokens.
    fn cut(&mut self, text: &str, limit: usize) -> Result<(String, usize)> {
        let ws = words(text, 0, text.len());
        let strs: Vec<&str> = ws.iter().map(|&(s, e)| &text[s..e]).collect();
        let counts = (self.count)(&strs)?;
        let (mut end, mut total) = (0, 0);
        for (&(_, e), &n) in ws.iter().zip(&counts) {
            if total + n > limit {
                break;
            }
            total += n;
            end = e;
        }
        Ok((text[..end].to_owned(), total))
    }

    /// Splits pieces longer than `budget` at word boundaries.
    fn fit(&mut self, text: &str, pieces: Vec<Piece>, budget: usize) -> Result<Vec<Piece>> {
        if pieces.iter().all(|p| p.tokens <= budget) {
            return Ok(pieces);
        }
        let mut out = Vec::with_capacity(pieces.len());
        for p in pieces {
            if p.tokens <= budget {
                out.push(p);
                continue;
            }
            self.stats.split_sentences += 1;
            let ws = words(text, p.start, p.end);
            // Words are counted in groups of 16 (one tokenizer call per group, in batches of
            // 4,096 groups: a 10 MB run-on "sentence" costs neither minutes nor gigabytes);
            // a group that does not fit whole is counted word by word.
            let groups: Vec<&[(usize, usize)]> = ws.chunks(16).collect();
            let mut cur: Option<Piece> = None;
            for batch in groups.chunks(4096) {
                let strs: Vec<&str> = batch
                    .iter()
                    .map(|g| &text[g[0].0..g[g.len() - 1].1])
                    .collect();
                let counts = (self.count)(&strs)?;
                for (g, &n) in batch.iter().zip(&counts) {
                    if let Some(c) = cur.as_mut()
                        && c.tokens + n <= budget
                    {
                        c.end = g[g.len() - 1].1;
                        c.tokens += n;
                        continue;
                    }
                    if n <= budget && cur.is_none() {
                        cur = Some(Piece {
                            start: g[0].0,
                            end: g[g.len() - 1].1,
                            tokens: n,
                        });
                        continue;
                    }
                    let strs: Vec<&str> = g.iter().map(|&(s, e)| &text[s..e]).collect();
                    let counts = (self.count)(&strs)?;
                    for (&(s, e), &n) in g.iter().zip(&counts) {
                        // A single word over budget (no tokenizer makes one, but a counter
                        // might) becomes a piece of its own.
                        match cur {
                            Some(ref mut c) if c.tokens + n <= budget => {
                                c.end = e;
                                c.tokens += n;
                            }
                            _ => {
                                if let Some(c) = cur.take() {
                                    out.push(c);
                                }
                                cur = Some(Piece {
                                    start: s,
                                    end: e,
                                    tokens: n,
                                });
                            }
                        }
                    }
                }
            }
            out.extend(cur);
        }
        Ok(out)
    }

    fn windows(
        &mut self,
        d: &Document,
        title: &str,
        overhead: usize,
        pieces: &[Piece],
        budget: usize,
        out: &mut impl FnMut(PassageOut) -> Result<()>,
    ) -> Result<()> {
        let mut n = 0;
        let mut first = 0;
        // Byte → char offsets, advanced monotonically through the document.
        let (mut cb, mut cc) = (0usize, 0usize);
        let mut to_char = |b: usize| {
            if b < cb {
                (cb, cc) = (0, 0);
            }
            cc += d.text[cb..b].chars().count();
            cb = b;
            cc
        };
        while first < pieces.len() {
            let mut last = first;
            let mut tokens = pieces[first].tokens;
            while last + 1 < pieces.len() && tokens + pieces[last + 1].tokens <= budget {
                last += 1;
                tokens += pieces[last].tokens;
            }
            let (s, e) = (pieces[first].start, pieces[last].end);
            let text = &d.text[s..e];
            let mut h = FxHasher::default();
            (title, text).hash(&mut h);
            if self.seen.insert(h.finish()) {
                let total = tokens + overhead;
                self.stats.passages += 1;
                self.stats.histogram[total.min(self.cfg.max_tokens)] += 1;
                out(PassageOut {
                    id: format!("{}:{n}", d.id),
                    doc_id: d.id.clone(),
                    title: title.to_owned(),
                    text: text.to_owned(),
                    char_start: to_char(s),
                    char_end: to_char(e),
                    tokens: total,
                })?;
                n += 1;
            } else {
                self.stats.duplicates += 1;
            }
            if last + 1 >= pieces.len() {
                break;
            }
            // Overlap: back up over trailing pieces within the stride, always advancing.
            let mut next = last + 1;
            let mut overlap = 0;
            while next > first + 1 && overlap + pieces[next - 1].tokens <= self.cfg.stride {
                overlap += pieces[next - 1].tokens;
                next -= 1;
            }
            first = next;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per whitespace-separated word: enough to test the packing.
    fn words_counter(texts: &[&str]) -> Result<Vec<usize>> {
        Ok(texts.iter().map(|t| t.split_whitespace().count()).collect())
    }

    fn doc(text: &str) -> Document {
        Document {
            id: "d".into(),
            title: "T".into(),
            text: text.into(),
            source: "t".into(),
        }
    }

    fn run(cfg: ChunkConfig, docs: &[Document]) -> (Vec<PassageOut>, ChunkStats) {
        let mut c = Chunker::new(cfg, words_counter);
        let mut out = Vec::new();
        c.chunk(docs, |p| {
            out.push(p);
            Ok(())
        })
        .unwrap();
        (out, c.stats)
    }

    #[test]
    fn packs_whole_sentences_within_the_budget() {
        // Budget 12 - [CLS] T [SEP] [SEP] = 8 text tokens.
        let text =
            "One two three. Four five six seven. Eight nine. Ten eleven twelve thirteen fourteen.";
        let (ps, st) = run(
            ChunkConfig {
                max_tokens: 12,
                stride: 0,
            },
            &[doc(text)],
        );
        let texts: Vec<&str> = ps.iter().map(|p| p.text.as_str()).collect();
        // 3 + 4 words, then 2 + 5: each window as full as whole sentences allow.
        assert_eq!(
            texts,
            vec![
                "One two three. Four five six seven.",
                "Eight nine. Ten eleven twelve thirteen fourteen."
            ]
        );
        assert!(ps.iter().all(|p| p.tokens <= 12));
        assert_eq!(ps[1].id, "d:1");
        assert_eq!(ps[1].tokens, 11);
        for p in &ps {
            let chars: String = text
                .chars()
                .skip(p.char_start)
                .take(p.char_end - p.char_start)
                .collect();
            assert_eq!(chars, p.text);
        }
        assert_eq!((st.documents, st.passages, st.split_sentences), (1, 2, 0));
    }

    #[test]
    fn long_sentences_split_at_words_stride_overlaps_and_duplicates_drop() {
        let long = (0..20)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let (ps, st) = run(
            ChunkConfig {
                max_tokens: 12,
                stride: 0,
            },
            &[doc(&long)],
        );
        assert_eq!(st.split_sentences, 1);
        assert!(ps.iter().all(|p| p.tokens <= 12));
        assert_eq!(
            ps.iter()
                .map(|p| p.text.split_whitespace().count())
                .sum::<usize>(),
            20
        );
        let text = "A b. C d. E f. G h.";
        let (ps, _) = run(
            ChunkConfig {
                max_tokens: 9,
                stride: 2,
            },
            &[doc(text)],
        );
        let texts: Vec<&str> = ps.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, vec!["A b. C d.", "C d. E f.", "E f. G h."]);
        let (ps, st) = run(
            ChunkConfig {
                max_tokens: 64,
                stride: 0,
            },
            &[doc("Same text."), doc("Same text."), doc("  ")],
        );
        assert_eq!((ps.len(), st.duplicates, st.empty_documents), (1, 1, 1));
        assert_eq!(st.percentile(50.0), 6); // [CLS] T [SEP] Same text. [SEP]
    }

    #[test]
    fn unicode_offsets_are_in_characters() {
        let text = "Ça coûte 5 €. Très cher!";
        let (ps, _) = run(
            ChunkConfig {
                max_tokens: 8,
                stride: 0,
            },
            &[doc(text)],
        );
        assert_eq!(ps[1].text, "Très cher!");
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(
            chars[ps[1].char_start..ps[1].char_end]
                .iter()
                .collect::<String>(),
            "Très cher!"
        );
    }
}
