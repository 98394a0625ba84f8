//! # ragl-eval
//!
//! Evaluation that researchers can trust to the last digit: BLEU and chrF/chrF++ equal to
//! sacrebleu 2.6.0 (same tokenizers, smoothing, n-gram counts and floating-point order),
//! and open-domain QA exact match / F1 equal to the official SQuAD v1.1 script, with
//! CuratedTREC regex answers as in DrQA.
//!
//! ```
//! use ragl_eval::bleu::{Bleu, BleuConfig};
//! let bleu = Bleu::new(BleuConfig::default());
//! let score = bleu.corpus_score(&["the cat sat on the mat"], &[vec!["the cat sat on the mat"]]);
//! assert_eq!(score.format(2), "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)");
//! ```

pub mod bleu;
pub mod chrf;
pub mod files;
pub mod qa;
pub mod qa_data;
pub mod retrieval;
pub mod signature;
pub mod tokenize;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    /// Bad input that is not tied to one line (missing predictions, empty files...).
    #[error("{0}")]
    Format(String),
}

impl Error {
    /// True when the user's input (not the machine) is at fault: the CLI exits with 2.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Format(_) => true,
        }
    }
}
