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
//! first step after they are ready (the loop never waits), and each step records how stale
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
//! or no refresh at all, it continues exactly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder as _};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use ragl_core::passage::Passage;
use ragl_core::read::Input;
use ragl_core::rng::Rng;
use ragl_index::Metric;
use ragl_model::bert::{Bert, BertConfig};
use ragl_model::encode::{Pooling, embed_encoded};
use ragl_model::tokenizer::{Encoded, TextTokenizer};
use ragl_reader::mlm::{Masked, MlmReader, doc_view, join};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

type Recorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// `configs/realm/*.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    pub data: PretrainData,
    pub model: PretrainModel,
    #[serde(default)]
    pub refresh: RefreshConfig,
    #[serde(default)]
    pub train: PretrainTrain,
    /// The retriever's warm start (REALM's ICT), run once before the first index is built.
    #[serde(default)]
    pub ict: crate::ict::IctConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainData {
    /// Masked examples, `ragl mask make` JSONL.
    pub examples: PathBuf,
    /// The corpus the examples were made from: the documents to retrieve.
    pub passages: PathBuf,
    /// Examples held out for evaluation (drawn by the seed).
    #[serde(default = "d_heldout")]
    pub heldout: usize,
    /// Keep only the examples whose masked span occurs in a passage other than their own
    /// (its word pieces, in the part the reader sees): REALM's premise that the corpus
    /// holds what a masked span needs, which Wikipedia's redundancy gives and a small
    /// corpus does not. The held-out split is drawn from what is kept.
    #[serde(default)]
    pub span_elsewhere: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retrieval {
    /// MIPS over the (stale) index: REALM.
    Dense,
    /// k documents drawn uniformly: does *which* documents matter?
    Random,
    /// No documents but ∅: BERT's MLM on the same examples.
    None,
    /// Up to k passages that hold the masked span (as the reader sees them), drawn at
    /// random, the rest of the k random others: retrieval as good as the corpus allows.
    /// The ceiling of what documents can give this reader, and a warm-up that teaches it to
    /// copy from passages other than the sentence's own.
    Oracle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainModel {
    /// Query tower's starting BERT (HF directory).
    pub query: PathBuf,
    /// Doc tower's starting BERT (default: the query tower's).
    #[serde(default)]
    pub doc: Option<PathBuf>,
    /// The knowledge-augmented encoder: a BERT with an MLM head.
    pub reader: PathBuf,
    /// Start the reader's MLM head afresh (its decoder tied to the reader's word
    /// embeddings), for a reader checkpoint without one, such as a sentence encoder
    /// (MiniLM), or to drop a head trained for something else (a SPLADE fine-tune).
    #[serde(default)]
    pub fresh_mlm_head: bool,
    #[serde(default)]
    pub pooling: Pooling,
    #[serde(default = "yes")]
    pub normalize: bool,
    /// `p(z|x) ∝ exp(scale · q·d)`: with normalised vectors, the inverse temperature.
    #[serde(default = "d_scale")]
    pub score_scale: f32,
    /// Word pieces of a document seen by the doc tower.
    #[serde(default = "d_doc_len")]
    pub doc_max_len: usize,
    /// Length of `[CLS] x [SEP] z [SEP]` for the reader.
    #[serde(default = "d_reader_len")]
    pub reader_max_len: usize,
    #[serde(default = "d_k")]
    pub k: usize,
    #[serde(default = "yes")]
    pub null_doc: bool,
    #[serde(default = "yes")]
    pub exclude_own: bool,
    #[serde(default = "d_retrieval")]
    pub retrieval: Retrieval,
    /// Where the sum over documents is taken: over the whole masked span (the paper's
    /// `p(y|x) = Σ_z p(z|x) Π_j p(y_j|z,x)`), or per masked token (REALM's released code).
    #[serde(default)]
    pub marginal: Marginal,
}

/// How `p(y|x)` marginalises over the retrieved documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Marginal {
    /// `log Σ_z p(z|x) Π_j p(y_j|z,x)`: one posterior per sentence (REALM's equation 2).
    #[default]
    Span,
    /// `Σ_j log Σ_z p(z|x) p(y_j|z,x)`: each masked token picks its own documents, as in
    /// `language/realm/model.py` (there averaged over masks; here summed per sentence, so
    /// that losses and utilities stay in nats per sentence under both settings).
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefreshMode {
    /// A background thread re-embeds the corpus; training never waits.
    Async,
    /// The refresh runs in place at the snapshot step: reproducible, slower.
    Sync,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshConfig {
    /// Steps between doc-tower snapshots; 0 = never refresh (the index of step 0 stays).
    pub every: u64,
    pub mode: RefreshMode,
    /// Documents per forward pass when re-embedding.
    pub batch_size: usize,
    /// CPU threads the background re-embedding may use; 0 = all, shared with training (the
    /// refresh finishes soonest and training slows most while it runs). A smaller number
    /// keeps a known share of the cores for training, at the price of a staler index.
    pub threads: usize,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            every: 50,
            mode: RefreshMode::Async,
            batch_size: 32,
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainTrain {
    /// Peak learning rate of the towers (and of the reader unless `reader_lr` is set). 0
    /// freezes both towers: a fixed retriever, the reader alone trained.
    pub lr: f64,
    /// Peak learning rate of the reader (same schedule): a small reader such as bert-tiny
    /// wants a larger one than the towers, which must not drift far from their index.
    pub reader_lr: Option<f64>,
    pub warmup: u64,
    pub weight_decay: f32,
    pub clip_norm: f32,
    /// Examples per step.
    pub batch: usize,
    pub max_steps: u64,
    pub max_minutes: Option<f64>,
    pub seed: u64,
    /// Seed of the batch order alone (default: `seed`; the held-out split always follows
    /// `seed`): a run that continues another's model with the same held-out examples
    /// sees its training examples in a different order instead of the same ones again.
    pub data_seed: Option<u64>,
    /// Steps between held-out evaluations (0: only at the end).
    pub eval_every: u64,
    /// Steps between checkpoints (0: only at the end).
    pub save_every: u64,
    /// Weight of an extra reader loss: the mean over the retrieved documents of
    /// `−log p(y|z,x)`, each document read on its own. Not REALM's objective, whose reader
    /// learns only through the marginal: once the towers put most of `p(z|x)` on ∅, the
    /// posterior that weights the reader's gradient does too, and the reader stops learning
    /// to read documents. This term keeps it learning to copy from the ones that hold the
    /// span and to ignore the others. 0 (default) is REALM's.
    pub doc_read_loss: f32,
    /// Train the query tower alone and keep the doc tower as it starts, as ORQA and RAG
    /// do. The index then never goes stale, so the retrieved documents are scored from its
    /// vectors (no doc-tower pass: on a CPU most of a step's cost) and `[refresh]` must be
    /// off. Not REALM's setting, which trains both towers; it buys many more steps for the
    /// same time.
    pub freeze_doc: bool,
}

impl Default for PretrainTrain {
    fn default() -> Self {
        PretrainTrain {
            lr: 1e-4,
            reader_lr: None,
            warmup: 50,
            weight_decay: 0.01,
            clip_norm: 1.0,
            batch: 4,
            max_steps: 1000,
            max_minutes: None,
            seed: 1,
            data_seed: None,
            eval_every: 100,
            save_every: 100,
            doc_read_loss: 0.0,
            freeze_doc: false,
        }
    }
}

fn d_heldout() -> usize {
    300
}
fn yes() -> bool {
    true
}
fn d_scale() -> f32 {
    20.0
}
fn d_doc_len() -> usize {
    128
}
fn d_reader_len() -> usize {
    256
}
fn d_k() -> usize {
    8
}
fn d_retrieval() -> Retrieval {
    Retrieval::Dense
}

impl PretrainConfig {
    pub fn from_toml(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ragl_core::Error::io(path, e))?;
        let cfg: PretrainConfig = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].lines().count().max(1))
                .unwrap_or(0);
            Error::Mismatch(format!("{}:{line}: {}", path.display(), e.message()))
        })?;
        if cfg.model.retrieval != Retrieval::None && cfg.model.k == 0 {
            return Err(Error::Mismatch(format!(
                "{}: model.k must be at least 1 with retrieval (use retrieval = \"none\" for no documents)",
                path.display()
            )));
        }
        if cfg.model.retrieval == Retrieval::None && !cfg.model.null_doc {
            return Err(Error::Mismatch(format!(
                "{}: retrieval = \"none\" needs the null document",
                path.display()
            )));
        }
        let t = &cfg.train;
        if !(t.lr >= 0.0 && t.reader_lr.unwrap_or(t.lr) > 0.0) {
            return Err(Error::Mismatch(format!(
                "{}: train.lr must be ≥ 0 (0 freezes the towers) and the reader's learning rate (train.reader_lr, else train.lr) > 0",
                path.display()
            )));
        }
        if t.freeze_doc && cfg.refresh.every > 0 {
            return Err(Error::Mismatch(format!(
                "{}: train.freeze_doc keeps the index exact: set [refresh] every = 0",
                path.display()
            )));
        }
        Ok(cfg)
    }

    fn doc_dir(&self) -> &Path {
        self.model.doc.as_deref().unwrap_or(&self.model.query)
    }
}

