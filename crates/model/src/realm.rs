//! REALM's released checkpoints (`google/realm-*`, `model_type: realm`, transformers ≤ 4.4x
//! `models/deprecated/realm`) as ragl modules: the embedder every tower is
//! ([`RealmEmbedder`]: BERT, its tanh pooler on `[CLS]`, a projection to
//! `retriever_proj_size` and a LayerNorm — `RealmEmbedder.projected_score`), and the open-QA
//! reader ([`RealmReader`]: BERT and `RealmReaderProjection`, the span head that scores every
//! span of up to `max_span_width` tokens from a start and an end projection).
//!
//! Names: a stand-alone embedder (`realm-cc-news-pretrained-embedder`) holds `realm.…` (the
//! BERT) and `cls.dense`/`cls.LayerNorm` (the projection; `cls.predictions.…` is an MLM head
//! the projection never uses); `RealmForOpenQA` (`realm-orqa-*-openqa`) holds the embedder
//! under `embedder.`, the reader under `reader.` (`reader.realm.…`, `reader.qa_outputs.…`,
//! and an unused `reader.cls.predictions.…`), and `block_emb`, the block embeddings, which
//! [`block_emb`] reads in place instead of loading.

use std::path::{Path, PathBuf};

use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use serde::Deserialize;

use crate::bert::{Bert, BertConfig, BertInput};
use crate::checkpoint::bert_from_weights;
use crate::weights::{Weights, linear, norm, weights_file};
use crate::{Error, Result};

/// `RealmConfig`: BERT's keys and REALM's own.
#[derive(Debug, Clone)]
pub struct RealmConfig {
    pub bert: BertConfig,
    pub architectures: Vec<String>,
    pub retriever_proj_size: usize,
    pub span_hidden_size: usize,
    pub max_span_width: usize,
    pub reader_layer_norm_eps: f64,
    pub reader_seq_len: usize,
    pub reader_beam_size: usize,
    pub num_block_records: usize,
}

#[derive(Deserialize)]
struct Extras {
    #[serde(default = "proj")]
    retriever_proj_size: usize,
    #[serde(default = "span")]
    span_hidden_size: usize,
    #[serde(default = "width")]
    max_span_width: usize,
    #[serde(default = "reader_eps")]
    reader_layer_norm_eps: f64,
    #[serde(default = "seq")]
    reader_seq_len: usize,
    #[serde(default = "beam")]
    reader_beam_size: usize,
    #[serde(default = "blocks")]
    num_block_records: usize,
}

// RealmConfig's defaults.
fn proj() -> usize {
    128
}
fn span() -> usize {
    256
}
fn width() -> usize {
    10
}
fn reader_eps() -> f64 {
    1e-3
}
fn seq() -> usize {
    320
}
fn beam() -> usize {
    5
}
fn blocks() -> usize {
    13_353_718
}

fn config_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        line: 0,
        message: message.into(),
    }
}

/// Whether `dir` holds a REALM checkpoint (`model_type: realm`).
pub fn is_realm_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .is_some_and(|v| v.get("model_type").and_then(|t| t.as_str()) == Some("realm"))
}

pub fn read_config(dir: &Path) -> Result<RealmConfig> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| ragl_core::Error::io(&path, e))?;
    let json_err = |e: serde_json::Error| Error::Config {
        path: path.clone(),
        line: e.line(),
        message: e.to_string(),
    };
    let mut bert: BertConfig = serde_json::from_str(&text).map_err(json_err)?;
    let extras: Extras = serde_json::from_str(&text).map_err(json_err)?;
    if bert.model_type.as_deref() != Some("realm") {
        return Err(config_error(
            &path,
            format!("model_type is {:?}, not \"realm\"", bert.model_type),
        ));
    }
    let architectures = bert.architectures.clone().unwrap_or_default();
    // Its BERT is a BERT.
    bert.model_type = Some("bert".into());
    bert.validate().map_err(|m| config_error(&path, m))?;
    Ok(RealmConfig {
        bert,
        architectures,
        retriever_proj_size: extras.retriever_proj_size,
        span_hidden_size: extras.span_hidden_size,
        max_span_width: extras.max_span_width,
        reader_layer_norm_eps: extras.reader_layer_norm_eps,
        reader_seq_len: extras.reader_seq_len,
        reader_beam_size: extras.reader_beam_size,
        num_block_records: extras.num_block_records,
    })
}

