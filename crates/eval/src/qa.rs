//! Exact match and token F1 as in the official SQuAD v1.1 script (also used by NQ-open,
//! EfficientQA and WebQuestions open-domain evaluation), and regex answers as in DrQA's
//! CuratedTREC evaluation.
//!
//! Upstream: `evaluate-v1.1.py` (`normalize_answer`, `f1_score`, `exact_match_score`,
//! `metric_max_over_ground_truths`) and DrQA `regex_match_score`
//! (`re.compile(p, IGNORECASE | UNICODE | MULTILINE).match(prediction)`, anchored at the
//! start of the prediction). Scores are summed in gold order, as upstream, so totals are
//! bit-identical.

use rustc_hash::FxHashMap;
use serde::Serialize;

use ragl_core::text::py_split;

/// `normalize_answer`: lower-case, drop ASCII punctuation, replace the articles a/an/the
/// (as whole words) by a space, collapse whitespace.
pub fn normalize_answer(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punc: Vec<char> = lower
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    let no_articles = remove_articles(&no_punc);
    ragl_core::text::py_collapse_ws(&no_articles)
}

/// Python's `\w` for `str` patterns: alphanumerics and underscore.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `re.sub(r'\b(a|an|the)\b', ' ', text)`, scanning like the regex engine: at each word
/// start try `a`, then `an`, then `the`, each needing a word boundary after it.
fn remove_articles(text: &[char]) -> String {
    const ARTICLES: [&[char]; 3] = [&['a'], &['a', 'n'], &['t', 'h', 'e']];
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let at_boundary = i == 0 || !is_word(text[i - 1]);
        if at_boundary
            && let Some(art) = ARTICLES.iter().find(|a| {
                text[i..].starts_with(a) && text.get(i + a.len()).is_none_or(|&c| !is_word(c))
            })
        {
            out.push(' ');
            i += art.len();
            continue;
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

pub fn exact_match(prediction: &str, gold: &str) -> bool {
    normalize_answer(prediction) == normalize_answer(gold)
}

/// Token F1 over normalised answers (`f1_score`).
pub fn f1(prediction: &str, gold: &str) -> f64 {
    let p = normalize_answer(prediction);
    let g = normalize_answer(gold);
    let pt: Vec<&str> = py_split(&p).collect();
    let gt: Vec<&str> = py_split(&g).collect();
    let mut gc: FxHashMap<&str, i64> = FxHashMap::default();
    for t in &gt {
        *gc.entry(t).or_insert(0) += 1;
    }
    let mut same = 0i64;
    for t in &pt {
        if let Some(c) = gc.get_mut(t)
            && *c > 0
        {
            *c -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = 1.0 * same as f64 / pt.len() as f64;
    let recall = 1.0 * same as f64 / gt.len() as f64;
    (2.0 * precision * recall) / (precision + recall)
}

/// A compiled CuratedTREC answer pattern.
#[derive(Debug, Clone)]
pub struct AnswerRegex(fancy_regex::Regex);

impl AnswerRegex {
    /// Compiles with Python's flags (case-insensitive, multi-line) and `re.match`'s anchor.
    pub fn new(pattern: &str) -> Result<Self, String> {
        fancy_regex::Regex::new(&format!("(?im)\\A(?:{pattern})"))
            .map(AnswerRegex)
            .map_err(|e| e.to_string())
    }

    pub fn matches(&self, prediction: &str) -> bool {
        self.0.is_match(prediction).unwrap_or(false)
    }
}

/// Gold answers ready for scoring.
#[derive(Debug, Clone)]
pub enum GoldAnswers {
    Strings(Vec<String>),
    Regex(Vec<AnswerRegex>),
}

impl GoldAnswers {
    /// (exact match, F1) of a prediction: maxima over the gold answers. F1 is undefined for
    /// regex answers (`None`), as in DrQA.
    pub fn score(&self, prediction: &str) -> (bool, Option<f64>) {
        match self {
            GoldAnswers::Strings(golds) => {
                let em = golds.iter().any(|g| exact_match(prediction, g));
                // max() over a Python list of floats: the first maximum; all are finite.
                let f = golds
                    .iter()
                    .map(|g| f1(prediction, g))
                    .fold(f64::NEG_INFINITY, f64::max);
                (em, Some(if golds.is_empty() { 0.0 } else { f }))
            }
            GoldAnswers::Regex(res) => (res.iter().any(|r| r.matches(prediction)), None),
        }
    }
}

/// Corpus exact match and F1, in percent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QaScore {
    pub exact_match: f64,
    pub f1: Option<f64>,
    pub total: usize,
    pub correct: usize,
}

/// Scores predictions aligned with gold answers, summing in gold order as upstream does.
pub fn score_all<'a>(pairs: impl IntoIterator<Item = (&'a GoldAnswers, &'a str)>) -> QaScore {
    let (mut em, mut f1_sum, mut total, mut has_f1) = (0usize, 0.0f64, 0usize, true);
    for (gold, pred) in pairs {
        let (e, f) = gold.score(pred);
        em += e as usize;
        match f {
            Some(f) => f1_sum += f,
            None => has_f1 = false,
        }
        total += 1;
    }
    let pct = |x: f64| {
        if total == 0 {
            0.0
        } else {
            100.0 * x / total as f64
        }
    };
    QaScore {
        exact_match: pct(em as f64),
        f1: has_f1.then(|| pct(f1_sum)),
        total,
        correct: em,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values from the official evaluate-v1.1.py functions.
    #[test]
    fn normalisation_matches_the_squad_script() {
        assert_eq!(normalize_answer("The  Eiffel Tower!"), "eiffel tower");
        assert_eq!(normalize_answer("an apple, a day"), "apple day");
        assert_eq!(normalize_answer("Theatre anatomy"), "theatre anatomy");
        assert_eq!(normalize_answer("a-the b"), "athe b");
        assert_eq!(normalize_answer("“Quoted” the_end"), "“quoted” theend");
        assert_eq!(normalize_answer("the the"), "");
    }

    #[test]
    fn f1_counts_token_overlap() {
        assert_eq!(f1("the Denver Broncos", "Denver Broncos"), 1.0);
        assert_eq!(f1("Broncos won", "Denver Broncos"), 0.5);
        assert_eq!(f1("", "x"), 0.0);
        assert_eq!(f1("a a b", "a b b"), 0.6666666666666666);
    }

    #[test]
    fn regex_answers_match_at_the_start_ignoring_case() {
        let r = AnswerRegex::new(r"New\s?York|Long Island").unwrap();
        assert!(r.matches("new york city"));
        assert!(!r.matches("in New York"));
        assert!(AnswerRegex::new(r"6\,194 m").unwrap().matches("6,194 m"));
    }
}
