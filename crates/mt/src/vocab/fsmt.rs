//! `FSMTTokenizer`'s scheme (fairseq's WMT19 transformers as Hugging Face ports them): the
//! Moses pipeline (Unicode punctuation, punctuation normalisation, non-printing characters
//! removed, tokenisation with aggressive dash splits and XML escapes), BPE with `</w>` word
//! ends from `merges.txt`, and separate source and target maps (`vocab-src.json`,
//! `vocab-tgt.json`). Decoding joins the subwords and runs the Moses detokenizer in the
//! target language.
//!
//! One deliberate difference: `FSMTTokenizer` tokenises a target text (`text_target=`) in
//! the source language and looks it up in the source map; ragl encodes targets as fairseq
//! prepared them (target language, target map). The two agree for `wmt19-de-en`/`en-de`,
//! whose maps are one merged vocabulary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::bpe::{Bpe, END};
use super::{Specials, invert};
use crate::moses;
use crate::{Error, Result};

/// One side's Moses stages.
struct Side {
    normalizer: moses::Normalizer,
    tokenizer: moses::Tokenizer,
}

impl Side {
    fn new(dir: &Path, lang: &str) -> Result<Side> {
        let tokenizer = moses::Tokenizer::new(lang).ok_or_else(|| Error::Artifact {
            path: dir.join("config.json"),
            message: format!(
                "language {lang:?}: ragl's Moses port carries {} only",
                moses::LANGUAGES.join(", ")
            ),
        })?;
        Ok(Side {
            normalizer: moses::Normalizer::new(lang),
            tokenizer,
        })
    }
}

pub struct FsmtVocab {
    pub dir: PathBuf,
    pub langs: [String; 2],
    lower: bool,
    source_side: Side,
    target_side: Side,
    detokenizer: moses::Detokenizer,
    bpe: Bpe,
    source: HashMap<String, u32>,
    target: HashMap<String, u32>,
    pub(super) target_tokens: Vec<String>,
    pub specials: Specials,
}

impl FsmtVocab {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dir: &Path,
        langs: [String; 2],
        lower: bool,
        bpe: Bpe,
        source: HashMap<String, u32>,
        target: HashMap<String, u32>,
        specials: Specials,
    ) -> Result<FsmtVocab> {
        let target_tokens = invert(&dir.join("vocab-tgt.json"), &target)?;
        invert(&dir.join("vocab-src.json"), &source)?;
        Ok(FsmtVocab {
            dir: dir.to_path_buf(),
            source_side: Side::new(dir, &langs[0])?,
            target_side: Side::new(dir, &langs[1])?,
            detokenizer: moses::Detokenizer::new(&langs[1]),
            langs,
            lower,
            bpe,
            source,
            target,
            target_tokens,
            specials,
        })
    }

    pub fn source_size(&self) -> usize {
        self.source.len()
    }

    /// The subword strings of `text` on one side (`FSMTTokenizer.tokenize`).
    pub fn pieces(&self, text: &str, target: bool) -> Vec<String> {
        let side = if target {
            &self.target_side
        } else {
            &self.source_side
        };
        let text = if self.lower {
            text.to_lowercase()
        } else {
            text.to_string()
        };
        let text = side.normalizer.normalize(&text);
        side.tokenizer
            .tokenize(&text)
            .iter()
            .flat_map(|t| self.bpe.segment(t))
            .collect()
    }

    pub(super) fn encode(&self, text: &str, target: bool) -> Vec<u32> {
        let map = if target { &self.target } else { &self.source };
        let unk = map.get("<unk>").copied().unwrap_or(self.specials.unk);
        self.pieces(text, target)
            .iter()
            .map(|p| map.get(p).copied().unwrap_or(unk))
            .collect()
    }

    pub(super) fn decode(&self, ids: &[u32]) -> String {
        let s = self.specials;
        let mut text = String::new();
        for &i in ids {
            // skip_special_tokens=True: `<unk>` goes too.
            if i == s.pad || i == s.eos || i == s.bos || i == s.unk {
                continue;
            }
            let t = self
                .target_tokens
                .get(i as usize)
                .map_or("<unk>", String::as_str);
            text.push_str(&t.replace(' ', "").replace(END, " "));
        }
        let words: Vec<&str> = moses::split(&text).collect();
        self.detokenizer.detokenize(&words)
    }
}
