//! REALM's objective for one batch: retrieve the top-k documents by MIPS (own passage
//! excluded, ∅ added), score them with the current doc tower so that `p(z|x)` trains both
//! towers, and marginalise the reader's `p(y|z,x)` over them, over the whole span (the
//! paper's equation) or per masked token (REALM's released code); with the statistics
//! that say what retrieval did.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use ragl_core::rng::Rng;
use ragl_index::Metric;
use ragl_model::encode::embed_encoded;
use ragl_model::tokenizer::Encoded;
use ragl_reader::mlm::{Masked, doc_view, join};

use super::config::{Marginal, PretrainConfig, Retrieval};
use super::data::{Corpus, MaskedExample, holds, span_holders};
use super::model::{Realm, host};
use super::refresh::Snapshot;

/// Everything a step needs besides the model.
pub struct StepContext<'a> {
    pub cfg: &'a PretrainConfig,
    pub corpus: &'a Corpus,
    pub tower_pad: u32,
    pub reader_pad: u32,
    pub sep: u32,
}

impl StepContext<'_> {
    /// The row retrieval must skip for `e`: its own passage, when the config excludes it.
    pub(crate) fn skipped_row(&self, e: &MaskedExample) -> Option<u32> {
        if self.cfg.model.exclude_own {
            self.corpus.row_of.get(&e.passage_id).copied()
        } else {
            None
        }
    }

    /// The null document's vector under the current doc tower (one short sequence).
    ///
    /// The pass runs on an untracked copy of the tower: on an autodiff backend, a tracked
    /// forward that no backward ever consumes stays in the autodiff graph, and with one such
    /// pass a step (`train.freeze_doc`) the steps grew five times slower over 900 steps.
    pub(crate) fn corpus_null_vector<B: Backend>(
        &self,
        model: &Realm<B>,
        device: &B::Device,
    ) -> Vec<f32> {
        let m = &self.cfg.model;
        host(embed_encoded(
            &model.doc.clone().no_grad(),
            &[&self.corpus.null],
            self.tower_pad,
            m.pooling,
            m.normalize,
            device,
        ))
    }
}

/// One example's held-out numbers, for paired comparisons between evaluations (the
/// same sentences at two steps, or in two runs): `eval_examples.csv`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExampleEval {
    /// `−log p(y|x)`, the marginal over the documents read.
    pub loss: f32,
    /// `−log p(y|∅,x)`: the utility is `null_loss − loss`.
    pub null_loss: f32,
    /// p(∅|x) (0 without the null document).
    pub p_null: f32,
    /// Some retrieved document, as the reader sees it, holds the masked span.
    pub span_hit: bool,
}

/// What one forward pass over a batch measured.
#[derive(Debug, Clone, Default)]
pub struct BatchStats {
    pub examples: usize,
    /// Mean `−log p(y|x)`.
    pub loss: f64,
    /// Masked tokens whose marginal argmax is the label.
    pub tokens: usize,
    pub tokens_right: usize,
    /// Examples whose every masked token is right.
    pub spans_right: usize,
    /// Mean `log p(y|x) − log p(y|∅,x)` (NaN without the null document).
    pub utility: f64,
    /// Mean retrieval utility of the document the retriever ranks first, REALM's
    /// `RU(z|x) = log p(y|z,x) − log p(y|∅,x)` (its eq. 2): unlike `utility`, it does not
    /// move when p(z|x) shifts mass between documents, only when the first one read helps
    /// more or less (NaN without retrieval).
    pub ru_top: f64,
    /// The same accuracy restricted to ∅ (`p(y|∅,x)` alone).
    pub null_tokens_right: usize,
    pub null_spans_right: usize,
    /// Mean |stale − fresh| score of the retrieved documents, in logit units.
    pub stale_gap: f64,
    /// Examples for which some retrieved document, as the reader sees it, holds the masked
    /// span's word pieces: whether the retriever found a passage to copy from, apart from
    /// whether the reader used it.
    pub span_hits: usize,
    /// The same for the document the retriever ranks first.
    pub top_hits: usize,
    /// RU(z|x) = log p(y|z,x) − log p(y|∅,x) summed over the retrieved documents that
    /// hold the span, and their number; then the same over those that do not. The gap
    /// between the two means is what the retriever's gradient can learn from: it pushes up
    /// the documents the reader gains from.
    pub ru_held: (f64, usize),
    pub ru_other: (f64, usize),
    /// p(z|x) summed over the batch: on ∅, and on the retrieved documents that hold the
    /// span. Utility is bounded by the mass off ∅, so a retriever that retreats to ∅
    /// shrinks it even when the documents it does read help more.
    pub p_null: f64,
    pub p_held: f64,
    /// Over the examples with a span-holding document retrieved: the share of the
    /// documents' mass (∅ left out) on those that hold it, the share they would get from a
    /// retriever that cannot tell (their number over k), and p(∅|x); then p(∅|x) over the
    /// other examples. Whether the retriever ranks the useful documents up, and knows when
    /// there is none, apart from whether it retrieves them.
    pub held_share: f64,
    /// The examples `held_share` is summed over (those with a span-holding document and
    /// some mass off ∅).
    pub held_share_n: usize,
    pub held_frac: f64,
    pub p_null_hit: f64,
    pub p_null_miss: f64,
    /// The batch's examples one by one, in order.
    pub per_example: Vec<ExampleEval>,
}

