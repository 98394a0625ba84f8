//! Streaming readers for line-aligned text, JSONL and TSV.
//!
//! All three read one line at a time (memory bounded by the longest line), split on `\n`
//! only (a `\r` stays part of the line, as with Python's `open(newline="\n")`), accept a last
//! line without a final newline, and report errors as `file:line: message`. The path `-`
//! means standard input.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Where text comes from: a file, or standard input (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn from_arg(arg: impl AsRef<Path>) -> Self {
        let p = arg.as_ref();
        if p == Path::new("-") {
            Input::Stdin
        } else {
            Input::File(p.to_path_buf())
        }
    }

    /// The name used in error messages.
    pub fn name(&self) -> PathBuf {
        match self {
            Input::Stdin => PathBuf::from("<stdin>"),
            Input::File(p) => p.clone(),
        }
    }

    pub fn open(&self) -> Result<Box<dyn BufRead>> {
        Ok(match self {
            Input::Stdin => Box::new(BufReader::with_capacity(1 << 16, std::io::stdin())),
            Input::File(p) => {
                let f = File::open(p).map_err(|e| Error::io(p, e))?;
                Box::new(BufReader::with_capacity(1 << 16, f))
            }
        })
    }

    /// The first line (without its line break), for format detection, leaving the input
    /// unread: on stdin it is peeked from the process's stdin buffer (up to its 8 KiB, enough
    /// to tell a format), so the reader opened next still sees every byte.
    pub fn first_line(&self) -> Result<String> {
        let bytes = match self {
            Input::Stdin => {
                let mut lock = std::io::stdin().lock();
                let buf = lock.fill_buf().map_err(|e| Error::io(self.name(), e))?;
                let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
                buf[..end].to_vec()
            }
            Input::File(_) => {
                let mut v = Vec::new();
                self.open()?
                    .read_until(b'\n', &mut v)
                    .map_err(|e| Error::io(self.name(), e))?;
                if v.last() == Some(&b'\n') {
                    v.pop();
                }
                v
            }
        };
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The whole input as one string (for formats that are a single JSON document).
    pub fn read_to_string(&self) -> Result<String> {
        let mut bytes = Vec::new();
        self.open()?
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(self.name(), e))?;
        String::from_utf8(bytes).map_err(|e| {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count() as u64;
            let offset = good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            Error::Utf8 {
                path: self.name(),
                line,
                offset,
            }
        })
    }
}

/// One line of input, without its `\n`, and its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: u64,
    pub text: String,
}

/// Iterator over the lines of an [`Input`].
pub struct Lines {
    name: PathBuf,
    reader: Box<dyn BufRead>,
    number: u64,
    buf: Vec<u8>,
    done: bool,
}

impl Lines {
    pub fn open(input: &Input) -> Result<Self> {
        Ok(Lines {
            name: input.name(),
            reader: input.open()?,
            number: 0,
            buf: Vec::new(),
            done: false,
        })
    }

    /// The file name used in errors.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Reads everything into memory, for callers that need random access (metrics
    /// over a whole test set).
    pub fn read_all(input: &Input) -> Result<Vec<String>> {
        Lines::open(input)?.map(|l| l.map(|l| l.text)).collect()
    }
}

impl Iterator for Lines {
    type Item = Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Err(e) => {
                self.done = true;
                Some(Err(Error::io(&self.name, e)))
            }
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                self.number += 1;
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                }
                let bytes = std::mem::take(&mut self.buf);
                Some(match String::from_utf8(bytes) {
                    Ok(text) => Ok(Line {
                        number: self.number,
                        text,
                    }),
                    Err(e) => {
                        self.done = true;
                        Err(Error::Utf8 {
                            path: self.name.clone(),
                            line: self.number,
                            offset: e.utf8_error().valid_up_to(),
                        })
                    }
                })
            }
        }
    }
}

/// Streams JSONL records of type `T`. Blank lines are not records and are passed over;
/// anything else that does not parse is an error naming the line.
pub struct Jsonl<T> {
    lines: Lines,
    _t: std::marker::PhantomData<T>,
}

impl<T: DeserializeOwned> Jsonl<T> {
    pub fn open(input: &Input) -> Result<Self> {
        Ok(Jsonl {
            lines: Lines::open(input)?,
            _t: std::marker::PhantomData,
        })
    }
}

