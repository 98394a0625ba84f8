//! The joint source/target subword vocabulary: BPE learned with the `tokenizers` crate over
//! both sides of the training text, with a Metaspace pre-tokenizer so that decoding restores
//! the original spacing (BLEU is computed on detokenised text, as sacrebleu expects).
//!
//! Special tokens have fixed ids: `<pad>` 0, `<s>` 1, `</s>` 2, `<unk>` 3.
//!
//! A Hugging Face Marian checkpoint brings its own: two SentencePiece models (source and
//! target) whose pieces map to ids through `vocab.json`, as `MarianTokenizer` does it
//! ([`MarianVocab`]); [`Vocab`] is either kind, and [`Specials`] says which ids are special.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ragl_model::sentencepiece::SentencePiece;

use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::pre_tokenizers::metaspace::Metaspace;
use tokenizers::{AddedToken, ModelWrapper, Tokenizer};

use crate::{Error, Result};

pub const PAD: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;
pub const UNK: u32 = 3;
const SPECIALS: [&str; 4] = ["<pad>", "<s>", "</s>", "<unk>"];

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

/// A translation model's vocabulary: ragl's joint BPE, or a Marian checkpoint's.
#[derive(Clone)]
pub enum Vocab {
    Joint(Box<JointVocab>),
    Marian(Arc<MarianVocab>),
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
        }
    }

    pub fn specials(&self) -> Specials {
        match self {
            Vocab::Joint(_) => Specials::default(),
            Vocab::Marian(m) => m.specials,
        }
    }

    pub fn size(&self) -> usize {
        match self {
            Vocab::Joint(v) => v.size(),
            Vocab::Marian(m) => m.tokens.len(),
        }
    }

    /// Source ids of `text`, ending with `</s>` (fairseq and `MarianTokenizer` alike).
    pub fn encode_source(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = match self {
            Vocab::Joint(v) => v.encode(text)?,
            Vocab::Marian(m) => m.encode(&m.source, text)?,
        };
        ids.push(self.specials().eos);
        Ok(ids)
    }

    /// Target ids of `text`, without `<s>`/`</s>`.
    pub fn encode_target(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Vocab::Joint(v) => v.encode(text),
            Vocab::Marian(m) => m.encode(&m.target, text),
        }
    }

    /// Subword ids of `text` without `</s>` (the joint vocabulary has one side; a Marian
    /// vocabulary segments with its source model).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Vocab::Joint(v) => v.encode(text),
            Vocab::Marian(m) => m.encode(&m.source, text),
        }
    }

    /// Detokenised target text of `ids`; special tokens are dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Vocab::Joint(v) => v.decode(ids),
            Vocab::Marian(m) => Ok(m.decode(ids)),
        }
    }

    pub fn token(&self, id: u32) -> Option<String> {
        match self {
            Vocab::Joint(v) => v.token(id),
            Vocab::Marian(m) => m.tokens.get(id as usize).cloned(),
        }
    }
}

/// `MarianTokenizer`'s scheme: `source.spm` segments the input, `target.spm` the output,
/// and pieces become ids through `vocab.json` (a piece it lacks is `<unk>`).
pub struct MarianVocab {
    pub dir: PathBuf,
    pub source: SentencePiece,
    pub target: SentencePiece,
    ids: HashMap<String, u32>,
    tokens: Vec<String>,
    pub specials: Specials,
}

impl MarianVocab {
    /// `vocab` is `vocab.json`'s map; it must hold every id `0..len` once.
    pub fn new(
        dir: &Path,
        source: SentencePiece,
        target: SentencePiece,
        vocab: HashMap<String, u32>,
        specials: Specials,
    ) -> Result<MarianVocab> {
        let n = vocab.len();
        let mut tokens = vec![None; n];
        for (t, &id) in &vocab {
            match tokens.get_mut(id as usize) {
                Some(slot @ None) => *slot = Some(t.clone()),
                _ => {
                    return Err(Error::Artifact {
                        path: dir.join("vocab.json"),
                        message: format!(
                            "id {id} ({t:?}) is repeated or outside 0..{n}: not a Marian vocabulary"
                        ),
                    });
                }
            }
        }
        let tokens: Vec<String> = tokens.into_iter().map(|t| t.unwrap_or_default()).collect();
        Ok(MarianVocab {
            dir: dir.to_path_buf(),
            source,
            target,
            ids: vocab,
            tokens,
            specials,
        })
    }

