//! REALM's knowledge-augmented encoder: BERT with its MLM head over `[CLS] x [SEP] z [SEP]`,
//! giving `log p(y|z,x)` of the masked tokens of x given a retrieved document z.
//!
//! x arrives already masked (`[CLS] sentence [SEP]` from `ragl mask make`), so its masked
//! positions do not move when z is appended. The null document ∅ is an empty z: the input
//! is x alone, which is what BERT's own MLM sees. A span's likelihood is the product over
//! its tokens (REALM §3.1), `log p(y|z,x) = Σ_j log p(y_j|z,x)`, and the vocabulary
//! projection runs only at the masked positions.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use ragl_model::bert::{Bert, MlmHead};
use ragl_model::tokenizer::Encoded;

/// `[CLS] x [SEP] z [SEP]` with x's types 0 and z's 1, z cut so that the whole fits
/// `max_len`. `x` is `[CLS] … [SEP]`; `doc` is z's word pieces *with* its closing `[SEP]`
/// (a title–text pair tokenised without the leading `[CLS]`), or `None` for ∅.
pub fn join(x: &[u32], doc: Option<&[u32]>, sep: u32, max_len: usize) -> Encoded {
    let mut ids = x.to_vec();
    let mut type_ids = vec![0u32; ids.len()];
    let mut truncated = false;
    if let Some(doc) = doc {
        let seen = doc_view(x.len(), doc, sep, max_len);
        truncated = seen.len() < doc.strip_suffix(&[sep]).unwrap_or(doc).len();
        ids.extend_from_slice(seen);
        ids.push(sep);
        type_ids.resize(ids.len(), 1);
    }
    Encoded {
        ids,
        type_ids,
        truncated,
    }
}

/// The part of z that [`join`] keeps after an x of `x_len` pieces: z without its closing
/// `[SEP]`, cut so that the whole fits `max_len`.
pub fn doc_view(x_len: usize, doc: &[u32], sep: u32, max_len: usize) -> &[u32] {
    let room = max_len.saturating_sub(x_len + 1);
    let body = doc.strip_suffix(&[sep]).unwrap_or(doc);
    &body[..body.len().min(room)]
}

/// The masked positions of one example and their labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    pub positions: Vec<usize>,
    pub labels: Vec<u32>,
}

/// What [`MlmReader::score`] returns for a batch of (x, z) pairs.
#[derive(Debug)]
pub struct PairScores<B: Backend> {
    /// `log p(y|z,x)` of each pair, `[pairs]`.
    pub log_likelihood: Tensor<B, 1>,
    /// `log p(y_j|z,x)` of every masked token of every pair, rows in pair order, `[Σ masked]`
    /// (for a marginal taken per token, as REALM's released code does).
    pub token_log_likelihood: Tensor<B, 1>,
    /// Log-probabilities over the vocabulary at every masked position of every pair, rows in
    /// pair order, `[Σ masked, vocab]` (for accuracy of the marginal prediction).
    pub token_log_probs: Tensor<B, 2>,
}

/// BERT plus its tied MLM head.
#[derive(Module, Debug)]
pub struct MlmReader<B: Backend> {
    pub bert: Bert<B>,
    pub head: MlmHead<B>,
}

impl<B: Backend> MlmReader<B> {
    /// Scores every pair: `inputs[p]` with the masked positions and labels `masked[p]`.
    pub fn score(&self, inputs: &[&Encoded], masked: &[&Masked], pad_id: u32) -> PairScores<B> {
        assert_eq!(inputs.len(), masked.len(), "one mask per pair");
        let device = self.head.bias.val().device();
        let batch = ragl_model::encode::batch_input::<B>(inputs, pad_id, &device);
        let h = self.bert.forward(&batch);
        let [n, l, d] = h.dims();
        let (mut rows, mut labels, mut owner) = (Vec::new(), Vec::new(), Vec::new());
        for (p, m) in masked.iter().enumerate() {
            for (&pos, &y) in m.positions.iter().zip(&m.labels) {
                rows.push((p * l + pos) as i64);
                labels.push(y as i64);
                owner.push(p);
            }
        }
        let r = rows.len();
        let sel = h
            .reshape([n * l, d])
            .select(0, Tensor::from_data(TensorData::new(rows, [r]), &device));
        let logp = log_softmax(self.head.logits(&self.bert, sel), 1);
        let tok = logp
            .clone()
            .gather(
                1,
                Tensor::from_data(TensorData::new(labels, [r, 1]), &device),
            )
            .reshape([r]);
        // Sum the token log-likelihoods of each pair with a 0/1 [pairs, rows] matrix: one
        // matmul instead of a slice per pair.
        let mut assign = vec![0f32; n * r];
        for (j, &p) in owner.iter().enumerate() {
            assign[p * r + j] = 1.0;
        }
        let assign = Tensor::<B, 2>::from_data(TensorData::new(assign, [n, r]), &device);
        let ll = assign.matmul(tok.clone().reshape([r, 1])).reshape([n]);
        PairScores {
            log_likelihood: ll,
            token_log_likelihood: tok,
            token_log_probs: logp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use ragl_model::bert::BertConfig;

    type B = Flex;

    #[test]
    fn join_keeps_x_and_cuts_z() {
        let e = join(&[101, 7, 103, 102], Some(&[5, 6, 7, 102]), 102, 7);
        assert_eq!(e.ids, vec![101, 7, 103, 102, 5, 6, 102]);
        assert_eq!(e.type_ids, vec![0, 0, 0, 0, 1, 1, 1]);
        assert!(e.truncated);
        let null = join(&[101, 7, 103, 102], None, 102, 7);
        assert_eq!(null.ids, vec![101, 7, 103, 102]);
        assert!(!null.truncated);
    }

    #[test]
    fn pair_likelihood_is_the_sum_of_token_log_probs() {
        let device = Default::default();
        let cfg = BertConfig::tiny(50);
        let (bert, head) = cfg.init::<B>(false, &device);
        let reader = MlmReader { bert, head };
        let a = join(&[1, 4, 3, 2], Some(&[9, 10, 2]), 2, 16);
        let b = join(&[1, 3, 3, 5, 2], None, 2, 16);
        let ma = Masked {
            positions: vec![2],
            labels: vec![7],
        };
        let mb = Masked {
            positions: vec![1, 2],
            labels: vec![8, 11],
        };
        let out = reader.score(&[&a, &b], &[&ma, &mb], 0);
        let ll: Vec<f32> = out.log_likelihood.into_data().to_vec().unwrap();
        let lp: Vec<f32> = out.token_log_probs.into_data().to_vec().unwrap();
        let v = 50;
        assert!((ll[0] - lp[7]).abs() < 1e-5);
        assert!((ll[1] - (lp[v + 8] + lp[2 * v + 11])).abs() < 1e-5);
        // Each row is a distribution.
        let s: f32 = lp[..v].iter().map(|x| x.exp()).sum();
        assert!((s - 1.0).abs() < 1e-4);
    }
}
