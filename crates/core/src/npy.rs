//! `.npy` (NumPy format 1.0) for embedding matrices: `numpy.load` reads ragl's output as is.
//! The writer streams rows and fills in the row count at the end; the file appears under
//! its name only when complete (temp file + rename).

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// Header size reserved up front, so the final shape can be written in place.
const HEADER_LEN: usize = 128;

fn header(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    h.extend_from_slice(&((HEADER_LEN - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(HEADER_LEN - 1, b' ');
    h.push(b'\n');
    h
}

/// Streams `[rows, cols]` f32 rows into an `.npy` file.
pub struct NpyWriter {
    dest: PathBuf,
    tmp: PathBuf,
    w: BufWriter<File>,
    cols: usize,
    rows: usize,
}

impl NpyWriter {
    pub fn create(dest: &Path, cols: usize) -> crate::Result<Self> {
        if let Some(d) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let tmp = crate::atomic::temp_path(dest);
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(&header(0, cols))
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(NpyWriter {
            dest: dest.to_path_buf(),
            tmp,
            w,
            cols,
            rows: 0,
        })
    }

    pub fn write_row(&mut self, row: &[f32]) -> crate::Result<()> {
        assert_eq!(row.len(), self.cols, "row width");
        for x in row {
            self.w
                .write_all(&x.to_le_bytes())
                .map_err(|e| Error::io(&self.tmp, e))?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Writes the final shape and renames the file into place.
    pub fn finish(mut self) -> crate::Result<usize> {
        let io = |e| Error::io(&self.tmp, e);
        self.w.flush().map_err(io)?;
        let mut f = self
            .w
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(&self.tmp, e))?;
        f.write_all(&header(self.rows, self.cols))
            .map_err(|e| Error::io(&self.tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        Ok(self.rows)
    }
}

/// Parses an `.npy` header: `(rows, cols, offset of the data)`. Only little-endian f32
/// 2-D arrays in C order are accepted.
fn parse_header(path: &Path, head: &[u8]) -> crate::Result<(usize, usize, usize)> {
    let bad = |m: &str| Error::Artifact {
        path: path.to_path_buf(),
        message: m.to_owned(),
    };
    if head.len() < 12 || &head[..6] != b"\x93NUMPY" {
        return Err(bad("not an .npy file"));
    }
    let (hlen, start) = match head[6] {
        1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize,
            12,
        ),
    };
    let h = head
        .get(start..start + hlen)
        .ok_or_else(|| bad("header longer than the file"))?;
    let h = std::str::from_utf8(h).map_err(|_| bad("header is not text"))?;
    if !h.contains("'<f4'") || h.contains("'fortran_order': True") {
        return Err(bad("expected little-endian f32 in C order"));
    }
    let shape = h
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    match dims[..] {
        [r, c] => Ok((r, c, start + hlen)),
        _ => Err(bad("expected a 2-D array")),
    }
}

/// Streams the rows of a little-endian f32 2-D `.npy`, a block at a time, so that a file
/// larger than memory can be indexed.
pub struct NpyReader {
    path: PathBuf,
    r: std::io::BufReader<File>,
    pub rows: usize,
    pub cols: usize,
    read: usize,
}

impl NpyReader {
    pub fn open(path: &Path) -> crate::Result<Self> {
        let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut head = vec![0u8; 4096.min(len as usize)];
        f.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
        let (rows, cols, offset) = parse_header(path, &head)?;
        if len != (offset + rows * cols * 4) as u64 {
            return Err(Error::Artifact {
                path: path.to_path_buf(),
                message: format!(
                    "file size {len} does not match the shape ({rows}, {cols}): truncated?"
                ),
            });
        }
        f.seek(SeekFrom::Start(offset as u64))
            .map_err(|e| Error::io(path, e))?;
        Ok(NpyReader {
            path: path.to_path_buf(),
            r: std::io::BufReader::with_capacity(1 << 20, f),
            rows,
            cols,
            read: 0,
        })
    }

    /// The next (up to) `n` rows, row-major; empty at the end.
    pub fn next_rows(&mut self, n: usize) -> crate::Result<Vec<f32>> {
        let n = n.min(self.rows - self.read);
        let mut bytes = vec![0u8; n * self.cols * 4];
        self.r
            .read_exact(&mut bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        let first = self.read;
        self.read += n;
        let v: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // A NaN or infinity would rank or train silently wrong: refuse the file, naming the
        // first bad row (0-based, as numpy counts).
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            let (row, col) = (first + i / self.cols.max(1), i % self.cols.max(1));
            return Err(Error::Artifact {
                path: self.path.clone(),
                message: format!(
                    "row {row}, column {col} is {} (vectors must be finite)",
                    v[i]
                ),
            });
        }
        Ok(v)
    }
}

/// Reads a whole little-endian f32 2-D `.npy` (as written above or by `numpy.save`).
pub fn read_f32(path: &Path) -> crate::Result<(usize, usize, Vec<f32>)> {
    let mut r = NpyReader::open(path)?;
    let data = r.next_rows(r.rows)?;
    Ok((r.rows, r.cols, data))
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_finite_values_are_refused_with_their_row() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v.npy");
        let mut w = super::NpyWriter::create(&p, 3).unwrap();
        w.write_row(&[1.0, 2.0, 3.0]).unwrap();
        w.write_row(&[1.0, f32::NAN, 3.0]).unwrap();
        w.finish().unwrap();
        let e = super::read_f32(&p).unwrap_err().to_string();
        assert!(e.contains("row 1, column 1 is NaN"), "{e}");
        assert!(e.contains("v.npy"), "{e}");
    }

    use super::*;

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("e.npy");
        let mut w = NpyWriter::create(&p, 3).unwrap();
        w.write_row(&[1.0, 2.0, 3.0]).unwrap();
        w.write_row(&[4.0, 5.0, -6.5]).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        let (r, c, v) = read_f32(&p).unwrap();
        assert_eq!((r, c, v), (2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
