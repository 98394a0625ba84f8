//! `MarianTokenizer`'s scheme (Helsinki-NLP opus-mt checkpoints): two SentencePiece models,
//! one per side, whose pieces map to ids through `vocab.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ragl_model::sentencepiece::SentencePiece;

use super::{Specials, invert};
use crate::{Error, Result};

/// `MarianTokenizer`'s scheme: `source.spm` segments the input, `target.spm` the output,
/// and pieces become ids through `vocab.json` (a piece it lacks is `<unk>`).
pub struct MarianVocab {
    pub dir: PathBuf,
    pub source: SentencePiece,
    pub target: SentencePiece,
    ids: HashMap<String, u32>,
    pub(super) tokens: Vec<String>,
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
        let tokens = invert(&dir.join("vocab.json"), &vocab).map_err(|e| match e {
            Error::Artifact { path, message } => Error::Artifact {
                path,
                message: format!("{message}: not a Marian vocabulary"),
            },
            e => e,
        })?;
        Ok(MarianVocab {
            dir: dir.to_path_buf(),
            source,
            target,
            ids: vocab,
            tokens,
            specials,
        })
    }

    pub(super) fn encode(&self, spm: &SentencePiece, text: &str) -> Result<Vec<u32>> {
        let pieces = spm
            .encode_pieces(text)
            .map_err(|e| Error::Vocab(e.to_string()))?;
        Ok(pieces
            .iter()
            .map(|p| self.ids.get(p).copied().unwrap_or(self.specials.unk))
            .collect())
    }

    pub(super) fn decode(&self, ids: &[u32]) -> String {
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
