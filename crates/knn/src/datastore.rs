//! The datastore: for every target token of a parallel corpus, the decoder state that the
//! model computes just before predicting it (teacher forcing; the input of the output
//! projection) is a key, and the token is its value.
//!
//! Layout: `manifest.json` (kind `knn-datastore`, the model fingerprint, counts),
//! `values.u32` (little-endian token ids, one per key) and `index/`, a ragl index artifact
//! (L2; HNSW by default, or exact) over the keys, whose ids are `sentence:position`. The
//! index is built by `ragl_index::build`, so a killed build resumes from its last complete
//! chunk and ends identical to an uninterrupted one. A datastore made by another model is
//! refused when opened for decoding.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use ragl_core::manifest::Manifest;
use ragl_core::progress::Progress;
use ragl_index::artifact::{IndexConfig, IndexMeta};
use ragl_index::build::{BuildSpec, Stage};
use ragl_index::{Index, Metric};
use ragl_mt::checkpoint::MtModel;
use ragl_mt::data::{self, Pair};
use ragl_mt::train::tensors;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const KIND: &str = "knn-datastore";
pub const FORMAT_VERSION: u32 = 1;
pub const VALUES_FILE: &str = "values.u32";
pub const INDEX_DIR: &str = "index";

/// How a datastore is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildConfig {
    pub index: IndexConfig,
    /// Teacher-forcing batch size in target tokens.
    pub max_tokens: usize,
    /// Keys per resumable chunk.
    pub chunk_keys: usize,
    /// Use only the first `ceil(fraction × sentences)` sentence pairs (datastore-size
    /// curves).
    pub fraction: f64,
    /// Build only shard `i` of `n` (keys `[i·N/n, (i+1)·N/n)`) as an exact datastore;
    /// [`merge`] joins the shards.
    #[serde(default)]
    pub shard: Option<(usize, usize)>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            index: IndexConfig::Hnsw {
                metric: Metric::L2,
                hnsw: Default::default(),
            },
            max_tokens: 4096,
            chunk_keys: 65536,
            fraction: 1.0,
            shard: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    pub sentences: usize,
    pub keys: usize,
    pub resumed_keys: usize,
}

/// Builds a datastore at `out` from line-aligned `src`/`tgt` files with model `m`.
pub fn build<B: Backend>(
    m: &MtModel<B>,
    src: &Path,
    tgt: &Path,
    out: &Path,
    cfg: &BuildConfig,
    threads: usize,
    progress: impl FnMut(Stage, Progress) + Send,
) -> Result<BuildReport> {
    // One writer at a time: a second job aimed at the same output is refused.
    let _lock = ragl_core::lock::WriterLock::acquire(out)?;
    require_l2(&cfg.index, out, "kNN-MT")?;
    if cfg.shard.is_some() && !matches!(cfg.index, IndexConfig::Exact { .. }) {
        return Err(Error::Datastore {
            path: out.to_path_buf(),
            message: "a shard is built as an exact datastore; the final kind is chosen when the shards are merged".into(),
        });
    }
    let text = data::read_parallel(src, tgt)?;
    let keep = ((text.len() as f64 * cfg.fraction.clamp(0.0, 1.0)).ceil() as usize).min(text.len());
    let (pairs, _) = data::encode_pairs(&m.vocab, &text[..keep], usize::MAX)?;
    drop(text);
    let records: Vec<(u32, u32)> = pairs
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (0..=p.tgt.len() as u32).map(move |j| (i as u32, j)))
        .collect();
    let d = m.config.d_model;
    let source_sha256 = {
        let a = ragl_core::manifest::sha256_file(src)?;
        let b = ragl_core::manifest::sha256_file(tgt)?;
        format!("{a}+{b}")
    };
    let spec = BuildSpec {
        meta: IndexMeta {
            index: cfg.index,
            dim: d,
            encoder: serde_json::json!({
                "mt_model": m.dir,
                "fraction": cfg.fraction,
                "sentences": pairs.len(),
            }),
            query_fingerprint: Some(m.fingerprint.clone()),
            source_sha256: source_sha256.clone(),
            shard: cfg
                .shard
                .map(|(i, n)| ragl_index::build::shard_info(i, n, records.len())),
        },
        model_fingerprint: Some(m.fingerprint.clone()),
        chunk_rows: cfg.chunk_keys,
    };
    std::fs::create_dir_all(out).map_err(|e| ragl_core::Error::io(out, e))?;
    // A manifest from an earlier build no longer describes what is being built.
    let _ = std::fs::remove_file(out.join(ragl_core::manifest::MANIFEST_FILE));
    let source = records
        .iter()
        .map(|&(i, j)| Ok((format!("{i}:{j}"), (i, j))));
    let device = m.model.embed.weight.device();
    let summary = ragl_index::build::build_dense(
        &out.join(INDEX_DIR),
        &spec,
        source,
        records.len(),
        |chunk: &[(u32, u32)], _| {
            Ok(teacher_force(
                &m.model,
                &pairs,
                chunk,
                cfg.max_tokens,
                d,
                &device,
            ))
        },
        threads,
        progress,
    )?;
    let (lo, hi) = match cfg.shard {
        Some((i, n)) => ragl_index::build::shard_rows(i, n, records.len()),
        None => (0, records.len()),
    };
    let mut values = Vec::with_capacity((hi - lo) * 4);
    for &(i, j) in &records[lo..hi] {
        let p = &pairs[i as usize];
        let v = p
            .tgt
            .get(j as usize)
            .copied()
            .unwrap_or(m.model.specials.eos);
        values.extend_from_slice(&v.to_le_bytes());
    }
    publish(
        out,
        &values,
        serde_json::json!({
            "src": src, "tgt": tgt, "source_sha256": source_sha256,
            "build": cfg, "dim": d,
        }),
        Some(m.fingerprint.clone()),
        &[
            ("keys", (hi - lo) as u64),
            ("sentences", pairs.len() as u64),
        ],
    )?;
    Ok(BuildReport {
        sentences: pairs.len(),
        keys: hi - lo,
        resumed_keys: summary.resumed_rows,
    })
}

