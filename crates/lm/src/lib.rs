//! # ragl-lm
//!
//! Decoder-only language models — Hugging Face GPT-2 checkpoints and ragl's own GPT-2s —
//! scored as the kNN-LM paper and transformers' perplexity guide score them. [`windows`]
//! turns text into scoring windows: one token stream cut into windows of the model's context
//! with a stride (each token scored once, with as much left context as the stride leaves),
//! or one document per line, each after the model's BOS token (`<|endoftext|>`), which is not
//! itself scored. [`score`] runs the model over windows and hands back, per scored token, its
//! log-probability and, when asked, the state kNN-LM keys on ([`score::KeyPoint`]).
//! [`train`] trains ragl's own GPT-2 from scratch on text (`ragl lm train`), [`bpe`] its
//! byte-level tokenizer.
//!
//! ```no_run
//! # fn main() -> ragl_lm::Result<()> {
//! use burn::backend::Flex;
//! let m = ragl_model::gpt2::load::<Flex>(std::path::Path::new("gpt2"), &Default::default())?;
//! let text = ragl_lm::windows::Text::Stream("The cat sat on the mat.".into());
//! let w = ragl_lm::windows::windows(&m.tokenizer, &text, m.config.bos_token_id, 1024, 512)?;
//! let s = ragl_lm::score::perplexity(&m.model, &w, 8)?;
//! println!("{} tokens, perplexity {:.2}", s.tokens, s.perplexity());
//! # Ok(()) }
//! ```

pub mod bpe;
pub mod score;
pub mod train;
pub mod windows;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    #[error(transparent)]
    Model(#[from] ragl_model::Error),
    /// Text the model cannot score (empty, or a tokenizer failure), with its origin.
    #[error("{what}: {message}")]
    Text { what: String, message: String },
}

impl Error {
    /// Everything here is about the user's files or flags, except the machine's I/O.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Model(e) => e.is_bad_input(),
            Error::Text { .. } => true,
        }
    }
}
