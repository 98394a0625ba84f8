//! A toy translation pair with two domains (see the crate overview).
//!
//! Source sentences are English words in English order, "the old farmer sees a red horse
//! near the river ."; targets are invented words in a verb-final order with nouns before
//! their adjectives and determiners and postpositions: "farmer' old' the' horse' red' a'
//! river' the' near' sees' .". The medical domain draws most of its nouns, verbs and
//! adjectives from words the general domain never uses, and six general nouns (cell,
//! plant, operation, …) take another translation there. A model trained on general text
//! alone therefore mistranslates the medical domain in two ways a datastore of in-domain
//! translations repairs.

use std::io::Write;
use std::path::Path;

use ragl_core::rng::Rng;
use rustc_hash::FxHashMap;

use crate::{Namer, pick};

const T_SYLLABLES: [&str; 28] = [
    "na", "ko", "ri", "te", "mu", "sa", "lo", "vi", "pe", "da", "gu", "fi", "ma", "zu", "ne", "ta",
    "bo", "ki", "ru", "ya", "sho", "kal", "vin", "dor", "em", "ul", "ash", "ig",
];

const DETS: [&str; 4] = ["the", "a", "every", "this"];
const PREPS: [&str; 4] = ["near", "behind", "with", "under"];
const G_NOUNS: [&str; 40] = [
    "man",
    "woman",
    "child",
    "dog",
    "cat",
    "horse",
    "house",
    "garden",
    "river",
    "street",
    "car",
    "boat",
    "book",
    "letter",
    "table",
    "window",
    "door",
    "tree",
    "bird",
    "teacher",
    "farmer",
    "friend",
    "market",
    "school",
    "train",
    "bridge",
    "road",
    "field",
    "village",
    "shop",
    "song",
    "picture",
    "kitchen",
    "mountain",
    "lake",
    "family",
    "neighbour",
    "baker",
    "student",
    "city",
];
/// General nouns with a second, medical translation.
const POLY: [&str; 6] = ["cell", "plant", "operation", "pupil", "culture", "theatre"];
const G_VERBS: [&str; 20] = [
    "sees", "finds", "likes", "carries", "paints", "builds", "visits", "opens", "sells", "follows",
    "watches", "cleans", "moves", "helps", "calls", "loves", "buys", "draws", "holds", "leaves",
];
const G_ADJS: [&str; 20] = [
    "big", "small", "old", "young", "red", "green", "happy", "quiet", "busy", "tall", "dark",
    "bright", "new", "warm", "cold", "long", "short", "kind", "strong", "poor",
];
const M_NOUNS: [&str; 30] = [
    "doctor",
    "nurse",
    "patient",
    "tablet",
    "vaccine",
    "fever",
    "infection",
    "wound",
    "dose",
    "clinic",
    "surgeon",
    "virus",
    "muscle",
    "tissue",
    "lung",
    "kidney",
    "blood",
    "injection",
    "symptom",
    "therapy",
    "diagnosis",
    "antibody",
    "protein",
    "ward",
    "scan",
    "bandage",
    "pulse",
    "tumour",
    "enzyme",
    "fracture",
];
const M_VERBS: [&str; 12] = [
    "examines",
    "treats",
    "injects",
    "measures",
    "prescribes",
    "infects",
    "heals",
    "monitors",
    "removes",
    "tests",
    "diagnoses",
    "replaces",
];
const M_ADJS: [&str; 10] = [
    "acute", "chronic", "sterile", "viral", "renal", "clinical", "infected", "severe", "mild",
    "surgical",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    General,
    Medical,
}

#[derive(Debug, Clone)]
pub struct Lexicon {
    general: FxHashMap<&'static str, String>,
    /// The medical translations of [`POLY`].
    medical_sense: FxHashMap<&'static str, String>,
}

impl Lexicon {
    pub fn generate(seed: u64) -> Lexicon {
        let mut rng = Rng::new(seed ^ 0x005E_ED1E_71C0);
        let mut namer = Namer::new(&T_SYLLABLES, &[]);
        let mut general = FxHashMap::default();
        for w in DETS.iter().chain(&PREPS) {
            general.insert(*w, namer.word(&mut rng, 1, 1, ""));
        }
        let content = G_NOUNS
            .iter()
            .chain(&POLY)
            .chain(&G_VERBS)
            .chain(&G_ADJS)
            .chain(&M_NOUNS)
            .chain(&M_VERBS)
            .chain(&M_ADJS);
        for w in content {
            general.insert(*w, namer.word(&mut rng, 2, 3, ""));
        }
        let medical_sense = POLY
            .iter()
            .map(|w| (*w, namer.word(&mut rng, 2, 3, "")))
            .collect();
        Lexicon {
            general,
            medical_sense,
        }
    }

    fn translate(&self, w: &str, d: Domain) -> &str {
        if d == Domain::Medical
            && let Some(t) = self.medical_sense.get(w)
        {
            return t;
        }
        &self.general[w]
    }
}

struct Np {
    det: &'static str,
    adj: Option<&'static str>,
    noun: &'static str,
}

fn noun(rng: &mut Rng, d: Domain) -> &'static str {
    let r = rng.unit();
    match d {
        Domain::General if r < 0.12 => pick(rng, &POLY),
        Domain::General => pick(rng, &G_NOUNS),
        Domain::Medical if r < 0.55 => pick(rng, &M_NOUNS),
        Domain::Medical if r < 0.85 => pick(rng, &POLY),
        Domain::Medical => pick(rng, &G_NOUNS),
    }
}

