//! The span-extraction reader of REALM's open-domain QA fine-tuning.
//!
//! One question–document pair is one BERT sequence, `[CLS] question [SEP] title [SEP] text
//! [SEP]` (no title: `[CLS] question [SEP] text [SEP]`), truncated so that the question keeps
//! at most `max_question` word pieces and the text what is left of `max_len`. A candidate
//! span starts at the first piece of a word and ends at the last piece of a word, inside the
//! text, at most `max_span` pieces long (REALM: 10). Its score is REALM's
//! `MLP([h_start; h_end])`, computed as `w · relu(W_s h_start + W_e h_end + b) + c` so that the
//! two projections run once per position, not once per span.
//!
//! The loss is the one of REALM's released fine-tuning code (ORQA's, Lee et al., 2019): one
//! softmax over every span of every retrieved document, a span's logit being its reader
//! score plus its document's retrieval score, `p(z,s|x) ∝ exp(S_retr(z) + S_read(z,s))`,
//! so `p(z,s|x) = p(z|x)·p(s|z,x)` with `p(s|z,x)` normalised jointly rather than per
//! document; the marginal likelihood sums it over every span whose text matches a gold
//! answer after SQuAD normalisation (or a gold regular expression). The joint softmax
//! matters: normalised per document (REALM's §3.2 as written), a distracting document in
//! which one span stands out scores as high as the right one, and the reader has no way to
//! say that a document holds no answer. Predictions take the span of highest joint score.

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use ragl_core::qa::Answer;
use ragl_eval::qa::{AnswerRegex, normalize_answer};
use ragl_model::bert::Bert;
use ragl_model::tokenizer::{Encoded, TextTokenizer};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Reader settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanReaderConfig {
    /// Longest span, in word pieces (REALM: 10).
    pub max_span: usize,
    /// Width of the span MLP's hidden layer.
    pub span_hidden: usize,
    /// Sequence length: question, title and text together with the special tokens.
    pub max_len: usize,
    /// Word pieces kept of the question.
    pub max_question: usize,
    /// Word pieces kept of the title.
    pub max_title: usize,
}

impl Default for SpanReaderConfig {
    fn default() -> Self {
        SpanReaderConfig {
            max_span: 10,
            span_hidden: 256,
            max_len: 384,
            max_question: 64,
            max_title: 32,
        }
    }
}

/// One question–document pair, tokenised, with its candidate spans.
#[derive(Debug, Clone, PartialEq)]
pub struct ReaderInput {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// Candidate spans as sequence positions `(first, last)`, both inclusive.
    pub spans: Vec<(u32, u32)>,
    /// The byte range of each span in the document text.
    pub span_bytes: Vec<(usize, usize)>,
    /// True when part of the text did not fit.
    pub truncated: bool,
}

