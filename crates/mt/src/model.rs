//! The transformer encoder-decoder (Vaswani et al., 2017) as fairseq's `transformer` builds
//! it: one embedding matrix shared by the source, the target and the output projection
//! (a joint vocabulary), embeddings scaled by √d, sinusoidal positions, pre-norm (default,
//! fairseq's `--encoder-normalize-before`) or post-norm layers, ReLU feed-forward.
//! The same module is Hugging Face's `MarianMTModel` when configured as [`crate::marian`]
//! does it: post-norm, swish, Marian's sinusoid layout, a bias on the output logits, and the
//! checkpoint's own special ids.
//!
//! Decoding is incremental: [`DecoderState`] keeps each layer's self-attention keys and
//! values and the encoder memory's projected keys and values, and can be reordered when
//! beam search picks which hypotheses survive. The decoder's last hidden state — the input
//! of the output projection — is what kNN-MT stores as a key ([`Step::hidden`]).

use burn::module::Module;
use burn::module::Param;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::{gelu, log_softmax, relu, silu};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use serde::{Deserialize, Serialize};

use crate::vocab::Specials;

/// The feed-forward non-linearity (`activation_function` in HF configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    /// `x·σ(x)`, which Marian and HF call swish (`silu` is the same function).
    #[serde(alias = "silu")]
    Swish,
    /// The exact, erf-based GELU.
    Gelu,
}

/// How sinusoidal position encodings are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// fairseq's: frequency `10000^(-i/(d/2-1))`, sines then cosines.
    #[default]
    Fairseq,
    /// Marian's (`MarianSinusoidalPositionalEmbedding`): frequency `10000^(-2i/d)`, sines
    /// then cosines.
    Marian,
}

/// The architecture (written as `model.json` beside every checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default)]
    pub vocab_size: usize,
    #[serde(default = "d_model")]
    pub d_model: usize,
    #[serde(default = "heads")]
    pub heads: usize,
    #[serde(default = "ff")]
    pub ff: usize,
    #[serde(default = "layers")]
    pub encoder_layers: usize,
    #[serde(default = "layers")]
    pub decoder_layers: usize,
    #[serde(default = "dropout")]
    pub dropout: f64,
    /// Pre-norm (LayerNorm before each sublayer, and a final LayerNorm) when true.
    #[serde(default = "yes")]
    pub norm_first: bool,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub positions: Positions,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    /// Embeddings multiplied by √d before positions are added.
    #[serde(default = "yes")]
    pub scale_embedding: bool,
    /// A bias added to the output logits (Marian's `final_logits_bias`).
    #[serde(default)]
    pub logits_bias: bool,
    #[serde(default)]
    pub specials: Specials,
    /// A source vocabulary of its own, with its own embedding (FSMT); `None`: the source
    /// shares the target's embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_vocab_size: Option<usize>,
    /// An output projection of its own instead of the (tied) target embedding (FSMT).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_projection: bool,
    /// The position of the first token: fairseq counts from `padding_idx + 1`, ragl's own
    /// models and Marian from 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub position_offset: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn eps() -> f64 {
    1e-5
}

fn d_model() -> usize {
    256
}
fn heads() -> usize {
    4
}
fn ff() -> usize {
    1024
}
fn layers() -> usize {
    3
}
fn dropout() -> f64 {
    0.1
}
fn yes() -> bool {
    true
}

