//! Writing indexes: resumable chunked builds, shards, merges.
//!
//! A dense build embeds the passages in fixed chunks of rows. Each finished chunk is written
//! atomically to `OUT.partial/` next to a `build.json` that records what is being built; a
//! build that is killed and started again with the same inputs skips the chunks it already
//! has, and since chunk boundaries are fixed, the result is identical to an uninterrupted
//! build. Only then are the chunks assembled into a staging directory, the HNSW graph built,
//! the manifest written, and the directory renamed into place.
//!
//! `--shard i/n` builds rows `[i·N/n, (i+1)·N/n)` of an N-passage corpus as an exact index
//! of its own; [`merge`] concatenates all n shards in order into one index of any kind.
//! Memory during a shard build is bounded by one chunk, whatever the corpus size.

use std::path::{Path, PathBuf};

use ragl_core::Error as CoreError;
use ragl_core::manifest::Manifest;
use ragl_core::progress::Progress;
use serde::{Deserialize, Serialize};

use crate::artifact::{FORMAT_VERSION, IndexConfig, IndexMeta, KIND, ShardInfo, read_meta};
use crate::bm25::{BM25_FILE, Bm25};
use crate::hnsw::{HNSW_FILE, Hnsw};
use crate::store::{IDS_FILE, VECTORS_FILE, VectorWriter, Vectors, write_ids};
use crate::{Error, Result};

/// Stages reported to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Rows embedded (including rows found already done when resuming).
    Embed,
    /// Rows inserted into the HNSW graph.
    Graph,
}

/// Everything that determines the content of a build; a partial build is resumed only
/// when this is identical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSpec {
    pub meta: IndexMeta,
    pub model_fingerprint: Option<String>,
    /// Rows per resumable chunk.
    pub chunk_rows: usize,
}

/// Rows `[lo, hi)` of `total` that shard `i` of `n` holds.
pub fn shard_rows(i: usize, n: usize, total: usize) -> (usize, usize) {
    (i * total / n, (i + 1) * total / n)
}

/// SHA-256 of a file (the corpus identity recorded in the manifest).
pub fn source_hash(path: &Path) -> Result<String> {
    Ok(ragl_core::manifest::sha256_file(path)?)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Core(CoreError::io(path, e))
}

fn partial_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{name}.partial"))
}

fn chunk_paths(dir: &Path, c: usize) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("chunk-{c:06}.f32")),
        dir.join(format!("chunk-{c:06}.ids")),
    )
}

/// What a build did.
#[derive(Debug, Clone, Default)]
pub struct BuildSummary {
    pub rows: usize,
    /// Rows whose chunks were found complete from an earlier, interrupted run.
    pub resumed_rows: usize,
    pub manifest_sha256: String,
}