/// Joins the shards `0..n` of one datastore (any order) into one datastore of kind `index`
/// at `out`: the keys through `ragl_index::build::merge`, the values concatenated in
/// shard order. Shards of different models or corpora are refused.
pub fn merge(
    shards: &[PathBuf],
    out: &Path,
    index: IndexConfig,
    threads: usize,
    progress: impl FnMut(Stage, Progress) + Send,
) -> Result<BuildReport> {
    // One writer at a time: a second job aimed at the same output is refused.
    let _lock = ragl_core::lock::WriterLock::acquire(out)?;
    let mut parts = Vec::with_capacity(shards.len());
    for s in shards {
        let m = Manifest::open_checked(s, KIND, FORMAT_VERSION, None)?;
        m.verify_files(s)?;
        let (_, meta) = ragl_index::artifact::read_meta(&s.join(INDEX_DIR))?;
        let Some(info) = meta.shard else {
            return Err(Error::Datastore {
                path: s.clone(),
                message: "not a shard (built without --shard)".into(),
            });
        };
        parts.push((info.index, m, s.clone()));
    }
    parts.sort_by_key(|p| p.0);
    let Some((_, first, _)) = parts.first() else {
        return Err(Error::Datastore {
            path: out.to_path_buf(),
            message: "no shards to merge".into(),
        });
    };
    for (_, m, s) in &parts {
        if m.model_fingerprint != first.model_fingerprint
            || m.config["source_sha256"] != first.config["source_sha256"]
        {
            return Err(Error::Datastore {
                path: s.clone(),
                message: "built by another model or from other text than the first shard".into(),
            });
        }
    }
    std::fs::create_dir_all(out).map_err(|e| ragl_core::Error::io(out, e))?;
    let _ = std::fs::remove_file(out.join(ragl_core::manifest::MANIFEST_FILE));
    let index_dirs: Vec<PathBuf> = parts.iter().map(|p| p.2.join(INDEX_DIR)).collect();
    // Checks that the shards are 0..n of one build, exactly once each.
    let summary =
        ragl_index::build::merge(&index_dirs, &out.join(INDEX_DIR), index, threads, progress)?;
    let mut values = Vec::with_capacity(summary.rows * 4);
    for (_, _, s) in &parts {
        let p = s.join(VALUES_FILE);
        values.extend(std::fs::read(&p).map_err(|e| ragl_core::Error::io(&p, e))?);
    }
    if values.len() != summary.rows * 4 {
        return Err(Error::Datastore {
            path: out.to_path_buf(),
            message: format!("{} keys but {} values", summary.rows, values.len() / 4),
        });
    }
    let first = &parts[0].1;
    let mut config = first.config.clone();
    config["build"]["shard"] = serde_json::Value::Null;
    config["build"]["index"] = serde_json::to_value(index).expect("config serialises");
    config["merged_shards"] = serde_json::json!(parts.len());
    let mut counts = vec![("keys", summary.rows as u64)];
    if let Some(n) = first.counts.get("sentences") {
        counts.push(("sentences", *n));
    }
    publish(
        out,
        &values,
        config,
        first.model_fingerprint.clone(),
        &counts,
    )?;
    Ok(BuildReport {
        sentences: *first.counts.get("sentences").unwrap_or(&0) as usize,
        keys: summary.rows,
        resumed_keys: 0,
    })
}

