//! `.npy` files of Python objects that are byte strings — REALM's `block_records.npy`, the
//! text of 13,353,718 Wikipedia blocks — read through [`crate::pickle`], so nothing in the
//! file is ever executed: the pickle must be exactly a one-dimensional NumPy object array
//! (`numpy.core.multiarray._reconstruct` of `ndarray`, its `dtype('O')`, and a list of
//! `bytes`), and anything else is refused. The file is memory-mapped; the strings are
//! ranges of the map, never copied.

use std::ops::Range;
use std::path::Path;

use crate::pickle::{self, Pickle, Value};
use crate::{Error, Result};

/// The globals an object array's pickle may name (NumPy 1.x and 2.x module paths).
const ALLOWED: &[(&str, &str)] = &[
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
];

/// A memory-mapped array of byte strings.
pub struct BytesArray {
    map: memmap2::Mmap,
    items: Vec<Range<usize>>,
}

impl BytesArray {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn get(&self, i: usize) -> &[u8] {
        &self.map[self.items[i].clone()]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().map(|r| &self.map[r.clone()])
    }
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Artifact {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Opens an `.npy` holding a 1-D object array of byte strings.
pub fn open(path: &Path) -> Result<BytesArray> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only and private to this process; a file changed under it
    // by another process could show torn bytes, never unsafety in the parse, which checks
    // every length against the map.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(path, e))?;
    let (descr, shape, start) = header(path, &map)?;
    if descr != "|O" {
        return Err(bad(
            path,
            format!("an array of {descr}, not of Python objects (byte strings)"),
        ));
    }
    let [n] = shape[..] else {
        return Err(bad(
            path,
            format!("shape {shape:?}: expected one dimension"),
        ));
    };
    let p = pickle::parse(&map[start..], ALLOWED).map_err(|e| {
        bad(
            path,
            format!("pickle at byte {}: {}", start + e.offset, e.message),
        )
    })?;
    let items = byte_strings(&p)
        .map_err(|m| bad(path, m))?
        .into_iter()
        .map(|r| r.start + start..r.end + start)
        .collect::<Vec<_>>();
    if items.len() != n {
        return Err(bad(
            path,
            format!(
                "the header says {n} items, the pickle holds {}",
                items.len()
            ),
        ));
    }
    Ok(BytesArray { map, items })
}

/// `(descr, shape, offset of the data)` of an `.npy` header.
fn header(path: &Path, b: &[u8]) -> Result<(String, Vec<usize>, usize)> {
    if b.len() < 12 || &b[..6] != b"\x93NUMPY" {
        return Err(bad(path, "not an .npy file"));
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        _ => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
    };
    let h = b
        .get(start..start + hlen)
        .ok_or_else(|| bad(path, "header longer than the file"))?;
    let h = std::str::from_utf8(h).map_err(|_| bad(path, "header is not text"))?;
    let descr = h
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .ok_or_else(|| bad(path, "no descr in the header"))?
        .to_string();
    let shape = h
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(path, "no shape in the header"))?;
    let dims = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| bad(path, "a bad shape")))
        .collect::<Result<Vec<_>>>()?;
    Ok((descr, dims, start + hlen))
}

/// The byte strings of an object array's pickle, or what it holds instead.
fn byte_strings(p: &Pickle) -> std::result::Result<Vec<Range<usize>>, String> {
    let not = |what: &str| format!("not a NumPy object array of byte strings ({what})");
    let Value::Build(array, state) = p.get(p.root) else {
        return Err(not("no array at the top"));
    };
    let Value::Call(f, _) = p.get(*array) else {
        return Err(not("no array reconstruction"));
    };
    if !(p.is_global(*f, "numpy.core.multiarray", "_reconstruct")
        || p.is_global(*f, "numpy._core.multiarray", "_reconstruct"))
    {
        return Err(not("the array is not made by _reconstruct"));
    }
    // (version, shape, dtype, fortran_order, items)
    let s = p.items(*state).ok_or_else(|| not("no array state"))?;
    let [_, _, dtype, _, list] = s[..] else {
        return Err(not("an array state of the wrong size"));
    };
    let descr = match p.get(dtype) {
        Value::Build(d, _) => match p.get(*d) {
            Value::Call(g, args) if p.is_global(*g, "numpy", "dtype") => p
                .items(*args)
                .and_then(|a| a.first())
                .and_then(|&k| p.str(k)),
            _ => None,
        },
        _ => None,
    };
    if descr != Some("O8") && descr != Some("O4") {
        return Err(not(&format!("dtype {descr:?}")));
    }
    let items = p.items(list).ok_or_else(|| not("no item list"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, &id)| match p.get(id) {
            Value::Bytes(r) => Ok(r.clone()),
            other => Err(not(&format!("item {i} is {}", kind(other)))),
        })
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Str(_) => "a str",
        Value::Bytes(_) => "bytes",
        Value::Tuple(_) => "a tuple",
        Value::List(_) => "a list",
        Value::Dict(_) => "a dict",
        Value::Global(..) => "a global",
        Value::Call(..) | Value::Build(..) => "an object",
        Value::Persistent(_) => "a persistent id",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `np.save(p, np.array([b"first block", b"second \xff", b""], dtype=object))`
    /// (NumPy 2.4, pickle protocol 4).
    const RECORDS: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (3,), }                                                             \n\x80\x04\x95\xa6\x00\x00\x00\x00\x00\x00\x00\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x03\x85\x94h\x03\x8c\x05dtype\x94\x93\x94\x8c\x02O8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94b\x89]\x94(C\x0bfirst block\x94C\x08second \xff\x94C\x00\x94et\x94b.";

    fn write(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("block_records.npy");
        std::fs::write(&p, bytes).unwrap();
        (d, p)
    }

    #[test]
    fn reads_numpys_object_arrays_of_bytes() {
        let (_d, p) = write(RECORDS);
        let a = open(&p).unwrap();
        let items: Vec<&[u8]> = a.iter().collect();
        assert_eq!(items, [&b"first block"[..], b"second \xff", b""]);
    }

    #[test]
    fn anything_else_is_refused_and_nothing_runs() {
        // The same array holding a str: not byte strings.
        let list = RECORDS.windows(3).position(|w| w == b"]\x94(").unwrap() + 3;
        let mixed = [
            &RECORDS[..list],
            b"C\x01x\x94\x8c\x03str\x94C\x00\x94et\x94b.",
        ]
        .concat();
        let (_d, p) = write(&mixed);
        let e = open(&p).err().unwrap().to_string();
        assert!(e.contains("item 1 is a str"), "{e}");
        // An object-array header over a pickle that would run a shell command.
        let head = &RECORDS[..RECORDS.iter().position(|&b| b == b'\n').unwrap() + 1];
        let evil = [
            head,
            b"\x80\x02cposix\nsystem\n(X\x07\x00\x00\x00echo hitR.",
        ]
        .concat();
        let (_d, p) = write(&evil);
        let e = open(&p).err().unwrap().to_string();
        assert!(
            e.contains("posix.system") && e.contains("nothing was run"),
            "{e}"
        );
        // Not an object array at all.
        let mut floats = head.to_vec();
        let at = floats.windows(2).position(|w| w == b"|O").unwrap();
        floats[at..at + 2].copy_from_slice(b"<f");
        let (_d, p) = write(&floats);
        assert!(
            open(&p)
                .err()
                .unwrap()
                .to_string()
                .contains("not of Python objects")
        );
    }
}