/// Builds a dense index at `out` from `(id, item)` records, `embed` turning a chunk of items
/// into `[len, dim]` f32 rows. `rows` is the number of records the source yields in total
/// (after skipping `meta.shard`'s leading rows, only the shard's rows are read).
pub fn build_dense<T>(
    out: &Path,
    spec: &BuildSpec,
    source: impl Iterator<Item = Result<(String, T)>>,
    rows: usize,
    mut embed: impl FnMut(&[T], &mut dyn FnMut(usize)) -> Result<Vec<f32>>,
    threads: usize,
    mut progress: impl FnMut(Stage, Progress) + Send,
) -> Result<BuildSummary> {
    // One writer at a time: a second job aimed at the same output is refused.
    let _lock = ragl_core::lock::WriterLock::acquire(out)?;
    let (lo, hi) = match spec.meta.shard {
        Some(s) => shard_rows(s.index, s.count, rows),
        None => (0, rows),
    };
    let part = partial_dir(out);
    let spec_json = serde_json::to_vec_pretty(spec).expect("spec serialises");
    let spec_path = part.join("build.json");
    let resumable = std::fs::read(&spec_path).is_ok_and(|b| b == spec_json);
    if !resumable && part.exists() {
        std::fs::remove_dir_all(&part).map_err(io(&part))?;
    }
    std::fs::create_dir_all(&part).map_err(io(&part))?;
    ragl_core::atomic::write_bytes_atomic(&spec_path, &spec_json)?;

    let dim = spec.meta.dim;
    let chunk_rows = spec.chunk_rows.max(1);
    let n_chunks = (hi - lo).div_ceil(chunk_rows);
    let mut summary = BuildSummary::default();
    let mut source = source.skip(lo);
    let total = Some((hi - lo) as u64);
    for c in 0..n_chunks {
        let want = chunk_rows.min(hi - lo - c * chunk_rows);
        let (vp, ip) = chunk_paths(&part, c);
        if vp.exists() && ip.exists() {
            for _ in 0..want {
                source
                    .next()
                    .ok_or_else(|| Error::Mismatch("the source ended early".into()))??;
            }
            summary.resumed_rows += want;
        } else {
            let mut ids = Vec::with_capacity(want);
            let mut items = Vec::with_capacity(want);
            for _ in 0..want {
                let (id, item) = source.next().ok_or_else(|| {
                    Error::Mismatch("the source has fewer records than counted".into())
                })??;
                ids.push(id);
                items.push(item);
            }
            // The embedder reports rows as it finishes batches, so progress moves within
            // a chunk, not only at its end.
            let base = summary.rows as u64;
            let mut within = 0u64;
            let v = embed(&items, &mut |n| {
                within += n as u64;
                progress(
                    Stage::Embed,
                    Progress {
                        done: base + within,
                        total,
                    },
                );
            })?;
            if v.len() != want * dim {
                return Err(Error::Mismatch(format!(
                    "the encoder returned {} values for {want} passages of dimension {dim}",
                    v.len()
                )));
            }
            write_ids(&ip, &ids)?;
            let mut w = VectorWriter::create(&vp, dim)?;
            w.write(&v)?;
            w.finish()?;
        }
        summary.rows += want;
        progress(
            Stage::Embed,
            Progress {
                done: summary.rows as u64,
                total,
            },
        );
    }
    let parts: Vec<(PathBuf, PathBuf)> = (0..n_chunks).map(|c| chunk_paths(&part, c)).collect();
    summary.manifest_sha256 = assemble(out, spec, &parts, threads, &mut progress)?;
    std::fs::remove_dir_all(&part).map_err(io(&part))?;
    Ok(summary)
}

/// Concatenates `(vectors, ids)` part files into a new index at `out`, builds the HNSW graph
/// when the config asks for one, and publishes it. Returns the manifest's SHA-256.
fn assemble(
    out: &Path,
    spec: &BuildSpec,
    parts: &[(PathBuf, PathBuf)],
    threads: usize,
    progress: &mut (impl FnMut(Stage, Progress) + Send),
) -> Result<String> {
    let dim = spec.meta.dim;
    let staging = ragl_core::atomic::temp_path(out);
    let _staging = ragl_core::atomic::StagingGuard::new(&staging);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let mut w = VectorWriter::create(&staging.join(VECTORS_FILE), dim)?;
    let mut ids = Vec::new();
    for (vp, ip) in parts {
        let text = std::fs::read_to_string(ip).map_err(io(ip))?;
        ids.extend(text.lines().map(str::to_owned));
        w.append_file(vp)?;
    }
    let rows = w.finish()?;
    if rows != ids.len() {
        return Err(Error::Mismatch(format!(
            "{rows} vectors but {} ids",
            ids.len()
        )));
    }
    write_ids(&staging.join(IDS_FILE), &ids)?;
    let mut manifest = Manifest::new(KIND, FORMAT_VERSION);
    let mut files = vec![IDS_FILE, VECTORS_FILE];
    if let IndexConfig::Hnsw { metric, hnsw } = spec.meta.index {
        if hnsw.graph_only && hnsw.dtype == crate::Dtype::F32 {
            return Err(Error::Mismatch(
                "graph_only needs a quantised graph (f16 or i8): an f32 graph gains nothing from dropping vectors.f32".into(),
            ));
        }
        let v = Vectors::open(&staging.join(VECTORS_FILE), rows, dim)?;
        let total = Some(rows as u64);
        let g = Hnsw::build(v.as_slice(), dim, metric, &hnsw, threads, |done| {
            progress(
                Stage::Graph,
                Progress {
                    done: done as u64,
                    total,
                },
            )
        })?;
        g.save(&staging.join(HNSW_FILE))?;
        manifest.add_file(&staging, HNSW_FILE)?;
        if hnsw.graph_only {
            drop(v);
            let p = staging.join(VECTORS_FILE);
            std::fs::remove_file(&p).map_err(io(&p))?;
            files.retain(|f| *f != VECTORS_FILE);
        }
    }
    finish_manifest(manifest, &staging, out, spec, rows, &files)
}

