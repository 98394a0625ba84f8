//! `ragl pretrain`: REALM pretraining (the loop and model live in `ragl_realm::pretrain`),
//! with a progress bar and the run's curves drawn as PNGs at the end.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;

use ragl_realm::pretrain::{self, PretrainConfig};

use crate::backend::DeviceSpec;

#[derive(clap::Args)]
pub struct PretrainArgs {
    /// TOML config (see configs/realm/).
    #[arg(long)]
    config: PathBuf,
    /// Run directory: config.json, metrics.csv, eval.csv, checkpoint/, export/, *.png. An
    /// existing run with the same configuration resumes from its checkpoint.
    #[arg(long)]
    run: PathBuf,
    /// Stop after this many steps (the learning-rate schedule still follows the config).
    #[arg(long)]
    stop_after: Option<u64>,
    /// Stop after this many minutes (overrides the config; a checkpoint is written).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Only draw the plots of an existing run.
    #[arg(long)]
    plot_only: bool,
    /// cpu, or cuda[:N] (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

pub fn run(a: PretrainArgs) -> Result<()> {
    if a.plot_only {
        return plots(&a.run);
    }
    crate::backend::with_device!(a.device, B, device, run_pretrain::<B>(&a, device))
}

fn run_pretrain<B: Backend>(a: &PretrainArgs, device: B::Device) -> Result<()>
where
    ragl_model::bert::Bert<B>: Send + 'static,
{
    let mut cfg = PretrainConfig::from_toml(&a.config)?;
    if a.max_minutes.is_some() {
        cfg.train.max_minutes = a.max_minutes;
    }
    let bar = crate::progress::bar(cfg.train.max_steps);
    bar.set_style(crate::progress::style(
        "{spinner} pretrain [{elapsed_precise}] {wide_bar} step {pos}/{len} {msg}  ETA {eta}",
    ));
    let s = pretrain::pretrain_with_ict::<Autodiff<B>>(
        &cfg,
        &a.run,
        &device,
        a.stop_after,
        |r| {
            bar.set_position(r.step);
            bar.set_message(format!(
                "loss {:.3} acc {:.1}% utility {:.3} index {} steps old, {} refreshes",
                r.loss, r.accuracy, r.utility, r.staleness, r.refreshes
            ));
            if r.step.is_multiple_of(25) && bar.is_hidden() {
                eprintln!(
                    "step {}/{}: loss {:.3} acc {:.1}% utility {:.3} staleness {} refreshes {}",
                    r.step, r.total, r.loss, r.accuracy, r.utility, r.staleness, r.refreshes
                );
            }
        },
        |e| {
            crate::commands::mt::say(
                &bar,
                format!(
                    "step {}: held-out ({} examples) loss {:.3}, token accuracy {:.2}% (null document only {:.2}%), span accuracy {:.2}% (null {:.2}%), utility {:.3}, RU of the top document {:.3}; the span is in a retrieved document for {:.1}% (the first one {:.1}%, any passage {:.1}%); RU of a retrieved document that holds the span {:.3}, of one that does not {:.3}; p(∅|x) {:.3}, p(z|x) on documents that hold the span {:.3}",
                    e.step,
                    e.examples,
                    e.loss,
                    e.token_accuracy,
                    e.null_token_accuracy,
                    e.span_accuracy,
                    e.null_span_accuracy,
                    e.utility,
                    e.ru_top,
                    e.span_hit,
                    e.top_hit,
                    e.span_in_corpus,
                    e.ru_held,
                    e.ru_other,
                    e.p_null,
                    e.p_held
                ),
            )
        },
        |r| {
            bar.set_message(format!(
                "ICT warm start {}/{}: loss {:.3}, in-batch accuracy {:.0}%",
                r.step, r.total, r.loss, r.accuracy
            ));
            bar.tick();
            if r.step.is_multiple_of(25) && bar.is_hidden() {
                eprintln!(
                    "ICT step {}/{}: loss {:.3} in-batch accuracy {:.0}%",
                    r.step, r.total, r.loss, r.accuracy
                );
            }
        },
    )?;
    bar.finish_and_clear();
    if s.examples_kept < s.examples_read {
        eprintln!(
            "data.span_elsewhere: {} of {} examples have their masked span in another passage",
            s.examples_kept, s.examples_read
        );
    }
    eprintln!(
        "{} steps{} in {:.1} min, {} index refreshes{}; run in {}",
        s.steps,
        s.resumed_from
            .map(|r| format!(" (resumed at {r})"))
            .unwrap_or_default(),
        s.minutes,
        s.refreshes,
        if cfg.refresh.swap_after > 0 {
            format!(
                " (swapped in {} steps after their snapshots; training waited {:.1} s for them)",
                cfg.refresh.swap_after, s.refresh_wait_secs
            )
        } else {
            String::new()
        },
        a.run.display()
    );
    plots(&a.run)
}

/// Training curves, held-out accuracy and staleness as PNGs in the run directory.
fn plots(run: &Path) -> Result<()> {
    let metrics = run.join("metrics.csv");
    let eval = run.join("eval.csv");
    let chart = |csv: &Path, y: &[&str], title: &str, smooth: usize, out: &str| {
        crate::plot::run(crate::plot::PlotArgs {
            csv: csv.to_path_buf(),
            x: "step".into(),
            y: y.iter().map(|s| s.to_string()).collect(),
            group: None,
            title: title.into(),
            log_x: false,
            smooth,
            output: run.join(out),
        })
    };
    // A run stopped before its first step (--stop-after 0: the held-out evaluation of a
    // model) has no training curves.
    let trained = std::fs::read_to_string(&metrics).is_ok_and(|t| t.lines().nth(1).is_some());
    if trained {
        chart(
            &metrics,
            &["loss"],
            "REALM pretraining: training loss −log p(y|x) (moving mean of 25 steps)",
            25,
            "loss.png",
        )?;
        chart(
            &metrics,
            &["utility", "ru_top"],
            "Retrieval utility log p(y|x) − log p(y|∅,x), and RU of the top document (moving mean of 25)",
            25,
            "utility.png",
        )?;
        chart(
            &metrics,
            &["staleness", "stale_gap"],
            "Index staleness: steps since the snapshot, |stale − fresh| score",
            1,
            "staleness.png",
        )?;
    }
    chart(
        &eval,
        &["token_acc", "null_token_acc", "span_acc", "null_span_acc"],
        "Held-out masked accuracy (%): with retrieval vs the null document only",
        1,
        "heldout_accuracy.png",
    )?;
    // Runs written before these columns existed have no such chart.
    let header = std::fs::read_to_string(&eval).unwrap_or_default();
    if header
        .lines()
        .next()
        .is_some_and(|h| h.contains("span_hit"))
    {
        chart(
            &eval,
            &["span_hit", "top_hit", "span_in_corpus"],
            "Held-out examples (%) whose masked span is in a retrieved document, the first one, any passage",
            1,
            "span_hit.png",
        )?;
    }
    let ict = run.join("ict.csv");
    if ict.is_file() {
        chart(
            &ict,
            &["accuracy"],
            "ICT warm start: in-batch accuracy (%) of the query tower finding its passage",
            10,
            "ict.png",
        )?;
    }
    Ok(())
}
