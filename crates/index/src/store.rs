//! Vectors and ids on disk.
//!
//! `vectors.f32` is the raw little-endian `[n, dim]` f32 matrix (no header: the manifest has
//! the shape), so it can be memory-mapped and used in place, and `numpy.fromfile(p,
//! "<f4").reshape(n, dim)` reads it. `ids.txt` has one passage id per line, in row order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use ragl_core::Error as CoreError;

use crate::{Error, Result};

#[cfg(not(target_endian = "little"))]
compile_error!("ragl's vector files are little-endian and mapped in place");

pub const VECTORS_FILE: &str = "vectors.f32";
pub const IDS_FILE: &str = "ids.txt";

/// A read-only `[n, dim]` f32 matrix, memory-mapped from disk or owned.
pub enum Vectors {
    Mapped {
        map: Mmap,
        dim: usize,
    },
    /// Read into anonymous memory backed by transparent huge pages where the kernel allows.
    Resident {
        map: Mmap,
        dim: usize,
    },
    Owned {
        data: Vec<f32>,
        dim: usize,
    },
    Empty {
        dim: usize,
    },
}

impl Vectors {
    /// Maps `path`, checking that its size is exactly `rows × dim` floats.
    pub fn open(path: &Path, rows: usize, dim: usize) -> Result<Self> {
        let f = File::open(path).map_err(|e| CoreError::io(path, e))?;
        let len = f.metadata().map_err(|e| CoreError::io(path, e))?.len();
        let want = (rows * dim * 4) as u64;
        if len != want {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "{len} bytes, but the manifest's {rows} vectors of dimension {dim} need {want}: the file is truncated or not this index's"
                ),
            });
        }
        if rows == 0 {
            return Ok(Vectors::Empty { dim });
        }
        // SAFETY: the file is opened read-only; ragl never writes a published index in
        // place (artifacts are replaced by rename), so the mapping cannot change under us
        // unless another program edits the file, which the manifest hashes would catch.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| CoreError::io(path, e))?;
        Ok(Vectors::Mapped { map, dim })
    }

    /// Reads `path` into anonymous memory advised to use huge pages, for random access.
    ///
    /// HNSW search touches one vector per scored neighbour, all over the file. With the
    /// file mapped in 4 KiB pages almost every touch of a 1M-vector index misses the TLB
    /// as well as the cache; anonymous memory gets 2 MiB pages (as faiss's `std::vector`
    /// does where transparent huge pages are on), which keeps the page walks in cache.
    pub fn load_resident(path: &Path, rows: usize, dim: usize) -> Result<Self> {
        use std::io::Read;
        let mapped = Self::open(path, rows, dim)?;
        let Vectors::Mapped { map: file, dim } = mapped else {
            return Ok(mapped);
        };
        let mut anon =
            memmap2::MmapMut::map_anon(file.len()).map_err(|e| CoreError::io(path, e))?;
        #[cfg(target_os = "linux")]
        // A refusal (huge pages disabled) only costs speed, so it is not an error.
        let _ = anon.advise(memmap2::Advice::HugePage);
        let mut f = File::open(path).map_err(|e| CoreError::io(path, e))?;
        drop(file);
        f.read_exact(&mut anon)
            .map_err(|e| CoreError::io(path, e))?;
        let map = anon.make_read_only().map_err(|e| CoreError::io(path, e))?;
        Ok(Vectors::Resident { map, dim })
    }

    pub fn from_vec(data: Vec<f32>, dim: usize) -> Self {
        assert!(dim > 0 && data.len().is_multiple_of(dim));
        Vectors::Owned { data, dim }
    }

    pub fn dim(&self) -> usize {
        match self {
            Vectors::Mapped { dim, .. }
            | Vectors::Resident { dim, .. }
            | Vectors::Owned { dim, .. }
            | Vectors::Empty { dim } => *dim,
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        match self {
            Vectors::Mapped { map, .. } | Vectors::Resident { map, .. } => {
                // SAFETY: a mapping is page-aligned (so f32-aligned) and its length was
                // checked to be a multiple of 4 in `open`.
                unsafe { std::slice::from_raw_parts(map.as_ptr().cast::<f32>(), map.len() / 4) }
            }
            Vectors::Owned { data, .. } => data,
            Vectors::Empty { .. } => &[],
        }
    }

    pub fn rows(&self) -> usize {
        self.as_slice().len() / self.dim()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.as_slice()[i * d..(i + 1) * d]
    }
}

