//! Batched beam search (fairseq's `SequenceGenerator`, simplified): sentences of similar
//! length decode together, each with `beam` hypotheses; a hypothesis ends at `</s>` and is
//! scored by its summed log-probability divided by `length^len_penalty` (the length counts
//! `</s>`); done sentences leave the batch. With `early_stopping` (fairseq's rule, and
//! transformers' `early_stopping=True`) a sentence is done when it has `beam` finished
//! hypotheses; without it (transformers' default, which Marian checkpoints use) it goes on
//! while the best live hypothesis, scored at the current length, could still beat the worst
//! of the `beam` best finished ones (`_check_early_stop_heuristic` in transformers).
//!
//! Every step's next-token distribution passes through a [`StepHook`] together with the
//! decoder states that produced it: that is where kNN-MT's combiner interpolates the
//! datastore's distribution, for all hypotheses of all sentences at once.

use burn::prelude::*;

use crate::Result;
use crate::checkpoint::MtModel;
use crate::model::Seq2Seq;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BeamConfig {
    pub beam: usize,
    pub len_penalty: f64,
    /// Maximum output length: `max_len_a × source length + max_len_b` subwords.
    pub max_len_a: f64,
    pub max_len_b: usize,
    /// Sentences decoded together.
    pub batch_sentences: usize,
    /// Stop a sentence as soon as it has `beam` finished hypotheses.
    #[serde(default = "yes")]
    pub early_stopping: bool,
    /// What happens at the maximum length.
    #[serde(default)]
    pub at_max_len: AtMaxLen,
}

/// How hypotheses end at the maximum length: the rules of the systems users compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AtMaxLen {
    /// fairseq: `</s>` is forced and costs its own log-probability.
    #[default]
    EosLogProb,
    /// transformers with `forced_eos_token_id`: `</s>` is forced at log-probability 0.
    FreeEos,
    /// transformers without it: the last step is an ordinary one and its `beam` best
    /// continuations end where they are, without `</s>`.
    Truncate,
}

fn yes() -> bool {
    true
}

impl Default for BeamConfig {
    fn default() -> Self {
        BeamConfig {
            beam: 5,
            len_penalty: 1.0,
            max_len_a: 1.2,
            max_len_b: 10,
            batch_sentences: 32,
            early_stopping: true,
            at_max_len: AtMaxLen::EosLogProb,
        }
    }
}

/// Rewrites each step's log-probabilities (`n × vocab`, row-major) given the decoder states
/// (`n × d`) that produced them.
pub trait StepHook {
    /// Whether [`StepHook::adjust`] needs the decoder states (skips a copy when not).
    fn wants_hidden(&self) -> bool {
        true
    }
    fn adjust(&mut self, hidden: &[f32], d: usize, log_probs: &mut [f32], vocab: usize);
    /// True only for a hook that changes nothing (the base model), whose batches may then
    /// decode in parallel.
    fn is_identity(&self) -> bool {
        false
    }
    /// The same hook usable from several batches at once, where it can be.
    fn as_shared(&self) -> Option<&dyn SharedStepHook> {
        None
    }
}

/// A hook whose state is safe to share (counters behind atomics): with one, batches decode
/// side by side as they do for the base model.
pub trait SharedStepHook: Sync {
    fn wants_hidden(&self) -> bool {
        true
    }
    fn adjust_shared(&self, hidden: &[f32], d: usize, log_probs: &mut [f32], vocab: usize);
}

/// A shared hook seen by one batch.
struct Borrowed<'a>(&'a dyn SharedStepHook);

impl StepHook for Borrowed<'_> {
    fn wants_hidden(&self) -> bool {
        self.0.wants_hidden()
    }
    fn adjust(&mut self, hidden: &[f32], d: usize, log_probs: &mut [f32], vocab: usize) {
        self.0.adjust_shared(hidden, d, log_probs, vocab);
    }
}

/// The base model alone.
pub struct NoHook;

impl StepHook for NoHook {
    fn wants_hidden(&self) -> bool {
        false
    }
    fn is_identity(&self) -> bool {
        true
    }
    fn adjust(&mut self, _: &[f32], _: usize, _: &mut [f32], _: usize) {}
}