impl BatchStats {
    /// Adds `s`'s counts and sums (everything but the per-batch means `loss`, `utility`,
    /// `ru_top` and `stale_gap`, which the caller weights by `examples`).
    pub(crate) fn add_counts(&mut self, s: &BatchStats) {
        self.examples += s.examples;
        self.tokens += s.tokens;
        self.tokens_right += s.tokens_right;
        self.spans_right += s.spans_right;
        self.null_tokens_right += s.null_tokens_right;
        self.null_spans_right += s.null_spans_right;
        self.span_hits += s.span_hits;
        self.top_hits += s.top_hits;
        self.ru_held.0 += s.ru_held.0;
        self.ru_held.1 += s.ru_held.1;
        self.ru_other.0 += s.ru_other.0;
        self.ru_other.1 += s.ru_other.1;
        self.p_null += s.p_null;
        self.p_held += s.p_held;
        self.held_share += s.held_share;
        self.held_share_n += s.held_share_n;
        self.held_frac += s.held_frac;
        self.p_null_hit += s.p_null_hit;
        self.p_null_miss += s.p_null_miss;
    }
}

/// The retrieved rows of each example (own passage excluded when asked).
fn choose_docs(
    ctx: &StepContext,
    batch: &[&MaskedExample],
    q: &[f32],
    snap: &Snapshot,
    rng: &mut Rng,
) -> Vec<Vec<u32>> {
    let m = &ctx.cfg.model;
    let n = ctx.corpus.passages.len();
    let own = |e: &MaskedExample| ctx.skipped_row(e);
    match m.retrieval {
        Retrieval::None => vec![Vec::new(); batch.len()],
        Retrieval::Random | Retrieval::Oracle => batch
            .iter()
            .map(|e| {
                let skip = own(e);
                let mut rows = Vec::with_capacity(m.k);
                if m.retrieval == Retrieval::Oracle {
                    let mut held: Vec<u32> =
                        span_holders(ctx.corpus, e, skip, ctx.sep, m.reader_max_len).collect();
                    rng.shuffle(&mut held);
                    rows.extend(held.into_iter().take(m.k));
                }
                while rows.len() < m.k.min(n - usize::from(skip.is_some())) {
                    let r = rng.below(n) as u32;
                    if Some(r) != skip && !rows.contains(&r) {
                        rows.push(r);
                    }
                }
                rows
            })
            .collect(),
        Retrieval::Dense => {
            let hits =
                ragl_index::exact::search(&snap.vectors, None, snap.dim, Metric::Ip, q, m.k + 1);
            batch
                .iter()
                .zip(hits)
                .map(|(e, hs)| {
                    let skip = own(e);
                    hs.into_iter()
                        .map(|h| h.row)
                        .filter(|&r| Some(r) != skip)
                        .take(m.k)
                        .collect()
                })
                .collect()
        }
    }
}