/// Refuses an index that is not searched by L2 distance (kNN-MT's and kNN-LM's `d_i`).
pub(crate) fn require_l2(index: &IndexConfig, out: &Path, what: &str) -> Result<()> {
    if matches!(index.metric(), Some(Metric::L2)) {
        return Ok(());
    }
    Err(Error::Datastore {
        path: out.to_path_buf(),
        message: format!(
            "{what} datastores are searched by L2 distance (exact or hnsw, metric l2)"
        ),
    })
}

/// Writes a datastore's `values.u32` (little-endian bytes) and its manifest, which lists the
/// index's files through `index/`'s own manifest and is written last: a datastore without
/// one is incomplete.
pub(crate) fn publish(
    out: &Path,
    values: &[u8],
    config: serde_json::Value,
    fingerprint: Option<String>,
    counts: &[(&str, u64)],
) -> Result<()> {
    ragl_core::atomic::write_bytes_atomic(&out.join(VALUES_FILE), values)?;
    let mut manifest = Manifest::new(KIND, FORMAT_VERSION);
    manifest.config = config;
    manifest.model_fingerprint = fingerprint;
    for (k, v) in counts {
        manifest.counts.insert((*k).into(), *v);
    }
    manifest.add_file(out, VALUES_FILE)?;
    manifest.write(out)?;
    Ok(())
}

/// Decoder states for the `(sentence, position)` records of one chunk, row-major.
fn teacher_force<B: Backend>(
    model: &ragl_mt::model::Seq2Seq<B>,
    pairs: &[Pair],
    chunk: &[(u32, u32)],
    max_tokens: usize,
    d: usize,
    device: &B::Device,
) -> Vec<f32> {
    let mut sents: Vec<usize> = chunk.iter().map(|&(i, _)| i as usize).collect();
    sents.dedup();
    let local: Vec<Pair> = sents.iter().map(|&i| pairs[i].clone()).collect();
    let batches = data::batches_by_tokens(&local, max_tokens);
    // Hidden states per local sentence: (tgt + 1) rows of d.
    let mut states: Vec<Vec<f32>> = vec![Vec::new(); local.len()];
    // One batch per worker thread: burn-flex keeps one batch's work on about one core.
    use rayon::prelude::*;
    let outs: Vec<(usize, Vec<f32>)> = batches
        .par_iter()
        .map(|idx| {
            let b = data::pad_batch(&local, idx, &model.specials);
            let (src, tin, _) = tensors::<B>(&b, device);
            let (mem, pad) = model.encode(src);
            let h = model.decode_hidden(mem, pad, tin);
            (
                b.tgt_len,
                h.into_data().convert::<f32>().to_vec().expect("f32"),
            )
        })
        .collect();
    for (idx, (tgt_len, flat)) in batches.iter().zip(outs) {
        for (r, &li) in idx.iter().enumerate() {
            let n = local[li].tgt.len() + 1;
            let start = r * tgt_len * d;
            states[li] = flat[start..start + n * d].to_vec();
        }
    }
    let mut out = Vec::with_capacity(chunk.len() * d);
    let mut li = 0;
    for (k, &(i, j)) in chunk.iter().enumerate() {
        if k > 0 && chunk[k - 1].0 != i {
            li += 1;
        }
        let j = j as usize;
        out.extend_from_slice(&states[li][j * d..(j + 1) * d]);
    }
    out
}

/// An opened datastore.
pub struct Datastore {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub values: Vec<u32>,
    pub index: Index,
}

impl Datastore {
    /// Opens `dir`, refusing it when it was built by a model other than `fingerprint`.
    pub fn open(dir: &Path, fingerprint: Option<&str>) -> Result<Datastore> {
        let manifest = Manifest::open_checked(dir, KIND, FORMAT_VERSION, fingerprint)?;
        manifest.verify_files(dir)?;
        let path = dir.join(VALUES_FILE);
        let bytes = std::fs::read(&path).map_err(|e| ragl_core::Error::io(&path, e))?;
        let values: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let index = Index::open(&dir.join(INDEX_DIR))?;
        if index.len() != values.len() {
            return Err(Error::Datastore {
                path: dir.to_path_buf(),
                message: format!("{} keys but {} values", index.len(), values.len()),
            });
        }
        Ok(Datastore {
            dir: dir.to_path_buf(),
            manifest,
            values,
            index,
        })
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
