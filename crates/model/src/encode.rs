//! Text → vectors: batching, pooling and the streaming `embed` job.
//!
//! Batches are formed from texts sorted by token length (as sentence-transformers'
//! `encode` does), so padding, and the attention work spent on it, stays small; results
//! are returned in input order.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use ragl_core::passage::Passages;
use ragl_core::progress::Progress;
use ragl_core::read::Input;
use rayon::prelude::*;

use crate::bert::{Bert, BertInput};
use crate::realm::RealmProjection;
use crate::tokenizer::{Encoded, TextTokenizer};
use crate::{Error, Result};
use ragl_core::npy::NpyWriter;

/// How token states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The `[CLS]` state (REALM, DPR).
    Cls,
    /// Mean over real (non-padding) tokens (sentence-transformers).
    #[default]
    Mean,
}

impl std::str::FromStr for Pooling {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cls" => Ok(Pooling::Cls),
            "mean" => Ok(Pooling::Mean),
            _ => Err(format!("unknown pooling {s:?}: use cls or mean")),
        }
    }
}

/// Pools `[b, s, d]` hidden states with the padding mask (`true` = pad) into `[b, d]`.
pub fn pool<B: Backend>(
    hidden: Tensor<B, 3>,
    pad_mask: Tensor<B, 2, Bool>,
    pooling: Pooling,
) -> Tensor<B, 2> {
    let [b, s, d] = hidden.dims();
    match pooling {
        Pooling::Cls => hidden.slice([0..b, 0..1]).reshape([b, d]),
        Pooling::Mean => {
            let keep = pad_mask.bool_not().float().reshape([b, s, 1]);
            let sum = (hidden * keep.clone()).sum_dim(1).reshape([b, d]);
            // sentence-transformers: clamp(sum_mask, min=1e-9).
            let count = keep.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
            sum / count
        }
    }
}

/// REALM's tower projection: a learnable linear map from the pooled state to the
/// retrieval space (initialised N(0, 0.02), bias zero, as BERT initialises).
#[derive(Module, Debug)]
pub struct Projection<B: Backend> {
    pub linear: Linear<B>,
}

impl<B: Backend> Projection<B> {
    pub fn new(d_in: usize, d_out: usize, device: &B::Device) -> Self {
        let w = Tensor::<B, 2>::random(
            [d_in, d_out],
            burn::tensor::Distribution::Normal(0.0, 0.02),
            device,
        );
        Projection {
            linear: Linear {
                weight: Param::from_tensor(w),
                bias: Some(Param::from_tensor(Tensor::zeros([d_out], device))),
            },
        }
    }

    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.linear.forward(x)
    }
}

