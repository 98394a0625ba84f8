//! Pretraining examples: one sentence with one salient span masked (REALM's salient span
//! masking), or the baselines: a random span, or BERT's 15% random tokens.
//!
//! Every example keeps its source passage id, so that pretraining can exclude that passage
//! from retrieval (REALM's "trivial retrieval" problem), and the original ids of the masked
//! tokens, the labels. A sentence without a salient span falls back to a random span of
//! whole words, counted.

use serde::Serialize;

use crate::salient::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Salient,
    RandomSpan,
    RandomToken,
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "salient" => Ok(Strategy::Salient),
            "random-span" => Ok(Strategy::RandomSpan),
            "random-token" => Ok(Strategy::RandomToken),
            _ => Err(format!(
                "unknown strategy {s:?} (salient, random-span or random-token)"
            )),
        }
    }
}

/// Special token ids of the tokenizer.
#[derive(Debug, Clone, Copy)]
pub struct Specials {
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
    pub vocab_size: u32,
}

/// One example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub id: String,
    pub passage_id: String,
    /// The sentence (the query x).
    pub text: String,
    /// `[CLS] sentence [SEP]` with the masked positions replaced.
    pub input_ids: Vec<u32>,
    /// Positions in `input_ids` that were masked.
    pub masked_positions: Vec<usize>,
    /// The original token ids at those positions (the labels).
    pub masked_ids: Vec<u32>,
    /// What was actually used: "salient", "random-span" (including fallbacks) or "random-token".
    pub strategy: &'static str,
    /// The masked salient span, character offsets in `text`, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
}

/// Counts of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MakeStats {
    pub passages: u64,
    pub sentences: u64,
    pub examples: u64,
    pub salient: u64,
    /// Sentences without a salient span that got a random span instead.
    pub fallback: u64,
    /// Sentences too short (fewer than 4 tokens) to mask.
    pub too_short: u64,
    pub truncated: u64,
}

pub use ragl_core::rng::Rng;

/// A sentence of a passage, tokenised: ids and character offsets relative to the sentence.
pub struct Sentence<'a> {
    pub text: &'a str,
    /// Character offset of the sentence in its passage.
    pub char_start: usize,
    pub ids: &'a [u32],
    pub offsets: &'a [(usize, usize)],
}

/// Makes the example of one sentence. `spans` are the passage's salient spans (character
/// offsets in the passage). Returns `None` for sentences too short to mask.
#[allow(clippy::too_many_arguments)]
pub fn make(
    passage_id: &str,
    n: usize,
    s: &Sentence,
    spans: &[Span],
    strategy: Strategy,
    sp: Specials,
    max_len: usize,
    rng: &mut Rng,
    stats: &mut MakeStats,
) -> Option<Example> {
    stats.sentences += 1;
    let keep = s.ids.len().min(max_len.saturating_sub(2));
    if s.ids.len() > keep {
        stats.truncated += 1;
    }
    let (ids, offsets) = (&s.ids[..keep], &s.offsets[..keep]);
    if ids.len() < 4 {
        stats.too_short += 1;
        return None;
    }
    let mut input: Vec<u32> = Vec::with_capacity(ids.len() + 2);
    input.push(sp.cls);
    input.extend_from_slice(ids);
    input.push(sp.sep);
    let sent_end = s.char_start + s.text.chars().count();
    // Salient spans wholly inside the (kept part of the) sentence, relative to it.
    let kept_end = offsets.last().map_or(0, |o| o.1);
    let inside: Vec<Span> = spans
        .iter()
        .filter(|x| {
            x.start >= s.char_start && x.end <= sent_end && x.end - s.char_start <= kept_end
        })
        .map(|x| Span {
            start: x.start - s.char_start,
            end: x.end - s.char_start,
            kind: x.kind,
        })
        .collect();
    let (positions, used, span): (Vec<usize>, &'static str, Option<Span>) = match strategy {
        Strategy::RandomToken => {
            // BERT: 15% of the tokens; of those 80% [MASK], 10% random, 10% unchanged.
            let want = ((ids.len() as f64) * 0.15).round().max(1.0) as usize;
            let mut pos: Vec<usize> = (1..=ids.len()).collect();
            for i in 0..want {
                let j = i + rng.below(pos.len() - i);
                pos.swap(i, j);
            }
            pos.truncate(want);
            pos.sort_unstable();
            (pos, "random-token", None)
        }
        Strategy::Salient if !inside.is_empty() => {
            let x = inside[rng.below(inside.len())];
            let pos: Vec<usize> = offsets
                .iter()
                .enumerate()
                .filter(|(_, o)| o.0 < x.end && o.1 > x.start)
                .map(|(i, _)| i + 1)
                .collect();
            if pos.is_empty() {
                (random_span(offsets, s.text, rng), "random-span", None)
            } else {
                stats.salient += 1;
                (pos, "salient", Some(x))
            }
        }
        Strategy::Salient => {
            stats.fallback += 1;
            (random_span(offsets, s.text, rng), "random-span", None)
        }
        Strategy::RandomSpan => (random_span(offsets, s.text, rng), "random-span", None),
    };
    let masked_ids: Vec<u32> = positions.iter().map(|&p| input[p]).collect();
    for &p in &positions {
        input[p] = if strategy == Strategy::RandomToken {
            let r = rng.unit();
            if r < 0.8 {
                sp.mask
            } else if r < 0.9 {
                rng.below(sp.vocab_size as usize) as u32
            } else {
                input[p]
            }
        } else {
            sp.mask
        };
    }
    stats.examples += 1;
    Some(Example {
        id: format!("{passage_id}:s{n}"),
        passage_id: passage_id.to_owned(),
        text: s.text.to_owned(),
        input_ids: input,
        masked_positions: positions,
        masked_ids,
        strategy: used,
        span,
    })
}

