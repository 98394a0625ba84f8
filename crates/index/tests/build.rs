//! Index artifacts end to end: chunked builds that resume after a failure, shards and
//! merges, HNSW recall against exact search, and refusal of damaged files.

use std::path::Path;

use ragl_index::artifact::{IndexConfig, IndexMeta, SearchMode};
use ragl_index::build::{BuildSpec, build_dense, merge, shard_info};
use ragl_index::hnsw::HnswConfig;
use ragl_index::{Error, Index, Metric};

const DIM: usize = 16;

/// Clustered unit vectors (deterministic, no rand dependency).
fn vectors(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9E3779B97F4A7C15);
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let centres: Vec<f32> = (0..20 * DIM).map(|_| next()).collect();
    let mut out = Vec::with_capacity(n * DIM);
    for i in 0..n {
        let c = &centres[(i % 20) * DIM..(i % 20 + 1) * DIM];
        let mut v: Vec<f32> = c.iter().map(|x| x + 0.3 * next()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        out.extend(v);
    }
    out
}

fn spec(config: IndexConfig, shard: Option<(usize, usize, usize)>) -> BuildSpec {
    BuildSpec {
        meta: IndexMeta {
            index: config,
            dim: DIM,
            encoder: serde_json::Value::Null,
            query_fingerprint: None,
            source_sha256: "test".into(),
            shard: shard.map(|(i, n, rows)| shard_info(i, n, rows)),
        },
        model_fingerprint: Some("model".into()),
        chunk_rows: 100,
    }
}

fn source(data: &[f32]) -> impl Iterator<Item = ragl_index::Result<(String, Vec<f32>)>> + '_ {
    data.chunks_exact(DIM)
        .enumerate()
        .map(|(i, v)| Ok((format!("p{i}"), v.to_vec())))
}

fn build(
    out: &Path,
    spec: &BuildSpec,
    data: &[f32],
    fail_at_chunk: Option<usize>,
) -> ragl_index::Result<String> {
    let mut chunk = 0;
    let s = build_dense(
        out,
        spec,
        source(data),
        data.len() / DIM,
        |rows: &[Vec<f32>], _| {
            chunk += 1;
            if Some(chunk) == fail_at_chunk {
                return Err(Error::Mismatch("simulated crash".into()));
            }
            Ok(rows.concat())
        },
        1,
        |_, _| {},
    )?;
    Ok(s.manifest_sha256)
}

