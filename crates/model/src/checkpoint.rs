//! Hugging Face checkpoints in and out: `config.json` + `model.safetensors`
//! (+ `tokenizer.json`). Loading and saving name tensors through the tables in [`crate::bert`]
//! (`EMBEDDING_HF_NAMES`, `LAYER_HF_NAMES`),
//! accepts the `bert.` prefix or none, `LayerNorm.weight/bias` or the old TF
//! `LayerNorm.gamma/beta`, f32/f16/bf16 storage, and a tied MLM decoder. Every missing
//! tensor is reported by name at once; a shape mismatch is an error naming the tensor;
//! tensors the model does not use are listed in the [`LoadReport`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};

use crate::bert::{
    Bert, BertConfig, BertEmbeddings, BertLayer, EMBEDDING_HF_NAMES as EMB,
    LAYER_HF_NAMES as LAYER, MlmHead, layer_norm,
};
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
        message: e.to_string(),
    })?;
    config.validate().map_err(|message| Error::Config {
        path,
        line: 0,
        message,
    })?;
    Ok(config)
}

/// Tensors of a safetensors file as f32, keyed by name without the `bert.` prefix.
struct Weights {
    path: PathBuf,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    used: BTreeSet<String>,
    missing: Vec<String>,
}

fn to_f32(path: &Path, name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    let chunks = |n: usize| bytes.chunks_exact(n);
    Ok(match dtype {
        Dtype::F32 => chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => chunks(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => chunks(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        other => {
            return Err(Error::Weights {
                path: path.to_path_buf(),
                message: format!("tensor {name} has dtype {other:?}, expected a float type"),
            });
        }
    })
}

impl Weights {
    fn open(path: &Path) -> Result<(Self, String)> {
        let bytes = std::fs::read(path).map_err(|e| ragl_core::Error::io(path, e))?;
        let fingerprint = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::Weights {
            path: path.to_path_buf(),
            message: format!("not a safetensors file: {e}"),
        })?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let key = name.strip_prefix("bert.").unwrap_or(&name).to_owned();
            if key == "embeddings.position_ids" {
                continue; // an index buffer, not a weight
            }
            let data = to_f32(path, &name, view.dtype(), view.data())?;
            tensors.insert(key, (view.shape().to_vec(), data));
        }
        Ok((
            Weights {
                path: path.to_path_buf(),
                tensors,
                used: BTreeSet::new(),
                missing: Vec::new(),
            },
            fingerprint,
        ))
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        self.tensors.keys().any(|k| k.starts_with(prefix))
    }

    /// Takes `name` with the expected shape; a missing tensor is recorded (all are reported
    /// together) and replaced by zeros so loading can go on to find the others.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        match self.tensors.get(name) {
            Some((s, data)) => {
                if s != shape {
                    return Err(Error::Shape {
                        path: self.path.clone(),
                        name: name.to_owned(),
                        expected: shape.to_vec(),
                        got: s.clone(),
                    });
                }
                self.used.insert(name.to_owned());
                Ok(data.clone())
            }
            None => {
                self.missing.push(name.to_owned());
                Ok(vec![0.0; shape.iter().product()])
            }
        }
    }

    /// LayerNorm parameters under `.weight/.bias` or the old `.gamma/.beta`.
    fn take_norm_param(
        &mut self,
        prefix: &str,
        new: &str,
        old: &str,
        d: usize,
    ) -> Result<Vec<f32>> {
        let old_name = format!("{prefix}.{old}");
        if self.tensors.contains_key(&old_name) {
            self.take(&old_name, &[d])
        } else {
            self.take(&format!("{prefix}.{new}"), &[d])
        }
    }
}

fn tensor1<B: Backend>(v: Vec<f32>, device: &B::Device) -> Tensor<B, 1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

