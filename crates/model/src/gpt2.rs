//! GPT-2 (`model_type: gpt2`, transformers' `GPT2LMHeadModel`, `models/gpt2/modeling_gpt2.py`)
//! as a burn module: learned token and position embeddings, pre-norm blocks (`ln_1` →
//! causal self-attention → residual, `ln_2` → MLP → residual), a final `ln_f`, and the LM
//! head tied to the token embeddings. ragl's own language models are GPT-2s too, saved in
//! this layout, so transformers loads them and one loader serves both.
//!
//! Names (HF `Conv1D` stores weights `[in, out]`, which is burn's `Linear` layout, so they
//! load untransposed): `transformer.wte`, `transformer.wpe`, `transformer.h.{i}.ln_1`,
//! `.attn.c_attn` (q, k, v fused), `.attn.c_proj`, `.ln_2`, `.mlp.c_fc`, `.mlp.c_proj`,
//! `transformer.ln_f`, and `lm_head.weight` when the head is untied. `GPT2Model` files (the
//! hub's `gpt2` itself) have no `transformer.` prefix; the causal-mask buffers old files
//! carry (`attn.bias`, `attn.masked_bias`) are skipped.
//!
//! Two states come out of [`Gpt2::forward`], the two kNN-LM key choices: the input of the
//! last block's feed-forward layer after its LayerNorm (`ln_2`'s output: the kNN-LM paper's
//! best key, and knn-transformers' default for GPT-2) and the input of the LM head (`ln_f`'s
//! output).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use serde::{Deserialize, Serialize};

use crate::bert::{activation, layer_norm};
use crate::weights::{Weights, embedding, norm, tensor1, tensor2, weights_file};
use crate::{Error, Result};

/// `GPT2Config`, the keys ragl reads (others are kept when ragl writes a config it read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    #[serde(default = "positions")]
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// Feed-forward width (`None`: 4 × `n_embd`).
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "act")]
    pub activation_function: String,
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "yes")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default = "eos")]
    pub bos_token_id: u32,
    #[serde(default = "eos")]
    pub eos_token_id: u32,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    #[serde(default = "init_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn positions() -> usize {
    1024
}
fn act() -> String {
    "gelu_new".into()
}
fn eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}
fn eos() -> u32 {
    50256
}
fn init_range() -> f64 {
    0.02
}

