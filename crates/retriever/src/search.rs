//! Queries → top-k passages.

use std::path::Path;

use burn::tensor::backend::Backend;
use ragl_core::run::{RunEntry, RunHit};
use ragl_index::Index;
use ragl_index::artifact::SearchMode;
use ragl_model::encode::{Encoder, EncoderSpec};

use crate::queries::Query;
use crate::{Error, Result};

/// An index with the query tower that belongs to it (none for BM25).
pub struct Retriever<B: Backend> {
    pub index: Index,
    pub query: Option<Encoder<B>>,
    pub batch_size: usize,
}

/// The encoder recorded in a dense index's manifest (how its passages were encoded).
pub fn recorded_encoder(index: &Index) -> Option<EncoderSpec> {
    EncoderSpec::from_manifest(&index.meta.encoder, false)
}

/// The query tower recorded in a dense index's manifest (the document tower's model when
/// the index was built without `--query-model`).
pub fn recorded_query_encoder(index: &Index) -> Option<EncoderSpec> {
    EncoderSpec::from_manifest(&index.meta.encoder, true)
}

impl<B: Backend> Retriever<B> {
    /// Pairs an open index with a query encoder, refusing an encoder of another dimension,
    /// or (unless `allow_foreign`) one whose weights are not the query tower the index was
    /// built for.
    pub fn new(
        index: Index,
        query: Option<(Encoder<B>, String)>,
        allow_foreign: bool,
    ) -> Result<Self> {
        let query = match (index.is_dense(), query) {
            (false, _) => None,
            (true, None) => {
                return Err(Error::Mismatch(format!(
                    "{} is a dense index: a query encoder is needed",
                    index.dir.display()
                )));
            }
            (true, Some((enc, fingerprint))) => {
                if enc.dim() != index.meta.dim {
                    return Err(Error::Mismatch(format!(
                        "the query encoder gives {}-d vectors, the index {} holds {}-d vectors",
                        enc.dim(),
                        index.dir.display(),
                        index.meta.dim
                    )));
                }
                let want = index.meta.query_fingerprint.as_deref();
                if !allow_foreign && want.is_some_and(|w| w != fingerprint) {
                    return Err(Error::Mismatch(format!(
                        "the query encoder (weights {}) is not the query tower index {} was built for ({}); pass the right model, or --allow-foreign-encoder to search anyway",
                        &fingerprint[..12.min(fingerprint.len())],
                        index.dir.display(),
                        &want.unwrap()[..12.min(want.unwrap().len())]
                    )));
                }
                Some(enc)
            }
        };
        Ok(Retriever {
            index,
            query,
            batch_size: 32,
        })
    }

    /// Opens `dir` and loads the query encoder it records (or `query_model` instead).
    pub fn open(
        dir: &Path,
        query_model: Option<EncoderSpec>,
        device: &B::Device,
        allow_foreign: bool,
    ) -> Result<Self> {
        let index = Index::open(dir)?;
        let enc = if index.is_dense() {
            let spec = match query_model.or_else(|| recorded_query_encoder(&index)) {
                Some(s) => s,
                None => {
                    return Err(Error::Mismatch(format!(
                        "{} records no encoder (built from vectors): give the query model",
                        dir.display()
                    )));
                }
            };
            let (enc, report) = spec.load::<B>(device)?;
            Some((enc, report.fingerprint))
        } else {
            None
        };
        Self::new(index, enc, allow_foreign)
    }

    /// Embeds query texts with the query tower.
    pub fn embed_queries(&self, texts: &[String]) -> Result<Vec<f32>> {
        let enc = self
            .query
            .as_ref()
            .expect("dense retriever has a query encoder");
        let pairs: Vec<(String, Option<String>)> =
            texts.iter().map(|t| (t.clone(), None)).collect();
        Ok(enc.embed(&pairs, self.batch_size)?.data)
    }

    /// Top-k passages of each query, best first.
    pub fn retrieve(&self, queries: &[Query], k: usize, mode: SearchMode) -> Result<Vec<RunEntry>> {
        let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
        let hits = if self.index.is_dense() {
            let v = self.embed_queries(&texts)?;
            self.index.search_vectors(&v, k, mode)?
        } else {
            self.index.search_text(&texts, k)?
        };
        Ok(queries
            .iter()
            .zip(hits)
            .map(|(q, hs)| RunEntry {
                qid: q.qid.clone(),
                question: Some(q.text.clone()),
                hits: hs
                    .into_iter()
                    .map(|h| RunHit {
                        id: self.index.ids[h.row as usize].clone(),
                        score: h.score,
                    })
                    .collect(),
            })
            .collect())
    }
}
