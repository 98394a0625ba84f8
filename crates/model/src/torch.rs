//! `pytorch_model.bin` (the zip format of `torch.save`, PyTorch ≥ 1.6) read without Python
//! and without running its pickle: `data.pkl` goes through [`ragl_core::pickle`] with an
//! allow-list of exactly what a state dict is made of (`OrderedDict`, `_rebuild_tensor_v2`,
//! `_rebuild_parameter`, the typed storages), the rule of `torch.load(weights_only=True)`;
//! the tensors' bytes are read from the archive's `data/{key}` entries through a memory map.
//! A file of another kind, or a pickle that asks for anything else, is refused by name.
//!
//! The zip reader is the small part of the format torch writes: stored (uncompressed)
//! entries, found through the central directory, ZIP64 included (REALM's open-QA
//! checkpoints are 7 GB).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ragl_core::pickle::{self, Pickle, Value};

use crate::{Error, Result};

const ALLOWED: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "DoubleStorage"),
    ("torch", "LongStorage"),
    ("torch", "IntStorage"),
    ("torch", "ShortStorage"),
    ("torch", "CharStorage"),
    ("torch", "ByteStorage"),
    ("torch", "BoolStorage"),
];

/// An element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    fn of_storage(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "DoubleStorage" => DType::F64,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
    }
}

/// One tensor of the state dict: where its storage lies in the file, and its view of it.
#[derive(Debug, Clone)]
pub struct TensorRef {
    pub dtype: DType,
    pub shape: Vec<usize>,
    strides: Vec<usize>,
    /// The storage's bytes in the file.
    storage: Range<usize>,
    /// The view's first element, in elements.
    offset: usize,
}

impl TensorRef {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the view is the row-major run of its storage from `offset`.
    fn contiguous(&self) -> bool {
        let mut want = 1;
        for (d, s) in self.shape.iter().zip(&self.strides).rev() {
            if *d != 1 && *s != want {
                return false;
            }
            want *= d;
        }
        true
    }
}