impl Default for ModelConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.vocab_size < 5 {
            return Err(format!("vocab_size {} is too small", self.vocab_size));
        }
        if self.src_vocab_size.is_some_and(|v| v < 5) {
            return Err(format!(
                "src_vocab_size {:?} is too small",
                self.src_vocab_size
            ));
        }
        if self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return Err(format!(
                "d_model {} is not a multiple of heads {}",
                self.d_model, self.heads
            ));
        }
        Ok(())
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Seq2Seq<B> {
        let d = self.d_model;
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let norm = || self.norm_first.then(ln);
        let act = self.activation;
        let embedding = |v: usize| {
            EmbeddingConfig::new(v, d)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: (d as f64).powf(-0.5),
                })
                .init(device)
        };
        Seq2Seq {
            embed: embedding(self.vocab_size),
            src_embed: self.src_vocab_size.map(embedding),
            out_proj: self.output_projection.then(|| {
                Param::from_tensor(Tensor::random(
                    [self.vocab_size, d],
                    burn::tensor::Distribution::Normal(0.0, (d as f64).powf(-0.5)),
                    device,
                ))
            }),
            position_offset: self.position_offset,
            encoder: (0..self.encoder_layers)
                .map(|_| EncoderLayer {
                    attn: Attention::new(d, self.heads, device),
                    attn_norm: ln(),
                    ff: FeedForward::new(d, self.ff, act, device),
                    ff_norm: ln(),
                    dropout: DropoutConfig::new(self.dropout).init(),
                    norm_first: self.norm_first,
                })
                .collect(),
            decoder: (0..self.decoder_layers)
                .map(|_| DecoderLayer {
                    self_attn: Attention::new(d, self.heads, device),
                    self_norm: ln(),
                    cross_attn: Attention::new(d, self.heads, device),
                    cross_norm: ln(),
                    ff: FeedForward::new(d, self.ff, act, device),
                    ff_norm: ln(),
                    dropout: DropoutConfig::new(self.dropout).init(),
                    norm_first: self.norm_first,
                })
                .collect(),
            encoder_norm: norm(),
            decoder_norm: norm(),
            dropout: DropoutConfig::new(self.dropout).init(),
            d_model: d,
            logits_bias: self
                .logits_bias
                .then(|| Param::from_tensor(Tensor::zeros([self.vocab_size], device))),
            positions: self.positions,
            scale_embedding: self.scale_embedding,
            specials: self.specials,
        }
    }
}

/// Applies `l` to `[b, s, d]` as one `[b*s, d]` product: burn's backward pass of a
/// 3-D linear layer computes the weight gradient as a batch of small products and sums
/// them, several times slower than one large product.
fn apply<B: Backend>(l: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, s, d] = x.dims();
    let y = l.forward(x.reshape([b * s, d]));
    let o = y.dims()[1];
    y.reshape([b, s, o])
}

fn linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device)
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    pub out: Linear<B>,
    pub heads: usize,
}

impl<B: Backend> Attention<B> {
    fn new(d: usize, heads: usize, device: &B::Device) -> Self {
        Attention {
            query: linear(d, d, device),
            key: linear(d, d, device),
            value: linear(d, d, device),
            out: linear(d, d, device),
            heads,
        }
    }

    fn split(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, s, d] = x.dims();
        x.reshape([b, s, self.heads, d / self.heads])
            .swap_dims(1, 2)
    }

    /// Keys and values `[b, heads, s, d/heads]` of `x`.
    pub fn kv(&self, x: Tensor<B, 3>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        (
            self.split(apply(&self.key, x.clone())),
            self.split(apply(&self.value, x)),
        )
    }

    /// `mask`: `[b, 1, t, s]`, true where the key must not be seen.
    pub fn attend(
        &self,
        x: Tensor<B, 3>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        mask: Option<Tensor<B, 4, Bool>>,
        causal: bool,
    ) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        let q = self.split(apply(&self.query, x));
        let opts = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: causal,
        };
        let ctx = attention(q, k, v, mask, None, opts);
        apply(&self.out, ctx.swap_dims(1, 2).reshape([b, t, d]))
    }
}

#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
    pub activation: Activation,
}

impl<B: Backend> FeedForward<B> {
    fn new(d: usize, ff: usize, activation: Activation, device: &B::Device) -> Self {
        FeedForward {
            fc1: linear(d, ff, device),
            fc2: linear(ff, d, device),
            activation,
        }
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = apply(&self.fc1, x);
        let h = match self.activation {
            Activation::Relu => relu(h),
            Activation::Swish => silu(h),
            Activation::Gelu => gelu(h),
        };
        apply(&self.fc2, h)
    }
}

