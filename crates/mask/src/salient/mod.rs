//! Salient span annotation by rules.
//!
//! 1. **Dates and numbers** by a small grammar (regular expressions): month-day-year forms,
//!    years 1000–2099 (with AD/BC), decades, centuries; money, percentages, numbers with
//!    scale words, digits, spelled-out numbers two to ninety-nine.
//! 2. **Names**: maximal sequences of capitalised words, joined across `of`, `the`, `de`,
//!    `for`, `and` when capitalised words follow (`University of Chicago`). A sentence's
//!    first word starts a name only when the gazetteer knows it; a leading `The` is dropped
//!    unless the gazetteer has the name with it.
//! 3. **Types** for names: PERSON after a title (`President`, `Dr.`) or when the first word
//!    is a known given name; ORG for organisation words and acronyms; LOC for place words
//!    and known places; MISC for demonyms, events and the rest.
//!
//! The gazetteer is mined from the corpus ([`Gazetteer::observe`]): document titles, and
//! capitalised n-grams that occur at least twice in mid-sentence.
//!
//! The word lists (titles, organisation and place words, places, given names, …) are
//! text files under `salient/words/`, one entry per line.

use std::sync::LazyLock;

use regex::Regex;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// A word list from `salient/words/`: one entry per line (an entry may hold spaces);
/// blank lines and lines starting with `#` (the list's description) are skipped. The
/// lists are data, compiled in, so that changing one is a text edit.
macro_rules! words {
    ($file:literal) => {
        LazyLock::new(|| {
            include_str!(concat!("words/", $file))
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .collect()
        })
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SpanType {
    Person,
    Org,
    Loc,
    Misc,
    Date,
    Number,
}

impl SpanType {
    pub fn is_entity(self) -> bool {
        !matches!(self, SpanType::Date | SpanType::Number)
    }
}

/// A span of a text, in character (Unicode scalar) offsets, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    #[serde(rename = "type")]
    pub kind: SpanType,
}

const MONTHS: &str = "January|February|March|April|May|June|July|August|September|October|November|December|Jan\\.|Feb\\.|Mar\\.|Apr\\.|Jun\\.|Jul\\.|Aug\\.|Sep\\.|Sept\\.|Oct\\.|Nov\\.|Dec\\.";
const SMALL: &str = "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|dozen";
const SCALE: &str = "hundred|thousand|million|billion|trillion";

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b(?:(?:early|mid|late)[- ])?(?:(?:\d{{1,2}} (?:{MONTHS})(?:,? \d{{3,4}})?)|(?:(?:{MONTHS}) \d{{1,2}}(?:st|nd|rd|th)?(?:,? \d{{3,4}})?)|(?:(?:{MONTHS}) \d{{3,4}})|(?:(?:January|February|March|April|June|July|August|September|October|November|December)\b)|(?:\d{{3}}0s)|(?:(?:\d{{1,2}}(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|twenty-first)[- ]centur(?:y|ies)(?: (?:AD|BC|BCE|CE))?)|(?:(?:1[0-9]{{3}}|20[0-9]{{2}})(?:[–-](?:1[0-9]{{3}}|20[0-9]{{2}}|[0-9]{{2}}))?(?: (?:AD|BC|BCE|CE))?)|(?:\d{{1,3}} (?:AD|BC|BCE)))\b"
    ))
    .expect("date grammar")
});

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?:(?:US|A|C|HK)?[$€£¥]\s?\d[\d,]*(?:\.\d+)?(?: (?:{SCALE}))?|\b\d[\d,]*(?:\.\d+)?(?:[–-]\d[\d,]*(?:\.\d+)?)?(?:%| percent| per cent|(?: (?:{SCALE}))+)?|\bone\b|\b(?:(?:{SMALL})(?:[- ](?:{SMALL}|one|{SCALE}))*)\b(?: (?:{SCALE}))?)"
    ))
    .expect("number grammar")
});

/// Words that are capitalised for grammar, not because they name something.
static FUNCTION_CAPS: LazyLock<Vec<&str>> = words!("function_caps.txt");

/// Lower-case words that may sit inside a name ("University of Chicago", "Mies van der
/// Rohe"); "and" is not one of them: "China and India" is two names.
static CONNECTORS: LazyLock<Vec<&str>> = words!("connectors.txt");

static TITLES: LazyLock<Vec<&str>> = words!("titles.txt");

static ORG_WORDS: LazyLock<Vec<&str>> = words!("org_words.txt");

