//! The held-out evaluation: retrieval against ∅ only on the held-out sentences, one
//! [`EvalReport`] per evaluation (`eval.csv`) and one row per sentence
//! (`eval_examples.csv`, for paired comparisons).

use burn::prelude::*;
use ragl_core::rng::Rng;
use serde::Serialize;

use super::data::{MaskedExample, span_found};
use super::loss::{BatchStats, ExampleEval, StepContext, batch_loss};
use super::model::Realm;
use super::refresh::Snapshot;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EvalReport {
    pub step: u64,
    pub examples: usize,
    pub loss: f64,
    pub token_accuracy: f64,
    pub span_accuracy: f64,
    pub null_token_accuracy: f64,
    pub null_span_accuracy: f64,
    pub utility: f64,
    pub ru_top: f64,
    /// Examples (%) whose masked span is in a retrieved document as the reader sees it.
    pub span_hit: f64,
    /// The same for the first-ranked document.
    pub top_hit: f64,
    /// Mean RU(z|x) of the retrieved documents that hold the span, and of those that do
    /// not (NaN when there are none).
    pub ru_held: f64,
    pub ru_other: f64,
    /// Mean p(∅|x), and mean p(z|x) mass on retrieved documents that hold the span.
    pub p_null: f64,
    pub p_held: f64,
    /// See [`BatchStats::held_share`] (NaN when no example has a span-holding document with
    /// any mass off ∅: the share is undefined there).
    pub held_share: f64,
    pub held_frac: f64,
    pub p_null_hit: f64,
    pub p_null_miss: f64,
    /// Examples (%) whose masked span is in *some* passage the retriever may return (the
    /// own passage excluded when the run excludes it): the ceiling of `span_hit`.
    pub span_in_corpus: f64,
}

/// The share (%) of `examples` whose masked span's word pieces occur in some passage the
/// retriever may return, cut as the reader would cut it.
pub fn span_in_corpus(ctx: &StepContext, examples: &[&MaskedExample]) -> f64 {
    let m = &ctx.cfg.model;
    let found = examples
        .iter()
        .filter(|e| span_found(ctx.corpus, e, ctx.skipped_row(e), ctx.sep, m.reader_max_len))
        .count();
    100.0 * found as f64 / examples.len().max(1) as f64
}

/// Evaluates `model` (no gradient) on `examples`: the report, and each example's numbers
/// in `examples`' order.
pub fn evaluate_examples<B: Backend>(
    model: &Realm<B>,
    ctx: &StepContext,
    examples: &[&MaskedExample],
    snap: &Snapshot,
    batch: usize,
    step: u64,
) -> (EvalReport, Vec<ExampleEval>) {
    let mut rng = Rng::new(ctx.cfg.train.seed ^ 0xE7A1);
    let mut sum = BatchStats::default();
    let (mut loss, mut util, mut ru) = (0f64, 0f64, 0f64);
    let mut each = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch.max(1)) {
        let (_, s) = batch_loss(model, ctx, chunk, snap, &mut rng, false);
        loss += s.loss * s.examples as f64;
        util += s.utility * s.examples as f64;
        ru += s.ru_top * s.examples as f64;
        sum.add_counts(&s);
        each.extend(s.per_example);
    }
    let n = sum.examples.max(1) as f64;
    let t = sum.tokens.max(1) as f64;
    let report = EvalReport {
        step,
        examples: sum.examples,
        loss: loss / n,
        token_accuracy: 100.0 * sum.tokens_right as f64 / t,
        span_accuracy: 100.0 * sum.spans_right as f64 / n,
        null_token_accuracy: 100.0 * sum.null_tokens_right as f64 / t,
        null_span_accuracy: 100.0 * sum.null_spans_right as f64 / n,
        utility: util / n,
        ru_top: ru / n,
        span_hit: 100.0 * sum.span_hits as f64 / n,
        top_hit: 100.0 * sum.top_hits as f64 / n,
        ru_held: sum.ru_held.0 / sum.ru_held.1 as f64,
        ru_other: sum.ru_other.0 / sum.ru_other.1 as f64,
        p_null: sum.p_null / n,
        p_held: sum.p_held / n,
        held_share: sum.held_share / sum.held_share_n as f64,
        held_frac: sum.held_frac / sum.span_hits as f64,
        p_null_hit: sum.p_null_hit / sum.span_hits as f64,
        p_null_miss: sum.p_null_miss / (sum.examples - sum.span_hits) as f64,
        span_in_corpus: span_in_corpus(ctx, examples),
    };
    (report, each)
}

pub(crate) const EXAMPLES_HEADER: &str = "step,id,loss,null_loss,utility,p_null,span_hit";
pub(crate) const EVAL_HEADER: &str = "step,examples,loss,token_acc,span_acc,null_token_acc,null_span_acc,utility,ru_top,span_hit,top_hit,span_in_corpus,ru_held,ru_other,p_null,p_held,held_share,held_frac,p_null_hit,p_null_miss";

/// `s` as one CSV field: quoted when it holds a comma, a quote or a line break.
pub(crate) fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

pub(crate) fn eval_line(e: &EvalReport) -> String {
    format!(
        "{},{},{:.5},{:.2},{:.2},{:.2},{:.2},{:.5},{:.5},{:.2},{:.2},{:.2},{:.5},{:.5},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}",
        e.step,
        e.examples,
        e.loss,
        e.token_accuracy,
        e.span_accuracy,
        e.null_token_accuracy,
        e.null_span_accuracy,
        e.utility,
        e.ru_top,
        e.span_hit,
        e.top_hit,
        e.span_in_corpus,
        e.ru_held,
        e.ru_other,
        e.p_null,
        e.p_held,
        e.held_share,
        e.held_frac,
        e.p_null_hit,
        e.p_null_miss
    )
}
