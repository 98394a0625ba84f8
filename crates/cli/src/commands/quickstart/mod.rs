//! `ragl quickstart`: the README's main job. With no download and no data from anywhere
//! else, it shows both papers working in about ten minutes on a laptop CPU: it generates a
//! fictional encyclopedia and a two-domain translation pair (`ragl synth`), then runs the
//! same `ragl` commands a user would, one stage at a time, each with its own progress
//! display: chunk → annotate → mask → pretrain (ICT warm start, then REALM) → index →
//! fine-tune QA with retrieval and closed-book → predict → score; train a translation model
//! → build a kNN datastore on the new domain → tune λ → evaluate. It ends with a summary
//! table (also `summary.md`) and PNG plots in the run directory. Every command it runs is
//! printed, so any stage can be rerun by hand.
//!
//! `--metrics-only` keeps the old seconds-long job: scoring the sample translations and
//! answers compiled into the binary (data/sample).

mod configs;
mod metrics_only;
mod pipeline;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use configs::{mt_config, orqa_config, qa_config, realm_config};
use pipeline::{Pipeline, cmd};

/// Written into the run directory; a directory holding it may be replaced by a new run.
const MARKER: &str = "quickstart.json";

#[derive(clap::Args)]
pub struct QuickstartArgs {
    /// Run directory: generated data, models, runs, PNG plots and summary.md. Replaced
    /// when it holds an earlier quickstart run; any other existing directory is refused.
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// Seed of the generated data and of every stage.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Every stage with a handful of steps on a tiny world: checks that the pipeline runs
    /// (~2 s on 2 cores); its numbers mean nothing.
    #[arg(long)]
    smoke: bool,
    /// Only score the sample translations and answers compiled into the binary (~0.01 s).
    #[arg(long)]
    metrics_only: bool,
}

/// How much of everything: the full run, or `--smoke`.
struct Size {
    people: usize,
    cities: usize,
    orgs: usize,
    general: usize,
    medical: usize,
    mixed: usize,
    mt_dev: usize,
    mt_test: usize,
    ict_steps: u64,
    realm_steps: u64,
    realm_eval: u64,
    heldout: usize,
    qa_steps: u64,
    mt_minutes: f64,
    mt_steps: u64,
    lambdas: &'static str,
}

const FULL: Size = Size {
    people: 240,
    cities: 24,
    orgs: 12,
    general: 12_000,
    medical: 3_000,
    mixed: 150,
    mt_dev: 200,
    mt_test: 300,
    ict_steps: 60,
    realm_steps: 100,
    realm_eval: 50,
    heldout: 150,
    qa_steps: 200,
    mt_minutes: 5.0,
    mt_steps: 220,
    lambdas: "0.2,0.4,0.6,0.8",
};

const SMOKE: Size = Size {
    people: 24,
    cities: 4,
    orgs: 3,
    general: 300,
    medical: 100,
    mixed: 10,
    mt_dev: 10,
    mt_test: 10,
    ict_steps: 3,
    realm_steps: 3,
    realm_eval: 0,
    heldout: 8,
    qa_steps: 3,
    mt_minutes: 1.0,
    mt_steps: 3,
    lambdas: "0.5",
};

