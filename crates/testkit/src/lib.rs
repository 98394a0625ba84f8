//! # ragl-testkit
//!
//! What ragl's tests share, so that each fixture is written once: [`shared`] finds the real
//! data sets and checkpoints (`$RAGL_SHARED`, else `../shared` beside the checkout) and says
//! why a test skips when they are absent; [`write_vocab`] makes the WordPiece vocabulary of
//! a tiny BERT; [`mt`] writes the tiny German–English pair and the
//! TOML of a tiny translation model trained on it in seconds; [`spm`] writes SentencePiece
//! model files by hand; [`hf`] writes Hugging Face seq2seq weights (Marian, FSMT) by hand.
//!
//! A dev-dependency only (`publish = false`): nothing here reaches the `ragl` binary.
//!
//! ```no_run
//! let Some(shared) = ragl_testkit::shared("data/mt") else { return };
//! let dir = tempfile::tempdir().unwrap();
//! let (src, tgt) = ragl_testkit::mt::write_pair(dir.path(), "t");
//! let toml = ragl_testkit::mt::TinyMt::default().toml(&src, &tgt);
//! ```

pub mod hf;
pub mod mt;
pub mod realm;
pub mod spm;

use std::path::{Path, PathBuf};

/// BERT's special tokens, in the ids every tiny test model gives them (0 to 4).
pub const SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Writes `dir/vocab.txt` (creating `dir`): [`SPECIAL`], then `words` (each split at
/// whitespace) in order, one a line, as a whole-word WordPiece vocabulary. Returns its size.
pub fn write_vocab<'a>(dir: &Path, words: impl IntoIterator<Item = &'a str>) -> usize {
    let mut v: Vec<&str> = SPECIAL.to_vec();
    for w in words {
        v.extend(w.split_whitespace());
    }
    std::fs::create_dir_all(dir).expect("creating the vocabulary's directory");
    std::fs::write(dir.join("vocab.txt"), v.join("\n") + "\n").expect("writing vocab.txt");
    v.len()
}

/// The shared folder if it holds `sub` (e.g. `"data/qa"`), or `None` with a printed reason.
pub fn shared(sub: &str) -> Option<PathBuf> {
    let root = std::env::var_os("RAGL_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    if root.join(sub).exists() {
        Some(root)
    } else {
        eprintln!(
            "skipping: {} has no {sub} (set RAGL_SHARED to the shared folder)",
            root.display()
        );
        None
    }
}
