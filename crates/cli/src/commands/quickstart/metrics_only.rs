//! `ragl quickstart --metrics-only`: the seconds-long job that scores the sample
//! translations and answers compiled into the binary (`data/sample`).

use anyhow::Result;
use ragl_core::qa::{Answer, QaExample};
use ragl_eval::bleu::{Bleu, BleuConfig};
use ragl_eval::chrf::{Chrf, ChrfConfig};
use ragl_eval::qa::score_all;
use ragl_eval::qa_data::{PredKey, align, gold_answers};

const HYP: &str = include_str!("../../../../../data/sample/mt.hyp.en");
const REF: &str = include_str!("../../../../../data/sample/mt.ref.en");
const REF2: &str = include_str!("../../../../../data/sample/mt.ref2.en");
const QA_GOLD: &str = include_str!("../../../../../data/sample/qa.gold.jsonl");
const QA_PRED: &str = include_str!("../../../../../data/sample/qa.pred.jsonl");

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

pub(super) fn metrics_only() -> Result<()> {
    let hyps = lines(HYP);
    let one_ref = vec![lines(REF)];
    let two_refs = vec![lines(REF), lines(REF2)];
    println!("ragl quickstart: evaluation on the embedded sample (data/sample)\n");
    println!("Translation ({} sentences)", hyps.len());
    for (label, refs) in [("1 reference ", &one_ref), ("2 references", &two_refs)] {
        let bleu = Bleu::new(BleuConfig::default());
        let b = bleu.corpus_score(&hyps, refs);
        let c = Chrf::new(ChrfConfig::default());
        let cpp = Chrf::new(ChrfConfig {
            word_order: 2,
            ..Default::default()
        });
        println!("  {label}  {}", b.format(2));
        println!(
            "                {}   {}",
            c.corpus_score(&hyps, refs).format(2),
            cpp.corpus_score(&hyps, refs).format(2)
        );
        println!("                {}", bleu.signature(refs.len()));
    }

    #[derive(serde::Deserialize)]
    struct Gold {
        question: String,
        answer: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Pred {
        question: String,
        prediction: String,
    }
    let gold: Vec<QaExample> = QA_GOLD
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let g: Gold = serde_json::from_str(l)?;
            Ok(QaExample {
                id: None,
                question: g.question,
                answer: Answer::Strings(g.answer),
                context: None,
                title: None,
                source: format!("data/sample/qa.gold.jsonl:{}", i + 1),
            })
        })
        .collect::<Result<_>>()?;
    let preds = QA_PRED
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let p: Pred = serde_json::from_str(l)?;
            Ok((
                PredKey::Question(p.question),
                p.prediction,
                format!("qa.pred.jsonl:{}", i + 1),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let compiled = gold
        .iter()
        .map(gold_answers)
        .collect::<ragl_eval::Result<Vec<_>>>()?;
    let aligned = align(&gold, preds)?;
    let s = score_all(compiled.iter().zip(aligned.iter().map(String::as_str)));
    println!(
        "\nQuestion answering ({} questions, SQuAD/NQ normalisation)",
        s.total
    );
    println!(
        "  EM = {:.2}  F1 = {:.2}",
        s.exact_match,
        s.f1.unwrap_or(0.0)
    );
    println!(
        "\nThe same numbers from files: ragl eval bleu data/sample/mt.ref.en -i data/sample/mt.hyp.en"
    );
    Ok(())
}
