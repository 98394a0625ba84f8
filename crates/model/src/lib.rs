//! # ragl-model
//!
//! BERT as burn modules, loaded exactly from Hugging Face checkpoints (`config.json`,
//! `model.safetensors`, `tokenizer.json` or `vocab.txt`), with the MLM head, CLS / mean
//! pooling and a learnable projection (REALM's towers), and a batched, length-bucketed
//! text encoder. Generic over the burn backend; the CLI picks Flex (CPU) or CUDA.
//!
//! ```no_run
//! use ragl_model::{checkpoint, tokenizer::TextTokenizer, encode::{Encoder, Pooling}};
//! type B = burn::backend::Flex;
//! # fn main() -> ragl_model::Result<()> {
//! let dir = std::path::Path::new("../shared/models/all-minilm-l6-v2");
//! let ckpt = checkpoint::load::<B>(dir, &Default::default())?;
//! let tok = TextTokenizer::from_dir(dir, 256)?;
//! let enc = Encoder::new(ckpt.bert, tok, Pooling::Mean, Default::default());
//! let emb = enc.embed(&[("a".into(), None)], 32)?; // one 384-d vector
//! # Ok(()) }
//! ```

pub mod bert;
pub mod checkpoint;
mod cpu;
pub mod encode;
pub mod gpt2;

pub mod hub;
pub mod parallel;
pub mod realm;
pub mod sentencepiece;
pub mod tokenizer;
pub mod torch;
pub mod weights;

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    #[error("{}", missing_file(.dir, .file))]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error("{path}:{line}: {message}")]
    Config {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("{path}: tensor {name} has shape {got:?}, the config implies {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("{path}: {} tensor(s) missing: {}", names.len(), names.join(", "))]
    MissingTensors { path: PathBuf, names: Vec<String> },
    #[error("{path}: tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },
    /// A model argument that is neither a directory nor a cached model id.
    #[error("{path}: {message}")]
    NotFound { path: PathBuf, message: String },
}

/// A missing checkpoint file, or (more often) a misspelt directory.
fn missing_file(dir: &std::path::Path, file: &str) -> String {
    if dir.is_dir() {
        format!("{}: checkpoint has no {file}", dir.display())
    } else {
        format!(
            "{}: no such directory (a model directory holds config.json, model.safetensors and \
             tokenizer.json or vocab.txt)",
            dir.display()
        )
    }
}

impl Error {
    /// Everything here is about the user's files, except I/O failures of the machine.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(c) => c.is_bad_input(),
            _ => true,
        }
    }
}
