//! Question-answering examples, shared by the QA data loaders, the readers and evaluation.

use serde::{Deserialize, Serialize};

/// Gold answers: a set of strings (SQuAD, NQ-open, WebQuestions), compared after
/// normalisation, or a set of regular expressions (CuratedTREC), matched case-insensitively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "values", rename_all = "snake_case")]
pub enum Answer {
    Strings(Vec<String>),
    Regex(Vec<String>),
}

/// A question with its gold answers. `id` is present where the data set has one (SQuAD,
/// WebQuestions, CuratedTREC); NQ-open is keyed by the question text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaExample {
    pub id: Option<String>,
    pub question: String,
    pub answer: Answer,
    /// The passage the question was written from, where known (SQuAD context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Where the example came from, `file:line`, for error messages.
    #[serde(skip)]
    pub source: String,
}