/// Pads encoded texts into a batch on `device`.
pub fn batch_input<B: Backend>(encs: &[&Encoded], pad_id: u32, device: &B::Device) -> BertInput<B> {
    let b = encs.len();
    let s = encs.iter().map(|e| e.ids.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![pad_id as i64; b * s];
    let mut types = vec![0i64; b * s];
    let mut pad = vec![true; b * s];
    for (i, e) in encs.iter().enumerate() {
        for (j, (&id, &t)) in e.ids.iter().zip(&e.type_ids).enumerate() {
            ids[i * s + j] = id as i64;
            types[i * s + j] = t as i64;
            pad[i * s + j] = false;
        }
    }
    BertInput {
        ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
        type_ids: Tensor::from_data(TensorData::new(types, [b, s]), device),
        pad_mask: Tensor::from_data(TensorData::new(pad, [b, s]), device),
    }
}

/// Pooled (and optionally L2-normalised) vectors `[b, hidden]` of tokenised texts, one
/// forward pass: the one place a tower turns tokens into a vector, so that an index, a
/// query tower under training and a refreshed index all compute the same function.
pub fn embed_encoded<B: Backend>(
    bert: &Bert<B>,
    encs: &[&Encoded],
    pad_id: u32,
    pooling: Pooling,
    normalize: bool,
    device: &B::Device,
) -> Tensor<B, 2> {
    embed_tower(bert, None, encs, pad_id, pooling, normalize, device)
}

/// [`embed_encoded`] for a tower that may carry REALM's projection: then the vector is
/// the BERT pooler's `[CLS]` state projected and LayerNorm-ed (`RealmEmbedder`), and
/// `pooling` is not consulted.
pub fn embed_tower<B: Backend>(
    bert: &Bert<B>,
    projection: Option<&RealmProjection<B>>,
    encs: &[&Encoded],
    pad_id: u32,
    pooling: Pooling,
    normalize: bool,
    device: &B::Device,
) -> Tensor<B, 2> {
    let input = batch_input::<B>(encs, pad_id, device);
    let hidden = bert.forward(&input);
    let pooled = match projection {
        Some(p) => p.forward(
            bert.pooled(hidden)
                .expect("a REALM embedder always has its pooler"),
        ),
        None => pool(hidden, input.pad_mask, pooling),
    };
    if normalize {
        l2_normalize(pooled)
    } else {
        pooled
    }
}

/// `torch.nn.functional.normalize(p=2, dim=1, eps=1e-12)`
fn l2_normalize<B: Backend>(v: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = v
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    v / norm
}

/// A BERT with its tokenizer and pooling: texts in, vectors out.
pub struct Encoder<B: Backend> {
    pub bert: Bert<B>,
    /// A REALM embedder's projection: the BERT pooler's `[CLS]` vector →
    /// `retriever_proj_size`, LayerNorm (`RealmEmbedder.projected_score`); `pooling` is
    /// then `Cls`.
    pub projection: Option<RealmProjection<B>>,
    pub tokenizer: TextTokenizer,
    pub pooling: Pooling,
    /// L2-normalise the pooled vectors (sentence-transformers' `Normalize` module).
    pub normalize: bool,
    /// Batches run at once, one per rayon worker. Worth the number of cores on the CPU
    /// backend, where only a batch's large products spread across cores; 1 on a GPU.
    pub concurrent_batches: usize,
    pub device: B::Device,
}

/// Embeddings of a list of texts, row-major `[n, dim]`, in input order.
#[derive(Debug, Clone)]
pub struct Embeddings {
    pub dim: usize,
    pub data: Vec<f32>,
    pub truncated: usize,
}

impl<B: Backend> Encoder<B> {
    pub fn new(
        bert: Bert<B>,
        tokenizer: TextTokenizer,
        pooling: Pooling,
        device: B::Device,
    ) -> Self {
        Encoder {
            bert,
            projection: None,
            tokenizer,
            pooling,
            normalize: false,
            concurrent_batches: 1,
            device,
        }
    }

    pub fn dim(&self) -> usize {
        match &self.projection {
            Some(p) => p.dim(),
            None => self.bert.hidden_size(),
        }
    }

    /// Pooled vectors of already tokenised texts, one forward pass.
    pub fn forward_pooled(&self, encs: &[&Encoded]) -> Tensor<B, 2> {
        embed_tower(
            &self.bert,
            self.projection.as_ref(),
            encs,
            self.tokenizer.pad_id,
            self.pooling,
            self.normalize,
            &self.device,
        )
    }

    /// Embeds `(text, optional pair text)` items in length-sorted batches; `progress` gets
    /// the number of items done after each batch.
    pub fn embed_with(
        &self,
        items: &[(String, Option<String>)],
        batch_size: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<Embeddings> {
        let encs = self.tokenizer.encode(items)?;
        let truncated = encs.iter().filter(|e| e.truncated).count();
        let mut order: Vec<usize> = (0..encs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encs[i].ids.len()));
        let d = self.dim();
        let mut data = vec![0.0f32; encs.len() * d];
        let batches: Vec<&[usize]> = order.chunks(batch_size.max(1)).collect();
        let width = self.concurrent_batches.max(1);
        for group in batches.chunks(width) {
            let outs: Vec<Vec<f32>> = group
                .par_iter()
                .map(|chunk| {
                    let batch: Vec<&Encoded> = chunk.iter().map(|&i| &encs[i]).collect();
                    let pooled = self.forward_pooled(&batch);
                    pooled
                        .into_data()
                        .convert::<f32>()
                        .to_vec::<f32>()
                        .expect("f32 data")
                })
                .collect();
            for (chunk, v) in group.iter().zip(outs) {
                for (row, &i) in chunk.iter().enumerate() {
                    data[i * d..(i + 1) * d].copy_from_slice(&v[row * d..(row + 1) * d]);
                }
                progress(chunk.len());
            }
        }
        Ok(Embeddings {
            dim: d,
            data,
            truncated,
        })
    }

    pub fn embed(
        &self,
        items: &[(String, Option<String>)],
        batch_size: usize,
    ) -> Result<Embeddings> {
        self.embed_with(items, batch_size, |_| {})
    }
}

/// How a checkpoint directory becomes an [`Encoder`]: recorded in index manifests so that
/// queries are later encoded exactly as the passages were.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    pub model: std::path::PathBuf,
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_len: usize,
}

