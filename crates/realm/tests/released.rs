//! Released-REALM directories the tests write themselves (ragl-testkit's `realm`: the
//! checkpoints' names in a torch.save file, `block_emb` inside, `block_records.npy` beside
//! it, random weights): an open-QA system loads, retrieval is exact inner-product search
//! over `block_emb` with the embedder's vector, the answer is a span of a retrieved block's
//! text, the blocks import as an index whose query tower is the embedder, the pretraining
//! encoder loads as a reader, and broken directories are refused with one clear error each.
//! Agreement with transformers itself is scripts/reference/realm_parity.py (it needs torch;
//! the numbers are in docs/RESULTS.md).

use std::path::Path;

use burn::backend::Flex;
use ragl_realm::released::Released;
use ragl_testkit::hf::write_bytes_npy;
use ragl_testkit::realm::{BLOCKS, Layout, PROJ};

type B = Flex;

fn write_realm(dir: &Path, layout: Layout) {
    ragl_testkit::realm::write_realm(dir, layout, 5);
}

#[test]
fn answers_with_a_span_of_a_block_found_by_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    write_realm(dir.path(), Layout::OpenQa);
    let m = Released::<B>::open(dir.path(), &Default::default()).unwrap();
    assert_eq!((m.k, m.blocks.rows, m.blocks.dim), (3, BLOCKS.len(), PROJ));
    let question = "who was king in 1066";
    let (_, q) = m.embed_question(question).unwrap();
    // Exact inner-product top 3 by hand.
    let e = m.blocks.as_f32();
    let mut scored: Vec<(u32, f32)> = (0..BLOCKS.len())
        .map(|r| {
            let s = (0..PROJ).map(|j| e[r * PROJ + j] * q[j]).sum();
            (r as u32, s)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let a = m.answer(question).unwrap();
    let ids: Vec<u32> = a.retrieved.iter().map(|r| r.0).collect();
    assert_eq!(ids, scored[..3].iter().map(|r| r.0).collect::<Vec<_>>());
    for (got, want) in a.retrieved.iter().zip(&scored) {
        assert!((got.1 - want.1).abs() < 1e-4);
    }
    assert!(ids.contains(&a.block));
    assert!(
        a.end >= a.start && a.end - a.start < 3,
        "width ≤ max_span_width"
    );
    assert!(!a.text.is_empty());
    assert!(
        BLOCKS[a.block as usize].contains(&a.text),
        "{:?} is not in block {}",
        a.text,
        a.block
    );
}

#[test]
fn broken_directories_are_refused_with_one_clear_error() {
    let refuse = |dir: &Path, want: &str| {
        let e = Released::<B>::open(dir, &Default::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(want), "{want:?} not in: {e}");
    };
    let d = tempfile::tempdir().unwrap();
    write_realm(d.path(), Layout::OpenQa);
    std::fs::remove_file(d.path().join("block_records.npy")).unwrap();
    refuse(d.path(), "no block_records.npy");
    // Records that do not match the embeddings.
    write_bytes_npy(&d.path().join("block_records.npy"), &[b"one block"]);
    refuse(d.path(), "do not belong together");
    // A stand-alone embedder has no reader.
    let e = tempfile::tempdir().unwrap();
    write_realm(e.path(), Layout::Embedder);
    refuse(e.path(), "has no reader");
    // But it loads as an embedder.
    let l = ragl_model::realm::load::<B>(e.path(), &Default::default()).unwrap();
    assert!(l.reader.is_none());
}

#[test]
fn imported_blocks_are_an_index_whose_query_tower_is_the_embedder() {
    let dir = tempfile::tempdir().unwrap();
    write_realm(dir.path(), Layout::OpenQa);
    let out = tempfile::tempdir().unwrap();
    let idx = out.path().join("idx");
    let passages = out.path().join("blocks.jsonl");
    let spec = ragl_realm::released::import::ImportSpec {
        dir: dir.path(),
        out: &idx,
        passages: Some(&passages),
        config: ragl_index::IndexConfig::Exact {
            metric: ragl_index::Metric::Ip,
        },
        chunk_rows: 4,
        threads: 1,
    };
    let done = ragl_realm::released::import::import(&spec, |_, _| {}).unwrap();
    assert_eq!((done.rows, done.dim), (BLOCKS.len(), PROJ));
    // Passages: one block per line, id = row.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&passages)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), BLOCKS.len());
    for (i, (l, b)) in lines.iter().zip(BLOCKS).enumerate() {
        assert_eq!(l["id"], i.to_string());
        assert_eq!(l["text"], b);
    }
    // The recorded query tower is the REALM embedder: same vector, same blocks.
    let m = Released::<B>::open(dir.path(), &Default::default()).unwrap();
    let index = ragl_index::Index::open(&idx).unwrap();
    let spec = ragl_model::encode::EncoderSpec::from_manifest(&index.meta.encoder, true).unwrap();
    let (enc, report) = spec.load::<B>(&Default::default()).unwrap();
    assert_eq!(enc.dim(), PROJ);
    assert_eq!(Some(report.fingerprint), index.meta.query_fingerprint);
    for question in ["who was king in 1066", "what flows through egypt"] {
        let (_, want) = m.embed_question(question).unwrap();
        let got = enc.embed(&[(question.to_string(), None)], 8).unwrap().data;
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        let hits = index
            .search_vectors(&got, 3, ragl_index::artifact::SearchMode::Default)
            .unwrap();
        let rows: Vec<u32> = hits[0].iter().map(|h| h.row).collect();
        let want_rows: Vec<u32> = m
            .answer(question)
            .unwrap()
            .retrieved
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(rows, want_rows);
    }
}

#[test]
fn the_knowledge_augmented_encoder_is_a_reader_and_embedders_are_not() {
    let enc = tempfile::tempdir().unwrap();
    write_realm(enc.path(), Layout::Encoder);
    let c = ragl_model::checkpoint::load::<B>(enc.path(), &Default::default()).unwrap();
    assert!(c.mlm.is_some(), "the encoder's MLM head is kept");
    assert!(c.report.unused.is_empty(), "{:?}", c.report.unused);
    assert_eq!(c.config.hidden_act, "gelu_new");
    // It has no retriever.
    let e = ragl_model::realm::load::<B>(enc.path(), &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("has no retriever embedder"), "{e}");
    // A retriever is no BERT checkpoint.
    let emb = tempfile::tempdir().unwrap();
    write_realm(emb.path(), Layout::Embedder);
    let e = ragl_model::checkpoint::load::<B>(emb.path(), &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is a retriever"), "{e}");
    // A REALM embedder pools through its projection only.
    let mut spec = ragl_model::encode::EncoderSpec::resolve(emb.path(), None, None, 32);
    assert_eq!(spec.pooling, ragl_model::encode::Pooling::Cls);
    spec.pooling = ragl_model::encode::Pooling::Mean;
    let e = spec
        .load::<B>(&Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("pooling must be cls"), "{e}");
}

#[test]
fn import_without_block_records_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_realm(dir.path(), Layout::OpenQa);
    std::fs::remove_file(dir.path().join("block_records.npy")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let idx = out.path().join("idx");
    let spec = ragl_realm::released::import::ImportSpec {
        dir: dir.path(),
        out: &idx,
        passages: None,
        config: ragl_index::IndexConfig::Exact {
            metric: ragl_index::Metric::Ip,
        },
        chunk_rows: 4,
        threads: 1,
    };
    let e = ragl_realm::released::import::import(&spec, |_, _| {})
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no block_records.npy"), "{e}");
    assert!(!idx.exists(), "nothing written");
}