/// Tokenises one question–document pair and lists its candidate spans.
pub fn prepare(
    tok: &TextTokenizer,
    cfg: &SpanReaderConfig,
    question: &str,
    title: Option<&str>,
    text: &str,
) -> Result<ReaderInput> {
    let cls = tok
        .token_to_id("[CLS]")
        .ok_or(Error::MissingToken("[CLS]"))?;
    let sep = tok
        .token_to_id("[SEP]")
        .ok_or(Error::MissingToken("[SEP]"))?;
    let mut texts = vec![question, text];
    if let Some(t) = title {
        texts.push(t);
    }
    let mut enc = tok.encode_offsets(&texts)?;
    let (mut title_ids, _) = if title.is_some() {
        enc.pop().expect("three texts")
    } else {
        (Vec::new(), Vec::new())
    };
    let (text_ids, text_off) = enc.pop().expect("two texts");
    let (mut q_ids, _) = enc.pop().expect("one text");
    q_ids.truncate(cfg.max_question);
    title_ids.truncate(cfg.max_title);

    let mut ids = Vec::with_capacity(cfg.max_len);
    ids.push(cls);
    ids.extend_from_slice(&q_ids);
    ids.push(sep);
    let mut type_ids = vec![0u32; ids.len()];
    if title.is_some() {
        ids.extend_from_slice(&title_ids);
        ids.push(sep);
    }
    let first = ids.len();
    let room = cfg.max_len.saturating_sub(first + 1);
    let n = text_ids.len().min(room);
    ids.extend_from_slice(&text_ids[..n]);
    ids.push(sep);
    type_ids.resize(ids.len(), 1);

    // Offsets are in characters; spans are reported in bytes.
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let off: Vec<(usize, usize)> = text_off[..n]
        .iter()
        .map(|&(s, e)| (bytes[s.min(bytes.len() - 1)], bytes[e.min(bytes.len() - 1)]))
        .collect();
    // A piece glued to the previous one with letters or digits on both sides continues a
    // word ("##ing"); punctuation between pieces ("25,700", "Ki-moon") separates words.
    let alnum_at = |b: usize| text[b..].chars().next().is_some_and(char::is_alphanumeric);
    let alnum_before = |b: usize| {
        text[..b]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
    };
    let continues: Vec<bool> = (0..n)
        .map(|i| i > 0 && off[i].0 == off[i - 1].1 && alnum_at(off[i].0) && alnum_before(off[i].0))
        .collect();
    let mut spans = Vec::new();
    let mut span_bytes = Vec::new();
    for s in 0..n {
        if continues[s] {
            continue;
        }
        for e in s..n.min(s + cfg.max_span) {
            if e + 1 < n && continues[e + 1] {
                continue;
            }
            spans.push(((first + s) as u32, (first + e) as u32));
            span_bytes.push((off[s].0, off[e].1));
        }
    }
    Ok(ReaderInput {
        ids,
        type_ids,
        spans,
        span_bytes,
        truncated: n < text_ids.len(),
    })
}

/// Decides whether a span's text is a gold answer.
#[derive(Debug, Clone)]
pub enum AnswerMatcher {
    /// Normalised gold strings (SQuAD normalisation: lower case, no punctuation or articles).
    Strings(FxHashSet<String>),
    Regex(Vec<AnswerRegex>),
}

impl AnswerMatcher {
    pub fn new(answer: &Answer) -> Result<Self> {
        Ok(match answer {
            Answer::Strings(v) => AnswerMatcher::Strings(
                v.iter()
                    .map(|s| normalize_answer(s))
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            Answer::Regex(v) => AnswerMatcher::Regex(
                v.iter()
                    .map(|p| AnswerRegex::new(p).map_err(|e| Error::Answer(format!("{p:?}: {e}"))))
                    .collect::<Result<_>>()?,
            ),
        })
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            AnswerMatcher::Strings(set) => set.contains(&normalize_answer(text)),
            AnswerMatcher::Regex(res) => res.iter().any(|r| r.matches(text)),
        }
    }

    /// Which candidate spans of `input` (over `text`) are gold.
    pub fn gold_spans(&self, input: &ReaderInput, text: &str) -> Vec<bool> {
        input
            .span_bytes
            .iter()
            .map(|&(s, e)| self.matches(&text[s..e]))
            .collect()
    }
}

/// BERT plus REALM's span scorer.
#[derive(Module, Debug)]
pub struct SpanReader<B: Backend> {
    pub bert: Bert<B>,
    /// `W_s`, with the MLP's hidden bias.
    pub start: Linear<B>,
    /// `W_e`.
    pub end: Linear<B>,
    /// `w`, `c`: hidden layer → span score.
    pub out: Linear<B>,
}

impl<B: Backend> SpanReader<B> {
    /// A reader over `bert` with a freshly initialised span scorer (N(0, 0.02), as BERT's
    /// heads).
    pub fn new(bert: Bert<B>, cfg: &SpanReaderConfig, device: &B::Device) -> Self {
        let h = bert.hidden_size();
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let lin = |i: usize, o: usize, bias: bool| {
            LinearConfig::new(i, o)
                .with_bias(bias)
                .with_initializer(init.clone())
                .init(device)
        };
        SpanReader {
            bert,
            start: lin(h, cfg.span_hidden, true),
            end: lin(h, cfg.span_hidden, false),
            out: lin(cfg.span_hidden, 1, true),
        }
    }

