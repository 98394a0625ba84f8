//! Model directories: `model.json` (architecture), `tokenizer.json` (the joint vocabulary),
//! `model.mpk` (burn's named MessagePack record, full precision) and `manifest.json`, whose
//! fingerprint is what datastores record so that one built by another model is refused.
//! Training checkpoints are model directories with `optim.mpk` and `state.json` added.
//! Directories are written under a temporary name and renamed when complete.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use sha2::{Digest, Sha256};

use crate::model::{ModelConfig, Seq2Seq};
use crate::vocab::Vocab;
use crate::{Error, Result};

pub const KIND: &str = "mt-model";
pub const FORMAT_VERSION: u32 = 1;
pub const WEIGHTS: &str = "model.mpk";

pub type Recorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// A loaded model with its vocabulary.
pub struct MtModel<B: Backend> {
    pub config: ModelConfig,
    pub vocab: Vocab,
    pub model: Seq2Seq<B>,
    pub fingerprint: String,
    pub dir: PathBuf,
    /// The model's own decoding defaults (a Marian checkpoint's generation config).
    pub generation: crate::beam::BeamConfig,
    /// The longest input the model was trained for, where it says (Marian).
    pub max_positions: Option<usize>,
}

/// The fingerprint of a model directory: weights and vocabulary together.
pub fn fingerprint(dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for f in [WEIGHTS, "tokenizer.json"] {
        h.update(ragl_core::manifest::sha256_file(&dir.join(f))?);
    }
    Ok(hex::encode(&h.finalize()[..16]))
}

/// A `run/last` pointer file (a line naming the checkpoint directory) or a model directory.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let last = path.join("last");
    if last.is_file() {
        let name = std::fs::read_to_string(&last).map_err(|e| ragl_core::Error::io(&last, e))?;
        return Ok(path.join("checkpoints").join(name.trim()));
    }
    Ok(path.to_path_buf())
}

/// Writes `model` into `dir` (a fresh staging directory the caller publishes).
pub fn write<B: Backend>(
    model: &Seq2Seq<B>,
    config: &ModelConfig,
    vocab: &Vocab,
    dir: &Path,
) -> Result<String> {
    std::fs::create_dir_all(dir).map_err(|e| ragl_core::Error::io(dir, e))?;
    let json = serde_json::to_vec_pretty(config).expect("config serialises");
    ragl_core::atomic::write_bytes_atomic(&dir.join("model.json"), &json)?;
    vocab.save(&dir.join("tokenizer.json"))?;
    model
        .clone()
        .save_file(dir.join("model"), &Recorder::new())
        .map_err(|e| Error::Record {
            path: dir.join("model.mpk"),
            message: e.to_string(),
        })?;
    let fp = fingerprint(dir)?;
    let mut m = ragl_core::manifest::Manifest::new(KIND, FORMAT_VERSION);
    m.config = serde_json::to_value(config).expect("config serialises");
    m.model_fingerprint = Some(fp.clone());
    m.counts
        .insert("parameters".into(), model.num_params() as u64);
    m.counts.insert("vocab_size".into(), vocab.size() as u64);
    for f in ["model.json", "tokenizer.json", WEIGHTS] {
        m.add_file(dir, f)?;
    }
    m.write(dir)?;
    Ok(fp)
}

/// Loads a translation model: a ragl model or run directory, a Hugging Face Marian or
/// FSMT checkpoint directory, or a model id found in the local Hugging Face cache.
pub fn load<B: Backend>(path: &Path, device: &B::Device) -> Result<MtModel<B>> {
    let path = &ragl_model::hub::resolve(path)?;
    let dir = resolve(path)?;
    if !dir.join(ragl_core::manifest::MANIFEST_FILE).is_file() {
        // Not a ragl model: a Hugging Face checkpoint, or nothing ragl can load.
        return crate::hf::load(&dir, device);
    }
    let m = ragl_core::manifest::Manifest::open_checked(&dir, KIND, FORMAT_VERSION, None)?;
    m.verify_files(&dir)?;
    let config: ModelConfig =
        serde_json::from_value(m.config.clone()).map_err(|e| Error::Artifact {
            path: dir.clone(),
            message: format!("model config: {e}"),
        })?;
    let vocab = Vocab::load(&dir.join("tokenizer.json"))?;
    let model = config
        .init::<B>(device)
        .load_file(dir.join("model"), &Recorder::new(), device)
        .map_err(|e| Error::Artifact {
            path: dir.join(WEIGHTS),
            message: e.to_string(),
        })?;
    Ok(MtModel {
        config,
        vocab,
        fingerprint: m.model_fingerprint.unwrap_or_default(),
        model,
        dir,
        generation: crate::beam::BeamConfig::default(),
        max_positions: None,
    })
}

/// The element-wise mean of the weights of `models` (fairseq's
/// `average_checkpoints.py`): often worth a BLEU point over the last checkpoint alone.
pub fn average<B: Backend>(models: Vec<Seq2Seq<B>>) -> Seq2Seq<B> {
    struct Collect<B: Backend>(Vec<Tensor<B, 1>>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Collect<B> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.0.push(p.val().flatten(0, D - 1));
        }
    }
    struct Replace<B: Backend> {
        sums: Vec<Tensor<B, 1>>,
        n: f64,
        i: usize,
    }
    impl<B: Backend> ModuleMapper<B> for Replace<B> {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let shape = p.shape();
            let mean = self.sums[self.i].clone() / self.n;
            self.i += 1;
            p.map(|_| mean.reshape(shape))
        }
    }
    let n = models.len() as f64;
    let mut sums: Option<Vec<Tensor<B, 1>>> = None;
    for m in &models {
        let mut c = Collect(Vec::new());
        m.visit(&mut c);
        sums = Some(match sums {
            None => c.0,
            Some(s) => s.into_iter().zip(c.0).map(|(a, b)| a + b).collect(),
        });
    }
    let first = models.into_iter().next().expect("at least one model");
    first.map(&mut Replace {
        sums: sums.unwrap_or_default(),
        n,
        i: 0,
    })
}