/// The three trained parts.
#[derive(Module, Debug)]
pub struct Realm<B: Backend> {
    pub query: Bert<B>,
    pub doc: Bert<B>,
    pub reader: MlmReader<B>,
}

/// One masked example as `ragl mask make` writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct MaskedExample {
    pub id: String,
    pub passage_id: String,
    pub input_ids: Vec<u32>,
    pub masked_positions: Vec<usize>,
    pub masked_ids: Vec<u32>,
    #[serde(default)]
    pub strategy: String,
}

impl MaskedExample {
    fn masked(&self) -> Masked {
        Masked {
            positions: self.masked_positions.clone(),
            labels: self.masked_ids.clone(),
        }
    }
}

/// Reads `ragl mask make` output; a bad line is a `file:line` error.
pub fn read_examples(path: &Path) -> Result<Vec<MaskedExample>> {
    use std::io::BufRead as _;
    let input = Input::from_arg(path);
    let reader = input.open()?;
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| ragl_core::Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let ex: MaskedExample = serde_json::from_str(&line)
            .map_err(|e| ragl_core::Error::format(path, i as u64 + 1, e.to_string()))?;
        let bad = ex.masked_positions.len() != ex.masked_ids.len()
            || ex.masked_positions.is_empty()
            || ex
                .masked_positions
                .iter()
                .any(|&p| p == 0 || p + 1 >= ex.input_ids.len());
        if bad {
            return Err(ragl_core::Error::format(
                path,
                i as u64 + 1,
                "masked_positions must be non-empty, inside the sentence, one per masked_ids",
            )
            .into());
        }
        out.push(ex);
    }
    if out.is_empty() {
        return Err(ragl_core::Error::format(path, 1, "no examples").into());
    }
    Ok(out)
}

/// Tokenised corpus: the doc tower's view and the reader's.
pub struct Corpus {
    pub passages: Vec<Passage>,
    pub row_of: std::collections::HashMap<String, u32>,
    pub tower: Vec<Encoded>,
    /// Word pieces of each document for the reader, ending with `[SEP]` (no `[CLS]`).
    pub reader: Vec<Vec<u32>>,
    /// `[CLS] [SEP]`: the null document as the doc tower sees it.
    pub null: Encoded,
}

impl Corpus {
    pub fn load(
        path: &Path,
        tower_tok: &TextTokenizer,
        reader_tok: &TextTokenizer,
    ) -> Result<Self> {
        let mut passages = Vec::new();
        for p in ragl_core::passage::Passages::open(&Input::from_arg(path), false)? {
            passages.push(p?);
        }
        let pairs: Vec<(String, Option<String>)> =
            passages.iter().map(Passage::encoder_pair).collect();
        let tower = tower_tok.encode(&pairs)?;
        let reader = reader_tok
            .encode(&pairs)?
            .into_iter()
            .map(|e| e.ids[1..].to_vec())
            .collect();
        let null = tower_tok
            .encode(&[(String::new(), None)])?
            .pop()
            .expect("one");
        let row_of = passages
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i as u32))
            .collect();
        Ok(Corpus {
            passages,
            row_of,
            tower,
            reader,
            null,
        })
    }
}

/// The index in use: every passage's vector from the doc tower of step `step`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub step: u64,
    pub dim: usize,
    pub vectors: Vec<f32>,
}

/// Embeds the whole corpus with `doc` (no gradient), in length-sorted batches.
pub fn embed_corpus<B: Backend>(
    doc: &Bert<B>,
    encs: &[Encoded],
    m: &PretrainModel,
    pad_id: u32,
    batch: usize,
    device: &B::Device,
) -> Vec<f32> {
    let d = doc.hidden_size();
    let mut order: Vec<usize> = (0..encs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encs[i].ids.len()));
    let mut out = vec![0f32; encs.len() * d];
    for chunk in order.chunks(batch.max(1)) {
        let refs: Vec<&Encoded> = chunk.iter().map(|&i| &encs[i]).collect();
        let v: Vec<f32> = host(embed_encoded(
            doc,
            &refs,
            pad_id,
            m.pooling,
            m.normalize,
            device,
        ));
        for (r, &i) in chunk.iter().enumerate() {
            out[i * d..(i + 1) * d].copy_from_slice(&v[r * d..(r + 1) * d]);
        }
    }
    out
}

/// Everything a step needs besides the model.
pub struct StepContext<'a> {
    pub cfg: &'a PretrainConfig,
    pub corpus: &'a Corpus,
    pub tower_pad: u32,
    pub reader_pad: u32,
    pub sep: u32,
}

impl StepContext<'_> {
    /// The row retrieval must skip for `e`: its own passage, when the config excludes it.
    fn skipped_row(&self, e: &MaskedExample) -> Option<u32> {
        if self.cfg.model.exclude_own {
            self.corpus.row_of.get(&e.passage_id).copied()
        } else {
            None
        }
    }

    /// The null document's vector under the current doc tower (one short sequence).
    ///
    /// The pass runs on an untracked copy of the tower: on an autodiff backend, a tracked
    /// forward that no backward ever consumes stays in the autodiff graph, and with one such
    /// pass a step (`train.freeze_doc`) the steps grew five times slower over 900 steps.
    fn corpus_null_vector<B: Backend>(&self, model: &Realm<B>, device: &B::Device) -> Vec<f32> {
        let m = &self.cfg.model;
        host(embed_encoded(
            &model.doc.clone().no_grad(),
            &[&self.corpus.null],
            self.tower_pad,
            m.pooling,
            m.normalize,
            device,
        ))
    }
}

/// One example's held-out numbers, for paired comparisons between evaluations (the
/// same sentences at two steps, or in two runs): `eval_examples.csv`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExampleEval {
    /// `−log p(y|x)`, the marginal over the documents read.
    pub loss: f32,
    /// `−log p(y|∅,x)`: the utility is `null_loss − loss`.
    pub null_loss: f32,
    /// p(∅|x) (0 without the null document).
    pub p_null: f32,
    /// Some retrieved document, as the reader sees it, holds the masked span.
    pub span_hit: bool,
}

/// What one forward pass over a batch measured.
#[derive(Debug, Clone, Default)]
pub struct BatchStats {
    pub examples: usize,
    /// Mean `−log p(y|x)`.
    pub loss: f64,
    /// Masked tokens whose marginal argmax is the label.
    pub tokens: usize,
    pub tokens_right: usize,
    /// Examples whose every masked token is right.
    pub spans_right: usize,
    /// Mean `log p(y|x) − log p(y|∅,x)` (NaN without the null document).
    pub utility: f64,
    /// Mean retrieval utility of the document the retriever ranks first, REALM's
    /// `RU(z|x) = log p(y|z,x) − log p(y|∅,x)` (its eq. 2): unlike `utility`, it does not
    /// move when p(z|x) shifts mass between documents, only when the first one read helps
    /// more or less (NaN without retrieval).
    pub ru_top: f64,
    /// The same accuracy restricted to ∅ (`p(y|∅,x)` alone).
    pub null_tokens_right: usize,
    pub null_spans_right: usize,
    /// Mean |stale − fresh| score of the retrieved documents, in logit units.
    pub stale_gap: f64,
    /// Examples for which some retrieved document, as the reader sees it, holds the masked
    /// span's word pieces: whether the retriever found a passage to copy from, apart from
    /// whether the reader used it.
    pub span_hits: usize,
    /// The same for the document the retriever ranks first.
    pub top_hits: usize,
    /// RU(z|x) = log p(y|z,x) − log p(y|∅,x) summed over the retrieved documents that
    /// hold the span, and their number; then the same over those that do not. The gap
    /// between the two means is what the retriever's gradient can learn from: it pushes up
    /// the documents the reader gains from.
    pub ru_held: (f64, usize),
    pub ru_other: (f64, usize),
    /// p(z|x) summed over the batch: on ∅, and on the retrieved documents that hold the
    /// span. Utility is bounded by the mass off ∅, so a retriever that retreats to ∅
    /// shrinks it even when the documents it does read help more.
    pub p_null: f64,
    pub p_held: f64,
    /// Over the examples with a span-holding document retrieved: the share of the
    /// documents' mass (∅ left out) on those that hold it, the share they would get from a
    /// retriever that cannot tell (their number over k), and p(∅|x); then p(∅|x) over the
    /// other examples. Whether the retriever ranks the useful documents up, and knows when
    /// there is none, apart from whether it retrieves them.
    pub held_share: f64,
    pub held_frac: f64,
    pub p_null_hit: f64,
    pub p_null_miss: f64,
    /// The batch's examples one by one, in order.
    pub per_example: Vec<ExampleEval>,
}

