//! Gold QA files in the formats users have, and prediction files.
//!
//! Gold: NQ-open / EfficientQA JSONL (`{"question","answer":[..]}`), WebQuestions JSON
//! (`[{"qId","qText","answers"}]`), CuratedTREC TSV (`id \t type \t question \t regex`) and
//! SQuAD JSON. Predictions: JSONL `{"id" or "question", "prediction"}` or SQuAD's
//! `{id: prediction}`. Predictions are matched to gold by id where both have one, else by
//! question text; missing, duplicate and unknown predictions are errors.

use std::collections::HashMap;

use ragl_core::qa::{Answer, QaExample};
use ragl_core::read::{Input, Jsonl, Tsv, read_json};
use serde::Deserialize;

use crate::qa::{AnswerRegex, GoldAnswers};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoldFormat {
    NqOpen,
    WebQuestions,
    CuratedTrec,
    Squad,
}

impl GoldFormat {
    pub const NAMES: [&'static str; 4] = ["nq-open", "webquestions", "curatedtrec", "squad"];

    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "nq-open" | "efficientqa" | "jsonl" => GoldFormat::NqOpen,
            "webquestions" => GoldFormat::WebQuestions,
            "curatedtrec" | "tsv" => GoldFormat::CuratedTrec,
            "squad" => GoldFormat::Squad,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            GoldFormat::NqOpen => "nq-open",
            GoldFormat::WebQuestions => "webquestions",
            GoldFormat::CuratedTrec => "curatedtrec",
            GoldFormat::Squad => "squad",
        }
    }

    /// Guesses the format from the extension and the first bytes.
    pub fn detect(input: &Input) -> Result<Self> {
        let name = input.name();
        let ext = name.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "tsv" | "txt" => return Ok(GoldFormat::CuratedTrec),
            "jsonl" => return Ok(GoldFormat::NqOpen),
            _ => {}
        }
        let first = input.first_line()?;
        let t = first.trim_start();
        if t.starts_with('[') {
            Ok(GoldFormat::WebQuestions)
        } else if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t.trim_end())
            .is_ok_and(|m| m.contains_key("question"))
        {
            Ok(GoldFormat::NqOpen)
        } else if t.starts_with('{') {
            Ok(GoldFormat::Squad)
        } else {
            Err(Error::Format(format!(
                "{}: cannot tell the gold format; pass --format ({})",
                name.display(),
                GoldFormat::NAMES.join("|")
            )))
        }
    }
}

#[derive(Deserialize)]
struct NqRow {
    question: String,
    answer: Vec<String>,
    // Written by `ragl qa split`, so a split keeps what SQuAD knew of each question.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    context: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WqRow {
    q_id: String,
    q_text: String,
    answers: Vec<String>,
}

#[derive(Deserialize)]
struct SquadFile {
    data: Vec<SquadArticle>,
}
#[derive(Deserialize)]
struct SquadArticle {
    #[serde(default)]
    title: Option<String>,
    paragraphs: Vec<SquadParagraph>,
}
#[derive(Deserialize)]
struct SquadParagraph {
    context: String,
    qas: Vec<SquadQa>,
}
#[derive(Deserialize)]
struct SquadQa {
    id: String,
    question: String,
    answers: Vec<SquadAnswer>,
}
#[derive(Deserialize)]
struct SquadAnswer {
    text: String,
}

/// Reads a gold file into examples, in file order.
pub fn read_gold(input: &Input, format: GoldFormat) -> Result<Vec<QaExample>> {
    let name = input.name().display().to_string();
    let mut out = Vec::new();
    match format {
        GoldFormat::NqOpen => {
            for row in Jsonl::<NqRow>::open(input)? {
                let (line, r) = row?;
                out.push(QaExample {
                    id: r.id,
                    question: r.question,
                    answer: Answer::Strings(r.answer),
                    context: r.context,
                    title: r.title,
                    source: format!("{name}:{line}"),
                });
            }
        }
        GoldFormat::WebQuestions => {
            let rows: Vec<WqRow> = read_json(input)?;
            for (i, r) in rows.into_iter().enumerate() {
                out.push(QaExample {
                    id: Some(r.q_id),
                    question: r.q_text,
                    answer: Answer::Strings(r.answers),
                    context: None,
                    title: None,
                    source: format!("{name}: item {}", i + 1),
                });
            }
        }
        GoldFormat::CuratedTrec => {
            for row in Tsv::open(input, Some(4))? {
                let (line, mut f) = row?;
                let pattern = f.pop().unwrap_or_default();
                if let Err(e) = AnswerRegex::new(&pattern) {
                    return Err(ragl_core::Error::format(
                        input.name(),
                        line,
                        format!("answer pattern does not compile: {e}"),
                    )
                    .into());
                }
                // id, type, question (the pattern is popped above).
                let question = f.pop().unwrap_or_default();
                out.push(QaExample {
                    id: Some(f.swap_remove(0)),
                    question,
                    answer: Answer::Regex(vec![pattern]),
                    context: None,
                    title: None,
                    source: format!("{name}:{line}"),
                });
            }
        }
        GoldFormat::Squad => {
            let file: SquadFile = read_json(input)?;
            for a in file.data {
                for p in a.paragraphs {
                    for q in p.qas {
                        out.push(QaExample {
                            source: format!("{name}: question {}", q.id),
                            id: Some(q.id),
                            question: q.question,
                            answer: Answer::Strings(
                                q.answers.into_iter().map(|a| a.text).collect(),
                            ),
                            context: Some(p.context.clone()),
                            title: a.title.clone(),
                        });
                    }
                }
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Format(format!(
            "{name}: no questions in the gold file"
        )));
    }
    Ok(out)
}

/// Compiles an example's gold answers for scoring.
pub fn gold_answers(ex: &QaExample) -> Result<GoldAnswers> {
    Ok(match &ex.answer {
        Answer::Strings(s) => GoldAnswers::Strings(s.clone()),
        Answer::Regex(ps) => GoldAnswers::Regex(
            ps.iter()
                .map(|p| {
                    AnswerRegex::new(p).map_err(|e| Error::Format(format!("{}: {e}", ex.source)))
                })
                .collect::<Result<_>>()?,
        ),
    })
}

/// How a prediction names its question.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PredKey {
    Id(String),
    Question(String),
}

