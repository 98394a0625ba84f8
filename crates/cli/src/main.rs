//! # ragl
//!
//! The `ragl` command line: glue that turns arguments into library objects, runs them, and
//! prints results and errors. No ML logic lives here (see the library crates).
//!
//! Exit codes: 0 success, 1 failure of the machine or the run, 2 bad input (a usage error,
//! or a file that does not parse: the message names the file and the line).

mod backend;
mod commands;
mod plot;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ragl", version, about = "Retrieval-augmented language models (REALM, kNN-MT) end to end", long_about = None)]
struct Cli {
    /// Worker threads for CPU compute (default: all cores).
    #[arg(long, global = true, display_order = 1000)]
    threads: Option<usize>,
    /// Progress display on stderr: auto (a bar on a terminal, a plain line every 10 s
    /// otherwise), bar, plain, or none.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        display_order = 1001
    )]
    progress: progress::Mode,
    /// No progress display (summaries and errors still print).
    #[arg(long, short = 'q', global = true, display_order = 1002)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score translations (BLEU, chrF) and answers (exact match, F1).
    #[command(subcommand)]
    Eval(commands::eval::EvalCommand),
    /// Run the main job on data it generates itself (no download; ~1–3 min on 2 cores).
    Quickstart(commands::quickstart::QuickstartArgs),
    /// Embed texts with a BERT checkpoint (JSONL in, .npy + .ids out).
    Embed(commands::embed::EmbedArgs),
    /// Prepare a corpus: documents into passages.
    #[command(subcommand)]
    Corpus(commands::corpus::CorpusCommand),
    /// Salient spans for REALM's masking.
    #[command(subcommand)]
    Mask(commands::mask::MaskCommand),
    /// Build, merge, inspect and audit retrieval indexes (exact, HNSW, BM25).
    #[command(subcommand)]
    Index(commands::index::IndexCommand),
    /// Retrieve the top-k passages for each query from an index.
    Retrieve(commands::index::RetrieveArgs),
    /// Fuse retrieval runs (hybrid BM25 + dense) by reciprocal rank or normalised scores.
    Fuse(commands::index::FuseArgs),
    /// Train and run the translation model that kNN-MT builds on.
    #[command(subcommand)]
    Mt(commands::mt::MtCommand),
    /// kNN-MT: build datastores from a translation model and decode with them.
    #[command(subcommand)]
    Knnmt(commands::knnmt::KnnmtCommand),
    /// Language models (GPT-2 checkpoints and ragl's own): perplexity.
    #[command(subcommand)]
    Lm(commands::lm::LmCommand),
    /// kNN-LM: datastores of a language model's context vectors over text, and perplexity
    /// with them.
    #[command(subcommand)]
    Knnlm(commands::knnlm::KnnlmCommand),
    /// REALM pretraining: retrieval-marginalised masked LM with an asynchronously refreshed
    /// index.
    Pretrain(commands::pretrain::PretrainArgs),
    /// Fine-tune a query tower and span reader for open-domain QA over a fixed index.
    FinetuneQa(commands::finetune_qa::FinetuneArgs),
    /// Answer questions with a fine-tuned QA model: retrieve, read, best span.
    PredictQa(commands::finetune_qa::PredictArgs),
    /// QA data: seeded, article-stratified train/dev/test splits.
    #[command(subcommand)]
    Qa(commands::qa::QaCommand),
    /// Draw a PNG line chart from CSV columns (training curves, sweeps, size curves).
    Plot(plot::PlotArgs),
    /// Seeded toy data made by ragl itself (the quickstart's world and translation pair).
    #[command(subcommand)]
    Synth(commands::synth::SynthCommand),
    /// BERT checkpoints: random initialisation for training from scratch.
    #[command(subcommand)]
    Model(commands::synth::ModelCommand),
    /// Show the compute backend and run a small check on a device.
    Device(backend::DeviceArgs),
    /// Print a shell completion script (`ragl completions bash > ~/.local/share/bash-completion/completions/ragl`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

fn main() {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    progress::init(cli.progress, cli.quiet);
    if let Some(n) = cli.threads {
        // burn-flex and tokenizers both run on rayon's global pool.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let result = dispatch(cli.command);
    if let Err(e) = result {
        if closed_pipe(&e) {
            // The reader went away (`ragl retrieve … | head -1`): stop quietly, as Unix
            // filters do.
            std::process::exit(0);
        }
        eprintln!("error: {e:#}");
        std::process::exit(exit_code(&e));
    }
}

/// Whether `e` comes from writing to a pipe whose reader has gone.
fn closed_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    let json_pipe = |j: &serde_json::Error| j.io_error_kind() == Some(BrokenPipe);
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>().is_some_and(json_pipe)
            || c.downcast_ref::<ragl_core::Error>()
                .and_then(ragl_core::Error::io_kind)
                == Some(BrokenPipe)
            || matches!(
                c.downcast_ref::<ragl_mask::files::Error>(),
                Some(ragl_mask::files::Error::Write { error, .. }) if error.kind() == BrokenPipe
            )
    })
}

