//! Hugging Face seq2seq checkpoints read as a ragl [`Seq2Seq`]: Marian (opus-mt, [`marian`])
//! and FSMT (fairseq's WMT19 transformers, [`fsmt`]). Both are BART-family post-norm
//! transformers with the same layer names, so the reading of `config.json`,
//! `generation_config.json` and the layers lives here; each family adds its embeddings,
//! positions and tokenizer.
//!
//! Layer names (after `model.`): `encoder.layers.{i}.` `self_attn.{q,k,v,out}_proj` →
//! `attn.{query,key,value,out}`, `self_attn_layer_norm` → `attn_norm`, `fc1`/`fc2` →
//! `ff.fc1`/`ff.fc2`, `final_layer_norm` → `ff_norm`; `decoder.layers.{i}.` the same with
//! `self_norm`, and `encoder_attn(_layer_norm)` → `cross_attn`/`cross_norm`.

pub mod fsmt;
pub mod marian;

use std::path::Path;

use burn::prelude::*;
use ragl_model::weights::{Weights, linear, norm};
use serde_json::Value;

use crate::beam::{AtMaxLen, BeamConfig};
use crate::model::{
    Activation, Attention, DecoderLayer, EncoderLayer, FeedForward, ModelConfig, Positions,
    Seq2Seq, sinusoids,
};
use crate::{Error, Result};

pub(crate) fn artifact(path: &Path, message: impl Into<String>) -> Error {
    Error::Artifact {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Whether `dir` holds a Hugging Face config (`config.json`), whatever its model type.
pub fn is_hf_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file()
}

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ragl_core::Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| artifact(path, format!("line {}: not JSON: {e}", e.line())))
}

/// `config.json`'s `model_type`.
pub fn model_type(dir: &Path) -> Result<String> {
    let c = read_json(&dir.join("config.json"))?;
    Ok(c.get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string())
}

/// Loads a Hugging Face translation checkpoint of any family ragl reads.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<crate::checkpoint::MtModel<B>> {
    // The Marian reader names what each kind of directory holds when it is none of them.
    if is_hf_dir(dir) && model_type(dir)? == "fsmt" {
        return fsmt::load(dir, device);
    }
    marian::load(dir, device)
}

/// The generation defaults of a model family where its files are silent.
pub(crate) struct GenerationDefaults {
    pub num_beams: usize,
    pub max_length: usize,
    pub forced_eos: Option<u64>,
}

/// The beam settings transformers would use: `generation_config.json` if there is one
/// (missing keys take `GenerationConfig`'s defaults), else the same keys in `config.json`
/// (missing keys take the model class's defaults, `family`).
pub(crate) fn generation(
    dir: &Path,
    config: &Value,
    eos: u32,
    family: GenerationDefaults,
) -> Result<BeamConfig> {
    let p = dir.join("generation_config.json");
    let (g, defaults) = if p.is_file() {
        let plain = GenerationDefaults {
            num_beams: 1,
            max_length: 20,
            forced_eos: None,
        };
        (read_json(&p)?, plain)
    } else {
        (config.clone(), family)
    };
    let num = |k: &str| g.get(k).and_then(Value::as_f64);
    let max_length = num("max_length")
        .map_or(defaults.max_length, |v| v as usize)
        .max(2);
    let forced_eos = match g.get("forced_eos_token_id") {
        Some(v) => v.as_u64(),
        None => defaults.forced_eos,
    };
    Ok(BeamConfig {
        beam: num("num_beams")
            .map_or(defaults.num_beams, |v| v as usize)
            .max(1),
        len_penalty: num("length_penalty").unwrap_or(1.0),
        // The decoder start token counts towards max_length; `</s>` is one of the rest.
        max_len_a: 0.0,
        max_len_b: max_length - 1,
        batch_sentences: BeamConfig::default().batch_sentences,
        early_stopping: g
            .get("early_stopping")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        // ForcedEOSTokenLogitsProcessor sets the end's score to 0; without it transformers
        // stops at max_length wherever the hypotheses are.
        at_max_len: match forced_eos {
            Some(e) if e == u64::from(eos) => AtMaxLen::FreeEos,
            _ => AtMaxLen::Truncate,
        },
    })
}

/// The architecture keys both families share, checked against what [`Seq2Seq`] implements.
pub(crate) struct Shape {
    pub d_model: usize,
    pub heads: usize,
    pub ff: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub activation: Activation,
}

pub(crate) fn shape(path: &Path, c: &Value, default_activation: &str) -> Result<Shape> {
    let int = |k: &str| c.get(k).and_then(Value::as_u64).map(|v| v as usize);
    let need = |k: &str| int(k).ok_or_else(|| artifact(path, format!("no integer {k}")));
    let (eh, dh) = (
        need("encoder_attention_heads")?,
        need("decoder_attention_heads")?,
    );
    let (ef, df) = (need("encoder_ffn_dim")?, need("decoder_ffn_dim")?);
    if eh != dh || ef != df {
        return Err(artifact(
            path,
            format!("encoder and decoder differ (heads {eh}/{dh}, ffn {ef}/{df}): not supported"),
        ));
    }
    let activation = match c
        .get("activation_function")
        .and_then(Value::as_str)
        .unwrap_or(default_activation)
    {
        "swish" | "silu" => Activation::Swish,
        "gelu" => Activation::Gelu,
        "relu" => Activation::Relu,
        other => {
            return Err(artifact(
                path,
                format!("activation_function {other:?} is not supported (swish, gelu, relu)"),
            ));
        }
    };
    Ok(Shape {
        d_model: need("d_model")?,
        heads: eh,
        ff: ef,
        encoder_layers: need("encoder_layers")?,
        decoder_layers: need("decoder_layers")?,
        activation,
    })
}

