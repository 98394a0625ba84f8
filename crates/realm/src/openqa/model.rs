//! Open-domain QA with a trained query tower over a fixed document index.
//!
//! A question is embedded by the query tower (pooling and normalisation as recorded in the
//! index, so that scores match what the index was built for); its top-k documents come
//! from the index; their stored vectors `d_z` give the retrieval scores `S_retr(z) = q·d_z`,
//! computed again here with gradient into the query tower; the reader reads
//! `[CLS] question [SEP] title [SEP] text [SEP]` for each; and the loss is the reader's
//! joint-softmax marginal likelihood (`ragl_reader::span::marginal_nll`). One reader
//! forward pass covers every document of every question of a batch.

use burn::prelude::*;
use ragl_model::bert::Bert;
use ragl_model::encode::{Pooling, embed_tower};
use ragl_model::realm::RealmProjection;
use ragl_model::tokenizer::Encoded;
use ragl_reader::span::{BestSpan, ReaderInput, SpanReader, best_span, marginal_nll};

/// The trained parts: the query tower and the reader (the document tower is frozen in the
/// index).
#[derive(Module, Debug)]
pub struct OpenQa<B: Backend> {
    pub query: Bert<B>,
    /// The query tower's projection when it starts from a REALM embedder
    /// (`realm-cc-news-pretrained-embedder`, the paper's fine-tuning start), trained with it.
    pub query_projection: Option<RealmProjection<B>>,
    pub reader: SpanReader<B>,
}

/// How the query tower turns token states into a vector: the index's encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryPooling {
    pub pooling: Pooling,
    pub normalize: bool,
    pub pad_id: u32,
}

/// One question after retrieval.
#[derive(Debug, Clone)]
pub struct Retrieved {
    /// The question as the query tower tokenises it.
    pub query: Encoded,
    /// The stored vectors of its k documents, `[k, dim]` row-major (empty: no retrieval
    /// score, as with BM25 or closed-book).
    pub doc_vectors: Vec<f32>,
    /// The reader's view of each document.
    pub inputs: Vec<ReaderInput>,
    /// Gold flags for every candidate span of every document, in order (empty when
    /// predicting).
    pub gold: Vec<bool>,
}

impl<B: Backend> OpenQa<B> {
    /// Query vectors `[b, dim]` (with gradient when `B` is an autodiff backend).
    pub fn embed_queries(&self, queries: &[&Encoded], p: QueryPooling) -> Tensor<B, 2> {
        let device = self.reader.start.weight.device();
        embed_tower(
            &self.query,
            self.query_projection.as_ref(),
            queries,
            p.pad_id,
            p.pooling,
            p.normalize,
            &device,
        )
    }

    /// Retrieval scores `q·d_z` of each question's documents, `[k]` each.
    fn doc_scores(&self, batch: &[&Retrieved], p: QueryPooling) -> Vec<Tensor<B, 1>> {
        let device = self.reader.start.weight.device();
        // BM25, closed-book and own-passage batches have no vectors: no query-tower pass.
        if batch.iter().all(|r| r.doc_vectors.is_empty()) {
            return batch
                .iter()
                .map(|r| Tensor::zeros([r.inputs.len()], &device))
                .collect();
        }
        let queries: Vec<&Encoded> = batch.iter().map(|r| &r.query).collect();
        let q = self.embed_queries(&queries, p);
        let d = q.dims()[1];
        batch
            .iter()
            .enumerate()
            .map(|(i, r)| {
                // Lexical retrieval (BM25) has no vectors: the reader alone ranks.
                if r.doc_vectors.is_empty() {
                    return Tensor::zeros([r.inputs.len()], &device);
                }
                let k = r.doc_vectors.len() / d;
                let docs = Tensor::<B, 2>::from_data(
                    TensorData::new(r.doc_vectors.clone(), [k, d]),
                    &device,
                );
                docs.matmul(q.clone().slice([i..i + 1, 0..d]).transpose())
                    .reshape([k])
            })
            .collect()
    }