    /// The logits of every candidate span of every input, concatenated in input order
    /// (`inputs[i].spans.len()` each); `None` when no input has a span.
    pub fn span_logits(&self, inputs: &[&ReaderInput]) -> Option<Tensor<B, 1>> {
        let m: usize = inputs.iter().map(|i| i.spans.len()).sum();
        if m == 0 {
            return None;
        }
        let device = self.start.weight.device();
        let encs: Vec<Encoded> = inputs
            .iter()
            .map(|i| Encoded {
                ids: i.ids.clone(),
                type_ids: i.type_ids.clone(),
                truncated: i.truncated,
            })
            .collect();
        let refs: Vec<&Encoded> = encs.iter().collect();
        let batch = ragl_model::encode::batch_input::<B>(&refs, 0, &device);
        let h = self.bert.forward(&batch);
        let [n, l, d] = h.dims();
        let h = h.reshape([n * l, d]);
        let (mut si, mut ei) = (Vec::with_capacity(m), Vec::with_capacity(m));
        for (r, input) in inputs.iter().enumerate() {
            for &(s, e) in &input.spans {
                si.push((r * l + s as usize) as i64);
                ei.push((r * l + e as usize) as i64);
            }
        }
        let idx = |v: Vec<i64>| Tensor::<B, 1, Int>::from_data(TensorData::new(v, [m]), &device);
        let hs = self.start.forward(h.clone()).select(0, idx(si));
        let he = self.end.forward(h).select(0, idx(ei));
        Some(self.out.forward(relu(hs + he)).reshape([m]))
    }
}

fn log_sum_exp<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
    let max = x.clone().max().detach();
    (x - max.clone()).exp().sum().log() + max
}

/// `−log p(y|x)` for one question: `logits` are the span logits of its documents in order
/// (`counts[z]` spans each), `gold` marks the gold spans, `doc_scores` the retrieval scores
/// `S_retr(z)` of the same documents (raw inner products or `log p(z|x)`: the joint softmax
/// does not change under a shift; gradient flows into them, and so into the query tower).
/// `None` when no document has a gold span: the example says nothing about the reader.
pub fn marginal_nll<B: Backend>(
    logits: Tensor<B, 1>,
    counts: &[usize],
    gold: &[bool],
    doc_scores: Tensor<B, 1>,
) -> Option<Tensor<B, 1>> {
    assert_eq!(
        counts.iter().sum::<usize>(),
        gold.len(),
        "one gold flag per span"
    );
    let device = logits.device();
    let g: Vec<i64> = (0..gold.len())
        .filter(|&i| gold[i])
        .map(|i| i as i64)
        .collect();
    if g.is_empty() {
        return None;
    }
    let doc_of: Vec<i64> = counts
        .iter()
        .enumerate()
        .flat_map(|(z, &c)| std::iter::repeat_n(z as i64, c))
        .collect();
    let m = doc_of.len();
    let joint =
        logits + doc_scores.select(0, Tensor::from_data(TensorData::new(doc_of, [m]), &device));
    let n = g.len();
    let gold = joint
        .clone()
        .select(0, Tensor::from_data(TensorData::new(g, [n]), &device));
    Some(log_sum_exp(joint) - log_sum_exp(gold))
}

/// The best answer span for one question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestSpan {
    /// Which document (index into the inputs).
    pub doc: usize,
    /// Byte range in that document's text.
    pub bytes: (usize, usize),
    /// `S_retr(z) + S_read(z,s)`.
    pub score: f32,
}

/// The span of highest joint score `S_retr(z) + S_read(z,s)` over all documents of one
/// question, from host logits (`inputs[z].spans.len()` per document) and retrieval scores.
pub fn best_span(inputs: &[&ReaderInput], logits: &[f32], doc_scores: &[f32]) -> Option<BestSpan> {
    let mut best: Option<BestSpan> = None;
    let mut lo = 0;
    for (z, input) in inputs.iter().enumerate() {
        let l = &logits[lo..lo + input.spans.len()];
        lo += input.spans.len();
        let Some((i, &x)) = l.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else {
            continue;
        };
        let score = doc_scores[z] + x;
        if best.is_none_or(|b| score > b.score) {
            best = Some(BestSpan {
                doc: z,
                bytes: input.span_bytes[i],
                score,
            });
        }
    }
    best
}

