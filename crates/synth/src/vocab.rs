//! A WordPiece vocabulary (`vocab.txt`) for a closed world: BERT's special tokens, every
//! word the texts contain (lower-cased, split as BERT's basic tokenizer splits: at
//! whitespace and around punctuation), then single characters and `##` continuations so
//! that an unseen word still tokenizes. A model trained from scratch on the world then sees
//! every name as one token, and a masked name is one `[MASK]`.

use rustc_hash::FxHashSet;

pub const SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// The words of `text` as BERT's uncased basic tokenizer gives them (ASCII text).
pub fn basic_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        if ch.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if ch.is_ascii_punctuation() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(ch.to_string());
        } else {
            cur.extend(ch.to_lowercase());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Vocabulary lines in id order: `[PAD]` is 0, then the other specials, the words in order
/// of first appearance, then characters.
pub fn wordpiece_vocab<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen: FxHashSet<String> = FxHashSet::default();
    let mut out: Vec<String> = Vec::new();
    let mut add = |w: String, out: &mut Vec<String>| {
        if seen.insert(w.clone()) {
            out.push(w);
        }
    };
    for s in SPECIAL {
        add(s.to_string(), &mut out);
    }
    for t in texts {
        for w in basic_words(t) {
            add(w, &mut out);
        }
    }
    let chars = ('a'..='z').chain('0'..='9');
    for c in chars.clone() {
        add(c.to_string(), &mut out);
    }
    for c in chars {
        add(format!("##{c}"), &mut out);
    }
    for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".chars() {
        add(c.to_string(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_bert_and_vocab_starts_with_specials() {
        assert_eq!(
            basic_words("Ana Tol was born in Ketmere in 1843."),
            [
                "ana", "tol", "was", "born", "in", "ketmere", "in", "1843", "."
            ]
        );
        let v = wordpiece_vocab(["B a.", "a c"]);
        assert_eq!(
            &v[..8],
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "b", "a", "."]
        );
        assert!(v.contains(&"##z".to_string()));
        let unique: FxHashSet<_> = v.iter().collect();
        assert_eq!(unique.len(), v.len());
    }
}
