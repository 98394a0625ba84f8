//! The two passes over JSONL files that `ragl mask annotate` and `ragl mask make` run:
//! passages → passages with salient spans (ragl's rules after mining a gazetteer from the
//! same file, or an external tagger's spans), and annotated passages → masked pretraining
//! examples. Both stream their input in blocks, work on a block in parallel, and write in
//! input order, so the output does not depend on the thread count.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use ragl_core::read::{Input, Jsonl, Line, Lines};
use rayon::prelude::*;

use crate::examples::{MakeStats, Rng, Sentence, Specials, Strategy, make};
use crate::{Annotator, Gazetteer, Span};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    #[error("writing {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The tokenizer failed on a block of sentences.
    #[error("tokenizing: {0}")]
    Tokenize(String),
}

impl Error {
    /// True when the user's input (not the machine) is at fault.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Write { error, .. } => ragl_core::error::bad_path(error.kind()),
            Error::Tokenize(_) => true,
        }
    }
}

type Record = serde_json::Map<String, serde_json::Value>;

/// One passage line as a JSON object with an `id` and a string `text`.
fn record(input: &Input, line: &Line) -> Result<Record> {
    let v: Record = serde_json::from_str(&line.text).map_err(|e| ragl_core::Error::Json {
        path: input.name(),
        line: line.number,
        message: format!(
            "{}; expected one passage a line, {{\"id\", \"text\"[, \"title\"]}}, as `ragl corpus chunk` writes",
            ragl_core::read::json_message(&e)
        ),
    })?;
    if !v.get("text").is_some_and(|t| t.is_string()) || !v.contains_key("id") {
        return Err(ragl_core::Error::format(
            input.name(),
            line.number,
            "a passage needs \"id\" and a string \"text\"",
        )
        .into());
    }
    Ok(v)
}

fn id_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Spans from an external tagger, by passage id, with the line that gave them.
pub type ExternalSpans = HashMap<String, (u64, Vec<Span>)>;

/// Reads external spans (`{"id", "spans": [{"start","end","type"}]}` JSONL), checking that
/// each passage's spans are ordered, non-overlapping and non-empty, and that no passage is
/// given twice (that they lie inside the text is checked when the passage is annotated).
pub fn read_external_spans(path: &Path) -> Result<ExternalSpans> {
    #[derive(serde::Deserialize)]
    struct Rec {
        id: serde_json::Value,
        spans: Vec<Span>,
    }
    let input = Input::from_arg(path);
    let bad = |line, message: &str| ragl_core::Error::format(input.name(), line, message);
    let mut out = HashMap::new();
    for r in Jsonl::<Rec>::open(&input)? {
        let (line, r) = r?;
        let id = id_text(&r.id);
        if r.spans.windows(2).any(|w| w[1].start < w[0].end) {
            return Err(bad(line, "spans overlap or are out of order").into());
        }
        if r.spans.iter().any(|s| s.end <= s.start) {
            return Err(bad(line, "a span has end <= start").into());
        }
        if out.insert(id.clone(), (line, r.spans)).is_some() {
            return Err(bad(line, &format!("passage {id} given twice")).into());
        }
    }
    Ok(out)
}

/// The two passes of [`annotate`], for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Mining the gazetteer from the input.
    Mine,
    Annotate,
}

/// What [`annotate`] did.
#[derive(Debug, Clone, Default)]
pub struct AnnotateStats {
    pub passages: u64,
    pub spans: u64,
    /// Bytes of passage text.
    pub bytes: u64,
    /// Spans by type (`PERSON`, `DATE`, …).
    pub by_type: BTreeMap<String, u64>,
    /// Names in the mined gazetteer (0 when none was mined).
    pub gazetteer: usize,
}

