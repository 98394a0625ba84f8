//! sacremoses' `MosesDetokenizer(lang).detokenize(tokens)`: undoes the dash splits and XML
//! escapes, then decides token by token whether a space goes before it (punctuation,
//! currency, English contractions, paired quotes). `FSMTTokenizer.decode` ends with it.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::{class, in_ranges, split, tables};

struct Rules {
    currency: Regex,
    punct: Regex,
    english_contraction: Regex,
    open_quote: Regex,
}

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let sc = class(tables::IS_SC);
    let alpha = class(tables::IS_ALPHA_PLAIN);
    Rules {
        currency: Regex::new(&format!(r"^[{sc}\(\[\{{¿¡]+$")).expect("rule"),
        punct: Regex::new(r"^[,\.\?!:;\\%\}\]\)]+$").expect("rule"),
        english_contraction: Regex::new(&format!("^['][{alpha}]")).expect("rule"),
        open_quote: Regex::new(r#"^['"„“`]+$"#).expect("rule"),
    }
});

/// The unescapes, in sacremoses' order.
const UNESCAPE: &[(&str, &str)] = &[
    ("&bar;", "|"),
    ("&#124;", "|"),
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&bra;", "["),
    ("&ket;", "]"),
    ("&quot;", "\""),
    ("&apos;", "'"),
    ("&#91;", "["),
    ("&#93;", "]"),
    ("&amp;", "&"),
];

/// The detokenizer for one language.
pub struct Detokenizer {
    lang: String,
}

impl Detokenizer {
    pub fn new(lang: &str) -> Detokenizer {
        Detokenizer {
            lang: lang.to_string(),
        }
    }

    pub fn detokenize(&self, tokens: &[&str]) -> String {
        let r = &*RULES;
        let mut text = format!(" {} ", tokens.join(" ")).replace(" @-@ ", "-");
        for (from, to) in UNESCAPE {
            text = text.replace(from, to);
        }
        let toks: Vec<&str> = split(&text).collect();
        let en = self.lang == "en";
        let mut quotes: HashMap<&str, usize> = HashMap::new();
        let mut out = String::new();
        let mut space = " ";
        for (i, &tok) in toks.iter().enumerate() {
            let first = tok.chars().next().expect("non-empty");
            if in_ranges(tables::CJK, first) && self.lang != "ko" {
                let prev_cjk = i > 0
                    && toks[i - 1]
                        .chars()
                        .next_back()
                        .is_some_and(|c| in_ranges(tables::CJK, c));
                if !prev_cjk {
                    out.push_str(space);
                }
                out.push_str(tok);
                space = " ";
            } else if r.currency.is_match(tok) {
                out.push_str(space);
                out.push_str(tok);
                space = "";
            } else if r.punct.is_match(tok) || (en && i > 0 && r.english_contraction.is_match(tok))
            {
                out.push_str(tok);
                space = " ";
            } else if r.open_quote.is_match(tok) {
                let q = if tok.chars().all(|c| matches!(c, '„' | '“' | '”')) {
                    "\""
                } else {
                    tok
                };
                let count = quotes.entry(q).or_insert(0);
                if count.is_multiple_of(2) {
                    if en && tok == "'" && i > 0 && toks[i - 1].ends_with('s') {
                        out.push_str(tok);
                        space = " ";
                    } else {
                        out.push_str(space);
                        out.push_str(tok);
                        space = "";
                        *count += 1;
                    }
                } else {
                    out.push_str(tok);
                    space = " ";
                    *count += 1;
                }
            } else {
                out.push_str(space);
                out.push_str(tok);
                space = " ";
            }
        }
        split(&out).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are sacremoses 0.2.0's.
    #[test]
    fn joins_as_sacremoses_does() {
        let en = Detokenizer::new("en");
        let t = [
            "It", "&apos;s", "a", "e", "@-@", "mail", "for", "Mr.", "Smith", "&apos;s", "dog", ".",
        ];
        assert_eq!(en.detokenize(&t), "It's a e-mail for Mr. Smith's dog.");
        let t = [
            "&quot;", "Hello", "&quot;", ",", "he", "said", "$", "5", "(", "ok", ")",
        ];
        assert_eq!(en.detokenize(&t), "\"Hello\", he said $5 (ok)");
    }
}
