//! `ragl mask annotate`: salient spans for each passage.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};

use ragl_core::read::Input;
use ragl_mask::files::{self, MakeConfig, Pass, read_external_spans};

#[derive(Subcommand)]
pub enum MaskCommand {
    /// Find salient spans (entities, dates, numbers) in passages, or take them from a file.
    Annotate(AnnotateArgs),
    /// Pretraining examples: sentences with one salient span masked (or a baseline strategy).
    Make(MakeArgs),
}

#[derive(Args)]
pub struct MakeArgs {
    /// Annotated passages from `ragl mask annotate`; `-` (the default) is standard input.
    #[arg(short, long, default_value = "-")]
    input: PathBuf,
    /// Examples JSONL: {"id","passage_id","text","input_ids","masked_positions",
    /// "masked_ids","strategy","span"}; `-` (the default) is standard output.
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    /// Checkpoint directory whose tokenizer makes the input ids.
    #[arg(long)]
    tokenizer: PathBuf,
    /// salient (REALM), random-span, or random-token (BERT's 15%).
    #[arg(long, default_value = "salient")]
    strategy: ragl_mask::examples::Strategy,
    /// Seed of the span choice and of the random strategies.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Maximum tokens of an example, [CLS] and [SEP] included (longer sentences are cut).
    #[arg(long, default_value_t = 128)]
    max_len: usize,
}

#[derive(Args)]
pub struct AnnotateArgs {
    /// Passages JSONL (from `ragl corpus chunk`, or any {"id","text"[,"title"]}); `-` (the
    /// default) is standard input, read once: no gazetteer is mined from it.
    #[arg(short, long, default_value = "-")]
    input: PathBuf,
    /// Output JSONL: each input record with "spans": [{"start","end","type"}] added
    /// (character offsets into "text", end exclusive); `-` (the default) is standard output.
    #[arg(short, long, default_value = "-")]
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

fn annotate(a: AnnotateArgs) -> Result<()> {
    let input = Input::from_arg(&a.input);
    let t = Instant::now();
    let external = a.spans.as_deref().map(read_external_spans).transpose()?;
    let mine = external.is_none() && !a.no_mine && matches!(input, Input::File(_));
    let bar = crate::progress::spinner();
    bar.set_style(crate::progress::style(
        "{spinner} {msg} [{elapsed_precise}] {pos} passages  {rate}",
    ));
    bar.set_message(if mine { "mine gazetteer" } else { "annotate" });
    let mut pass = if mine { Pass::Mine } else { Pass::Annotate };
    let mut stats = None;
    crate::write_output(&a.output, |w| {
        let s = files::annotate(&input, w, &a.output, external.as_ref(), mine, |p, n| {
            if p != pass {
                pass = p;
                bar.set_position(0);
                bar.set_message("annotate");
            }
            bar.inc(n);
        })?;
        stats = Some(s);
        Ok(())
    })?;
    bar.finish_and_clear();
    let s = stats.expect("written");
    let secs = t.elapsed().as_secs_f64();
    let types: Vec<String> = s.by_type.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!(
        "annotated {} passages: {} salient spans ({}){} in {secs:.1}s ({:.2} MB/s of text)",
        s.passages,
        s.spans,
        types.join(", "),
        if mine {
            format!("; gazetteer of {} names mined first", s.gazetteer)
        } else {
            String::new()
        },
        s.bytes as f64 / 1e6 / secs
    );
    Ok(())
}

fn make(a: MakeArgs) -> Result<()> {
    use ragl_mask::examples::Specials;
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
    let cfg = MakeConfig {
        strategy: a.strategy,
        specials: Specials {
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            mask: id("[MASK]")?,
            vocab_size: tok.vocab_size() as u32,
        },
        max_len: a.max_len,
        seed: a.seed,
    };
    let input = Input::from_arg(&a.input);
    let t = Instant::now();
    let bar = crate::progress::spinner();
    bar.set_style(crate::progress::style(
        "{spinner} mask [{elapsed_precise}] {pos} passages  {rate}",
    ));
    let mut stats = None;
    crate::write_output(&a.output, |w| {
        let encode = |texts: &[&str]| tok.encode_offsets(texts).map_err(|e| e.to_string());
        stats = Some(files::make_examples(
            &input,
            w,
            &a.output,
            &cfg,
            encode,
            |n| bar.inc(n),
        )?);
        Ok(())
    })?;
    bar.finish_and_clear();
    let stats = stats.expect("written");
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
