//! Question-answering examples, shared by the QA data loaders, the readers and evaluation.

use serde::{Deserialize, Serialize};

/// Gold answers: a set of strings (SQuAD, NQ-open, WebQuestions), compared after
/// normalisation, or a set of regular expressions (CuratedTREC), matched case-insensitively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "values", rename_all = "snake_case")]
pub enum Answer {
    Strings(Vec<String>),
    Regex(Vec<String>),
}

/// A question with its gold answers. `id` is present where the data set has one (SQuAD,
/// WebQuestions, CuratedTREC); NQ-open is keyed by the question text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaExample {
    pub id: Option<String>,
    pub question: String,
    pub answer: Answer,
    /// The passage the question was written from, where known (SQuAD context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The article the passage belongs to, where known (SQuAD title): the unit of
    /// stratified splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Where the example came from, `file:line`, for error messages.
    #[serde(skip)]
    pub source: String,
}

/// Indices of the train, dev and test examples of a seeded split, stratified by article
/// (`title`; examples without one form a group of their own): every article's questions are
/// shuffled and cut in the same proportions, so each split covers the articles as the whole
/// does and a question never shares a split decision with its article's order in the file.
/// Each part is sorted (file order).
pub fn split_stratified(examples: &[QaExample], dev: f64, test: f64, seed: u64) -> [Vec<usize>; 3] {
    let mut groups: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, e) in examples.iter().enumerate() {
        groups
            .entry(e.title.as_deref().unwrap_or(""))
            .or_default()
            .push(i);
    }
    let mut rng = crate::rng::Rng::new(seed);
    let mut out: [Vec<usize>; 3] = Default::default();
    for (_, mut idx) in groups {
        rng.shuffle(&mut idx);
        let n = idx.len() as f64;
        let n_test = (n * test).round() as usize;
        let n_dev = ((n * dev).round() as usize).min(idx.len() - n_test);
        out[2].extend_from_slice(&idx[..n_test]);
        out[1].extend_from_slice(&idx[n_test..n_test + n_dev]);
        out[0].extend_from_slice(&idx[n_test + n_dev..]);
    }
    for part in &mut out {
        part.sort_unstable();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(i: usize, title: &str) -> QaExample {
        QaExample {
            id: Some(i.to_string()),
            question: format!("q{i}"),
            answer: Answer::Strings(vec!["a".into()]),
            context: None,
            title: Some(title.into()),
            source: String::new(),
        }
    }

    #[test]
    fn stratified_split_covers_every_article_in_proportion_and_is_seeded() {
        let exs: Vec<QaExample> = (0..300).map(|i| ex(i, ["A", "B", "C"][i % 3])).collect();
        let [train, dev, test] = split_stratified(&exs, 0.1, 0.2, 1);
        assert_eq!((train.len(), dev.len(), test.len()), (210, 30, 60));
        for part in [&train, &dev, &test] {
            for t in ["A", "B", "C"] {
                let n = part
                    .iter()
                    .filter(|&&i| exs[i].title.as_deref() == Some(t))
                    .count();
                assert_eq!(n * 3, part.len(), "{t}");
            }
        }
        let mut all: Vec<usize> = train.iter().chain(&dev).chain(&test).copied().collect();
        all.sort();
        assert_eq!(all, (0..300).collect::<Vec<_>>());
        assert_eq!(split_stratified(&exs, 0.1, 0.2, 1)[2], test);
        assert_ne!(split_stratified(&exs, 0.1, 0.2, 2)[2], test);
    }
}
