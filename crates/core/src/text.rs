//! Python-compatible string primitives.
//!
//! Reference tools (sacrebleu, the SQuAD script) are Python; matching them to the last digit
//! means matching `str.split()` and `str.rstrip()`, whose idea of whitespace is
//! `str.isspace()`. That set is Rust's `char::is_whitespace` plus the four ASCII information
//! separators U+001C..U+001F (bidirectional class B/S), which Rust does not count.

/// `str.isspace()` for one character.
#[inline]
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.split()` with no argument: runs of Python whitespace separate, empty pieces dropped.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(py_isspace).filter(|t| !t.is_empty())
}

/// `str.rstrip()` with no argument.
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(py_isspace)
}

/// `' '.join(s.split())`: collapse whitespace runs to one space, trim both ends.
pub fn py_collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, t) in py_split(s).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn information_separators_are_python_whitespace() {
        // Python: 'a\x1cb c'.split() == ['a', 'b', 'c']
        assert_eq!(py_split("a\u{1c}b c").collect::<Vec<_>>(), ["a", "b", "c"]);
        // Python: 'x \x1f\xa0'.rstrip() == 'x'
        assert_eq!(py_rstrip("x \u{1f}\u{a0}"), "x");
        // U+200B ZERO WIDTH SPACE is not whitespace in Python either.
        assert_eq!(py_split("a\u{200b}b").count(), 1);
        assert_eq!(py_collapse_ws("  a \t b\u{3000}c  "), "a b c");
    }
}