impl Gpt2Config {
    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        let mt = self.model_type.as_deref().unwrap_or("gpt2");
        if mt != "gpt2" {
            return Err(format!("model_type is {mt:?}, not \"gpt2\""));
        }
        if self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "n_embd {} is not a multiple of n_head {}",
                self.n_embd, self.n_head
            ));
        }
        if self.vocab_size == 0 || self.n_layer == 0 || self.n_positions == 0 {
            return Err("vocab_size, n_layer and n_positions must be positive".into());
        }
        match self.activation_function.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu" => Ok(()),
            a => Err(format!(
                "activation_function {a:?} is not supported (gelu_new, gelu_pytorch_tanh, gelu)"
            )),
        }
    }

    fn gelu_tanh(&self) -> bool {
        self.activation_function != "gelu"
    }

    /// A model with fresh weights, drawn as transformers' `GPT2PreTrainedModel._init_weights`
    /// draws them: N(0, `initializer_range`), residual projections (`c_proj`) scaled by
    /// 1/√(2 · `n_layer`), biases 0, LayerNorms 1 and 0.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Gpt2<B> {
        let normal = |shape: [usize; 2], std: f64| {
            Param::from_tensor(Tensor::<B, 2>::random(
                shape,
                burn::tensor::Distribution::Normal(0.0, std),
                device,
            ))
        };
        let (d, ff, r) = (self.n_embd, self.inner(), self.initializer_range);
        let proj_std = r / (2.0 * self.n_layer as f64).sqrt();
        let lin = |i: usize, o: usize, std: f64| Linear {
            weight: normal([i, o], std),
            bias: Some(Param::from_tensor(Tensor::zeros([o], device))),
        };
        let ln = || layer_norm::<B>(d, self.layer_norm_epsilon, device);
        let blocks = (0..self.n_layer)
            .map(|i| Gpt2Block {
                ln_1: ln(),
                c_attn: lin(d, 3 * d, r),
                c_proj: lin(d, d, proj_std),
                ln_2: ln(),
                c_fc: lin(d, ff, r),
                mlp_proj: lin(ff, d, proj_std),
                n_head: self.n_head,
                scale: self.attention_scale(i),
                gelu_tanh: self.gelu_tanh(),
            })
            .collect();
        Gpt2 {
            wte: Embedding {
                weight: normal([self.vocab_size, d], r),
            },
            wpe: Embedding {
                weight: normal([self.n_positions, d], r),
            },
            blocks,
            ln_f: ln(),
            lm_head: None,
        }
    }

    fn attention_scale(&self, layer: usize) -> f64 {
        let mut s = 1.0;
        if self.scale_attn_weights {
            s /= ((self.n_embd / self.n_head) as f64).sqrt();
        }
        if self.scale_attn_by_inverse_layer_idx {
            s /= (layer + 1) as f64;
        }
        s
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Gpt2Block<B: Backend> {
    pub ln_1: LayerNorm<B>,
    /// `attn.c_attn`: `d → 3d`, q, k, v side by side.
    pub c_attn: Linear<B>,
    /// `attn.c_proj`
    pub c_proj: Linear<B>,
    pub ln_2: LayerNorm<B>,
    /// `mlp.c_fc`
    pub c_fc: Linear<B>,
    /// `mlp.c_proj`
    pub mlp_proj: Linear<B>,
    pub n_head: usize,
    /// Applied to q·k (1/√head_dim, and 1/(layer+1) when the config asks).
    pub scale: f64,
    pub gelu_tanh: bool,
}

impl<B: Backend> Gpt2Block<B> {
    /// `x` → (block output, `ln_2`'s output: the feed-forward input).
    fn forward(&self, x: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let [b, s, d] = x.dims();
        let h = self.n_head;
        let qkv = self
            .c_attn
            .forward(self.ln_1.forward(x.clone()).reshape([b * s, d]));
        let heads = |t: Tensor<B, 2>| t.reshape([b, s, h, d / h]).swap_dims(1, 2);
        let q = heads(qkv.clone().slice([0..b * s, 0..d]));
        let k = heads(qkv.clone().slice([0..b * s, d..2 * d]));
        let v = heads(qkv.slice([0..b * s, 2 * d..3 * d]));
        let opts = AttentionModuleOptions {
            scale: Some(self.scale),
            softcap: None,
            is_causal: true,
        };
        // Causal attention alone handles right padding: no real position sees a later one.
        let ctx = attention(q, k, v, None, None, opts)
            .swap_dims(1, 2)
            .reshape([b * s, d]);
        let x = x + self.c_proj.forward(ctx).reshape([b, s, d]);
        let ffn_in = self.ln_2.forward(x.clone());
        let m = self.mlp_proj.forward(activation(
            self.c_fc.forward(ffn_in.clone().reshape([b * s, d])),
            self.gelu_tanh,
        ));
        (x + m.reshape([b, s, d]), ffn_in)
    }
}

/// `GPT2LMHeadModel`.
#[derive(Module, Debug)]
pub struct Gpt2<B: Backend> {
    pub wte: Embedding<B>,
    pub wpe: Embedding<B>,
    pub blocks: Vec<Gpt2Block<B>>,
    pub ln_f: LayerNorm<B>,
    /// An untied LM head `[d, vocab]` (`lm_head.weight`); `None` = the token embeddings.
    pub lm_head: Option<Param<Tensor<B, 2>>>,
}

/// The states [`Gpt2::forward`] returns, each `[batch, seq, d]`.
#[derive(Debug, Clone)]
pub struct Gpt2States<B: Backend> {
    /// The last block's `ln_2` output (its feed-forward input).
    pub ffn_input: Tensor<B, 3>,
    /// `ln_f`'s output, the LM head's input.
    pub last: Tensor<B, 3>,
}

impl<B: Backend> Gpt2<B> {
    /// Runs token ids `[batch, seq]` (right-padded; positions from 0).
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Gpt2States<B> {
        let [_, s] = ids.dims();
        let device = ids.device();
        let pos = Tensor::<B, 1, Int>::arange(0..s as i64, &device).reshape([1, s]);
        let mut x = self.wte.forward(ids) + self.wpe.forward(pos);
        let mut ffn_input = None;
        for block in &self.blocks {
            let (y, f) = block.forward(x);
            x = y;
            ffn_input = Some(f);
        }
        Gpt2States {
            ffn_input: ffn_input.expect("a GPT-2 has at least one block"),
            last: self.ln_f.forward(x),
        }
    }

    /// Next-token logits `[n, vocab]` of LM-head inputs `[n, d]`.
    pub fn logits(&self, last: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.lm_head {
            Some(w) => last.matmul(w.val()),
            None => last.matmul(self.wte.weight.val().transpose()),
        }
    }

    pub fn d_model(&self) -> usize {
        self.wte.weight.dims()[1]
    }

    pub fn vocab_size(&self) -> usize {
        self.wte.weight.dims()[0]
    }

    pub fn max_positions(&self) -> usize {
        self.wpe.weight.dims()[0]
    }
}

/// A loaded GPT-2 directory.
pub struct Gpt2Checkpoint<B: Backend> {
    pub dir: PathBuf,
    pub config: Gpt2Config,
    pub model: Gpt2<B>,
    pub tokenizer: tokenizers::Tokenizer,
    /// SHA-256 of the weights file.
    pub fingerprint: String,
}

fn config_error(path: &Path, line: usize, message: impl Into<String>) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Whether `dir` holds a GPT-2 (`model_type: gpt2`).
pub fn is_gpt2_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .is_some_and(|v| v.get("model_type").and_then(|t| t.as_str()) == Some("gpt2"))
}

