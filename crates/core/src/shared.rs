//! Where the real data sets and checkpoints live: `$RAGL_SHARED` if set, else `../shared`
//! beside the checkout. Tests that need them call [`locate`] and skip, saying why, when
//! it returns `None`.

use std::path::{Path, PathBuf};

/// The shared folder holding `sub` (e.g. `"data/qa"`), or `None` with a printed reason.
/// `crate_dir` is the caller's `CARGO_MANIFEST_DIR` (crates live two levels below the root).
pub fn locate(crate_dir: &str, sub: &str) -> Option<PathBuf> {
    let root = std::env::var_os("RAGL_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(crate_dir).join("../../../shared"));
    if root.join(sub).exists() {
        Some(root)
    } else {
        eprintln!(
            "skipping: {} has no {sub} (set RAGL_SHARED to the shared folder)",
            root.display()
        );
        None
    }
}
