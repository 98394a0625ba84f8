//! End to end on a tiny model trained here: a datastore over the training pairs, opened and
//! refused by fingerprint, and kNN-MT with λ = 1, k = 1 reproducing the training targets
//! (each decoding state finds its own teacher-forced key at distance ~0).

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use ragl_index::Metric;
use ragl_index::artifact::IndexConfig;
use ragl_knn::KnnHook;
use ragl_knn::combiner::KnnMt;
use ragl_knn::datastore::{self, BuildConfig, Datastore};
use ragl_mt::beam::{BeamConfig, translate};
use ragl_mt::train::{RunConfig, train};
use ragl_testkit::mt::{DE, EN};

fn tiny_model(dir: &Path, seed: u64) -> std::path::PathBuf {
    let (s, t) = ragl_testkit::mt::write_pair(dir, "t");
    let text = ragl_testkit::mt::TinyMt {
        seed: Some(seed),
        ..Default::default()
    }
    .toml(&s, &t);
    let p = dir.join("c.toml");
    std::fs::write(&p, text).unwrap();
    let cfg = RunConfig::from_toml(&p).unwrap();
    let run = dir.join(format!("run{seed}"));
    train::<Autodiff<Flex>>(&cfg, &run, &Default::default(), 1, |_| {}).unwrap();
    run
}

#[test]
fn datastore_reproduces_its_targets_and_refuses_other_models() {
    let d = tempfile::tempdir().unwrap();
    let run = tiny_model(d.path(), 1);
    let m = ragl_mt::checkpoint::load::<Flex>(&run, &Default::default()).unwrap();
    let cfg = BuildConfig {
        index: IndexConfig::Exact { metric: Metric::L2 },
        chunk_keys: 5, // several chunks, one sentence split across two
        ..BuildConfig::default()
    };
    let out = d.path().join("ds");
    let r = datastore::build(
        &m,
        &d.path().join("t.de"),
        &d.path().join("t.en"),
        &out,
        &cfg,
        1,
        |_, _| {},
    )
    .unwrap();
    let keys: usize = EN
        .iter()
        .map(|t| m.vocab.encode(t).unwrap().len() + 1)
        .sum();
    assert_eq!((r.sentences, r.keys), (4, keys));

    let ds = Datastore::open(&out, Some(&m.fingerprint)).unwrap();
    assert_eq!(ds.len(), keys);
    let mut hook = KnnHook::new(
        &ds,
        1,
        KnnMt {
            lambda: 1.0,
            temperature: 10.0,
        },
    );
    let got = translate(&m, &DE, &BeamConfig::default(), &mut hook).unwrap();
    assert_eq!(got, EN.iter().map(|s| s.to_string()).collect::<Vec<_>>());

    // Rebuilding gives the same index, byte for byte.
    let before = std::fs::read(out.join("index/manifest.json")).unwrap();
    datastore::build(
        &m,
        &d.path().join("t.de"),
        &d.path().join("t.en"),
        &out,
        &cfg,
        1,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(
        std::fs::read(out.join("index/manifest.json")).unwrap(),
        before
    );

    // Another model's datastore is refused.
    let other = tiny_model(d.path(), 2);
    let m2 = ragl_mt::checkpoint::load::<Flex>(&other, &Default::default()).unwrap();
    assert_ne!(m2.fingerprint, m.fingerprint);
    let e = Datastore::open(&out, Some(&m2.fingerprint))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("was made by model"), "{e}");
}

#[test]
fn misaligned_parallel_files_are_refused_with_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let run = tiny_model(d.path(), 1);
    let m = ragl_mt::checkpoint::load::<Flex>(&run, &Default::default()).unwrap();
    let (s, t) = (d.path().join("x.de"), d.path().join("x.en"));
    std::fs::write(&s, "ein hund\nzwei hunde\n").unwrap();
    std::fs::write(&t, "a dog\n").unwrap();
    let e = datastore::build(
        &m,
        &s,
        &t,
        &d.path().join("ds"),
        &BuildConfig::default(),
        1,
        |_, _| {},
    )
    .err()
    .unwrap();
    assert!(e.is_bad_input());
    assert!(e.to_string().contains("x.en:2"), "{e}");
}