fn tensor2<B: Backend>(v: Vec<f32>, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

fn linear<B: Backend>(
    w: &mut Weights,
    name: &str,
    d_in: usize,
    d_out: usize,
    device: &B::Device,
) -> Result<Linear<B>> {
    let weight = w.take(&format!("{name}.weight"), &[d_out, d_in])?;
    let bias = w.take(&format!("{name}.bias"), &[d_out])?;
    Ok(Linear {
        weight: Param::from_tensor(tensor2(
            transpose(&weight, d_out, d_in),
            [d_in, d_out],
            device,
        )),
        bias: Some(Param::from_tensor(tensor1(bias, device))),
    })
}

fn norm<B: Backend>(
    w: &mut Weights,
    name: &str,
    d: usize,
    eps: f64,
    device: &B::Device,
) -> Result<LayerNorm<B>> {
    let gamma = w.take_norm_param(name, "weight", "gamma", d)?;
    let beta = w.take_norm_param(name, "bias", "beta", d)?;
    let mut ln = layer_norm::<B>(d, eps, device);
    ln.gamma = Param::from_tensor(tensor1(gamma, device));
    ln.beta = Some(Param::from_tensor(tensor1(beta, device)));
    Ok(ln)
}

fn embedding<B: Backend>(
    w: &mut Weights,
    name: &str,
    n: usize,
    d: usize,
    device: &B::Device,
) -> Result<Embedding<B>> {
    let weight = w.take(&format!("{name}.weight"), &[n, d])?;
    Ok(Embedding {
        weight: Param::from_tensor(tensor2(weight, [n, d], device)),
    })
}

/// Loads a BERT checkpoint directory (`config.json` + `model.safetensors`).
/// The fingerprint [`load`] would report for `dir` (SHA-256 of its weights file), without
/// loading the model.
pub fn fingerprint(dir: &Path) -> Result<String> {
    let path = dir.join(WEIGHTS_FILE);
    if !path.is_file() {
        return Err(Error::MissingFile {
            dir: dir.to_path_buf(),
            file: WEIGHTS_FILE,
        });
    }
    Ok(ragl_core::manifest::sha256_file(&path)?)
}

pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<Checkpoint<B>> {
    let config = read_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    if !path.is_file() {
        let file = if dir.join("pytorch_model.bin").is_file() {
            "model.safetensors (pytorch_model.bin is not read: re-save it with transformers' save_pretrained(..., safe_serialization=True))"
        } else {
            WEIGHTS_FILE
        };
        return Err(Error::MissingFile {
            dir: dir.to_path_buf(),
            file,
        });
    }
    let (mut w, fingerprint) = Weights::open(&path)?;
    let c = &config;
    let (d, ff, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
    let embeddings = BertEmbeddings {
        word_embeddings: embedding(&mut w, EMB[0], c.vocab_size, d, device)?,
        position_embeddings: embedding(&mut w, EMB[1], c.max_position_embeddings, d, device)?,
        token_type_embeddings: embedding(&mut w, EMB[2], c.type_vocab_size, d, device)?,
        layer_norm: norm(&mut w, EMB[3], d, eps, device)?,
    };
    let mut layers = Vec::with_capacity(c.num_hidden_layers);
    for i in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        layers.push(BertLayer {
            query: linear(&mut w, &format!("{p}.{}", LAYER[0]), d, d, device)?,
            key: linear(&mut w, &format!("{p}.{}", LAYER[1]), d, d, device)?,
            value: linear(&mut w, &format!("{p}.{}", LAYER[2]), d, d, device)?,
            attention_output: linear(&mut w, &format!("{p}.{}", LAYER[3]), d, d, device)?,
            attention_norm: norm(&mut w, &format!("{p}.{}", LAYER[4]), d, eps, device)?,
            intermediate: linear(&mut w, &format!("{p}.{}", LAYER[5]), d, ff, device)?,
            output: linear(&mut w, &format!("{p}.{}", LAYER[6]), ff, d, device)?,
            output_norm: norm(&mut w, &format!("{p}.{}", LAYER[7]), d, eps, device)?,
            n_heads: c.num_attention_heads,
            eps,
        });
    }
    let pooler = if w.has_prefix("pooler.") {
        Some(linear(&mut w, "pooler.dense", d, d, device)?)
    } else {
        None
    };
    let mlm = if w.has_prefix("cls.predictions.") {
        let dense = linear(&mut w, "cls.predictions.transform.dense", d, d, device)?;
        let ln = norm(
            &mut w,
            "cls.predictions.transform.LayerNorm",
            d,
            eps,
            device,
        )?;
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
        })
    } else {
        None
    };
    if !w.missing.is_empty() {
        return Err(Error::MissingTensors {
            path,
            names: w.missing,
        });
    }
    let unused = w
        .tensors
        .keys()
        .filter(|k| !w.used.contains(*k))
        .cloned()
        .collect();
    Ok(Checkpoint {
        config,
        bert: Bert {
            embeddings,
            layers,
            pooler,
        },
        mlm,
        report: LoadReport {
            unused,
            fingerprint,
        },
    })
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
    let bytes_of = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let owned: Vec<(String, Vec<usize>, Vec<u8>)> = out
        .into_iter()
        .map(|(k, (s, v))| (k, s, bytes_of(&v)))
        .collect();
    let views = owned
        .iter()
        .map(|(k, s, b)| {
            Ok((
                k.clone(),
                safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)?,
            ))
        })
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| Error::Weights {
            path: dir.join(WEIGHTS_FILE),
            message: e.to_string(),
        })?;
    let meta = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| Error::Weights {
        path: dir.join(WEIGHTS_FILE),
        message: e.to_string(),
    })?;
    ragl_core::atomic::write_bytes_atomic(&dir.join(WEIGHTS_FILE), &bytes)?;
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
