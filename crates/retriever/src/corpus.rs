//! Corpus → index: passages are streamed, embedded by the document tower in resumable
//! chunks (or indexed lexically for BM25), and written as an index artifact.

use std::path::Path;

use burn::tensor::backend::Backend;
use ragl_core::passage::{self, Passage, Passages};
use ragl_core::progress::Progress;
use ragl_core::read::Input;
use ragl_index::artifact::{IndexConfig, IndexMeta};
use ragl_index::build::{
    BuildSpec, BuildSummary, Stage, build_bm25, build_dense, shard_info, source_hash,
};
use ragl_model::encode::{Encoder, EncoderSpec};

use crate::{Error, Result};

/// What to build.
pub struct CorpusBuild<'a> {
    pub passages: &'a Path,
    pub out: &'a Path,
    pub config: IndexConfig,
    /// `Some((i, n))` builds shard i of n.
    pub shard: Option<(usize, usize)>,
    pub chunk_rows: usize,
    pub batch_size: usize,
    pub skip_invalid: bool,
    /// Threads inserting into an HNSW graph (1 = reproducible graph).
    pub graph_threads: usize,
}

/// The document tower and what identifies the pair of towers.
pub struct DocTower<'a, B: Backend> {
    pub encoder: &'a Encoder<B>,
    pub spec: &'a EncoderSpec,
    pub fingerprint: String,
    pub query_fingerprint: String,
    /// The query tower's directory when it is not the document tower (recorded so that
    /// queries are encoded by it without naming it again).
    pub query_model: Option<std::path::PathBuf>,
}

fn records(
    passages: &Path,
    skip_invalid: bool,
) -> Result<impl Iterator<Item = ragl_index::Result<(String, Passage)>>> {
    let it = Passages::open(&Input::File(passages.to_path_buf()), skip_invalid)?;
    Ok(it.map(|p| {
        p.map(|p| (p.id.clone(), p))
            .map_err(ragl_index::Error::from)
    }))
}

fn count(passages: &Path, skip_invalid: bool) -> Result<usize> {
    let input = Input::File(passages.to_path_buf());
    let n = if skip_invalid {
        // Only valid passages become rows; counting them needs a parse.
        let mut n = 0;
        for p in Passages::open(&input, true)? {
            p?;
            n += 1;
        }
        n
    } else {
        passage::count(&input)?.unwrap_or(0) as usize
    };
    if n == 0 {
        return Err(ragl_core::Error::format(passages, 1, "no passages").into());
    }
    Ok(n)
}

/// Builds a dense index of `b.passages` with the document tower.
pub fn build_dense_index<B: Backend>(
    b: &CorpusBuild,
    tower: &DocTower<B>,
    progress: impl FnMut(Stage, Progress) + Send,
) -> Result<BuildSummary> {
    let rows = count(b.passages, b.skip_invalid)?;
    let meta = IndexMeta {
        index: b.config,
        dim: tower.encoder.dim(),
        encoder: {
            let mut v = serde_json::to_value(tower.spec).expect("spec serialises");
            if let Some(q) = &tower.query_model {
                let q = std::fs::canonicalize(q).unwrap_or(q.clone());
                v["query_model"] = serde_json::json!(q);
            }
            v
        },
        query_fingerprint: Some(tower.query_fingerprint.clone()),
        source_sha256: source_hash(b.passages)?,
        shard: b.shard.map(|(i, n)| shard_info(i, n, rows)),
    };
    let spec = BuildSpec {
        meta,
        model_fingerprint: Some(tower.fingerprint.clone()),
        chunk_rows: b.chunk_rows,
    };
    let source = records(b.passages, b.skip_invalid)?;
    let summary = build_dense(
        b.out,
        &spec,
        source,
        rows,
        |items: &[Passage], tick: &mut dyn FnMut(usize)| {
            let pairs: Vec<(String, Option<String>)> =
                items.iter().map(Passage::encoder_pair).collect();
            tower
                .encoder
                .embed_with(&pairs, b.batch_size, tick)
                .map(|e| e.data)
                .map_err(|e| ragl_index::Error::Mismatch(e.to_string()))
        },
        b.graph_threads,
        progress,
    )?;
    Ok(summary)
}

/// Builds a BM25 index of `b.passages` (title and text are both indexed).
pub fn build_bm25_index(b: &CorpusBuild) -> Result<BuildSummary> {
    if b.shard.is_some() {
        return Err(Error::Mismatch(
            "BM25 indexes are built whole: drop --shard".into(),
        ));
    }
    // An empty corpus is a mistake, as for a dense index.
    count(b.passages, b.skip_invalid)?;
    let meta = IndexMeta {
        index: b.config,
        dim: 0,
        encoder: serde_json::Value::Null,
        query_fingerprint: None,
        source_sha256: source_hash(b.passages)?,
        shard: None,
    };
    let spec = BuildSpec {
        meta,
        model_fingerprint: None,
        chunk_rows: 0,
    };
    let source = records(b.passages, b.skip_invalid)?.map(|r| {
        r.map(|(id, p)| {
            let text = match p.title {
                Some(t) if !t.is_empty() => format!("{t}\n{}", p.text),
                _ => p.text,
            };
            (id, text)
        })
    });
    Ok(build_bm25(b.out, &spec, source)?)
}