impl BatchStats {
    /// Adds `s`'s counts and sums (everything but the per-batch means `loss`, `utility`,
    /// `ru_top` and `stale_gap`, which the caller weights by `examples`).
    fn add_counts(&mut self, s: &BatchStats) {
        self.examples += s.examples;
        self.tokens += s.tokens;
        self.tokens_right += s.tokens_right;
        self.spans_right += s.spans_right;
        self.null_tokens_right += s.null_tokens_right;
        self.null_spans_right += s.null_spans_right;
        self.span_hits += s.span_hits;
        self.top_hits += s.top_hits;
        self.ru_held.0 += s.ru_held.0;
        self.ru_held.1 += s.ru_held.1;
        self.ru_other.0 += s.ru_other.0;
        self.ru_other.1 += s.ru_other.1;
        self.p_null += s.p_null;
        self.p_held += s.p_held;
        self.held_share += s.held_share;
        self.held_frac += s.held_frac;
        self.p_null_hit += s.p_null_hit;
        self.p_null_miss += s.p_null_miss;
    }
}

/// Whether `needle` occurs in `hay` as a contiguous run.
fn holds(hay: &[u32], needle: &[u32]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The retrieved rows of each example (own passage excluded when asked).
fn choose_docs(
    ctx: &StepContext,
    batch: &[&MaskedExample],
    q: &[f32],
    snap: &Snapshot,
    rng: &mut Rng,
) -> Vec<Vec<u32>> {
    let m = &ctx.cfg.model;
    let n = ctx.corpus.passages.len();
    let own = |e: &MaskedExample| ctx.skipped_row(e);
    match m.retrieval {
        Retrieval::None => vec![Vec::new(); batch.len()],
        Retrieval::Random | Retrieval::Oracle => batch
            .iter()
            .map(|e| {
                let skip = own(e);
                let mut rows = Vec::with_capacity(m.k);
                if m.retrieval == Retrieval::Oracle {
                    let mut held: Vec<u32> =
                        span_holders(ctx.corpus, e, skip, ctx.sep, m.reader_max_len).collect();
                    rng.shuffle(&mut held);
                    rows.extend(held.into_iter().take(m.k));
                }
                while rows.len() < m.k.min(n - usize::from(skip.is_some())) {
                    let r = rng.below(n) as u32;
                    if Some(r) != skip && !rows.contains(&r) {
                        rows.push(r);
                    }
                }
                rows
            })
            .collect(),
        Retrieval::Dense => {
            let hits =
                ragl_index::exact::search(&snap.vectors, None, snap.dim, Metric::Ip, q, m.k + 1);
            batch
                .iter()
                .zip(hits)
                .map(|(e, hs)| {
                    let skip = own(e);
                    hs.into_iter()
                        .map(|h| h.row)
                        .filter(|&r| Some(r) != skip)
                        .take(m.k)
                        .collect()
                })
                .collect()
        }
    }
}

/// The marginal loss of a batch (a scalar tensor with gradient on an autodiff backend) and
/// its statistics.
///
/// `rescore`: score the retrieved documents with the current doc tower (training: the
/// gradient reaches the doc tower through them) or with the index's vectors (evaluation:
/// what inference over the index computes, and no doc-tower pass).
pub fn batch_loss<B: Backend>(
    model: &Realm<B>,
    ctx: &StepContext,
    batch: &[&MaskedExample],
    snap: &Snapshot,
    rng: &mut Rng,
    rescore: bool,
) -> (Tensor<B, 1>, BatchStats) {
    let m = &ctx.cfg.model;
    let device = model.reader.head.bias.val().device();
    let b = batch.len();
    let retrieving = m.retrieval != Retrieval::None;
    // The query tower reads the masked sentence itself.
    let xs: Vec<Encoded> = batch
        .iter()
        .map(|e| Encoded {
            ids: e.input_ids.clone(),
            type_ids: vec![0; e.input_ids.len()],
            truncated: false,
        })
        .collect();
    let mut stats = BatchStats {
        examples: b,
        utility: f64::NAN,
        ru_top: f64::NAN,
        ..Default::default()
    };
    // Documents per example: k retrieved (+ ∅), scored by the current towers.
    let (rows, log_pz): (Vec<Vec<u32>>, Option<Tensor<B, 2>>) = if retrieving {
        let refs: Vec<&Encoded> = xs.iter().collect();
        let q = embed_encoded(
            &model.query,
            &refs,
            ctx.tower_pad,
            m.pooling,
            m.normalize,
            &device,
        );
        let qh = host(q.clone());
        let rows = choose_docs(ctx, batch, &qh, snap, rng);
        let k = rows.iter().map(Vec::len).min().unwrap_or(0);
        let rows: Vec<Vec<u32>> = rows.into_iter().map(|r| r[..k].to_vec()).collect();
        let d = if rescore || snap.vectors.is_empty() {
            let mut docs: Vec<&Encoded> = rows
                .iter()
                .flatten()
                .map(|&r| &ctx.corpus.tower[r as usize])
                .collect();
            if m.null_doc {
                docs.push(&ctx.corpus.null);
            }
            embed_encoded(
                &model.doc,
                &docs,
                ctx.tower_pad,
                m.pooling,
                m.normalize,
                &device,
            )
        } else {
            let dim = snap.dim;
            let mut v: Vec<f32> = rows
                .iter()
                .flatten()
                .flat_map(|&r| snap.vectors[r as usize * dim..(r as usize + 1) * dim].to_vec())
                .collect();
            if m.null_doc {
                v.extend_from_slice(&ctx.corpus_null_vector(model, &device));
            }
            let n = v.len() / dim;
            Tensor::from_data(TensorData::new(v, [n, dim]), &device)
        };
        let dim = d.dims()[1];
        // scores[i, z] = scale · q_i · d_{i,z}: the retrieved block is [b, k, dim].
        let retrieved = d
            .clone()
            .slice([0..b * k, 0..dim])
            .reshape([b, k, dim])
            .matmul(q.clone().reshape([b, dim, 1]))
            .reshape([b, k]);
        let mut scores = retrieved.clone();
        if m.null_doc {
            let null = d.slice([b * k..b * k + 1, 0..dim]);
            scores = Tensor::cat(vec![scores, q.matmul(null.transpose())], 1);
        }
        let scores = scores * m.score_scale;
        // Staleness: the same documents scored with the index's vectors.
        if rescore && m.retrieval == Retrieval::Dense && k > 0 {
            let fresh = host(retrieved);
            let mut gap = 0f64;
            for (i, rs) in rows.iter().enumerate() {
                let qi = &qh[i * dim..(i + 1) * dim];
                for (z, &r) in rs.iter().enumerate() {
                    let v = &snap.vectors[r as usize * dim..(r as usize + 1) * dim];
                    let stale: f32 = qi.iter().zip(v).map(|(a, b)| a * b).sum();
                    gap += ((stale - fresh[i * k + z]) * m.score_scale).abs() as f64;
                }
            }
            stats.stale_gap = gap / (b * k) as f64;
        }
        (rows, Some(log_softmax(scores, 1)))
    } else {
        (vec![Vec::new(); b], None)
    };
    let k = rows.first().map_or(0, Vec::len);
    let kz = k + usize::from(m.null_doc);
    // Reader pairs, example-major; ∅ last. One more ∅ pair per example when the model has
    // no null document, for the ∅-only accuracy and the utility.
    let extra_null = !m.null_doc;
    let per = kz + usize::from(extra_null);
    let masks: Vec<Masked> = batch.iter().map(|e| e.masked()).collect();
    let mut inputs = Vec::with_capacity(b * per);
    let mut mask_refs = Vec::with_capacity(b * per);
    // Per example and retrieved document: does the reader's view of it hold the span?
    let mut held: Vec<Vec<bool>> = Vec::with_capacity(b);
    for (i, e) in batch.iter().enumerate() {
        let mut h = Vec::with_capacity(rows[i].len());
        for &r in &rows[i] {
            let z = &ctx.corpus.reader[r as usize];
            let seen = doc_view(e.input_ids.len(), z, ctx.sep, m.reader_max_len);
            h.push(holds(seen, &e.masked_ids));
            inputs.push(join(&e.input_ids, Some(z), ctx.sep, m.reader_max_len));
            mask_refs.push(&masks[i]);
        }
        stats.span_hits += usize::from(h.contains(&true));
        held.push(h);
        inputs.push(join(&e.input_ids, None, ctx.sep, m.reader_max_len));
        mask_refs.push(&masks[i]);
    }
    let refs: Vec<&Encoded> = inputs.iter().collect();
    let scored = model.reader.score(&refs, &mask_refs, ctx.reader_pad);
    let ll = scored.log_likelihood.reshape([b, per]);
    let ll_h = host(ll.clone());
    let ll_docs = ll.clone().slice([0..b, 0..kz]);
    let ll_null = ll.clone().slice([0..b, per - 1..per]).reshape([b]);
    let marginal = match (&log_pz, m.marginal) {
        (Some(lp), Marginal::Token) => token_marginal(
            scored.token_log_likelihood.clone(),
            lp.clone(),
            &masks,
            per,
            kz,
        ),
        (Some(lp), Marginal::Span) => log_sum_exp_rows(lp.clone() + ll_docs),
        (None, _) => log_sum_exp_rows(ll_docs),
    }; // [b]
    let mut loss = marginal.clone().neg().mean();
    let w = ctx.cfg.train.doc_read_loss;
    if w != 0.0 && k > 0 {
        let each_doc = ll.clone().slice([0..b, 0..k]).neg().mean();
        loss = loss + each_doc * w;
    }

    // Statistics (host side).
    let marg_h = host(marginal);
    let null_h = host(ll_null);
    stats.loss = -marg_h.iter().map(|&x| x as f64).sum::<f64>() / b as f64;
    if m.null_doc || extra_null {
        stats.utility = marg_h
            .iter()
            .zip(&null_h)
            .map(|(a, n)| (a - n) as f64)
            .sum::<f64>()
            / b as f64;
    }
    let pz: Vec<f32> = match log_pz {
        Some(lp) => host(lp.exp()),
        None => vec![1.0; b],
    };
    stats.per_example = (0..b)
        .map(|i| ExampleEval {
            loss: -marg_h[i],
            null_loss: -null_h[i],
            p_null: if m.null_doc { pz[i * kz + kz - 1] } else { 0.0 },
            span_hit: held[i].contains(&true),
        })
        .collect();
    if rows.iter().any(|r| !r.is_empty()) {
        let mut ru = 0f64;
        for (i, rs) in rows.iter().enumerate() {
            let top = (0..rs.len())
                .max_by(|&a, &c| pz[i * kz + a].total_cmp(&pz[i * kz + c]))
                .unwrap_or(0);
            let null = ll_h[i * per + per - 1];
            ru += (ll_h[i * per + top] - null) as f64;
            stats.top_hits += usize::from(held[i].get(top).copied().unwrap_or(false));
            let p_null = if m.null_doc {
                pz[i * kz + kz - 1] as f64
            } else {
                0.0
            };
            stats.p_null += p_null;
            let (mut n_held, mut on_held) = (0usize, 0f64);
            for (z, &h) in held[i].iter().enumerate() {
                if h {
                    n_held += 1;
                    on_held += pz[i * kz + z] as f64;
                }
                let acc = if h {
                    &mut stats.ru_held
                } else {
                    &mut stats.ru_other
                };
                acc.0 += (ll_h[i * per + z] - null) as f64;
                acc.1 += 1;
            }
            stats.p_held += on_held;
            if n_held > 0 {
                stats.held_share += on_held / (1.0 - p_null).max(f64::MIN_POSITIVE);
                stats.held_frac += n_held as f64 / rs.len() as f64;
                stats.p_null_hit += p_null;
            } else {
                stats.p_null_miss += p_null;
            }
        }
        stats.ru_top = ru / b as f64;
    }
    let vocab = scored.token_log_probs.dims()[1];
    let logp = host(scored.token_log_probs);
    let mut row = 0usize;
    for (i, mk) in masks.iter().enumerate() {
        let t = mk.labels.len();
        let mut marg = vec![0f32; t * vocab];
        let mut all_right = true;
        let mut null_all_right = true;
        for z in 0..per {
            let rows_z = &logp[(row + z * t) * vocab..(row + (z + 1) * t) * vocab];
            if z < kz {
                let w = pz[i * kz + z];
                for (acc, &lp) in marg.iter_mut().zip(rows_z) {
                    *acc += w * lp.exp();
                }
            }
            if z == per - 1 {
                for (j, &y) in mk.labels.iter().enumerate() {
                    let right = argmax(&rows_z[j * vocab..(j + 1) * vocab]) == y as usize;
                    stats.null_tokens_right += usize::from(right);
                    null_all_right &= right;
                }
            }
        }
        for (j, &y) in mk.labels.iter().enumerate() {
            let right = argmax(&marg[j * vocab..(j + 1) * vocab]) == y as usize;
            stats.tokens_right += usize::from(right);
            all_right &= right;
        }
        stats.tokens += t;
        stats.spans_right += usize::from(all_right);
        stats.null_spans_right += usize::from(null_all_right);
        row += per * t;
    }
    (loss, stats)
}

/// A tensor's values on the host, as f32.
fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32")
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// `Σ_j log Σ_z p(z|x) p(y_j|z,x)` per example, `[b]`. `tok` holds the token
/// log-likelihoods in the reader's pair order (example-major, `per` pairs of `t_i` tokens
/// each, the first `kz` of them scored by `log_pz`).
fn token_marginal<B: Backend>(
    tok: Tensor<B, 1>,
    log_pz: Tensor<B, 2>,
    masks: &[Masked],
    per: usize,
    kz: usize,
) -> Tensor<B, 1> {
    let device = tok.device();
    let b = masks.len();
    let total: usize = masks.iter().map(|mk| mk.labels.len()).sum();
    let (mut gather, mut owner, mut assign) = (
        Vec::with_capacity(total * kz),
        Vec::with_capacity(total),
        vec![0f32; b * total],
    );
    let (mut row, mut t0) = (0usize, 0usize);
    for (i, mk) in masks.iter().enumerate() {
        let t = mk.labels.len();
        for j in 0..t {
            gather.extend((0..kz).map(|z| (row + z * t + j) as i64));
            owner.push(i as i64);
            assign[i * total + t0 + j] = 1.0;
        }
        row += per * t;
        t0 += t;
    }
    let ll = tok
        .select(
            0,
            Tensor::from_data(TensorData::new(gather, [total * kz]), &device),
        )
        .reshape([total, kz]);
    let lp = log_pz.select(
        0,
        Tensor::from_data(TensorData::new(owner, [total]), &device),
    );
    let per_token = log_sum_exp_rows(ll + lp); // [Σ t]
    Tensor::<B, 2>::from_data(TensorData::new(assign, [b, total]), &device)
        .matmul(per_token.reshape([total, 1]))
        .reshape([b])
}

/// `log Σ_j exp(x[i, j])` per row, `[rows]`.
fn log_sum_exp_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let [n, _] = x.dims();
    let max = x.clone().max_dim(1).detach();
    ((x - max.clone()).exp().sum_dim(1).log() + max).reshape([n])
}