static LOC_WORDS: LazyLock<Vec<&str>> = words!("loc_words.txt");

/// Countries, continents and large regions (a short list; the mined gazetteer adds more).
static PLACES: LazyLock<Vec<&str>> = words!("places.txt");

static GIVEN_NAMES: LazyLock<Vec<&str>> = words!("given_names.txt");

static DEMONYM_ENDINGS: LazyLock<Vec<&str>> = words!("demonym_endings.txt");
static MISC_WORDS: LazyLock<Vec<&str>> = words!("misc_words.txt");

fn is_cap_word(w: &str) -> bool {
    let mut cs = w.chars();
    match cs.next() {
        Some(c) if c.is_uppercase() => true,
        // All-caps or mixed with a leading digit (e.g. "3M") are rare; digits start numbers.
        _ => false,
    }
}

/// Names the corpus itself teaches: titles and repeated mid-sentence capitalised n-grams.
#[derive(Debug, Default, Clone)]
pub struct Gazetteer {
    counts: FxHashMap<String, u32>,
    titles: FxHashMap<String, ()>,
}

impl Gazetteer {
    /// Records a document title and the capitalised n-grams of a text (not at sentence
    /// starts).
    pub fn observe(&mut self, title: Option<&str>, text: &str) {
        if let Some(t) = title.map(str::trim).filter(|t| !t.is_empty()) {
            self.titles.insert(t.to_owned(), ());
        }
        for (s, e) in name_candidates(text) {
            let name = &text[s..e];
            let at_start = text[..s].trim_end().is_empty()
                || text[..s].trim_end().ends_with(['.', '!', '?', '"', '\n']);
            if !at_start {
                *self.counts.entry(name.to_owned()).or_default() += 1;
            }
        }
    }

    /// Does the corpus know `name` as a name?
    pub fn knows(&self, name: &str) -> bool {
        self.titles.contains_key(name) || self.counts.get(name).is_some_and(|&c| c >= 2)
    }