/// `RealmScorerProjection` without its unused MLM head: the pooled `[CLS]` state →
/// `retriever_proj_size`, then a LayerNorm. Also what makes a REALM embedder a tower of
/// [`crate::encode::Encoder`].
#[derive(Module, Debug)]
pub struct RealmProjection<B: Backend> {
    /// `cls.dense`
    pub dense: Linear<B>,
    /// `cls.LayerNorm`
    pub norm: LayerNorm<B>,
}

impl<B: Backend> RealmProjection<B> {
    /// A fresh projection `d → proj` (a skeleton for loading a saved one into).
    pub fn new(d: usize, proj: usize, eps: f64, device: &B::Device) -> Self {
        RealmProjection {
            dense: burn::nn::LinearConfig::new(d, proj).init(device),
            norm: crate::bert::layer_norm(proj, eps, device),
        }
    }

    pub fn forward(&self, pooled: Tensor<B, 2>) -> Tensor<B, 2> {
        self.norm.forward(self.dense.forward(pooled))
    }

    pub fn dim(&self) -> usize {
        self.dense.weight.dims()[1]
    }
}

/// `RealmEmbedder`: texts → `retriever_proj_size`-d vectors.
#[derive(Module, Debug)]
pub struct RealmEmbedder<B: Backend> {
    pub bert: Bert<B>,
    pub projection: RealmProjection<B>,
}

impl<B: Backend> RealmEmbedder<B> {
    /// `projected_score`: LayerNorm(dense(tanh(pooler(h[CLS])))), `[batch, proj]`.
    pub fn forward(&self, input: &BertInput<B>) -> Tensor<B, 2> {
        let h = self.bert.forward(input);
        let pooled = self
            .bert
            .pooled(h)
            .expect("a REALM embedder always has its pooler");
        self.projection.forward(pooled)
    }
}

/// `RealmReader`'s span scoring (`qa_outputs`, `RealmReaderProjection`).
#[derive(Module, Debug)]
pub struct RealmReader<B: Backend> {
    pub bert: Bert<B>,
    /// `qa_outputs.dense_intermediate`: hidden → 2 × span hidden (start half, end half).
    pub intermediate: Linear<B>,
    /// `qa_outputs.dense_output`: span hidden → 1.
    pub output: Linear<B>,
    /// `qa_outputs.layer_normalization`
    pub norm: LayerNorm<B>,
    pub max_span_width: usize,
}

/// One candidate span's score (before the retrieval score is added).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanScore {
    pub start: usize,
    pub end: usize,
    pub logit: f32,
}

