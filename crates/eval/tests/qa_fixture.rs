//! QA scoring against the official SQuAD v1.1 and DrQA functions on fixtures written for
//! ragl (expected values computed with the reference functions in
//! scripts/reference/compare_qa.py), and a parse of every real QA file in ../shared.

use std::path::{Path, PathBuf};

use ragl_core::read::Input;
use ragl_eval::qa::score_all;
use ragl_eval::qa_data::{GoldFormat, align, gold_answers, read_gold, read_predictions};

fn fixture(name: &str) -> Input {
    Input::File(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/qa")
            .join(name),
    )
}

fn score(gold: &Input, pred: &Input) -> ragl_eval::qa::QaScore {
    let gold = read_gold(gold, GoldFormat::detect(gold).unwrap()).unwrap();
    let compiled: Vec<_> = gold.iter().map(|g| gold_answers(g).unwrap()).collect();
    let preds = align(&gold, read_predictions(pred).unwrap()).unwrap();
    score_all(compiled.iter().zip(preds.iter().map(String::as_str)))
}

#[test]
fn squad_fixture_matches_official_script() {
    let s = score(&fixture("squad.json"), &fixture("squad.pred.json"));
    assert_eq!(
        (s.exact_match, s.f1, s.total),
        (50.0, Some(69.44444444444444), 6)
    );
}

#[test]
fn curatedtrec_fixture_matches_drqa() {
    let s = score(&fixture("trec.tsv"), &fixture("trec.pred.jsonl"));
    assert_eq!((s.exact_match, s.f1, s.total), (66.66666666666667, None, 3));
}

#[test]
fn curatedtrec_rows_give_id_question_and_pattern() {
    // id, type, question, pattern: the question is the third column, not the type.
    let gold = read_gold(&fixture("trec.tsv"), GoldFormat::CuratedTrec).unwrap();
    assert_eq!(gold[0].id.as_deref(), Some("1"));
    assert_eq!(gold[0].question, "When was Velde founded?");
    assert!(
        matches!(&gold[0].answer, ragl_core::qa::Answer::Regex(r) if r[0] == "1312|thirteen\\s?twelve")
    );
}

#[test]
fn missing_and_unknown_predictions_are_errors() {
    let gold = read_gold(&fixture("trec.tsv"), GoldFormat::CuratedTrec).unwrap();
    let mut preds = read_predictions(&fixture("trec.pred.jsonl")).unwrap();
    let last = preds.pop().unwrap();
    let e = align(&gold, preds.clone()).unwrap_err().to_string();
    assert!(
        e.contains("1 of 3 questions have no prediction, first: \"3\""),
        "{e}"
    );
    preds.push(last.clone());
    preds.push(last);
    let e = align(&gold, preds).unwrap_err().to_string();
    assert!(
        e.contains("1 duplicate prediction(s), first at: ") && e.contains("trec.pred.jsonl:3"),
        "{e}"
    );
}

fn shared() -> Option<PathBuf> {
    ragl_testkit::shared("data/qa")
}

#[test]
fn every_shared_qa_file_parses() {
    let Some(shared) = shared() else { return };
    let want = [
        ("squad/dev-v1.1.json", 8763),
        ("nq-open/NQ-open.dev.jsonl", 3610),
        ("nq-open/NQ-open.efficientqa.dev.1.1.jsonl", 1800),
        ("nq-open/NQ-open.efficientqa.test.1.1.jsonl", 1769),
        ("webquestions/trainmodel.json", 2834),
        ("webquestions/val.json", 755),
        ("webquestions/devtest.json", 189),
        ("webquestions/test.json", 2032),
        ("curatedtrec/large2470-train.tsv", 1704),
        ("curatedtrec/large2470-test.tsv", 766),
        ("curatedtrec/curated-train.tsv", 430),
        ("curatedtrec/curated-test.tsv", 430),
    ];
    for (rel, n) in want {
        let input = Input::File(shared.join("data/qa").join(rel));
        let format = GoldFormat::detect(&input).unwrap();
        let gold = read_gold(&input, format).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(gold.len(), n, "{rel}");
        for g in &gold {
            gold_answers(g).unwrap_or_else(|e| panic!("{rel}: {e}"));
        }
    }
}