    /// Mean `−log p(y|x)` over the questions of `batch` that have a gold span among their
    /// documents, and how many those were; `None` when none has.
    pub fn loss(&self, batch: &[Retrieved], p: QueryPooling) -> Option<(Tensor<B, 1>, usize)> {
        let with_gold: Vec<&Retrieved> = batch.iter().filter(|r| r.gold.contains(&true)).collect();
        if with_gold.is_empty() {
            return None;
        }
        let owned = with_gold;
        let scores = self.doc_scores(&owned, p);
        let flat: Vec<&ReaderInput> = owned.iter().flat_map(|r| r.inputs.iter()).collect();
        let logits = self.reader.span_logits(&flat)?;
        let mut total: Option<Tensor<B, 1>> = None;
        let mut lo = 0;
        for (r, s) in owned.iter().zip(scores) {
            let counts: Vec<usize> = r.inputs.iter().map(|i| i.spans.len()).collect();
            let m: usize = counts.iter().sum();
            let l = logits.clone().slice(lo..lo + m);
            lo += m;
            let nll = marginal_nll(l, &counts, &r.gold, s).expect("has a gold span");
            total = Some(match total {
                Some(t) => t + nll,
                None => nll,
            });
        }
        let n = owned.len();
        Some((total.expect("at least one") / n as f32, n))
    }

    /// The best span of each question across its documents, by `S_retr + S_read`.
    pub fn predict(&self, batch: &[Retrieved], p: QueryPooling) -> Vec<Option<BestSpan>> {
        let refs: Vec<&Retrieved> = batch.iter().collect();
        let scores: Vec<Vec<f32>> = self
            .doc_scores(&refs, p)
            .into_iter()
            .map(|t| t.into_data().convert::<f32>().to_vec().expect("f32"))
            .collect();
        let flat: Vec<&ReaderInput> = batch.iter().flat_map(|r| r.inputs.iter()).collect();
        let logits: Vec<f32> = match self.reader.span_logits(&flat) {
            Some(t) => t.into_data().convert::<f32>().to_vec().expect("f32"),
            None => Vec::new(),
        };
        let mut lo = 0;
        batch
            .iter()
            .zip(&scores)
            .map(|(r, s)| {
                let m: usize = r.inputs.iter().map(|i| i.spans.len()).sum();
                let refs: Vec<&ReaderInput> = r.inputs.iter().collect();
                let out = best_span(&refs, &logits[lo..lo + m], s);
                lo += m;
                out
            })
            .collect()
    }
}

/// What [`retrieve`] needs besides the model: the index (its rows' stored vectors give
/// `d_z`), the passage of each index row, both tokenizers and the reader's settings.
pub struct RetrievalContext<'a> {
    pub index: &'a ragl_index::Index,
    /// `passages[row]` is the passage of index row `row`.
    pub passages: &'a [ragl_core::passage::Passage],
    pub query_tokenizer: &'a ragl_model::tokenizer::TextTokenizer,
    pub reader_tokenizer: &'a ragl_model::tokenizer::TextTokenizer,
    pub reader: &'a ragl_reader::span::SpanReaderConfig,
    pub k: usize,
}