/// A residual sublayer, pre- or post-norm.
fn residual<B: Backend>(
    x: Tensor<B, 3>,
    norm: &LayerNorm<B>,
    norm_first: bool,
    dropout: &Dropout,
    f: impl FnOnce(Tensor<B, 3>) -> Tensor<B, 3>,
) -> Tensor<B, 3> {
    if norm_first {
        x.clone() + dropout.forward(f(norm.forward(x)))
    } else {
        norm.forward(x.clone() + dropout.forward(f(x)))
    }
}

#[derive(Module, Debug)]
pub struct EncoderLayer<B: Backend> {
    pub attn: Attention<B>,
    pub attn_norm: LayerNorm<B>,
    pub ff: FeedForward<B>,
    pub ff_norm: LayerNorm<B>,
    pub dropout: Dropout,
    pub norm_first: bool,
}

impl<B: Backend> EncoderLayer<B> {
    fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 3> {
        let x = residual(x, &self.attn_norm, self.norm_first, &self.dropout, |h| {
            let (k, v) = self.attn.kv(h.clone());
            self.attn.attend(h, k, v, mask, false)
        });
        residual(x, &self.ff_norm, self.norm_first, &self.dropout, |h| {
            self.ff.forward(h)
        })
    }
}

#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: Attention<B>,
    pub self_norm: LayerNorm<B>,
    pub cross_attn: Attention<B>,
    pub cross_norm: LayerNorm<B>,
    pub ff: FeedForward<B>,
    pub ff_norm: LayerNorm<B>,
    pub dropout: Dropout,
    pub norm_first: bool,
}

/// One decoder layer's incremental state.
#[derive(Debug, Clone)]
struct LayerState<B: Backend> {
    self_kv: Option<(Tensor<B, 4>, Tensor<B, 4>)>,
    memory_kv: (Tensor<B, 4>, Tensor<B, 4>),
}

impl<B: Backend> DecoderLayer<B> {
    fn forward(
        &self,
        x: Tensor<B, 3>,
        memory_kv: (Tensor<B, 4>, Tensor<B, 4>),
        memory_mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let x = residual(x, &self.self_norm, self.norm_first, &self.dropout, |h| {
            let (k, v) = self.self_attn.kv(h.clone());
            self.self_attn.attend(h, k, v, None, true)
        });
        let x = residual(x, &self.cross_norm, self.norm_first, &self.dropout, |h| {
            self.cross_attn
                .attend(h, memory_kv.0, memory_kv.1, memory_mask, false)
        });
        residual(x, &self.ff_norm, self.norm_first, &self.dropout, |h| {
            self.ff.forward(h)
        })
    }

    /// `x`: `[n, 1, d]`, the newest position only; earlier keys and values are in `state`.
    fn step(
        &self,
        x: Tensor<B, 3>,
        state: &mut LayerState<B>,
        memory_mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let x = residual(x, &self.self_norm, self.norm_first, &self.dropout, |h| {
            let (k, v) = self.self_attn.kv(h.clone());
            let (k, v) = match state.self_kv.take() {
                None => (k, v),
                Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            };
            state.self_kv = Some((k.clone(), v.clone()));
            self.self_attn.attend(h, k, v, None, false)
        });
        let x = residual(x, &self.cross_norm, self.norm_first, &self.dropout, |h| {
            let (k, v) = state.memory_kv.clone();
            self.cross_attn.attend(h, k, v, memory_mask, false)
        });
        residual(x, &self.ff_norm, self.norm_first, &self.dropout, |h| {
            self.ff.forward(h)
        })
    }
}