/// Translates `sources` (plain text) and returns detokenised outputs in input order.
pub fn translate<B: Backend, S: AsRef<str>>(
    m: &MtModel<B>,
    sources: &[S],
    cfg: &BeamConfig,
    hook: &mut dyn StepHook,
) -> Result<Vec<String>> {
    let mut enc = Vec::with_capacity(sources.len());
    for s in sources {
        enc.push(m.vocab.encode_source(s.as_ref())?);
    }
    let out = translate_ids(&m.model, &enc, cfg, hook, |_| {});
    out.iter().map(|ids| m.vocab.decode(ids)).collect()
}

/// Beam search over encoded sources (each ending in `</s>`); returns the best hypothesis of
/// each, without `</s>`, in input order. `progress` gets the number of sentences finished.
pub fn translate_ids<B: Backend>(
    model: &Seq2Seq<B>,
    sources: &[Vec<u32>],
    cfg: &BeamConfig,
    hook: &mut dyn StepHook,
    mut progress: impl FnMut(usize) + Send,
) -> Vec<Vec<u32>> {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sources[i].len()));
    let mut out = vec![Vec::new(); sources.len()];
    let chunks: Vec<&[usize]> = order.chunks(cfg.batch_sentences.max(1)).collect();
    let srcs_of =
        |chunk: &[usize]| -> Vec<&[u32]> { chunk.iter().map(|&i| sources[i].as_slice()).collect() };
    let shared = hook.as_shared();
    if !hook.is_identity() && shared.is_none() {
        // A hook with state of its own sees one batch at a time.
        for chunk in chunks {
            for (&i, hyp) in chunk.iter().zip(search(model, &srcs_of(chunk), cfg, hook)) {
                out[i] = hyp;
            }
            progress(chunk.len());
        }
        return out;
    }
    // Otherwise batches decode side by side: one batch keeps about one core busy (the
    // step's small products and the search itself are serial), so two cores take two.
    use rayon::prelude::*;
    let progress = std::sync::Mutex::new(progress);
    let results: Vec<Vec<Vec<u32>>> = chunks
        .par_iter()
        .map(|chunk| {
            let hyps = match shared {
                Some(h) => search(model, &srcs_of(chunk), cfg, &mut Borrowed(h)),
                None => search(model, &srcs_of(chunk), cfg, &mut NoHook),
            };
            (progress.lock().expect("progress"))(chunk.len());
            hyps
        })
        .collect();
    for (chunk, hyps) in chunks.iter().zip(results) {
        for (&i, hyp) in chunk.iter().zip(hyps) {
            out[i] = hyp;
        }
    }
    out
}

struct Finished {
    score: f64,
    tokens: Vec<u32>,
}