/// Retrieves the top-k passages of each question with the model's current query tower (no
/// gradient) and prepares them for [`OpenQa::loss`] or [`OpenQa::predict`]; `answers`
/// (one per question) fill the gold flags. Also returns each question's retrieved rows.
///
/// With a BM25 index the documents come from the lexical search and carry no retrieval
/// score (the reader alone ranks them). With `k = 0` the model is closed-book: its only
/// document is the question itself (the one text it has; no row is retrieved), which is
/// what an extractive reader can answer without retrieval.
pub fn retrieve<B: Backend>(
    model: &OpenQa<B>,
    p: QueryPooling,
    ctx: &RetrievalContext,
    questions: &[&str],
    answers: Option<&[ragl_reader::span::AnswerMatcher]>,
) -> crate::Result<(Vec<Retrieved>, Vec<Vec<u32>>)> {
    let items: Vec<(String, Option<String>)> =
        questions.iter().map(|q| (q.to_string(), None)).collect();
    let encs = ctx.query_tokenizer.encode(&items)?;
    let (hits, vectors) = if ctx.k == 0 {
        (vec![Vec::new(); questions.len()], None)
    } else if ctx.index.is_dense() {
        let vectors = ctx.index.vectors().ok_or_else(|| {
            crate::Error::Mismatch(format!(
                "{}: open-QA reads the stored document vectors; use an exact or f32 HNSW index",
                ctx.index.dir.display()
            ))
        })?;
        let refs: Vec<&Encoded> = encs.iter().collect();
        let q: Vec<f32> = model
            .embed_queries(&refs, p)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32");
        let hits =
            ctx.index
                .search_vectors(&q, ctx.k, ragl_index::artifact::SearchMode::Default)?;
        (hits, Some(vectors))
    } else {
        let texts: Vec<String> = questions.iter().map(|q| q.to_string()).collect();
        (ctx.index.search_text(&texts, ctx.k)?, None)
    };
    let mut out = Vec::with_capacity(questions.len());
    let mut rows = Vec::with_capacity(questions.len());
    for (i, (enc, hs)) in encs.into_iter().zip(hits).enumerate() {
        let dim = vectors.map_or(0, |v| v.dim());
        let mut doc_vectors = Vec::with_capacity(hs.len() * dim);
        let mut inputs = Vec::with_capacity(hs.len().max(1));
        let mut gold = Vec::new();
        let docs: Vec<(Option<&str>, &str)> = if ctx.k == 0 {
            vec![(None, questions[i])]
        } else {
            hs.iter()
                .map(|h| {
                    let passage = &ctx.passages[h.row as usize];
                    (passage.title.as_deref(), passage.text.as_str())
                })
                .collect()
        };
        for h in &hs {
            if let Some(v) = vectors {
                doc_vectors.extend_from_slice(v.row(h.row as usize));
            }
        }
        for (title, text) in docs {
            let (input, flags) =
                reader_input(ctx, questions[i], title, text, answers.map(|a| &a[i]))?;
            gold.extend(flags);
            inputs.push(input);
        }
        rows.push(hs.iter().map(|h| h.row).collect());
        out.push(Retrieved {
            query: enc,
            doc_vectors,
            inputs,
            gold,
        });
    }
    Ok((out, rows))
}

/// The reader's view of one document, and the gold flags of its candidate spans (empty
/// without an answer).
fn reader_input(
    ctx: &RetrievalContext,
    question: &str,
    title: Option<&str>,
    text: &str,
    answer: Option<&ragl_reader::span::AnswerMatcher>,
) -> crate::Result<(ReaderInput, Vec<bool>)> {
    let input =
        ragl_reader::span::prepare(ctx.reader_tokenizer, ctx.reader, question, title, text)?;
    let gold = answer.map_or_else(Vec::new, |a| a.gold_spans(&input, text));
    Ok((input, gold))
}

/// Each question with its own passage as its only document (the passage it was written
/// from: `(title, text)`), for training the reader on reading comprehension before it
/// reads retrieved documents, as DPR trains its reader on gold passages. No document
/// vector: the reader alone is trained, at a k-th of the cost of k retrieved documents.
pub fn own_passages(
    ctx: &RetrievalContext,
    questions: &[&str],
    passages: &[(Option<&str>, &str)],
    answers: &[ragl_reader::span::AnswerMatcher],
) -> crate::Result<Vec<Retrieved>> {
    (0..questions.len())
        .map(|i| {
            let (title, text) = passages[i];
            let (input, gold) = reader_input(ctx, questions[i], title, text, Some(&answers[i]))?;
            Ok(Retrieved {
                // No document vector, so the query tower never reads it.
                query: Encoded {
                    ids: Vec::new(),
                    type_ids: Vec::new(),
                    truncated: false,
                },
                doc_vectors: Vec::new(),
                inputs: vec![input],
                gold,
            })
        })
        .collect()
}