fn finish_manifest(
    mut manifest: Manifest,
    staging: &Path,
    out: &Path,
    spec: &BuildSpec,
    rows: usize,
    files: &[&str],
) -> Result<String> {
    for f in files {
        manifest.add_file(staging, f)?;
    }
    manifest.config = serde_json::to_value(&spec.meta).expect("meta serialises");
    manifest.model_fingerprint = spec.model_fingerprint.clone();
    manifest.counts.insert("vectors".into(), rows as u64);
    manifest.write(staging)?;
    let digest =
        ragl_core::manifest::sha256_file(&staging.join(ragl_core::manifest::MANIFEST_FILE))?;
    ragl_core::atomic::publish_dir(staging, out)?;
    Ok(digest)
}

/// Builds a BM25 index from `(id, text)` records.
pub fn build_bm25(
    out: &Path,
    spec: &BuildSpec,
    source: impl Iterator<Item = Result<(String, String)>>,
) -> Result<BuildSummary> {
    // One writer at a time: a second job aimed at the same output is refused.
    let _lock = ragl_core::lock::WriterLock::acquire(out)?;
    let IndexConfig::Bm25 { bm25 } = spec.meta.index else {
        return Err(Error::Mismatch("build_bm25 needs a bm25 config".into()));
    };
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    for r in source {
        let (id, text) = r?;
        ids.push(id);
        texts.push(text);
    }
    let index = Bm25::build(bm25, texts.iter().map(String::as_str));
    let staging = ragl_core::atomic::temp_path(out);
    let _staging = ragl_core::atomic::StagingGuard::new(&staging);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    index.save(&staging.join(BM25_FILE))?;
    write_ids(&staging.join(IDS_FILE), &ids)?;
    let digest = finish_manifest(
        Manifest::new(KIND, FORMAT_VERSION),
        &staging,
        out,
        spec,
        ids.len(),
        &[IDS_FILE, BM25_FILE],
    )?;
    Ok(BuildSummary {
        rows: ids.len(),
        resumed_rows: 0,
        manifest_sha256: digest,
    })
}

/// Merges the shards `0..n` of one corpus (any order on the command line) into one index of
/// kind `config`.
pub fn merge(
    shards: &[PathBuf],
    out: &Path,
    config: IndexConfig,
    threads: usize,
    mut progress: impl FnMut(Stage, Progress) + Send,
) -> Result<BuildSummary> {
    // One writer at a time: a second job aimed at the same output is refused.
    let _lock = ragl_core::lock::WriterLock::acquire(out)?;
    if matches!(config, IndexConfig::Bm25 { .. }) {
        return Err(Error::Mismatch(
            "BM25 indexes are built whole, not merged".into(),
        ));
    }
    let mut metas = Vec::new();
    for s in shards {
        let (m, meta) = read_meta(s)?;
        m.verify_files(s)?;
        let Some(info) = meta.shard else {
            return Err(Error::Mismatch(format!(
                "{} is not a shard (built without --shard)",
                s.display()
            )));
        };
        metas.push((info, meta, m, s.clone()));
    }
    let Some(first) = metas.first() else {
        return Err(Error::Mismatch("no shards to merge".into()));
    };
    let n = first.0.count;
    let (m0, meta0) = (first.2.clone(), first.1.clone());
    metas.sort_by_key(|m| m.0.index);
    for (i, (info, meta, m, path)) in metas.iter().enumerate() {
        let same = IndexMeta {
            shard: None,
            ..meta.clone()
        } == IndexMeta {
            shard: None,
            ..meta0.clone()
        };
        if !same || m.model_fingerprint != m0.model_fingerprint || info.count != n {
            return Err(Error::Mismatch(format!(
                "{} was built from another corpus, encoder or shard count than {}",
                path.display(),
                metas[0].3.display()
            )));
        }
        if info.index != i {
            return Err(Error::Mismatch(format!(
                "shard {i} of {n} is missing (or given twice)"
            )));
        }
    }
    if metas.len() != n {
        return Err(Error::Mismatch(format!(
            "{} shards given, the corpus was split into {n}",
            metas.len()
        )));
    }
    let parts: Vec<(PathBuf, PathBuf)> = metas
        .iter()
        .map(|(_, _, _, p)| (p.join(VECTORS_FILE), p.join(IDS_FILE)))
        .collect();
    let mut meta = meta0;
    meta.shard = None;
    meta.index = config;
    let spec = BuildSpec {
        meta,
        model_fingerprint: m0.model_fingerprint.clone(),
        chunk_rows: 0,
    };
    let digest = assemble(out, &spec, &parts, threads, &mut progress)?;
    let rows = metas
        .iter()
        .map(|m| *m.2.counts.get("vectors").unwrap_or(&0) as usize)
        .sum();
    Ok(BuildSummary {
        rows,
        resumed_rows: 0,
        manifest_sha256: digest,
    })
}

