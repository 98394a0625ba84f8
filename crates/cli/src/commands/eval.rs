//! `ragl eval bleu|chrf|qa`: arguments → ragl-eval objects → printed scores.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use ragl_core::read::Input;
use ragl_eval::bleu::{Bleu, BleuConfig, Smooth};
use ragl_eval::chrf::{Chrf, ChrfConfig};
use ragl_eval::qa_data::GoldFormat;
use ragl_eval::tokenize::Tokenizer;
use serde_json::json;

use ragl_eval::files::{qa_score, read_text, recall_report};

use crate::bad_input;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Corpus (or sentence) BLEU, identical to sacrebleu 2.6.0.
    Bleu(BleuArgs),
    /// chrF, or chrF++ with --word-order 2, identical to sacrebleu 2.6.0.
    Chrf(ChrfArgs),
    /// Exact match and F1 of QA predictions (SQuAD / NQ-open normalisation, regex answers).
    Qa(QaArgs),
    /// Answer recall@k of a retrieval run: does a top-k passage contain a gold answer?
    Retrieval(RetrievalArgs),
}

#[derive(Args)]
pub struct RetrievalArgs {
    /// Gold QA file (any format `ragl eval qa` reads).
    #[arg(long)]
    gold: PathBuf,
    /// Run file from `ragl retrieve` (JSONL or TREC); `-` (the default) is standard input.
    #[arg(long, default_value = "-")]
    retrieved: PathBuf,
    /// The passages JSONL the index was built from.
    #[arg(long)]
    passages: PathBuf,
    /// Cut-offs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,5,20,100")]
    k: Vec<usize>,
    /// Gold format; detected from the file when omitted.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(GoldFormat::NAMES))]
    format: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments shared by the translation metrics.
#[derive(Args)]
pub struct TextArgs {
    /// Reference files, line-aligned with the hypotheses (several for multi-reference).
    #[arg(required = true, value_name = "REF")]
    refs: Vec<PathBuf>,
    /// Hypothesis file; `-` (the default) reads standard input.
    #[arg(short = 'i', long = "input", default_value = "-", value_name = "HYP")]
    input: PathBuf,
    /// Score each sentence on its own (one line each; the signature goes to stderr).
    #[arg(long, visible_alias = "sl")]
    sentence_level: bool,
    /// Print JSON instead of sacrebleu's text line.
    #[arg(long)]
    json: bool,
    /// Decimals of the printed score.
    #[arg(short = 'w', long, default_value_t = 2)]
    width: usize,
    /// Print only the score.
    #[arg(short = 'b', long)]
    score_only: bool,
    /// Case-insensitive scoring.
    #[arg(long, visible_alias = "lc")]
    lowercase: bool,
}

#[derive(Args)]
pub struct BleuArgs {
    #[command(flatten)]
    text: TextArgs,
    /// Tokenizer: 13a (mteval-v13a, WMT's), intl (mteval-v14), char, none.
    #[arg(long = "tokenize", visible_alias = "tok", default_value = "13a",
          value_parser = clap::builder::PossibleValuesParser::new(Tokenizer::NAMES))]
    tokenize: String,
    /// Smoothing method.
    #[arg(short = 's', long, default_value = "exp",
          value_parser = clap::builder::PossibleValuesParser::new(Smooth::NAMES))]
    smooth_method: String,
    /// Smoothing value for floor (default 0.1) and add-k (default 1).
    #[arg(long)]
    smooth_value: Option<f64>,
}

#[derive(Args)]
pub struct ChrfArgs {
    #[command(flatten)]
    text: TextArgs,
    /// Character n-gram order.
    #[arg(long, default_value_t = 6)]
    char_order: usize,
    /// Word n-gram order (2 gives chrF++).
    #[arg(long, default_value_t = 0)]
    word_order: usize,
    /// Weight of recall against precision.
    #[arg(long, default_value_t = 2)]
    beta: u32,
    /// Keep whitespace in character n-grams.
    #[arg(long)]
    whitespace: bool,
    /// Epsilon smoothing (chrF++.py, NLTK, Moses) instead of effective order.
    #[arg(long)]
    eps_smoothing: bool,
}