/// Writes each passage of `input` to `w` with `"spans"` added: `external`'s where given
/// (passages it lacks get none), else ragl's rules, after a first pass that mines a
/// gazetteer from the input itself when `mine` (a file can be read twice; stdin cannot).
/// `out` names the output in errors; `progress` hears of each passage done.
pub fn annotate(
    input: &Input,
    w: &mut dyn Write,
    out: &Path,
    external: Option<&ExternalSpans>,
    mine: bool,
    mut progress: impl FnMut(Pass, u64),
) -> Result<AnnotateStats> {
    let write_err = |error| Error::Write {
        path: out.to_path_buf(),
        error,
    };
    let mut gaz = Gazetteer::default();
    let mine = mine && external.is_none();
    if mine {
        for line in Lines::open(input)? {
            let line = line?;
            if line.text.trim().is_empty() {
                continue;
            }
            let v = record(input, &line)?;
            gaz.observe(
                v.get("title").and_then(|t| t.as_str()),
                v["text"].as_str().expect("checked by record"),
            );
            progress(Pass::Mine, 1);
        }
    }
    let ann = Annotator::new(gaz);
    let mut stats = AnnotateStats::default();
    let mut lines = Lines::open(input)?;
    loop {
        let mut batch = Vec::with_capacity(1024);
        for line in lines.by_ref().take(1024) {
            let line = line?;
            if !line.text.trim().is_empty() {
                batch.push((line.number, record(input, &line)?));
            }
        }
        if batch.is_empty() {
            break;
        }
        let annotated: Vec<Result<(Record, Vec<Span>)>> = batch
            .into_par_iter()
            .map(|(number, v)| {
                let text = v["text"].as_str().expect("checked by record");
                let found = match external {
                    Some(ext) => match ext.get(&id_text(&v["id"])) {
                        Some((_, s)) => {
                            let n = text.chars().count();
                            if let Some(bad) = s.iter().find(|s| s.end > n) {
                                return Err(ragl_core::Error::format(
                                    input.name(),
                                    number,
                                    format!(
                                        "external span {}..{} is beyond the text ({n} characters)",
                                        bad.start, bad.end
                                    ),
                                )
                                .into());
                            }
                            s.clone()
                        }
                        None => Vec::new(),
                    },
                    None => ann.annotate(text),
                };
                Ok((v, found))
            })
            .collect();
        for r in annotated {
            let (mut v, found) = r?;
            stats.passages += 1;
            stats.bytes += v["text"].as_str().expect("checked by record").len() as u64;
            stats.spans += found.len() as u64;
            for s in &found {
                *stats
                    .by_type
                    .entry(format!("{:?}", s.kind).to_uppercase())
                    .or_default() += 1;
            }
            v.insert(
                "spans".into(),
                serde_json::to_value(&found).expect("spans serialise"),
            );
            serde_json::to_writer(&mut *w, &v).map_err(|e| write_err(e.into()))?;
            w.write_all(b"\n").map_err(write_err)?;
            progress(Pass::Annotate, 1);
        }
    }
    if mine {
        stats.gazetteer = ann.gazetteer.len();
    }
    Ok(stats)
}

/// How [`make_examples`] masks.
#[derive(Debug, Clone, Copy)]
pub struct MakeConfig {
    pub strategy: Strategy,
    pub specials: Specials,
    /// Tokens of an example, `[CLS]` and `[SEP]` included.
    pub max_len: usize,
    pub seed: u64,
}

/// Word-piece ids and their character offsets, one entry per text.
pub type Encodings = Vec<(Vec<u32>, Vec<(usize, usize)>)>;

/// Writes the masked examples of every sentence of the annotated passages of `input` to
/// `w` (JSONL). `encode` tokenises a block of sentences (the model's tokenizer: this crate
/// knows none); `progress` hears of the passages done.
pub fn make_examples(
    input: &Input,
    w: &mut dyn Write,
    out: &Path,
    cfg: &MakeConfig,
    encode: impl Fn(&[&str]) -> std::result::Result<Encodings, String>,
    mut progress: impl FnMut(u64),
) -> Result<MakeStats> {
    let write_err = |error| Error::Write {
        path: out.to_path_buf(),
        error,
    };
    let mut rng = Rng::new(cfg.seed);
    let mut stats = MakeStats::default();
    let mut lines = Lines::open(input)?;
    loop {
        let mut batch = Vec::with_capacity(512);
        for line in lines.by_ref().take(512) {
            let line = line?;
            if line.text.trim().is_empty() {
                continue;
            }
            let v = record(input, &line)?;
            let spans: Vec<Span> = match v.get("spans") {
                Some(s) => serde_json::from_value(s.clone()).map_err(|e| {
                    ragl_core::Error::format(
                        input.name(),
                        line.number,
                        format!("bad \"spans\": {e}"),
                    )
                })?,
                None => {
                    return Err(ragl_core::Error::format(
                        input.name(),
                        line.number,
                        "no \"spans\": run `ragl mask annotate` first",
                    )
                    .into());
                }
            };
            let text = v["text"].as_str().expect("checked by record").to_owned();
            batch.push((id_text(&v["id"]), text, spans));
        }
        if batch.is_empty() {
            return Ok(stats);
        }
        // Sentences of every passage, tokenised in one parallel batch:
        // (passage, character start, index into `texts`).
        let mut sents: Vec<(usize, usize, usize)> = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        for (i, (_, text, _)) in batch.iter().enumerate() {
            for (s, e) in ragl_corpus::sentences::split(text) {
                sents.push((i, text[..s].chars().count(), texts.len()));
                texts.push(&text[s..e]);
            }
        }
        let encs = encode(&texts).map_err(Error::Tokenize)?;
        let mut n_in_passage = vec![0usize; batch.len()];
        for &(i, char_start, k) in &sents {
            let (pid, _, spans) = &batch[i];
            let (ids, offs) = &encs[k];
            let s = Sentence {
                text: texts[k],
                char_start,
                ids,
                offsets: offs,
            };
            if let Some(e) = make(
                pid,
                n_in_passage[i],
                &s,
                spans,
                cfg.strategy,
                cfg.specials,
                cfg.max_len,
                &mut rng,
                &mut stats,
            ) {
                n_in_passage[i] += 1;
                serde_json::to_writer(&mut *w, &e).map_err(|e| write_err(e.into()))?;
                w.write_all(b"\n").map_err(write_err)?;
            }
        }
        stats.passages += batch.len() as u64;
        progress(batch.len() as u64);
    }
}