fn search<B: Backend>(
    model: &Seq2Seq<B>,
    srcs: &[&[u32]],
    cfg: &BeamConfig,
    hook: &mut dyn StepHook,
) -> Vec<Vec<u32>> {
    let device = model.embed.weight.device();
    let sp = model.specials;
    let (pad_id, bos_id, eos_id) = (sp.pad, sp.bos, sp.eos);
    let k = cfg.beam.max(1);
    // transformers decodes a beam of one greedily, which is the early-stopping rule.
    let early_stopping = cfg.early_stopping || k == 1;
    let b = srcs.len();
    let s = srcs.iter().map(|x| x.len()).max().unwrap_or(1).max(1);
    let mut flat = vec![pad_id as i64; b * s];
    for (r, src) in srcs.iter().enumerate() {
        for (j, &t) in src.iter().enumerate() {
            flat[r * s + j] = t as i64;
        }
    }
    let src = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [b, s]), &device);
    let (memory, pad) = model.encode(src);
    let expand: Vec<i64> = (0..b)
        .flat_map(|i| std::iter::repeat_n(i as i64, k))
        .collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(expand, [b * k]), &device);
    let mut state = model.start(memory.select(0, idx.clone()), pad.select(0, idx));

    let max_len: Vec<usize> = srcs
        .iter()
        .map(|x| (cfg.max_len_a * x.len() as f64) as usize + cfg.max_len_b)
        .collect();
    // Active sentences, each owning `k` consecutive rows of the decoder state.
    let mut active: Vec<usize> = (0..b).collect();
    let mut scores: Vec<f64> = (0..b * k)
        .map(|r| if r % k == 0 { 0.0 } else { f64::NEG_INFINITY })
        .collect();
    let mut hyps: Vec<Vec<u32>> = vec![Vec::new(); b * k];
    let mut finished: Vec<Vec<Finished>> = (0..b).map(|_| Vec::new()).collect();
    let mut prev: Vec<i64> = vec![bos_id as i64; b * k];
    let mut t = 0usize;
    while !active.is_empty() {
        let n = prev.len();
        let tokens = Tensor::<B, 1, Int>::from_data(TensorData::new(prev.clone(), [n]), &device);
        let step = model.step(tokens, &mut state);
        let v = step.log_probs.dims()[1];
        let mut lp: Vec<f32> = step
            .log_probs
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32");
        if hook.wants_hidden() {
            let d = step.hidden.dims()[1];
            let h: Vec<f32> = step
                .hidden
                .into_data()
                .convert::<f32>()
                .to_vec()
                .expect("f32");
            hook.adjust(&h, d, &mut lp, v);
        } else {
            hook.adjust(&[], 0, &mut lp, v);
        }
        let mut keep_rows: Vec<i64> = Vec::new();
        let mut next_active = Vec::new();
        let (mut next_scores, mut next_hyps, mut next_prev) = (Vec::new(), Vec::new(), Vec::new());
        for (a, &sent) in active.iter().enumerate() {
            let force_eos = t + 1 >= max_len[sent];
            // The 2k best (row, token) continuations of this sentence's k rows.
            let mut cand: Vec<(f64, usize, u32)> = Vec::with_capacity(2 * k + 1);
            for r in a * k..(a + 1) * k {
                if scores[r] == f64::NEG_INFINITY {
                    continue;
                }
                let row = &lp[r * v..(r + 1) * v];
                if force_eos {
                    match cfg.at_max_len {
                        AtMaxLen::EosLogProb => {
                            cand.push((scores[r] + row[eos_id as usize] as f64, r, eos_id));
                            continue;
                        }
                        AtMaxLen::FreeEos => {
                            cand.push((scores[r], r, eos_id));
                            continue;
                        }
                        AtMaxLen::Truncate => {}
                    }
                }
                for (tok, &x) in row.iter().enumerate() {
                    // The start token is never an output, unless it is the end token
                    // itself (fairseq's models start decoding with `</s>`).
                    if tok == pad_id as usize || (tok == bos_id as usize && bos_id != eos_id) {
                        continue;
                    }
                    let sc = scores[r] + x as f64;
                    if cand.len() < 2 * k {
                        cand.push((sc, r, tok as u32));
                        if cand.len() == 2 * k {
                            cand.sort_by(|p, q| q.0.total_cmp(&p.0));
                        }
                    } else if sc > cand[2 * k - 1].0 {
                        cand[2 * k - 1] = (sc, r, tok as u32);
                        let mut i = 2 * k - 1;
                        while i > 0 && cand[i].0 > cand[i - 1].0 {
                            cand.swap(i, i - 1);
                            i -= 1;
                        }
                    }
                }
            }
            cand.sort_by(|p, q| q.0.total_cmp(&p.0));
            let mut kept = 0;
            for (rank, &(sc, r, tok)) in cand.iter().enumerate() {
                let truncated = force_eos && tok != eos_id;
                if tok == eos_id || truncated {
                    // fairseq: an end among the top k candidates finishes a hypothesis.
                    if rank < k && sc.is_finite() {
                        let len = (hyps[r].len() + 1) as f64;
                        let mut tokens = hyps[r].clone();
                        if truncated {
                            tokens.push(tok);
                        }
                        finished[sent].push(Finished {
                            score: sc / len.powf(cfg.len_penalty),
                            tokens,
                        });
                    }
                    continue;
                }
                if kept < k {
                    keep_rows.push(r as i64);
                    next_scores.push(sc);
                    let mut h = hyps[r].clone();
                    h.push(tok);
                    next_hyps.push(h);
                    next_prev.push(tok as i64);
                    kept += 1;
                }
            }
            let fin = &mut finished[sent];
            let full = fin.len() >= k;
            let done = force_eos
                || kept == 0
                || (full && early_stopping)
                || (full && {
                    // Only the k best finished hypotheses count; could the best live one,
                    // scored at the length it has now, still beat the worst of them?
                    fin.sort_by(|a, b| b.score.total_cmp(&a.score));
                    fin.truncate(k);
                    let worst = fin[k - 1].score;
                    let best_live = next_scores[next_scores.len() - kept];
                    let len = (t + 1) as f64;
                    best_live / len.powf(cfg.len_penalty) <= worst
                });
            if done {
                // Drop the rows just added for this sentence.
                for _ in 0..kept {
                    keep_rows.pop();
                    next_scores.pop();
                    next_hyps.pop();
                    next_prev.pop();
                }
            } else {
                while kept < k {
                    // Fewer than k live continuations: pad with dead rows.
                    keep_rows.push((a * k) as i64);
                    next_scores.push(f64::NEG_INFINITY);
                    next_hyps.push(Vec::new());
                    next_prev.push(pad_id as i64);
                    kept += 1;
                }
                next_active.push(sent);
            }
        }
        if next_active.is_empty() {
            break;
        }
        let ix = Tensor::<B, 1, Int>::from_data(
            TensorData::new(keep_rows.clone(), [keep_rows.len()]),
            &device,
        );
        state.reorder(ix);
        active = next_active;
        scores = next_scores;
        hyps = next_hyps;
        prev = next_prev;
        t += 1;
    }
    finished
        .into_iter()
        .map(|f| {
            f.into_iter()
                .max_by(|a, b| a.score.total_cmp(&b.score))
                .map(|f| f.tokens)
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use crate::vocab::{BOS, EOS, PAD};
    use burn::backend::Flex;

    /// A 12-token, one-layer model.
    fn tiny() -> ModelConfig {
        ModelConfig {
            vocab_size: 12,
            d_model: 16,
            heads: 2,
            ff: 32,
            encoder_layers: 1,
            decoder_layers: 1,
            dropout: 0.0,
            norm_first: true,
            ..ModelConfig::default()
        }
    }

    /// With beam 1 the search must equal greedy decoding done by hand.
    #[test]
    fn beam_one_is_greedy() {
        type B = Flex;
        let cfg = tiny();
        B::seed(&Default::default(), 3);
        let m = cfg.init::<B>(&Default::default());
        let src: Vec<u32> = vec![5, 6, 7, 2];
        let bc = BeamConfig {
            beam: 1,
            max_len_b: 6,
            max_len_a: 0.0,
            ..BeamConfig::default()
        };
        let got = translate_ids(&m, std::slice::from_ref(&src), &bc, &mut NoHook, |_| {});
        let dev = Default::default();
        let s = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![5i64, 6, 7, 2], [1, 4]), &dev);
        let (mem, pad) = m.encode(s);
        let mut st = m.start(mem, pad);
        let mut prev = BOS as i64;
        let mut want = Vec::new();
        for t in 0..6 {
            let step = m.step(
                Tensor::from_data(TensorData::new(vec![prev], [1]), &dev),
                &mut st,
            );
            let mut lp: Vec<f32> = step.log_probs.into_data().to_vec().unwrap();
            lp[PAD as usize] = f32::NEG_INFINITY;
            lp[BOS as usize] = f32::NEG_INFINITY;
            let best = if t == 5 {
                EOS as usize
            } else {
                (0..lp.len())
                    .max_by(|&a, &b| lp[a].total_cmp(&lp[b]))
                    .unwrap()
            };
            if best == EOS as usize {
                break;
            }
            want.push(best as u32);
            prev = best as i64;
        }
        assert_eq!(got[0], want);
    }

    /// At the length limit: fairseq and transformers' forced end stop one token short of
    /// the limit (the end takes the last place); transformers without a forced end fills it.
    /// The end token is made all but impossible, so every hypothesis meets the limit.
    #[test]
    fn the_length_limit_rules() {
        type B = Flex;
        let cfg = ModelConfig {
            logits_bias: true,
            ..tiny()
        };
        let mut m = cfg.init::<B>(&Default::default());
        let mut bias = vec![0f32; 12];
        bias[EOS as usize] = -1e4;
        m.logits_bias = Some(burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [12]),
            &Default::default(),
        )));
        let src: Vec<Vec<u32>> = (4..10).map(|i| vec![i, i + 1, 2]).collect();
        let run = |rule: AtMaxLen, beam: usize| {
            let bc = BeamConfig {
                beam,
                max_len_a: 0.0,
                max_len_b: 3,
                at_max_len: rule,
                early_stopping: false,
                ..BeamConfig::default()
            };
            translate_ids(&m, &src, &bc, &mut NoHook, |_| {})
        };
        for beam in [1, 3] {
            for rule in [AtMaxLen::EosLogProb, AtMaxLen::FreeEos] {
                assert!(run(rule, beam).iter().all(|o| o.len() == 2), "{rule:?}");
            }
            let t = run(AtMaxLen::Truncate, beam);
            assert!(t.iter().all(|o| o.len() == 3 && !o.contains(&EOS)), "{t:?}");
        }
    }
}