#[test]
fn an_interrupted_build_resumes_to_the_same_index() {
    let d = tempfile::tempdir().unwrap();
    let data = vectors(950, 1);
    let s = spec(IndexConfig::Exact { metric: Metric::Ip }, None);
    let clean = build(&d.path().join("a"), &s, &data, None).unwrap();
    let out = d.path().join("b");
    assert!(build(&out, &s, &data, Some(4)).is_err());
    assert!(!out.exists(), "no index is published by a failed build");
    let resumed = build_dense(
        &out,
        &s,
        source(&data),
        950,
        |r: &[Vec<f32>], _| Ok(r.concat()),
        1,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(resumed.resumed_rows, 300, "three whole chunks were kept");
    assert_eq!(resumed.manifest_sha256, clean);
    assert!(!d.path().join("b.partial").exists());
}

#[test]
fn shards_merge_into_the_whole_and_hnsw_finds_the_exact_neighbours() {
    let d = tempfile::tempdir().unwrap();
    let data = vectors(2000, 2);
    let n = data.len() / DIM;
    let shards: Vec<_> = (0..3)
        .map(|i| {
            let p = d.path().join(format!("s{i}"));
            build(
                &p,
                &spec(IndexConfig::Exact { metric: Metric::Ip }, Some((i, 3, n))),
                &data,
                None,
            )
            .unwrap();
            p
        })
        .collect();
    let hnsw = IndexConfig::Hnsw {
        metric: Metric::Ip,
        hnsw: HnswConfig::default(),
    };
    let out = d.path().join("merged");
    // Any order on the command line; a missing shard is an error.
    assert!(merge(&shards[..2], &out, hnsw, 2, |_, _| {}).is_err());
    let rev: Vec<_> = shards.iter().rev().cloned().collect();
    merge(&rev, &out, hnsw, 2, |_, _| {}).unwrap();
    let idx = Index::open(&out).unwrap();
    assert_eq!(idx.len(), n);
    assert_eq!(idx.ids[1999], "p1999");
    assert_eq!(idx.vectors().unwrap().row(7), &data[7 * DIM..8 * DIM]);
    let q = &data[..200 * DIM];
    let exact = idx.search_vectors(q, 10, SearchMode::Exact).unwrap();
    let approx = idx.search_vectors(q, 10, SearchMode::Default).unwrap();
    let found: usize = exact
        .iter()
        .zip(&approx)
        .map(|(e, a)| {
            a.iter()
                .filter(|h| e.iter().any(|x| x.row == h.row))
                .count()
        })
        .sum();
    assert!(
        found as f64 / 2000.0 >= 0.95,
        "recall@10 {}",
        found as f64 / 2000.0
    );
    // A query's own vector is its best match, with score 1.
    assert_eq!(exact[5][0].row, 5);
    assert!((approx[5][0].score - 1.0).abs() < 1e-5);
    // Wrong dimension.
    assert!(matches!(
        idx.search_vectors(&[0.0; DIM + 1], 1, SearchMode::Default),
        Err(Error::Mismatch(_))
    ));
}

#[test]
fn damaged_files_are_refused_before_use() {
    let d = tempfile::tempdir().unwrap();
    let data = vectors(300, 3);
    let hnsw = IndexConfig::Hnsw {
        metric: Metric::L2,
        hnsw: HnswConfig::default(),
    };
    let out = d.path().join("h");
    build(&out, &spec(hnsw, None), &data, None).unwrap();
    Index::open(&out).unwrap();
    // A flipped byte in the graph: usearch would trust it; the hash check does not.
    let g = out.join("hnsw.usearch");
    let mut bytes = std::fs::read(&g).unwrap();
    bytes[100] ^= 0xFF;
    std::fs::write(&g, &bytes).unwrap();
    let e = Index::open(&out).err().unwrap();
    assert!(
        matches!(e, Error::Corrupt { .. }) && e.to_string().contains("hash"),
        "{e}"
    );
    // A truncated vector file.
    build(&out, &spec(hnsw, None), &data, None).unwrap();
    let v = out.join("vectors.f32");
    let bytes = std::fs::read(&v).unwrap();
    std::fs::write(&v, &bytes[..bytes.len() - 8]).unwrap();
    let e = Index::open(&out).err().unwrap();
    assert!(e.is_bad_input(), "{e}");
    // Not an index at all.
    let e = Index::open(d.path()).err().unwrap();
    assert!(e.to_string().contains("manifest.json"), "{e}");
}

#[test]
fn graph_only_f16_index_keeps_its_vectors_in_the_graph() {
    let d = tempfile::tempdir().unwrap();
    let n = 1500;
    let data = vectors(n, 11);
    let cfg = IndexConfig::Hnsw {
        metric: Metric::L2,
        hnsw: HnswConfig {
            dtype: ragl_index::Dtype::F16,
            graph_only: true,
            ..HnswConfig::default()
        },
    };
    let out = d.path().join("f16");
    build(&out, &spec(cfg, None), &data, None).unwrap();
    assert!(!out.join("vectors.f32").exists());
    let idx = Index::open(&out).unwrap();
    assert!(idx.vectors().is_none());
    let e = idx
        .search_vectors(&data[..DIM], 5, SearchMode::Exact)
        .err()
        .unwrap();
    assert!(e.to_string().contains("graph_only"), "{e}");

    // Against exact search over the f32 vectors: f16 rounding barely moves the neighbours,
    // and the scores are squared L2 distances up to f16 precision.
    let exact_cfg = IndexConfig::Exact { metric: Metric::L2 };
    let exact_dir = d.path().join("exact");
    build(&exact_dir, &spec(exact_cfg, None), &data, None).unwrap();
    let exact = Index::open(&exact_dir).unwrap();
    let q = &data[..100 * DIM];
    let want = exact.search_vectors(q, 10, SearchMode::Default).unwrap();
    let got = idx.search_vectors(q, 10, SearchMode::Default).unwrap();
    let mut found = 0;
    for (w, g) in want.iter().zip(&got) {
        found += g
            .iter()
            .filter(|h| w.iter().any(|x| x.row == h.row))
            .count();
        assert_eq!(g[0].row, w[0].row);
        assert!(
            (g[0].score - w[0].score).abs() < 1e-3,
            "{} {}",
            g[0].score,
            w[0].score
        );
    }
    assert!(found as f64 / 1000.0 > 0.9, "recall@10 {found}/1000");

    // An f32 graph without vectors.f32 is refused at build time.
    let bad = IndexConfig::Hnsw {
        metric: Metric::L2,
        hnsw: HnswConfig {
            graph_only: true,
            ..HnswConfig::default()
        },
    };
    let e = build(&d.path().join("bad"), &spec(bad, None), &data, None)
        .err()
        .unwrap();
    assert!(e.to_string().contains("quantised"), "{e}");
}

#[test]
fn progress_moves_with_each_batch_not_each_chunk() {
    let d = tempfile::tempdir().unwrap();
    let data = vectors(250, 5);
    let mut seen = Vec::new();
    build_dense(
        &d.path().join("i"),
        &spec(IndexConfig::Exact { metric: Metric::Ip }, None),
        source(&data),
        250,
        |rows: &[Vec<f32>], tick| {
            // An embedder working in batches of 10 rows.
            for b in rows.chunks(10) {
                tick(b.len());
            }
            Ok(rows.concat())
        },
        1,
        |_, p| seen.push(p.done),
    )
    .unwrap();
    // Chunks of 100 rows: 10 reports each, rising by 10, the last at the total.
    assert_eq!(seen[..3], [10, 20, 30]);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.iter().filter(|&&n| n == 250).count(), 2, "{seen:?}");
}