/// The marginal loss of a batch (a scalar tensor with gradient on an autodiff backend) and
/// its statistics.
///
/// `rescore`: score the retrieved documents with the current doc tower (training: the
/// gradient reaches the doc tower through them) or with the index's vectors (evaluation:
/// what inference over the index computes, and no doc-tower pass).
pub fn batch_loss<B: Backend>(
    model: &Realm<B>,
    ctx: &StepContext,
    batch: &[&MaskedExample],
    snap: &Snapshot,
    rng: &mut Rng,
    rescore: bool,
) -> (Tensor<B, 1>, BatchStats) {
    let m = &ctx.cfg.model;
    let device = model.reader.head.bias.val().device();
    let b = batch.len();
    let retrieving = m.retrieval != Retrieval::None;
    // The query tower reads the masked sentence itself.
    let xs: Vec<Encoded> = batch
        .iter()
        .map(|e| Encoded {
            ids: e.input_ids.clone(),
            type_ids: vec![0; e.input_ids.len()],
            truncated: false,
        })
        .collect();
    let mut stats = BatchStats {
        examples: b,
        utility: f64::NAN,
        ru_top: f64::NAN,
        ..Default::default()
    };
    // Documents per example: k retrieved (+ ∅), scored by the current towers.
    let (rows, log_pz): (Vec<Vec<u32>>, Option<Tensor<B, 2>>) = if retrieving {
        let refs: Vec<&Encoded> = xs.iter().collect();
        let q = embed_encoded(
            &model.query,
            &refs,
            ctx.tower_pad,
            m.pooling,
            m.normalize,
            &device,
        );
        let qh = host(q.clone());
        let rows = choose_docs(ctx, batch, &qh, snap, rng);
        let k = rows.iter().map(Vec::len).min().unwrap_or(0);
        let rows: Vec<Vec<u32>> = rows.into_iter().map(|r| r[..k].to_vec()).collect();
        let d = if rescore || snap.vectors.is_empty() {
            let mut docs: Vec<&Encoded> = rows
                .iter()
                .flatten()
                .map(|&r| &ctx.corpus.tower[r as usize])
                .collect();
            if m.null_doc {
                docs.push(&ctx.corpus.null);
            }
            embed_encoded(
                &model.doc,
                &docs,
                ctx.tower_pad,
                m.pooling,
                m.normalize,
                &device,
            )
        } else {
            let dim = snap.dim;
            let mut v: Vec<f32> = rows
                .iter()
                .flatten()
                .flat_map(|&r| snap.vectors[r as usize * dim..(r as usize + 1) * dim].to_vec())
                .collect();
            if m.null_doc {
                v.extend_from_slice(&ctx.corpus_null_vector(model, &device));
            }
            let n = v.len() / dim;
            Tensor::from_data(TensorData::new(v, [n, dim]), &device)
        };
        let dim = d.dims()[1];
        // scores[i, z] = scale · q_i · d_{i,z}: the retrieved block is [b, k, dim].
        let retrieved = d
            .clone()
            .slice([0..b * k, 0..dim])
            .reshape([b, k, dim])
            .matmul(q.clone().reshape([b, dim, 1]))
            .reshape([b, k]);
        let mut scores = retrieved.clone();
        if m.null_doc {
            let null = d.slice([b * k..b * k + 1, 0..dim]);
            scores = Tensor::cat(vec![scores, q.matmul(null.transpose())], 1);
        }
        let scores = scores * m.score_scale;
        // Staleness: the same documents scored with the index's vectors.
        if rescore && m.retrieval == Retrieval::Dense && k > 0 {
            let fresh = host(retrieved);
            let mut gap = 0f64;
            for (i, rs) in rows.iter().enumerate() {
                let qi = &qh[i * dim..(i + 1) * dim];
                for (z, &r) in rs.iter().enumerate() {
                    let v = &snap.vectors[r as usize * dim..(r as usize + 1) * dim];
                    let stale: f32 = qi.iter().zip(v).map(|(a, b)| a * b).sum();
                    gap += ((stale - fresh[i * k + z]) * m.score_scale).abs() as f64;
                }
            }
            stats.stale_gap = gap / (b * k) as f64;
        }
        (rows, Some(log_softmax(scores, 1)))
    } else {
        (vec![Vec::new(); b], None)
    };
    let k = rows.first().map_or(0, Vec::len);
    let kz = k + usize::from(m.null_doc);
    // Reader pairs, example-major; ∅ last. One more ∅ pair per example when the model has
    // no null document, for the ∅-only accuracy and the utility.
    let extra_null = !m.null_doc;
    let per = kz + usize::from(extra_null);
    let masks: Vec<Masked> = batch.iter().map(|e| e.masked()).collect();
    let mut inputs = Vec::with_capacity(b * per);
    let mut mask_refs = Vec::with_capacity(b * per);
    // Per example and retrieved document: does the reader's view of it hold the span?
    let mut held: Vec<Vec<bool>> = Vec::with_capacity(b);
    for (i, e) in batch.iter().enumerate() {
        let mut h = Vec::with_capacity(rows[i].len());
        for &r in &rows[i] {
            let z = &ctx.corpus.reader[r as usize];
            let seen = doc_view(e.input_ids.len(), z, ctx.sep, m.reader_max_len);
            h.push(holds(seen, &e.masked_ids));
            inputs.push(join(&e.input_ids, Some(z), ctx.sep, m.reader_max_len));
            mask_refs.push(&masks[i]);
        }
        stats.span_hits += usize::from(h.contains(&true));
        held.push(h);
        inputs.push(join(&e.input_ids, None, ctx.sep, m.reader_max_len));
        mask_refs.push(&masks[i]);
    }
    let refs: Vec<&Encoded> = inputs.iter().collect();
    let scored = model.reader.score(&refs, &mask_refs, ctx.reader_pad);
    let ll = scored.log_likelihood.reshape([b, per]);
    let ll_h = host(ll.clone());
    let ll_docs = ll.clone().slice([0..b, 0..kz]);
    let ll_null = ll.clone().slice([0..b, per - 1..per]).reshape([b]);
    let marginal = match (&log_pz, m.marginal) {
        (Some(lp), Marginal::Token) => token_marginal(
            scored.token_log_likelihood.clone(),
            lp.clone(),
            &masks,
            per,
            kz,
        ),
        (Some(lp), Marginal::Span) => log_sum_exp_rows(lp.clone() + ll_docs),
        (None, _) => log_sum_exp_rows(ll_docs),
    }; // [b]
    let mut loss = marginal.clone().neg().mean();
    let w = ctx.cfg.train.doc_read_loss;
    if w != 0.0 && k > 0 {
        let each_doc = ll.clone().slice([0..b, 0..k]).neg().mean();
        loss = loss + each_doc * w;
    }

    // Statistics (host side).
    let marg_h = host(marginal);
    let null_h = host(ll_null);
    stats.loss = -marg_h.iter().map(|&x| x as f64).sum::<f64>() / b as f64;
    if m.null_doc || extra_null {
        stats.utility = marg_h
            .iter()
            .zip(&null_h)
            .map(|(a, n)| (a - n) as f64)
            .sum::<f64>()
            / b as f64;
    }
    let pz: Vec<f32> = match log_pz {
        Some(lp) => host(lp.exp()),
        None => vec![1.0; b],
    };
    stats.per_example = (0..b)
        .map(|i| ExampleEval {
            loss: -marg_h[i],
            null_loss: -null_h[i],
            p_null: if m.null_doc { pz[i * kz + kz - 1] } else { 0.0 },
            span_hit: held[i].contains(&true),
        })
        .collect();
    if rows.iter().any(|r| !r.is_empty()) {
        let mut ru = 0f64;
        for (i, rs) in rows.iter().enumerate() {
            let top = (0..rs.len())
                .max_by(|&a, &c| pz[i * kz + a].total_cmp(&pz[i * kz + c]))
                .unwrap_or(0);
            let null = ll_h[i * per + per - 1];
            ru += (ll_h[i * per + top] - null) as f64;
            stats.top_hits += usize::from(held[i].get(top).copied().unwrap_or(false));
            let p_null = if m.null_doc {
                pz[i * kz + kz - 1] as f64
            } else {
                0.0
            };
            stats.p_null += p_null;
            let (mut n_held, mut on_held) = (0usize, 0f64);
            for (z, &h) in held[i].iter().enumerate() {
                if h {
                    n_held += 1;
                    on_held += pz[i * kz + z] as f64;
                }
                let acc = if h {
                    &mut stats.ru_held
                } else {
                    &mut stats.ru_other
                };
                acc.0 += (ll_h[i * per + z] - null) as f64;
                acc.1 += 1;
            }
            stats.p_held += on_held;
            if n_held > 0 {
                // The documents' share is undefined once ∅ holds (nearly) all the mass.
                if 1.0 - p_null > 1e-6 {
                    stats.held_share += on_held / (1.0 - p_null);
                    stats.held_share_n += 1;
                }
                stats.held_frac += n_held as f64 / rs.len() as f64;
                stats.p_null_hit += p_null;
            } else {
                stats.p_null_miss += p_null;
            }
        }
        stats.ru_top = ru / b as f64;
    }
    let vocab = scored.token_log_probs.dims()[1];
    let logp = host(scored.token_log_probs);
    let mut row = 0usize;
    for (i, mk) in masks.iter().enumerate() {
        let t = mk.labels.len();
        let mut marg = vec![0f32; t * vocab];
        let mut all_right = true;
        let mut null_all_right = true;
        for z in 0..per {
            let rows_z = &logp[(row + z * t) * vocab..(row + (z + 1) * t) * vocab];
            if z < kz {
                let w = pz[i * kz + z];
                for (acc, &lp) in marg.iter_mut().zip(rows_z) {
                    *acc += w * lp.exp();
                }
            }
            if z == per - 1 {
                for (j, &y) in mk.labels.iter().enumerate() {
                    let right = argmax(&rows_z[j * vocab..(j + 1) * vocab]) == y as usize;
                    stats.null_tokens_right += usize::from(right);
                    null_all_right &= right;
                }
            }
        }
        for (j, &y) in mk.labels.iter().enumerate() {
            let right = argmax(&marg[j * vocab..(j + 1) * vocab]) == y as usize;
            stats.tokens_right += usize::from(right);
            all_right &= right;
        }
        stats.tokens += t;
        stats.spans_right += usize::from(all_right);
        stats.null_spans_right += usize::from(null_all_right);
        row += per * t;
    }
    (loss, stats)
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// `Σ_j log Σ_z p(z|x) p(y_j|z,x)` per example, `[b]`. `tok` holds the token
/// log-likelihoods in the reader's pair order (example-major, `per` pairs of `t_i` tokens
/// each, the first `kz` of them scored by `log_pz`).
fn token_marginal<B: Backend>(
    tok: Tensor<B, 1>,
    log_pz: Tensor<B, 2>,
    masks: &[Masked],
    per: usize,
    kz: usize,
) -> Tensor<B, 1> {
    let device = tok.device();
    let b = masks.len();
    let total: usize = masks.iter().map(|mk| mk.labels.len()).sum();
    let (mut gather, mut owner, mut assign) = (
        Vec::with_capacity(total * kz),
        Vec::with_capacity(total),
        vec![0f32; b * total],
    );
    let (mut row, mut t0) = (0usize, 0usize);
    for (i, mk) in masks.iter().enumerate() {
        let t = mk.labels.len();
        for j in 0..t {
            gather.extend((0..kz).map(|z| (row + z * t + j) as i64));
            owner.push(i as i64);
            assign[i * total + t0 + j] = 1.0;
        }
        row += per * t;
        t0 += t;
    }
    let ll = tok
        .select(
            0,
            Tensor::from_data(TensorData::new(gather, [total * kz]), &device),
        )
        .reshape([total, kz]);
    let lp = log_pz.select(
        0,
        Tensor::from_data(TensorData::new(owner, [total]), &device),
    );
    let per_token = log_sum_exp_rows(ll + lp); // [Σ t]
    Tensor::<B, 2>::from_data(TensorData::new(assign, [b, total]), &device)
        .matmul(per_token.reshape([total, 1]))
        .reshape([b])
}

/// `log Σ_j exp(x[i, j])` per row, `[rows]`.
fn log_sum_exp_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let [n, _] = x.dims();
    let max = x.clone().max_dim(1).detach();
    ((x - max.clone()).exp().sum_dim(1).log() + max).reshape([n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn the_token_marginal_sums_each_tokens_own_mixture() {
        type B = Flex;
        let device = Default::default();
        // Two examples, kz = 2 scored pairs plus the extra ∅ pair (per = 3); the first
        // masks 2 tokens, the second 1. Token rows in pair order: example 0's pairs
        // (2 rows each), then example 1's (1 row each).
        let masks = vec![
            Masked {
                positions: vec![1, 2],
                labels: vec![5, 6],
            },
            Masked {
                positions: vec![1],
                labels: vec![7],
            },
        ];
        let tok: Vec<f32> = vec![-1.0, -2.0, -3.0, -0.5, -9.0, -9.0, -0.7, -1.5, -9.0];
        let pz = [[0.25f64, 0.75], [0.6, 0.4]];
        let lp: Vec<f32> = pz.iter().flatten().map(|p| p.ln() as f32).collect();
        let got: Vec<f32> = token_marginal(
            Tensor::<B, 1>::from_data(TensorData::new(tok, [9]), &device),
            Tensor::<B, 2>::from_data(TensorData::new(lp, [2, 2]), &device),
            &masks,
            3,
            2,
        )
        .into_data()
        .to_vec()
        .unwrap();
        let mix = |p: [f64; 2], a: f64, b: f64| (p[0] * a.exp() + p[1] * b.exp()).ln();
        let want0 = mix(pz[0], -1.0, -3.0) + mix(pz[0], -2.0, -0.5);
        let want1 = mix(pz[1], -0.7, -1.5);
        assert!(
            (got[0] as f64 - want0).abs() < 1e-5,
            "{} vs {want0}",
            got[0]
        );
        assert!(
            (got[1] as f64 - want1).abs() < 1e-5,
            "{} vs {want1}",
            got[1]
        );
        // For a sentence of two tokens the two marginals differ.
        let span0 = mix(pz[0], -3.0, -3.5);
        assert!((span0 - want0).abs() > 0.1);
    }
}
