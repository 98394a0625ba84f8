//! Hugging Face `MarianMTModel` checkpoints (Helsinki-NLP opus-mt-*, and any model
//! transformers 4.x or 5.x saved with `model_type: marian`) loaded as a ragl [`Seq2Seq`]:
//! post-norm layers, `scale_embedding`, Marian's static sinusoids, `final_logits_bias`, tied
//! embeddings, the configured activation, the checkpoint's pad/eos/decoder-start ids, and the
//! beam defaults of `generation_config.json` (or of `config.json`, where 4.x kept them).
//! Tokenisation is `MarianTokenizer`'s ([`crate::vocab::MarianVocab`]).
//!
//! Mirrors `transformers/models/marian/modeling_marian.py`. Names (after `model.`):
//! `shared` → `embed`; `encoder.layers.{i}.` `self_attn.{q,k,v,out}_proj` →
//! `attn.{query,key,value,out}`, `self_attn_layer_norm` → `attn_norm`, `fc1`/`fc2` →
//! `ff.fc1`/`ff.fc2`, `final_layer_norm` → `ff_norm`; `decoder.layers.{i}.` the same with
//! `self_norm`, and `encoder_attn(_layer_norm)` → `cross_attn`/`cross_norm`;
//! `final_logits_bias` → `logits_bias`. The weights come from `model.safetensors`
//! (f32/f16/bf16); `pytorch_model.bin` is refused with the one-line conversion.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use burn::module::Param;
use burn::prelude::*;
use ragl_model::sentencepiece::SentencePiece;
use ragl_model::weights::{Weights, linear, norm, tensor1, tensor2};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::beam::{AtMaxLen, BeamConfig};
use crate::checkpoint::MtModel;
use crate::model::{
    Activation, Attention, DecoderLayer, EncoderLayer, FeedForward, ModelConfig, Positions,
    Seq2Seq, sinusoids,
};
use crate::vocab::{MarianVocab, Specials, Vocab};
use crate::{Error, Result};

const WEIGHTS: &str = "model.safetensors";

fn artifact(path: &Path, message: impl Into<String>) -> Error {
    Error::Artifact {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Whether `dir` holds a Hugging Face config (`config.json`), whatever its model type.
pub fn is_hf_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file()
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ragl_core::Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| artifact(path, format!("line {}: not JSON: {e}", e.line())))
}

/// The generation settings transformers would use: `generation_config.json` first, then
/// the same keys in `config.json`, then transformers' defaults.
fn generation(dir: &Path, config: &Value) -> Result<Value> {
    let p = dir.join("generation_config.json");
    if p.is_file() {
        return read_json(&p);
    }
    Ok(config.clone())
}

/// What `config.json` says, checked against what this loader implements.
#[derive(Debug, Clone)]
pub struct MarianConfig {
    pub model: ModelConfig,
    pub beam: BeamConfig,
    pub max_positions: usize,
}

