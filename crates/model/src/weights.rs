//! Safetensors weights (or a `pytorch_model.bin`, read by [`crate::torch`]) as f32 host arrays, taken by name into burn modules: the loading
//! plumbing every Hugging Face architecture shares (BERT in [`crate::checkpoint`], Marian in
//! `ragl_mt::marian`). A missing tensor is recorded and loading goes on, so that all missing
//! names are reported together ([`Weights::finish`]); a shape mismatch is an error at once;
//! tensors no module took are listed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};

use crate::bert::layer_norm;
use crate::{Error, Result};

/// Tensors of a safetensors file as f32, keyed by name with an architecture's optional
/// prefix (`bert.`, `model.`) removed.
pub struct Weights {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    pub used: BTreeSet<String>,
    pub missing: Vec<String>,
}

pub fn to_f32(path: &Path, name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
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

/// A checkpoint directory's weights file: `model.safetensors`, else `pytorch_model.bin`
/// (read without running its pickle, [`crate::torch`]).
pub fn weights_file(dir: &Path) -> Option<PathBuf> {
    ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

impl Weights {
    /// Reads `path`; names lose the first of `strip` they start with; `skip` names buffers
    /// that are not weights. Returns the weights and the file's SHA-256.
    pub fn open(path: &Path, strip: &[&str], skip: &[&str]) -> Result<(Self, String)> {
        let key = |name: &str| {
            strip
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .unwrap_or(name)
                .to_owned()
        };
        let mut tensors = BTreeMap::new();
        let mut head = [0u8; 4];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(|e| ragl_core::Error::io(path, e))?;
            // A file shorter than 4 bytes is neither format; the safetensors reader says so.
            let _ = f.read_exact(&mut head);
        }
        if crate::torch::is_zip(&head) {
            // Memory-mapped and hashed as a stream: a REALM open-QA file is 7 GB, most of
            // it block embeddings the caller skips.
            let fingerprint = ragl_core::manifest::sha256_file(path)?;
            let t = crate::torch::TorchFile::open(path)?;
            for (name, r) in &t.tensors {
                let k = key(name);
                if skip.contains(&k.as_str()) {
                    continue;
                }
                tensors.insert(k, (r.shape.clone(), t.to_f32(name, r)?));
            }
            return Ok((
                Weights {
                    path: path.to_path_buf(),
                    tensors,
                    used: BTreeSet::new(),
                    missing: Vec::new(),
                },
                fingerprint,
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| ragl_core::Error::io(path, e))?;
        let fingerprint = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::Weights {
            path: path.to_path_buf(),
            message: format!("not a safetensors file: {e}"),
        })?;
        for (name, view) in st.tensors() {
            let k = key(&name);
            if skip.contains(&k.as_str()) {
                continue;
            }
            let data = to_f32(path, &name, view.dtype(), view.data())?;
            tensors.insert(k, (view.shape().to_vec(), data));
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

    /// Moves the tensors named `prefix…` into weights of their own, named without it (one
    /// file holding several models: REALM's open-QA checkpoint has an `embedder.` and a
    /// `reader.`).
    pub fn split(&mut self, prefix: &str) -> Weights {
        let names: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        let mut tensors = BTreeMap::new();
        for n in names {
            let t = self.tensors.remove(&n).expect("listed");
            tensors.insert(n[prefix.len()..].to_string(), t);
        }
        Weights {
            path: self.path.clone(),
            tensors,
            used: BTreeSet::new(),
            missing: Vec::new(),
        }
    }

    /// Renames `prefix…` tensors to drop the prefix (`realm.embeddings…` → `embeddings…`).
    pub fn strip(&mut self, prefix: &str) {
        let moved = self.split(prefix);
        self.tensors.extend(moved.tensors);
    }

    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.tensors.keys().any(|k| k.starts_with(prefix))
    }

    /// Takes `name` with the expected shape; a missing tensor is recorded (all are reported
    /// together) and replaced by zeros so loading can go on to find the others.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
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
    pub fn take_norm_param(
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

pub fn tensor1<B: Backend>(v: Vec<f32>, device: &B::Device) -> Tensor<B, 1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

pub fn tensor2<B: Backend>(v: Vec<f32>, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
pub fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

pub fn linear<B: Backend>(
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

pub fn norm<B: Backend>(
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

pub fn embedding<B: Backend>(
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

impl Weights {
    /// Ends loading: an error naming every missing tensor, else the names no module took.
    pub fn finish(self) -> Result<Vec<String>> {
        if !self.missing.is_empty() {
            return Err(Error::MissingTensors {
                path: self.path,
                names: self.missing,
            });
        }
        Ok(self
            .tensors
            .keys()
            .filter(|k| !self.used.contains(*k))
            .cloned()
            .collect())
    }

    /// Marks `name` as read without building a module from it (tied copies, buffers).
    pub fn mark_used(&mut self, name: &str) {
        if self.tensors.contains_key(name) {
            self.used.insert(name.to_owned());
        }
    }
}

/// Writes named f32 tensors as a `model.safetensors` file (metadata `format: pt`, as
/// transformers writes it), atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
) -> Result<()> {
    let owned: Vec<(&String, &Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, (s, v))| (k, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let bad = |e: safetensors::SafeTensorError| Error::Weights {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let views = owned
        .iter()
        .map(|(k, s, b)| {
            Ok((
                (*k).clone(),
                safetensors::tensor::TensorView::new(Dtype::F32, s.to_vec(), b)?,
            ))
        })
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(bad)?;
    let meta = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let bytes = safetensors::serialize(views, Some(meta)).map_err(bad)?;
    ragl_core::atomic::write_bytes_atomic(path, &bytes)?;
    Ok(())
}
