//! The masked examples (`ragl mask make` output), the tokenised corpus, where a masked
//! span occurs in it, and the data order: the held-out split and the batch of each step.

use std::path::Path;

use ragl_core::passage::Passage;
use ragl_core::read::Input;
use ragl_core::rng::Rng;
use ragl_model::tokenizer::{Encoded, TextTokenizer};
use ragl_reader::mlm::{Masked, doc_view};
use serde::Deserialize;

use super::config::PretrainConfig;
use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
pub struct MaskedExample {
    pub id: String,
    pub passage_id: String,
    pub input_ids: Vec<u32>,
    pub masked_positions: Vec<usize>,
    pub masked_ids: Vec<u32>,
    #[serde(default)]
    pub strategy: String,
}

impl MaskedExample {
    pub(crate) fn masked(&self) -> Masked {
        Masked {
            positions: self.masked_positions.clone(),
            labels: self.masked_ids.clone(),
        }
    }
}

/// Reads `ragl mask make` output; a bad line is a `file:line` error.
pub fn read_examples(path: &Path) -> Result<Vec<MaskedExample>> {
    use std::io::BufRead as _;
    let input = Input::from_arg(path);
    let reader = input.open()?;
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| ragl_core::Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let ex: MaskedExample = serde_json::from_str(&line)
            .map_err(|e| ragl_core::Error::format(path, i as u64 + 1, e.to_string()))?;
        let bad = ex.masked_positions.len() != ex.masked_ids.len()
            || ex.masked_positions.is_empty()
            || ex
                .masked_positions
                .iter()
                .any(|&p| p == 0 || p + 1 >= ex.input_ids.len());
        if bad {
            return Err(ragl_core::Error::format(
                path,
                i as u64 + 1,
                "masked_positions must be non-empty, inside the sentence, one per masked_ids",
            )
            .into());
        }
        out.push(ex);
    }
    if out.is_empty() {
        return Err(ragl_core::Error::format(path, 1, "no examples").into());
    }
    Ok(out)
}

/// Tokenised corpus: the doc tower's view and the reader's.
pub struct Corpus {
    pub passages: Vec<Passage>,
    pub row_of: std::collections::HashMap<String, u32>,
    pub tower: Vec<Encoded>,
    /// Word pieces of each document for the reader, ending with `[SEP]` (no `[CLS]`).
    pub reader: Vec<Vec<u32>>,
    /// `[CLS] [SEP]`: the null document as the doc tower sees it.
    pub null: Encoded,
}

impl Corpus {
    pub fn load(
        path: &Path,
        tower_tok: &TextTokenizer,
        reader_tok: &TextTokenizer,
    ) -> Result<Self> {
        let mut passages = Vec::new();
        for p in ragl_core::passage::Passages::open(&Input::from_arg(path), false)? {
            passages.push(p?);
        }
        let pairs: Vec<(String, Option<String>)> =
            passages.iter().map(Passage::encoder_pair).collect();
        let tower = tower_tok.encode(&pairs)?;
        let reader = reader_tok
            .encode(&pairs)?
            .into_iter()
            .map(|e| e.ids[1..].to_vec())
            .collect();
        let null = tower_tok
            .encode(&[(String::new(), None)])?
            .pop()
            .expect("one");
        let row_of = passages
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i as u32))
            .collect();
        Ok(Corpus {
            passages,
            row_of,
            tower,
            reader,
            null,
        })
    }
}

/// Whether `needle` occurs in `hay` as a contiguous run.
pub(crate) fn holds(hay: &[u32], needle: &[u32]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether `e`'s masked span occurs in a passage of `corpus` other than row `skip`, cut as
/// the reader would cut it.
pub(crate) fn span_found(
    corpus: &Corpus,
    e: &MaskedExample,
    skip: Option<u32>,
    sep: u32,
    max_len: usize,
) -> bool {
    span_holders(corpus, e, skip, sep, max_len).next().is_some()
}

/// The rows of the passages other than `skip` that hold `e`'s masked span, cut as the
/// reader would cut them.
pub(crate) fn span_holders<'a>(
    corpus: &'a Corpus,
    e: &'a MaskedExample,
    skip: Option<u32>,
    sep: u32,
    max_len: usize,
) -> impl Iterator<Item = u32> + 'a {
    corpus
        .reader
        .iter()
        .enumerate()
        .filter(move |&(r, z)| {
            Some(r as u32) != skip
                && holds(doc_view(e.input_ids.len(), z, sep, max_len), &e.masked_ids)
        })
        .map(|(r, _)| r as u32)
}

/// The training / held-out split: a seeded shuffle, the last `heldout` held out.
pub fn split(n: usize, heldout: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed ^ 0x5EED_5917).shuffle(&mut order);
    let h = heldout.min(n.saturating_sub(1));
    let held = order.split_off(n - h);
    (order, held)
}

