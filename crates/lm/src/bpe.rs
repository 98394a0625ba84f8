//! A byte-level BPE tokenizer learned from text, as GPT-2's is built (bytes mapped to
//! printable characters, GPT-2's pre-tokenising regex, merges learned over the words, one
//! special token `<|endoftext|>` that starts documents): what ragl's own language models
//! tokenise with, saved as a `tokenizer.json` that transformers reads.

use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::{Error, Result};

/// GPT-2's document separator, the one special token.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Learns a byte-level BPE of at most `vocab_size` tokens (the 256 bytes and
/// `<|endoftext|>` included) from `texts`; pairs seen fewer than `min_frequency` times are
/// not merged.
pub fn train<S: AsRef<str> + Send>(
    texts: impl Iterator<Item = S> + Send,
    vocab_size: usize,
    min_frequency: u64,
) -> Result<Tokenizer> {
    let mut tok = Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::default()));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(min_frequency)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tok.train(&mut trainer, texts).map_err(|e| Error::Text {
        what: "BPE training".into(),
        message: e.to_string(),
    })?;
    Ok(tok)
}

#[cfg(test)]
mod tests {
    #[test]
    fn learns_merges_and_round_trips_text() {
        let text = [
            "the cat sat on the mat",
            "the dog sat on the log",
            "a cat and a dog",
        ];
        let tok = super::train(text.iter().cycle().take(30), 300, 2).unwrap();
        assert_eq!(tok.token_to_id(super::END_OF_TEXT), Some(0));
        let e = tok.encode("the cat sat", false).unwrap();
        assert!(
            e.get_ids().len() < "the cat sat".len(),
            "merges were learned"
        );
        let back = tok.decode(e.get_ids(), false).unwrap();
        assert_eq!(back, "the cat sat");
        // Bytes never seen still encode (byte-level: no unknown token).
        let e = tok.encode("Zürich ☃", false).unwrap();
        assert_eq!(tok.decode(e.get_ids(), false).unwrap(), "Zürich ☃");
    }
}
