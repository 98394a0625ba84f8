//! The quickstart's stages: each command printed as a shell line, then run through the
//! same parser a shell command goes through (so the printed line is the one executed), and
//! timed; typed run configs written as the TOML a user would pass with `--config`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

pub(super) struct Pipeline {
    pub out: PathBuf,
    pub times: Vec<(&'static str, f64)>,
}

impl Pipeline {
    pub fn p(&self, rel: &str) -> String {
        self.out.join(rel).to_string_lossy().into_owned()
    }

    /// Runs `commands` as one timed stage, printing each as a shell line first.
    pub fn stage(&mut self, name: &'static str, commands: &[Vec<String>]) -> Result<()> {
        eprintln!("\n=== {name}");
        let t = Instant::now();
        for c in commands {
            eprintln!("$ ragl {}", shell_line(c));
            crate::run_args(c)
                .with_context(|| format!("stage {name:?}: ragl {}", shell_line(c)))?;
        }
        self.times.push((name, t.elapsed().as_secs_f64()));
        Ok(())
    }

    /// Writes a typed run config as the TOML a user would pass with `--config`, headed by
    /// `note` as comments.
    pub fn write_config<T: serde::Serialize>(
        &self,
        rel: &str,
        note: &str,
        cfg: &T,
    ) -> Result<String> {
        let path = self.out.join(rel);
        let mut text = String::new();
        for line in textwrap(note, 88) {
            let _ = writeln!(text, "# {line}");
        }
        text += "# (written by `ragl quickstart`)\n\n";
        text += &toml::to_string(cfg).context("the config as TOML")?;
        ragl_core::atomic::write_bytes_atomic(&path, text.as_bytes())?;
        Ok(path.to_string_lossy().into_owned())
    }
}

pub(super) fn shell_line(c: &[String]) -> String {
    c.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '"', '\'', '$']) {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text`'s words in lines of at most `width` characters.
pub(super) fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + w.chars().count() <= width => {
                l.push(' ');
                l.push_str(w);
            }
            _ => lines.push(w.to_string()),
        }
    }
    lines
}

pub(super) fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_wrap_at_the_width() {
        let lines = textwrap("one two three four five", 9);
        assert_eq!(lines, ["one two", "three", "four five"]);
    }
}
