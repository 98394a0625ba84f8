//! BERT (Devlin et al., 2019) as burn modules, mirroring Hugging Face `transformers`
//! `models/bert/modeling_bert.py` (`BertEmbeddings`, `BertSelfAttention`, `BertSelfOutput`,
//! `BertIntermediate`, `BertOutput`, `BertPooler`, `BertLMPredictionHead`).
//!
//! [`BertConfig`] mirrors HF's `config.json`. Post-norm layers, exact (erf) GELU, LayerNorm
//! eps from the config (1e-12 for BERT). Attention goes through burn's fused
//! `attention` op (flash/naive chosen by the backend) with the padding mask as `true` =
//! masked key. For inference on the CPU backend, [`Bert::forward`] runs the encoder layers
//! through `cpu.rs` instead (the same function, written on the `gemm` crate for speed).
//! The HF weight names are in one place, [`EMBEDDING_HF_NAMES`] and
//! [`LAYER_HF_NAMES`], which loading and saving share.

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use serde::{Deserialize, Serialize};

/// HF `BertConfig` (the fields ragl reads; others in config.json are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_max_pos() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}

impl BertConfig {
    /// Whether the feed-forward GELU is the tanh approximation (`gelu_new`, REALM's).
    pub fn gelu_tanh(&self) -> bool {
        self.hidden_act != "gelu"
    }

