//! The ICT warm start on a world made here: six people, each with a two-sentence passage
//! that names them twice, so a sentence can only find its passage by the name it shares.
//! The in-batch loss must fall and the positive must come to rank first.

use burn::backend::{Autodiff, Flex};
use ragl_core::passage::Passage;
use ragl_model::bert::BertConfig;
use ragl_model::tokenizer::TextTokenizer;
use ragl_realm::ict::{IctConfig, Towers, warm_start};
use ragl_realm::pretrain::PretrainConfig;

type B = Autodiff<Flex>;

const NAMES: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const WORDS: &str = "lives in a house . likes the garden works at shop";

#[test]
fn ict_learns_to_find_the_passage_of_a_sentence() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("tower");
    let n = ragl_testkit::write_vocab(&dir, NAMES.into_iter().chain([WORDS]));
    let mut c = BertConfig::tiny(n);
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.max_position_embeddings = 32;
    let device = Default::default();
    <Flex as burn::tensor::backend::Backend>::seed(&device, 3);
    let (query, _) = c.init::<B>(false, &device);
    let (doc, _) = c.init::<B>(false, &device);
    let passages: Vec<Passage> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let cap = n[..1].to_uppercase() + &n[1..];
            Passage {
                line: i as u64 + 1,
                id: format!("p{i}"),
                title: None,
                text: format!(
                    "{cap} lives in a house. {cap} likes the garden. {cap} works at a shop."
                ),
            }
        })
        .collect();
    let tok = TextTokenizer::from_dir(&dir, 16).unwrap();
    let toml = format!(
        "[data]\nexamples = \"x\"\npassages = \"x\"\n[model]\nquery = {:?}\nreader = {:?}\n",
        dir, dir
    );
    let path = d.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    let m = PretrainConfig::from_toml(&path).unwrap().model.scoring();
    let cfg = IctConfig {
        steps: 40,
        batch: 6,
        lr: 3e-3,
        warmup: 4,
        keep_sentence: 0.0,
    };
    let mut seen = 0;
    let (_, log) = warm_start(Towers { query, doc }, &passages, &tok, &m, &cfg, 1, |_| {
        seen += 1
    })
    .unwrap();
    assert_eq!((seen, log.len()), (40, 40));
    let mean = |v: &[ragl_realm::ict::IctStep], f: fn(&ragl_realm::ict::IctStep) -> f64| {
        v.iter().map(f).sum::<f64>() / v.len() as f64
    };
    let (l0, l1) = (mean(&log[..5], |r| r.loss), mean(&log[35..], |r| r.loss));
    let (a0, a1) = (
        mean(&log[..5], |r| r.accuracy),
        mean(&log[35..], |r| r.accuracy),
    );
    assert!(l1 < 0.5 * l0, "loss {l0} -> {l1}");
    assert!(a1 > a0 && a1 >= 80.0, "accuracy {a0} -> {a1}");
}
