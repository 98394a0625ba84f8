//! One writer per run directory or artifact. A long job (training, an index or datastore
//! build) holds `.NAME.lock` beside its output `NAME`, holding its process id, for as long
//! as it writes; a second job aimed at the same output is refused with that id. A lock
//! left by a process that no longer exists (killed, machine restarted) is taken over.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Held while a job writes `dir`; released when dropped.
#[derive(Debug)]
pub struct WriterLock {
    path: PathBuf,
}

impl WriterLock {
    /// Takes the lock of `dir` (which need not exist yet).
    pub fn acquire(dir: &Path) -> Result<Self> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let path = parent.join(format!(".{name}.lock"));
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
                    return Ok(WriterLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if alive(pid) => {
                            return Err(Error::Artifact {
                                path: dir.to_path_buf(),
                                message: format!(
                                    "another ragl process (pid {pid}) is writing here; wait for it to end, or choose another output"
                                ),
                            });
                        }
                        // Its writer is gone: take the lock over.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Artifact {
            path: dir.to_path_buf(),
            message: format!("could not take the lock {}", path.display()),
        })
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(std::process::id());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether process `pid` exists. Where `/proc` is missing (not Linux) every holder is taken
/// to be alive: a lock is then removed by hand, never taken from a live writer.
pub(crate) fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_a_dead_ones_lock_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("run");
        let first = WriterLock::acquire(&out).unwrap();
        let e = WriterLock::acquire(&out).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        assert!(!d.path().join(".run.lock").exists());
        // A lock left by a process that has ended.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(d.path().join(".run.lock"), dead.to_string()).unwrap();
        let taken = WriterLock::acquire(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join(".run.lock")).unwrap(),
            std::process::id().to_string()
        );
        drop(taken);
    }
}
