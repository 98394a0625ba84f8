//! ragl's own joint source/target vocabulary: BPE learned with the `tokenizers` crate over
//! both sides of the training text, with a Metaspace pre-tokenizer so that decoding restores
//! the original spacing (BLEU is computed on detokenised text, as sacrebleu expects).

use std::path::Path;

use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::pre_tokenizers::metaspace::Metaspace;
use tokenizers::{AddedToken, ModelWrapper, Tokenizer};

use super::SPECIALS;
use crate::{Error, Result};

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
    use crate::vocab::{EOS, PAD, UNK, Vocab};

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
