//! `ragl mask annotate`: salient spans for each passage.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ragl_core::read::{Input, Lines};
use ragl_mask::{Annotator, Gazetteer, Span};
use rayon::prelude::*;

#[derive(Subcommand)]
pub enum MaskCommand {
    /// Find salient spans (entities, dates, numbers) in passages, or take them from a file.
    Annotate(AnnotateArgs),
    /// Pretraining examples: sentences with one salient span masked (or a baseline strategy).
    Make(MakeArgs),
}

#[derive(Args)]
pub struct MakeArgs {
    /// Annotated passages from `ragl mask annotate`.
    #[arg(long)]
    input: PathBuf,
    /// Examples JSONL: {"id","passage_id","text","input_ids","masked_positions",
    /// "masked_ids","strategy","span"}.
    #[arg(long)]
    output: PathBuf,
    /// Checkpoint directory whose tokenizer makes the input ids.
    #[arg(long)]
    tokenizer: PathBuf,
    /// salient (REALM), random-span, or random-token (BERT's 15%).
    #[arg(long, default_value = "salient")]
    strategy: ragl_mask::examples::Strategy,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Maximum tokens of an example, [CLS] and [SEP] included (longer sentences are cut).
    #[arg(long, default_value_t = 128)]
    max_len: usize,
}

#[derive(Args)]
pub struct AnnotateArgs {
    /// Passages JSONL (from `ragl corpus chunk`, or any {"id","text"[,"title"]}).
    #[arg(long)]
    input: PathBuf,
    /// Output JSONL: each input record with "spans": [{"start","end","type"}] added
    /// (character offsets into "text", end exclusive).
    #[arg(long)]
    output: PathBuf,
    /// Spans from an external tagger instead of ragl's rules: JSONL {"id", "spans":
    /// [{"start","end","type"}]} keyed by passage id; passages it lacks get no spans.
    #[arg(long)]
    spans: Option<PathBuf>,
    /// Do not mine a gazetteer from the input first (one pass; needed for stdin).
    #[arg(long)]
    no_mine: bool,
}

pub fn run(c: MaskCommand) -> Result<()> {
    match c {
        MaskCommand::Annotate(a) => annotate(a),
        MaskCommand::Make(a) => make(a),
    }
}

type Record = serde_json::Map<String, serde_json::Value>;