/// The examples of step `step` (0-based): epochs of a seeded shuffle, the last partial batch
/// of each epoch dropped, so the position is a function of the step alone.
pub fn batch_at(train: &[usize], batch: usize, seed: u64, step: u64) -> Vec<usize> {
    let per_epoch = (train.len() / batch.max(1)).max(1) as u64;
    let epoch = step / per_epoch;
    let pos = (step % per_epoch) as usize;
    let mut order = train.to_vec();
    Rng::new(seed ^ (epoch + 1).wrapping_mul(0x9E37_79B9)).shuffle(&mut order);
    order[pos * batch..(pos * batch + batch).min(order.len())].to_vec()
}

/// What a run reads before it trains: both tokenizers (whose vocabularies must agree: the
/// towers read the reader's masked ids), the corpus and the examples, each example's
/// passage checked to be in the corpus (and, with `data.span_elsewhere`, only the
/// examples whose span another passage holds kept).
pub struct RunData {
    pub tower_tok: TextTokenizer,
    pub reader_tok: TextTokenizer,
    /// The reader's `[SEP]`.
    pub sep: u32,
    pub corpus: Corpus,
    pub examples: Vec<MaskedExample>,
    /// Examples read (before `data.span_elsewhere`).
    pub examples_read: usize,
}

impl RunData {
    pub fn load(cfg: &PretrainConfig) -> Result<Self> {
        let m = &cfg.model;
        let tower_tok = TextTokenizer::from_dir(&m.query, m.doc_max_len)?;
        let reader_tok = TextTokenizer::from_dir(&m.reader, 512)?;
        if tower_tok.vocab_size() != reader_tok.vocab_size()
            || tower_tok.token_to_id("[MASK]") != reader_tok.token_to_id("[MASK]")
        {
            return Err(Error::Mismatch(format!(
                "{} and {} have different vocabularies: the towers read the reader's masked ids",
                m.query.display(),
                m.reader.display()
            )));
        }
        let sep = reader_tok
            .token_to_id("[SEP]")
            .ok_or_else(|| Error::Mismatch("the reader's tokenizer has no [SEP]".into()))?;
        let corpus = Corpus::load(&cfg.data.passages, &tower_tok, &reader_tok)?;
        let examples = read_examples(&cfg.data.examples)?;
        if let Some(e) = examples
            .iter()
            .find(|e| !corpus.row_of.contains_key(&e.passage_id))
        {
            return Err(Error::Mismatch(format!(
                "{}: example {} comes from passage {:?}, which {} does not have",
                cfg.data.examples.display(),
                e.id,
                e.passage_id,
                cfg.data.passages.display()
            )));
        }
        let examples_read = examples.len();
        let examples: Vec<MaskedExample> = if cfg.data.span_elsewhere {
            let kept: Vec<MaskedExample> = examples
                .into_iter()
                .filter(|e| {
                    let own = corpus.row_of.get(&e.passage_id).copied();
                    span_found(&corpus, e, own, sep, m.reader_max_len)
                })
                .collect();
            if kept.len() < 2 {
                return Err(Error::Mismatch(format!(
                    "{}: data.span_elsewhere keeps {} example(s): too few to train and hold out",
                    cfg.data.examples.display(),
                    kept.len()
                )));
            }
            kept
        } else {
            examples
        };
        Ok(RunData {
            tower_tok,
            reader_tok,
            sep,
            corpus,
            examples,
            examples_read,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ragl_reader::mlm::join;

    #[test]
    fn batches_depend_on_the_step_alone() {
        let train: Vec<usize> = (0..10).collect();
        let a = batch_at(&train, 3, 7, 4);
        let b = batch_at(&train, 3, 7, 4);
        assert_eq!(a, b);
        // An epoch is 3 batches (the tenth example is dropped); every batch of an epoch is
        // distinct.
        let e: Vec<usize> = (0..3).flat_map(|s| batch_at(&train, 3, 7, s)).collect();
        let mut u = e.clone();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), 9);
        assert_ne!(batch_at(&train, 3, 7, 0), batch_at(&train, 3, 7, 3));
    }

    #[test]
    fn a_span_is_found_in_the_document_part_only() {
        let x = [101, 7, 103, 102];
        let z = [5, 6, 9, 102];
        let seen = doc_view(x.len(), &z, 102, 64);
        assert_eq!(seen, &join(&x, Some(&z), 102, 64).ids[x.len()..x.len() + 3]);
        assert!(holds(seen, &[6, 9]));
        // In x (where it is not masked, here 7) but not in z: no hit.
        assert!(!holds(seen, &[7]));
        // Cut off by the reader's length: no hit.
        assert!(!holds(doc_view(x.len(), &z, 102, 7), &[9]));
        assert!(!holds(&[1, 2], &[]));
    }

    #[test]
    fn split_holds_out_the_asked_number() {
        let (tr, he) = split(100, 10, 1);
        assert_eq!((tr.len(), he.len()), (90, 10));
        let mut all: Vec<usize> = tr.iter().chain(&he).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }
}
