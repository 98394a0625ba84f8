//! Hugging Face `FSMTForConditionalGeneration` checkpoints (`model_type: fsmt`: fairseq's
//! WMT19 transformers, `facebook/wmt19-{de-en,en-de,ru-en,en-ru}`, the base model of the
//! kNN-MT paper and of knn-box's tables) loaded as a ragl [`Seq2Seq`]: post-norm, ReLU,
//! embeddings scaled by √d, fairseq's sinusoids counted from `padding_idx + 1`, a source
//! embedding and an output projection of their own (shared in memory when the file's
//! copies are equal), and no logits bias. Tokenisation is `FSMTTokenizer`'s
//! ([`crate::vocab::FsmtVocab`]).
//!
//! Mirrors `transformers/models/fsmt/modeling_fsmt.py`: `encoder.embed_tokens` →
//! `src_embed`, `decoder.embed_tokens` → `embed`, `decoder.output_projection` → `out_proj`,
//! the layers as [`super`] names them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use burn::module::Param;
use burn::nn::EmbeddingConfig;
use burn::prelude::*;
use ragl_model::weights::{Weights, tensor2};
use serde_json::Value;

use super::{
    GenerationDefaults, artifact, check_sinusoids, fingerprint, finish, generation, load_layers,
    no_weights, read_json, shape,
};
use crate::beam::BeamConfig;
use crate::checkpoint::MtModel;
use crate::model::{ModelConfig, Positions};
use crate::vocab::bpe::Bpe;
use crate::vocab::{FsmtVocab, Specials, Vocab};
use crate::{Error, Result};

const FILES: [&str; 3] = ["vocab-src.json", "vocab-tgt.json", "merges.txt"];

/// What `config.json` says, checked against what this loader implements.
#[derive(Debug, Clone)]
pub struct FsmtConfig {
    pub model: ModelConfig,
    pub src_vocab_size: usize,
    pub langs: [String; 2],
    pub beam: BeamConfig,
    pub max_positions: usize,
}

pub fn read_config(dir: &Path) -> Result<FsmtConfig> {
    let path = dir.join("config.json");
    let c = read_json(&path)?;
    if c.get("model_type").and_then(Value::as_str) != Some("fsmt") {
        return Err(artifact(&path, "model_type is not \"fsmt\""));
    }
    let int = |k: &str| c.get(k).and_then(Value::as_u64).map(|v| v as usize);
    let need = |k: &str| int(k).ok_or_else(|| artifact(&path, format!("no integer {k}")));
    let sh = shape(&path, &c, "relu")?;
    let langs: Vec<String> = c
        .get("langs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let [src_lang, tgt_lang] = <[String; 2]>::try_from(langs).map_err(|l| {
        artifact(
            &path,
            format!("langs must name two languages, source and target (has {l:?})"),
        )
    })?;
    let (sv, tv) = (need("src_vocab_size")?, need("tgt_vocab_size")?);
    // FSMTConfig's defaults.
    let pad = int("pad_token_id").unwrap_or(1) as u32;
    let eos = int("eos_token_id").unwrap_or(2) as u32;
    let specials = Specials {
        pad,
        bos: int("decoder_start_token_id").unwrap_or(eos as usize) as u32,
        eos,
        unk: 3,
    };
    for (name, id) in [("pad", pad), ("eos", eos), ("decoder_start", specials.bos)] {
        if id as usize >= tv.min(sv) {
            return Err(artifact(
                &path,
                format!("{name}_token_id {id} is outside the vocabulary"),
            ));
        }
    }
    let model = ModelConfig {
        vocab_size: tv,
        d_model: sh.d_model,
        heads: sh.heads,
        ff: sh.ff,
        encoder_layers: sh.encoder_layers,
        decoder_layers: sh.decoder_layers,
        dropout: 0.0,
        norm_first: false,
        activation: sh.activation,
        positions: Positions::Fairseq,
        layer_norm_eps: 1e-5,
        scale_embedding: c
            .get("scale_embedding")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        logits_bias: false,
        specials,
        src_vocab_size: Some(sv),
        output_projection: true,
        position_offset: pad as usize + 1,
    };
    model.validate().map_err(|m| artifact(&path, m))?;
    let beam = generation(
        dir,
        &c,
        eos,
        GenerationDefaults {
            num_beams: 5,
            max_length: 200,
            forced_eos: Some(2),
        },
    )?;
    Ok(FsmtConfig {
        model,
        src_vocab_size: sv,
        langs: [src_lang, tgt_lang],
        beam,
        max_positions: int("max_position_embeddings").unwrap_or(1024),
    })
}

fn read_map(path: &Path, size: usize) -> Result<HashMap<String, u32>> {
    let map: HashMap<String, u32> = serde_json::from_value(read_json(path)?)
        .map_err(|e| artifact(path, format!("not a token → id map: {e}")))?;
    if map.len() != size {
        return Err(artifact(
            path,
            format!(
                "{} entries, but config.json says {size}: vocabulary and model do not match",
                map.len()
            ),
        ));
    }
    Ok(map)
}