pub fn read_config(dir: &Path) -> Result<MarianConfig> {
    let path = dir.join("config.json");
    if !path.is_file() {
        return Err(artifact(
            dir,
            "not a translation model directory: no config.json (a Marian checkpoint), \
             model.json (ragl's own) or `last` (a ragl run)",
        ));
    }
    let c = read_json(&path)?;
    let kind = c.get("model_type").and_then(Value::as_str).unwrap_or("");
    if kind != "marian" {
        let what = if kind.is_empty() {
            "no model_type".to_string()
        } else {
            format!("model_type {kind:?}")
        };
        return Err(artifact(
            &path,
            format!(
                "{what}: not a translation model ragl can load (Marian/opus-mt checkpoints have model_type \"marian\")"
            ),
        ));
    }
    let int = |k: &str| c.get(k).and_then(Value::as_u64).map(|v| v as usize);
    let need = |k: &str| int(k).ok_or_else(|| artifact(&path, format!("no integer {k}")));
    let flag = |k: &str, default: bool| c.get(k).and_then(Value::as_bool).unwrap_or(default);
    let d = need("d_model")?;
    let (eh, dh) = (
        need("encoder_attention_heads")?,
        need("decoder_attention_heads")?,
    );
    let (ef, df) = (need("encoder_ffn_dim")?, need("decoder_ffn_dim")?);
    if eh != dh || ef != df {
        return Err(artifact(
            &path,
            format!("encoder and decoder differ (heads {eh}/{dh}, ffn {ef}/{df}): not supported"),
        ));
    }
    let vocab_size = need("vocab_size")?;
    if let Some(dv) = int("decoder_vocab_size")
        && dv != vocab_size
    {
        return Err(artifact(
            &path,
            format!(
                "decoder_vocab_size {dv} differs from vocab_size {vocab_size}: separate target vocabularies are not supported"
            ),
        ));
    }
    if !flag("share_encoder_decoder_embeddings", true) {
        return Err(artifact(
            &path,
            "share_encoder_decoder_embeddings is false: untied encoder/decoder embeddings are not supported",
        ));
    }
    if flag("normalize_before", false) || flag("normalize_embedding", false) {
        return Err(artifact(
            &path,
            "normalize_before/normalize_embedding: pre-norm Marian variants are not supported",
        ));
    }
    let activation = match c
        .get("activation_function")
        .and_then(Value::as_str)
        .unwrap_or("gelu")
    {
        "swish" | "silu" => Activation::Swish,
        "gelu" => Activation::Gelu,
        "relu" => Activation::Relu,
        other => {
            return Err(artifact(
                &path,
                format!("activation_function {other:?} is not supported (swish, gelu, relu)"),
            ));
        }
    };
    let pad = need("pad_token_id")? as u32;
    let eos = need("eos_token_id")? as u32;
    let specials = Specials {
        pad,
        bos: int("decoder_start_token_id").map_or(pad, |v| v as u32),
        eos,
        unk: 1,
    };
    for (name, id) in [("pad", pad), ("eos", eos), ("decoder_start", specials.bos)] {
        if id as usize >= vocab_size {
            return Err(artifact(
                &path,
                format!("{name}_token_id {id} is outside the vocabulary of {vocab_size}"),
            ));
        }
    }
    let model = ModelConfig {
        vocab_size,
        d_model: d,
        heads: eh,
        ff: ef,
        encoder_layers: need("encoder_layers")?,
        decoder_layers: need("decoder_layers")?,
        dropout: 0.0,
        norm_first: false,
        activation,
        positions: Positions::Marian,
        layer_norm_eps: 1e-5,
        scale_embedding: flag("scale_embedding", false),
        logits_bias: true,
        specials,
    };
    model.validate().map_err(|m| artifact(&path, m))?;
    let g = generation(dir, &c)?;
    let gnum = |k: &str| g.get(k).and_then(Value::as_f64);
    // transformers' defaults where the files are silent: 1 beam, 20 tokens in all.
    let max_length = gnum("max_length").map_or(20, |v| v as usize).max(2);
    let beam = BeamConfig {
        beam: gnum("num_beams").map_or(1, |v| v as usize).max(1),
        len_penalty: gnum("length_penalty").unwrap_or(1.0),
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
        at_max_len: match g.get("forced_eos_token_id").and_then(Value::as_u64) {
            Some(e) if e == u64::from(eos) => AtMaxLen::FreeEos,
            _ => AtMaxLen::Truncate,
        },
    };
    Ok(MarianConfig {
        model,
        beam,
        max_positions: int("max_position_embeddings").unwrap_or(512),
    })
}