/// Starting weights: towers and reader from HF checkpoints.
pub fn init<B: Backend>(cfg: &PretrainConfig, device: &B::Device) -> Result<(Realm<B>, Configs)> {
    let q = ragl_model::checkpoint::load::<B>(&cfg.model.query, device)?;
    let d = ragl_model::checkpoint::load::<B>(cfg.doc_dir(), device)?;
    let r = ragl_model::checkpoint::load::<B>(&cfg.model.reader, device)?;
    let head = match r.mlm {
        // Drawn from the run's seed, like every other fresh parameter.
        _ if cfg.model.fresh_mlm_head => r.config.init::<B>(false, device).1,
        Some(head) => head,
        None => {
            return Err(Error::Mismatch(format!(
                "{}: the reader needs an MLM head (a BertForMaskedLM checkpoint), or model.fresh_mlm_head = true to start one",
                cfg.model.reader.display()
            )));
        }
    };
    if q.config.hidden_size != d.config.hidden_size {
        return Err(Error::Mismatch(
            "the query and doc towers must have the same hidden size".into(),
        ));
    }
    let configs = Configs {
        query: q.config,
        doc: d.config,
        reader: r.config,
    };
    Ok((
        Realm {
            query: q.bert,
            doc: d.bert,
            reader: MlmReader { bert: r.bert, head },
        },
        configs,
    ))
}

