//! `ragl qa split`: seeded train/dev/test splits of QA data, stratified by article.

use std::path::PathBuf;

use anyhow::Result;
use ragl_core::qa::{Answer, split_stratified};
use ragl_core::read::Input;
use ragl_eval::qa_data::{GoldFormat, read_gold};

#[derive(clap::Subcommand)]
pub enum QaCommand {
    /// Split questions into train/dev/test by a seed, stratified by article (SQuAD title),
    /// as NQ-open JSONL that keeps id, title and context: `{"id","question","answer":[..],
    /// "title","context"}`. SQuAD-open's split for issue 6: `--dev 0.1 --test 0.2 --seed 1`.
    Split(SplitArgs),
}

#[derive(clap::Args)]
pub struct SplitArgs {
    /// QA file in any gold format `ragl eval qa` reads (SQuAD JSON for SQuAD-open).
    #[arg(short, long)]
    input: PathBuf,
    /// Directory for train.jsonl, dev.jsonl and test.jsonl.
    #[arg(long)]
    out_dir: PathBuf,
    /// Share of the articles in dev.
    #[arg(long, default_value_t = 0.1)]
    dev: f64,
    /// Share of the articles in test.
    #[arg(long, default_value_t = 0.2)]
    test: f64,
    /// Seed of the article shuffle.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(c: QaCommand) -> Result<()> {
    match c {
        QaCommand::Split(a) => split(a),
    }
}

fn split(a: SplitArgs) -> Result<()> {
    if !(0.0..1.0).contains(&a.dev) || !(0.0..1.0).contains(&a.test) || a.dev + a.test >= 1.0 {
        crate::bad_input!("--dev and --test are fractions in [0, 1) that leave room for train");
    }
    let input = Input::from_arg(&a.input);
    let format = GoldFormat::detect(&input)?;
    let examples = read_gold(&input, format)?;
    if let Some(e) = examples
        .iter()
        .find(|e| matches!(e.answer, Answer::Regex(_)))
    {
        crate::bad_input!(
            "{}: regex answers (CuratedTREC) cannot be written as NQ-open JSONL; that data set has its own train/test split",
            e.source
        );
    }
    std::fs::create_dir_all(&a.out_dir)?;
    let parts = split_stratified(&examples, a.dev, a.test, a.seed);
    let articles = examples
        .iter()
        .map(|e| e.title.as_deref())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    for (name, idx) in ["train", "dev", "test"].iter().zip(&parts) {
        let path = a.out_dir.join(format!("{name}.jsonl"));
        crate::write_output(&path, |w| {
            for &i in idx {
                let e = &examples[i];
                let Answer::Strings(answers) = &e.answer else {
                    unreachable!("regex answers refused above")
                };
                let row = serde_json::json!({
                    "id": e.id, "question": e.question, "answer": answers,
                    "title": e.title, "context": e.context,
                });
                serde_json::to_writer(&mut *w, &row)?;
                writeln!(w)?;
            }
            Ok(())
        })?;
    }
    eprintln!(
        "{} questions from {} articles ({}) → train {}, dev {}, test {} (seed {}, stratified by article) in {}",
        examples.len(),
        articles,
        format.name(),
        parts[0].len(),
        parts[1].len(),
        parts[2].len(),
        a.seed,
        a.out_dir.display()
    );
    Ok(())
}
