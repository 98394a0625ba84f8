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

/// Writes `t` as `torch.save` does (PyTorch ≥ 1.6): a zip of stored entries holding
/// `archive/data.pkl` (an `OrderedDict` of `_rebuild_tensor_v2` calls, pickle protocol 2)
/// and one `archive/data/{i}` storage per tensor, f32 little-endian, each on 64 bytes. `global` replaces the
/// state dict's class (`collections\nOrderedDict`), so that a test can plant another.
pub fn write_torch_bin(path: &Path, t: &Tensors, global: &str) {
    let mut pkl: Vec<u8> = b"\x80\x02".to_vec();
    let s = |p: &mut Vec<u8>, x: &str| {
        p.push(b'X');
        p.extend((x.len() as u32).to_le_bytes());
        p.extend(x.as_bytes());
    };
    let int = |p: &mut Vec<u8>, v: usize| {
        p.push(b'J');
        p.extend((v as i32).to_le_bytes());
    };
    pkl.extend(format!("c{global}\n)R(").as_bytes());
    for (i, (name, (shape, _))) in t.iter().enumerate() {
        s(&mut pkl, name);
        pkl.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        s(&mut pkl, "storage");
        pkl.extend(b"ctorch\nFloatStorage\n");
        s(&mut pkl, &i.to_string());
        s(&mut pkl, "cpu");
        int(&mut pkl, shape.iter().product());
        pkl.extend(b"tQ");
        int(&mut pkl, 0);
        pkl.push(b'(');
        for &d in shape {
            int(&mut pkl, d);
        }
        pkl.extend(b"t(");
        let mut stride = 1;
        let mut strides = vec![0; shape.len()];
        for (k, &d) in shape.iter().enumerate().rev() {
            strides[k] = stride;
            stride *= d;
        }
        for st in strides {
            int(&mut pkl, st);
        }
        pkl.extend(b"t\x89ccollections\nOrderedDict\n)RtR");
    }
    // torch.save pickles the dict's `_metadata` as instance state: a BUILD over it.
    pkl.extend(b"u}b.");
    let mut entries: Vec<(String, Vec<u8>)> = vec![("archive/data.pkl".into(), pkl)];
    for (i, (_, (_, d))) in t.iter().enumerate() {
        entries.push((
            format!("archive/data/{i}"),
            d.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
    }
    entries.push(("archive/version".into(), b"3\n".to_vec()));
    let mut zip = Vec::new();
    let mut central = Vec::new();
    for (name, data) in &entries {
        let offset = zip.len() as u32;
        // torch.save pads the local header's extra field ("FB") so that data starts on
        // 64 bytes, which lets a reader map tensors in place.
        let bare = zip.len() + 30 + name.len() + 4;
        let extra: Vec<u8> = {
            let pad = (64 - bare % 64) % 64;
            let mut e = b"FB".to_vec();
            e.extend((pad as u16).to_le_bytes());
            e.extend(vec![b'Z'; pad]);
            e
        };
        let head = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend(20u16.to_le_bytes()); // made by
            }
            h.extend(20u16.to_le_bytes()); // version needed
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(0u16.to_le_bytes()); // stored
            h.extend([0u8; 4]); // time, date
            h.extend(0u32.to_le_bytes()); // crc (not checked by ragl)
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            let extra: &[u8] = if central { &[] } else { &extra };
            h.extend((extra.len() as u16).to_le_bytes());
            if central {
                h.extend([0u8; 6]); // comment, disk, internal attributes
                h.extend(0u32.to_le_bytes()); // external attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h.extend(extra);
            h
        };
        zip.extend(head(b"PK\x03\x04", false));
        zip.extend(data);
        central.extend(head(b"PK\x01\x02", true));
    }
    let cd = zip.len() as u32;
    zip.extend(&central);
    zip.extend(b"PK\x05\x06");
    zip.extend([0u8; 4]);
    zip.extend((entries.len() as u16).to_le_bytes());
    zip.extend((entries.len() as u16).to_le_bytes());
    zip.extend((central.len() as u32).to_le_bytes());
    zip.extend(cd.to_le_bytes());
    zip.extend(0u16.to_le_bytes());
    std::fs::write(path, zip).expect("write pytorch_model.bin");
}

/// Writes `items` as `numpy.save` writes a 1-D object array of `bytes` (REALM's
/// `block_records.npy`): the `.npy` header, then the array's pickle (protocol 2).
pub fn write_bytes_npy(path: &Path, items: &[&[u8]]) {
    let header = format!(
        "{{'descr': '|O', 'fortran_order': False, 'shape': ({},), }}",
        items.len()
    );
    let mut h = header.into_bytes();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h);
    out.extend(
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R",
    );
    out.extend(b"(K\x01");
    out.extend(b"J");
    out.extend((items.len() as i32).to_le_bytes());
    out.extend(b"\x85cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R");
    out.extend(b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89](");
    for it in items {
        out.push(b'B');
        out.extend((it.len() as u32).to_le_bytes());
        out.extend(*it);
    }
    out.extend(b"etb.");
    std::fs::write(path, out).expect("write .npy");
}