/// The BERT configurations of the three parts (to rebuild skeletons when loading).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Configs {
    pub query: BertConfig,
    pub doc: BertConfig,
    pub reader: BertConfig,
}

/// One progress report.
#[derive(Debug, Clone, Copy)]
pub struct PretrainReport {
    pub step: u64,
    pub total: u64,
    pub loss: f64,
    pub accuracy: f64,
    pub utility: f64,
    pub staleness: u64,
    pub refreshes: u64,
}

/// Held-out measures.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EvalReport {
    pub step: u64,
    pub examples: usize,
    pub loss: f64,
    pub token_accuracy: f64,
    pub span_accuracy: f64,
    pub null_token_accuracy: f64,
    pub null_span_accuracy: f64,
    pub utility: f64,
    pub ru_top: f64,
    /// Examples (%) whose masked span is in a retrieved document as the reader sees it.
    pub span_hit: f64,
    /// The same for the first-ranked document.
    pub top_hit: f64,
    /// Mean RU(z|x) of the retrieved documents that hold the span, and of those that do
    /// not (NaN when there are none).
    pub ru_held: f64,
    pub ru_other: f64,
    /// Mean p(∅|x), and mean p(z|x) mass on retrieved documents that hold the span.
    pub p_null: f64,
    pub p_held: f64,
    /// See [`BatchStats::held_share`] (NaN when no example has a span-holding document).
    pub held_share: f64,
    pub held_frac: f64,
    pub p_null_hit: f64,
    pub p_null_miss: f64,
    /// Examples (%) whose masked span is in *some* passage the retriever may return (the
    /// own passage excluded when the run excludes it): the ceiling of `span_hit`.
    pub span_in_corpus: f64,
}

/// Whether `e`'s masked span occurs in a passage of `corpus` other than row `skip`, cut as
/// the reader would cut it.
fn span_found(
    corpus: &Corpus,
    e: &MaskedExample,
    skip: Option<u32>,
    sep: u32,
    max_len: usize,
) -> bool {
    span_holders(corpus, e, skip, sep, max_len).next().is_some()
}

/// The rows of the passages other than `skip` that hold `e`'s masked span, cut as the
/// reader would cut them.
fn span_holders<'a>(
    corpus: &'a Corpus,
    e: &'a MaskedExample,
    skip: Option<u32>,
    sep: u32,
    max_len: usize,
) -> impl Iterator<Item = u32> + 'a {
    corpus
        .reader
        .iter()
        .enumerate()
        .filter(move |&(r, z)| {
            Some(r as u32) != skip
                && holds(doc_view(e.input_ids.len(), z, sep, max_len), &e.masked_ids)
        })
        .map(|(r, _)| r as u32)
}

/// The share (%) of `examples` whose masked span's word pieces occur in some passage the
/// retriever may return, cut as the reader would cut it.
pub fn span_in_corpus(ctx: &StepContext, examples: &[&MaskedExample]) -> f64 {
    let m = &ctx.cfg.model;
    let found = examples
        .iter()
        .filter(|e| span_found(ctx.corpus, e, ctx.skipped_row(e), ctx.sep, m.reader_max_len))
        .count();
    100.0 * found as f64 / examples.len().max(1) as f64
}

/// Evaluates `model` (no gradient) on `examples`: the report, and each example's numbers
/// in `examples`' order.
pub fn evaluate_examples<B: Backend>(
    model: &Realm<B>,
    ctx: &StepContext,
    examples: &[&MaskedExample],
    snap: &Snapshot,
    batch: usize,
    step: u64,
) -> (EvalReport, Vec<ExampleEval>) {
    let mut rng = Rng::new(ctx.cfg.train.seed ^ 0xE7A1);
    let mut sum = BatchStats::default();
    let (mut loss, mut util, mut ru) = (0f64, 0f64, 0f64);
    let mut each = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch.max(1)) {
        let (_, s) = batch_loss(model, ctx, chunk, snap, &mut rng, false);
        loss += s.loss * s.examples as f64;
        util += s.utility * s.examples as f64;
        ru += s.ru_top * s.examples as f64;
        sum.add_counts(&s);
        each.extend(s.per_example);
    }
    let n = sum.examples.max(1) as f64;
    let t = sum.tokens.max(1) as f64;
    let report = EvalReport {
        step,
        examples: sum.examples,
        loss: loss / n,
        token_accuracy: 100.0 * sum.tokens_right as f64 / t,
        span_accuracy: 100.0 * sum.spans_right as f64 / n,
        null_token_accuracy: 100.0 * sum.null_tokens_right as f64 / t,
        null_span_accuracy: 100.0 * sum.null_spans_right as f64 / n,
        utility: util / n,
        ru_top: ru / n,
        span_hit: 100.0 * sum.span_hits as f64 / n,
        top_hit: 100.0 * sum.top_hits as f64 / n,
        ru_held: sum.ru_held.0 / sum.ru_held.1 as f64,
        ru_other: sum.ru_other.0 / sum.ru_other.1 as f64,
        p_null: sum.p_null / n,
        p_held: sum.p_held / n,
        held_share: sum.held_share / sum.span_hits as f64,
        held_frac: sum.held_frac / sum.span_hits as f64,
        p_null_hit: sum.p_null_hit / sum.span_hits as f64,
        p_null_miss: sum.p_null_miss / (sum.examples - sum.span_hits) as f64,
        span_in_corpus: span_in_corpus(ctx, examples),
    };
    (report, each)
}

/// The training / held-out split: a seeded shuffle, the last `heldout` held out.
pub fn split(n: usize, heldout: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed ^ 0x5EED_5917).shuffle(&mut order);
    let h = heldout.min(n.saturating_sub(1));
    let held = order.split_off(n - h);
    (order, held)
}

/// The examples of step `step` (0-based): epochs of a seeded shuffle, the last partial batch
/// of each epoch dropped, so the position is a function of the step alone.
pub fn batch_at(train: &[usize], batch: usize, seed: u64, step: u64) -> Vec<usize> {
    let per_epoch = (train.len() / batch.max(1)).max(1) as u64;
    let epoch = step / per_epoch;
    let pos = (step % per_epoch) as usize;
    let mut order = train.to_vec();
    Rng::new(seed ^ (epoch + 1).wrapping_mul(0x9E37_79B9)).shuffle(&mut order);
    order[pos * batch..(pos * batch + batch).min(order.len())].to_vec()
}

const CKPT_KIND: &str = "realm-pretrain-checkpoint";
const CKPT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CkptState {
    step: u64,
    snapshot_step: u64,
    dim: usize,
    refreshes: u64,
    elapsed_secs: f64,
    configs: Configs,
}

fn save_checkpoint<B: AutodiffBackend, O: Optimizer<Realm<B>, B>>(
    dir: &Path,
    model: &Realm<B>,
    optims: [&O; 2],
    state: &CkptState,
    snap: &Snapshot,
) -> Result<()> {
    let staging = ragl_core::atomic::temp_path(dir);
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| ragl_core::Error::io(&staging, e))?;
    let rec = Recorder::new();
    model
        .clone()
        .save_file(staging.join("model"), &rec)
        .map_err(|e| Error::Mismatch(format!("saving {}: {e}", staging.display())))?;
    for (o, name) in optims.into_iter().zip(OPTIM_FILES) {
        rec.record(o.to_record(), staging.join(name))
            .map_err(|e| Error::Mismatch(format!("saving {}: {e}", staging.display())))?;
    }
    let bytes: Vec<u8> = snap.vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(staging.join("index.f32"), bytes)
        .map_err(|e| ragl_core::Error::io(&staging, e))?;
    let mut m = ragl_core::manifest::Manifest::new(CKPT_KIND, CKPT_VERSION);
    m.config = serde_json::to_value(state).expect("state serialises");
    for f in ["model.mpk", "optim.mpk", "optim_reader.mpk", "index.f32"] {
        m.add_file(&staging, f)?;
    }
    m.write(&staging)?;
    ragl_core::atomic::publish_dir(&staging, dir)?;
    Ok(())
}