fn read_vocab(dir: &Path, specials: &mut Specials, vocab_size: usize) -> Result<MarianVocab> {
    for f in ["source.spm", "target.spm", "vocab.json"] {
        if !dir.join(f).is_file() {
            return Err(artifact(
                dir,
                format!(
                    "Marian checkpoint without {f} (MarianTokenizer needs source.spm, target.spm and vocab.json)"
                ),
            ));
        }
    }
    if dir.join("target_vocab.json").is_file() {
        return Err(artifact(
            &dir.join("target_vocab.json"),
            "separate source and target vocabularies are not supported",
        ));
    }
    let source = SentencePiece::open(&dir.join("source.spm")).map_err(Error::from)?;
    let target = SentencePiece::open(&dir.join("target.spm")).map_err(Error::from)?;
    let vpath = dir.join("vocab.json");
    let map: HashMap<String, u32> = serde_json::from_value(read_json(&vpath)?)
        .map_err(|e| artifact(&vpath, format!("not a token → id map: {e}")))?;
    if map.len() != vocab_size {
        return Err(artifact(
            &vpath,
            format!(
                "{} entries, but config.json says vocab_size {vocab_size}: vocabulary and model do not match",
                map.len()
            ),
        ));
    }
    if let Some(&unk) = map.get("<unk>") {
        specials.unk = unk;
    }
    MarianVocab::new(dir, source, target, map, *specials)
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

/// Reads the weights into `model` (built from the same config).
fn load_weights<B: Backend>(
    model: &mut Seq2Seq<B>,
    cfg: &MarianConfig,
    path: &Path,
    dev: &B::Device,
) -> Result<String> {
    let (mut w, sha) = Weights::open(path, &["model."], &[]).map_err(Error::from)?;
    let c = &cfg.model;
    let (d, v, ff, eps) = (c.d_model, c.vocab_size, c.ff, c.layer_norm_eps);
    let emb_name = ["shared.weight", "encoder.embed_tokens.weight"]
        .into_iter()
        .find(|n| w.tensors.contains_key(*n))
        .unwrap_or("shared.weight");
    let emb = w.take(emb_name, &[v, d]).map_err(Error::from)?;
    // Tied copies must be the same matrix.
    for tied in [
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
        "lm_head.weight",
    ] {
        if tied == emb_name {
            continue;
        }
        if let Some((_, t)) = w.tensors.get(tied) {
            if *t != emb {
                return Err(artifact(
                    path,
                    format!("{tied} differs from {emb_name}: untied embeddings are not supported"),
                ));
            }
            w.mark_used(tied);
        }
    }
    // transformers 4.x stores the static sinusoids; they must be the ones computed here.
    for side in ["encoder", "decoder"] {
        let name = format!("{side}.embed_positions.weight");
        if let Some((shape, table)) = w.tensors.get(&name) {
            let n = shape[0].min(64);
            let want: Vec<f32> = sinusoids::<B>(0, n, d, Positions::Marian, dev)
                .into_data()
                .to_vec()
                .expect("f32");
            let diff = want
                .iter()
                .zip(table)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            if shape.len() != 2 || shape[1] != d || diff > 1e-4 {
                return Err(artifact(
                    path,
                    format!(
                        "{name} is not Marian's sinusoid table (max difference {diff}): learned positions are not supported"
                    ),
                ));
            }
            w.mark_used(&name);
        }
    }
    let bias = match w.tensors.get("final_logits_bias") {
        Some((s, _)) if s.len() == 2 => w.take("final_logits_bias", &[1, v]),
        _ => w.take("final_logits_bias", &[v]),
    }
    .map_err(Error::from)?;
    model.embed.weight = Param::from_tensor(tensor2(emb, [v, d], dev));
    model.logits_bias = Some(Param::from_tensor(tensor1(bias, dev)));
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
            attn: attention(&mut w, &format!("{p}.self_attn"), d, c.heads, dev)?,
            attn_norm: ln(&mut w, format!("{p}.self_attn_layer_norm"))?,
            ff: ffn(&mut w, &p)?,
            ff_norm: ln(&mut w, format!("{p}.final_layer_norm"))?,
            dropout: layer.dropout.clone(),
            norm_first: false,
        };
    }
    for (i, layer) in model.decoder.iter_mut().enumerate() {
        let p = format!("decoder.layers.{i}");
        *layer = DecoderLayer {
            self_attn: attention(&mut w, &format!("{p}.self_attn"), d, c.heads, dev)?,
            self_norm: ln(&mut w, format!("{p}.self_attn_layer_norm"))?,
            cross_attn: attention(&mut w, &format!("{p}.encoder_attn"), d, c.heads, dev)?,
            cross_norm: ln(&mut w, format!("{p}.encoder_attn_layer_norm"))?,
            ff: ffn(&mut w, &p)?,
            ff_norm: ln(&mut w, format!("{p}.final_layer_norm"))?,
            dropout: layer.dropout.clone(),
            norm_first: false,
        };
    }
    let unused = w.finish().map_err(Error::from)?;
    if !unused.is_empty() {
        return Err(artifact(
            path,
            format!(
                "{} tensor(s) this Marian loader does not know: {} (a different architecture?)",
                unused.len(),
                unused.join(", ")
            ),
        ));
    }
    Ok(sha)
}

/// Loads a Marian checkpoint directory.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<MtModel<B>> {
    let cfg = read_config(dir)?;
    let weights = dir.join(WEIGHTS);
    if !weights.is_file() {
        let hint = if dir.join("pytorch_model.bin").is_file() {
            " (it has pytorch_model.bin, which ragl does not read: re-save it once with \
             `MarianMTModel.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)`)"
        } else {
            ""
        };
        return Err(artifact(dir, format!("no {WEIGHTS}{hint}")));
    }
    let mut specials = cfg.model.specials;
    let vocab = read_vocab(dir, &mut specials, cfg.model.vocab_size)?;
    let mut config = cfg.model.clone();
    config.specials = specials;
    let mut model = config.init::<B>(device);
    let weights_sha = load_weights(&mut model, &cfg, &weights, device)?;
    let mut h = Sha256::new();
    h.update(weights_sha);
    for f in ["source.spm", "target.spm", "vocab.json"] {
        h.update(ragl_core::manifest::sha256_file(&dir.join(f))?);
    }
    Ok(MtModel {
        config,
        vocab: Vocab::Marian(Arc::new(vocab)),
        model,
        fingerprint: hex::encode(&h.finalize()[..16]),
        dir: dir.to_path_buf(),
        generation: cfg.beam,
        max_positions: Some(cfg.max_positions),
    })
}
