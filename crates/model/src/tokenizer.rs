//! Tokenisation through the `tokenizers` crate: `tokenizer.json` when the checkpoint has one,
//! else a BERT WordPiece pipeline built from `vocab.txt`. Single texts encode as
//! `[CLS] a [SEP]`, pairs as `[CLS] a [SEP] b [SEP]` with token types 0/1; inputs longer
//! than `max_len` are truncated (longest first) and counted, never an error.

use std::path::{Path, PathBuf};

use tokenizers::{EncodeInput, Tokenizer, TruncationParams, TruncationStrategy};

use crate::{Error, Result};

/// One encoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// True when the text did not fit in `max_len` tokens.
    pub truncated: bool,
}

pub struct TextTokenizer {
    tok: Tokenizer,
    /// The same pipeline without truncation, for counting tokens.
    counter: Tokenizer,
    path: PathBuf,
    pub max_len: usize,
    pub pad_id: u32,
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl TextTokenizer {
    /// From a checkpoint directory: `tokenizer.json`, else `vocab.txt` (lower-casing unless
    /// `tokenizer_config.json` says `"do_lower_case": false`).
    pub fn from_dir(dir: &Path, max_len: usize) -> Result<Self> {
        let json = dir.join("tokenizer.json");
        let (mut tok, path) = if json.is_file() {
            (
                Tokenizer::from_file(&json).map_err(|e| err(&json, e))?,
                json,
            )
        } else {
            let vocab = dir.join("vocab.txt");
            if !vocab.is_file() {
                return Err(Error::MissingFile {
                    dir: dir.to_path_buf(),
                    file: "tokenizer.json or vocab.txt",
                });
            }
            (wordpiece_from_vocab(dir, &vocab)?, vocab)
        };
        let mut counter = tok.clone();
        counter.with_truncation(None).map_err(|e| err(&path, e))?;
        counter.with_padding(None);
        tok.with_truncation(Some(TruncationParams {
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            ..Default::default()
        }))
        .map_err(|e| err(&path, e))?;
        tok.with_padding(None);
        let pad_id = tok.token_to_id("[PAD]").unwrap_or(0);
        Ok(TextTokenizer {
            tok,
            counter,
            path,
            max_len,
            pad_id,
        })
    }

    /// Encodes texts, or (first, second) pairs, in parallel.
    pub fn encode(&self, items: &[(String, Option<String>)]) -> Result<Vec<Encoded>> {
        let inputs: Vec<EncodeInput> = items
            .iter()
            .map(|(a, b)| match b {
                Some(b) => EncodeInput::Dual(a.as_str().into(), b.as_str().into()),
                None => EncodeInput::Single(a.as_str().into()),
            })
            .collect();
        let encs = self
            .tok
            .encode_batch(inputs, true)
            .map_err(|e| err(&self.path, e))?;
        Ok(encs
            .into_iter()
            .map(|e| Encoded {
                truncated: !e.get_overflowing().is_empty(),
                ids: e.get_ids().to_vec(),
                type_ids: e.get_type_ids().to_vec(),
            })
            .collect())
    }

    /// Number of tokens of each text, without special tokens or truncation, in parallel.
    /// BERT's pre-tokeniser splits at whitespace, so counts of whitespace-separated pieces
    /// add up to the count of their concatenation.
    pub fn count_tokens(&self, texts: &[&str]) -> Result<Vec<usize>> {
        let inputs: Vec<EncodeInput> = texts
            .iter()
            .map(|t| EncodeInput::Single((*t).into()))
            .collect();
        let encs = self
            .counter
            .encode_batch(inputs, false)
            .map_err(|e| err(&self.path, e))?;
        Ok(encs.iter().map(|e| e.get_ids().len()).collect())
    }

    /// Token ids and their character offsets `(start, end)` in the text, without special
    /// tokens or truncation, in parallel.
    #[allow(clippy::type_complexity)]
    pub fn encode_offsets(&self, texts: &[&str]) -> Result<Vec<(Vec<u32>, Vec<(usize, usize)>)>> {
        let inputs: Vec<EncodeInput> = texts
            .iter()
            .map(|t| EncodeInput::Single((*t).into()))
            .collect();
        let encs = self
            .counter
            .encode_batch_char_offsets(inputs, false)
            .map_err(|e| err(&self.path, e))?;
        Ok(encs
            .iter()
            .map(|e| (e.get_ids().to_vec(), e.get_offsets().to_vec()))
            .collect())
    }

    /// Text of `ids` as transformers' fast tokenizer decodes it (`##` pieces joined, spaces
    /// before punctuation cleaned up), special tokens dropped when `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.tok
            .decode(ids, skip_special)
            .map_err(|e| err(&self.path, e))
    }

    pub fn vocab_size(&self) -> usize {
        self.tok.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tok.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tok.id_to_token(id)
    }
}

fn wordpiece_from_vocab(dir: &Path, vocab: &Path) -> Result<Tokenizer> {
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::normalizers::bert::BertNormalizer;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::processors::bert::BertProcessing;
    let lowercase = std::fs::read_to_string(dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("do_lower_case").and_then(|b| b.as_bool()))
        .unwrap_or(true);
    let wp = WordPiece::from_file(&vocab.to_string_lossy())
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| err(vocab, e))?;
    let mut tok = Tokenizer::new(wp);
    let id = |t: &str| {
        tok.token_to_id(t)
            .ok_or_else(|| err(vocab, format!("vocabulary has no {t}")))
    };
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)));
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    // As transformers' BertTokenizerFast: the specials are special (decoding can skip them,
    // and their literal text is the token), and `##` pieces join when decoding.
    let specials: Vec<tokenizers::AddedToken> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .filter(|t| tok.token_to_id(t).is_some())
        .map(|t| tokenizers::AddedToken::from(*t, true))
        .collect();
    tok.add_special_tokens(&specials);
    tok.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::new(
        "##".into(),
        true,
    )));
    tok.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), sep),
        ("[CLS]".into(), cls),
    )));
    Ok(tok)
}