impl<B: Backend> RealmReader<B> {
    /// The logits of every span `[start, end]` of width ≤ `max_span_width` whose both ends
    /// lie inside each row's block (`block_mask`, `[rows][positions]`), per row.
    /// Candidates are laid out as transformers lays them out: by width, then start.
    pub fn span_logits(
        &self,
        input: &BertInput<B>,
        block_mask: &[Vec<bool>],
    ) -> Vec<Vec<SpanScore>> {
        let h = self.bert.forward(input);
        let [rows, len, _] = h.dims();
        let proj = self.intermediate.forward(h);
        let span = proj.dims()[2] / 2;
        let starts = proj.clone().slice([0..rows, 0..len, 0..span]);
        let ends = proj.slice([0..rows, 0..len, span..2 * span]);
        let mut cands: Vec<(usize, usize)> = Vec::new();
        for w in 1..=self.max_span_width.min(len) {
            for s in 0..=len - w {
                cands.push((s, s + w - 1));
            }
        }
        let device = starts.device();
        let idx = |v: Vec<i64>| {
            Tensor::<B, 1, Int>::from_data(TensorData::new(v.clone(), [v.len()]), &device)
        };
        let si = idx(cands.iter().map(|c| c.0 as i64).collect());
        let ei = idx(cands.iter().map(|c| c.1 as i64).collect());
        let hidden = starts.select(1, si) + ends.select(1, ei);
        let hidden = self.norm.forward(burn::tensor::activation::relu(hidden));
        let logits: Vec<f32> = self
            .output
            .forward(hidden)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32");
        let n = cands.len();
        (0..rows)
            .map(|r| {
                let m = &block_mask[r];
                cands
                    .iter()
                    .enumerate()
                    .filter(|(_, (s, e))| {
                        m.get(*s).copied().unwrap_or(false) && m.get(*e).copied().unwrap_or(false)
                    })
                    .map(|(i, &(start, end))| SpanScore {
                        start,
                        end,
                        logit: logits[r * n + i],
                    })
                    .collect()
            })
            .collect()
    }
}

/// The checkpoint's weights file, refused with one message when there is none.
pub fn weights_path(dir: &Path) -> Result<PathBuf> {
    weights_file(dir).ok_or_else(|| Error::MissingFile {
        dir: dir.to_path_buf(),
        file: "model.safetensors or pytorch_model.bin",
    })
}

fn embedder_from<B: Backend>(
    w: &mut Weights,
    c: &RealmConfig,
    device: &B::Device,
) -> Result<RealmEmbedder<B>> {
    w.strip("realm.");
    // The MLM head REALM's projection carries (untied, never used for a projection).
    w.split("cls.predictions.");
    let (bert, _) = bert_from_weights(w, &c.bert, device)?;
    if bert.pooler.is_none() {
        return Err(Error::Weights {
            path: w.path.clone(),
            message: "no pooler (realm.pooler.dense): not a REALM embedder".into(),
        });
    }
    let (d, p) = (c.bert.hidden_size, c.retriever_proj_size);
    Ok(RealmEmbedder {
        bert,
        projection: RealmProjection {
            dense: linear(w, "cls.dense", d, p, device)?,
            norm: norm(w, "cls.LayerNorm", p, c.bert.layer_norm_eps, device)?,
        },
    })
}

/// Loaded REALM parts and the weights file's SHA-256.
pub struct Loaded<B: Backend> {
    pub config: RealmConfig,
    pub embedder: RealmEmbedder<B>,
    pub reader: Option<RealmReader<B>>,
    pub fingerprint: String,
    pub weights: PathBuf,
}

/// Loads the embedder of any REALM checkpoint that has one (`RealmEmbedder`; the
/// `embedder.` of `RealmScorer` and `RealmForOpenQA`) and, for `RealmForOpenQA`, the
/// reader. `block_emb` is left in the file.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<Loaded<B>> {
    load_parts(dir, device, true)
}

/// The embedder alone (a query or document tower): an open-QA checkpoint's reader is
/// skipped, not loaded.
pub fn load_embedder<B: Backend>(dir: &Path, device: &B::Device) -> Result<Loaded<B>> {
    load_parts(dir, device, false)
}

const SKIP: [&str; 4] = [
    "block_emb",
    "realm.embeddings.position_ids",
    "embedder.realm.embeddings.position_ids",
    "reader.realm.embeddings.position_ids",
];