/// Shard info for `--shard i/n` over a corpus of `rows` passages.
pub fn shard_info(i: usize, n: usize, rows: usize) -> ShardInfo {
    ShardInfo {
        index: i,
        count: n,
        first_row: shard_rows(i, n, rows).0,
    }
}

/// Builds an index of the vectors in a `.npy` file (`[rows, dim]` float32), with ids from
/// the `.ids` file beside it (one per line, as `ragl embed` writes them) or the row numbers
/// when there is none. Rows are streamed from the file through a block buffer, so a shard
/// build holds one chunk in memory whatever the size of the file.
pub fn build_from_npy(
    out: &Path,
    npy: &Path,
    config: IndexConfig,
    shard: Option<(usize, usize)>,
    chunk_rows: usize,
    threads: usize,
    progress: impl FnMut(Stage, Progress) + Send,
) -> Result<BuildSummary> {
    let mut reader = ragl_core::npy::NpyReader::open(npy)?;
    let (rows, dim) = (reader.rows, reader.cols);
    if rows == 0 || dim == 0 {
        return Err(Error::Mismatch(format!("{}: no vectors", npy.display())));
    }
    let ids = npy_ids(npy, rows)?;
    let meta = IndexMeta {
        index: config,
        dim,
        encoder: serde_json::Value::Null,
        query_fingerprint: None,
        source_sha256: ragl_core::manifest::sha256_file(npy)?,
        shard: shard.map(|(i, n)| shard_info(i, n, rows)),
    };
    let spec = BuildSpec {
        meta,
        model_fingerprint: None,
        chunk_rows,
    };
    let mut block: Vec<f32> = Vec::new();
    let mut at = 0usize;
    let source = ids.map(move |id| {
        let id = id?;
        if (at + 1) * dim > block.len() {
            block = reader.next_rows(4096)?;
            at = 0;
        }
        let v = block[at * dim..(at + 1) * dim].to_vec();
        at += 1;
        Ok((id, v))
    });
    build_dense(
        out,
        &spec,
        source,
        rows,
        |rows: &[Vec<f32>], _| Ok(rows.concat()),
        threads,
        progress,
    )
}

/// Builds a dense index of vectors already addressable in memory (`data`, `[rows, dim]`
/// row-major, typically a memory map: REALM's `block_emb` inside its checkpoint). Rows are
/// copied a chunk at a time, so the index files are written without a second copy of
/// `data` in RAM.
pub fn build_from_slice(
    out: &Path,
    data: &[f32],
    ids: impl Iterator<Item = Result<String>>,
    spec: BuildSpec,
    threads: usize,
    progress: impl FnMut(Stage, Progress) + Send,
) -> Result<BuildSummary> {
    let dim = spec.meta.dim;
    if dim == 0 || data.is_empty() || !data.len().is_multiple_of(dim) {
        return Err(Error::Mismatch(format!(
            "{} values are not rows of {dim}",
            data.len()
        )));
    }
    let rows = data.len() / dim;
    let source = ids
        .enumerate()
        .map(|(i, id)| Ok((id?, data[i * dim..(i + 1) * dim].to_vec())));
    build_dense(
        out,
        &spec,
        source,
        rows,
        |rows: &[Vec<f32>], _| Ok(rows.concat()),
        threads,
        progress,
    )
}

/// The ids of a `.npy` file's rows: its `.ids` sibling, checked to have one per row, or
/// the row numbers.
fn npy_ids(npy: &Path, rows: usize) -> Result<Box<dyn Iterator<Item = Result<String>>>> {
    use ragl_core::read::{Input, Lines};
    let p = npy.with_extension("ids");
    if !p.exists() {
        return Ok(Box::new((0..rows).map(|i| Ok(i.to_string()))));
    }
    let input = Input::File(p.clone());
    let n = Lines::open(&input)?.count();
    if n != rows {
        return Err(Error::Mismatch(format!(
            "{}: {n} ids for {rows} vectors",
            p.display()
        )));
    }
    Ok(Box::new(
        Lines::open(&input)?.map(|l| l.map(|l| l.text).map_err(Error::from)),
    ))
}
