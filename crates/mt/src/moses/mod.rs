//! The Moses text pipeline as `FSMTTokenizer` runs it through sacremoses (0.2.0): punctuation
//! normalisation ([`normalize`]), tokenisation with aggressive dash splits and XML escapes
//! ([`tokenize`]), and detokenisation ([`detokenize`]), for the languages of the released
//! FSMT checkpoints (German, English, Russian).
//!
//! sacremoses is a port of Perl scripts to Python's `re`; this is a port of its behaviour to
//! Rust's `regex`, rule for rule and in the same order, because a model's ids depend on every
//! space these rules insert. What differs between the engines is spelt out where it
//! matters: Python's `\s` and `str.split()` also treat U+001C–U+001F as whitespace
//! ([`is_space`]); Perl's character classes (`IsAlnum`, `IsN`, …) come from an old Unicode
//! and are copied as ranges ([`tables`], written by `scripts/reference/moses_tables.py`);
//! the one look-ahead is done by hand.

pub mod detokenize;
pub mod normalize;
#[rustfmt::skip]
pub mod tables;
pub mod tokenize;

pub use detokenize::Detokenizer;
pub use normalize::Normalizer;
pub use tokenize::Tokenizer;

/// The languages whose nonbreaking prefixes ragl carries.
pub const LANGUAGES: [&str; 3] = ["de", "en", "ru"];

/// Whether a language is one ragl's Moses port carries.
pub fn supported(lang: &str) -> bool {
    LANGUAGES.contains(&lang)
}

pub(crate) fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    // The first range ending at or after `c` decides.
    let i = ranges.partition_point(|&(_, end)| end < c);
    ranges.get(i).is_some_and(|&(start, _)| start <= c)
}

/// The body of a regex character class (no brackets) matching `ranges`.
pub(crate) fn class(ranges: &[(u32, u32)]) -> String {
    let mut s = String::new();
    for &(a, b) in ranges {
        if a == b {
            s.push_str(&format!("\\x{{{a:x}}}"));
        } else {
            s.push_str(&format!("\\x{{{a:x}}}-\\x{{{b:x}}}"));
        }
    }
    s
}

/// Python's `str.isspace()` (and `\s` in a `str` pattern): Unicode White_Space plus the
/// four information separators U+001C–U+001F.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `\s` as Python reads it, for use inside a character class.
pub(crate) const SPACE: &str = r"\s\x1c-\x1f";

/// Python's `str.split()`.
pub fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|t| !t.is_empty())
}

/// Python's `str.strip()`.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Applies `(regex, replacement)` rules in order, each over the whole text, as `re.sub`
/// does (replacements use `${n}` for groups).
pub(crate) fn apply(rules: &[(regex::Regex, &str)], text: String) -> String {
    rules
        .iter()
        .fold(text, |t, (re, rep)| match re.replace_all(&t, *rep) {
            std::borrow::Cow::Borrowed(_) => t,
            std::borrow::Cow::Owned(s) => s,
        })
}

pub(crate) fn rules(list: &[(&str, &'static str)]) -> Vec<(regex::Regex, &'static str)> {
    list.iter()
        .map(|&(p, r)| (regex::Regex::new(p).expect("Moses rule"), r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_answer_membership() {
        assert!(in_ranges(tables::IS_N, '7'));
        assert!(!in_ranges(tables::IS_N, 'a'));
        assert!(in_ranges(tables::IS_ALPHA, 'ß'));
        assert!(in_ranges(tables::IS_LOWER, 'ä'));
        assert!(!in_ranges(tables::IS_LOWER, 'Ä'));
        assert!(in_ranges(tables::IS_SC, '€'));
        assert!(in_ranges(tables::OTHER, '\u{200b}'));
        assert!(!in_ranges(tables::OTHER, 'x'));
    }

    #[test]
    fn python_whitespace_includes_the_separators() {
        assert_eq!(
            split("a\u{1f}b  c\u{a0}").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(strip("\u{1c} x \n"), "x");
    }
}
