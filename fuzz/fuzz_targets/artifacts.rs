//! The structured files users hand ragl, on arbitrary bytes: a `.npy` of vectors (header,
//! size check, rows, non-finite values), an artifact directory's `manifest.json` (kind,
//! version, files and their hashes) and a TOML run config (the reader that names the line).
//! Each returns its value or an error, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("ragl-fuzz-artifacts-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let npy = dir.join("v.npy");
    std::fs::write(&npy, data).unwrap();
    if let Ok(mut r) = ragl_core::npy::NpyReader::open(&npy)
        && r.rows.saturating_mul(r.cols) < 1 << 20
    {
        while let Ok(block) = r.next_rows(64) {
            if block.is_empty() {
                break;
            }
        }
    }
    std::fs::write(dir.join(ragl_core::manifest::MANIFEST_FILE), data).unwrap();
    if let Ok(m) = ragl_core::manifest::Manifest::open_checked(&dir, "fuzz", 1, None) {
        let _ = m.verify_files(&dir);
    }
    let toml = dir.join("c.toml");
    std::fs::write(&toml, data).unwrap();
    let _ = ragl_core::read::toml_file::<serde_json::Value>(&toml);
});
