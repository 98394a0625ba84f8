//! Passages: the unit of retrieval. One JSONL record `{"id","text"}` or
//! `{"id","title","text"}` per line (the output of `ragl corpus chunk`, and what `ragl embed`
//! and `ragl index build` read). Ids may be JSON strings or numbers and are kept as strings;
//! they are written one per line in index artifacts, so a newline inside one is refused.

use std::path::PathBuf;

use serde::Deserialize;

use crate::read::{Input, Lines};
use crate::{Error, Result};

/// One passage, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// 1-based line number in the input (for error messages downstream).
    pub line: u64,
    pub id: String,
    pub title: Option<String>,
    pub text: String,
}

impl Passage {
    /// The text pair an encoder sees: `(title, Some(text))` when titled, else `(text, None)`,
    /// so that titled passages are encoded as `[CLS] title [SEP] text [SEP]`.
    pub fn encoder_pair(&self) -> (String, Option<String>) {
        match &self.title {
            Some(t) if !t.is_empty() => (t.clone(), Some(self.text.clone())),
            _ => (self.text.clone(), None),
        }
    }
}

#[derive(Deserialize)]
struct Record {
    id: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    text: String,
}

/// Streams the passages of a JSONL input. Blank lines are skipped. An empty `text` is an
/// error naming its line unless `skip_empty`, in which case the passage is skipped and
/// counted in [`Passages::skipped`].
pub struct Passages {
    name: PathBuf,
    lines: Lines,
    skip_empty: bool,
    pub skipped: u64,
}

/// What to do about a line that is not a passage record.
fn passage_hint(text: &str) -> &'static str {
    let t = text.trim_start();
    if t.starts_with('{') && t.contains("\"data\"") && t.contains("\"paragraphs\"") {
        "this is SQuAD JSON, not passages: make passages with `ragl corpus chunk -i FILE --tokenizer MODEL`"
    } else {
        "expected one passage a line, {\"id\", \"text\"[, \"title\"]}, as `ragl corpus chunk` writes"
    }
}

impl Passages {
    pub fn open(input: &Input, skip_empty: bool) -> Result<Self> {
        Ok(Passages {
            name: input.name(),
            lines: Lines::open(input)?,
            skip_empty,
            skipped: 0,
        })
    }

    fn parse(&self, number: u64, text: &str) -> Result<Option<Passage>> {
        let r: Record = serde_json::from_str(text).map_err(|e| Error::Json {
            path: self.name.clone(),
            line: number,
            message: format!("{}; {}", crate::read::json_message(&e), passage_hint(text)),
        })?;
        let bad = |m: String| Error::format(&self.name, number, m);
        let id = match r.id {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(bad(format!(
                    "\"id\" must be a string or a number, got {other}"
                )));
            }
        };
        if id.contains('\n') || id.is_empty() {
            return Err(bad("\"id\" is empty or contains a newline".into()));
        }
        if r.text.trim().is_empty() {
            if self.skip_empty {
                return Ok(None);
            }
            return Err(bad(
                "empty \"text\" (use --skip-invalid to skip and count such records)".into(),
            ));
        }
        Ok(Some(Passage {
            line: number,
            id,
            title: r.title,
            text: r.text,
        }))
    }
}

impl Iterator for Passages {
    type Item = Result<Passage>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.lines.next()? {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            if line.text.trim().is_empty() {
                continue;
            }
            match self.parse(line.number, &line.text) {
                Ok(Some(p)) => return Some(Ok(p)),
                Ok(None) => self.skipped += 1,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Number of non-blank lines of a file (the passage count, for progress bars and shards);
/// `None` for standard input, which cannot be read twice.
pub fn count(input: &Input) -> Result<Option<u64>> {
    match input {
        Input::Stdin => Ok(None),
        Input::File(_) => {
            let mut n = 0;
            for l in Lines::open(input)? {
                if !l?.text.trim().is_empty() {
                    n += 1;
                }
            }
            Ok(Some(n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(s: &str) -> (tempfile::TempDir, Input) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p.jsonl");
        std::fs::write(&p, s).unwrap();
        (d, Input::File(p))
    }

    #[test]
    fn reads_ids_titles_and_skips_blank_lines() {
        let (_d, inp) =
            write("{\"id\":\"a\",\"title\":\"T\",\"text\":\"x y\"}\n\n{\"id\":7,\"text\":\"z\"}");
        let ps: Vec<_> = Passages::open(&inp, false)
            .unwrap()
            .map(|p| p.unwrap())
            .collect();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].encoder_pair(), ("T".into(), Some("x y".into())));
        assert_eq!((ps[1].id.as_str(), ps[1].line), ("7", 3));
        assert_eq!(count(&inp).unwrap(), Some(2));
    }

    #[test]
    fn errors_name_the_line() {
        let (_d, inp) = write("{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\" \"}\n");
        let e = Passages::open(&inp, false)
            .unwrap()
            .find_map(|p| p.err())
            .unwrap();
        assert!(e.to_string().contains("p.jsonl:2: empty"), "{e}");
        let mut it = Passages::open(&inp, true).unwrap();
        assert_eq!(it.by_ref().count(), 1);
        assert_eq!(it.skipped, 1);
        let (_d, inp) = write("{\"id\":[1],\"text\":\"x\"}\n");
        let e = Passages::open(&inp, false)
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains(":1: \"id\" must be"), "{e}");
    }
}