#[derive(Module, Debug)]
pub struct Seq2Seq<B: Backend> {
    /// The target embedding; also the source's and the output projection unless
    /// `src_embed` / `out_proj` are set.
    pub embed: Embedding<B>,
    pub src_embed: Option<Embedding<B>>,
    /// `[vocab, d]`, used as `h · Wᵀ` like the tied embedding.
    pub out_proj: Option<Param<Tensor<B, 2>>>,
    pub position_offset: usize,
    pub encoder: Vec<EncoderLayer<B>>,
    pub decoder: Vec<DecoderLayer<B>>,
    pub encoder_norm: Option<LayerNorm<B>>,
    pub decoder_norm: Option<LayerNorm<B>>,
    pub dropout: Dropout,
    pub d_model: usize,
    pub logits_bias: Option<Param<Tensor<B, 1>>>,
    pub positions: Positions,
    pub scale_embedding: bool,
    pub specials: Specials,
}

/// Sinusoidal position encodings `[len, d]` for positions `start..start + len`, as fairseq's
/// `SinusoidalPositionalEmbedding` (sines in the first half, cosines in the second).
pub fn sinusoids<B: Backend>(
    start: usize,
    len: usize,
    d: usize,
    layout: Positions,
    device: &B::Device,
) -> Tensor<B, 2> {
    let half = d / 2;
    let step = match layout {
        Positions::Fairseq => (10000f64).ln() / (half.max(2) - 1) as f64,
        Positions::Marian => 2.0 * (10000f64).ln() / d as f64,
    };
    let mut data = vec![0f32; len * d];
    for p in 0..len {
        let pos = (start + p) as f64;
        for i in 0..half {
            let a = match layout {
                Positions::Fairseq => pos * (-(i as f64) * step).exp(),
                // Marian divides by the power, as numpy does it there.
                Positions::Marian => pos / (10000f64).powf(2.0 * i as f64 / d as f64),
            };
            data[p * d + i] = a.sin() as f32;
            data[p * d + half + i] = a.cos() as f32;
        }
    }
    Tensor::from_data(TensorData::new(data, [len, d]), device)
}

/// What one decoding step returns.
pub struct Step<B: Backend> {
    /// `[n, d]`: the decoder output that feeds the projection (the kNN-MT key).
    pub hidden: Tensor<B, 2>,
    /// `[n, vocab]` log-probabilities of the next token.
    pub log_probs: Tensor<B, 2>,
}

/// Encoder output and per-layer caches for `n` hypotheses.
#[derive(Debug, Clone)]
pub struct DecoderState<B: Backend> {
    layers: Vec<LayerState<B>>,
    memory_mask: Option<Tensor<B, 4, Bool>>,
    pub position: usize,
}

impl<B: Backend> DecoderState<B> {
    /// Keeps rows `index` (beam search: which hypotheses survive, and in what order).
    pub fn reorder(&mut self, index: Tensor<B, 1, Int>) {
        let sel4 = |t: Tensor<B, 4>| t.select(0, index.clone());
        for l in &mut self.layers {
            if let Some((k, v)) = l.self_kv.take() {
                l.self_kv = Some((sel4(k), sel4(v)));
            }
            let (k, v) = l.memory_kv.clone();
            l.memory_kv = (sel4(k), sel4(v));
        }
        if let Some(m) = self.memory_mask.take() {
            self.memory_mask = Some(m.select(0, index));
        }
    }
}

impl<B: Backend> Seq2Seq<B> {
    fn embed_tokens(&self, ids: Tensor<B, 2, Int>, start: usize, source: bool) -> Tensor<B, 3> {
        let [_, s] = ids.dims();
        let device = ids.device();
        let table = match (&self.src_embed, source) {
            (Some(e), true) => e,
            _ => &self.embed,
        };
        let mut x = table.forward(ids);
        let start = start + self.position_offset;
        if self.scale_embedding {
            x = x * (self.d_model as f64).sqrt();
        }
        let pos = sinusoids::<B>(start, s, self.d_model, self.positions, &device).unsqueeze::<3>();
        self.dropout.forward(x + pos)
    }

    pub fn vocab_size(&self) -> usize {
        self.embed.weight.dims()[0]
    }