impl<B: Backend> SpanReader<B> {
    /// The best span for each question, from its documents and their retrieval scores
    /// (equal when `None`). `groups[q]` lists question `q`'s inputs.
    pub fn best_spans(
        &self,
        groups: &[Vec<&ReaderInput>],
        doc_scores: Option<&[Vec<f32>]>,
    ) -> Vec<Option<BestSpan>> {
        let flat: Vec<&ReaderInput> = groups.iter().flatten().copied().collect();
        let logits: Vec<f32> = match self.span_logits(&flat) {
            Some(t) => t.into_data().convert::<f32>().to_vec().expect("f32"),
            None => Vec::new(),
        };
        let mut lo = 0;
        groups
            .iter()
            .enumerate()
            .map(|(q, g)| {
                let m: usize = g.iter().map(|i| i.spans.len()).sum();
                let l = &logits[lo..lo + m];
                lo += m;
                let equal = vec![0.0; g.len()];
                let s = doc_scores.map_or(equal.as_slice(), |d| d[q].as_slice());
                best_span(g, l, s)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    #[test]
    fn marginal_nll_matches_the_formula() {
        let device = Default::default();
        // Two documents: spans [1, 2, 0] and [0.5, -1].
        let logits = Tensor::<B, 1>::from_floats([1.0, 2.0, 0.0, 0.5, -1.0], &device);
        let lp = [0.7f32.ln(), 0.3f32.ln()];
        let doc_lp = Tensor::<B, 1>::from_floats(lp, &device);
        let gold = [true, false, true, false, true];
        let got = marginal_nll(logits, &[3, 2], &gold, doc_lp)
            .unwrap()
            .into_scalar();
        // One softmax over all five (document, span) pairs, logits shifted by log p(z|x).
        let w = [
            0.7 * 1f32.exp(),
            0.7 * 2f32.exp(),
            0.7,
            0.3 * 0.5f32.exp(),
            0.3 * (-1f32).exp(),
        ];
        let p = (w[0] + w[2] + w[4]) / w.iter().sum::<f32>();
        assert!((got - (-p.ln())).abs() < 1e-5, "{got} vs {}", -p.ln());
        // No gold span anywhere: no loss.
        let logits = Tensor::<B, 1>::from_floats([1.0, 2.0], &device);
        let doc_lp = Tensor::<B, 1>::from_floats([0.0], &device);
        assert!(marginal_nll(logits, &[2], &[false, false], doc_lp).is_none());
    }

    #[test]
    fn best_span_weighs_documents_by_retrieval() {
        let a = ReaderInput {
            ids: vec![],
            type_ids: vec![],
            spans: vec![(0, 0), (1, 1)],
            span_bytes: vec![(0, 1), (2, 3)],
            truncated: false,
        };
        let b = ReaderInput {
            spans: vec![(0, 0)],
            span_bytes: vec![(4, 5)],
            ..a.clone()
        };
        // Reader alone prefers a's second span; a strong enough retrieval score for b wins.
        let logits = [0.0, 1.0, -1.0];
        let even = best_span(&[&a, &b], &logits, &[0.0, 0.0]).unwrap();
        assert_eq!((even.doc, even.bytes, even.score), (0, (2, 3), 1.0));
        let favour_b = best_span(&[&a, &b], &logits, &[0.0, 2.5]).unwrap();
        assert_eq!((favour_b.doc, favour_b.bytes), (1, (4, 5)));
    }

    #[test]
    fn answer_matching_normalises_and_reads_regexes() {
        let m = AnswerMatcher::new(&Answer::Strings(vec!["The Denver Broncos".into()])).unwrap();
        assert!(m.matches("denver broncos,"));
        assert!(!m.matches("Broncos"));
        let r = AnswerMatcher::new(&Answer::Regex(vec!["19(6|7)\\d".into()])).unwrap();
        assert!(r.matches("1969") && !r.matches("1869"));
        assert!(AnswerMatcher::new(&Answer::Regex(vec!["(".into()])).is_err());
    }
}