fn attention<B: Backend>(
    w: &mut Weights,
    p: &str,
    d: usize,
    heads: usize,
    dev: &B::Device,
) -> Result<Attention<B>> {
    let l = |w: &mut Weights, n: &str| linear::<B>(w, &format!("{p}.{n}"), d, d, dev);
    Ok(Attention {
        query: l(w, "q_proj").map_err(Error::from)?,
        key: l(w, "k_proj").map_err(Error::from)?,
        value: l(w, "v_proj").map_err(Error::from)?,
        out: l(w, "out_proj").map_err(Error::from)?,
        heads,
    })
}

/// Reads every encoder and decoder layer of `model` (built from `c`).
pub(crate) fn load_layers<B: Backend>(
    w: &mut Weights,
    model: &mut Seq2Seq<B>,
    c: &ModelConfig,
    dev: &B::Device,
) -> Result<()> {
    let (d, ff, eps) = (c.d_model, c.ff, c.layer_norm_eps);
    let ln = |w: &mut Weights, name: String| norm::<B>(w, &name, d, eps, dev).map_err(Error::from);
    let ffn = |w: &mut Weights, p: &str| -> Result<FeedForward<B>> {
        Ok(FeedForward {
            fc1: linear(w, &format!("{p}.fc1"), d, ff, dev).map_err(Error::from)?,
            fc2: linear(w, &format!("{p}.fc2"), ff, d, dev).map_err(Error::from)?,
            activation: c.activation,
        })
    };
    for (i, layer) in model.encoder.iter_mut().enumerate() {
        let p = format!("encoder.layers.{i}");
        *layer = EncoderLayer {
            attn: attention(w, &format!("{p}.self_attn"), d, c.heads, dev)?,
            attn_norm: ln(w, format!("{p}.self_attn_layer_norm"))?,
            ff: ffn(w, &p)?,
            ff_norm: ln(w, format!("{p}.final_layer_norm"))?,
            dropout: layer.dropout.clone(),
            norm_first: false,
        };
    }
    for (i, layer) in model.decoder.iter_mut().enumerate() {
        let p = format!("decoder.layers.{i}");
        *layer = DecoderLayer {
            self_attn: attention(w, &format!("{p}.self_attn"), d, c.heads, dev)?,
            self_norm: ln(w, format!("{p}.self_attn_layer_norm"))?,
            cross_attn: attention(w, &format!("{p}.encoder_attn"), d, c.heads, dev)?,
            cross_norm: ln(w, format!("{p}.encoder_attn_layer_norm"))?,
            ff: ffn(w, &p)?,
            ff_norm: ln(w, format!("{p}.final_layer_norm"))?,
            dropout: layer.dropout.clone(),
            norm_first: false,
        };
    }
    Ok(())
}

/// transformers 4.x (and FSMT always) stores the static sinusoid tables; each must be the
/// one computed here (rows `first..`, the rows before it are padding), or the checkpoint
/// has learned positions ragl does not implement.
pub(crate) fn check_sinusoids<B: Backend>(
    w: &mut Weights,
    path: &Path,
    d: usize,
    layout: Positions,
    first: usize,
    dev: &B::Device,
) -> Result<()> {
    for side in ["encoder", "decoder"] {
        let name = format!("{side}.embed_positions.weight");
        let Some((shape, table)) = w.tensors.get(&name) else {
            continue;
        };
        let bad = |diff: f32| {
            artifact(
                path,
                format!(
                    "{name} is not the sinusoid table this model type uses (max difference {diff}): learned positions are not supported"
                ),
            )
        };
        if shape.len() != 2 || shape[1] != d || shape[0] <= first {
            return Err(bad(f32::INFINITY));
        }
        let n = (shape[0] - first).min(64);
        let want: Vec<f32> = sinusoids::<B>(first, n, d, layout, dev)
            .into_data()
            .to_vec()
            .expect("f32");
        let diff = want
            .iter()
            .zip(&table[first * d..])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        if diff > 1e-4 {
            return Err(bad(diff));
        }
        w.mark_used(&name);
    }
    Ok(())
}

/// Refuses tensors no loader step consumed.
pub(crate) fn finish(w: Weights, path: &Path, family: &str) -> Result<()> {
    let unused = w.finish().map_err(Error::from)?;
    if !unused.is_empty() {
        return Err(artifact(
            path,
            format!(
                "{} tensor(s) this {family} loader does not know: {} (a different architecture?)",
                unused.len(),
                unused.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A checkpoint's identity: its weights' hash and its tokenizer files'.
pub(crate) fn fingerprint(weights_sha: &str, dir: &Path, files: &[&str]) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(weights_sha);
    for f in files {
        h.update(ragl_core::manifest::sha256_file(&dir.join(f))?);
    }
    Ok(hex::encode(&h.finalize()[..16]))
}

/// A checkpoint directory without weights.
pub(crate) fn no_weights(dir: &Path) -> Error {
    artifact(
        dir,
        "no model.safetensors or pytorch_model.bin (a sharded checkpoint? ragl reads one file)",
    )
}
