//! Fixtures the CLI's end-to-end tests share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One `ragl quickstart --smoke` run per test binary, whose data, models, indexes and
/// datastore the tests read (a second of work).
pub fn smoke() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, qs) = DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let qs = d.path().join("qs");
        let o = Command::new(env!("CARGO_BIN_EXE_ragl"))
            .args(["quickstart", "--smoke", "--out", qs.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (d, qs)
    });
    qs
}
