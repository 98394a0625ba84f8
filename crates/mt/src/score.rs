//! Teacher-forced scoring of given translations (fairseq-generate's `--score-reference`):
//! each target token's log-probability under the model, with `</s>` last, and on request the
//! raw output logits of every position — what parity checks against transformers compare.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::Result;
use crate::checkpoint::MtModel;
use crate::data;

/// One scored pair.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scored {
    /// Target ids, `</s>` included.
    pub tokens: Vec<u32>,
    /// `log p(token | source, prefix)` of each.
    pub log_probs: Vec<f32>,
}

/// Receives a pair's index and its `[tokens, vocab]` raw logits.
pub type LogitsSink<'a> = &'a mut dyn FnMut(usize, &[f32]);

/// Scores `pairs` (source, target text) in order, `batch` pairs at a time. `logits` gets
/// each pair's `[tokens, vocab]` raw logits (row-major) when given.
pub fn score<B: Backend>(
    m: &MtModel<B>,
    pairs: &[(String, String)],
    batch: usize,
    mut logits: Option<LogitsSink<'_>>,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Scored>> {
    let (enc, _) = data::encode_pairs(&m.vocab, pairs, usize::MAX)?;
    let device = m.model.embed.weight.device();
    let sp = m.model.specials;
    let v = m.model.vocab_size();
    let d = m.config.d_model;
    let mut out = Vec::with_capacity(enc.len());
    for (start, chunk) in enc.chunks(batch.max(1)).enumerate() {
        let idx: Vec<usize> = (0..chunk.len()).collect();
        let b = data::pad_batch(chunk, &idx, &sp);
        let src = Tensor::<B, 2, Int>::from_data(
            TensorData::new(b.src.clone(), [b.rows, b.src_len]),
            &device,
        );
        let tin = Tensor::<B, 2, Int>::from_data(
            TensorData::new(b.tgt_in.clone(), [b.rows, b.tgt_len]),
            &device,
        );
        let (mem, pad) = m.model.encode(src);
        let h = m.model.decode_hidden(mem, pad, tin);
        let z = m.model.logits(h.reshape([b.rows * b.tgt_len, d]));
        let lp: Vec<f32> = log_softmax(z.clone(), 1)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32");
        let raw: Option<Vec<f32>> = logits
            .is_some()
            .then(|| z.into_data().convert::<f32>().to_vec().expect("f32"));
        for (r, p) in chunk.iter().enumerate() {
            let tokens: Vec<u32> = p.tgt.iter().copied().chain([sp.eos]).collect();
            let rows = r * b.tgt_len..r * b.tgt_len + tokens.len();
            let log_probs = rows
                .clone()
                .zip(&tokens)
                .map(|(row, &t)| lp[row * v + t as usize])
                .collect();
            if let (Some(f), Some(raw)) = (logits.as_mut(), &raw) {
                f(start * batch.max(1) + r, &raw[rows.start * v..rows.end * v]);
            }
            out.push(Scored { tokens, log_probs });
        }
        progress(chunk.len());
    }
    Ok(out)
}

/// Ids of `text` as the model's tokenizer gives them, for the source side (with `</s>`) or
/// the target side (without).
pub fn tokenize<B: Backend>(m: &MtModel<B>, text: &str, target: bool) -> Result<Vec<u32>> {
    if target {
        m.vocab.encode_target(text)
    } else {
        m.vocab.encode_source(text)
    }
}
