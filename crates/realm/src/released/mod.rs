//! REALM's released open-QA systems (`google/realm-orqa-{nq,wq}-openqa`, `RealmForOpenQA`)
//! answering as transformers' `RealmForOpenQA` does:
//!
//! 1. the question (`[CLS] q [SEP]`) through the embedder, a `retriever_proj_size` vector;
//! 2. exact inner-product search over `block_emb` (13.35M × 128, read in place from the
//!    checkpoint's memory map), the top `reader_beam_size` blocks;
//! 3. for each, the question as the tokenizer decodes it (specials dropped) paired with the
//!    block's text from `block_records.npy` (read without running its pickle), truncated
//!    longest-first to `reader_seq_len`;
//! 4. the reader scores every span of up to `max_span_width` tokens inside each block, each
//!    block's retrieval score added; the best span over all blocks (the first on ties, in
//!    transformers' candidate order) is the answer, decoded by the tokenizer.

pub mod import;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use ragl_core::npy_objects::BytesArray;
use ragl_model::bert::BertInput;
use ragl_model::encode::batch_input;
use ragl_model::realm::{BlockEmb, Loaded, RealmReader};
use ragl_model::tokenizer::TextTokenizer;

use crate::{Error, Result};

/// A released REALM open-QA system, ready to answer.
pub struct Released<B: Backend> {
    pub dir: PathBuf,
    pub model: Loaded<B>,
    reader: RealmReader<B>,
    pub tokenizer: TextTokenizer,
    pub blocks: BlockEmb,
    pub records: BytesArray,
    /// Blocks read per question (`reader_beam_size`).
    pub k: usize,
    device: B::Device,
}

/// One answer and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    /// The blocks read, best first, with their retrieval scores.
    pub retrieved: Vec<(u32, f32)>,
    /// The block the answer came from.
    pub block: u32,
    /// The span's token positions in that block's reader input, and its score (reader
    /// logit + retrieval score).
    pub start: usize,
    pub end: usize,
    pub score: f32,
}

fn mismatch(m: String) -> Error {
    Error::Mismatch(m)
}

/// Whether `dir` is a REALM checkpoint (any `model_type: realm`).
pub fn is_released(dir: &Path) -> bool {
    ragl_model::realm::is_realm_dir(dir)
}

impl<B: Backend> Released<B> {
    pub fn open(dir: &Path, device: &B::Device) -> Result<Self> {
        let mut model = ragl_model::realm::load::<B>(dir, device)?;
        let Some(reader) = model.reader.take() else {
            return Err(mismatch(format!(
                "{}: a REALM {} has no reader: open QA needs a RealmForOpenQA checkpoint (realm-orqa-*-openqa)",
                dir.display(),
                model.config.architectures.join(", ")
            )));
        };
        let records_path = dir.join("block_records.npy");
        if !records_path.is_file() {
            return Err(mismatch(format!(
                "{}: no block_records.npy (the block texts RealmRetriever reads beside the checkpoint)",
                dir.display()
            )));
        }
        let records = ragl_core::npy_objects::open(&records_path)?;
        let blocks = BlockEmb::open(&model.weights)?;
        let c = &model.config;
        if blocks.dim != c.retriever_proj_size || blocks.rows != records.len() {
            return Err(mismatch(format!(
                "{}: block_emb is {} × {}, block_records.npy has {} blocks and the projection is {}-d: they do not belong together",
                dir.display(),
                blocks.rows,
                blocks.dim,
                records.len(),
                c.retriever_proj_size
            )));
        }
        let tokenizer = TextTokenizer::from_dir(dir, c.reader_seq_len)?;
        let k = c.reader_beam_size.min(blocks.rows).max(1);
        Ok(Released {
            dir: dir.to_path_buf(),
            model,
            reader,
            tokenizer,
            blocks,
            records,
            k,
            device: device.clone(),
        })
    }

    /// The question's embedding (`RealmEmbedder.projected_score`).
    pub fn embed_question(&self, question: &str) -> Result<(Vec<u32>, Vec<f32>)> {
        let enc = self.tokenizer.encode(&[(question.to_string(), None)])?;
        let v = self.embed(&[&enc[0]]);
        Ok((enc[0].ids.clone(), v))
    }

    /// Embeddings of tokenised questions, one batch, row-major.
    fn embed(&self, encs: &[&ragl_model::tokenizer::Encoded]) -> Vec<f32> {
        let input: BertInput<B> = batch_input(encs, self.tokenizer.pad_id, &self.device);
        self.model
            .embedder
            .forward(&input)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32")
    }

    /// The top `k` blocks by inner product, best first.
    pub fn retrieve(&self, q: &[f32]) -> Vec<(u32, f32)> {
        let hits = ragl_index::exact::search(
            self.blocks.as_f32(),
            None,
            self.blocks.dim,
            ragl_index::Metric::Ip,
            q,
            self.k,
        );
        hits[0].iter().map(|h| (h.row, h.score)).collect()
    }

