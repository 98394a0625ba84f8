//! Documents in: JSONL `{"id","title","text"}`, TSV `id \t title \t text`, or a SQuAD JSON
//! file, whose paragraphs become documents `Title:n` (title with underscores as spaces).
//! JSONL and TSV are streamed; a SQuAD file is one JSON value and is read whole.

use std::path::PathBuf;

use ragl_core::read::{Input, Lines};
use ragl_core::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub text: String,
    /// `file:line` (or the SQuAD article/paragraph) for messages.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    Jsonl,
    Tsv,
    Squad,
}

impl DocFormat {
    /// From the extension (`.jsonl`, `.tsv`, `.json`), else the first byte.
    pub fn detect(input: &Input) -> Result<Self> {
        let name = input.name();
        match name.extension().and_then(|e| e.to_str()) {
            Some("jsonl") => return Ok(DocFormat::Jsonl),
            Some("tsv") => return Ok(DocFormat::Tsv),
            Some("json") => return Ok(DocFormat::Squad),
            _ => {}
        }
        let first = input.first_line()?;
        Ok(
            if first.trim_start().starts_with('{') && first.contains("\"data\"") {
                DocFormat::Squad
            } else if first.trim_start().starts_with('{') {
                DocFormat::Jsonl
            } else {
                DocFormat::Tsv
            },
        )
    }
}

#[derive(Deserialize)]
struct JsonDoc {
    id: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    text: String,
}

#[derive(Deserialize)]
struct Squad {
    data: Vec<SquadArticle>,
}
#[derive(Deserialize)]
struct SquadArticle {
    title: String,
    paragraphs: Vec<SquadParagraph>,
}
#[derive(Deserialize)]
struct SquadParagraph {
    context: String,
}

/// Streams the documents of an input. Blank lines are skipped; a malformed line is an
/// error naming it (or, with `skip_invalid`, is counted in `skipped`).
pub struct Documents {
    name: PathBuf,
    format: DocFormat,
    lines: Option<Lines>,
    squad: std::vec::IntoIter<Document>,
    skip_invalid: bool,
    pub skipped: u64,
}

impl Documents {
    pub fn open(input: &Input, format: DocFormat, skip_invalid: bool) -> Result<Self> {
        let name = input.name();
        let (lines, squad) = match format {
            DocFormat::Squad => {
                let text = input.read_to_string()?;
                let s: Squad = serde_json::from_str(&text).map_err(|e| Error::Json {
                    path: name.clone(),
                    line: e.line() as u64,
                    message: e.to_string(),
                })?;
                let docs: Vec<Document> = s
                    .data
                    .into_iter()
                    .flat_map(|a| {
                        let title = squad_title(&a.title);
                        let key = a.title.clone();
                        a.paragraphs
                            .into_iter()
                            .enumerate()
                            .map(move |(n, p)| Document {
                                id: format!("{key}:{n}"),
                                title: title.clone(),
                                text: p.context,
                                source: format!("{key} paragraph {n}"),
                            })
                    })
                    .collect();
                (None, docs)
            }
            _ => (Some(Lines::open(input)?), Vec::new()),
        };
        Ok(Documents {
            name,
            format,
            lines,
            squad: squad.into_iter(),
            skip_invalid,
            skipped: 0,
        })
    }

    fn parse(&self, number: u64, line: &str) -> Result<Document> {
        let source = format!("{}:{number}", self.name.display());
        match self.format {
            DocFormat::Jsonl => {
                let d: JsonDoc = serde_json::from_str(line).map_err(|e| Error::Json {
                    path: self.name.clone(),
                    line: number,
                    message: e.to_string(),
                })?;
                let id = match d.id {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    other => {
                        return Err(Error::format(
                            &self.name,
                            number,
                            format!("\"id\" must be a string or a number, got {other}"),
                        ));
                    }
                };
                Ok(Document {
                    id,
                    title: d.title.unwrap_or_default(),
                    text: d.text,
                    source,
                })
            }
            _ => {
                let mut cols = line.splitn(3, '\t');
                match (cols.next(), cols.next(), cols.next()) {
                    (Some(id), Some(title), Some(text)) => Ok(Document {
                        id: id.to_owned(),
                        title: title.to_owned(),
                        text: text.to_owned(),
                        source,
                    }),
                    _ => Err(Error::format(
                        &self.name,
                        number,
                        "expected 3 tab-separated columns: id, title, text",
                    )),
                }
            }
        }
    }
}

impl Iterator for Documents {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Result<Document>> {
        if self.lines.is_none() {
            return self.squad.next().map(Ok);
        }
        loop {
            let line = match self.lines.as_mut()?.next()? {
                Ok(l) => l,
                Err(e) if self.skip_invalid && matches!(e, Error::Utf8 { .. }) => {
                    self.skipped += 1;
                    continue;
                }
                Err(e) => return Some(Err(e)),
            };
            if line.text.trim().is_empty() {
                continue;
            }
            // TSV files often carry a header row.
            if self.format == DocFormat::Tsv && line.number == 1 && line.text.starts_with("id\t") {
                continue;
            }
            match self.parse(line.number, &line.text) {
                Ok(d) if d.id.is_empty() || d.id.contains('\n') => {
                    let e = Error::format(&self.name, line.number, "empty document id");
                    if self.skip_invalid {
                        self.skipped += 1;
                        continue;
                    }
                    return Some(Err(e));
                }
                Ok(d) => return Some(Ok(d)),
                Err(_) if self.skip_invalid => self.skipped += 1,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// A SQuAD article title as passages carry it: "Super_Bowl_50" → "Super Bowl 50".
pub fn squad_title(title: &str) -> String {
    title.replace('_', " ")
}
