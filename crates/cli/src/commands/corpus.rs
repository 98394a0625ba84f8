//! `ragl corpus chunk`: documents → passages within the encoder's token budget.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};

use ragl_core::read::Input;
use ragl_corpus::chunk::{ChunkConfig, Chunker};
use ragl_corpus::document::{DocFormat, Documents};
use ragl_model::tokenizer::TextTokenizer;

#[derive(Subcommand)]
pub enum CorpusCommand {
    /// Split documents into passages of whole sentences that fit the token budget.
    Chunk(ChunkArgs),
}

#[derive(Args)]
pub struct ChunkArgs {
    /// Documents: JSONL {"id","title","text"}, TSV id<TAB>title<TAB>text, or a SQuAD JSON
    /// file (each paragraph a document `Title:n`); `-` (the default) reads standard input,
    /// its format detected from its first line as a file's is.
    #[arg(short, long, default_value = "-")]
    input: PathBuf,
    /// Passages JSONL {"id","doc_id","title","text","char_start","char_end","tokens"}; `-`
    /// (the default) is standard output.
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    /// Checkpoint directory whose tokenizer counts the tokens (tokenizer.json or vocab.txt).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Token budget of `[CLS] title [SEP] text [SEP]` (REALM: 288).
    #[arg(long, default_value_t = 288)]
    max_tokens: usize,
    /// Tokens of overlap between consecutive passages of a document (whole sentences).
    #[arg(long, default_value_t = 0)]
    stride: usize,
    /// auto, jsonl, tsv or squad.
    #[arg(long, default_value = "auto", value_parser = ["auto", "jsonl", "tsv", "squad"])]
    format: String,
    /// Skip (and count) malformed lines instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
}

pub fn run(c: CorpusCommand) -> Result<()> {
    match c {
        CorpusCommand::Chunk(a) => chunk(a),
    }
}

fn chunk(a: ChunkArgs) -> Result<()> {
    if a.max_tokens < 16 {
        crate::bad_input!("--max-tokens must be at least 16");
    }
    if a.stride >= a.max_tokens / 2 {
        crate::bad_input!("--stride must be less than half of --max-tokens");
    }
    let input = Input::from_arg(&a.input);
    let format = match a.format.as_str() {
        "jsonl" => DocFormat::Jsonl,
        "tsv" => DocFormat::Tsv,
        "squad" => DocFormat::Squad,
        _ => DocFormat::detect(&input)?,
    };
    let tok = TextTokenizer::from_dir(&a.tokenizer, 8)?;
    let mut docs = Documents::open(&input, format, a.skip_invalid)?;
    let mut chunker = Chunker::new(
        ChunkConfig {
            max_tokens: a.max_tokens,
            stride: a.stride,
        },
        |texts: &[&str]| {
            tok.count_tokens(texts)
                .map_err(|e| ragl_core::Error::format(&a.tokenizer, 0, e.to_string()))
        },
    );
    let bar = crate::progress::spinner();
    bar.set_style(crate::progress::style(
        "{spinner} chunk [{elapsed_precise}] {pos} documents  {rate}",
    ));
    let t = Instant::now();
    let mut bytes = 0u64;
    let mut batch = Vec::with_capacity(512);
    crate::write_output(&a.output, |w| {
        loop {
            batch.clear();
            for d in docs.by_ref().take(512) {
                let d = d?;
                bytes += d.text.len() as u64;
                batch.push(d);
            }
            if batch.is_empty() {
                return Ok(());
            }
            chunker.chunk(&batch, |p| {
                serde_json::to_writer(&mut *w, &p)
                    .map_err(|e| ragl_core::Error::io(&a.output, e.into()))?;
                w.write_all(b"\n")
                    .map_err(|e| ragl_core::Error::io(&a.output, e))
            })?;
            bar.inc(batch.len() as u64);
        }
    })?;
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    let s = &chunker.stats;
    if s.passages == 0 {
        crate::bad_input!(
            "{}: no passages (no non-empty documents)",
            input.name().display()
        );
    }
    eprintln!(
        "{} documents ({} empty, {} skipped) → {} passages ({} exact duplicates dropped, {} over-long sentences cut at words, {} titles cut) in {:.1}s ({:.2} MB/s of text)",
        s.documents,
        s.empty_documents,
        docs.skipped,
        s.passages,
        s.duplicates,
        s.split_sentences,
        s.cut_titles,
        secs,
        bytes as f64 / 1e6 / secs
    );
    eprintln!(
        "tokens per passage ([CLS] title [SEP] text [SEP], budget {}): p10 {}  p50 {}  p90 {}  p99 {}  max {}",
        a.max_tokens,
        s.percentile(10.0),
        s.percentile(50.0),
        s.percentile(90.0),
        s.percentile(99.0),
        s.percentile(100.0)
    );
    Ok(())
}