impl<T: DeserializeOwned> Iterator for Jsonl<T> {
    /// The record and its line number.
    type Item = Result<(u64, T)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.lines.next()? {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            if line.text.trim().is_empty() {
                continue;
            }
            return Some(
                serde_json::from_str::<T>(&line.text)
                    .map(|v| (line.number, v))
                    .map_err(|e| Error::Json {
                        path: self.lines.name.clone(),
                        line: line.number,
                        message: format!("{e}"),
                    }),
            );
        }
    }
}

/// Streams TSV rows (fields split on `\t`; no quoting, as in the QA and MT data sets).
/// With `columns` set, a row with another number of fields is an error.
pub struct Tsv {
    lines: Lines,
    columns: Option<usize>,
}

impl Tsv {
    pub fn open(input: &Input, columns: Option<usize>) -> Result<Self> {
        Ok(Tsv {
            lines: Lines::open(input)?,
            columns,
        })
    }
}

impl Iterator for Tsv {
    /// The fields and the line number.
    type Item = Result<(u64, Vec<String>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.lines.next()? {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            let text = line.text.strip_suffix('\r').unwrap_or(&line.text);
            if text.is_empty() {
                continue;
            }
            let fields: Vec<String> = text.split('\t').map(str::to_owned).collect();
            if let Some(n) = self.columns
                && fields.len() != n
            {
                return Some(Err(Error::format(
                    &self.lines.name,
                    line.number,
                    format!("expected {n} tab-separated fields, found {}", fields.len()),
                )));
            }
            return Some(Ok((line.number, fields)));
        }
    }
}

/// Parses a whole-file JSON document; errors carry serde's line number.
pub fn read_json<T: DeserializeOwned>(input: &Input) -> Result<T> {
    let text = input.read_to_string()?;
    serde_json::from_str(&text).map_err(|e| Error::Json {
        path: input.name(),
        line: e.line() as u64,
        message: format!("{e}"),
    })
}

/// serde_json's message without its "at line L column C" (the line is the file's own, and
/// a column in a long line is no help).
pub fn json_message(e: &serde_json::Error) -> String {
    let m = e.to_string();
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m,
    }
}

/// Reads a TOML file into `T` (a run config): a syntax error or an unknown or mistyped
/// field is a `file:line` error naming the line where it starts.
pub fn toml_file<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start].matches('\n').count() as u64 + 1)
            .unwrap_or(0);
        Error::format(path, line, e.message())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn last_line_without_newline_is_read() {
        let f = file(b"a\nb\r\nc");
        let lines = Lines::read_all(&Input::from_arg(f.path())).unwrap();
        assert_eq!(lines, ["a", "b\r", "c"]);
    }

    #[test]
    fn empty_file_has_no_lines_and_trailing_newline_adds_none() {
        assert!(
            Lines::read_all(&Input::from_arg(file(b"").path()))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            Lines::read_all(&Input::from_arg(file(b"x\n").path())).unwrap(),
            ["x"]
        );
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let f = file(b"ok\nbad \xff here\n");
        let err = Lines::read_all(&Input::from_arg(f.path())).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.ends_with(":2: invalid UTF-8 (byte offset 4 in the line)"),
            "{msg}"
        );
        let err = Input::from_arg(f.path())
            .read_to_string()
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2: invalid UTF-8 (byte offset 4"), "{err}");
    }

    #[test]
    fn jsonl_errors_name_the_line_and_blank_lines_are_not_records() {
        #[derive(serde::Deserialize)]
        struct R {
            #[allow(dead_code)]
            id: u32,
        }
        let f = file(b"{\"id\":1}\n\n{\"id\":2}\n{\"id\":\n");
        let rows: Vec<_> = Jsonl::<R>::open(&Input::from_arg(f.path()))
            .unwrap()
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].as_ref().unwrap().0, 3);
        let msg = rows[2].as_ref().err().unwrap().to_string();
        assert!(msg.contains(":4: invalid JSON"), "{msg}");
    }

    #[test]
    fn tsv_checks_the_column_count() {
        let f = file(b"1\ta\tb\n2\ta\n");
        let rows: Vec<_> = Tsv::open(&Input::from_arg(f.path()), Some(3))
            .unwrap()
            .collect();
        assert_eq!(rows[0].as_ref().unwrap().1, ["1", "a", "b"]);
        let msg = rows[1].as_ref().err().unwrap().to_string();
        assert!(
            msg.contains(":2: expected 3 tab-separated fields, found 2"),
            "{msg}"
        );
    }
}
