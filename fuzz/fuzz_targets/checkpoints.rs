//! The model files users hand ragl, on arbitrary bytes: a SentencePiece model (`.spm`, the
//! protobuf read by hand in `ragl_model::sentencepiece`), segmenting a few strings when it
//! parses, and a safetensors weights file (header, dtypes, sizes). Each returns its value or
//! an error, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.spm");
    if let Ok(sp) = ragl_model::sentencepiece::SentencePiece::from_bytes(path, data) {
        for text in ["", "  Ein Hund  läuft. ", "x\u{2581}y", "日本語 ⁇"] {
            if let Ok(pieces) = sp.encode_pieces(text) {
                let _ = sp.decode_pieces(&pieces);
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("ragl-fuzz-checkpoints-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let st = dir.join("model.safetensors");
    std::fs::write(&st, data).unwrap();
    if let Ok((mut w, _)) = ragl_model::weights::Weights::open(&st, &["model."], &[]) {
        let _ = w.take("shared.weight", &[4, 2]);
        let _ = w.finish();
    }
});