fn record(
    input: &Input,
    line: &ragl_core::read::Line,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&line.text).map_err(|e| ragl_core::Error::Json {
            path: input.name(),
            line: line.number,
            message: e.to_string(),
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

fn id_of(v: &serde_json::Map<String, serde_json::Value>) -> String {
    match &v["id"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads external spans, checking that they are ordered, non-overlapping and inside texts
/// (checked against the passage when it is annotated).
fn external_spans(p: &PathBuf) -> Result<HashMap<String, (u64, Vec<Span>)>> {
    #[derive(serde::Deserialize)]
    struct Rec {
        id: serde_json::Value,
        spans: Vec<Span>,
    }
    let input = Input::from_arg(p);
    let mut out = HashMap::new();
    for r in ragl_core::read::Jsonl::<Rec>::open(&input)? {
        let (line, r) = r?;
        let id = match r.id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        for w in r.spans.windows(2) {
            if w[1].start < w[0].end {
                return Err(ragl_core::Error::format(
                    input.name(),
                    line,
                    "spans overlap or are out of order",
                )
                .into());
            }
        }
        if r.spans.iter().any(|s| s.end <= s.start) {
            return Err(
                ragl_core::Error::format(input.name(), line, "a span has end <= start").into(),
            );
        }
        if out.insert(id.clone(), (line, r.spans)).is_some() {
            return Err(ragl_core::Error::format(
                input.name(),
                line,
                format!("passage {id} given twice"),
            )
            .into());
        }
    }
    Ok(out)
}

fn annotate(a: AnnotateArgs) -> Result<()> {
    let input = Input::from_arg(&a.input);
    let t = Instant::now();
    let external = a.spans.as_ref().map(external_spans).transpose()?;
    let mut gaz = Gazetteer::default();
    let mine = external.is_none() && !a.no_mine && matches!(input, Input::File(_));
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{elapsed_precise}] {pos} passages  {per_sec}",
        )
        .expect("template"),
    );
    if mine {
        bar.set_message("mine gazetteer");
        for line in Lines::open(&input)? {
            let line = line?;
            if line.text.trim().is_empty() {
                continue;
            }
            let v = record(&input, &line)?;
            gaz.observe(
                v.get("title").and_then(|t| t.as_str()),
                v["text"].as_str().unwrap(),
            );
            bar.inc(1);
        }
        bar.set_position(0);
    }
    let ann = Annotator::new(gaz);
    bar.set_message("annotate");
    let (mut passages, mut spans, mut bytes) = (0u64, 0u64, 0u64);
    let mut by_type: std::collections::BTreeMap<String, u64> = Default::default();
    let mut lines = Lines::open(&input)?;
    crate::write_output(&a.output, |w| {
        loop {
            let mut batch = Vec::with_capacity(1024);
            for line in lines.by_ref().take(1024) {
                let line = line?;
                if !line.text.trim().is_empty() {
                    batch.push((line.number, record(&input, &line)?));
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            let annotated: Vec<Result<(Record, Vec<Span>)>> = batch
                .into_par_iter()
                .map(|(number, v)| {
                    let text = v["text"].as_str().unwrap();
                    let found = match &external {
                        Some(ext) => match ext.get(&id_of(&v)) {
                            Some((_, s)) => {
                                let n = text.chars().count();
                                if let Some(bad) = s.iter().find(|s| s.end > n) {
                                    return Err(ragl_core::Error::format(input.name(), number, format!("external span {}..{} is beyond the text ({n} characters)", bad.start, bad.end)).into());
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
                passages += 1;
                bytes += v["text"].as_str().unwrap().len() as u64;
                spans += found.len() as u64;
                for s in &found {
                    *by_type
                        .entry(format!("{:?}", s.kind).to_uppercase())
                        .or_default() += 1;
                }
                v.insert("spans".into(), serde_json::to_value(&found)?);
                serde_json::to_writer(&mut *w, &v)?;
                w.write_all(b"\n")?;
                bar.inc(1);
            }
        }
    })?;
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    let types: Vec<String> = by_type.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!(
        "annotated {passages} passages: {spans} salient spans ({}){} in {secs:.1}s ({:.2} MB/s of text)",
        types.join(", "),
        if mine {
            format!("; gazetteer of {} names mined first", ann.gazetteer.len())
        } else {
            String::new()
        },
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}

fn make(a: MakeArgs) -> Result<()> {
    use ragl_mask::examples::{MakeStats, Rng, Sentence, Specials, make};
    if a.max_len < 8 {
        crate::bad_input!("--max-len must be at least 8");
    }
    let tok = ragl_model::tokenizer::TextTokenizer::from_dir(&a.tokenizer, a.max_len)?;
    let id = |t: &str| {
        tok.token_to_id(t).ok_or_else(|| {
            anyhow::Error::new(crate::BadInput(format!(
                "{}: the tokenizer has no {t} token",
                a.tokenizer.display()
            )))
        })
    };
    let sp = Specials {
        cls: id("[CLS]")?,
        sep: id("[SEP]")?,
        mask: id("[MASK]")?,
        vocab_size: tok.vocab_size() as u32,
    };
    let input = Input::from_arg(&a.input);
    let t = Instant::now();
    let mut rng = Rng::new(a.seed);
    let mut stats = MakeStats::default();
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} mask [{elapsed_precise}] {pos} passages  {per_sec}",
        )
        .expect("template"),
    );
    let mut lines = Lines::open(&input)?;
    crate::write_output(&a.output, |w| {
        loop {
            let mut batch = Vec::with_capacity(512);
            for line in lines.by_ref().take(512) {
                let line = line?;
                if line.text.trim().is_empty() {
                    continue;
                }
                let v = record(&input, &line)?;
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
                batch.push((id_of(&v), v["text"].as_str().unwrap().to_owned(), spans));
            }
            if batch.is_empty() {
                return Ok(());
            }
            // Sentences of every passage, tokenised in one parallel batch.
            let mut sents: Vec<(usize, usize, usize)> = Vec::new(); // (passage, char start, byte range index)
            let mut texts: Vec<&str> = Vec::new();
            for (i, (_, text, _)) in batch.iter().enumerate() {
                for (s, e) in ragl_corpus::sentences::split(text) {
                    sents.push((i, text[..s].chars().count(), texts.len()));
                    texts.push(&text[s..e]);
                }
            }
            let encs = tok.encode_offsets(&texts)?;
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
                    a.strategy,
                    sp,
                    a.max_len,
                    &mut rng,
                    &mut stats,
                ) {
                    n_in_passage[i] += 1;
                    serde_json::to_writer(&mut *w, &e)?;
                    w.write_all(b"\n")?;
                }
            }
            stats.passages += batch.len() as u64;
            bar.inc(batch.len() as u64);
        }
    })?;
    bar.finish_and_clear();
    eprintln!(
        "{} passages, {} sentences → {} examples ({} salient, {} random-span fallbacks for sentences without a salient span, {} too short, {} cut to {} tokens) in {:.1}s",
        stats.passages,
        stats.sentences,
        stats.examples,
        stats.salient,
        stats.fallback,
        stats.too_short,
        stats.truncated,
        a.max_len,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