impl EncoderSpec {
    /// The spec an index manifest records under `encoder`: the document tower's, or with
    /// `query`, the query tower's: the same pooling, normalisation and length with the
    /// `query_model` that `ragl index build --query-model` records (the document tower's
    /// model when there is none: a tied dual encoder).
    pub fn from_manifest(v: &serde_json::Value, query: bool) -> Option<EncoderSpec> {
        let mut v = v.clone();
        let q = v.as_object_mut()?.remove("query_model");
        let mut spec: EncoderSpec = serde_json::from_value(v).ok()?;
        if query && let Some(q) = q.as_ref().and_then(|q| q.as_str()) {
            spec.model = q.into();
        }
        Some(spec)
    }

    /// Resolves `auto` choices from the checkpoint: mean pooling and L2 normalisation for
    /// sentence-transformers directories (`1_Pooling/config.json`, a `Normalize` module in
    /// `modules.json`), CLS and no normalisation otherwise.
    pub fn resolve(
        model: &std::path::Path,
        pooling: Option<Pooling>,
        normalize: Option<bool>,
        max_len: usize,
    ) -> Self {
        let pooling = pooling.unwrap_or_else(|| {
            let mean = std::fs::read_to_string(model.join("1_Pooling/config.json"))
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| v["pooling_mode_mean_tokens"].as_bool())
                .unwrap_or(false);
            if mean { Pooling::Mean } else { Pooling::Cls }
        });
        let normalize = normalize.unwrap_or_else(|| {
            std::fs::read_to_string(model.join("modules.json"))
                .is_ok_and(|m| m.contains("models.Normalize"))
        });
        EncoderSpec {
            // Absolute, so that an index records a model path that works from any directory.
            model: std::fs::canonicalize(model).unwrap_or_else(|_| model.to_path_buf()),
            pooling,
            normalize,
            max_len,
        }
    }

    /// Loads the checkpoint and tokenizer. Returns the encoder and the load report (whose
    /// fingerprint identifies the weights).
    pub fn load<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<(Encoder<B>, crate::checkpoint::LoadReport)> {
        if crate::realm::is_realm_dir(&self.model) {
            return self.load_realm(device);
        }
        let ckpt = crate::checkpoint::load::<B>(&self.model, device)?;
        if self.max_len < 2 || self.max_len > ckpt.config.max_position_embeddings {
            return Err(Error::Config {
                path: self.model.join("config.json"),
                line: 0,
                message: format!(
                    "max length {} is outside 2..={} (max_position_embeddings)",
                    self.max_len, ckpt.config.max_position_embeddings
                ),
            });
        }
        let tok = TextTokenizer::from_dir(&self.model, self.max_len)?;
        let mut enc = Encoder::new(ckpt.bert, tok, self.pooling, device.clone());
        enc.normalize = self.normalize;
        Ok((enc, ckpt.report))
    }
}

