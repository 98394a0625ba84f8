//! Hugging Face seq2seq checkpoints written by hand (random weights, transformers' names):
//! the BART-family layers Marian and FSMT share, and the safetensors file they go in.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::TensorView;

/// Named `f32` tensors: name → (shape, values).
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// A small deterministic generator of weights in ±0.2.
pub struct Rng(pub u64);

impl Rng {
    pub fn weight(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.weight()).collect()
    }
}

/// Every encoder and decoder layer tensor (`model.{encoder,decoder}.layers.{i}.…`): self-
/// and cross-attention projections, their LayerNorms, `fc1`/`fc2`, `final_layer_norm`.
pub fn bart_layers(t: &mut Tensors, rng: &mut Rng, d: usize, ff: usize, layers: usize) {
    let mut lin = |t: &mut Tensors, name: String, i: usize, o: usize| {
        t.insert(format!("{name}.weight"), (vec![o, i], rng.vec(o * i)));
        t.insert(format!("{name}.bias"), (vec![o], rng.vec(o)));
    };
    let norm = |t: &mut Tensors, name: String, k: usize| {
        let g: Vec<f32> = (0..d).map(|j| 1.0 + 0.01 * (j + k) as f32).collect();
        let b: Vec<f32> = (0..d).map(|j| 0.02 * j as f32 - 0.1).collect();
        t.insert(format!("{name}.weight"), (vec![d], g));
        t.insert(format!("{name}.bias"), (vec![d], b));
    };
    for side in ["encoder", "decoder"] {
        for l in 0..layers {
            let p = format!("model.{side}.layers.{l}");
            let attns: &[&str] = if side == "encoder" {
                &["self_attn"]
            } else {
                &["self_attn", "encoder_attn"]
            };
            for a in attns {
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    lin(t, format!("{p}.{a}.{proj}"), d, d);
                }
                norm(t, format!("{p}.{a}_layer_norm"), l);
            }
            lin(t, format!("{p}.fc1"), d, ff);
            lin(t, format!("{p}.fc2"), ff, d);
            norm(t, format!("{p}.final_layer_norm"), l + 3);
        }
    }
}

/// Writes `t` as an `f32` safetensors file.
pub fn write_safetensors(path: &Path, t: &Tensors) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = t
        .iter()
        .map(|(k, (s, d))| {
            (
                k.clone(),
                s.clone(),
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                TensorView::new(safetensors::Dtype::F32, s.clone(), b).expect("tensor"),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).expect("write safetensors");
}

/// A tensor of a safetensors file as `f32`s.
pub fn read_tensor(path: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("read safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    st.tensor(name)
        .expect("tensor")
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}