fn load_parts<B: Backend>(dir: &Path, device: &B::Device, with_reader: bool) -> Result<Loaded<B>> {
    let config = read_config(dir)?;
    let path = weights_path(dir)?;
    let (mut w, fingerprint) = Weights::open(&path, &[], &SKIP)?;
    let (embedder, reader) = if w.has_prefix("embedder.") {
        let mut e = w.split("embedder.");
        let embedder = embedder_from(&mut e, &config, device)?;
        finish(e, "embedder.")?;
        let reader = if !w.has_prefix("reader.") {
            None
        } else if with_reader {
            let mut r = w.split("reader.");
            let reader = reader_from(&mut r, &config, device)?;
            finish(r, "reader.")?;
            Some(reader)
        } else {
            drop(w.split("reader."));
            None
        };
        (embedder, reader)
    } else if w.has_prefix("realm.") && w.has_prefix("cls.dense") {
        (embedder_from(&mut w, &config, device)?, None)
    } else if w.has_prefix("realm.") && w.has_prefix("cls.predictions.") {
        return Err(Error::Weights {
            path: path.clone(),
            message: "a RealmKnowledgeAugEncoder (REALM's pretraining reader: BERT and an MLM head) has no retriever embedder: use it where a reader goes (ragl pretrain model.reader, ragl finetune-qa model.reader)".into(),
        });
    } else {
        return Err(Error::Weights {
            path: path.clone(),
            message: format!(
                "a REALM checkpoint ragl cannot use ({}): it reads RealmEmbedder (realm.… + cls.dense), RealmScorer (embedder.…), RealmKnowledgeAugEncoder (realm.… + cls.predictions) and RealmForOpenQA (embedder.… + reader.… + block_emb)",
                config.architectures.join(", ")
            ),
        });
    };
    finish(w, "")?;
    Ok(Loaded {
        config,
        embedder,
        reader,
        fingerprint,
        weights: path,
    })
}

fn reader_from<B: Backend>(
    r: &mut Weights,
    config: &RealmConfig,
    device: &B::Device,
) -> Result<RealmReader<B>> {
    r.strip("realm.");
    r.split("cls.predictions.");
    let (bert, _) = bert_from_weights(r, &config.bert, device)?;
    let (d, s) = (config.bert.hidden_size, config.span_hidden_size);
    Ok(RealmReader {
        bert,
        intermediate: linear(r, "qa_outputs.dense_intermediate", d, 2 * s, device)?,
        output: linear(r, "qa_outputs.dense_output", s, 1, device)?,
        norm: norm(
            r,
            "qa_outputs.layer_normalization",
            s,
            config.reader_layer_norm_eps,
            device,
        )?,
        max_span_width: config.max_span_width,
    })
}

/// `RealmKnowledgeAugEncoder` (`realm-cc-news-pretrained-encoder`, REALM's pretraining
/// reader: `realm.…` and the `cls.predictions` MLM head) as a BERT checkpoint, the form
/// every ragl reader starts from. The other REALM layouts are retriever towers with a
/// projection, which a BERT checkpoint cannot hold: refused with a message saying where
/// they go.
pub fn load_bert<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<crate::checkpoint::Checkpoint<B>> {
    let config = read_config(dir)?;
    let path = weights_path(dir)?;
    let (mut w, fingerprint) = Weights::open(&path, &[], &SKIP)?;
    if !(w.has_prefix("realm.") && w.has_prefix("cls.predictions.") && !w.has_prefix("cls.dense")) {
        return Err(Error::Weights {
            path,
            message: format!(
                "a REALM {} is a retriever (BERT + a projection to {}-d), not a BERT: it goes where ragl takes an encoder (embed, index build, retrieve, predict-qa, finetune-qa's query tower), not a pretraining tower or a reader; as a reader ragl takes REALM's knowledge-augmented encoder (realm-cc-news-pretrained-encoder)",
                config.architectures.join(", "),
                config.retriever_proj_size
            ),
        });
    }
    w.strip("realm.");
    let (bert, mlm) = bert_from_weights(&mut w, &config.bert, device)?;
    let unused = w.finish()?;
    Ok(crate::checkpoint::Checkpoint {
        config: config.bert,
        bert,
        mlm,
        report: crate::checkpoint::LoadReport {
            unused,
            fingerprint,
        },
    })
}

