//! Model arguments that name a Hugging Face model id (`Helsinki-NLP/opus-mt-de-en`) resolve
//! through the local Hugging Face cache, laid out as `huggingface-cli download` writes it:
//! `$HF_HUB_CACHE` (else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`) /
//! `models--ORG--NAME/snapshots/<revision>/`, the revision named by `refs/main`. Nothing here
//! touches the network: a model that is not in the cache is an error that says how to get it.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The hub cache directory this process would read.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}

/// `spec` itself when it exists; otherwise the cached snapshot of model id `spec`.
pub fn resolve(spec: &Path) -> Result<PathBuf> {
    if spec.exists() {
        return Ok(spec.to_path_buf());
    }
    let id = spec.to_string_lossy();
    let looks_like_id = !id.is_empty()
        && !id.starts_with(['.', '/', '~'])
        && id.matches('/').count() <= 1
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    let not_found = |message: String| Error::NotFound {
        path: spec.to_path_buf(),
        message,
    };
    if !looks_like_id {
        return Err(not_found("no such file or directory".into()));
    }
    let Some(cache) = cache_dir() else {
        return Err(not_found(
            "no such directory, and no Hugging Face cache to look in (HOME is unset)".into(),
        ));
    };
    match snapshot(&cache, &id) {
        Some(dir) => Ok(dir),
        None => Err(not_found(format!(
            "no such directory, and model id {id} is not in the Hugging Face cache {} \
             (fetch it first, e.g. `huggingface-cli download {id}`; ragl never downloads)",
            cache.display()
        ))),
    }
}

fn snapshot(cache: &Path, id: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let snaps = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) {
        let dir = snaps.join(rev.trim());
        if dir.is_dir() {
            return Some(dir);
        }
    }
    // No refs/main (a copied cache): the most recently written snapshot.
    std::fs::read_dir(&snaps)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_snapshot_refs_main_names() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--Org--tiny-mt");
        std::fs::create_dir_all(repo.join("snapshots/abc123")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/old")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc123\n").unwrap();
        assert_eq!(
            snapshot(cache.path(), "Org/tiny-mt").unwrap(),
            repo.join("snapshots/abc123")
        );
        assert!(snapshot(cache.path(), "Org/other").is_none());
    }

    #[test]
    fn a_path_that_is_not_an_id_is_not_looked_up() {
        let e = resolve(Path::new("/no/such/dir")).unwrap_err().to_string();
        assert!(e.contains("no such file"), "{e}");
        let e = resolve(Path::new("Nobody/nothing-here-xyz"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("huggingface-cli download"), "{e}");
    }
}
