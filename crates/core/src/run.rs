//! Retrieval run files: the ranked passages returned for each query.
//!
//! Two formats, both streamed line by line:
//! - JSONL (ragl's own): `{"qid", "question", "hits": [{"id", "score"}, ...]}` per query;
//! - TREC: `qid Q0 docid rank score tag`, the format of trec_eval, Pyserini and DPR's
//!   converters. Hits of one query must be consecutive lines.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::read::{Input, Lines};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHit {
    pub id: String,
    pub score: f32,
}

/// The ranked hits of one query, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    pub qid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    pub hits: Vec<RunHit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFormat {
    Jsonl,
    Trec,
}

impl std::str::FromStr for RunFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "jsonl" => Ok(RunFormat::Jsonl),
            "trec" => Ok(RunFormat::Trec),
            _ => Err(format!("unknown run format {s:?} (expected jsonl or trec)")),
        }
    }
}

/// Writes one query's hits.
pub fn write_entry(w: &mut impl Write, e: &RunEntry, format: RunFormat) -> std::io::Result<()> {
    match format {
        RunFormat::Jsonl => {
            // serde_json gives back the original io::Error (a closed pipe stays a BrokenPipe).
            serde_json::to_writer(&mut *w, e).map_err(std::io::Error::from)?;
            w.write_all(b"\n")
        }
        RunFormat::Trec => {
            for (rank, h) in e.hits.iter().enumerate() {
                writeln!(w, "{} Q0 {} {} {} ragl", e.qid, h.id, rank + 1, h.score)?;
            }
            Ok(())
        }
    }
}

/// Reads a whole run, detecting the format from the first non-blank line (`{` → JSONL).
pub fn read_run(input: &Input) -> Result<Vec<RunEntry>> {
    let name = input.name();
    let mut out: Vec<RunEntry> = Vec::new();
    let mut format = None;
    for line in Lines::open(input)? {
        let line = line?;
        let t = line.text.trim();
        if t.is_empty() {
            continue;
        }
        let f = *format.get_or_insert(if t.starts_with('{') {
            RunFormat::Jsonl
        } else {
            RunFormat::Trec
        });
        match f {
            RunFormat::Jsonl => {
                let e: RunEntry = serde_json::from_str(t).map_err(|e| Error::Json {
                    path: name.clone(),
                    line: line.number,
                    message: e.to_string(),
                })?;
                out.push(e);
            }
            RunFormat::Trec => {
                let cols: Vec<&str> = t.split_whitespace().collect();
                let [qid, _, docid, _rank, score, ..] = cols[..] else {
                    return Err(Error::format(
                        &name,
                        line.number,
                        "a TREC run line needs 6 columns: qid Q0 docid rank score tag",
                    ));
                };
                let score: f32 = score.parse().map_err(|_| {
                    Error::format(
                        &name,
                        line.number,
                        format!("score {score:?} is not a number"),
                    )
                })?;
                let hit = RunHit {
                    id: docid.to_owned(),
                    score,
                };
                match out.last_mut() {
                    Some(e) if e.qid == qid => e.hits.push(hit),
                    _ => out.push(RunEntry {
                        qid: qid.to_owned(),
                        question: None,
                        hits: vec![hit],
                    }),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_round_trip() {
        let e = RunEntry {
            qid: "q1".into(),
            question: Some("who?".into()),
            hits: vec![
                RunHit {
                    id: "d:0".into(),
                    score: 1.5,
                },
                RunHit {
                    id: "d:3".into(),
                    score: -0.25,
                },
            ],
        };
        for f in [RunFormat::Jsonl, RunFormat::Trec] {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("run");
            let mut buf = Vec::new();
            write_entry(&mut buf, &e, f).unwrap();
            std::fs::write(&p, &buf).unwrap();
            let back = read_run(&Input::File(p)).unwrap();
            assert_eq!(back.len(), 1);
            assert_eq!(back[0].hits, e.hits);
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bad");
        std::fs::write(&p, "q1 Q0 d 1 x ragl\n").unwrap();
        let err = read_run(&Input::File(p)).unwrap_err().to_string();
        assert!(err.contains("bad:1: score"), "{err}");
    }
}
