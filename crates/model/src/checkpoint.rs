//! Hugging Face checkpoints in and out: `config.json` + `model.safetensors`
//! (+ `tokenizer.json`). Loading and saving name tensors through the tables in [`crate::bert`]
//! (`EMBEDDING_HF_NAMES`, `LAYER_HF_NAMES`),
//! accepts the `bert.` prefix or none, `LayerNorm.weight/bias` or the old TF
//! `LayerNorm.gamma/beta`, f32/f16/bf16 storage, and a tied MLM decoder. Every missing
//! tensor is reported by name at once; a shape mismatch is an error naming the tensor;
//! tensors the model does not use are listed in the [`LoadReport`].

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;

use crate::bert::{
    Bert, BertConfig, BertEmbeddings, BertLayer, EMBEDDING_HF_NAMES as EMB,
    LAYER_HF_NAMES as LAYER, MlmHead,
};
use crate::weights::{Weights, embedding, linear, norm, tensor1, transpose};
use crate::{Error, Result};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Checkpoint<B: Backend> {
    pub config: BertConfig,
    pub bert: Bert<B>,
    /// Present when the checkpoint is a `BertForMaskedLM`.
    pub mlm: Option<MlmHead<B>>,
    pub report: LoadReport,
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Tensors in the file that no module took (besides known buffers).
    pub unused: Vec<String>,
    /// SHA-256 of the weights file: identifies the model in artifact manifests.
    pub fingerprint: String,
}

/// Reads and validates `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<BertConfig> {
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(Error::MissingFile {
            dir: dir.to_path_buf(),
            file: CONFIG_FILE,
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| ragl_core::Error::io(&path, e))?;
    let config: BertConfig = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.clone(),
        line: e.line(),
        message: format!("not a BERT config: {e}"),
    })?;
    config.validate().map_err(|m| Error::Config {
        path,
        line: 0,
        message: format!("not a BERT config: {m}"),
    })?;
    Ok(config)
}

/// The fingerprint [`load`] would report for `dir` (SHA-256 of its weights file), without
/// loading the model.
pub fn fingerprint(dir: &Path) -> Result<String> {
    let path = crate::weights::weights_file(dir).ok_or_else(|| Error::MissingFile {
        dir: dir.to_path_buf(),
        file: WEIGHTS_FILE,
    })?;
    Ok(ragl_core::manifest::sha256_file(&path)?)
}

/// Loads a BERT checkpoint directory (`config.json` + `model.safetensors` or
/// `pytorch_model.bin`). REALM's knowledge-augmented encoder (`model_type: realm`) loads here too, as the
/// `BertForMaskedLM` it is.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<Checkpoint<B>> {
    if crate::realm::is_realm_dir(dir) {
        return crate::realm::load_bert(dir, device);
    }
    let config = read_config(dir)?;
    let path = crate::weights::weights_file(dir).ok_or_else(|| Error::MissingFile {
        dir: dir.to_path_buf(),
        file: "model.safetensors or pytorch_model.bin",
    })?;
    let (mut w, fingerprint) = Weights::open(&path, &["bert."], &["embeddings.position_ids"])?;
    let (bert, mlm) = bert_from_weights(&mut w, &config, device)?;
    let unused = w.finish()?;
    Ok(Checkpoint {
        config,
        bert,
        mlm,
        report: LoadReport {
            unused,
            fingerprint,
        },
    })
}

/// Builds a BERT (its pooler and MLM head when the weights have them) from weights named as
/// `BertModel`'s are (any architecture prefix already removed).
pub fn bert_from_weights<B: Backend>(
    w: &mut Weights,
    config: &BertConfig,
    device: &B::Device,
) -> Result<(Bert<B>, Option<MlmHead<B>>)> {
    let path = w.path.clone();
    let c = &config;
    let (d, ff, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
    let embeddings = BertEmbeddings {
        word_embeddings: embedding(w, EMB[0], c.vocab_size, d, device)?,
        position_embeddings: embedding(w, EMB[1], c.max_position_embeddings, d, device)?,
        token_type_embeddings: embedding(w, EMB[2], c.type_vocab_size, d, device)?,
        layer_norm: norm(w, EMB[3], d, eps, device)?,
    };
    let mut layers = Vec::with_capacity(c.num_hidden_layers);
    for i in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        layers.push(BertLayer {
            query: linear(w, &format!("{p}.{}", LAYER[0]), d, d, device)?,
            key: linear(w, &format!("{p}.{}", LAYER[1]), d, d, device)?,
            value: linear(w, &format!("{p}.{}", LAYER[2]), d, d, device)?,
            attention_output: linear(w, &format!("{p}.{}", LAYER[3]), d, d, device)?,
            attention_norm: norm(w, &format!("{p}.{}", LAYER[4]), d, eps, device)?,
            intermediate: linear(w, &format!("{p}.{}", LAYER[5]), d, ff, device)?,
            output: linear(w, &format!("{p}.{}", LAYER[6]), ff, d, device)?,
            output_norm: norm(w, &format!("{p}.{}", LAYER[7]), d, eps, device)?,
            n_heads: c.num_attention_heads,
            eps,
            gelu_tanh: c.gelu_tanh(),
        });
    }
    let pooler = if w.has_prefix("pooler.") {
        Some(linear(w, "pooler.dense", d, d, device)?)
    } else {
        None
    };
    let mlm = if w.has_prefix("cls.predictions.") {
        let dense = linear(w, "cls.predictions.transform.dense", d, d, device)?;
        let ln = norm(w, "cls.predictions.transform.LayerNorm", d, eps, device)?;
        let bias = w.take("cls.predictions.bias", &[c.vocab_size])?;
        // A stored decoder must be the tied word embeddings (all HF BERT MLMs tie them).
        if let Some((_, dec)) = w.tensors.get("cls.predictions.decoder.weight") {
            if w.tensors
                .get("embeddings.word_embeddings.weight")
                .map(|(_, e)| e)
                != Some(dec)
            {
                return Err(Error::Weights { path: path.clone(), message: "cls.predictions.decoder.weight differs from the word embeddings: untied MLM decoders are not supported".into() });
            }
            w.used.insert("cls.predictions.decoder.weight".into());
        }
        if w.tensors.contains_key("cls.predictions.decoder.bias") {
            w.used.insert("cls.predictions.decoder.bias".into());
        }
        Some(MlmHead {
            dense,
            layer_norm: ln,
            bias: Param::from_tensor(tensor1(bias, device)),
            gelu_tanh: c.gelu_tanh(),
        })
    } else {
        None
    };
    Ok((
        Bert {
            embeddings,
            layers,
            pooler,
        },
        mlm,
    ))
}