/// Appends rows to a vector file; it appears under its name only in [`finish`](Self::finish).
pub struct VectorWriter {
    dest: PathBuf,
    tmp: PathBuf,
    w: BufWriter<File>,
    dim: usize,
    rows: usize,
}

impl VectorWriter {
    pub fn create(dest: &Path, dim: usize) -> Result<Self> {
        let tmp = ragl_core::atomic::temp_path(dest);
        let f = File::create(&tmp).map_err(|e| CoreError::io(&tmp, e))?;
        Ok(VectorWriter {
            dest: dest.to_path_buf(),
            tmp,
            w: BufWriter::with_capacity(1 << 20, f),
            dim,
            rows: 0,
        })
    }

    /// Appends rows (a multiple of `dim` floats).
    pub fn write(&mut self, rows: &[f32]) -> Result<()> {
        assert_eq!(rows.len() % self.dim, 0, "row width");
        // SAFETY: f32 has no padding or invalid bit patterns; viewing it as bytes is sound.
        let bytes =
            unsafe { std::slice::from_raw_parts(rows.as_ptr().cast::<u8>(), rows.len() * 4) };
        self.w
            .write_all(bytes)
            .map_err(|e| CoreError::io(&self.tmp, e))?;
        self.rows += rows.len() / self.dim;
        Ok(())
    }

    /// Appends the rows of another vector file, as bytes: no decoding, and a read that
    /// returns part of a float cannot split it.
    pub fn append_file(&mut self, path: &Path) -> Result<()> {
        let mut f = File::open(path).map_err(|e| CoreError::io(path, e))?;
        let len = f.metadata().map_err(|e| CoreError::io(path, e))?.len();
        let row = (self.dim * 4) as u64;
        if len % row != 0 {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "{len} bytes is not a whole number of {}-d vectors",
                    self.dim
                ),
            });
        }
        std::io::copy(&mut f, &mut self.w).map_err(|e| CoreError::io(path, e))?;
        self.rows += (len / row) as usize;
        Ok(())
    }

    pub fn finish(self) -> Result<usize> {
        let tmp = self.tmp;
        let f = self
            .w
            .into_inner()
            .map_err(|e| CoreError::io(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| CoreError::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.dest).map_err(|e| CoreError::io(&self.dest, e))?;
        Ok(self.rows)
    }
}

/// Reads `ids.txt`, checking the count against the manifest.
pub fn read_ids(path: &Path, rows: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    let ids: Vec<String> = text.lines().map(str::to_owned).collect();
    if ids.len() != rows {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            message: format!("{} ids, but the manifest counts {rows} vectors", ids.len()),
        });
    }
    Ok(ids)
}

/// Writes ids one per line, atomically.
pub fn write_ids(path: &Path, ids: &[String]) -> Result<()> {
    let mut s = String::with_capacity(ids.iter().map(|i| i.len() + 1).sum());
    for id in ids {
        s.push_str(id);
        s.push('\n');
    }
    Ok(ragl_core::atomic::write_bytes_atomic(path, s.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_map_and_refuse_a_truncated_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(VECTORS_FILE);
        let mut w = VectorWriter::create(&p, 2).unwrap();
        w.write(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        w.write(&[5.0, 6.0]).unwrap();
        assert_eq!(w.finish().unwrap(), 3);
        let v = Vectors::open(&p, 3, 2).unwrap();
        assert_eq!(v.row(2), &[5.0, 6.0]);
        let e = Vectors::open(&p, 4, 2).err().unwrap();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