    pub fn len(&self) -> usize {
        self.titles.len() + self.counts.values().filter(|&&c| c >= 2).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Byte ranges of maximal capitalised sequences (with connectors inside).
fn name_candidates(text: &str) -> Vec<(usize, usize)> {
    // Words with their byte ranges; punctuation other than ' . - – & separates words.
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let word_char = c.is_alphanumeric() || matches!(c, '\'' | '’' | '-' | '–' | '&' | '.');
        match (word_char, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = trim_word(text, words[i]);
        if !is_cap_word(&text[w.0..w.1]) {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut end = w.1;
        // Extend while the gap is one space and the next word is capitalised, or a
        // connector followed by a capitalised word.
        loop {
            let gap_ok = |a: usize, b: usize| text[a..b].chars().all(|c| c == ' ') && b - a == 1;
            if j + 1 < words.len() && gap_ok(words[j].1, words[j + 1].0) {
                let nw = trim_word(text, words[j + 1]);
                let word = &text[nw.0..nw.1];
                let prev = &text[words[j].0..words[j].1];
                if is_cap_word(word) && !prev.ends_with(['.', ','])
                    || (is_cap_word(word) && prev.len() <= 3 && !ends_sentence(prev))
                {
                    j += 1;
                    end = nw.1;
                    continue;
                }
                if CONNECTORS.contains(&word)
                    && j + 2 < words.len()
                    && gap_ok(words[j + 1].1, words[j + 2].0)
                    && is_cap_word(
                        &text[trim_word(text, words[j + 2]).0..trim_word(text, words[j + 2]).1],
                    )
                {
                    j += 2;
                    end = trim_word(text, words[j]).1;
                    continue;
                }
            }
            break;
        }
        out.push((w.0, end));
        i = j + 1;
    }
    out
}

/// A short word whose period ends its sentence rather than abbreviating it: an acronym or
/// a Roman numeral ("the US. The …", "World War II. The …"), unlike "St." or "Jr.".
fn ends_sentence(word: &str) -> bool {
    word.strip_suffix('.').is_some_and(|core| {
        core.chars().count() >= 2 && core.chars().all(|c| c.is_ascii_uppercase())
    })
}

/// Trims possessives and trailing punctuation (except the period of an initial).
fn trim_word(text: &str, (s, mut e): (usize, usize)) -> (usize, usize) {
    let w = &text[s..e];
    for suffix in ["'s", "’s", "'", "’"] {
        if w.ends_with(suffix) && w.len() > suffix.len() {
            e -= suffix.len();
            return (s, e);
        }
    }
    let w = &text[s..e];
    if let Some(core) = w.strip_suffix('.') {
        // Keep the period of an initial ("J.") or an abbreviation with inner periods ("U.S.").
        let initial = core.chars().count() == 1 || core.contains('.');
        if !initial {
            e -= 1;
        }
    }
    while e > s && text[..e].ends_with(['-', '–', '&']) {
        e -= text[..e].chars().next_back().unwrap().len_utf8();
    }
    (s, e)
}

pub struct Annotator {
    pub gazetteer: Gazetteer,
}

fn char_offsets(text: &str, spans: &mut [(usize, usize, SpanType)]) -> Vec<Span> {
    let mut map = Vec::with_capacity(text.len() + 1);
    let mut n = 0;
    for (i, c) in text.char_indices() {
        while map.len() < i {
            map.push(n);
        }
        map.push(n);
        let _ = c;
        n += 1;
    }
    while map.len() <= text.len() {
        map.push(n);
    }
    spans
        .iter()
        .map(|&(s, e, kind)| Span {
            start: map[s],
            end: map[e],
            kind,
        })
        .collect()
}

impl Annotator {
    pub fn new(gazetteer: Gazetteer) -> Self {
        Annotator { gazetteer }
    }

    /// Salient spans of `text`, in order, non-overlapping, in character offsets.
    pub fn annotate(&self, text: &str) -> Vec<Span> {
        let mut spans: Vec<(usize, usize, SpanType)> = Vec::new();
        // Bytes already covered, so that later rules never overlap earlier ones (a bitmap:
        // linear in the text, where comparing with every earlier span was quadratic).
        let mut taken = vec![false; text.len()];
        let free = |taken: &[bool], s: usize, e: usize| !taken[s..e].iter().any(|&t| t);
        let take =
            |taken: &mut [bool], s: usize, e: usize| taken[s..e].iter_mut().for_each(|t| *t = true);
        for m in DATE.find_iter(text) {
            spans.push((m.start(), m.end(), SpanType::Date));
            take(&mut taken, m.start(), m.end());
        }
        for m in NUMBER.find_iter(text) {
            let (s, mut e) = (m.start(), m.end());
            // Digits inside a code or name ("LC-37", "MPEG-4", "X.25", "SiO2") are not
            // numbers of their own: the name takes them.
            let prev = text[..s].chars().next_back();
            let prev2 = text[..s].chars().rev().nth(1);
            if prev.is_some_and(char::is_alphanumeric)
                || (matches!(prev, Some('-' | '.' | '–')) && prev2.is_some_and(char::is_alphabetic))
                || text[e..].chars().next().is_some_and(char::is_alphabetic)
            {
                continue;
            }
            if &text[s..e] == "one"
                && (text[e..].starts_with("'s")
                    || text[e..].starts_with(" another")
                    || text[..s].ends_with("no "))
            {
                continue;
            }
            while e > s && text[..e].ends_with([',', '.']) {
                e -= 1;
            }
            if e > s && free(&taken, s, e) {
                spans.push((s, e, SpanType::Number));
                take(&mut taken, s, e);
            }
        }
        for (s, e) in name_candidates(text) {
            let (s, e, kind) = match self.name(text, s, e) {
                Some(x) => x,
                None => continue,
            };
            if e > s && free(&taken, s, e) {
                spans.push((s, e, kind));
                take(&mut taken, s, e);
            }
        }
        spans.sort_by_key(|x| x.0);
        char_offsets(text, &mut spans)
    }

    /// Decides whether the capitalised sequence at `s..e` is a name, trims it, types it.
    fn name(&self, text: &str, mut s: usize, e: usize) -> Option<(usize, usize, SpanType)> {
        let before = text[..s].trim_end();
        let at_start = before.is_empty() || before.ends_with(['.', '!', '?', '"', '\n', ':', ';']);
        let mut name = &text[s..e];
        // Leading function words ("The", "In", "However") are not part of a name.
        loop {
            let first = name.split(' ').next().unwrap_or("");
            let rest = name[first.len()..].trim_start();
            if FUNCTION_CAPS.contains(&first) && (rest.is_empty() || !self.gazetteer.knows(name)) {
                if rest.is_empty() || !is_cap_word(rest) {
                    return None;
                }
                s = e - rest.len();
                name = rest;
                continue;
            }
            break;
        }
        let single = !name.contains(' ');
        if at_start
            && single
            && !self.gazetteer.knows(name)
            && !PLACES.contains(&name)
            && !name.chars().all(|c| c.is_uppercase() || !c.is_alphabetic())
        {
            return None;
        }
        if DATE.is_match(name) && name.len() < 12 {
            return None;
        }
        // Titles and roles in front of a person's name are dropped, and make it a PERSON.
        let prev_word = text[..s].trim_end().rsplit(' ').next().unwrap_or("");
        let first = name.split(' ').next().unwrap_or("");
        if TITLES.contains(&first) && name.contains(' ') {
            let rest = name[first.len()..].trim_start();
            return Some((e - rest.len(), e, SpanType::Person));
        }
        Some((s, e, self.kind(name, prev_word)))
    }

    fn kind(&self, name: &str, prev: &str) -> SpanType {
        let words: Vec<&str> = name.split(' ').collect();
        let last = *words.last().unwrap();
        let first = words[0];
        if words.iter().any(|w| ORG_WORDS.contains(w))
            || (name.len() >= 2 && name.len() <= 6 && name.chars().all(|c| c.is_ascii_uppercase()))
                && !PLACES.contains(&name)
        {
            return SpanType::Org;
        }
        if PLACES.contains(&name) || words.iter().any(|w| LOC_WORDS.contains(w)) {
            return SpanType::Loc;
        }
        if words.iter().any(|w| MISC_WORDS.contains(w)) {
            return SpanType::Misc;
        }
        if TITLES.contains(&prev) || (GIVEN_NAMES.contains(&first) && words.len() >= 2) {
            return SpanType::Person;
        }
        if words.len() == 1 && DEMONYM_ENDINGS.iter().any(|s| last.ends_with(s)) && last.len() > 4 {
            return SpanType::Misc;
        }
        if matches!(
            prev,
            "in" | "at" | "near" | "from" | "to" | "across" | "throughout"
        ) && words.len() <= 2
        {
            return SpanType::Loc;
        }
        if words.len() >= 2
            && words.len() <= 3
            && words
                .iter()
                .all(|w| w.chars().next().is_some_and(char::is_uppercase) && w.len() > 1)
        {
            return SpanType::Person;
        }
        SpanType::Misc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> Vec<(String, SpanType)> {
        let chars: Vec<char> = text.chars().collect();
        Annotator::new(Gazetteer::default())
            .annotate(text)
            .iter()
            .map(|s| (chars[s.start..s.end].iter().collect(), s.kind))
            .collect()
    }

    #[test]
    fn dates_numbers_and_names() {
        let got = show(
            "The 1973 oil crisis began in October 1973 when the members of the Organization of Arab Petroleum Exporting Countries proclaimed an embargo.",
        );
        assert_eq!(
            got,
            vec![
                ("1973".into(), SpanType::Date),
                ("October 1973".into(), SpanType::Date),
                (
                    "Organization of Arab Petroleum Exporting Countries".into(),
                    SpanType::Org
                ),
            ]
        );
        let got = show(
            "Prices rose from US$3 per barrel to nearly $12, about 40% in two years; President Richard Nixon visited Japan's capital in the 1970s.",
        );
        let names: Vec<&str> = got.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "US$3",
                "$12",
                "40%",
                "two",
                "Richard Nixon",
                "Japan",
                "1970s"
            ]
        );
        assert_eq!(got[4].1, SpanType::Person);
        assert_eq!(got[5].1, SpanType::Loc);
    }

    #[test]
    fn a_name_does_not_run_into_the_next_sentence() {
        let got = show(
            "It ended with World War II. The embargo hit the US. The Church of St. Peter stood in St. Louis.",
        );
        let names: Vec<&str> = got.iter().map(|x| x.0.as_str()).collect();
        assert!(names.contains(&"World War II"), "{names:?}");
        assert!(names.contains(&"US"), "{names:?}");
        assert!(names.contains(&"St. Louis"), "{names:?}");
        assert!(!names.iter().any(|n| n.contains(". The")), "{names:?}");
    }

    #[test]
    fn offsets_are_characters() {
        let t = "Ça alors, Zürich hosted Kraków’s team in 1990.";
        let a = Annotator::new(Gazetteer::default()).annotate(t);
        let chars: Vec<char> = t.chars().collect();
        let got: Vec<String> = a
            .iter()
            .map(|s| chars[s.start..s.end].iter().collect())
            .collect();
        assert!(
            got.contains(&"Zürich".to_string())
                && got.contains(&"Kraków".to_string())
                && got.contains(&"1990".to_string()),
            "{got:?}"
        );
    }
}