/// The towers' AdamW state and the reader's (two learning rates).
const OPTIM_FILES: [&str; 2] = ["optim", "optim_reader"];

type Loaded<B, O> = (Realm<B>, [O; 2], CkptState, Snapshot);

fn load_checkpoint<B: AutodiffBackend, O: Optimizer<Realm<B>, B>>(
    dir: &Path,
    optims: [O; 2],
    device: &B::Device,
) -> Result<Loaded<B, O>> {
    let m = ragl_core::manifest::Manifest::open_checked(dir, CKPT_KIND, CKPT_VERSION, None)?;
    m.verify_files(dir)?;
    let state: CkptState = serde_json::from_value(m.config.clone())
        .map_err(|e| Error::Mismatch(format!("{}: {e}", dir.display())))?;
    let skeleton = skeleton::<B>(&state.configs, device);
    let rec = Recorder::new();
    let model = skeleton
        .load_file(dir.join("model"), &rec, device)
        .map_err(|e| Error::Mismatch(format!("{}: {e}", dir.display())))?;
    let mut loaded = Vec::with_capacity(2);
    for (o, name) in optims.into_iter().zip(OPTIM_FILES) {
        let orec = rec
            .load(dir.join(name), device)
            .map_err(|e| Error::Mismatch(format!("{}: {e}", dir.display())))?;
        loaded.push(o.load_record(orec));
    }
    let optims: [O; 2] = loaded.try_into().map_err(|_| ()).expect("two optimisers");
    let bytes = std::fs::read(dir.join("index.f32")).map_err(|e| ragl_core::Error::io(dir, e))?;
    let vectors = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let snap = Snapshot {
        step: state.snapshot_step,
        dim: state.dim,
        vectors,
    };
    Ok((model, optims, state, snap))
}

fn skeleton<B: Backend>(c: &Configs, device: &B::Device) -> Realm<B> {
    let (query, _) = c.query.init::<B>(false, device);
    let (doc, _) = c.doc.init::<B>(false, device);
    let (bert, head) = c.reader.init::<B>(false, device);
    Realm {
        query,
        doc,
        reader: MlmReader { bert, head },
    }
}

/// Writes the three parts in HF layout under `dir/{query,doc,reader}`, each with its source
/// tokenizer and pooling files, so `ragl index build --model dir/doc` and `ragl finetune-qa`
/// start from them.
pub fn export<B: Backend>(
    model: &Realm<B>,
    configs: &Configs,
    cfg: &PretrainConfig,
    dir: &Path,
) -> Result<()> {
    let parts: [(&str, &Bert<B>, &BertConfig, &Path, bool); 3] = [
        (
            "query",
            &model.query,
            &configs.query,
            &cfg.model.query,
            false,
        ),
        ("doc", &model.doc, &configs.doc, cfg.doc_dir(), false),
        (
            "reader",
            &model.reader.bert,
            &configs.reader,
            &cfg.model.reader,
            true,
        ),
    ];
    for (name, bert, config, src, mlm) in parts {
        let out = dir.join(name);
        let head = mlm.then_some(&model.reader.head);
        ragl_model::checkpoint::save(&out, config, bert, head)?;
        for f in [
            "tokenizer.json",
            "vocab.txt",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "modules.json",
            "1_Pooling/config.json",
        ] {
            let from = src.join(f);
            if from.is_file() {
                let to = out.join(f);
                if let Some(p) = to.parent() {
                    std::fs::create_dir_all(p).map_err(|e| ragl_core::Error::io(p, e))?;
                }
                std::fs::copy(&from, &to).map_err(|e| ragl_core::Error::io(&to, e))?;
            }
        }
    }
    Ok(())
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct PretrainSummary {
    pub steps: u64,
    pub resumed_from: Option<u64>,
    pub refreshes: u64,
    pub minutes: f64,
    pub first: Option<EvalReport>,
    pub last: Option<EvalReport>,
    /// Examples read, and those kept (all of them unless `data.span_elsewhere`).
    pub examples_read: usize,
    pub examples_kept: usize,
}

const METRICS_HEADER: &str = "step,lr,loss,token_acc,span_acc,utility,null_token_acc,index_step,staleness,stale_gap,refresh,secs,ru_top,span_hit,p_null";
const EXAMPLES_HEADER: &str = "step,id,loss,null_loss,utility,p_null,span_hit";
const EVAL_HEADER: &str = "step,examples,loss,token_acc,span_acc,null_token_acc,null_span_acc,utility,ru_top,span_hit,top_hit,span_in_corpus,ru_held,ru_other,p_null,p_held,held_share,held_frac,p_null_hit,p_null_miss";

/// The step of a CSV's last row.
fn last_step_of(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().skip(1).last()?.split(',').next()?.parse().ok()
}

fn append(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| ragl_core::Error::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| ragl_core::Error::io(path, e))?;
    Ok(())
}

/// A refresh the background thread is working on.
struct Refresher<B: Backend> {
    jobs: mpsc::Sender<(u64, Bert<B>)>,
    done: mpsc::Receiver<Snapshot>,
    busy: bool,
}

fn spawn_refresher<B: Backend>(
    corpus: std::sync::Arc<Vec<Encoded>>,
    m: PretrainModel,
    pad: u32,
    r: &RefreshConfig,
    device: B::Device,
) -> Result<Refresher<B>>
where
    Bert<B>: Send + 'static,
{
    // The re-embedding's parallel work (the CPU encoder's and burn-flex's rayon loops) runs
    // in whichever pool it is installed in; its own pool caps its share of the cores.
    let pool = match r.threads {
        0 => None,
        n => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("ragl-refresh-{i}"))
                .build()
                .map_err(|e| Error::Mismatch(format!("refresh.threads = {n}: {e}")))?,
        ),
    };
    let batch = r.batch_size;
    let (jobs, rx) = mpsc::channel::<(u64, Bert<B>)>();
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok((step, doc)) = rx.recv() {
            let dim = doc.hidden_size();
            let embed = || embed_corpus(&doc, &corpus, &m, pad, batch, &device);
            let vectors = match &pool {
                Some(p) => p.install(embed),
                None => embed(),
            };
            if tx.send(Snapshot { step, dim, vectors }).is_err() {
                break;
            }
        }
    });
    Ok(Refresher {
        jobs,
        done,
        busy: false,
    })
}

/// Trains from `cfg` into `run_dir`, resuming from `run_dir/checkpoint` when it is there.
/// `max_steps` / `max_minutes` override the config's (to stop a run early; the schedule
/// still follows the config's `max_steps`).
pub fn pretrain<B: AutodiffBackend>(
    cfg: &PretrainConfig,
    run_dir: &Path,
    device: &B::Device,
    stop_after: Option<u64>,
    progress: impl FnMut(PretrainReport),
    on_eval: impl FnMut(&EvalReport),
) -> Result<PretrainSummary>
where
    Bert<B::InnerBackend>: Send + 'static,
{
    pretrain_with_ict::<B>(cfg, run_dir, device, stop_after, progress, on_eval, |_| {})
}

