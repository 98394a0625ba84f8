//! sacremoses' `MosesTokenizer(lang).tokenize(text, aggressive_dash_splits=True,
//! escape=True)`, the call `FSMTTokenizer` makes: rule for rule, in sacremoses' order.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::{SPACE, apply, class, in_ranges, is_space, rules, split, strip, tables};

struct Rules {
    pad_not_alnum: Regex,
    multidot: Regex,
    multidot_marker: Regex,
    commas: Vec<(Regex, &'static str)>,
    english: Vec<(Regex, &'static str)>,
    french: Vec<(Regex, &'static str)>,
    trailing_dot_apostrophe: Regex,
}

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let alnum = class(tables::IS_ALNUM);
    let alpha = class(tables::IS_ALPHA);
    let n = class(tables::IS_N);
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let english = [
        (format!("([^{alpha}])[']([^{alpha}])"), "${1} ' ${2}"),
        (format!("([^{alpha}{n}])[']([{alpha}])"), "${1} ' ${2}"),
        (format!("([{alpha}])[']([^{alpha}])"), "${1} ' ${2}"),
        (format!("([{alpha}])[']([{alpha}])"), "${1} '${2}"),
        (format!("([{n}])[']([s])"), "${1} '${2}"),
    ];
    let french = [
        (format!("([^{alpha}])[']([^{alpha}])"), "${1} ' ${2}"),
        (format!("([^{alpha}])[']([{alpha}])"), "${1} ' ${2}"),
        (format!("([{alpha}])[']([^{alpha}])"), "${1} ' ${2}"),
        (format!("([{alpha}])[']([{alpha}])"), "${1}' ${2}"),
    ];
    let own = |list: &[(String, &'static str)]| {
        rules(
            &list
                .iter()
                .map(|(p, r)| (leak(p.clone()), *r))
                .collect::<Vec<_>>(),
        )
    };
    Rules {
        pad_not_alnum: Regex::new(&format!(r"([^{alnum}{SPACE}\.'`,\-])")).expect("rule"),
        multidot: Regex::new(r"\.{2,}").expect("rule"),
        multidot_marker: Regex::new(r"(?:DOT)+MULTI").expect("rule"),
        commas: own(&[
            (format!("([^{n}])[,]"), "${1} , "),
            (format!("[,]([^{n}])"), " , ${1}"),
            (format!("([{n}])[,]$"), "${1} , "),
        ]),
        english: own(&english),
        french: own(&french),
        trailing_dot_apostrophe: Regex::new(r"\.' ?$").expect("rule"),
    }
});

/// The tokenizer for one language.
pub struct Tokenizer {
    lang: String,
    prefixes: HashSet<String>,
    numeric_only: HashSet<String>,
}

impl Tokenizer {
    /// `lang` must be one of [`super::LANGUAGES`] (sacremoses itself falls back to
    /// English prefixes for a language it lacks; ragl says so instead).
    pub fn new(lang: &str) -> Option<Tokenizer> {
        let list = tables::PREFIXES.iter().find(|(l, _)| *l == lang)?.1;
        let prefixes: HashSet<String> = list.lines().map(str::to_string).collect();
        // `w.rpartition(" ")[0]` of each line holding `\s#NUMERIC_ONLY#`.
        let numeric_only = list
            .lines()
            .filter(|w| {
                w.match_indices("#NUMERIC_ONLY#")
                    .any(|(i, _)| w[..i].chars().next_back().is_some_and(is_space))
            })
            .map(|w| w.rsplit_once(' ').map_or("", |(a, _)| a).to_string())
            .collect();
        Some(Tokenizer {
            lang: lang.to_string(),
            prefixes,
            numeric_only,
        })
    }

    /// The Moses tokens of `text`.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let r = &*RULES;
        // DEDUPLICATE_SPACE, ASCII_JUNK, strip.
        let mut t = String::with_capacity(text.len() + 16);
        let mut in_space = false;
        for c in text.chars() {
            if is_space(c) {
                if !in_space {
                    t.push(' ');
                }
                in_space = true;
            } else {
                in_space = false;
                t.push(c);
            }
        }
        let t: String = t.chars().filter(|&c| c >= ' ').collect();
        let t = strip(&t).to_string();
        let t = r.pad_not_alnum.replace_all(&t, " ${1} ").into_owned();
        let t = aggressive_hyphen_split(&t);
        let t = replace_multidots(&r.multidot, &t);
        let mut t = apply(&r.commas, t);
        t = match self.lang.as_str() {
            "en" => apply(&r.english, t),
            "fr" | "it" => apply(&r.french, t),
            _ => t.replace('\'', " ' "),
        };
        let t = self.nonbreaking_prefixes(&t);
        let t = split(&t).collect::<Vec<_>>().join(" ");
        let t = r
            .trailing_dot_apostrophe
            .replace_all(&t, " . ' ")
            .into_owned();
        let t = r
            .multidot_marker
            .replace_all(&t, |m: &regex::Captures| ".".repeat((m[0].len() - 5) / 3))
            .into_owned();
        split(&escape_xml(&t)).map(str::to_string).collect()
    }

    fn nonbreaking_prefixes(&self, text: &str) -> String {
        let mut tokens: Vec<String> = split(text).map(str::to_string).collect();
        let n = tokens.len();
        for i in 0..n {
            let tok = &tokens[i];
            // `^(\S+)\.$`
            let Some(prefix) = tok.strip_suffix('.').filter(|p| !p.is_empty()) else {
                continue;
            };
            let next_lower = i + 1 < n
                && tokens[i + 1]
                    .chars()
                    .next()
                    .is_some_and(|c| in_ranges(tables::IS_LOWER, c));
            let keep = (prefix.contains('.')
                && prefix.chars().any(|c| in_ranges(tables::IS_ALPHA, c)))
                || (self.prefixes.contains(prefix) && !self.numeric_only.contains(prefix))
                || next_lower;
            let numeric = !keep
                && self.numeric_only.contains(prefix)
                && i + 1 < n
                && tokens[i + 1].starts_with(|c: char| c.is_ascii_digit());
            if !keep && !numeric {
                tokens[i] = format!("{prefix} .");
            }
        }
        tokens.join(" ")
    }
}

/// `([alnum])\-(?=[alnum])` → `\1 @-@ `: a hyphen between two alphanumerics (the look-ahead
/// consumes nothing, so every such hyphen is split).
fn aggressive_hyphen_split(t: &str) -> String {
    let chars: Vec<char> = t.chars().collect();
    let mut out = String::with_capacity(t.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let alnum = |j: usize| {
            chars
                .get(j)
                .is_some_and(|&x| in_ranges(tables::IS_ALNUM, x))
        };
        if c == '-' && i > 0 && alnum(i - 1) && alnum(i + 1) {
            out.push_str(" @-@ ");
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs of two or more dots become ` DOT…DOTMULTI` (a space after it unless at the end).
fn replace_multidots(re: &Regex, t: &str) -> String {
    re.replace_all(t, |m: &regex::Captures| {
        let m = m.get(0).expect("match");
        let mut s = format!(" {}MULTI", "DOT".repeat(m.len()));
        if m.end() < t.len() {
            s.push(' ');
        }
        s
    })
    .into_owned()
}

fn escape_xml(t: &str) -> String {
    let mut out = String::with_capacity(t.len() + 16);
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '|' => out.push_str("&#124;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '[' => out.push_str("&#91;"),
            ']' => out.push_str("&#93;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are sacremoses 0.2.0's.
    #[test]
    fn splits_as_sacremoses_does() {
        let de = Tokenizer::new("de").unwrap();
        let en = Tokenizer::new("en").unwrap();
        let cases: [(&Tokenizer, &str, &[&str]); 6] = [
            (
                &de,
                "Das ist z.B. ein Test...",
                &["Das", "ist", "z.B.", "ein", "Test", "..."],
            ),
            (
                &de,
                "Er kam am 3. Mai an.",
                &["Er", "kam", "am", "3.", "Mai", "an", "."],
            ),
            (
                &en,
                "It's a e-mail for Mr. Smith's dog.",
                &[
                    "It", "&apos;s", "a", "e", "@-@", "mail", "for", "Mr.", "Smith", "&apos;s",
                    "dog", ".",
                ],
            ),
            (
                &de,
                "Preis: 3,50 € (ca.) | <b> & 'x'",
                &[
                    "Preis", ":", "3,50", "€", "(", "ca.", ")", "&#124;", "&lt;", "b", "&gt;",
                    "&amp;", "&apos;", "x", "&apos;",
                ],
            ),
            (&de, "Nr. 5 und Nr. x.", &["Nr.", "5", "und", "Nr.", "x."]),
            (
                &en,
                "well-known U.S. dogs' toys",
                &["well", "@-@", "known", "U.S.", "dogs", "&apos;", "toys"],
            ),
        ];
        for (tok, text, want) in cases {
            assert_eq!(tok.tokenize(text), want, "{text}");
        }
        assert!(Tokenizer::new("xx").is_none());
    }
}
