//! sacrebleu's BLEU tokenizers, reproduced exactly: `13a` (mteval-v13a, the WMT default),
//! `intl` (mteval-v14 international), `char` and `none`.
//!
//! Upstream: sacrebleu 2.6.0 `sacrebleu/tokenizers/tokenizer_{13a,re,intl,char,none}.py`.
//! The four regex substitutions of `13a` each match exactly one or two characters, so they
//! are written as left-to-right scans with the same non-overlapping, leftmost semantics as
//! Python's `re.sub`; that is several times faster than running the regexes and provably the
//! same. `intl` needs Unicode general categories and uses the `regex` crate.

use std::sync::LazyLock;

use ragl_core::text::py_collapse_ws;
use regex::Regex;

/// A BLEU tokenizer, named as in sacrebleu's `--tokenize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokenizer {
    ThirteenA,
    Intl,
    Char,
    None,
}

impl Tokenizer {
    pub const NAMES: [&'static str; 4] = ["13a", "intl", "char", "none"];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "13a" => Tokenizer::ThirteenA,
            "intl" => Tokenizer::Intl,
            "char" => Tokenizer::Char,
            "none" => Tokenizer::None,
            _ => return None,
        })
    }

    /// The name in the signature (`tok:13a`).
    pub fn signature(self) -> &'static str {
        match self {
            Tokenizer::ThirteenA => "13a",
            Tokenizer::Intl => "intl",
            Tokenizer::Char => "char",
            Tokenizer::None => "none",
        }
    }

    /// Tokenizes one segment; tokens are then separated by Python whitespace.
    pub fn tokenize(self, line: &str) -> String {
        match self {
            Tokenizer::ThirteenA => tokenize_13a(line),
            Tokenizer::Intl => tokenize_intl(line),
            Tokenizer::Char => {
                let mut out = String::with_capacity(line.len() * 2);
                for (i, c) in line.chars().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push(c);
                }
                out
            }
            Tokenizer::None => line.to_owned(),
        }
    }
}

/// `Tokenizer13a.__call__`.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let padded: Vec<char> = format!(" {line} ").chars().collect();
    post_tokenize_re(&padded)
}

/// `([\{-\~\[-\` -\&\(-\+\:-\@\/])` → ` \1 `: the ASCII symbols mteval splits off.
#[inline]
fn is_13a_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// `TokenizerRegexp.__call__`: four substitutions, then whitespace collapsing.
fn post_tokenize_re(chars: &[char]) -> String {
    // 1. Symbols get a space on each side.
    let mut a: Vec<char> = Vec::with_capacity(chars.len() * 2);
    for &c in chars {
        if is_13a_symbol(c) {
            a.extend([' ', c, ' ']);
        } else {
            a.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let dot_comma = |c: char| c == '.' || c == ',';
    // 2. ([^0-9])([\.,]) → \1 \2 : period and comma unless preceded by a digit.
    let a = scan_pairs(
        &a,
        |x, y| !digit(x) && dot_comma(y),
        |x, y, o| o.extend([x, ' ', y, ' ']),
    );
    // 3. ([\.,])([^0-9]) → ' \1 \2': period and comma unless followed by a digit.
    let a = scan_pairs(
        &a,
        |x, y| dot_comma(x) && !digit(y),
        |x, y, o| o.extend([' ', x, ' ', y]),
    );
    // 4. ([0-9])(-) → \1 \2 : dash after a digit.
    let a = scan_pairs(
        &a,
        |x, y| digit(x) && y == '-',
        |x, y, o| o.extend([x, ' ', y, ' ']),
    );
    let s: String = a.into_iter().collect();
    py_collapse_ws(&s)
}

/// One `re.sub` of a two-character pattern: leftmost matches, non-overlapping, scanning
/// resumes after each match.
fn scan_pairs(
    s: &[char],
    matches: impl Fn(char, char) -> bool,
    emit: impl Fn(char, char, &mut Vec<char>),
) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() + s.len() / 4);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && matches(s[i], s[i + 1]) {
            emit(s[i], s[i + 1], &mut out);
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

static INTL: LazyLock<[(Regex, &'static str); 3]> = LazyLock::new(|| {
    [
        (Regex::new(r"(\P{N})(\p{P})").unwrap(), "$1 $2 "),
        (Regex::new(r"(\p{P})(\P{N})").unwrap(), " $1 $2"),
        (Regex::new(r"(\p{S})").unwrap(), " $1 "),
    ]
});

/// `TokenizerV14International.__call__`.
pub fn tokenize_intl(line: &str) -> String {
    let mut s = line.to_owned();
    for (re, rep) in INTL.iter() {
        s = re.replace_all(&s, *rep).into_owned();
    }
    py_collapse_ws(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings from sacrebleu 2.6.0:
    //   from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a; Tokenizer13a()(s)
    //   from sacrebleu.tokenizers.tokenizer_intl import TokenizerV14International; ...
    #[test]
    fn thirteen_a_matches_sacrebleu() {
        let cases = [
            ("Hello, world.", "Hello , world ."),
            (
                "It costs $3.50, i.e. 1,000-2,000 units!",
                "It costs $ 3.50 , i . e . 1,000 - 2,000 units !",
            ),
            ("a..b,,c 3.. 4,.", "a . . b , , c 3 . . 4 , ."),
            (
                "&quot;x&quot; &amp; y &lt;z&gt; <skipped>",
                "\" x \" & y < z >",
            ),
            (
                "e-mail 1990-91 (x) [y] {z} a/b",
                "e-mail 1990 - 91 ( x ) [ y ] { z } a / b",
            ),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(tokenize_13a(input), want, "input {input:?}");
        }
    }

    #[test]
    fn intl_matches_sacrebleu() {
        let cases = [
            ("Hello, world.", "Hello , world ."),
            (
                "1,000.5 «quoted» €5 — yes!",
                "1,000.5 « quoted » € 5 — yes !",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(tokenize_intl(input), want, "input {input:?}");
        }
    }

    #[test]
    fn char_and_none() {
        assert_eq!(Tokenizer::Char.tokenize("ab c"), "a b   c");
        assert_eq!(Tokenizer::None.tokenize(" a  b "), " a  b ");
    }
}
