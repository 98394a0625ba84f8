//! What `FSMTTokenizer.moses_pipeline` does to a sentence before tokenising it: its own
//! `replace_unicode_punct` (a port of Moses' `replace-unicode-punctuation.perl`), then
//! sacremoses' `MosesPunctNormalizer(lang)` with its defaults (Penn quotes, quote/comma
//! and number normalisation), then `remove_non_printing_char` (every character of Unicode
//! category C goes).

use regex::Regex;

use super::{SPACE, apply, in_ranges, rules, strip, tables};

/// FSMT's `replace_unicode_punct`, in its order.
const UNICODE_PUNCT: &[(&str, &str)] = &[
    ("，", ","),
    (r"。[\s\x1c-\x1f]*", ". "),
    ("、", ","),
    ("”", "\""),
    ("“", "\""),
    ("∶", ":"),
    ("：", ":"),
    ("？", "?"),
    ("《", "\""),
    ("》", "\""),
    ("）", ")"),
    ("！", "!"),
    ("（", "("),
    ("；", ";"),
    ("１", "1"),
    ("」", "\""),
    ("「", "\""),
    ("０", "0"),
    ("３", "3"),
    ("２", "2"),
    ("５", "5"),
    ("６", "6"),
    ("９", "9"),
    ("７", "7"),
    ("８", "8"),
    ("４", "4"),
    (r"．[\s\x1c-\x1f]*", ". "),
    ("～", "~"),
    ("’", "'"),
    ("…", "..."),
    ("━", "-"),
    ("〈", "<"),
    ("〉", ">"),
    ("【", "["),
    ("】", "]"),
    ("％", "%"),
];

/// `MosesPunctNormalizer`'s rules up to the language-dependent ones (extra whitespace,
/// Penn quotes, Unicode punctuation, French quotes, pseudo-spaces).
const COMMON: &[(&str, &str)] = &[
    (r"\r", ""),
    (r"\(", " ("),
    (r"\)", ") "),
    (r" +", " "),
    (r"\) ([.!:?;,])", ")${1}"),
    (r"\( ", "("),
    (r" \)", ")"),
    (r"(\d) %", "${1}%"),
    (r" :", ":"),
    (r" ;", ";"),
    ("`", "'"),
    ("''", " \" "),
    ("„", "\""),
    ("“", "\""),
    ("”", "\""),
    ("–", "-"),
    ("—", " - "),
    (r" +", " "),
    ("´", "'"),
    ("([a-zA-Z])‘([a-zA-Z])", "${1}'${2}"),
    ("([a-zA-Z])’([a-zA-Z])", "${1}'${2}"),
    ("‘", "'"),
    ("‚", "'"),
    ("’", "'"),
    ("''", "\""),
    ("´´", "\""),
    ("…", "..."),
    ("\u{a0}«\u{a0}", "\""),
    ("«\u{a0}", "\""),
    ("«", "\""),
    ("\u{a0}»\u{a0}", "\""),
    ("\u{a0}»", "\""),
    ("»", "\""),
    ("\u{a0}%", "%"),
    ("nº\u{a0}", "nº "),
    ("\u{a0}:", ":"),
    ("\u{a0}ºC", " ºC"),
    ("\u{a0}cm", " cm"),
    ("\u{a0}\\?", "?"),
    ("\u{a0}!", "!"),
    ("\u{a0};", ";"),
    (",\u{a0}", ", "),
    (r" +", " "),
];

const EN_QUOTE_COMMA: &[(&str, &str)] = &[(r#""([,.]+)"#, "${1}\"")];
const DE_QUOTE_COMMA: &[(&str, &str)] = &[
    (r#",""#, "\","),
    // Not a period at the end of the sentence.
    (r#"(\.+)"([\s\x1c-\x1f]*[^<])"#, "\"${1}${2}"),
];
const DE_NUMBERS: &[(&str, &str)] = &[("(\\d)\u{a0}(\\d)", "${1},${2}")];
const OTHER_NUMBERS: &[(&str, &str)] = &[("(\\d)\u{a0}(\\d)", "${1}.${2}")];

/// The normaliser for one language.
pub struct Normalizer {
    unicode: Vec<(Regex, &'static str)>,
    rules: Vec<(Regex, &'static str)>,
}

impl Normalizer {
    pub fn new(lang: &str) -> Normalizer {
        debug_assert!(SPACE == r"\s\x1c-\x1f");
        let mut list: Vec<(&str, &str)> = COMMON.to_vec();
        match lang {
            "en" => list.extend_from_slice(EN_QUOTE_COMMA),
            "de" | "es" | "fr" => list.extend_from_slice(DE_QUOTE_COMMA),
            _ => {}
        }
        match lang {
            "de" | "es" | "cz" | "cs" | "fr" => list.extend_from_slice(DE_NUMBERS),
            _ => list.extend_from_slice(OTHER_NUMBERS),
        }
        Normalizer {
            unicode: rules(UNICODE_PUNCT),
            rules: rules(&list),
        }
    }

    /// The whole of `moses_pipeline`.
    pub fn normalize(&self, text: &str) -> String {
        let t = apply(&self.unicode, text.to_string());
        let t = apply(&self.rules, t);
        strip(&t)
            .chars()
            .filter(|&c| !in_ranges(tables::OTHER, c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are sacremoses 0.2.0's.
    #[test]
    fn quotes_dashes_and_spaces_follow_moses() {
        let de = Normalizer::new("de");
        assert_eq!(
            de.normalize("„Ja“ – sagte er (leise) ."),
            "\"Ja\" - sagte er (leise)."
        );
        assert_eq!(de.normalize("1\u{a0}000 Euro"), "1,000 Euro");
        assert_eq!(de.normalize("Er sagte,\"ja\""), "Er sagte\",ja\"");
        let en = Normalizer::new("en");
        assert_eq!(
            en.normalize("1\u{a0}000 \"yes\", he said"),
            "1.000 \"yes,\" he said"
        );
        assert_eq!(en.normalize("said \"yes\"."), "said \"yes.\"");
        assert_eq!(en.normalize("a\u{200b}b\u{7}"), "ab");
    }
}
