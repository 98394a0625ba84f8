//! Hugging Face `MarianMTModel` checkpoints (Helsinki-NLP opus-mt-*, and any model
//! transformers 4.x or 5.x saved with `model_type: marian`) loaded as a ragl [`Seq2Seq`]:
//! post-norm layers, `scale_embedding`, Marian's static sinusoids, `final_logits_bias`, tied
//! embeddings, the configured activation, the checkpoint's pad/eos/decoder-start ids, and the
//! beam defaults of `generation_config.json` (or of `config.json`, where 4.x kept them).
//! Tokenisation is `MarianTokenizer`'s ([`crate::vocab::MarianVocab`]).
//!
//! Mirrors `transformers/models/marian/modeling_marian.py`: `shared` → `embed`,
//! `final_logits_bias` → `logits_bias`, the layers as [`super`] names them. The weights come
//! from `model.safetensors` (f32/f16/bf16); `pytorch_model.bin` is refused with the one-line
//! conversion.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use burn::module::Param;
use burn::prelude::*;
use ragl_model::sentencepiece::SentencePiece;
use ragl_model::weights::{Weights, tensor1, tensor2};
use serde_json::Value;

use super::{
    GenerationDefaults, artifact, check_sinusoids, fingerprint, finish, generation, load_layers,
    no_weights, read_json, shape,
};
use crate::beam::BeamConfig;
use crate::checkpoint::MtModel;
use crate::model::{ModelConfig, Positions, Seq2Seq};
use crate::vocab::{MarianVocab, Specials, Vocab};
use crate::{Error, Result};

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
                "{what}: not a translation model ragl can load (it reads model_type \"marian\", opus-mt, and \"fsmt\", fairseq's WMT19)"
            ),
        ));
    }
    let int = |k: &str| c.get(k).and_then(Value::as_u64).map(|v| v as usize);
    let need = |k: &str| int(k).ok_or_else(|| artifact(&path, format!("no integer {k}")));
    let flag = |k: &str, default: bool| c.get(k).and_then(Value::as_bool).unwrap_or(default);
    let sh = shape(&path, &c, "gelu")?;
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
        d_model: sh.d_model,
        heads: sh.heads,
        ff: sh.ff,
        encoder_layers: sh.encoder_layers,
        decoder_layers: sh.decoder_layers,
        dropout: 0.0,
        norm_first: false,
        activation: sh.activation,
        positions: Positions::Marian,
        layer_norm_eps: 1e-5,
        scale_embedding: flag("scale_embedding", false),
        logits_bias: true,
        specials,
        ..ModelConfig::default()
    };
    model.validate().map_err(|m| artifact(&path, m))?;
    // transformers' defaults where the files are silent: 1 beam, 20 tokens in all.
    let beam = generation(
        dir,
        &c,
        eos,
        GenerationDefaults {
            num_beams: 1,
            max_length: 20,
            forced_eos: None,
        },
    )?;
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

/// Reads the weights into `model` (built from the same config).
fn load_weights<B: Backend>(
    model: &mut Seq2Seq<B>,
    cfg: &MarianConfig,
    path: &Path,
    dev: &B::Device,
) -> Result<String> {
    let (mut w, sha) = Weights::open(path, &["model."], &[]).map_err(Error::from)?;
    let c = &cfg.model;
    let (d, v) = (c.d_model, c.vocab_size);
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
    check_sinusoids::<B>(&mut w, path, d, Positions::Marian, 0, dev)?;
    let bias = match w.tensors.get("final_logits_bias") {
        Some((s, _)) if s.len() == 2 => w.take("final_logits_bias", &[1, v]),
        _ => w.take("final_logits_bias", &[v]),
    }
    .map_err(Error::from)?;
    model.embed.weight = Param::from_tensor(tensor2(emb, [v, d], dev));
    model.logits_bias = Some(Param::from_tensor(tensor1(bias, dev)));
    load_layers(&mut w, model, c, dev)?;
    finish(w, path, "Marian")?;
    Ok(sha)
}

/// Loads a Marian checkpoint directory.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<MtModel<B>> {
    let cfg = read_config(dir)?;
    let weights = ragl_model::weights::weights_file(dir).ok_or_else(|| no_weights(dir))?;
    let mut specials = cfg.model.specials;
    let vocab = read_vocab(dir, &mut specials, cfg.model.vocab_size)?;
    let mut config = cfg.model.clone();
    config.specials = specials;
    let mut model = config.init::<B>(device);
    let weights_sha = load_weights(&mut model, &cfg, &weights, device)?;
    let fingerprint = fingerprint(
        &weights_sha,
        dir,
        &["source.spm", "target.spm", "vocab.json"],
    )?;
    Ok(MtModel {
        config,
        vocab: Vocab::Marian(Arc::new(vocab)),
        model,
        fingerprint,
        dir: dir.to_path_buf(),
        generation: cfg.beam,
        max_positions: Some(cfg.max_positions),
    })
}
