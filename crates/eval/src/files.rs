//! Scoring from files, as `ragl eval` and the quickstart read them: line-aligned hypothesis
//! and reference files for BLEU and chrF, gold and prediction files for QA, and a retrieval
//! run with its passages for answer recall. Errors name the file and the line.

use std::collections::HashMap;
use std::path::Path;

use ragl_core::read::{Input, Lines};
use ragl_core::text::py_rstrip;

use crate::qa::{QaScore, score_all};
use crate::qa_data::{GoldFormat, align, gold_answers, read_gold, read_predictions};
use crate::retrieval::{RecallReport, answer_recall, referenced_ids};
use crate::{Error, Result};

/// Hypotheses and the reference streams aligned with them.
pub struct TextData {
    pub hyps: Vec<String>,
    pub refs: Vec<Vec<String>>,
}

/// A file's lines with trailing whitespace removed as sacrebleu does (Python's `rstrip`).
fn read_stripped(input: &Input) -> Result<Vec<String>> {
    let mut lines = Lines::read_all(input)?;
    if lines.is_empty() {
        return Err(Error::Format(format!(
            "{}:1: empty file: expected one segment per line",
            input.name().display()
        )));
    }
    for l in &mut lines {
        let n = py_rstrip(l).len();
        l.truncate(n);
    }
    Ok(lines)
}

/// Reads a hypothesis file and its reference files, which must have as many lines.
pub fn read_text(hyp: &Input, refs: &[Input]) -> Result<TextData> {
    let hyps = read_stripped(hyp)?;
    let mut streams = Vec::with_capacity(refs.len());
    for r in refs {
        let lines = read_stripped(r)?;
        if lines.len() != hyps.len() {
            // Name the first line of the longer file that the shorter one lacks.
            let (long, n) = if lines.len() < hyps.len() {
                (hyp.name(), lines.len())
            } else {
                (r.name(), hyps.len())
            };
            return Err(Error::Format(format!(
                "{}:{}: line has no counterpart: {} has {} lines, {} has {}",
                long.display(),
                n + 1,
                hyp.name().display(),
                hyps.len(),
                r.name().display(),
                lines.len()
            )));
        }
        streams.push(lines);
    }
    Ok(TextData {
        hyps,
        refs: streams,
    })
}

fn gold_format(gold: &Input, format: Option<GoldFormat>) -> Result<GoldFormat> {
    match format {
        Some(f) => Ok(f),
        None => GoldFormat::detect(gold),
    }
}

/// Exact match and F1 of a prediction file against a gold file (its format detected
/// unless given), and the format used.
pub fn qa_score(
    gold: &Path,
    format: Option<GoldFormat>,
    pred: &Path,
) -> Result<(QaScore, GoldFormat)> {
    let gold_in = Input::from_arg(gold);
    let format = gold_format(&gold_in, format)?;
    let gold_ex = read_gold(&gold_in, format)?;
    let compiled = gold_ex
        .iter()
        .map(gold_answers)
        .collect::<Result<Vec<_>>>()?;
    let preds = read_predictions(&Input::from_arg(pred))?;
    let aligned = align(&gold_ex, preds).map_err(|e| {
        Error::Format(format!(
            "matching {} to {}: {e}",
            pred.display(),
            gold.display()
        ))
    })?;
    let score = score_all(compiled.iter().zip(aligned.iter().map(String::as_str)));
    Ok((score, format))
}

/// Answer recall@k of a retrieval run (TREC or JSONL) against gold answers, reading only
/// the passages the run names (the corpus may be far larger than memory).
pub fn recall_report(
    gold: &Path,
    format: Option<GoldFormat>,
    retrieved: &Path,
    passages: &Path,
    ks: &[usize],
) -> Result<RecallReport> {
    let gold_in = Input::from_arg(gold);
    let format = gold_format(&gold_in, format)?;
    let gold = read_gold(&gold_in, format)?;
    let run = ragl_core::run::read_run(&Input::from_arg(retrieved))?;
    let wanted = referenced_ids(&run);
    let mut texts = HashMap::with_capacity(wanted.len());
    for p in ragl_core::passage::Passages::open(&Input::from_arg(passages), true)? {
        let p = p?;
        if wanted.contains(&p.id) {
            texts.insert(p.id, p.text);
        }
    }
    answer_recall(&gold, &run, &texts, ks).map_err(|e| match e {
        // Name the files a missing id was looked for in.
        Error::Format(m) if m.contains("is not in the passages file") => Error::Format(format!(
            "{}: {m} {}",
            retrieved.display(),
            passages.display()
        )),
        e => e,
    })
}