/// [`pretrain`], reporting each step of the ICT warm start (`[ict]`) to `on_ict`.
pub fn pretrain_with_ict<B: AutodiffBackend>(
    cfg: &PretrainConfig,
    run_dir: &Path,
    device: &B::Device,
    stop_after: Option<u64>,
    mut progress: impl FnMut(PretrainReport),
    mut on_eval: impl FnMut(&EvalReport),
    on_ict: impl FnMut(&crate::ict::IctStep),
) -> Result<PretrainSummary>
where
    Bert<B::InnerBackend>: Send + 'static,
{
    let t0 = Instant::now();
    let t = &cfg.train;
    let m = &cfg.model;
    B::seed(device, t.seed);
    std::fs::create_dir_all(run_dir).map_err(|e| ragl_core::Error::io(run_dir, e))?;
    let cfg_path = run_dir.join("config.json");
    let cfg_json = serde_json::to_vec_pretty(cfg).expect("config serialises");
    let ckpt_dir = run_dir.join("checkpoint");
    if ckpt_dir.exists() {
        let old = std::fs::read(&cfg_path).map_err(|e| ragl_core::Error::io(&cfg_path, e))?;
        let old: PretrainConfig = serde_json::from_slice(&old)
            .map_err(|e| Error::Mismatch(format!("{}: {e}", cfg_path.display())))?;
        if old.data != cfg.data
            || old.model != cfg.model
            || old.refresh != cfg.refresh
            || old.ict != cfg.ict
        {
            return Err(Error::Mismatch(format!(
                "{} holds a run with another configuration; use a new --run directory",
                run_dir.display()
            )));
        }
    }
    ragl_core::atomic::write_bytes_atomic(&cfg_path, &cfg_json)?;

    let tower_tok = TextTokenizer::from_dir(&m.query, m.doc_max_len)?;
    let reader_tok = TextTokenizer::from_dir(&m.reader, 512)?;
    if tower_tok.vocab_size() != reader_tok.vocab_size()
        || tower_tok.token_to_id("[MASK]") != reader_tok.token_to_id("[MASK]")
    {
        return Err(Error::Mismatch(format!(
            "{} and {} have different vocabularies: the towers read the reader's masked ids",
            m.query.display(),
            m.reader.display()
        )));
    }
    let sep = reader_tok
        .token_to_id("[SEP]")
        .ok_or_else(|| Error::Mismatch("the reader's tokenizer has no [SEP]".into()))?;
    let corpus = Corpus::load(&cfg.data.passages, &tower_tok, &reader_tok)?;
    let examples = read_examples(&cfg.data.examples)?;
    if let Some(e) = examples
        .iter()
        .find(|e| !corpus.row_of.contains_key(&e.passage_id))
    {
        return Err(Error::Mismatch(format!(
            "{}: example {} comes from passage {:?}, which {} does not have",
            cfg.data.examples.display(),
            e.id,
            e.passage_id,
            cfg.data.passages.display()
        )));
    }
    let examples_read = examples.len();
    let examples: Vec<MaskedExample> = if cfg.data.span_elsewhere {
        let kept: Vec<MaskedExample> = examples
            .into_iter()
            .filter(|e| {
                let own = corpus.row_of.get(&e.passage_id).copied();
                span_found(&corpus, e, own, sep, m.reader_max_len)
            })
            .collect();
        if kept.len() < 2 {
            return Err(Error::Mismatch(format!(
                "{}: data.span_elsewhere keeps {} example(s): too few to train and hold out",
                cfg.data.examples.display(),
                kept.len()
            )));
        }
        kept
    } else {
        examples
    };
    let (train_ix, held_ix) = split(examples.len(), cfg.data.heldout, t.seed);
    let held: Vec<&MaskedExample> = held_ix.iter().map(|&i| &examples[i]).collect();
    let ctx = StepContext {
        cfg,
        corpus: &corpus,
        tower_pad: tower_tok.pad_id,
        reader_pad: reader_tok.pad_id,
        sep,
    };

    let mut optim_cfg = AdamWConfig::new()
        .with_weight_decay(t.weight_decay)
        .with_epsilon(1e-8);
    if t.clip_norm > 0.0 {
        optim_cfg = optim_cfg.with_grad_clipping(Some(GradientClippingConfig::Norm(t.clip_norm)));
    }
    let optims = [
        optim_cfg.clone().init::<B, Realm<B>>(),
        optim_cfg.init::<B, Realm<B>>(),
    ];
    let metrics = run_dir.join("metrics.csv");
    let evals = run_dir.join("eval.csv");
    let eval_examples = run_dir.join("eval_examples.csv");
    let (
        mut model,
        [mut optim, mut optim_reader],
        mut snap,
        configs,
        mut step,
        mut refreshes,
        resumed,
        elapsed0,
    ) = if ckpt_dir.exists() {
        let (model, optims, st, snap) = load_checkpoint::<B, _>(&ckpt_dir, optims, device)?;
        ragl_core::atomic::truncate_steps(&metrics, METRICS_HEADER, st.step)?;
        ragl_core::atomic::truncate_steps(&evals, EVAL_HEADER, st.step)?;
        ragl_core::atomic::truncate_steps(&eval_examples, EXAMPLES_HEADER, st.step)?;
        let s = st.step;
        (
            model,
            optims,
            snap,
            st.configs,
            s,
            st.refreshes,
            Some(s),
            st.elapsed_secs,
        )
    } else {
        let (mut model, configs) = init::<B>(cfg, device)?;
        if cfg.ict.steps > 0 {
            let towers = crate::ict::Towers {
                query: model.query,
                doc: model.doc,
            };
            let (towers, log) = crate::ict::warm_start(
                towers,
                &corpus.passages,
                &tower_tok,
                m,
                &cfg.ict,
                t.seed,
                on_ict,
            )?;
            model.query = towers.query;
            model.doc = towers.doc;
            let path = run_dir.join("ict.csv");
            ragl_core::atomic::write_atomic(&path, |w| {
                writeln!(w, "step,loss,accuracy")?;
                for r in &log {
                    writeln!(w, "{},{:.5},{:.2}", r.step, r.loss, r.accuracy)?;
                }
                Ok(())
            })?;
        }
        let inner = model.doc.valid();
        // Only MIPS reads the index.
        let vectors = if m.retrieval == Retrieval::Dense {
            embed_corpus(
                &inner,
                &corpus.tower,
                m,
                tower_tok.pad_id,
                cfg.refresh.batch_size,
                device,
            )
        } else {
            Vec::new()
        };
        let snap = Snapshot {
            step: 0,
            dim: inner.hidden_size(),
            vectors,
        };
        ragl_core::atomic::truncate_steps(&metrics, METRICS_HEADER, 0)?;
        ragl_core::atomic::truncate_steps(&evals, EVAL_HEADER, 0)?;
        ragl_core::atomic::truncate_steps(&eval_examples, EXAMPLES_HEADER, 0)?;
        (model, optims, snap, configs, 0, 0, None, 0.0)
    };
    let elapsed = |t0: &Instant| elapsed0 + t0.elapsed().as_secs_f64();

    let refreshing = cfg.refresh.every > 0 && m.retrieval == Retrieval::Dense;
    let mut refresher = if refreshing && cfg.refresh.mode == RefreshMode::Async {
        Some(spawn_refresher::<B::InnerBackend>(
            std::sync::Arc::new(corpus.tower.clone()),
            m.clone(),
            tower_tok.pad_id,
            &cfg.refresh,
            device.clone(),
        )?)
    } else {
        None
    };
    let total = t.max_steps;
    let stop = stop_after.map_or(total, |s| s.min(total));
    let lr_at = |s: u64| crate::warmup_linear_decay(t.lr, t.warmup, total, s);
    let state = |snap: &Snapshot, step, refreshes| CkptState {
        step,
        snapshot_step: snap.step,
        dim: snap.dim,
        refreshes,
        elapsed_secs: elapsed(&t0),
        configs: configs.clone(),
    };
    let reader_lr_at =
        |s: u64| crate::warmup_linear_decay(t.reader_lr.unwrap_or(t.lr), t.warmup, total, s);
    let eval_batch = t.batch.max(1) * 2;
    // A held-out evaluation, appended to eval.csv and, one row an example, eval_examples.csv.
    let eval_at = |model: &Realm<B>, snap: &Snapshot, step: u64| -> Result<EvalReport> {
        let (e, each) = evaluate_examples(&model.valid(), &ctx, &held, snap, eval_batch, step);
        append(&evals, &eval_line(&e))?;
        let rows: Vec<String> = held
            .iter()
            .zip(&each)
            .map(|(x, v)| {
                format!(
                    "{step},{},{:.5},{:.5},{:.5},{:.4},{}",
                    csv_field(&x.id),
                    v.loss,
                    v.null_loss,
                    v.null_loss - v.loss,
                    v.p_null,
                    u8::from(v.span_hit)
                )
            })
            .collect();
        append(&eval_examples, &rows.join("\n"))?;
        Ok(e)
    };
    let mut summary = PretrainSummary {
        steps: step,
        resumed_from: resumed,
        refreshes,
        minutes: 0.0,
        first: None,
        last: None,
        examples_read,
        examples_kept: examples.len(),
    };
    // The held-out evaluation of the resume step is already in eval.csv when it was made.
    let mut last_eval = if resumed.is_some() {
        last_step_of(&evals).unwrap_or(u64::MAX)
    } else {
        u64::MAX
    };
    let mut last_saved = if resumed.is_some() { step } else { u64::MAX };
    if resumed.is_none() {
        last_eval = 0;
        let e = eval_at(&model, &snap, 0)?;
        on_eval(&e);
        summary.first = Some(e);
    }
    while step < stop {
        if t.max_minutes
            .is_some_and(|mm| t0.elapsed().as_secs_f64() / 60.0 >= mm)
        {
            break;
        }
        let mut event = String::new();
        // Swap in a finished refresh (never wait for one).
        if let Some(r) = refresher.as_mut()
            && r.busy
            && let Ok(s) = r.done.try_recv()
        {
            r.busy = false;
            event = format!("swap@{}", s.step);
            snap = s;
            refreshes += 1;
        }
        if refreshing && step > 0 && step.is_multiple_of(cfg.refresh.every) {
            match refresher.as_mut() {
                Some(r) if !r.busy => {
                    r.jobs
                        .send((step, model.doc.valid()))
                        .map_err(|_| Error::Mismatch("the refresh thread stopped".into()))?;
                    r.busy = true;
                    event = if event.is_empty() {
                        "start".into()
                    } else {
                        format!("{event}+start")
                    };
                }
                Some(_) => event = format!("{event}skip"),
                None => {
                    let inner = model.doc.valid();
                    snap = Snapshot {
                        step,
                        dim: inner.hidden_size(),
                        vectors: embed_corpus(
                            &inner,
                            &corpus.tower,
                            m,
                            tower_tok.pad_id,
                            cfg.refresh.batch_size,
                            device,
                        ),
                    };
                    refreshes += 1;
                    event = format!("sync@{step}");
                }
            }
        }
        let ix = batch_at(&train_ix, t.batch, t.data_seed.unwrap_or(t.seed), step);
        let batch: Vec<&MaskedExample> = ix.iter().map(|&i| &examples[i]).collect();
        let mut rng = Rng::new(t.seed ^ step.wrapping_mul(0xA24B_AED4_963E_E407));
        step += 1;
        let (loss, s) = batch_loss(&model, &ctx, &batch, &snap, &mut rng, !t.freeze_doc);
        let lr = lr_at(step);
        let mut g = loss.backward();
        let reader_grads = GradientsParams::from_module(&mut g, &model.reader);
        let tower_grads = if t.freeze_doc {
            GradientsParams::from_module(&mut g, &model.query)
        } else {
            GradientsParams::from_grads(g, &model)
        };
        if t.lr > 0.0 {
            model = optim.step(lr, model, tower_grads);
        }
        model = optim_reader.step(reader_lr_at(step), model, reader_grads);
        // Only MIPS reads the index; other modes have none to be stale, and a frozen doc
        // tower's index is exact.
        let staleness = if m.retrieval == Retrieval::Dense && !t.freeze_doc {
            step - 1 - snap.step
        } else {
            0
        };
        let acc = 100.0 * s.tokens_right as f64 / s.tokens.max(1) as f64;
        append(
            &metrics,
            &format!(
                "{step},{lr:.3e},{:.5},{acc:.2},{:.2},{:.5},{:.2},{},{staleness},{:.5},{event},{:.3},{:.5},{:.2},{:.4}",
                s.loss,
                100.0 * s.spans_right as f64 / s.examples.max(1) as f64,
                s.utility,
                100.0 * s.null_tokens_right as f64 / s.tokens.max(1) as f64,
                snap.step,
                s.stale_gap,
                elapsed(&t0),
                s.ru_top,
                100.0 * s.span_hits as f64 / s.examples.max(1) as f64,
                s.p_null / s.examples.max(1) as f64
            ),
        )?;
        progress(PretrainReport {
            step,
            total,
            loss: s.loss,
            accuracy: acc,
            utility: s.utility,
            staleness,
            refreshes,
        });
        if t.eval_every > 0 && step.is_multiple_of(t.eval_every) {
            let e = eval_at(&model, &snap, step)?;
            on_eval(&e);
            last_eval = step;
            summary.last = Some(e);
        }
        if t.save_every > 0 && step.is_multiple_of(t.save_every) {
            let st = state(&snap, step, refreshes);
            save_checkpoint(&ckpt_dir, &model, [&optim, &optim_reader], &st, &snap)?;
            last_saved = step;
        }
    }
    // However the loop ended (all steps, --stop-after, the time budget): the held-out
    // numbers, a checkpoint and the exported towers of the last step.
    if last_eval != step {
        let e = eval_at(&model, &snap, step)?;
        on_eval(&e);
        summary.last = Some(e);
    }
    if last_saved != step {
        let st = state(&snap, step, refreshes);
        save_checkpoint(&ckpt_dir, &model, [&optim, &optim_reader], &st, &snap)?;
    }
    export(&model.valid(), &configs, cfg, &run_dir.join("export"))?;
    summary.steps = step;
    summary.refreshes = refreshes;
    summary.minutes = t0.elapsed().as_secs_f64() / 60.0;
    Ok(summary)
}

