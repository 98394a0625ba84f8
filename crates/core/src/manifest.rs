//! Artifact manifests.
//!
//! Every artifact ragl writes (index, datastore, checkpoint) is a directory holding a
//! `manifest.json`: what kind of artifact it is, the format version, the ragl version that
//! made it, the resolved config, the fingerprint of the model whose outputs it stores,
//! counts, and a SHA-256 per data file. Loading checks kind, version and fingerprint, so a
//! datastore built from another model is refused rather than silently used.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::write_bytes_atomic;
use crate::{Error, Result};

pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// What the artifact is: "index", "datastore", "checkpoint", ...
    pub kind: String,
    pub format_version: u32,
    pub ragl_version: String,
    /// The resolved configuration the artifact was made with.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Fingerprint of the model the artifact depends on, if any.
    #[serde(default)]
    pub model_fingerprint: Option<String>,
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Data file name (relative to the artifact directory) → SHA-256 hex digest.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    pub fn new(kind: &str, format_version: u32) -> Self {
        Manifest {
            kind: kind.to_owned(),
            format_version,
            ragl_version: env!("CARGO_PKG_VERSION").to_owned(),
            config: serde_json::Value::Null,
            model_fingerprint: None,
            counts: BTreeMap::new(),
            files: BTreeMap::new(),
        }
    }

    /// Hashes `dir/name` and records it.
    pub fn add_file(&mut self, dir: &Path, name: &str) -> Result<()> {
        let digest = sha256_file(&dir.join(name))?;
        self.files.insert(name.to_owned(), digest);
        Ok(())
    }

    /// Writes `dir/manifest.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("manifest serialises");
        write_bytes_atomic(&dir.join(MANIFEST_FILE), &json)
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Json {
            path,
            line: e.line() as u64,
            message: e.to_string(),
        })
    }

    /// Reads the manifest of `dir` and refuses it unless it is a `kind` artifact of
    /// `format_version` made from the model `fingerprint` (when given).
    pub fn open_checked(
        dir: &Path,
        kind: &str,
        format_version: u32,
        fingerprint: Option<&str>,
    ) -> Result<Self> {
        let m = Manifest::read(dir)?;
        let refuse = |message: String| Error::Artifact {
            path: dir.to_path_buf(),
            message,
        };
        if m.kind != kind {
            return Err(refuse(format!(
                "is a {} artifact, expected a {kind}",
                m.kind
            )));
        }
        if m.format_version != format_version {
            return Err(refuse(format!(
                "{kind} format version {} (made by ragl {}), this ragl reads version {format_version}; rebuild it",
                m.format_version, m.ragl_version
            )));
        }
        if let Some(want) = fingerprint
            && m.model_fingerprint.as_deref() != Some(want)
        {
            return Err(refuse(format!(
                "{kind} was made by model {}, not by the model given ({want}); rebuild it with that model",
                m.model_fingerprint.as_deref().unwrap_or("<none>")
            )));
        }
        Ok(m)
    }

    /// Re-hashes every listed file and reports the first that changed.
    pub fn verify_files(&self, dir: &Path) -> Result<()> {
        for (name, want) in &self.files {
            let got = sha256_file(&dir.join(name))?;
            if &got != want {
                return Err(Error::Artifact {
                    path: dir.join(name),
                    message: format!(
                        "content hash {got} differs from the manifest's {want}: the file changed after the artifact was written"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// SHA-256 of a file, hex-encoded, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.bin"), b"0123").unwrap();
        let mut m = Manifest::new("datastore", 1);
        m.model_fingerprint = Some("abc".into());
        m.counts.insert("entries".into(), 4);
        m.add_file(dir.path(), "keys.bin").unwrap();
        m.write(dir.path()).unwrap();

        let back = Manifest::open_checked(dir.path(), "datastore", 1, Some("abc")).unwrap();
        assert_eq!(back, m);
        back.verify_files(dir.path()).unwrap();

        let e = Manifest::open_checked(dir.path(), "index", 1, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("is a datastore artifact, expected a index")
        );
        let e = Manifest::open_checked(dir.path(), "datastore", 2, None).unwrap_err();
        assert!(e.to_string().contains("format version 1"));
        let e = Manifest::open_checked(dir.path(), "datastore", 1, Some("xyz")).unwrap_err();
        assert!(e.to_string().contains("made by model abc"));

        std::fs::write(dir.path().join("keys.bin"), b"0124").unwrap();
        assert!(back.verify_files(dir.path()).is_err());
    }

    #[test]
    fn sha256_matches_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"abc").unwrap();
        // sha256("abc") from FIPS 180-2.
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