impl EncoderSpec {
    /// A REALM checkpoint's embedder (stand-alone, a scorer's, or an open-QA system's
    /// question tower) as an encoder: `[CLS]` through the pooler and the projection.
    fn load_realm<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<(Encoder<B>, crate::checkpoint::LoadReport)> {
        let config_error = |message: String| Error::Config {
            path: self.model.join("config.json"),
            line: 0,
            message,
        };
        if self.pooling != Pooling::Cls {
            return Err(config_error(
                "a REALM embedder pools [CLS] through its pooler and projection: pooling must be cls".into(),
            ));
        }
        let loaded = crate::realm::load_embedder::<B>(&self.model, device)?;
        let max = loaded.config.bert.max_position_embeddings;
        if self.max_len < 2 || self.max_len > max {
            return Err(config_error(format!(
                "max length {} is outside 2..={max} (max_position_embeddings)",
                self.max_len
            )));
        }
        let tok = TextTokenizer::from_dir(&self.model, self.max_len)?;
        let e = loaded.embedder;
        let mut enc = Encoder::new(e.bert, tok, Pooling::Cls, device.clone());
        enc.projection = Some(e.projection);
        enc.normalize = self.normalize;
        let report = crate::checkpoint::LoadReport {
            unused: Vec::new(),
            fingerprint: loaded.fingerprint,
        };
        Ok((enc, report))
    }
}

/// What an `embed` run did.
#[derive(Debug, Clone, Default)]
pub struct EmbedSummary {
    pub rows: usize,
    pub dim: usize,
    pub truncated: usize,
    pub skipped: usize,
}

/// Streams a JSONL file of texts into `out` (`.npy`, `[n, dim]` f32) and `out.ids` (one id
/// per line, same order). Memory is bounded by `chunk` records. Titles are encoded as the
/// first segment of a pair (`[CLS] title [SEP] text [SEP]`). An empty text is an error
/// naming its line, unless `skip_invalid`, which counts it.
pub fn embed_jsonl<B: Backend>(
    encoder: &Encoder<B>,
    input: &Input,
    out: &std::path::Path,
    batch_size: usize,
    skip_invalid: bool,
    mut progress: impl FnMut(Progress),
) -> Result<EmbedSummary> {
    const CHUNK: usize = 4096;
    let total = ragl_core::passage::count(input)?;
    let ids_path = out.with_extension("ids");
    let mut ids_out = String::new();
    let mut npy = NpyWriter::create(out, encoder.dim())?;
    let mut summary = EmbedSummary {
        dim: encoder.dim(),
        ..Default::default()
    };
    let mut chunk: Vec<(String, Option<String>)> = Vec::with_capacity(CHUNK);
    let mut flush = |chunk: &mut Vec<(String, Option<String>)>,
                     npy: &mut NpyWriter,
                     summary: &mut EmbedSummary|
     -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let done_before = summary.rows as u64;
        let mut done = done_before;
        let emb = encoder.embed_with(chunk, batch_size, |n| {
            done += n as u64;
            progress(Progress { done, total });
        })?;
        for row in emb.data.chunks_exact(emb.dim) {
            npy.write_row(row)?;
        }
        summary.rows += chunk.len();
        summary.truncated += emb.truncated;
        chunk.clear();
        Ok(())
    };
    let name = input.name();
    let mut passages = Passages::open(input, skip_invalid)?;
    for p in passages.by_ref() {
        let p = p?;
        ids_out.push_str(&p.id);
        ids_out.push('\n');
        chunk.push(p.encoder_pair());
        if chunk.len() == CHUNK {
            flush(&mut chunk, &mut npy, &mut summary)?;
        }
    }
    summary.skipped = passages.skipped as usize;
    flush(&mut chunk, &mut npy, &mut summary)?;
    if summary.rows == 0 {
        return Err(Error::Core(ragl_core::Error::format(
            &name,
            1,
            "no records to embed",
        )));
    }
    npy.finish()?;
    ragl_core::atomic::write_bytes_atomic(&ids_path, ids_out.as_bytes())?;
    Ok(summary)
}