/// `s` as one CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn eval_line(e: &EvalReport) -> String {
    format!(
        "{},{},{:.5},{:.2},{:.2},{:.2},{:.2},{:.5},{:.5},{:.2},{:.2},{:.2},{:.5},{:.5},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}",
        e.step,
        e.examples,
        e.loss,
        e.token_accuracy,
        e.span_accuracy,
        e.null_token_accuracy,
        e.null_span_accuracy,
        e.utility,
        e.ru_top,
        e.span_hit,
        e.top_hit,
        e.span_in_corpus,
        e.ru_held,
        e.ru_other,
        e.p_null,
        e.p_held,
        e.held_share,
        e.held_frac,
        e.p_null_hit,
        e.p_null_miss
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn the_token_marginal_sums_each_tokens_own_mixture() {
        type B = Flex;
        let device = Default::default();
        // Two examples, kz = 2 scored pairs plus the extra ∅ pair (per = 3); the first
        // masks 2 tokens, the second 1. Token rows in pair order: example 0's pairs
        // (2 rows each), then example 1's (1 row each).
        let masks = vec![
            Masked {
                positions: vec![1, 2],
                labels: vec![5, 6],
            },
            Masked {
                positions: vec![1],
                labels: vec![7],
            },
        ];
        let tok: Vec<f32> = vec![-1.0, -2.0, -3.0, -0.5, -9.0, -9.0, -0.7, -1.5, -9.0];
        let pz = [[0.25f64, 0.75], [0.6, 0.4]];
        let lp: Vec<f32> = pz.iter().flatten().map(|p| p.ln() as f32).collect();
        let got: Vec<f32> = token_marginal(
            Tensor::<B, 1>::from_data(TensorData::new(tok, [9]), &device),
            Tensor::<B, 2>::from_data(TensorData::new(lp, [2, 2]), &device),
            &masks,
            3,
            2,
        )
        .into_data()
        .to_vec()
        .unwrap();
        let mix = |p: [f64; 2], a: f64, b: f64| (p[0] * a.exp() + p[1] * b.exp()).ln();
        let want0 = mix(pz[0], -1.0, -3.0) + mix(pz[0], -2.0, -0.5);
        let want1 = mix(pz[1], -0.7, -1.5);
        assert!(
            (got[0] as f64 - want0).abs() < 1e-5,
            "{} vs {want0}",
            got[0]
        );
        assert!(
            (got[1] as f64 - want1).abs() < 1e-5,
            "{} vs {want1}",
            got[1]
        );
        // For a sentence of two tokens the two marginals differ.
        let span0 = mix(pz[0], -3.0, -3.5);
        assert!((span0 - want0).abs() > 0.1);
    }

    #[test]
    fn batches_depend_on_the_step_alone() {
        let train: Vec<usize> = (0..10).collect();
        let a = batch_at(&train, 3, 7, 4);
        let b = batch_at(&train, 3, 7, 4);
        assert_eq!(a, b);
        // An epoch is 3 batches (the tenth example is dropped); every batch of an epoch is
        // distinct.
        let e: Vec<usize> = (0..3).flat_map(|s| batch_at(&train, 3, 7, s)).collect();
        let mut u = e.clone();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), 9);
        assert_ne!(batch_at(&train, 3, 7, 0), batch_at(&train, 3, 7, 3));
    }

    #[test]
    fn a_span_is_found_in_the_document_part_only() {
        let x = [101, 7, 103, 102];
        let z = [5, 6, 9, 102];
        let seen = doc_view(x.len(), &z, 102, 64);
        assert_eq!(seen, &join(&x, Some(&z), 102, 64).ids[x.len()..x.len() + 3]);
        assert!(holds(seen, &[6, 9]));
        // In x (where it is not masked, here 7) but not in z: no hit.
        assert!(!holds(seen, &[7]));
        // Cut off by the reader's length: no hit.
        assert!(!holds(doc_view(x.len(), &z, 102, 7), &[9]));
        assert!(!holds(&[1, 2], &[]));
    }

    #[test]
    fn split_holds_out_the_asked_number() {
        let (tr, he) = split(100, 10, 1);
        assert_eq!((tr.len(), he.len()), (90, 10));
        let mut all: Vec<usize> = tr.iter().chain(&he).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }
}
