//! The streaming readers on arbitrary bytes: documents (JSONL, TSV, SQuAD), passages and
//! run files return records or errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ragl_core::read::Input;
use ragl_corpus::document::{DocFormat, Documents};

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("ragl-fuzz-{}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let input = Input::File(path.clone());
    for format in [DocFormat::Jsonl, DocFormat::Tsv, DocFormat::Squad] {
        for skip in [false, true] {
            if let Ok(docs) = Documents::open(&input, format, skip) {
                for d in docs.take(1000) {
                    let _ = d;
                }
            }
        }
    }
    if let Ok(ps) = ragl_core::passage::Passages::open(&input, true) {
        for p in ps.take(1000) {
            let _ = p;
        }
    }
    let _ = ragl_core::run::read_run(&input);
    let _ = std::fs::remove_file(&path);
});
