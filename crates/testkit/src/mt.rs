//! The tiny translation fixture: four German–English sentence pairs, and a one-layer
//! transformer config that learns them in a few dozen steps on one CPU core.

use std::path::{Path, PathBuf};

pub const DE: [&str; 4] = [
    "ein hund läuft",
    "eine katze schläft",
    "zwei hunde spielen",
    "ein mann isst",
];
pub const EN: [&str; 4] = ["a dog runs", "a cat sleeps", "two dogs play", "a man eats"];

/// Writes [`DE`] and [`EN`] as `dir/{stem}.de` and `dir/{stem}.en`, one sentence a line.
pub fn write_pair(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let (s, t) = (
        dir.join(format!("{stem}.de")),
        dir.join(format!("{stem}.en")),
    );
    std::fs::write(&s, DE.join("\n") + "\n").expect("writing the tiny pair");
    std::fs::write(&t, EN.join("\n") + "\n").expect("writing the tiny pair");
    (s, t)
}

/// A tiny `ragl mt train` config: d_model 32, two heads, one encoder and one decoder
/// layer, no dropout, no dev evaluation. The fields are what the tests vary.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyMt {
    pub vocab_size: usize,
    pub max_tokens: usize,
    pub max_steps: u64,
    pub seed: Option<u64>,
    pub save_every: Option<u64>,
}

impl Default for TinyMt {
    fn default() -> Self {
        TinyMt {
            vocab_size: 60,
            max_tokens: 64,
            max_steps: 20,
            seed: None,
            save_every: None,
        }
    }
}

impl TinyMt {
    /// The config's TOML, training on `src` → `tgt`.
    pub fn toml(&self, src: &Path, tgt: &Path) -> String {
        let mut train = format!(
            "max_tokens = {}\nlr = 3e-3\nwarmup = 10\nmax_steps = {}\n",
            self.max_tokens, self.max_steps
        );
        if let Some(s) = self.seed {
            train += &format!("seed = {s}\n");
        }
        if let Some(s) = self.save_every {
            train += &format!("save_every = {s}\n");
        }
        format!(
            "[data]\ntrain = [{{ src = {:?}, tgt = {:?} }}]\nvocab_size = {}\nmin_frequency = 1\n\
             [model]\nd_model = 32\nheads = 2\nff = 64\nencoder_layers = 1\ndecoder_layers = 1\ndropout = 0.0\n\
             [train]\n{train}dev_every = 0\n",
            src.display().to_string(),
            tgt.display().to_string(),
            self.vocab_size
        )
    }
}