    /// Answers one question.
    pub fn answer(&self, question: &str) -> Result<Answer> {
        let (q_ids, q) = self.embed_question(question)?;
        let retrieved = self.retrieve(&q);
        self.read(&q_ids, retrieved)
    }

    /// Answers many questions: embedded in batches, searched together (one pass over
    /// `block_emb` serves a whole batch of queries: over 13M blocks a lone query costs a
    /// scan of 6.8 GB), read in parallel. `progress` gets the questions done.
    pub fn answer_many(
        &self,
        questions: &[&str],
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Answer>> {
        use rayon::prelude::*;
        const BATCH: usize = 256;
        let mut out = Vec::with_capacity(questions.len());
        for chunk in questions.chunks(BATCH) {
            let items: Vec<(String, Option<String>)> =
                chunk.iter().map(|q| (q.to_string(), None)).collect();
            let encs = self.tokenizer.encode(&items)?;
            let mut vecs = Vec::with_capacity(chunk.len() * self.blocks.dim);
            for part in encs.chunks(32) {
                let refs: Vec<_> = part.iter().collect();
                vecs.extend(self.embed(&refs));
            }
            let hits = ragl_index::exact::search(
                self.blocks.as_f32(),
                None,
                self.blocks.dim,
                ragl_index::Metric::Ip,
                &vecs,
                self.k,
            );
            let answers: Vec<Result<Answer>> = encs
                .par_iter()
                .zip(hits)
                .map(|(e, h)| self.read(&e.ids, h.iter().map(|h| (h.row, h.score)).collect()))
                .collect();
            for a in answers {
                out.push(a?);
            }
            progress(chunk.len());
        }
        Ok(out)
    }

    /// Reads the retrieved blocks for a question (its token ids) and picks the best span.
    fn read(&self, q_ids: &[u32], retrieved: Vec<(u32, f32)>) -> Result<Answer> {
        // RealmRetriever pairs the question as the tokenizer decodes it.
        let q_text = self.tokenizer.decode(q_ids, true)?;
        let pairs: Vec<(String, Option<String>)> = retrieved
            .iter()
            .map(|&(row, _)| {
                let text = String::from_utf8_lossy(self.records.get(row as usize)).into_owned();
                (q_text.clone(), Some(text))
            })
            .collect();
        let encs = self.tokenizer.encode(&pairs)?;
        let refs: Vec<_> = encs.iter().collect();
        let input: BertInput<B> = batch_input(&refs, self.tokenizer.pad_id, &self.device);
        let width = encs.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        // The block's tokens: the second segment without its closing [SEP].
        let masks: Vec<Vec<bool>> = encs
            .iter()
            .map(|e| {
                let n = e.ids.len();
                (0..width)
                    .map(|i| i + 1 < n && e.type_ids[i] == 1)
                    .collect()
            })
            .collect();
        let spans = self.reader.span_logits(&input, &masks);
        // transformers: the candidate of the highest score over blocks, the first in its
        // order; the block, the first whose best reaches it.
        let mut best: Option<(f32, usize, usize)> = None; // (score, candidate order, row)
        for (row, cands) in spans.iter().enumerate() {
            let bonus = retrieved[row].1;
            for s in cands {
                let score = s.logit + bonus;
                let order = candidate_order(s.start, s.end, width, self.reader.max_span_width);
                let better = match best {
                    None => true,
                    Some((b, o, r)) => score > b || (score == b && (order, row) < (o, r)),
                };
                if better {
                    best = Some((score, order, row));
                }
            }
        }
        let Some((score, order, row)) = best else {
            return Ok(Answer {
                text: String::new(),
                retrieved,
                block: 0,
                start: 0,
                end: 0,
                score: f32::NEG_INFINITY,
            });
        };
        let (start, end) = spans[row]
            .iter()
            .find(|s| candidate_order(s.start, s.end, width, self.reader.max_span_width) == order)
            .map(|s| (s.start, s.end))
            .expect("the best candidate is listed");
        let text = self.tokenizer.decode(&encs[row].ids[start..=end], false)?;
        Ok(Answer {
            text,
            block: retrieved[row].0,
            retrieved,
            start,
            end,
            score,
        })
    }
}

/// A span's index in transformers' candidate list: all spans of width 1 by start, then of
/// width 2, and so on, over `len` positions.
fn candidate_order(start: usize, end: usize, len: usize, max_width: usize) -> usize {
    let w = end - start + 1;
    let before: usize = (1..w.min(max_width + 1)).map(|v| len + 1 - v).sum();
    before + start
}

#[cfg(test)]
mod tests {
    #[test]
    fn candidates_are_ordered_by_width_then_start() {
        // len 4: width 1 → 4 spans (0..3), width 2 → 3 spans (4..6), width 3 → 2 (7, 8).
        assert_eq!(super::candidate_order(0, 0, 4, 10), 0);
        assert_eq!(super::candidate_order(3, 3, 4, 10), 3);
        assert_eq!(super::candidate_order(0, 1, 4, 10), 4);
        assert_eq!(super::candidate_order(2, 3, 4, 10), 6);
        assert_eq!(super::candidate_order(1, 3, 4, 10), 8);
    }
}
