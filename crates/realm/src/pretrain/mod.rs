//! REALM pretraining: a masked LM whose prediction is marginalised over retrieved documents,
//! with the retriever trained through that marginal likelihood and its index refreshed in
//! the background while training goes on.
//!
//! For a masked sentence x (from `ragl mask make`), the query tower embeds x; the current
//! index (document vectors from a *snapshot* of the doc tower) gives the top-k documents,
//! the example's own passage excluded; the null document ∅ is added. Those documents are
//! embedded again by the *current* doc tower, so that
//! `p(z|x) = softmax_z(scale · q(x)·d(z))` carries gradient into both towers, and the loss is
//! `−log Σ_z p(y|z,x) p(z|x)` with `p(y|z,x)` from the knowledge-augmented encoder
//! ([`ragl_reader::mlm`]). Every `refresh.every` steps a copy of the doc tower goes to a
//! background thread that re-embeds the whole corpus; the new vectors are swapped in at the
//! first step after they are ready (the loop never waits; `refresh.swap_after` fixes that
//! step instead, so that a run does not depend on the machine's speed), and each step records how stale
//! its index is: steps since the snapshot, and the mean gap between the stale and the fresh
//! score of the documents it retrieved.
//!
//! Ablations (`model.null_doc`, `model.exclude_own`, `refresh.every = 0`,
//! `model.retrieval = "random" | "none"`) switch one ingredient off; `"none"` is BERT's own
//! MLM on the same examples (only ∅), the no-retrieval baseline. `"oracle"` reads passages
//! that hold the masked span: the ceiling of retrieval on this corpus, and a warm-up for a
//! reader that has only learned to copy from the sentence's own passage.
//!
//! Checkpoints hold the model, the AdamW state, the step (the data order is a function of
//! the seed and the step) and the index in use, so a resumed run continues where it left
//! off; with `refresh.mode = "sync"` (the refresh computed in place at the snapshot step)
//! or no refresh at all, it continues exactly. With `refresh.swap_after` it continues
//! exactly when the checkpoint is not inside a refresh (a refresh in flight is not saved).
//!
//! Where each part lives: [`config`] (the TOML schema), [`data`] (masked examples, corpus,
//! split and batch order), [`model`] (the three parts, init and export), [`loss`] (the
//! marginal likelihood of a batch), [`refresh`] (the index snapshot and the background
//! refresher), [`eval`] (held-out evaluation), [`checkpoint`], and [`train`] (the loop).

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod eval;
pub mod loss;
pub mod model;
pub mod refresh;
pub mod train;

pub use config::{
    Marginal, PretrainConfig, PretrainData, PretrainModel, PretrainTrain, RefreshConfig,
    RefreshMode, Retrieval,
};
pub use data::{Corpus, MaskedExample, RunData, batch_at, read_examples, split};
pub use eval::{EvalReport, evaluate_examples, span_in_corpus};
pub use loss::{BatchStats, ExampleEval, StepContext, batch_loss};
pub use model::{Configs, Realm, export, init};
pub use refresh::{Snapshot, embed_corpus};
pub use train::{PretrainReport, PretrainSummary, pretrain, pretrain_with_ict};
