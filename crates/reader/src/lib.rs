//! # ragl-reader
//!
//! Readers read a question together with retrieved documents. [`span`] is the
//! span-extraction reader of REALM's open-domain QA fine-tuning (after ORQA, Lee et al.,
//! 2019): BERT over `[CLS] question [SEP] title [SEP] document [SEP]`, every candidate span
//! of the document up to `max_span` word pieces scored by an MLP over its start and end
//! states, and the loss the marginal log-likelihood of the spans whose text matches a gold
//! answer, over all spans of all retrieved documents, each weighted by the retriever:
//!
//! ```text
//! p(y|x) = Σ_{z, s ∈ z, text(s) ≡ y} p(z,s|x),   p(z,s|x) ∝ exp(S_retr(z) + MLP([h_start(s); h_end(s)]))
//! ```
//!
//! The reader is generic over the burn backend; training loops live in `ragl-realm`.
//!
//! ```no_run
//! # fn main() -> ragl_reader::Result<()> {
//! use burn::backend::Flex;
//! use ragl_reader::span::{SpanReader, SpanReaderConfig, prepare};
//! let device = Default::default();
//! let ck = ragl_model::checkpoint::load::<Flex>("models/minilm".as_ref(), &device)?;
//! let tok = ragl_model::tokenizer::TextTokenizer::from_dir("models/minilm".as_ref(), 512)?;
//! let cfg = SpanReaderConfig::default();
//! let reader = SpanReader::new(ck.bert, &cfg, &device);
//! let doc = prepare(&tok, &cfg, "Who wrote Hamlet?", Some("Hamlet"), "Hamlet is a tragedy by William Shakespeare.")?;
//! let best = reader.best_spans(&[vec![&doc]], None);
//! # Ok(()) }
//! ```

pub mod mlm;
pub mod span;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] ragl_core::Error),
    #[error(transparent)]
    Model(#[from] ragl_model::Error),
    /// A tokenizer without the special tokens a BERT reader needs.
    #[error("the tokenizer has no {0} token")]
    MissingToken(&'static str),
    #[error("bad gold answer: {0}")]
    Answer(String),
}

impl Error {
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Core(e) => e.is_bad_input(),
            Error::Model(e) => e.is_bad_input(),
            Error::MissingToken(_) | Error::Answer(_) => true,
        }
    }
}