    fn encode(&self, spm: &SentencePiece, text: &str) -> Result<Vec<u32>> {
        let pieces = spm
            .encode_pieces(text)
            .map_err(|e| Error::Vocab(e.to_string()))?;
        Ok(pieces
            .iter()
            .map(|p| self.ids.get(p).copied().unwrap_or(self.specials.unk))
            .collect())
    }

    fn decode(&self, ids: &[u32]) -> String {
        let s = self.specials;
        let pieces: Vec<&str> = ids
            .iter()
            // skip_special_tokens=True: `<unk>` goes too.
            .filter(|&&i| i != s.pad && i != s.eos && i != s.bos && i != s.unk)
            .filter_map(|&i| self.tokens.get(i as usize).map(String::as_str))
            .collect();
        // MarianTokenizer strips the decoded text.
        self.target.decode_pieces(&pieces).trim().to_string()
    }
}

/// A trained joint vocabulary.
#[derive(Clone)]
pub struct JointVocab {
    tokenizer: Tokenizer,
}

impl JointVocab {
    /// Learns a BPE vocabulary of (at most) `size` entries from `texts`.
    pub fn train<I, S>(texts: I, size: usize, min_frequency: u64) -> Result<JointVocab>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        let bpe = BPE::builder()
            .unk_token("<unk>".into())
            .build()
            .map_err(|e| Error::Vocab(e.to_string()))?;
        let mut tokenizer = Tokenizer::new(ModelWrapper::BPE(bpe));
        tokenizer.with_normalizer(Some(NFKC));
        tokenizer.with_pre_tokenizer(Some(Metaspace::default()));
        tokenizer.with_decoder(Some(Metaspace::default()));
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(size)
            .min_frequency(min_frequency)
            .show_progress(false)
            .special_tokens(
                SPECIALS
                    .iter()
                    .map(|s| AddedToken::from(*s, true))
                    .collect(),
            )
            .build()
            .into();
        tokenizer
            .train(&mut trainer, texts)
            .map_err(|e| Error::Vocab(e.to_string()))?;
        let vocab = JointVocab { tokenizer };
        vocab.check_specials()?;
        Ok(vocab)
    }

    pub fn load(path: &Path) -> Result<JointVocab> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| Error::Artifact {
            path: path.to_path_buf(),
            message: format!("not a tokenizer.json: {e}"),
        })?;
        let vocab = JointVocab { tokenizer };
        vocab.check_specials().map_err(|e| Error::Artifact {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(vocab)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self
            .tokenizer
            .to_string(true)
            .map_err(|e| Error::Vocab(e.to_string()))?;
        ragl_core::atomic::write_bytes_atomic(path, json.as_bytes())?;
        Ok(())
    }

    fn check_specials(&self) -> Result<()> {
        for (id, s) in SPECIALS.iter().enumerate() {
            if self.tokenizer.token_to_id(s) != Some(id as u32) {
                return Err(Error::Vocab(format!(
                    "special token {s} must have id {id}: not a ragl MT vocabulary"
                )));
            }
        }
        Ok(())
    }

    pub fn size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Subword ids of `text`, without `<s>`/`</s>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::Vocab(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Detokenised text of `ids`; special tokens are dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| Error::Vocab(e.to_string()))
    }

    pub fn token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trains_and_round_trips_text() {
        let texts = [
            "Ein Mann fährt Fahrrad.",
            "A man rides a bicycle.",
            "Zwei Hunde spielen im Schnee.",
            "Two dogs play in the snow.",
        ];
        let v = Vocab::train(texts.iter().cycle().take(40), 200, 1).unwrap();
        assert_eq!(v.token(PAD).as_deref(), Some("<pad>"));
        assert_eq!(v.token(EOS).as_deref(), Some("</s>"));
        for t in texts {
            let ids = v.encode(t).unwrap();
            assert!(!ids.contains(&UNK), "{t}");
            assert_eq!(v.decode(&ids).unwrap(), t);
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        v.save(&p).unwrap();
        let w = Vocab::load(&p).unwrap();
        assert_eq!(w.encode(texts[0]).unwrap(), v.encode(texts[0]).unwrap());
    }
}