pub fn read_config(dir: &Path) -> Result<Gpt2Config> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| ragl_core::Error::io(&path, e))?;
    let c: Gpt2Config =
        serde_json::from_str(&text).map_err(|e| config_error(&path, e.line(), e.to_string()))?;
    c.validate().map_err(|m| config_error(&path, 0, m))?;
    Ok(c)
}

/// GPT-2's byte-level BPE: `tokenizer.json`, else `vocab.json` + `merges.txt`.
pub fn read_tokenizer(dir: &Path) -> Result<tokenizers::Tokenizer> {
    let json = dir.join("tokenizer.json");
    let bad = |path: &Path, e: &dyn std::fmt::Display| Error::Tokenizer {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if json.is_file() {
        return tokenizers::Tokenizer::from_file(&json).map_err(|e| bad(&json, &e));
    }
    let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if !(vocab.is_file() && merges.is_file()) {
        return Err(Error::MissingFile {
            dir: dir.to_path_buf(),
            file: "tokenizer.json (or vocab.json and merges.txt)",
        });
    }
    let bpe = tokenizers::models::bpe::BPE::from_file(
        &vocab.to_string_lossy(),
        &merges.to_string_lossy(),
    )
    .build()
    .map_err(|e| bad(&vocab, &e))?;
    let mut t = tokenizers::Tokenizer::new(bpe);
    let byte_level = tokenizers::pre_tokenizers::byte_level::ByteLevel::new(false, true, true);
    t.with_pre_tokenizer(Some(byte_level));
    t.with_decoder(Some(byte_level));
    Ok(t)
}

/// Loads a GPT-2 directory: `config.json`, `model.safetensors` or `pytorch_model.bin`, and
/// its tokenizer.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<Gpt2Checkpoint<B>> {
    let config = read_config(dir)?;
    let path = weights_file(dir).ok_or_else(|| Error::MissingFile {
        dir: dir.to_path_buf(),
        file: "model.safetensors or pytorch_model.bin",
    })?;
    let (mut w, fingerprint) = Weights::open(&path, &["transformer."], &[])?;
    for i in 0..config.n_layer {
        // Causal-mask buffers some files carry.
        w.mark_used(&format!("h.{i}.attn.bias"));
        w.mark_used(&format!("h.{i}.attn.masked_bias"));
    }
    let model = from_weights(&mut w, &config, device)?;
    let unused = w.finish()?;
    if !unused.is_empty() {
        return Err(Error::Weights {
            path,
            message: format!(
                "{} tensor(s) a GPT-2 does not have: {}",
                unused.len(),
                unused.join(", ")
            ),
        });
    }
    let tokenizer = read_tokenizer(dir)?;
    if tokenizer.get_vocab_size(true) > config.vocab_size {
        return Err(config_error(
            &dir.join("config.json"),
            0,
            format!(
                "the tokenizer has {} tokens and the model {}: they do not belong together",
                tokenizer.get_vocab_size(true),
                config.vocab_size
            ),
        ));
    }
    Ok(Gpt2Checkpoint {
        dir: dir.to_path_buf(),
        config,
        model,
        tokenizer,
        fingerprint,
    })
}

/// `Conv1D` parameters: weight `[in, out]` (burn's layout) and bias.
fn conv1d<B: Backend>(
    w: &mut Weights,
    name: &str,
    d_in: usize,
    d_out: usize,
    device: &B::Device,
) -> Result<Linear<B>> {
    let weight = w.take(&format!("{name}.weight"), &[d_in, d_out])?;
    let bias = w.take(&format!("{name}.bias"), &[d_out])?;
    Ok(Linear {
        weight: Param::from_tensor(tensor2(weight, [d_in, d_out], device)),
        bias: Some(Param::from_tensor(tensor1(bias, device))),
    })
}

