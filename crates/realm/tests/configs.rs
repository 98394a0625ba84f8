//! Every config shipped under `configs/realm` and `configs/qa` parses: the structs deny
//! unknown fields, so a renamed option or a typo in a shipped config fails here rather
//! than an hour into a run.

use std::path::{Path, PathBuf};

use ragl_realm::{openqa::FinetuneConfig, pretrain::PretrainConfig};

fn tomls(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no configs in {}", dir.display());
    v
}

#[test]
fn shipped_pretrain_configs_parse() {
    for p in tomls("realm") {
        PretrainConfig::from_toml(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

#[test]
fn shipped_qa_configs_parse() {
    for p in tomls("qa") {
        FinetuneConfig::from_toml(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}