    /// Checks that this is a BERT the modules here implement; the message says what is not.
    pub fn validate(&self) -> Result<(), String> {
        let mt = self.model_type.as_deref().unwrap_or("bert");
        if mt != "bert" {
            return Err(format!("model_type is {mt:?}, not \"bert\""));
        }
        if !matches!(
            self.hidden_act.as_str(),
            "gelu" | "gelu_new" | "gelu_pytorch_tanh"
        ) {
            return Err(format!(
                "hidden_act {:?} is not supported (\"gelu\", or the tanh form \"gelu_new\")",
                self.hidden_act
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// A randomly initialised BERT with an MLM head, as HF's `_init_weights` does it:
    /// N(0, initializer_range) for Linear and Embedding weights, zero biases, LayerNorm
    /// 1 and 0. For training from scratch and for tests; seed with `B::seed`.
    pub fn init<B: Backend>(&self, with_pooler: bool, device: &B::Device) -> (Bert<B>, MlmHead<B>) {
        use burn::tensor::Distribution;
        let std = self.initializer_range;
        let normal = |shape: [usize; 2]| {
            Param::from_tensor(Tensor::<B, 2>::random(
                shape,
                Distribution::Normal(0.0, std),
                device,
            ))
        };
        let lin = |i: usize, o: usize| Linear {
            weight: normal([i, o]),
            bias: Some(Param::from_tensor(Tensor::zeros([o], device))),
        };
        let emb = |n: usize, d: usize| Embedding {
            weight: normal([n, d]),
        };
        let (d, ff, eps) = (
            self.hidden_size,
            self.intermediate_size,
            self.layer_norm_eps,
        );
        let embeddings = BertEmbeddings {
            word_embeddings: emb(self.vocab_size, d),
            position_embeddings: emb(self.max_position_embeddings, d),
            token_type_embeddings: emb(self.type_vocab_size, d),
            layer_norm: layer_norm(d, eps, device),
        };
        let layers = (0..self.num_hidden_layers)
            .map(|_| BertLayer {
                query: lin(d, d),
                key: lin(d, d),
                value: lin(d, d),
                attention_output: lin(d, d),
                attention_norm: layer_norm(d, eps, device),
                intermediate: lin(d, ff),
                output: lin(ff, d),
                output_norm: layer_norm(d, eps, device),
                n_heads: self.num_attention_heads,
                eps,
                gelu_tanh: self.gelu_tanh(),
            })
            .collect();
        let bert = Bert {
            embeddings,
            layers,
            pooler: with_pooler.then(|| lin(d, d)),
        };
        let mlm = MlmHead {
            dense: lin(d, d),
            layer_norm: layer_norm(d, eps, device),
            bias: Param::from_tensor(Tensor::zeros([self.vocab_size], device)),
            gelu_tanh: self.gelu_tanh(),
        };
        (bert, mlm)
    }

    /// A BERT-shaped config for models trained from scratch.
    pub fn tiny(vocab_size: usize) -> Self {
        BertConfig {
            model_type: Some("bert".into()),
            architectures: Some(vec!["BertForMaskedLM".into()]),
            vocab_size,
            hidden_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 512,
            hidden_act: "gelu".into(),
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            initializer_range: 0.02,
        }
    }
}

#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word_embeddings: Embedding<B>,
    pub position_embeddings: Embedding<B>,
    pub token_type_embeddings: Embedding<B>,
    pub layer_norm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    /// `attention.self.query`
    pub query: Linear<B>,
    /// `attention.self.key`
    pub key: Linear<B>,
    /// `attention.self.value`
    pub value: Linear<B>,
    /// `attention.output.dense`
    pub attention_output: Linear<B>,
    /// `attention.output.LayerNorm`
    pub attention_norm: LayerNorm<B>,
    /// `intermediate.dense`
    pub intermediate: Linear<B>,
    /// `output.dense`
    pub output: Linear<B>,
    /// `output.LayerNorm`
    pub output_norm: LayerNorm<B>,
    pub n_heads: usize,
    /// The LayerNorms' epsilon (burn keeps its own private; the CPU path needs it).
    pub eps: f64,
    /// GELU's tanh approximation (`gelu_new`) instead of the exact one.
    pub gelu_tanh: bool,
}

impl<B: Backend> BertLayer<B> {
    /// This layer as the CPU inference path reads it.
    fn cpu_params(&self) -> crate::cpu::LayerParams<'_, B> {
        crate::cpu::LayerParams {
            query: &self.query,
            key: &self.key,
            value: &self.value,
            attention_output: &self.attention_output,
            attention_norm: &self.attention_norm,
            intermediate: &self.intermediate,
            output: &self.output,
            output_norm: &self.output_norm,
            eps: self.eps,
            n_heads: self.n_heads,
            gelu_tanh: self.gelu_tanh,
        }
    }

    /// `mask`: `[batch, 1, seq, seq]`, `true` where the key is padding.
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 3> {
        let [b, s, d] = x.dims();
        let h = self.n_heads;
        // Linear layers see [b*s, d]: one large GEMM each instead of a batch of small ones.
        let x = x.reshape([b * s, d]);
        let heads = |t: Tensor<B, 2>| t.reshape([b, s, h, d / h]).swap_dims(1, 2);
        let q = heads(self.query.forward(x.clone()));
        let k = heads(self.key.forward(x.clone()));
        let v = heads(self.value.forward(x.clone()));
        let opts = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        let ctx = attention(q, k, v, mask, None, opts)
            .swap_dims(1, 2)
            .reshape([b * s, d]);
        let a = self
            .attention_norm
            .forward(x + self.attention_output.forward(ctx));
        let i = activation(self.intermediate.forward(a.clone()), self.gelu_tanh);
        self.output_norm
            .forward(a + self.output.forward(i))
            .reshape([b, s, d])
    }
}

/// HF `BertModel`: embeddings, encoder, optional pooler.
#[derive(Module, Debug)]
pub struct Bert<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    pub layers: Vec<BertLayer<B>>,
    pub pooler: Option<Linear<B>>,
}

/// A tokenised batch on a device: ids, token types, and the padding mask (`true` = pad).
#[derive(Debug, Clone)]
pub struct BertInput<B: Backend> {
    pub ids: Tensor<B, 2, Int>,
    pub type_ids: Tensor<B, 2, Int>,
    pub pad_mask: Tensor<B, 2, Bool>,
}

impl<B: Backend> Bert<B> {
    /// Last hidden states `[batch, seq, hidden]`.
    pub fn forward(&self, input: &BertInput<B>) -> Tensor<B, 3> {
        let [b, s] = input.ids.dims();
        let device = input.ids.device();
        let e = &self.embeddings;
        let pos = Tensor::<B, 1, Int>::arange(0..s as i64, &device).reshape([1, s]);
        let x = e.word_embeddings.forward(input.ids.clone())
            + e.position_embeddings.forward(pos)
            + e.token_type_embeddings.forward(input.type_ids.clone());
        let x = e.layer_norm.forward(x);
        let params: Vec<_> = self.layers.iter().map(BertLayer::cpu_params).collect();
        match crate::cpu::encoder_layers(&params, x, &input.pad_mask) {
            Ok(x) => x,
            Err(mut x) => {
                // Only pay for masking when the batch has padding.
                let any_pad = input.pad_mask.clone().any().into_scalar().elem::<bool>();
                let mask = any_pad.then(|| {
                    input
                        .pad_mask
                        .clone()
                        .reshape([b, 1, 1, s])
                        .expand([b, 1, s, s])
                });
                for layer in &self.layers {
                    x = layer.forward(x, mask.clone());
                }
                x
            }
        }
    }

    /// `BertPooler`: tanh(dense(h[CLS])), if the checkpoint has a pooler.
    pub fn pooled(&self, hidden: Tensor<B, 3>) -> Option<Tensor<B, 2>> {
        let [b, _, d] = hidden.dims();
        let cls = hidden.slice([0..b, 0..1]).reshape([b, d]);
        self.pooler.as_ref().map(|p| p.forward(cls).tanh())
    }