    /// Encoder output `[b, s, d]` and the source padding mask `[b, s]` (true = pad).
    pub fn encode(&self, src: Tensor<B, 2, Int>) -> (Tensor<B, 3>, Tensor<B, 2, Bool>) {
        let [b, s] = src.dims();
        let pad = src.clone().equal_elem(self.specials.pad as i64);
        let mask = pad.clone().reshape([b, 1, 1, s]).expand([b, 1, s, s]);
        let mut x = self.embed_tokens(src, 0, true);
        for layer in &self.encoder {
            x = layer.forward(x, Some(mask.clone()));
        }
        if let Some(n) = &self.encoder_norm {
            x = n.forward(x);
        }
        (x, pad)
    }

    /// Logits `[rows, vocab]` of decoder outputs `[rows, d]` (a 2-D product: a batched
    /// one would broadcast the embedding matrix over the batch, and its gradient with it).
    fn project(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        let w = match &self.out_proj {
            Some(p) => p.val(),
            None => self.embed.weight.val(),
        };
        let logits = h.matmul(w.transpose());
        match &self.logits_bias {
            Some(b) => logits + b.val().unsqueeze::<2>(),
            None => logits,
        }
    }

    /// Output logits `[rows, vocab]` of decoder states `[rows, d]`.
    pub fn logits(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        self.project(h)
    }

    /// Teacher forcing: decoder outputs `[b, t, d]` before the projection, for `tgt_in`
    /// (`<s> y1 .. y_{t-1}`).
    pub fn decode_hidden(
        &self,
        memory: Tensor<B, 3>,
        src_pad: Tensor<B, 2, Bool>,
        tgt_in: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let [b, s] = src_pad.dims();
        let [_, t] = tgt_in.dims();
        let mask = src_pad.reshape([b, 1, 1, s]).expand([b, 1, t, s]);
        let mut x = self.embed_tokens(tgt_in, 0, false);
        for layer in &self.decoder {
            let kv = layer.cross_attn.kv(memory.clone());
            x = layer.forward(x, kv, Some(mask.clone()));
        }
        if let Some(n) = &self.decoder_norm {
            x = n.forward(x);
        }
        x
    }

