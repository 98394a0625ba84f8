//! Query files: JSONL `{"id", "text"}` / `{"id", "question"}`, or any QA format that
//! `ragl eval qa` reads (NQ-open, WebQuestions, CuratedTREC, SQuAD), whose questions are
//! keyed as `ragl eval retrieval` expects (the data set's id, else the position).

use ragl_core::qa::QaExample;
use ragl_core::read::{Input, Jsonl};
use ragl_eval::qa_data::{GoldFormat, read_gold};
use ragl_eval::retrieval::query_id;
use serde::Deserialize;

use crate::Result;

/// A query to retrieve for.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub qid: String,
    pub text: String,
}

#[derive(Deserialize)]
struct Record {
    id: serde_json::Value,
    #[serde(alias = "question")]
    text: String,
}

/// Reads queries; `format` is a QA format name, `queries` for plain JSONL queries, or
/// `auto` (QA formats are detected; anything else is read as JSONL queries).
pub fn read_queries(input: &Input, format: &str) -> Result<Vec<Query>> {
    let qa = match format {
        "queries" => None,
        "auto" if looks_like_queries(input)? => None,
        "auto" => Some(GoldFormat::detect(input)?),
        name => Some(
            GoldFormat::from_name(name)
                .ok_or_else(|| crate::Error::Mismatch(format!("unknown query format {name:?}")))?,
        ),
    };
    if let Some(f) = qa {
        let gold: Vec<QaExample> = read_gold(input, f)?;
        return Ok(gold
            .iter()
            .enumerate()
            .map(|(i, ex)| Query {
                qid: query_id(ex, i),
                text: ex.question.clone(),
            })
            .collect());
    }
    let mut out = Vec::new();
    for r in Jsonl::<Record>::open(input)? {
        let (_, r) = r?;
        let qid = match r.id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        out.push(Query { qid, text: r.text });
    }
    Ok(out)
}

/// A JSONL whose first record has an id and a text or question but no answer.
fn looks_like_queries(input: &Input) -> Result<bool> {
    // Peeked, so that stdin is detected as a file is and still read whole afterwards.
    let first = input.first_line()?;
    Ok(
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(first.trim()).is_ok_and(
            |m| {
                m.contains_key("id")
                    && (m.contains_key("text") || m.contains_key("question"))
                    && !m.contains_key("answer")
            },
        ),
    )
}
