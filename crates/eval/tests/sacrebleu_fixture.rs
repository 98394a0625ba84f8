//! BLEU and chrF against values produced by sacrebleu 2.6.0 on a fixture written to hit its
//! corner cases (see scripts/reference/make_eval_fixtures.py for how the expected values
//! were made). Every configuration must agree in the n-gram statistics, the exact f64 score,
//! the formatted line and the signature (up to the version field).

use std::path::Path;

use ragl_core::read::{Input, Lines};
use ragl_core::text::py_rstrip;
use ragl_eval::bleu::{Bleu, BleuConfig, Smooth};
use ragl_eval::chrf::{Chrf, ChrfConfig};
use ragl_eval::tokenize::Tokenizer;
use serde_json::Value;

fn read(name: &str) -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Lines::read_all(&Input::File(p))
        .unwrap()
        .into_iter()
        .map(|l| py_rstrip(&l).to_owned())
        .collect()
}

fn without_version(sig: &str) -> &str {
    sig.rsplit_once('|').unwrap().0
}

#[test]
fn every_configuration_matches_sacrebleu() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let (hyp, r1, r2) = (read("mt.hyp.txt"), read("mt.ref.txt"), read("mt.ref2.txt"));
    let cases = expected["corpus"].as_array().unwrap();
    assert!(cases.len() >= 100);
    for case in cases {
        let nrefs = case["nrefs"].as_u64().unwrap() as usize;
        let refs: Vec<Vec<String>> = [r1.clone(), r2.clone()].into_iter().take(nrefs).collect();
        let lowercase = case["lowercase"].as_bool().unwrap();
        let want_sig = case["signature"].as_str().unwrap();
        if case["metric"] == "bleu" {
            let bleu = Bleu::new(BleuConfig {
                tokenizer: Tokenizer::from_name(case["tokenize"].as_str().unwrap()).unwrap(),
                lowercase,
                smooth: Smooth::from_name(
                    case["smooth"].as_str().unwrap(),
                    case["smooth_value"].as_f64(),
                )
                .unwrap(),
                effective_order: false,
            });
            let s = bleu.corpus_score(&hyp, &refs);
            let nums = |k: &str| -> Vec<f64> {
                case[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            };
            assert_eq!(s.counts, nums("counts"), "{case}");
            assert_eq!(s.totals, nums("totals"), "{case}");
            assert_eq!(
                (s.sys_len, s.ref_len),
                (
                    case["sys_len"].as_u64().unwrap(),
                    case["ref_len"].as_u64().unwrap()
                )
            );
            assert_eq!(s.score, case["score"].as_f64().unwrap(), "{case}");
            assert_eq!(s.format(2), case["text"].as_str().unwrap());
            assert_eq!(
                without_version(&bleu.signature(nrefs).to_string()),
                without_version(want_sig)
            );
        } else {
            let chrf = Chrf::new(ChrfConfig {
                word_order: case["word_order"].as_u64().unwrap() as usize,
                lowercase,
                whitespace: case["whitespace"].as_bool().unwrap(),
                ..Default::default()
            });
            let s = chrf.corpus_score(&hyp, &refs);
            assert_eq!(s.score, case["score"].as_f64().unwrap(), "{case}");
            assert_eq!(s.format(2), case["text"].as_str().unwrap());
            assert_eq!(
                without_version(&chrf.signature(nrefs).to_string()),
                without_version(want_sig)
            );
        }
    }
}

#[test]
fn sentence_level_matches_sacrebleu() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let (hyp, r1) = (read("mt.hyp.txt"), read("mt.ref.txt"));
    let bleu = Bleu::new(BleuConfig {
        effective_order: true,
        ..Default::default()
    });
    let chrf = Chrf::new(ChrfConfig::default());
    for (i, (h, r)) in hyp.iter().zip(&r1).enumerate() {
        let b = bleu.score(&bleu.segment_stats(h, &bleu.reference_info(&[r])));
        assert_eq!(
            b.score,
            expected["sentence"]["bleu"][i].as_f64().unwrap(),
            "line {}",
            i + 1
        );
        let c = chrf.score(&chrf.segment_stats(h, &[r]));
        assert_eq!(
            c.score,
            expected["sentence"]["chrf"][i].as_f64().unwrap(),
            "line {}",
            i + 1
        );
    }
}