fn from_weights<B: Backend>(
    w: &mut Weights,
    c: &Gpt2Config,
    device: &B::Device,
) -> Result<Gpt2<B>> {
    let (d, ff, eps) = (c.n_embd, c.inner(), c.layer_norm_epsilon);
    let wte = embedding(w, "wte", c.vocab_size, d, device)?;
    let wpe = embedding(w, "wpe", c.n_positions, d, device)?;
    let mut blocks = Vec::with_capacity(c.n_layer);
    for i in 0..c.n_layer {
        let p = format!("h.{i}");
        blocks.push(Gpt2Block {
            ln_1: norm(w, &format!("{p}.ln_1"), d, eps, device)?,
            c_attn: conv1d(w, &format!("{p}.attn.c_attn"), d, 3 * d, device)?,
            c_proj: conv1d(w, &format!("{p}.attn.c_proj"), d, d, device)?,
            ln_2: norm(w, &format!("{p}.ln_2"), d, eps, device)?,
            c_fc: conv1d(w, &format!("{p}.mlp.c_fc"), d, ff, device)?,
            mlp_proj: conv1d(w, &format!("{p}.mlp.c_proj"), ff, d, device)?,
            n_head: c.n_head,
            scale: c.attention_scale(i),
            gelu_tanh: c.gelu_tanh(),
        });
    }
    let ln_f = norm(w, "ln_f", d, eps, device)?;
    let tied = w
        .tensors
        .get("lm_head.weight")
        .is_none_or(|(_, v)| Some(v) == w.tensors.get("wte.weight").map(|(_, e)| e));
    let lm_head = if tied {
        w.mark_used("lm_head.weight");
        None
    } else if c.tie_word_embeddings {
        return Err(Error::Weights {
            path: w.path.clone(),
            message: "lm_head.weight differs from the token embeddings while the config ties them"
                .into(),
        });
    } else {
        // nn.Linear(d, vocab): stored [vocab, d].
        let v = w.take("lm_head.weight", &[c.vocab_size, d])?;
        let t = crate::weights::transpose(&v, c.vocab_size, d);
        Some(Param::from_tensor(tensor2(t, [d, c.vocab_size], device)))
    };
    Ok(Gpt2 {
        wte,
        wpe,
        blocks,
        ln_f,
        lm_head,
    })
}

/// Saves in transformers' `GPT2LMHeadModel` layout (`config.json`, `model.safetensors` with
/// `transformer.` names, the head tied), atomically per file. The tokenizer is the caller's.
pub fn save<B: Backend>(dir: &Path, config: &Gpt2Config, model: &Gpt2<B>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ragl_core::Error::io(dir, e))?;
    let mut out: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    let host2 = |t: Tensor<B, 2>| (t.dims().to_vec(), t.into_data().to_vec::<f32>().unwrap());
    let host1 = |t: Tensor<B, 1>| (t.dims().to_vec(), t.into_data().to_vec::<f32>().unwrap());
    let lin = |out: &mut BTreeMap<_, _>, name: String, l: &Linear<B>| {
        out.insert(format!("{name}.weight"), host2(l.weight.val()));
        if let Some(b) = &l.bias {
            out.insert(format!("{name}.bias"), host1(b.val()));
        }
    };
    let nrm = |out: &mut BTreeMap<_, _>, name: String, n: &LayerNorm<B>| {
        out.insert(format!("{name}.weight"), host1(n.gamma.val()));
        if let Some(b) = &n.beta {
            out.insert(format!("{name}.bias"), host1(b.val()));
        }
    };
    out.insert(
        "transformer.wte.weight".into(),
        host2(model.wte.weight.val()),
    );
    out.insert(
        "transformer.wpe.weight".into(),
        host2(model.wpe.weight.val()),
    );
    for (i, b) in model.blocks.iter().enumerate() {
        let p = format!("transformer.h.{i}");
        nrm(&mut out, format!("{p}.ln_1"), &b.ln_1);
        lin(&mut out, format!("{p}.attn.c_attn"), &b.c_attn);
        lin(&mut out, format!("{p}.attn.c_proj"), &b.c_proj);
        nrm(&mut out, format!("{p}.ln_2"), &b.ln_2);
        lin(&mut out, format!("{p}.mlp.c_fc"), &b.c_fc);
        lin(&mut out, format!("{p}.mlp.c_proj"), &b.mlp_proj);
    }
    nrm(&mut out, "transformer.ln_f".into(), &model.ln_f);
    if let Some(h) = &model.lm_head {
        let (s, v) = host2(h.val());
        out.insert(
            "lm_head.weight".into(),
            (vec![s[1], s[0]], crate::weights::transpose(&v, s[0], s[1])),
        );
    }
    crate::weights::write_safetensors(&dir.join("model.safetensors"), &out)?;
    let mut cfg = serde_json::to_value(config).expect("config serialises");
    cfg["model_type"] = serde_json::json!("gpt2");
    cfg["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
    cfg["tie_word_embeddings"] = serde_json::json!(model.lm_head.is_none());
    ragl_core::atomic::write_bytes_atomic(
        &dir.join("config.json"),
        serde_json::to_string_pretty(&cfg).expect("json").as_bytes(),
    )?;
    Ok(())
}