/// A tensor's shape and f32 values on the host, of any rank.
fn host<const D: usize>(t: Tensor<impl Backend, D>) -> (Vec<usize>, Vec<f32>) {
    let dims = t.dims().to_vec();
    (
        dims,
        t.into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 data"),
    )
}

/// Saves in HF layout (`BertModel`, or `BertForMaskedLM` with the `bert.` prefix when an
/// MLM head is given), so `transformers` and ragl both load it back. Writes are atomic.
pub fn save<B: Backend>(
    dir: &Path,
    config: &BertConfig,
    bert: &Bert<B>,
    mlm: Option<&MlmHead<B>>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ragl_core::Error::io(dir, e))?;
    let prefix = if mlm.is_some() { "bert." } else { "" };
    let mut out: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    let lin = |out: &mut BTreeMap<_, _>, name: String, l: &Linear<B>| {
        let (s, w) = host(l.weight.val());
        out.insert(
            format!("{name}.weight"),
            (vec![s[1], s[0]], transpose(&w, s[0], s[1])),
        );
        if let Some(b) = &l.bias {
            out.insert(format!("{name}.bias"), host(b.val()));
        }
    };
    let nrm = |out: &mut BTreeMap<_, _>, name: String, n: &LayerNorm<B>| {
        out.insert(format!("{name}.weight"), host(n.gamma.val()));
        if let Some(b) = &n.beta {
            out.insert(format!("{name}.bias"), host(b.val()));
        }
    };
    let e = &bert.embeddings;
    for (name, emb) in [
        (EMB[0], &e.word_embeddings),
        (EMB[1], &e.position_embeddings),
        (EMB[2], &e.token_type_embeddings),
    ] {
        out.insert(format!("{prefix}{name}.weight"), host(emb.weight.val()));
    }
    nrm(&mut out, format!("{prefix}{}", EMB[3]), &e.layer_norm);
    for (i, l) in bert.layers.iter().enumerate() {
        let p = format!("{prefix}encoder.layer.{i}");
        lin(&mut out, format!("{p}.{}", LAYER[0]), &l.query);
        lin(&mut out, format!("{p}.{}", LAYER[1]), &l.key);
        lin(&mut out, format!("{p}.{}", LAYER[2]), &l.value);
        lin(&mut out, format!("{p}.{}", LAYER[3]), &l.attention_output);
        nrm(&mut out, format!("{p}.{}", LAYER[4]), &l.attention_norm);
        lin(&mut out, format!("{p}.{}", LAYER[5]), &l.intermediate);
        lin(&mut out, format!("{p}.{}", LAYER[6]), &l.output);
        nrm(&mut out, format!("{p}.{}", LAYER[7]), &l.output_norm);
    }
    if let Some(p) = &bert.pooler {
        lin(&mut out, format!("{prefix}pooler.dense"), p);
    }
    if let Some(h) = mlm {
        lin(&mut out, "cls.predictions.transform.dense".into(), &h.dense);
        nrm(
            &mut out,
            "cls.predictions.transform.LayerNorm".into(),
            &h.layer_norm,
        );
        out.insert("cls.predictions.bias".into(), host(h.bias.val()));
    }
    crate::weights::write_safetensors(&dir.join(WEIGHTS_FILE), &out)?;
    let mut cfg = serde_json::to_value(config).expect("config serialises");
    cfg["architectures"] = serde_json::json!([if mlm.is_some() {
        "BertForMaskedLM"
    } else {
        "BertModel"
    }]);
    cfg["model_type"] = serde_json::json!("bert");
    ragl_core::atomic::write_bytes_atomic(
        &dir.join(CONFIG_FILE),
        serde_json::to_string_pretty(&cfg).expect("json").as_bytes(),
    )?;
    Ok(())
}
