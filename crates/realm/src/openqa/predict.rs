//! Prediction (`ragl predict-qa`): the best span across the top-k passages of each
//! question, in parallel batches, and its exact match.

use std::path::Path;

use burn::prelude::*;
use ragl_core::passage::Passage;
use ragl_core::qa::QaExample;
use ragl_core::read::Input;
use ragl_reader::span::AnswerMatcher;

use super::checkpoint::Loaded;
use super::model::{OpenQa, QueryPooling, RetrievalContext, retrieve};
use crate::{Error, Result};

/// Reads passages and orders them by index row (the index's ids).
pub fn passages_by_row(path: &Path, index: &ragl_index::Index) -> Result<Vec<Passage>> {
    let mut by_id = std::collections::HashMap::new();
    for p in ragl_core::passage::Passages::open(&Input::from_arg(path), false)? {
        let p = p?;
        by_id.insert(p.id.clone(), p);
    }
    index
        .ids
        .iter()
        .map(|id| {
            by_id.remove(id).ok_or_else(|| {
                Error::Mismatch(format!(
                    "index {} has passage {id:?}, which {} does not",
                    index.dir.display(),
                    path.display()
                ))
            })
        })
        .collect()
}

pub(crate) fn matchers(exs: &[QaExample]) -> Result<Vec<AnswerMatcher>> {
    exs.iter()
        .map(|e| AnswerMatcher::new(&e.answer).map_err(Error::from))
        .collect()
}

/// Predicted answer text for each question, with its passage row and score.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub text: String,
    pub passage: Option<String>,
    pub score: f32,
}

/// Predicts answers in batches of `batch` questions.
pub fn predict<B: Backend>(
    l: &Loaded<B>,
    index: &ragl_index::Index,
    passages: &[Passage],
    questions: &[&str],
    k: usize,
    batch: usize,
    progress: impl FnMut(usize),
) -> Result<Vec<Prediction>> {
    let ctx = RetrievalContext {
        index,
        passages,
        query_tokenizer: &l.query_tokenizer,
        reader_tokenizer: &l.reader_tokenizer,
        reader: &l.meta.span,
        k,
    };
    predict_with(&l.model, l.pooling, &ctx, questions, batch, progress)
}

pub(crate) fn predict_with<B: Backend>(
    model: &OpenQa<B>,
    pooling: QueryPooling,
    ctx: &RetrievalContext,
    questions: &[&str],
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Prediction>> {
    use rayon::prelude::*;
    // One batch's ops keep about one core busy on the CPU backend, so batches run side by
    // side, as many as rayon has threads; order is kept.
    let chunks: Vec<&[&str]> = questions.chunks(batch.max(1)).collect();
    let width = rayon::current_num_threads().max(1);
    let mut out = Vec::with_capacity(questions.len());
    for group in chunks.chunks(width) {
        let done: Vec<Result<Vec<Prediction>>> = group
            .par_iter()
            .map(|chunk| predict_chunk(model, pooling, ctx, chunk))
            .collect();
        for (chunk, r) in group.iter().zip(done) {
            out.extend(r?);
            progress(chunk.len());
        }
    }
    Ok(out)
}

fn predict_chunk<B: Backend>(
    model: &OpenQa<B>,
    pooling: QueryPooling,
    ctx: &RetrievalContext,
    chunk: &[&str],
) -> Result<Vec<Prediction>> {
    let passages = ctx.passages;
    let (items, rows) = retrieve(model, pooling, ctx, chunk, None)?;
    let preds = model.predict(&items, pooling);
    Ok(preds
        .into_iter()
        .zip(rows)
        .zip(chunk)
        .map(|((best, rows), question)| match best {
            // Closed-book: the span is in the question, the only text there is.
            Some(b) if rows.is_empty() => Prediction {
                text: question[b.bytes.0..b.bytes.1].to_string(),
                passage: None,
                score: b.score,
            },
            Some(b) => {
                let p = &passages[rows[b.doc] as usize];
                Prediction {
                    text: p.text[b.bytes.0..b.bytes.1].to_string(),
                    passage: Some(p.id.clone()),
                    score: b.score,
                }
            }
            None => Prediction {
                text: String::new(),
                passage: None,
                score: f32::NEG_INFINITY,
            },
        })
        .collect())
}

/// Exact match of predictions against examples' answers.
pub fn exact_match(preds: &[Prediction], exs: &[QaExample]) -> Result<f64> {
    let mut correct = 0usize;
    for (p, e) in preds.iter().zip(exs) {
        let gold = ragl_eval::qa_data::gold_answers(e)?;
        if gold.score(&p.text).0 {
            correct += 1;
        }
    }
    Ok(100.0 * correct as f64 / exs.len().max(1) as f64)
}