/// Positions (in `[CLS] …` numbering) of a random span of 1–3 whole words.
fn random_span(offsets: &[(usize, usize)], text: &str, rng: &mut Rng) -> Vec<usize> {
    // Word starts: tokens preceded by whitespace (or the first token).
    let chars: Vec<char> = text.chars().collect();
    let starts: Vec<usize> = (0..offsets.len())
        .filter(|&i| {
            i == 0
                || offsets[i].0 > offsets[i - 1].1
                || chars
                    .get(offsets[i].0.wrapping_sub(1))
                    .is_some_and(|c| c.is_whitespace())
        })
        .collect();
    let w = starts.len();
    let len = 1 + rng.below(3.min(w));
    let first = rng.below(w - len + 1);
    let from = starts[first];
    let to = starts.get(first + len).copied().unwrap_or(offsets.len());
    (from + 1..to + 1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salient::SpanType;

    const SP: Specials = Specials {
        cls: 101,
        sep: 102,
        mask: 103,
        vocab_size: 1000,
    };

    /// "Paris is in France ." as five one-word tokens.
    fn sentence() -> (Vec<u32>, Vec<(usize, usize)>) {
        (
            vec![10, 11, 12, 13, 14],
            vec![(0, 5), (6, 8), (9, 11), (12, 18), (18, 19)],
        )
    }

    #[test]
    fn masks_all_wordpieces_of_one_salient_span() {
        let (ids, offs) = sentence();
        let s = Sentence {
            text: "Paris is in France.",
            char_start: 100,
            ids: &ids,
            offsets: &offs,
        };
        let spans = [Span {
            start: 112,
            end: 118,
            kind: SpanType::Loc,
        }];
        let mut st = MakeStats::default();
        let e = make(
            "p:0",
            0,
            &s,
            &spans,
            Strategy::Salient,
            SP,
            64,
            &mut Rng::new(1),
            &mut st,
        )
        .unwrap();
        assert_eq!(e.input_ids, vec![101, 10, 11, 12, 103, 14, 102]);
        assert_eq!(
            (e.masked_positions.clone(), e.masked_ids.clone()),
            (vec![4], vec![13])
        );
        assert_eq!(e.span.unwrap().start, 12);
        assert_eq!(e.passage_id, "p:0");
        // No span in the sentence: a random span, counted.
        let e = make(
            "p:0",
            1,
            &s,
            &[],
            Strategy::Salient,
            SP,
            64,
            &mut Rng::new(2),
            &mut st,
        )
        .unwrap();
        assert_eq!(e.strategy, "random-span");
        assert!(
            !e.masked_positions.is_empty()
                && e.masked_positions.iter().all(|&p| (1..=5).contains(&p))
        );
        assert_eq!((st.salient, st.fallback, st.examples), (1, 1, 2));
    }

    #[test]
    fn random_tokens_are_fifteen_percent_and_seeded() {
        let ids: Vec<u32> = (0..40).collect();
        let offs: Vec<(usize, usize)> = (0..40).map(|i| (2 * i, 2 * i + 1)).collect();
        let text = "a ".repeat(40);
        let s = Sentence {
            text: &text,
            char_start: 0,
            ids: &ids,
            offsets: &offs,
        };
        let mut st = MakeStats::default();
        let a = make(
            "p",
            0,
            &s,
            &[],
            Strategy::RandomToken,
            SP,
            128,
            &mut Rng::new(7),
            &mut st,
        )
        .unwrap();
        let b = make(
            "p",
            0,
            &s,
            &[],
            Strategy::RandomToken,
            SP,
            128,
            &mut Rng::new(7),
            &mut st,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.masked_positions.len(), 6);
        assert_eq!(
            a.masked_ids,
            a.masked_positions
                .iter()
                .map(|&p| (p - 1) as u32)
                .collect::<Vec<_>>()
        );
    }
}
