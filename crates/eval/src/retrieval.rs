//! Retrieval evaluation: answer recall@k, the measure of DPR and REALM's retrievers.
//!
//! A question counts as answered at k when one of its top-k passages contains a gold
//! answer: for string answers, the SQuAD-normalised answer (lowercase, no punctuation or
//! articles) occurs as a whole-token sequence in the normalised passage text; for regex
//! answers (CuratedTREC), the pattern is found anywhere in the passage, case-insensitively,
//! as DPR's `regex_match` does.

use std::collections::HashMap;

use ragl_core::qa::{Answer, QaExample};
use ragl_core::run::RunEntry;
use rayon::prelude::*;

use crate::qa::normalize_answer;
use crate::{Error, Result};

/// Gold answers compiled for matching against passages.
pub enum PassageMatcher {
    Tokens(Vec<Vec<String>>),
    Regex(Vec<fancy_regex::Regex>),
}

impl PassageMatcher {
    pub fn new(ex: &QaExample) -> Result<Self> {
        Ok(match &ex.answer {
            Answer::Strings(s) => PassageMatcher::Tokens(
                s.iter()
                    .map(|a| {
                        normalize_answer(a)
                            .split(' ')
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                    .filter(|t| !t.is_empty())
                    .collect(),
            ),
            Answer::Regex(ps) => PassageMatcher::Regex(
                ps.iter()
                    .map(|p| {
                        fancy_regex::Regex::new(&format!("(?im){p}")).map_err(|e| {
                            Error::Format(format!("{}: bad answer pattern {p:?}: {e}", ex.source))
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
        })
    }

    pub fn matches(&self, passage: &str) -> bool {
        match self {
            PassageMatcher::Tokens(answers) => {
                let norm = normalize_answer(passage);
                let toks: Vec<&str> = norm.split(' ').filter(|t| !t.is_empty()).collect();
                answers.iter().any(|a| {
                    toks.windows(a.len())
                        .any(|w| w.iter().zip(a).all(|(x, y)| x == y))
                })
            }
            PassageMatcher::Regex(rs) => rs.iter().any(|r| r.is_match(passage).unwrap_or(false)),
        }
    }
}

/// The run-file key of a question: its id where the data set has one, else its position.
pub fn query_id(ex: &QaExample, position: usize) -> String {
    ex.id.clone().unwrap_or_else(|| position.to_string())
}

/// Answer recall at each k, over all questions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecallReport {
    pub questions: usize,
    pub ks: Vec<usize>,
    /// Fraction of questions answered within the top k, per k.
    pub recall: Vec<f64>,
    /// Hits per query in the run (the most any k can use).
    pub depth: usize,
}

/// Passage ids a run refers to (to load only those texts from a large corpus).
pub fn referenced_ids(run: &[RunEntry]) -> std::collections::HashSet<String> {
    run.iter()
        .flat_map(|e| e.hits.iter().map(|h| h.id.clone()))
        .collect()
}

/// Scores `run` against `gold`. Every question needs exactly one run entry, and every
/// passage id in the run must be in `passages` (id → text).
pub fn answer_recall(
    gold: &[QaExample],
    run: &[RunEntry],
    passages: &HashMap<String, String>,
    ks: &[usize],
) -> Result<RecallReport> {
    let mut by_qid: HashMap<&str, &RunEntry> = HashMap::with_capacity(run.len());
    for e in run {
        if by_qid.insert(e.qid.as_str(), e).is_some() {
            return Err(Error::Format(format!("the run has query {} twice", e.qid)));
        }
    }
    let qids: Vec<String> = gold
        .iter()
        .enumerate()
        .map(|(i, ex)| query_id(ex, i))
        .collect();
    if let Some(e) = run.iter().find(|e| !qids.contains(&e.qid)) {
        return Err(Error::Format(format!(
            "the run has query {:?}, which is not in the gold file",
            e.qid
        )));
    }
    for e in run {
        if let Some(h) = e.hits.iter().find(|h| !passages.contains_key(&h.id)) {
            return Err(Error::Format(format!(
                "query {}: passage id {:?} is not in the passages file",
                e.qid, h.id
            )));
        }
    }
    let depth = run.iter().map(|e| e.hits.len()).max().unwrap_or(0);
    let first_hit: Vec<Option<usize>> = gold
        .par_iter()
        .zip(qids.par_iter())
        .map(|(ex, qid)| {
            let e = by_qid.get(qid.as_str()).ok_or_else(|| {
                Error::Format(format!(
                    "the run has no entry for question {qid} ({})",
                    ex.source
                ))
            })?;
            let m = PassageMatcher::new(ex)?;
            Ok(e.hits.iter().position(|h| m.matches(&passages[&h.id])))
        })
        .collect::<Result<_>>()?;
    let n = gold.len().max(1) as f64;
    let recall = ks
        .iter()
        .map(|&k| {
            first_hit
                .iter()
                .filter(|r| r.is_some_and(|r| r < k))
                .count() as f64
                / n
        })
        .collect();
    Ok(RecallReport {
        questions: gold.len(),
        ks: ks.to_vec(),
        recall,
        depth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ragl_core::run::RunHit;

    fn ex(id: &str, answer: Answer) -> QaExample {
        QaExample {
            id: Some(id.into()),
            question: "q".into(),
            answer,
            context: None,
            title: None,
            source: "t:1".into(),
        }
    }

    #[test]
    fn whole_token_matching_and_regex() {
        let m = PassageMatcher::new(&ex("a", Answer::Strings(vec!["The 1990s".into()]))).unwrap();
        assert!(m.matches("It began in the 1990s, slowly."));
        assert!(!m.matches("It began in 1990sx."));
        let m = PassageMatcher::new(&ex("a", Answer::Strings(vec!["1".into()]))).unwrap();
        assert!(!m.matches("in 1990"));
        let m = PassageMatcher::new(&ex("a", Answer::Regex(vec!["19[0-9]{2}".into()]))).unwrap();
        assert!(m.matches("Born in 1956."));
    }

    #[test]
    fn recall_at_k_and_errors() {
        let gold = vec![
            ex("q1", Answer::Strings(vec!["paris".into()])),
            ex("q2", Answer::Strings(vec!["rome".into()])),
        ];
        let passages: HashMap<String, String> = [
            ("a", "London is big."),
            ("b", "Paris is in France."),
            ("c", "Rome."),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let h = |id: &str| RunHit {
            id: id.into(),
            score: 0.0,
        };
        let run = vec![
            RunEntry {
                qid: "q1".into(),
                question: None,
                hits: vec![h("a"), h("b")],
            },
            RunEntry {
                qid: "q2".into(),
                question: None,
                hits: vec![h("c"), h("a")],
            },
        ];
        let r = answer_recall(&gold, &run, &passages, &[1, 2]).unwrap();
        assert_eq!(r.recall, vec![0.5, 1.0]);
        let bad = vec![RunEntry {
            qid: "q1".into(),
            question: None,
            hits: vec![h("zz")],
        }];
        let e = answer_recall(&gold, &bad, &passages, &[1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"zz\" is not in the passages"), "{e}");
        let e = answer_recall(&gold, &run[..1], &passages, &[1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no entry for question q2"), "{e}");
    }
}