pub fn run(a: QuickstartArgs) -> Result<()> {
    if a.metrics_only {
        return metrics_only::metrics_only();
    }
    let size = if a.smoke { &SMOKE } else { &FULL };
    if a.out.exists() {
        if !a.out.join(MARKER).is_file() {
            crate::bad_input!(
                "{} exists and is not a quickstart run directory; choose another --out",
                a.out.display()
            );
        }
        std::fs::remove_dir_all(&a.out)
            .with_context(|| format!("removing the earlier run {}", a.out.display()))?;
    }
    std::fs::create_dir_all(&a.out)?;
    ragl_core::atomic::write_bytes_atomic(
        &a.out.join(MARKER),
        serde_json::json!({"seed": a.seed, "smoke": a.smoke, "ragl_version": env!("CARGO_PKG_VERSION")})
            .to_string()
            .as_bytes(),
    )?;
    let t0 = Instant::now();
    let mut q = Pipeline {
        out: a.out.clone(),
        times: Vec::new(),
    };
    let seed = a.seed.to_string();
    eprintln!(
        "ragl quickstart: REALM and kNN-MT end to end on data generated here (seed {seed}), in {}",
        a.out.display()
    );

    // ---- Data.
    let (world, mt) = (q.p("data/world"), q.p("data/mt"));
    q.stage(
        "generate data",
        &[
            cmd(&[
                "synth",
                "world",
                "--out",
                &world,
                "--seed",
                &seed,
                "--people",
                &size.people.to_string(),
                "--cities",
                &size.cities.to_string(),
                "--organisations",
                &size.orgs.to_string(),
            ]),
            cmd(&[
                "synth",
                "parallel",
                "--out",
                &mt,
                "--seed",
                &seed,
                "--general-train",
                &size.general.to_string(),
                "--medical-in-general",
                &size.mixed.to_string(),
                "--medical-train",
                &size.medical.to_string(),
                "--dev",
                &size.mt_dev.to_string(),
                "--test",
                &size.mt_test.to_string(),
            ]),
        ],
    )?;

    // ---- REALM: corpus, masking, pretraining.
    let (tower, reader) = (q.p("models/tower"), q.p("models/reader"));
    let vocab = format!("{world}/vocab.txt");
    let passages = q.p("data/world/passages.jsonl");
    let ann = q.p("data/world/annotated.jsonl");
    let examples = q.p("data/world/examples.jsonl");
    q.stage(
        "chunk, annotate, mask",
        &[
            cmd(&[
                "model",
                "init",
                "--vocab",
                &vocab,
                "--out",
                &tower,
                "--layers",
                "2",
                "--hidden",
                "128",
                "--heads",
                "2",
                "--max-positions",
                "128",
                "--seed",
                &seed,
            ]),
            cmd(&[
                "model",
                "init",
                "--vocab",
                &vocab,
                "--out",
                &reader,
                "--layers",
                "2",
                "--hidden",
                "128",
                "--heads",
                "2",
                "--max-positions",
                "256",
                "--mlm",
                "--seed",
                &(a.seed + 1).to_string(),
            ]),
            cmd(&[
                "corpus",
                "chunk",
                "--input",
                &format!("{world}/docs.jsonl"),
                "--output",
                &passages,
                "--tokenizer",
                &tower,
                "--max-tokens",
                "64",
            ]),
            cmd(&["mask", "annotate", "--input", &passages, "--output", &ann]),
            cmd(&[
                "mask",
                "make",
                "--input",
                &ann,
                "--output",
                &examples,
                "--tokenizer",
                &tower,
                "--strategy",
                "salient",
                "--seed",
                &seed,
            ]),
        ],
    )?;
    let realm_cfg = q.write_config(
        "configs/realm.toml",
        "REALM pretraining of the quickstart: BERTs of 2 layers trained from scratch on the \
         generated world; ICT warm-starts the retriever first. The refresh runs in place \
         (\"sync\"): the corpus re-embeds in half a second here, and the numbers then depend \
         on the seed alone.",
        &realm_config(size, a.seed, &examples, &passages, &tower, &reader),
    )?;
    let orqa_cfg = q.write_config(
        "configs/orqa.toml",
        "The ORQA start REALM is compared with: the same ICT warm start of the towers, then the \
         reader trained on the same masked sentences for the same steps without retrieval (BERT's \
         own MLM), so the towers never see the masked-LM signal.",
        &orqa_config(size, a.seed, &examples, &passages, &tower, &reader),
    )?;
    let (realm, orqa) = (q.p("realm"), q.p("orqa"));
    q.stage(
        "pretrain (ICT, then REALM; the ORQA start beside it)",
        &[
            cmd(&["pretrain", "--config", &realm_cfg, "--run", &realm]),
            cmd(&["pretrain", "--config", &orqa_cfg, "--run", &orqa]),
        ],
    )?;

    // ---- Retrieval: the REALM and ORQA towers' indexes, and BM25.
    let (dense, orqa_index, bm25) = (q.p("index-dense"), q.p("index-orqa"), q.p("index-bm25"));
    let qa = q.p("data/qa");
    let test = format!("{qa}/test.jsonl");
    let (run_dense, run_orqa, run_bm25) = (
        q.p("retrieval/dense.run"),
        q.p("retrieval/orqa.run"),
        q.p("retrieval/bm25.run"),
    );
    let dense_index = |run: &str, out: &str| {
        cmd(&[
            "index",
            "build",
            "--passages",
            &passages,
            "--model",
            &format!("{run}/export/doc"),
            "--query-model",
            &format!("{run}/export/query"),
            "--pooling",
            "mean",
            "--normalize",
            "yes",
            "--max-len",
            "64",
            "--out",
            out,
        ])
    };
    let retrieve = |index: &str, out: &str| {
        cmd(&[
            "retrieve",
            "--index",
            index,
            "--queries",
            &test,
            "--k",
            "20",
            "-o",
            out,
        ])
    };
    q.stage(
        "index and retrieve",
        &[
            dense_index(&realm, &dense),
            dense_index(&orqa, &orqa_index),
            cmd(&[
                "index",
                "build",
                "--passages",
                &passages,
                "--kind",
                "bm25",
                "--out",
                &bm25,
            ]),
            cmd(&[
                "qa",
                "split",
                "-i",
                &format!("{world}/qa.json"),
                "--out-dir",
                &qa,
                "--dev",
                "0.25",
                "--test",
                "0.25",
                "--seed",
                &seed,
            ]),
            retrieve(&dense, &run_dense),
            retrieve(&orqa_index, &run_orqa),
            retrieve(&bm25, &run_bm25),
        ],
    )?;
    let ks = [1usize, 2, 3, 5, 10, 20];
    let recall = |run: &str| {
        ragl_eval::files::recall_report(
            Path::new(&test),
            None,
            Path::new(run),
            Path::new(&passages),
            &ks,
        )
    };
    let (recall_dense, recall_orqa, recall_bm25) =
        (recall(&run_dense)?, recall(&run_orqa)?, recall(&run_bm25)?);
    let series = |name: &str, r: &ragl_eval::retrieval::RecallReport| crate::plot::Series {
        name: name.into(),
        points: r
            .ks
            .iter()
            .zip(&r.recall)
            .map(|(&k, &v)| (k as f64, 100.0 * v))
            .collect(),
    };
    crate::plot::line_chart(
        &a.out.join("recall.png"),
        "Answer recall@k on the test questions: REALM-pretrained vs ICT-only (ORQA) towers, BM25",
        "k (passages retrieved)",
        "recall@k (%)",
        &[
            series("dense, ICT + REALM towers", &recall_dense),
            series("dense, ICT-only towers (ORQA)", &recall_orqa),
            series("BM25", &recall_bm25),
        ],
        true,
    )?;

    // ---- Open-domain QA: retrieval vs closed-book.
    let qa_cfg = |k: usize, index: &str, run: &str| {
        qa_config(
            size,
            a.seed,
            k,
            &qa,
            &passages,
            index,
            &format!("{run}/export/reader"),
        )
    };
    let qa_note = "Open-domain QA of the quickstart: the span reader and the query tower start \
                   from the REALM-pretrained run; k = 0 is the closed-book baseline.";
    let orqa_note = "Open-domain QA from the ORQA start: ICT-only towers and a reader trained \
                     without retrieval, fine-tuned exactly as the REALM start is.";
    let cfg_ret = q.write_config(
        "configs/qa-retrieval.toml",
        qa_note,
        &qa_cfg(3, &dense, &realm),
    )?;
    let cfg_cb = q.write_config(
        "configs/qa-closed-book.toml",
        qa_note,
        &qa_cfg(0, &dense, &realm),
    )?;
    let cfg_orqa = q.write_config(
        "configs/qa-orqa.toml",
        orqa_note,
        &qa_cfg(3, &orqa_index, &orqa),
    )?;
    let (qa_ret, qa_cb, qa_orqa) = (q.p("qa-retrieval"), q.p("qa-closed-book"), q.p("qa-orqa"));
    q.stage(
        "fine-tune QA",
        &[
            cmd(&["finetune-qa", "--config", &cfg_ret, "--run", &qa_ret]),
            cmd(&["finetune-qa", "--config", &cfg_cb, "--run", &qa_cb]),
            cmd(&["finetune-qa", "--config", &cfg_orqa, "--run", &qa_orqa]),
        ],
    )?;
    let (pred_ret, pred_cb, pred_orqa) = (
        q.p("qa-retrieval/test.pred.jsonl"),
        q.p("qa-closed-book/test.pred.jsonl"),
        q.p("qa-orqa/test.pred.jsonl"),
    );
    q.stage(
        "predict and score QA",
        &[
            cmd(&[
                "predict-qa",
                "--checkpoint",
                &format!("{qa_ret}/best"),
                "--passages",
                &passages,
                "--questions",
                &test,
                "--k",
                "3",
                "-o",
                &pred_ret,
            ]),
            cmd(&[
                "predict-qa",
                "--checkpoint",
                &format!("{qa_cb}/best"),
                "--passages",
                &passages,
                "--questions",
                &test,
                "--k",
                "0",
                "-o",
                &pred_cb,
            ]),
            cmd(&[
                "predict-qa",
                "--checkpoint",
                &format!("{qa_orqa}/best"),
                "--passages",
                &passages,
                "--questions",
                &test,
                "--k",
                "3",
                "-o",
                &pred_orqa,
            ]),
            cmd(&["eval", "qa", "--gold", &test, "--pred", &pred_ret]),
            cmd(&["eval", "qa", "--gold", &test, "--pred", &pred_cb]),
            cmd(&["eval", "qa", "--gold", &test, "--pred", &pred_orqa]),
        ],
    )?;
    let em = |pred: &str| ragl_eval::files::qa_score(Path::new(&test), None, Path::new(pred));
    let ((em_ret, _), (em_cb, _), (em_orqa, _)) = (em(&pred_ret)?, em(&pred_cb)?, em(&pred_orqa)?);

    // ---- kNN-MT.
    let mt_cfg = q.write_config(
        "configs/mt.toml",
        "The quickstart's translation model: general domain only. No dropout: its masks come \
         from the backend's one generator, which the data-parallel workers draw from in \
         whatever order they run; without it the numbers depend on the seed alone.",
        &mt_config(size, a.seed, &mt),
    )?;
    let (mt_run, ds) = (q.p("mt"), q.p("datastore-medical"));
    q.stage(
        "train the translation model",
        &[cmd(&["mt", "train", "--config", &mt_cfg, "--run", &mt_run])],
    )?;
    q.stage(
        "build the kNN datastore (medical)",
        &[cmd(&[
            "knnmt",
            "build",
            "--model",
            &mt_run,
            "--src",
            &format!("{mt}/medical.train.src"),
            "--tgt",
            &format!("{mt}/medical.train.tgt"),
            "--out",
            &ds,
            // One graph thread: a concurrent build depends on thread timing, and the
            // quickstart's numbers should depend on the seed alone.
            "--graph-threads",
            "1",
        ])],
    )?;
    let (sweep_json, test_json) = (q.p("knnmt/sweep-dev.json"), q.p("knnmt/test.json"));
    std::fs::create_dir_all(a.out.join("knnmt"))?;
    q.stage(
        "tune λ on medical dev",
        &[cmd(&[
            "knnmt",
            "eval",
            "--model",
            &mt_run,
            "--datastore",
            &ds,
            "-i",
            &format!("{mt}/medical.dev.src"),
            "--ref",
            &format!("{mt}/medical.dev.tgt"),
            "--sweep",
            "--lambdas",
            size.lambdas,
            "--ks",
            "8",
            "--temperatures",
            "10",
            "--plot",
            &q.p("bleu_vs_lambda.png"),
            "--report",
            &sweep_json,
        ])],
    )?;
    let best = read_json(&sweep_json)?;
    // The sweep stores f32 λ; print it as the flag was written (0.8, not 0.800000011920929).
    let lambda = best["best"]["lambda"].as_f64().unwrap_or(0.5) as f32;
    q.stage(
        "kNN-MT on medical test",
        &[cmd(&[
            "knnmt",
            "eval",
            "--model",
            &mt_run,
            "--datastore",
            &ds,
            "-i",
            &format!("{mt}/medical.test.src"),
            "--ref",
            &format!("{mt}/medical.test.tgt"),
            "--k",
            "8",
            "--temperature",
            "10",
            "--lambda",
            &format!("{lambda}"),
            "-o",
            &q.p("knnmt/medical.test.hyp"),
            "--report",
            &test_json,
        ])],
    )?;
    let tj = read_json(&test_json)?;
    let bleu_base = tj["base"]["bleu"].as_f64().unwrap_or(f64::NAN);
    let bleu_knn = tj["best"]["bleu"].as_f64().unwrap_or(f64::NAN);

    // ---- Plots of the training curves and the summary.
    let chart = |csv: String, y: &str, title: &str, smooth: usize, out: &str| {
        crate::plot::run(crate::plot::PlotArgs {
            csv: csv.into(),
            x: "step".into(),
            y: vec![y.into()],
            group: None,
            title: title.into(),
            log_x: false,
            smooth,
            output: a.out.join(out),
        })
    };
    chart(
        format!("{qa_ret}/metrics.csv"),
        "loss",
        "QA fine-tuning with retrieval: training loss (moving mean of 10 steps)",
        10,
        "qa_loss.png",
    )?;
    chart(
        format!("{mt_run}/metrics.csv"),
        "nll",
        "Translation model (general domain): training NLL (moving mean of 10 steps)",
        10,
        "mt_loss.png",
    )?;

    // The last held-out evaluation, by column name.
    let eval = std::fs::read_to_string(format!("{realm}/eval.csv"))?;
    let mut rows = eval.lines();
    let header: Vec<&str> = rows.next().unwrap_or("").split(',').collect();
    let last: Vec<&str> = rows.last().unwrap_or("").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| last.get(i)?.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let total = t0.elapsed().as_secs_f64();
    let at = |k: usize, r: &ragl_eval::retrieval::RecallReport| {
        r.ks.iter()
            .position(|&x| x == k)
            .map_or(f64::NAN, |i| 100.0 * r.recall[i])
    };
    let mut md = String::new();
    writeln!(
        md,
        "# ragl quickstart (seed {}{})
",
        a.seed,
        if a.smoke {
            ", smoke run: numbers mean nothing"
        } else {
            ""
        }
    )?;
    writeln!(md, "| paper | measure (test set) | without | with | gain |")?;
    writeln!(md, "|---|---|---|---|---|")?;
    writeln!(
        md,
        "| REALM | open-domain QA exact match, {} questions: closed-book (∅ only) vs retrieval (k 3) | {:.2} | {:.2} | {:+.2} |",
        em_ret.total,
        em_cb.exact_match,
        em_ret.exact_match,
        em_ret.exact_match - em_cb.exact_match
    )?;
    writeln!(
        md,
        "| REALM | open-domain QA exact match, {} questions (k 3): ORQA start (ICT-only towers, reader without retrieval) vs REALM start | {:.2} | {:.2} | {:+.2} |",
        em_ret.total,
        em_orqa.exact_match,
        em_ret.exact_match,
        em_ret.exact_match - em_orqa.exact_match
    )?;
    writeln!(
        md,
        "| REALM | held-out masked-token accuracy (%), {} sentences: ∅ only vs retrieval | {:.2} | {:.2} | {:+.2} |",
        col("examples") as usize,
        col("null_token_acc"),
        col("token_acc"),
        col("token_acc") - col("null_token_acc")
    )?;
    writeln!(
        md,
        "| REALM | answer recall@5 of the test questions: ICT-only towers (ORQA) vs after REALM pretraining (BM25: {:.2}) | {:.2} | {:.2} | {:+.2} |",
        at(5, &recall_bm25),
        at(5, &recall_orqa),
        at(5, &recall_dense),
        at(5, &recall_dense) - at(5, &recall_orqa)
    )?;
    writeln!(
        md,
        "| kNN-MT | BLEU on the new (medical) domain, {} sentences: base vs kNN-MT (k 8, λ {lambda}, T 10) | {:.2} | {:.2} | {:+.2} |",
        tj["sentences"],
        bleu_base,
        bleu_knn,
        bleu_knn - bleu_base
    )?;
    writeln!(
        md,
        "
| stage | seconds |
|---|---|"
    )?;
    for (name, secs) in &q.times {
        writeln!(md, "| {name} | {secs:.1} |")?;
    }
    writeln!(md, "| **total** | **{total:.1}** |")?;
    writeln!(md, "
Plots: recall.png, bleu_vs_lambda.png, qa_loss.png, mt_loss.png, realm/ict.png, realm/loss.png, realm/utility.png, realm/heldout_accuracy.png, realm/staleness.png")?;
    let summary = a.out.join("summary.md");
    ragl_core::atomic::write_bytes_atomic(&summary, md.as_bytes())?;
    let summary = summary.display();
    println!(
        "
{md}"
    );
    println!("Run directory: {} (summary: {summary})", a.out.display());
    Ok(())
}

fn read_json(path: &str) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {path}"))
}