/// `println!` panics when stdout is a closed pipe; that is the end of the reader, not a
/// failure: exit 0 without a word. Any other panic keeps the default report.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Eval(c) => commands::eval::run(c),
        Command::Quickstart(a) => commands::quickstart::run(a),
        Command::Device(a) => backend::run(a),
        Command::Embed(a) => commands::embed::run(a),
        Command::Index(c) => commands::index::run(c),
        Command::Corpus(c) => commands::corpus::run(c),
        Command::Mask(c) => commands::mask::run(c),
        Command::Retrieve(a) => commands::index::retrieve(a),
        Command::Fuse(a) => commands::index::fuse(a),
        Command::Mt(c) => commands::mt::run(c),
        Command::Knnmt(c) => commands::knnmt::run(c),
        Command::Lm(c) => commands::lm::run(c),
        Command::Knnlm(c) => commands::knnlm::run(c),
        Command::Plot(a) => plot::run(a),
        Command::Qa(c) => commands::qa::run(c),
        Command::Pretrain(a) => commands::pretrain::run(a),
        Command::FinetuneQa(a) => commands::finetune_qa::finetune_cmd(a),
        Command::PredictQa(a) => commands::finetune_qa::predict_cmd(a),
        Command::Synth(c) => commands::synth::run(c),
        Command::Model(c) => commands::synth::model(c),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            // Into a buffer first: clap_complete panics on a write error, and a closed
            // pipe (`ragl completions bash | head`) is not an error.
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ragl", &mut buf);
            match std::io::stdout().write_all(&buf) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
    }
}

/// Runs one `ragl` command line (without the program name) in this process, as the shell
/// would: how `ragl quickstart` chains the stages a user can also run one by one.
pub fn run_args(args: &[String]) -> anyhow::Result<()> {
    let argv = std::iter::once("ragl".to_string()).chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| BadInput(e.to_string()))?;
    dispatch(cli.command)
}

/// 2 for bad input (what the user can fix in their files or flags), 1 otherwise.
fn exit_code(e: &anyhow::Error) -> i32 {
    // The first library error in the chain decides: each says whether it is bad input.
    macro_rules! decide {
        ($cause:expr, $($err:ty),*) => {
            $(if let Some(c) = $cause.downcast_ref::<$err>() {
                return if c.is_bad_input() { 2 } else { 1 };
            })*
        };
    }
    for cause in e.chain() {
        if cause.downcast_ref::<BadInput>().is_some() {
            return 2;
        }
        decide!(
            cause,
            ragl_core::Error,
            ragl_model::Error,
            ragl_index::Error,
            ragl_retriever::Error,
            ragl_knn::Error,
            ragl_realm::Error,
            ragl_mt::Error,
            ragl_lm::Error,
            ragl_eval::Error,
            ragl_mask::files::Error
        );
        // An OS error the CLI met itself (creating an output): the path's fault or the
        // machine's.
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return if ragl_core::error::bad_path(io.kind()) {
                2
            } else {
                1
            };
        }
    }
    1
}

/// Writes `dest` through a buffered temporary sibling that is renamed into place only when
/// `write` succeeds: a failed or interrupted run leaves no partial output behind. `-` is
/// stdout.
pub fn write_output(
    dest: &std::path::Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use ragl_core::atomic::WriteError;
    use std::io::Write as _;
    if dest == std::path::Path::new("-") {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        write(&mut w)?;
        w.flush()?;
        return Ok(());
    }
    ragl_core::atomic::write_atomic_with(dest, |w| write(w)).map_err(|e| match e {
        WriteError::Io(e) => e.into(),
        WriteError::Write(e) => e,
    })
}

/// A user error detected in the CLI itself (inconsistent files or flags).
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Returns early with a [`BadInput`] error.
#[macro_export]
macro_rules! bad_input {
    ($($t:tt)*) => { return Err(anyhow::Error::new($crate::BadInput(format!($($t)*)))) };
}

/// The command-line contract, checked over clap's whole command tree.
#[cfg(test)]
mod contract {
    use clap::CommandFactory as _;

    use super::Cli;

    /// Every argument of every command, with the command's path (`ragl index build`).
    fn arguments() -> Vec<(String, clap::Arg)> {
        fn walk(c: &clap::Command, path: String, out: &mut Vec<(String, clap::Arg)>) {
            for a in c.get_arguments() {
                out.push((path.clone(), a.clone()));
            }
            for s in c.get_subcommands() {
                walk(s, format!("{path} {}", s.get_name()), out);
            }
        }
        let mut out = Vec::new();
        walk(&Cli::command(), "ragl".into(), &mut out);
        out
    }

    #[test]
    fn every_argument_has_help_text() {
        let missing: Vec<String> = arguments()
            .into_iter()
            .filter(|(_, a)| !matches!(a.get_id().as_str(), "help" | "version"))
            .filter(|(_, a)| a.get_help().is_none() && a.get_long_help().is_none())
            .map(|(c, a)| format!("{c} {}", a.get_id()))
            .collect();
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }

    /// An output file of a command that writes records or text takes `-` for standard
    /// output and says so; images, `.npy` pairs and directories stay paths.
    #[test]
    fn every_text_output_takes_a_dash() {
        let paths = ["ragl plot", "ragl embed"];
        let bad: Vec<String> = arguments()
            .into_iter()
            .filter(|(c, a)| a.get_id() == "output" && !paths.contains(&c.as_str()))
            .filter(|(_, a)| {
                let help = a.get_long_help().or(a.get_help()).map(|h| h.to_string());
                !help.is_some_and(|h| h.contains("`-`") && h.contains("standard output"))
            })
            .map(|(c, _)| c)
            .collect();
        assert!(
            bad.is_empty(),
            "outputs that do not say `-` is standard output: {bad:?}"
        );
    }
}