fn np(rng: &mut Rng, d: Domain) -> Np {
    let adj = (rng.unit() < 0.5).then(|| match d {
        Domain::Medical if rng.unit() < 0.7 => pick(rng, &M_ADJS),
        _ => pick(rng, &G_ADJS),
    });
    Np {
        det: pick(rng, &DETS),
        adj,
        noun: noun(rng, d),
    }
}

/// One sentence pair of domain `d`.
pub fn sentence(lex: &Lexicon, rng: &mut Rng, d: Domain) -> (String, String) {
    let subj = np(rng, d);
    let verb = match d {
        Domain::Medical if rng.unit() < 0.7 => pick(rng, &M_VERBS),
        _ => pick(rng, &G_VERBS),
    };
    let obj = np(rng, d);
    let pp = (rng.unit() < 0.4).then(|| (pick(rng, &PREPS), np(rng, d)));
    let src_np = |n: &Np| match n.adj {
        Some(a) => format!("{} {a} {}", n.det, n.noun),
        None => format!("{} {}", n.det, n.noun),
    };
    let tgt_np = |n: &Np| {
        let mut s = lex.translate(n.noun, d).to_string();
        if let Some(a) = n.adj {
            s = format!("{s} {}", lex.translate(a, d));
        }
        format!("{s} {}", lex.translate(n.det, d))
    };
    let mut src = format!("{} {verb} {}", src_np(&subj), src_np(&obj));
    let mut tgt = format!("{} {}", tgt_np(&subj), tgt_np(&obj));
    if let Some((p, n)) = &pp {
        src += &format!(" {p} {}", src_np(n));
        tgt += &format!(" {} {}", tgt_np(n), lex.translate(p, d));
    }
    src += " .";
    tgt += &format!(" {} .", lex.translate(verb, d));
    (src, tgt)
}

#[derive(Debug, Clone, Copy)]
pub struct ParallelConfig {
    pub general_train: usize,
    /// Medical sentences mixed into the general training data, as a web-scale corpus holds
    /// a little of every domain: enough for the model to have seen the medical words, too
    /// few for it to prefer their medical senses.
    pub medical_in_general: usize,
    pub medical_train: usize,
    pub dev: usize,
    pub test: usize,
    pub seed: u64,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        ParallelConfig {
            general_train: 12_000,
            medical_in_general: 150,
            medical_train: 3_000,
            dev: 200,
            test: 300,
            seed: 1,
        }
    }
}

/// Writes `{general,medical}.{train,dev,test}.{src,tgt}` into `dir`: line-aligned, one
/// sentence per line, each split drawn from its own stream of the seed (`general.train`
/// with `medical_in_general` medical sentences among its `general_train`).
pub fn write(cfg: &ParallelConfig, dir: &Path) -> ragl_core::Result<()> {
    let lex = Lexicon::generate(cfg.seed);
    let splits = [
        ("general", Domain::General, "train", cfg.general_train, 1),
        ("general", Domain::General, "dev", cfg.dev, 2),
        ("general", Domain::General, "test", cfg.test, 3),
        ("medical", Domain::Medical, "train", cfg.medical_train, 4),
        ("medical", Domain::Medical, "dev", cfg.dev, 5),
        ("medical", Domain::Medical, "test", cfg.test, 6),
    ];
    for (name, d, split, n, stream) in splits {
        let mut rng = Rng::new(cfg.seed.wrapping_mul(1000).wrapping_add(stream));
        let mut pairs: Vec<(String, String)> =
            (0..n).map(|_| sentence(&lex, &mut rng, d)).collect();
        if (d, split) == (Domain::General, "train") {
            let mut med = Rng::new(cfg.seed.wrapping_mul(1000).wrapping_add(7));
            for _ in 0..cfg.medical_in_general {
                let at = rng.below(pairs.len() + 1);
                pairs.insert(at, sentence(&lex, &mut med, Domain::Medical));
            }
        }
        for (ext, side) in [("src", 0), ("tgt", 1)] {
            let path = dir.join(format!("{name}.{split}.{ext}"));
            ragl_core::atomic::write_atomic(&path, |w| {
                for p in &pairs {
                    writeln!(w, "{}", if side == 0 { &p.0 } else { &p.1 })?;
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_reorder_and_domains_differ() {
        let lex = Lexicon::generate(1);
        let mut rng = Rng::new(3);
        let (s, t) = sentence(&lex, &mut rng, Domain::General);
        assert!(s.ends_with(" .") && t.ends_with(" ."));
        // Every source word but the determiner-free punctuation has one target word.
        assert_eq!(s.split(' ').count(), t.split(' ').count(), "{s} / {t}");
        let verb = s.split(' ').find(|w| G_VERBS.contains(w)).unwrap();
        let words: Vec<&str> = t.split(' ').collect();
        assert_eq!(words[words.len() - 2], lex.general[verb], "verb last: {t}");
        assert_ne!(
            lex.translate("cell", Domain::General),
            lex.translate("cell", Domain::Medical)
        );
        let med: Vec<String> = (0..50)
            .map(|_| sentence(&lex, &mut rng, Domain::Medical).0)
            .collect();
        assert!(med.iter().any(|s| M_NOUNS.iter().any(|n| s.contains(n))));
    }
}