#[derive(Args)]
pub struct QaArgs {
    /// Gold file: NQ-open/EfficientQA JSONL, WebQuestions JSON, CuratedTREC TSV or SQuAD JSON.
    #[arg(long)]
    gold: PathBuf,
    /// Predictions: JSONL {"id" or "question", "prediction"} or SQuAD's {id: prediction};
    /// `-` (the default) is standard input.
    #[arg(long, default_value = "-")]
    pred: PathBuf,
    /// Gold format; detected from the file when omitted.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(GoldFormat::NAMES))]
    format: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(c: EvalCommand) -> Result<()> {
    match c {
        EvalCommand::Bleu(a) => bleu(a),
        EvalCommand::Chrf(a) => chrf(a),
        EvalCommand::Qa(a) => qa(a),
        EvalCommand::Retrieval(a) => retrieval(a),
    }
}

/// Hypotheses and reference streams, read as sacrebleu reads them (`line.rstrip()`), with
/// their line counts checked against each other.
fn inputs(t: &TextArgs) -> (Input, Vec<Input>) {
    (
        Input::from_arg(&t.input),
        t.refs.iter().map(Input::from_arg).collect(),
    )
}

fn bleu(a: BleuArgs) -> Result<()> {
    let t = &a.text;
    let config = BleuConfig {
        tokenizer: Tokenizer::from_name(&a.tokenize).expect("clap checked the name"),
        lowercase: t.lowercase,
        smooth: Smooth::from_name(&a.smooth_method, a.smooth_value).expect("clap checked the name"),
        effective_order: t.sentence_level,
    };
    let (hyp, refs) = inputs(t);
    let data = read_text(&hyp, &refs)?;
    let bleu = Bleu::new(config);
    let sig = bleu.signature(refs.len()).to_string();
    let print = |s: &ragl_eval::bleu::BleuScore| {
        if t.json {
            let mut v = serde_json::to_value(s).expect("score serialises");
            v["signature"] = json!(sig);
            println!("{v}");
        } else if t.score_only {
            println!("{:.*}", t.width, s.score);
        } else {
            println!("{}", s.format(t.width));
        }
    };
    if t.sentence_level {
        for (i, h) in data.hyps.iter().enumerate() {
            let seg: Vec<&str> = data.refs.iter().map(|r| r[i].as_str()).collect();
            print(&bleu.score(&bleu.segment_stats(h, &bleu.reference_info(&seg))));
        }
        eprintln!("{sig}");
    } else {
        print(&bleu.corpus_score(&data.hyps, &data.refs));
        if !t.json && !t.score_only {
            println!("{sig}");
        }
    }
    Ok(())
}

fn chrf(a: ChrfArgs) -> Result<()> {
    let t = &a.text;
    if a.char_order == 0 && a.word_order == 0 {
        bad_input!("--char-order and --word-order cannot both be 0");
    }
    let chrf = Chrf::new(ChrfConfig {
        char_order: a.char_order,
        word_order: a.word_order,
        beta: a.beta,
        lowercase: t.lowercase,
        whitespace: a.whitespace,
        eps_smoothing: a.eps_smoothing,
    });
    let (hyp, refs) = inputs(t);
    let data = read_text(&hyp, &refs)?;
    let sig = chrf.signature(refs.len()).to_string();
    let print = |s: &ragl_eval::chrf::ChrfScore| {
        if t.json {
            let mut v = serde_json::to_value(s).expect("score serialises");
            v["signature"] = json!(sig);
            println!("{v}");
        } else if t.score_only {
            println!("{:.*}", t.width, s.score);
        } else {
            println!("{}", s.format(t.width));
        }
    };
    if t.sentence_level {
        for (i, h) in data.hyps.iter().enumerate() {
            let seg: Vec<&str> = data.refs.iter().map(|r| r[i].as_str()).collect();
            print(&chrf.score(&chrf.segment_stats(h, &seg)));
        }
        eprintln!("{sig}");
    } else {
        print(&chrf.corpus_score(&data.hyps, &data.refs));
        if !t.json && !t.score_only {
            println!("{sig}");
        }
    }
    Ok(())
}

/// Scores a prediction file against gold answers, as `ragl eval qa` does.
fn qa(a: QaArgs) -> Result<()> {
    let format = a
        .format
        .as_deref()
        .map(|f| GoldFormat::from_name(f).expect("clap checked the name"));
    let (score, format) = qa_score(&a.gold, format, &a.pred)?;
    if a.json {
        let mut v = serde_json::to_value(&score)?;
        v["format"] = json!(format.name());
        println!("{v}");
    } else {
        let f1 = score
            .f1
            .map_or("n/a (regex answers)".to_owned(), |f| format!("{f:.2}"));
        println!(
            "EM = {:.2}  F1 = {}  ({} of {} correct, {})",
            score.exact_match,
            f1,
            score.correct,
            score.total,
            format.name()
        );
    }
    Ok(())
}

/// Answer recall@k of a retrieval run, as `ragl eval retrieval` computes it.
fn retrieval(a: RetrievalArgs) -> Result<()> {
    let format = a
        .format
        .as_deref()
        .map(|f| GoldFormat::from_name(f).expect("clap checked the name"));
    let r = recall_report(&a.gold, format, &a.retrieved, &a.passages, &a.k)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    for (k, v) in r.ks.iter().zip(&r.recall) {
        let note = if *k > r.depth {
            format!("  (the run has only {} hits per query)", r.depth)
        } else {
            String::new()
        };
        println!("recall@{k:<4} {:6.2}{note}", 100.0 * v);
    }
    println!("questions   {}", r.questions);
    Ok(())
}
