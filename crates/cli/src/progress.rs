//! Progress on stderr, one policy for every command: a live bar when stderr is a terminal;
//! otherwise (logs, Slurm, `2> file`) the same line printed plainly every 10 s; nothing
//! with `--quiet`. `--progress bar|plain|none` forces a mode. Rates print with one
//! decimal (as the summaries do) and the ETA shows `?` until the first items are done.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

/// How progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    /// A live bar.
    Bar,
    /// A plain line every 10 seconds (logs, Slurm).
    Plain,
    /// Nothing.
    None,
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Chooses the mode for the whole process (first call wins).
pub fn init(mode: Mode, quiet: bool) {
    let m = match (quiet, mode) {
        (true, _) => Mode::None,
        (false, Mode::Auto) if std::io::stderr().is_terminal() => Mode::Bar,
        (false, Mode::Auto) => Mode::Plain,
        (false, m) => m,
    };
    let _ = MODE.set(m);
}

fn target() -> ProgressDrawTarget {
    match MODE.get().copied().unwrap_or(Mode::Bar) {
        Mode::Bar | Mode::Auto => ProgressDrawTarget::stderr(),
        Mode::Plain => ProgressDrawTarget::term_like_with_hz(Box::new(Plain::default()), 1),
        Mode::None => ProgressDrawTarget::hidden(),
    }
}

/// A bar of `len` items.
pub fn bar(len: u64) -> ProgressBar {
    ProgressBar::with_draw_target(Some(len), target())
}

/// A spinner for work of unknown length.
pub fn spinner() -> ProgressBar {
    ProgressBar::with_draw_target(None, target())
}

/// `template` with ragl's keys: `{rate}` (items/s, one decimal) and `{eta}` (`?` until
/// something is done). Both come from the average since the start: work that reports in
/// large chunks (a datastore's 65,536 keys at a time) sends indicatif's windowed estimate
/// towards zero between chunks, and the ETA towards centuries.
pub fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("progress template")
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", rate(average_rate(s.pos(), s.elapsed())));
        })
        .with_key("eta", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let per_sec = average_rate(s.pos(), s.elapsed());
            let _ = match s.len() {
                Some(len) if s.pos() > 0 && per_sec > 0.0 => {
                    let left = len.saturating_sub(s.pos()) as f64 / per_sec;
                    write!(w, "{}", eta(Duration::from_secs_f64(left)))
                }
                _ => write!(w, "?"),
            };
        })
}

fn average_rate(done: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { done as f64 / secs } else { 0.0 }
}

/// Items per second as the summaries print them (one decimal).
fn rate(per_sec: f64) -> String {
    format!("{per_sec:.1}")
}

fn eta(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A terminal stand-in that prints the bar's line to stderr at most every 10 seconds
/// (and its last state), without cursor movement.
#[derive(Debug, Default)]
struct Plain {
    last: Mutex<Option<Instant>>,
}

impl TermLike for Plain {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(());
        }
        let mut last = self.last.lock().expect("progress lock");
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            return Ok(());
        }
        *last = Some(Instant::now());
        writeln!(std::io::stderr(), "{s}")
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_etas_read_like_the_summaries() {
        assert_eq!(rate(345.9521), "346.0");
        assert_eq!(rate(30.64), "30.6");
        assert_eq!(eta(Duration::from_secs(75)), "1m15s");
        assert_eq!(eta(Duration::from_secs(7300)), "2h01m");
        assert_eq!(
            rate(average_rate(65_536, Duration::from_secs(64))),
            "1024.0"
        );
        assert_eq!(average_rate(5, Duration::ZERO), 0.0);
    }
}
