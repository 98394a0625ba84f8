//! Runs a GPT-2 over scoring windows: per scored token, its log-probability under the model
//! and (when asked) the state that predicted it, the kNN-LM key.

use burn::prelude::*;
use ragl_model::gpt2::Gpt2;

use crate::Result;
use crate::windows::Window;

/// Which state is the kNN-LM key (the kNN-LM paper compares them; its best, and
/// knn-transformers' default for GPT-2, is the feed-forward input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPoint {
    /// The last block's feed-forward input after its LayerNorm (`ln_2`'s output).
    #[default]
    FfnInput,
    /// The LM head's input (`ln_f`'s output).
    LmHeadInput,
}

impl std::str::FromStr for KeyPoint {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ffn-input" => Ok(KeyPoint::FfnInput),
            "lm-head-input" => Ok(KeyPoint::LmHeadInput),
            _ => Err(format!("unknown key {s:?}: use ffn-input or lm-head-input")),
        }
    }
}

/// The scored tokens of a batch of windows, in window order.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    pub targets: Vec<u32>,
    /// Natural-log probability of each target under the model.
    pub log_probs: Vec<f32>,
    /// `[targets, dim]` row-major, when keys were asked for.
    pub keys: Vec<f32>,
    pub dim: usize,
}

/// Logits rows computed at once: bounds the `[rows, vocab]` block (GPT-2's vocabulary is
/// 50,257 wide).
const LOGIT_ROWS: usize = 1024;

/// Scores `windows`, `batch` at a time, calling `sink` with each batch's tokens in order.
pub fn score<B: Backend>(
    model: &Gpt2<B>,
    windows: &[Window],
    batch: usize,
    keys: Option<KeyPoint>,
    mut sink: impl FnMut(Scored) -> Result<()>,
) -> Result<()> {
    let device = model.wte.weight.device();
    let d = model.d_model();
    for group in windows.chunks(batch.max(1)) {
        let (b, s) = (
            group.len(),
            group.iter().map(|w| w.ids.len()).max().unwrap_or(0),
        );
        let mut ids = vec![0i64; b * s];
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        for (i, w) in group.iter().enumerate() {
            for (j, &t) in w.ids.iter().enumerate() {
                ids[i * s + j] = t as i64;
            }
            for t in w.score_from.max(1)..w.ids.len() {
                rows.push((i * s + t - 1) as i64);
                targets.push(w.ids[t]);
            }
        }
        if targets.is_empty() {
            continue;
        }
        let states = model.forward(Tensor::from_data(TensorData::new(ids, [b, s]), &device));
        let n = rows.len();
        let flat = |t: Tensor<B, 3>| t.reshape([b * s, d]);
        let index = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [n]), &device);
        let last = flat(states.last).select(0, index.clone());
        let mut log_probs = Vec::with_capacity(n);
        for lo in (0..n).step_by(LOGIT_ROWS) {
            let hi = (lo + LOGIT_ROWS).min(n);
            let lp = burn::tensor::activation::log_softmax(
                model.logits(last.clone().slice([lo..hi, 0..d])),
                1,
            );
            let tgt: Vec<i64> = targets[lo..hi].iter().map(|&t| t as i64).collect();
            let tgt = Tensor::<B, 2, Int>::from_data(TensorData::new(tgt, [hi - lo, 1]), &device);
            log_probs.extend(
                lp.gather(1, tgt)
                    .into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .expect("f32"),
            );
        }
        let key_rows = match keys {
            None => Vec::new(),
            Some(KeyPoint::LmHeadInput) => host(last),
            Some(KeyPoint::FfnInput) => host(flat(states.ffn_input).select(0, index)),
        };
        sink(Scored {
            targets,
            log_probs,
            keys: key_rows,
            dim: d,
        })?;
    }
    Ok(())
}

fn host<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32")
}

/// Tokens scored and their summed negative log-likelihood (nats).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Perplexity {
    pub tokens: usize,
    pub nll: f64,
}

impl Perplexity {
    pub fn add(&mut self, log_prob: f32) {
        self.tokens += 1;
        self.nll -= log_prob as f64;
    }

    pub fn perplexity(&self) -> f64 {
        (self.nll / self.tokens.max(1) as f64).exp()
    }
}

/// The model's perplexity over `windows`.
pub fn perplexity<B: Backend>(
    model: &Gpt2<B>,
    windows: &[Window],
    batch: usize,
) -> Result<Perplexity> {
    let mut p = Perplexity::default();
    score(model, windows, batch, None, |s| {
        s.log_probs.iter().for_each(|&l| p.add(l));
        Ok(())
    })?;
    Ok(p)
}