    /// Label-smoothed cross-entropy (fairseq's `label_smoothed_cross_entropy`), summed over
    /// the non-pad target tokens: `(loss_sum, nll_sum)`, both `[1]`.
    pub fn loss(
        &self,
        src: Tensor<B, 2, Int>,
        tgt_in: Tensor<B, 2, Int>,
        tgt_out: Tensor<B, 2, Int>,
        smoothing: f64,
    ) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let (memory, pad) = self.encode(src);
        let h = self.decode_hidden(memory, pad, tgt_in);
        let [b, t, _] = h.dims();
        let v = self.vocab_size();
        let lp = log_softmax(self.project(h.reshape([b * t, self.d_model])), 1);
        let target = tgt_out.reshape([b * t, 1]);
        let keep = target
            .clone()
            .not_equal_elem(self.specials.pad as i64)
            .float();
        let nll = -lp.clone().gather(1, target) * keep.clone();
        let smooth = -lp.sum_dim(1) * keep;
        let eps_i = smoothing / (v as f64 - 1.0);
        let nll_sum = nll.sum();
        let loss = nll_sum.clone() * (1.0 - smoothing - eps_i) + smooth.sum() * eps_i;
        (loss, nll_sum)
    }

    /// Starts incremental decoding from an encoded batch.
    pub fn start(&self, memory: Tensor<B, 3>, src_pad: Tensor<B, 2, Bool>) -> DecoderState<B> {
        let [b, s] = src_pad.dims();
        let any_pad = src_pad.clone().any().into_scalar().elem::<bool>();
        DecoderState {
            layers: self
                .decoder
                .iter()
                .map(|l| LayerState {
                    self_kv: None,
                    memory_kv: l.cross_attn.kv(memory.clone()),
                })
                .collect(),
            memory_mask: any_pad.then(|| src_pad.reshape([b, 1, 1, s])),
            position: 0,
        }
    }

    /// One decoding step for `tokens` `[n]` (the previous output of each hypothesis).
    pub fn step(&self, tokens: Tensor<B, 1, Int>, state: &mut DecoderState<B>) -> Step<B> {
        let [n] = tokens.dims();
        let mut x = self.embed_tokens(tokens.reshape([n, 1]), state.position, false);
        for (layer, ls) in self.decoder.iter().zip(&mut state.layers) {
            x = layer.step(x, ls, state.memory_mask.clone());
        }
        if let Some(norm) = &self.decoder_norm {
            x = norm.forward(x);
        }
        state.position += 1;
        let hidden = x.clone().reshape([n, self.d_model]);
        let log_probs = log_softmax(self.project(hidden.clone()), 1);
        Step { hidden, log_probs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    fn ids(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
        let w = rows[0].len();
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), w]), &Default::default())
    }

    fn small() -> Seq2Seq<B> {
        let cfg = ModelConfig {
            vocab_size: 20,
            d_model: 16,
            heads: 2,
            ff: 32,
            encoder_layers: 2,
            decoder_layers: 2,
            dropout: 0.0,
            norm_first: true,
            ..ModelConfig::default()
        };
        B::seed(&Default::default(), 7);
        cfg.init(&Default::default())
    }

    /// The incremental decoder must give the same states as teacher forcing over the whole
    /// prefix: this is what makes datastore keys (teacher-forced) match decoding queries.
    #[test]
    fn incremental_steps_equal_teacher_forcing() {
        let m = small();
        let src = ids(&[&[5, 6, 7, 2], &[8, 9, 2, 0]]);
        let tgt = ids(&[&[1, 10, 11, 12], &[1, 13, 14, 15]]);
        let (mem, pad) = m.encode(src);
        let full = m.decode_hidden(mem.clone(), pad.clone(), tgt.clone());
        let mut st = m.start(mem, pad);
        for t in 0..4 {
            let tok = tgt.clone().slice([0..2, t..t + 1]).reshape([2]);
            let step = m.step(tok, &mut st);
            let want = full.clone().slice([0..2, t..t + 1]).reshape([2, 16]);
            let diff = (step.hidden - want).abs().max().into_scalar();
            assert!(diff < 1e-4, "step {t}: {diff}");
        }
    }

    #[test]
    fn reorder_selects_hypotheses() {
        let m = small();
        let src = ids(&[&[5, 6, 7, 2], &[8, 9, 2, 0]]);
        let (mem, pad) = m.encode(src);
        let mut a = m.start(mem.clone(), pad.clone());
        let first = ids(&[&[1, 1]]).reshape([2]);
        m.step(first.clone(), &mut a);
        let swap = Tensor::<B, 1, Int>::from_data(
            TensorData::new(vec![1i64, 0], [2]),
            &Default::default(),
        );
        a.reorder(swap.clone());
        let next = ids(&[&[10, 11]]).reshape([2]);
        let got = m.step(next.clone(), &mut a).hidden;
        // The same as starting from the swapped source.
        let (mem2, pad2) = (mem.select(0, swap.clone()), pad.select(0, swap));
        let mut b = m.start(mem2, pad2);
        m.step(first, &mut b);
        let want = m.step(next, &mut b).hidden;
        assert!((got - want).abs().max().into_scalar() < 1e-5);
    }

    #[test]
    fn loss_ignores_padding_and_smoothing_zero_is_nll() {
        let m = small();
        let src = ids(&[&[5, 6, 2], &[7, 2, 0]]);
        let tin = ids(&[&[1, 10, 11], &[1, 12, 0]]);
        let tout = ids(&[&[10, 11, 2], &[12, 2, 0]]);
        let (loss, nll) = m.loss(src, tin, tout, 0.0);
        let (l, n) = (loss.into_scalar(), nll.into_scalar());
        assert!((l - n).abs() < 1e-4 && n > 0.0, "{l} {n}");
    }
}
