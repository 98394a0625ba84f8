//! Atomic writes: write to a temporary name in the destination's directory, flush, fsync,
//! then rename over the destination. Readers see the old file or the new one, never half of
//! one, and a crash leaves at worst a stray `.tmp` file that the next write replaces.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The temporary sibling a write goes to before it is renamed into place. What an earlier
/// writer of `dest` that was killed (Ctrl-C, kill -9) left under such a name is removed.
pub fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    sweep_stale(dest, &name);
    dest.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Removes `.NAME.tmp.PID` files and directories beside `dest` whose process is gone.
fn sweep_stale(dest: &Path, name: &str) {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.tmp.");
    for e in entries.flatten() {
        let file = e.file_name();
        let pid = file
            .to_string_lossy()
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !crate::lock::alive(pid)
        {
            let p = e.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}

/// Writes `dest` atomically with the bytes `write` produces.
pub fn write_atomic<F>(dest: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
{
    write_atomic_with(dest, write).map_err(|e| match e {
        WriteError::Io(e) => e,
        WriteError::Write(e) => Error::io(dest, e),
    })
}

/// What [`write_atomic_with`] fails with: the file system, or the caller's own writer.
#[derive(Debug)]
pub enum WriteError<E> {
    Io(Error),
    Write(E),
}

/// [`write_atomic`] for a writer with an error type of its own (a CLI writing records it
/// computes as it goes): on any failure the temporary file is removed and `dest` is left
/// as it was.
pub fn write_atomic_with<E, F>(dest: &Path, write: F) -> std::result::Result<(), WriteError<E>>
where
    F: FnOnce(&mut BufWriter<File>) -> std::result::Result<(), E>,
{
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| WriteError::Io(Error::io(dir, e)))?;
    }
    let tmp = temp_path(dest);
    let f = File::create(&tmp).map_err(|e| WriteError::Io(Error::io(&tmp, e)))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    if let Err(e) = write(&mut w) {
        drop(w);
        let _ = fs::remove_file(&tmp);
        return Err(WriteError::Write(e));
    }
    let done = (|| {
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, dest)
    })();
    if let Err(e) = done {
        let _ = fs::remove_file(&tmp);
        return Err(WriteError::Io(Error::io(dest, e)));
    }
    Ok(())
}

/// Convenience: atomically write a byte slice.
pub fn write_bytes_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(dest, |w| w.write_all(bytes))
}

/// Removes a staging directory when dropped. After a successful [`publish_dir`] nothing is
/// left to remove; after a failed write (a full disk, a file size limit) the half-written
/// staging does not stay behind, and the published artifact is as it was.
#[derive(Debug)]
pub struct StagingGuard(PathBuf);

impl StagingGuard {
    pub fn new(staging: &Path) -> Self {
        StagingGuard(staging.to_path_buf())
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Publishes a fully written artifact directory: `staging` is renamed to `dest`, replacing
/// any previous artifact there. Artifacts are built in a staging directory so that a reader
/// never sees one without its manifest.
pub fn publish_dir(staging: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        let old = dest.with_file_name(format!(
            ".{}.old.{}",
            dest.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        fs::rename(dest, &old).map_err(|e| Error::io(dest, e))?;
        fs::rename(staging, dest).map_err(|e| Error::io(dest, e))?;
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    } else {
        fs::rename(staging, dest).map_err(|e| Error::io(dest, e))?;
    }
    Ok(())
}

/// Rewrites a step-keyed CSV log (first column the step) keeping its header and the rows of
/// steps ≤ `step`: a training run resumed from the checkpoint of `step` drops what it
/// wrote after that checkpoint, then appends. A missing file becomes the header alone.
pub fn truncate_steps(path: &Path, header: &str, step: u64) -> Result<()> {
    let columns = header.split(',').count();
    let mut keep = String::from(header);
    keep.push('\n');
    if let Ok(old) = fs::read_to_string(path) {
        for line in old.lines().skip(1) {
            let s: u64 = line
                .split(',')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX);
            if s <= step {
                keep.push_str(line);
                // A row written before the header gained columns (an older version's
                // run, resumed) gets them empty, so the file stays rectangular.
                let missing = columns.saturating_sub(line.split(',').count());
                keep.push_str(&",".repeat(missing));
                keep.push('\n');
            }
        }
    }
    write_bytes_atomic(path, keep.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_killed_writers_temporary_files_are_swept() {
        let d = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = d.path().join(format!(".x.txt.tmp.{dead}"));
        std::fs::write(&stale, "half").unwrap();
        let stale_dir = d.path().join(format!(".x.txt.tmp.{}", dead + 1_000_000));
        std::fs::create_dir(&stale_dir).unwrap();
        super::write_bytes_atomic(&d.path().join("x.txt"), b"whole").unwrap();
        assert!(!stale.exists() && !stale_dir.exists());
        assert_eq!(std::fs::read(d.path().join("x.txt")).unwrap(), b"whole");
    }

    use super::*;

    #[test]
    fn truncated_steps_keep_older_rows_rectangular() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        fs::write(&p, "step,a\n1,x\n2,y\n3,z\n").unwrap();
        truncate_steps(&p, "step,a,b,c", 2).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "step,a,b,c\n1,x,,\n2,y,,\n"
        );
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.txt");
        write_bytes_atomic(&p, b"one").unwrap();
        write_bytes_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_bytes_atomic(&p, b"old").unwrap();
        let err = write_atomic(&p, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk on fire"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn publish_dir_swaps_whole_directories() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("index");
        for v in ["a", "b"] {
            let staging = dir.path().join(format!("staging-{v}"));
            fs::create_dir(&staging).unwrap();
            fs::write(staging.join("data"), v).unwrap();
            publish_dir(&staging, &dest).unwrap();
        }
        assert_eq!(fs::read_to_string(dest.join("data")).unwrap(), "b");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