    pub fn hidden_size(&self) -> usize {
        self.embeddings.word_embeddings.weight.dims()[1]
    }
}

/// HF `BertLMPredictionHead`: dense → GELU → LayerNorm → decoder tied to the word
/// embeddings, plus a bias.
#[derive(Module, Debug)]
pub struct MlmHead<B: Backend> {
    pub dense: Linear<B>,
    pub layer_norm: LayerNorm<B>,
    pub bias: Param<Tensor<B, 1>>,
    pub gelu_tanh: bool,
}

/// GELU, exact (erf) or in its tanh form (`gelu_new`: `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`).
pub fn activation<B: Backend, const D: usize>(x: Tensor<B, D>, tanh: bool) -> Tensor<B, D> {
    if !tanh {
        return gelu(x);
    }
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let inner = (x.clone() + x.clone().powf_scalar(3.0) * 0.044715) * c;
    x * (inner.tanh() + 1.0) * 0.5
}

impl<B: Backend> MlmHead<B> {
    /// Vocabulary logits for hidden states `[n, hidden]` (project only the positions you
    /// need: the 30k-way projection dominates an MLM step).
    pub fn logits(&self, bert: &Bert<B>, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        let t = self
            .layer_norm
            .forward(activation(self.dense.forward(hidden), self.gelu_tanh));
        let w = bert.embeddings.word_embeddings.weight.val();
        t.matmul(w.transpose()) + self.bias.val().unsqueeze_dim(0)
    }
}

pub fn layer_norm<B: Backend>(d: usize, eps: f64, device: &B::Device) -> LayerNorm<B> {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}

/// HF names of the eight tensor groups of encoder layer `i` (under `encoder.layer.{i}.`):
/// the one table that both loading and saving use. The `BertLayer` field each maps to is
/// the comment on that field.
pub const LAYER_HF_NAMES: [&str; 8] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "attention.output.LayerNorm",
    "intermediate.dense",
    "output.dense",
    "output.LayerNorm",
];

/// HF names of the embedding tables and their LayerNorm, in `BertEmbeddings` field order.
pub const EMBEDDING_HF_NAMES: [&str; 4] = [
    "embeddings.word_embeddings",
    "embeddings.position_embeddings",
    "embeddings.token_type_embeddings",
    "embeddings.LayerNorm",
];

#[cfg(test)]
mod cpu_path {
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::prelude::*;

    use super::{BertConfig, BertInput};

    /// The CPU path (plain `Flex`) against burn's generic ops (the autodiff backend, which
    /// the CPU path declines), on one random BERT: padding at the end, padding inside a
    /// sequence, and a sequence with no padding.
    #[test]
    fn cpu_path_equals_burns_ops() {
        cpu_path_equals_burns_ops_with("gelu");
    }

    /// The same with REALM's tanh GELU (`gelu_new`).
    #[test]
    fn cpu_path_equals_burns_ops_with_tanh_gelu() {
        cpu_path_equals_burns_ops_with("gelu_new");
    }

    fn cpu_path_equals_burns_ops_with(act: &str) {
        type A = Autodiff<Flex>;
        let device = Default::default();
        A::seed(&device, 7);
        let mut cfg = BertConfig::tiny(50);
        cfg.hidden_act = act.into();
        cfg.hidden_size = 48;
        cfg.num_attention_heads = 4;
        cfg.intermediate_size = 96;
        cfg.num_hidden_layers = 3;
        // Large weights, so that attention is far from uniform and every detail counts.
        cfg.initializer_range = 0.3;
        let (bert, _) = cfg.init::<A>(false, &device);
        let (b, s) = (3, 9);
        let ids: Vec<i64> = (0..b * s).map(|i| (i * 7 % 50) as i64).collect();
        let mut pad = vec![false; b * s];
        pad[s - 3..s].fill(true); // sequence 0: 6 tokens
        pad[s + 4] = true; // sequence 1: a hole
        let input = |dev: &burn::backend::flex::FlexDevice| BertInput::<Flex> {
            ids: Tensor::from_data(TensorData::new(ids.clone(), [b, s]), dev),
            type_ids: Tensor::zeros([b, s], dev),
            pad_mask: Tensor::from_data(TensorData::new(pad.clone(), [b, s]), dev),
        };
        let i = input(&device);
        let generic = bert
            .forward(&BertInput::<A> {
                ids: Tensor::from_inner(i.ids.clone()),
                type_ids: Tensor::from_inner(i.type_ids.clone()),
                pad_mask: Tensor::from_inner(i.pad_mask.clone()),
            })
            .inner()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let valid = bert.valid();
        let params: Vec<_> = valid.layers.iter().map(|l| l.cpu_params()).collect();
        let probe = crate::cpu::encoder_layers(&params, Tensor::zeros([1, 2, 48], &device), &{
            Tensor::from_data(TensorData::new(vec![false, true], [1, 2]), &device)
        });
        assert!(probe.is_ok(), "the CPU path declined a plain Flex model");
        let fast = valid.forward(&i).into_data().to_vec::<f32>().unwrap();
        let worst = generic
            .iter()
            .zip(&fast)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "max |Δ| = {worst}");
    }
}