/// Refuses leftover tensors (the MLM heads REALM carries unused are split off before).
fn finish(w: Weights, what: &str) -> Result<()> {
    let path = w.path.clone();
    let unused: Vec<String> = w
        .finish()?
        .into_iter()
        .filter(|n| n != "block_emb")
        .collect();
    if !unused.is_empty() {
        return Err(Error::Weights {
            path,
            message: format!(
                "{} tensor(s) under {what:?} this REALM loader does not know: {}",
                unused.len(),
                unused.join(", ")
            ),
        });
    }
    Ok(())
}

/// REALM's block embeddings (`block_emb`, `[num_block_records, retriever_proj_size]` f32),
/// read in place from the checkpoint's memory map: 13.35M × 128 is 6.8 GB, never copied.
pub struct BlockEmb {
    source: BlockSource,
    range: std::ops::Range<usize>,
    pub rows: usize,
    pub dim: usize,
}

enum BlockSource {
    Torch(crate::torch::TorchFile),
    Map(memmap2::Mmap),
}

impl BlockEmb {
    pub fn open(path: &Path) -> Result<BlockEmb> {
        let bad = |m: &str| Error::Weights {
            path: path.to_path_buf(),
            message: m.to_string(),
        };
        let mut head = [0u8; 4];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(|e| ragl_core::Error::io(path, e))?;
            f.read_exact(&mut head)
                .map_err(|e| ragl_core::Error::io(path, e))?;
        }
        let (source, range, shape) = if crate::torch::is_zip(&head) {
            let t = crate::torch::TorchFile::open(path)?;
            let r = t
                .tensors
                .iter()
                .find(|(n, _)| n == "block_emb")
                .map(|(_, r)| r.clone())
                .ok_or_else(|| {
                    bad("no block_emb in the weights (not a RealmForOpenQA checkpoint)")
                })?;
            if r.dtype != crate::torch::DType::F32 {
                return Err(bad("block_emb is not float32"));
            }
            let range = t
                .range(&r)
                .ok_or_else(|| bad("block_emb is not stored contiguously"))?;
            (BlockSource::Torch(t), range, r.shape)
        } else {
            let f = std::fs::File::open(path).map_err(|e| ragl_core::Error::io(path, e))?;
            // SAFETY: read-only private map; ranges come from the checked header.
            let map =
                unsafe { memmap2::Mmap::map(&f) }.map_err(|e| ragl_core::Error::io(path, e))?;
            let st = safetensors::SafeTensors::deserialize(&map)
                .map_err(|e| bad(&format!("not a safetensors file: {e}")))?;
            let v = st.tensor("block_emb").map_err(|_| {
                bad("no block_emb in the weights (not a RealmForOpenQA checkpoint)")
            })?;
            if v.dtype() != safetensors::Dtype::F32 {
                return Err(bad("block_emb is not float32"));
            }
            let start = v.data().as_ptr() as usize - map.as_ptr() as usize;
            let range = start..start + v.data().len();
            let shape = v.shape().to_vec();
            drop(st);
            (BlockSource::Map(map), range, shape)
        };
        let [rows, dim] = shape[..] else {
            return Err(bad("block_emb is not a matrix"));
        };
        let e = BlockEmb {
            source,
            range,
            rows,
            dim,
        };
        // f32 alignment (torch and safetensors both align their data).
        if e.bytes().as_ptr().align_offset(4) != 0 || !cfg!(target_endian = "little") {
            return Err(bad("block_emb is not 4-byte aligned in the file"));
        }
        Ok(e)
    }

    fn bytes(&self) -> &[u8] {
        let map: &[u8] = match &self.source {
            BlockSource::Torch(t) => t.map(),
            BlockSource::Map(m) => m,
        };
        &map[self.range.clone()]
    }

    /// The embeddings, row-major.
    pub fn as_f32(&self) -> &[f32] {
        let b = self.bytes();
        // SAFETY: alignment and endianness are checked in `open`; any bit pattern is an f32.
        unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<f32>(), b.len() / 4) }
    }
}
