//! The Inverse Cloze Task (Lee et al., 2019), with which REALM warm-starts its retriever
//! (Guu et al., 2020, §3.4): a sentence drawn from a passage is the query, the rest of the
//! passage is its positive document, and the other passages of the batch are the
//! negatives. Without it the marginal likelihood has nothing to climb from: a retriever that
//! never finds a useful document gets no gradient that says which documents are useful.
//!
//! As in ORQA, the sentence is left in its passage a small fraction of the time
//! (`keep_sentence`), so the towers also learn plain word overlap.

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use ragl_core::passage::Passage;
use ragl_core::rng::Rng;
use ragl_model::bert::Bert;
use ragl_model::encode::{Pooling, embed_encoded};
use ragl_model::tokenizer::TextTokenizer;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `[ict]` of a pretraining config; `steps = 0` (the default) skips the warm start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IctConfig {
    pub steps: u64,
    /// Passages per step: one query each, every other passage a negative.
    pub batch: usize,
    pub lr: f64,
    pub warmup: u64,
    /// Probability that the query sentence stays in its passage.
    pub keep_sentence: f64,
}

impl Default for IctConfig {
    fn default() -> Self {
        IctConfig {
            steps: 0,
            batch: 32,
            lr: 1e-4,
            warmup: 20,
            keep_sentence: 0.1,
        }
    }
}

/// The two towers as one module, for one optimiser.
#[derive(Module, Debug)]
pub struct Towers<B: Backend> {
    pub query: Bert<B>,
    pub doc: Bert<B>,
}

/// One ICT step: in-batch loss, and how often the positive ranked first.
#[derive(Debug, Clone, Copy)]
pub struct IctStep {
    pub step: u64,
    pub total: u64,
    pub loss: f64,
    pub accuracy: f64,
}

/// How the towers embed and score a (query, document) pair: pretraining's own settings
/// (`PretrainModel::scoring`), so that ICT warms up the scores REALM then trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scoring {
    pub pooling: Pooling,
    pub normalize: bool,
    pub scale: f32,
}

/// Trains both towers on ICT for `cfg.steps` steps and returns them with each step's
/// numbers. Passages of one sentence cannot give a query and are skipped.
pub fn warm_start<B: AutodiffBackend>(
    mut towers: Towers<B>,
    passages: &[Passage],
    tok: &TextTokenizer,
    m: &Scoring,
    cfg: &IctConfig,
    seed: u64,
    mut progress: impl FnMut(&IctStep),
) -> Result<(Towers<B>, Vec<IctStep>)> {
    let sentences: Vec<(usize, Vec<(usize, usize)>)> = passages
        .iter()
        .enumerate()
        .map(|(i, p)| (i, ragl_corpus::sentences::split(&p.text)))
        .filter(|(_, s)| s.len() >= 2)
        .collect();
    if sentences.len() < 2 {
        return Err(Error::Mismatch(
            "ICT needs at least two passages of two or more sentences".into(),
        ));
    }
    let device = towers
        .query
        .embeddings
        .word_embeddings
        .weight
        .val()
        .device();
    let batch = cfg.batch.clamp(2, sentences.len());
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.01)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init::<B, Towers<B>>();
    let mut rng = Rng::new(seed ^ 0x1C7);
    let mut order: Vec<usize> = (0..sentences.len()).collect();
    let mut cursor = order.len();
    let mut log = Vec::with_capacity(cfg.steps as usize);
    for step in 1..=cfg.steps {
        let mut queries = Vec::with_capacity(batch);
        let mut docs = Vec::with_capacity(batch);
        for _ in 0..batch {
            if cursor == order.len() {
                rng.shuffle(&mut order);
                cursor = 0;
            }
            let (pi, sents) = &sentences[order[cursor]];
            cursor += 1;
            let p = &passages[*pi];
            let (s, e) = sents[rng.below(sents.len())];
            queries.push((p.text[s..e].to_string(), None));
            let rest = if rng.unit() < cfg.keep_sentence {
                p.text.clone()
            } else {
                format!("{} {}", p.text[..s].trim_end(), p.text[e..].trim_start())
                    .trim()
                    .to_string()
            };
            docs.push(
                Passage {
                    text: rest,
                    ..p.clone()
                }
                .encoder_pair(),
            );
        }
        let embed = |bert: &Bert<B>, texts: &[(String, Option<String>)]| -> Result<Tensor<B, 2>> {
            let enc = tok.encode(texts)?;
            let refs: Vec<_> = enc.iter().collect();
            Ok(embed_encoded(
                bert,
                &refs,
                tok.pad_id,
                m.pooling,
                m.normalize,
                &device,
            ))
        };
        let q = embed(&towers.query, &queries)?;
        let d = embed(&towers.doc, &docs)?;
        let scores = q.matmul(d.transpose()) * m.scale;
        let gold = Tensor::<B, 1, Int>::arange(0..batch as i64, &device).reshape([batch, 1]);
        let hits: i64 = scores
            .clone()
            .argmax(1)
            .equal(gold.clone())
            .int()
            .sum()
            .into_scalar()
            .elem();
        let loss = -log_softmax(scores, 1).gather(1, gold).mean();
        let loss_value: f64 = loss.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(loss.backward(), &towers);
        let lr = crate::warmup_linear_decay(cfg.lr, cfg.warmup, cfg.steps, step);
        towers = optim.step(lr, towers, grads);
        let r = IctStep {
            step,
            total: cfg.steps,
            loss: loss_value,
            accuracy: 100.0 * hits as f64 / batch as f64,
        };
        progress(&r);
        log.push(r);
    }
    Ok((towers, log))
}
