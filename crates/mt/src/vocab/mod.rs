//! A translation model's vocabulary, in one of three schemes:
//! - [`joint`]: ragl's own, one BPE vocabulary learned over both sides of the training text;
//! - [`marian`]: a Hugging Face Marian checkpoint's (`MarianTokenizer`: two SentencePiece
//!   models and `vocab.json`);
//! - [`fsmt`]: a Hugging Face FSMT checkpoint's (`FSMTTokenizer`: Moses, [`bpe`], separate
//!   source and target maps).
//!
//! [`Vocab`] is any of them; [`Specials`] says which ids are special. ragl's own vocabulary
//! has fixed special ids: `<pad>` 0, `<s>` 1, `</s>` 2, `<unk>` 3.

pub mod bpe;
pub mod fsmt;
pub mod joint;
pub mod marian;

pub use fsmt::FsmtVocab;
pub use joint::JointVocab;
pub use marian::MarianVocab;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::{Error, Result};

pub const PAD: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;
pub const UNK: u32 = 3;
pub(crate) const SPECIALS: [&str; 4] = ["<pad>", "<s>", "</s>", "<unk>"];

/// The ids a translation model treats specially.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Specials {
    pub pad: u32,
    /// The decoder's first input (`decoder_start_token_id`; Marian uses the pad id).
    pub bos: u32,
    pub eos: u32,
    pub unk: u32,
}

impl Default for Specials {
    fn default() -> Self {
        Specials {
            pad: PAD,
            bos: BOS,
            eos: EOS,
            unk: UNK,
        }
    }
}

/// A token → id map as an id-indexed list; every id `0..len` exactly once.
pub(crate) fn invert(path: &Path, map: &HashMap<String, u32>) -> Result<Vec<String>> {
    let n = map.len();
    let mut tokens = vec![None; n];
    for (t, &id) in map {
        match tokens.get_mut(id as usize) {
            Some(slot @ None) => *slot = Some(t.clone()),
            _ => {
                return Err(Error::Artifact {
                    path: path.to_path_buf(),
                    message: format!("id {id} ({t:?}) is repeated or outside 0..{n}"),
                });
            }
        }
    }
    Ok(tokens.into_iter().map(|t| t.unwrap_or_default()).collect())
}

/// A translation model's vocabulary: ragl's joint BPE, or a Marian or FSMT checkpoint's.
#[derive(Clone)]
pub enum Vocab {
    Joint(Box<JointVocab>),
    Marian(Arc<MarianVocab>),
    Fsmt(Arc<FsmtVocab>),
}

impl Vocab {
    pub fn train<I, S>(texts: I, size: usize, min_frequency: u64) -> Result<Vocab>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        JointVocab::train(texts, size, min_frequency).map(|v| Vocab::Joint(Box::new(v)))
    }

    pub fn load(path: &Path) -> Result<Vocab> {
        JointVocab::load(path).map(|v| Vocab::Joint(Box::new(v)))
    }

    /// Writes a joint vocabulary's `tokenizer.json`; a Marian vocabulary stays in its
    /// checkpoint and is refused.
    pub fn save(&self, path: &Path) -> Result<()> {
        match self {
            Vocab::Joint(v) => v.save(path),
            Vocab::Marian(m) => Err(Error::Vocab(format!(
                "{}: a Marian vocabulary is read from its checkpoint, not re-saved",
                m.dir.display()
            ))),
            Vocab::Fsmt(m) => Err(Error::Vocab(format!(
                "{}: an FSMT vocabulary is read from its checkpoint, not re-saved",
                m.dir.display()
            ))),
        }
    }

    pub fn specials(&self) -> Specials {
        match self {
            Vocab::Joint(_) => Specials::default(),
            Vocab::Marian(m) => m.specials,
            Vocab::Fsmt(m) => m.specials,
        }
    }

    /// The target vocabulary's size (the output layer's).
    pub fn size(&self) -> usize {
        match self {
            Vocab::Joint(v) => v.size(),
            Vocab::Marian(m) => m.tokens.len(),
            Vocab::Fsmt(m) => m.target_tokens.len(),
        }
    }

    /// Source ids of `text`, ending with `</s>` (fairseq and `MarianTokenizer` alike).
    pub fn encode_source(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = match self {
            Vocab::Joint(v) => v.encode(text)?,
            Vocab::Marian(m) => m.encode(&m.source, text)?,
            Vocab::Fsmt(m) => m.encode(text, false),
        };
        ids.push(self.specials().eos);
        Ok(ids)
    }

    /// Target ids of `text`, without `<s>`/`</s>`.
    pub fn encode_target(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Vocab::Joint(v) => v.encode(text),
            Vocab::Marian(m) => m.encode(&m.target, text),
            Vocab::Fsmt(m) => Ok(m.encode(text, true)),
        }
    }

    /// Subword ids of `text` without `</s>` (the joint vocabulary has one side; a Marian
    /// or FSMT vocabulary segments as its source side does).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Vocab::Joint(v) => v.encode(text),
            Vocab::Marian(m) => m.encode(&m.source, text),
            Vocab::Fsmt(m) => Ok(m.encode(text, false)),
        }
    }

    /// Detokenised target text of `ids`; special tokens are dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Vocab::Joint(v) => v.decode(ids),
            Vocab::Marian(m) => Ok(m.decode(ids)),
            Vocab::Fsmt(m) => Ok(m.decode(ids)),
        }
    }

    pub fn token(&self, id: u32) -> Option<String> {
        match self {
            Vocab::Joint(v) => v.token(id),
            Vocab::Marian(m) => m.tokens.get(id as usize).cloned(),
            Vocab::Fsmt(m) => m.target_tokens.get(id as usize).cloned(),
        }
    }
}
