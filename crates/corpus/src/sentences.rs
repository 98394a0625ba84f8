//! Sentence boundaries for English encyclopedic text, by rules.
//!
//! A sentence ends at `.`, `!` or `?` (optionally followed by closing quotes or brackets)
//! when whitespace follows and the next word starts with an upper-case letter, a digit or an
//! opening quote/bracket; a line break always ends one. A period does not end a sentence
//! after a known abbreviation (`Mr.`, `e.g.`, `U.S.` …), after a single capital letter (an
//! initial: `J. R. R. Tolkien`), or inside a number (`3.14`, which has no whitespace anyway).

/// Abbreviations after which a period rarely ends a sentence (lower-cased, without the
/// final period).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "etc", "e.g", "i.e", "cf",
    "al", "approx", "inc", "ltd", "co", "corp", "no", "nos", "vol", "fig", "gen", "gov", "col",
    "lt", "sgt", "capt", "rev", "hon", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "a.d", "b.c", "ca", "c", "op", "pp", "ed",
    "eds", "est", "dept", "univ", "assn", "bros",
];

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '»')
}

fn starts_sentence(c: char) -> bool {
    c.is_uppercase() || c.is_ascii_digit() || matches!(c, '"' | '\'' | '(' | '[' | '“' | '‘' | '«')
}

/// Byte ranges of the sentences of `text`, trimmed of surrounding whitespace, in order.
/// Together with the whitespace between them they cover the text.
pub fn split(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut start: Option<usize> = None;
    let mut i = 0;
    let push = |s: usize, e: usize, out: &mut Vec<(usize, usize)>| {
        if e > s {
            out.push((s, e));
        }
    };
    while i < chars.len() {
        let (b, c) = chars[i];
        if start.is_none() && !c.is_whitespace() {
            start = Some(b);
        }
        if c == '\n' {
            if let Some(s) = start.take() {
                push(s, text[..b].trim_end().len(), &mut out);
            }
            i += 1;
            continue;
        }
        if matches!(c, '.' | '!' | '?') && start.is_some() {
            // Extend over repeated terminators and closing quotes/brackets.
            let mut j = i + 1;
            while j < chars.len()
                && (matches!(chars[j].1, '.' | '!' | '?') || is_closer(chars[j].1))
            {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
            let ws = j < chars.len() && chars[j].1.is_whitespace();
            let mut k = j;
            while k < chars.len() && chars[k].1.is_whitespace() && chars[k].1 != '\n' {
                k += 1;
            }
            let next_ok = k >= chars.len() || chars[k].1 == '\n' || starts_sentence(chars[k].1);
            let boundary =
                (j >= chars.len() || ws) && next_ok && !(c == '.' && abbreviation_before(text, b));
            if boundary {
                let s = start.take().unwrap();
                push(s, end, &mut out);
                i = j;
                continue;
            }
        }
        i += 1;
    }
    if let Some(s) = start {
        push(s, text.trim_end().len(), &mut out);
    }
    out
}

/// Is the word ending at the period at byte `dot` an abbreviation or an initial?
fn abbreviation_before(text: &str, dot: usize) -> bool {
    let before = &text[..dot];
    let word_start = before
        .rfind(|c: char| c.is_whitespace() || matches!(c, '(' | '"' | '“' | '['))
        .map_or(0, |p| p + before[p..].chars().next().unwrap().len_utf8());
    let word = &before[word_start..];
    let mut cs = word.chars();
    if let (Some(c), None) = (cs.next(), cs.next())
        && c.is_uppercase()
    {
        return true; // an initial
    }
    let lower = word.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sents(t: &str) -> Vec<&str> {
        split(t).into_iter().map(|(s, e)| &t[s..e]).collect()
    }

    #[test]
    fn splits_at_terminators_not_abbreviations_or_initials() {
        assert_eq!(
            sents(
                "Dr. Smith went to Washington, D.C. on Jan. 5. He met J. R. R. Tolkien (the author). \"Why?\" he asked. Pi is 3.14!"
            ),
            vec![
                "Dr. Smith went to Washington, D.C. on Jan. 5.",
                "He met J. R. R. Tolkien (the author).",
                "\"Why?\" he asked.",
                "Pi is 3.14!"
            ]
        );
        assert_eq!(
            sents("  one line\ntwo line. Three\n\n"),
            vec!["one line", "two line.", "Three"]
        );
        assert_eq!(sents("no break. here"), vec!["no break. here"]);
        assert_eq!(
            sents("the U.S. economy grew. It did."),
            vec!["the U.S. economy grew.", "It did."]
        );
        assert!(split("   ").is_empty());
    }

    #[test]
    fn ranges_are_ordered_and_on_char_boundaries() {
        let t = "Ça va. Überall ist es schön! 東京は大きい。 Next.";
        let r = split(t);
        for w in r.windows(2) {
            assert!(w[0].1 <= w[1].0);
        }
        for (s, e) in r {
            assert!(t.is_char_boundary(s) && t.is_char_boundary(e));
        }
    }
}