#[derive(Deserialize)]
struct PredRow {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    question: Option<String>,
    prediction: String,
}

/// Reads predictions: JSONL rows, or one SQuAD `{id: prediction}` object. Returns them in
/// file order with their `file:line` for messages.
pub fn read_predictions(input: &Input) -> Result<Vec<(PredKey, String, String)>> {
    let name = input.name().display().to_string();
    let text = input.read_to_string()?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let first_is_row = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(first)
        .is_ok_and(|m| m.contains_key("prediction"));
    let mut out = Vec::new();
    if first_is_row {
        for (i, line) in text.split('\n').enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r: PredRow = serde_json::from_str(line).map_err(|e| ragl_core::Error::Json {
                path: input.name(),
                line: i as u64 + 1,
                message: e.to_string(),
            })?;
            let key = match (r.id, r.question) {
                (Some(serde_json::Value::String(s)), _) => PredKey::Id(s),
                (Some(v @ serde_json::Value::Number(_)), _) => PredKey::Id(v.to_string()),
                (_, Some(q)) => PredKey::Question(q),
                _ => {
                    return Err(ragl_core::Error::format(
                        input.name(),
                        i as u64 + 1,
                        "prediction has neither \"id\" nor \"question\"",
                    )
                    .into());
                }
            };
            out.push((key, r.prediction, format!("{name}:{}", i + 1)));
        }
    } else {
        let m: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| ragl_core::Error::Json {
                path: input.name(),
                line: e.line() as u64,
                message: e.to_string(),
            })?;
        for (id, v) in m {
            let serde_json::Value::String(p) = v else {
                return Err(Error::Format(format!(
                    "{name}: prediction for {id:?} is not a string"
                )));
            };
            out.push((PredKey::Id(id.clone()), p, format!("{name}: id {id}")));
        }
    }
    if out.is_empty() {
        return Err(Error::Format(format!("{name}: no predictions")));
    }
    Ok(out)
}

/// The prediction of each gold example, in gold order. Missing, duplicate and unknown
/// predictions are errors that list the first few offenders.
pub fn align(gold: &[QaExample], preds: Vec<(PredKey, String, String)>) -> Result<Vec<String>> {
    const SHOW: usize = 5;
    let by_id = preds.first().is_some_and(|p| matches!(p.0, PredKey::Id(_)));
    if by_id && gold.iter().any(|g| g.id.is_none()) {
        return Err(Error::Format(
            "predictions are keyed by \"id\" but the gold file has no ids (NQ-open is keyed by \"question\")".into(),
        ));
    }
    let gold_key = |g: &QaExample| {
        if by_id {
            PredKey::Id(g.id.clone().unwrap_or_default())
        } else {
            PredKey::Question(g.question.clone())
        }
    };
    let mut table: HashMap<PredKey, (String, String)> = HashMap::with_capacity(preds.len());
    let mut dups = Vec::new();
    for (k, p, src) in preds {
        match table.entry(k) {
            std::collections::hash_map::Entry::Occupied(_) => dups.push(src),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((p, src));
            }
        }
    }
    if !dups.is_empty() {
        return Err(Error::Format(format!(
            "{} duplicate prediction(s), first at: {}",
            dups.len(),
            dups.iter()
                .take(SHOW)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut out = Vec::with_capacity(gold.len());
    let mut missing = Vec::new();
    for g in gold {
        match table.remove(&gold_key(g)) {
            Some((p, _)) => out.push(p),
            None => missing.push(format!("{:?}", g.id.as_deref().unwrap_or(&g.question))),
        }
    }
    if !missing.is_empty() {
        return Err(Error::Format(format!(
            "{} of {} questions have no prediction, first: {}",
            missing.len(),
            gold.len(),
            missing
                .iter()
                .take(SHOW)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !table.is_empty() {
        let mut extra: Vec<&String> = table.values().map(|(_, src)| src).collect();
        extra.sort();
        return Err(Error::Format(format!(
            "{} prediction(s) for questions not in the gold file, first: {}",
            extra.len(),
            extra
                .iter()
                .take(SHOW)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(out)
}