/// A memory-mapped `pytorch_model.bin`.
pub struct TorchFile {
    pub path: PathBuf,
    map: memmap2::Mmap,
    /// The state dict's tensors, in file order.
    pub tensors: Vec<(String, TensorRef)>,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Weights {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Whether `bytes` start like a zip archive (a `torch.save` file) rather than safetensors.
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

fn u16le(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 2)
        .map(|s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32le(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 4)
        .map(|s| u64::from(u32::from_le_bytes(s.try_into().expect("4 bytes"))))
}

fn u64le(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

/// The stored entries of a zip archive: name → byte range of the data.
fn zip_entries(b: &[u8]) -> std::result::Result<BTreeMap<String, Range<usize>>, String> {
    let eocd = (0..b.len().saturating_sub(21))
        .rev()
        .take(65_557)
        .find(|&i| b[i..].starts_with(b"PK\x05\x06"))
        .ok_or("no end of central directory")?;
    let short = |v: Option<u64>| v.ok_or("truncated end of central directory");
    let (mut count, mut cd) = (short(u16le(b, eocd + 10))?, short(u32le(b, eocd + 16))?);
    if (count == 0xffff || cd == 0xffff_ffff)
        && eocd >= 20
        && b[eocd - 20..].starts_with(b"PK\x06\x07")
    {
        let z = short(u64le(b, eocd - 12))? as usize;
        if !b.get(z..).is_some_and(|s| s.starts_with(b"PK\x06\x06")) {
            return Err("a ZIP64 locator without its record".into());
        }
        count = short(u64le(b, z + 32))?;
        cd = short(u64le(b, z + 48))?;
    }
    let mut out = BTreeMap::new();
    let mut at = cd as usize;
    for _ in 0..count {
        if !b.get(at..).is_some_and(|s| s.starts_with(b"PK\x01\x02")) {
            return Err("a broken central directory".into());
        }
        let f = |o: usize, w: usize| -> std::result::Result<u64, String> {
            match w {
                2 => u16le(b, at + o),
                _ => u32le(b, at + o),
            }
            .ok_or_else(|| "a truncated central directory".to_string())
        };
        let method = f(10, 2)?;
        let (mut size, mut local) = (f(20, 4)?, f(42, 4)?);
        let (name_len, extra_len, comment_len) = (f(28, 2)?, f(30, 2)?, f(32, 2)?);
        let name_at = at + 46;
        let name = b
            .get(name_at..name_at + name_len as usize)
            .ok_or("a truncated entry name")?;
        let name = String::from_utf8_lossy(name).into_owned();
        // ZIP64 extra field: the 64-bit values of the fields that read 0xffffffff, in order
        // (uncompressed size, compressed size, local header offset).
        let mut e = name_at + name_len as usize;
        let end = e + extra_len as usize;
        while e + 4 <= end {
            let (id, len) = (
                u16le(b, e).unwrap_or(0),
                u16le(b, e + 2).unwrap_or(0) as usize,
            );
            if id == 1 {
                let mut p = e + 4;
                let uncompressed = f(24, 4)?;
                if uncompressed == 0xffff_ffff {
                    p += 8;
                }
                if size == 0xffff_ffff {
                    size = u64le(b, p).ok_or("a truncated ZIP64 field")?;
                    p += 8;
                }
                if local == 0xffff_ffff {
                    local = u64le(b, p).ok_or("a truncated ZIP64 field")?;
                }
            }
            e += 4 + len;
        }
        if method != 0 {
            return Err(format!(
                "entry {name} is compressed (torch.save stores entries)"
            ));
        }
        let l = local as usize;
        if !b.get(l..).is_some_and(|s| s.starts_with(b"PK\x03\x04")) {
            return Err(format!("entry {name}: no local header"));
        }
        let data = l
            + 30
            + u16le(b, l + 26).unwrap_or(0) as usize
            + u16le(b, l + 28).unwrap_or(0) as usize;
        let range = data..data.saturating_add(size as usize);
        if range.end > b.len() {
            return Err(format!("entry {name} runs past the end of the file"));
        }
        out.insert(name, range);
        at = end + comment_len as usize;
    }
    Ok(out)
}

/// Reads a `_rebuild_tensor_v2` call (or a parameter wrapping one).
fn tensor(
    p: &Pickle,
    id: usize,
    storage: &dyn Fn(&str) -> Option<Range<usize>>,
) -> std::result::Result<TensorRef, String> {
    let Value::Call(f, args) = p.get(id) else {
        return Err("not a tensor".into());
    };
    let a = p.items(*args).ok_or("a call without arguments")?;
    if p.is_global(*f, "torch._utils", "_rebuild_parameter") {
        return tensor(p, *a.first().ok_or("an empty parameter")?, storage);
    }
    if !p.is_global(*f, "torch._utils", "_rebuild_tensor_v2") || a.len() < 4 {
        return Err("not a tensor".into());
    }
    let Value::Persistent(pid) = p.get(a[0]) else {
        return Err("a tensor without a storage".into());
    };
    // ('storage', torch.XStorage, key, location, numel)
    let s = p.items(*pid).ok_or("a storage id that is not a tuple")?;
    if s.len() < 5 || p.str(s[0]) != Some("storage") {
        return Err("a persistent id that is not a storage".into());
    }
    let dtype = match p.get(s[1]) {
        Value::Global(m, n) if m == "torch" => DType::of_storage(n),
        _ => None,
    }
    .ok_or("an unknown storage type")?;
    let key = p.str(s[2]).ok_or("a storage key that is not a string")?;
    let numel = p.int(s[4]).ok_or("a storage size that is not an int")? as usize;
    let bytes = storage(key).ok_or_else(|| format!("storage {key} is not in the archive"))?;
    if bytes.len() < numel * dtype.size() {
        return Err(format!(
            "storage {key} is shorter than its {numel} elements"
        ));
    }
    let ints = |id: usize| -> std::result::Result<Vec<usize>, String> {
        p.items(id)
            .ok_or("a shape that is not a tuple")?
            .iter()
            .map(|&i| {
                p.int(i)
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or_else(|| "a negative or non-integer size".to_string())
            })
            .collect()
    };
    let t = TensorRef {
        dtype,
        shape: ints(a[2])?,
        strides: ints(a[3])?,
        storage: bytes.start..bytes.start + numel * dtype.size(),
        offset: p
            .int(a[1])
            .and_then(|v| usize::try_from(v).ok())
            .ok_or("a bad offset")?,
    };
    if t.shape.len() != t.strides.len() {
        return Err("shape and strides differ in rank".into());
    }
    let last = t.offset
        + t.shape
            .iter()
            .zip(&t.strides)
            .map(|(d, s)| d.saturating_sub(1) * s)
            .sum::<usize>();
    if t.numel() > 0 && last >= numel {
        return Err("a view past the end of its storage".into());
    }
    Ok(t)
}

impl TorchFile {
    pub fn open(path: &Path) -> Result<TorchFile> {
        let f = std::fs::File::open(path).map_err(|e| ragl_core::Error::io(path, e))?;
        // SAFETY: read-only private map; every offset is checked against its length.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| ragl_core::Error::io(path, e))?;
        if !is_zip(&map) {
            return Err(bad(
                path,
                "not a torch.save zip archive (a legacy pre-1.6 torch file, or not PyTorch at all)",
            ));
        }
        let entries = zip_entries(&map).map_err(|m| bad(path, format!("zip: {m}")))?;
        let (pkl, data) = entries
            .iter()
            .find(|(n, _)| n.ends_with("data.pkl"))
            .map(|(n, r)| (n.clone(), r.clone()))
            .ok_or_else(|| bad(path, "no data.pkl in the archive"))?;
        let prefix = &pkl[..pkl.len() - "data.pkl".len()];
        let p = pickle::parse(&map[data], ALLOWED).map_err(|e| bad(path, format!("{pkl}: {e}")))?;
        // A state dict carries `_metadata` as instance state (a BUILD over the dict).
        let root = match p.get(p.root) {
            Value::Build(obj, _) => *obj,
            _ => p.root,
        };
        let Value::Dict(items) = p.get(root) else {
            return Err(bad(path, "the pickle is not a state dict (name → tensor)"));
        };
        let storage = |key: &str| entries.get(&format!("{prefix}data/{key}")).cloned();
        let mut tensors = Vec::with_capacity(items.len());
        for &(k, v) in items {
            let name = p
                .str(k)
                .ok_or_else(|| bad(path, "a state dict key that is not a string"))?
                .to_string();
            let t = tensor(&p, v, &storage).map_err(|m| bad(path, format!("{name}: {m}")))?;
            tensors.push((name, t));
        }
        Ok(TorchFile {
            path: path.to_path_buf(),
            map,
            tensors,
        })
    }

    /// The whole memory-mapped file.
    pub fn map(&self) -> &[u8] {
        &self.map
    }

    /// Where a contiguous tensor's bytes lie in [`TorchFile::map`].
    pub fn range(&self, t: &TensorRef) -> Option<Range<usize>> {
        if !t.contiguous() {
            return None;
        }
        let s = t.dtype.size();
        let start = t.storage.start + t.offset * s;
        Some(start..start + t.numel() * s)
    }

    /// The raw little-endian bytes of a contiguous tensor (what a memory-mapped consumer,
    /// such as an index import, reads in place); `None` for a strided view.
    pub fn bytes(&self, t: &TensorRef) -> Option<&[u8]> {
        if !t.contiguous() {
            return None;
        }
        let s = t.dtype.size();
        let start = t.storage.start + t.offset * s;
        Some(&self.map[start..start + t.numel() * s])
    }

    /// A float tensor's values as f32, row-major (strided views gathered).
    pub fn to_f32(&self, name: &str, t: &TensorRef) -> Result<Vec<f32>> {
        let conv = |b: &[u8]| -> f32 {
            match t.dtype {
                DType::F32 => f32::from_le_bytes(b.try_into().expect("4 bytes")),
                DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
                DType::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
                _ => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            }
        };
        if !t.dtype.is_float() {
            return Err(bad(
                &self.path,
                format!(
                    "tensor {name} has dtype {:?}, expected a float type",
                    t.dtype
                ),
            ));
        }
        let s = t.dtype.size();
        if let Some(b) = self.bytes(t) {
            return Ok(b.chunks_exact(s).map(conv).collect());
        }
        let store = &self.map[t.storage.clone()];
        let mut out = Vec::with_capacity(t.numel());
        let mut idx = vec![0usize; t.shape.len()];
        for _ in 0..t.numel() {
            let e = t.offset
                + idx
                    .iter()
                    .zip(&t.strides)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            out.push(conv(&store[e * s..e * s + s]));
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < t.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use ragl_testkit::hf::{Rng, Tensors, write_safetensors, write_torch_bin};

    use crate::weights::Weights;

    fn tensors() -> Tensors {
        let mut rng = Rng(3);
        let mut t = Tensors::new();
        t.insert("bert.a.weight".into(), (vec![3, 4], rng.vec(12)));
        t.insert("bert.b".into(), (vec![5], rng.vec(5)));
        t
    }

    #[test]
    fn a_state_dict_reads_as_its_safetensors_twin() {
        let d = tempfile::tempdir().unwrap();
        let (st, bin) = (d.path().join("m.safetensors"), d.path().join("m.bin"));
        write_safetensors(&st, &tensors());
        write_torch_bin(&bin, &tensors(), "collections\nOrderedDict");
        let (a, _) = Weights::open(&st, &["bert."], &[]).unwrap();
        let (b, _) = Weights::open(&bin, &["bert."], &[]).unwrap();
        assert_eq!(a.tensors, b.tensors);
        assert_eq!(b.tensors["a.weight"].0, [3, 4]);
    }

    #[test]
    fn a_pickle_that_names_other_code_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("m.bin");
        write_torch_bin(&bin, &tensors(), "posix\nsystem");
        let e = Weights::open(&bin, &[], &[]).err().unwrap().to_string();
        assert!(
            e.contains("posix.system") && e.contains("nothing was run"),
            "{e}"
        );
    }
}