fn read_vocab(dir: &Path, cfg: &FsmtConfig, specials: &mut Specials) -> Result<FsmtVocab> {
    for f in FILES {
        if !dir.join(f).is_file() {
            return Err(artifact(
                dir,
                format!(
                    "FSMT checkpoint without {f} (FSMTTokenizer needs vocab-src.json, vocab-tgt.json and merges.txt)"
                ),
            ));
        }
    }
    let source = read_map(&dir.join(FILES[0]), cfg.src_vocab_size)?;
    let target = read_map(&dir.join(FILES[1]), cfg.model.vocab_size)?;
    if let Some(&unk) = source.get("<unk>") {
        specials.unk = unk;
    }
    // Special ids are looked up in the source map and used on target ids (FSMTTokenizer
    // does the same); they must mean the same in both.
    for (tok, id) in [
        ("<pad>", specials.pad),
        ("</s>", specials.eos),
        ("<unk>", specials.unk),
    ] {
        for (name, map) in [(FILES[0], &source), (FILES[1], &target)] {
            if let Some(&got) = map.get(tok)
                && got != id
            {
                return Err(artifact(
                    &dir.join(name),
                    format!("{tok} has id {got}, but the model uses {id}"),
                ));
            }
        }
    }
    let lower = {
        let p = dir.join("tokenizer_config.json");
        if p.is_file() {
            read_json(&p)?
                .get("do_lower_case")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        } else {
            false
        }
    };
    let bpe = Bpe::open(&dir.join("merges.txt"))?;
    FsmtVocab::new(
        dir,
        cfg.langs.clone(),
        lower,
        bpe,
        source,
        target,
        *specials,
    )
}

/// Reads the weights; returns the config as the file decides it (a source embedding or an
/// output projection equal to the target embedding is shared, not copied).
fn load_weights<B: Backend>(
    mut config: ModelConfig,
    path: &Path,
    dev: &B::Device,
) -> Result<(crate::model::Seq2Seq<B>, ModelConfig, String)> {
    let (mut w, sha) = Weights::open(path, &["model."], &[]).map_err(Error::from)?;
    let (d, tv) = (config.d_model, config.vocab_size);
    let sv = config.src_vocab_size.unwrap_or(tv);
    let target = w
        .take("decoder.embed_tokens.weight", &[tv, d])
        .map_err(Error::from)?;
    let same = |w: &Weights, name: &str| w.tensors.get(name).is_none_or(|(_, t)| *t == target);
    if sv == tv && same(&w, "encoder.embed_tokens.weight") {
        config.src_vocab_size = None;
        w.mark_used("encoder.embed_tokens.weight");
    }
    if same(&w, "decoder.output_projection.weight") {
        config.output_projection = false;
        w.mark_used("decoder.output_projection.weight");
    }
    let mut model = config.init::<B>(dev);
    model.embed.weight = Param::from_tensor(tensor2(target, [tv, d], dev));
    if config.src_vocab_size.is_some() {
        let t = w
            .take("encoder.embed_tokens.weight", &[sv, d])
            .map_err(Error::from)?;
        let mut e = EmbeddingConfig::new(sv, d).init(dev);
        e.weight = Param::from_tensor(tensor2(t, [sv, d], dev));
        model.src_embed = Some(e);
    }
    if config.output_projection {
        let t = w
            .take("decoder.output_projection.weight", &[tv, d])
            .map_err(Error::from)?;
        model.out_proj = Some(Param::from_tensor(tensor2(t, [tv, d], dev)));
    }
    check_sinusoids::<B>(
        &mut w,
        path,
        d,
        Positions::Fairseq,
        config.position_offset,
        dev,
    )?;
    load_layers(&mut w, &mut model, &config, dev)?;
    finish(w, path, "FSMT")?;
    Ok((model, config, sha))
}

/// Loads an FSMT checkpoint directory.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<MtModel<B>> {
    let cfg = read_config(dir)?;
    let weights = ragl_model::weights::weights_file(dir).ok_or_else(|| no_weights(dir))?;
    let mut specials = cfg.model.specials;
    let vocab = read_vocab(dir, &cfg, &mut specials)?;
    let mut config = cfg.model.clone();
    config.specials = specials;
    let (model, config, weights_sha) = load_weights::<B>(config, &weights, device)?;
    let fingerprint = fingerprint(&weights_sha, dir, &FILES)?;
    Ok(MtModel {
        config,
        vocab: Vocab::Fsmt(Arc::new(vocab)),
        model,
        fingerprint,
        dir: dir.to_path_buf(),
        generation: cfg.beam,
        max_positions: Some(cfg.max_positions),
    })
}
