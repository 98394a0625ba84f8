//! Open-domain QA as REALM fine-tunes it (after ORQA): a trained query tower over a fixed
//! document index, and a span reader.
//!
//! A question is embedded by the query tower (pooling and normalisation as recorded in the
//! index, so that scores match what the index was built for); its top-k documents come from
//! the index; their stored vectors `d_z` give the retrieval scores `S_retr(z) = q·d_z`,
//! computed again with gradient into the query tower; the reader reads
//! `[CLS] question [SEP] title [SEP] text [SEP]` for each; and the loss is the reader's
//! joint-softmax marginal likelihood (`ragl_reader::span::marginal_nll`), so the marginal
//! likelihood of the gold spans trains the query tower too.
//!
//! Where each part lives: [`model`] (`OpenQa`, retrieval, the loss), [`config`]
//! (`configs/qa/*.toml`), [`checkpoint`] (saved QA models and run checkpoints),
//! [`finetune`] (the training loop: dev EM every `dev_every` steps, the best model to
//! `RUN/best/`, early stopping after `patience` evaluations without a gain) and
//! [`predict`] (`ragl predict-qa`).

pub mod checkpoint;
pub mod config;
pub mod finetune;
pub mod model;
pub mod predict;

pub use checkpoint::{FORMAT_VERSION, KIND, Loaded, QaModelMeta, init, load, save};
pub use config::{DataConfig, FinetuneConfig, ModelConfig, TrainConfig};
pub use finetune::{FinetuneSummary, StepReport, finetune};
pub use model::{OpenQa, QueryPooling, RetrievalContext, Retrieved, own_passages, retrieve};
pub use predict::{Prediction, exact_match, passages_by_row, predict};
