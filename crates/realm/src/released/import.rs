//! A released REALM open-QA checkpoint's retrieval corpus as ragl artifacts: `block_emb` as
//! an index whose query tower is the checkpoint's embedder, and `block_records.npy` as a
//! passages file, so `ragl retrieve`, `ragl eval retrieval` and every other index consumer
//! work on REALM's 13.35M Wikipedia blocks.
//!
//! The embeddings are streamed from the checkpoint's memory map into the index a chunk at
//! a time (never a second in-RAM copy of 6.8 GB); block texts go out one line each. Row `i`
//! of `block_emb` is block `i` of the records, and both artifacts use `i` as the id.

use std::io::Write;
use std::path::{Path, PathBuf};

use ragl_core::progress::Progress;
use ragl_index::IndexConfig;
use ragl_index::artifact::IndexMeta;
use ragl_index::build::{BuildSummary, Stage};
use ragl_model::encode::{EncoderSpec, Pooling};
use ragl_model::realm::BlockEmb;

use crate::{Error, Result};

/// What to import and where.
pub struct ImportSpec<'a> {
    /// The `RealmForOpenQA` checkpoint directory.
    pub dir: &'a Path,
    /// The index directory to write.
    pub out: &'a Path,
    /// The passages JSONL to write (`{"id","text"}`, one block per line), if wanted.
    pub passages: Option<&'a Path>,
    /// The index kind (exact, or HNSW over the same vectors).
    pub config: IndexConfig,
    pub chunk_rows: usize,
    pub threads: usize,
}

/// What an import did.
pub struct Imported {
    pub rows: usize,
    pub dim: usize,
    pub index: BuildSummary,
    pub passages: Option<PathBuf>,
}

/// Imports `spec.dir`'s blocks. Passages are written first (a cheap pass that also proves
/// every record is there), then the index.
pub fn import(spec: &ImportSpec, progress: impl FnMut(Stage, Progress) + Send) -> Result<Imported> {
    let dir = spec.dir;
    let config = ragl_model::realm::read_config(dir)?;
    let weights = ragl_model::realm::weights_path(dir)?;
    let blocks = BlockEmb::open(&weights)?;
    let records_path = dir.join("block_records.npy");
    if !records_path.is_file() {
        return Err(Error::Mismatch(format!(
            "{}: no block_records.npy (the block texts RealmRetriever reads beside the checkpoint)",
            dir.display()
        )));
    }
    let records = ragl_core::npy_objects::open(&records_path)?;
    if records.len() != blocks.rows || blocks.dim != config.retriever_proj_size {
        return Err(Error::Mismatch(format!(
            "{}: block_emb is {} × {}, block_records.npy has {} blocks and the projection is {}-d: they do not belong together",
            dir.display(),
            blocks.rows,
            blocks.dim,
            records.len(),
            config.retriever_proj_size
        )));
    }
    if let Some(p) = spec.passages {
        ragl_core::atomic::write_atomic(p, |w| {
            for (i, r) in records.iter().enumerate() {
                let text = String::from_utf8_lossy(r);
                let line = serde_json::json!({"id": i.to_string(), "text": text});
                serde_json::to_writer(&mut *w, &line)?;
                w.write_all(b"\n")?;
            }
            Ok(())
        })?;
    }
    // The weights' SHA-256 identifies both the vectors and their query tower.
    let fingerprint = ragl_model::checkpoint::fingerprint(dir)?;
    let encoder = EncoderSpec::resolve(
        dir,
        Some(Pooling::Cls),
        Some(false),
        config.bert.max_position_embeddings,
    );
    let meta = IndexMeta {
        index: spec.config,
        dim: blocks.dim,
        encoder: serde_json::to_value(&encoder).expect("spec serialises"),
        query_fingerprint: Some(fingerprint.clone()),
        source_sha256: fingerprint.clone(),
        shard: None,
    };
    let ids = (0..blocks.rows).map(|i| Ok(i.to_string()));
    let build = ragl_index::build::BuildSpec {
        meta,
        model_fingerprint: Some(fingerprint),
        chunk_rows: spec.chunk_rows,
    };
    let index = ragl_index::build::build_from_slice(
        spec.out,
        blocks.as_f32(),
        ids,
        build,
        spec.threads,
        progress,
    )?;
    Ok(Imported {
        rows: blocks.rows,
        dim: blocks.dim,
        index,
        passages: spec.passages.map(Path::to_path_buf),
    })
}
