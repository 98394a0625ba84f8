//! A fictional encyclopedia with questions (see the crate overview).
//!
//! Each person has a biography page: "Ana Tolvek was born in Ketmere in 1843. Ana Tolvek
//! worked as a cartographer at the Velmor Institute." The same facts are stated again, in
//! other words, on the page of the city ("Ketmere was the birthplace of Ana Tolvek in
//! 1843.") and of the organisation ("Ana Tolvek served the Velmor Institute as a
//! cartographer."). Questions ask for the city, the year, the occupation and the employer
//! of every person, in SQuAD's JSON layout with the biography as context, so `ragl qa
//! split` splits them by person and `ragl eval qa` scores them.

use std::io::Write;
use std::path::Path;

use ragl_core::rng::Rng;
use serde_json::json;

use crate::{Namer, capitalise, pick};

const SYLLABLES: [&str; 36] = [
    "ka", "lo", "ven", "dor", "mi", "ra", "tel", "bas", "quin", "sor", "fen", "ul", "mar", "thi",
    "gan", "pol", "ne", "rik", "zo", "har", "wel", "ost", "ber", "cai", "lun", "dra", "vis", "mo",
    "tar", "esk", "bri", "jo", "nal", "pe", "sil", "vo",
];
const CITY_ENDINGS: [&str; 6] = ["mere", "ford", "holm", "gard", "wick", "ton"];
const ORG_KINDS: [&str; 5] = ["Company", "Institute", "Society", "Academy", "Guild"];
const OCCUPATIONS: [&str; 12] = [
    "astronomer",
    "cartographer",
    "chemist",
    "composer",
    "engineer",
    "painter",
    "physician",
    "poet",
    "sculptor",
    "botanist",
    "historian",
    "architect",
];
/// English words the texts use: no invented name may equal one of them.
const RESERVED: [&str; 12] = [
    "was", "born", "in", "the", "at", "as", "a", "city", "of", "served", "worked", "where",
];

#[derive(Debug, Clone, Copy)]
pub struct WorldConfig {
    pub people: usize,
    pub cities: usize,
    pub countries: usize,
    pub organisations: usize,
    pub seed: u64,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            people: 240,
            cities: 24,
            countries: 5,
            organisations: 12,
            seed: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub city: usize,
    pub year: u32,
    pub occupation: &'static str,
    pub org: usize,
}

#[derive(Debug, Clone)]
pub struct City {
    pub name: String,
    pub country: usize,
}

#[derive(Debug, Clone)]
pub struct Org {
    pub name: String,
    pub founded_in: usize,
}

#[derive(Debug, Clone)]
pub struct World {
    pub people: Vec<Person>,
    pub cities: Vec<City>,
    pub countries: Vec<String>,
    pub orgs: Vec<Org>,
}

/// A document of the corpus: `{"id","title","text"}`.
#[derive(Debug, Clone)]
pub struct Doc {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// A question with its answer and the person it is about.
#[derive(Debug, Clone)]
pub struct Question {
    pub id: String,
    pub person: usize,
    pub question: String,
    pub answer: String,
}

impl World {
    pub fn generate(cfg: &WorldConfig) -> World {
        let mut rng = Rng::new(cfg.seed);
        let mut namer = Namer::new(&SYLLABLES, &RESERVED);
        let countries = (0..cfg.countries)
            .map(|_| capitalise(&namer.word(&mut rng, 2, 3, "ia")))
            .collect();
        let cities: Vec<City> = (0..cfg.cities)
            .map(|_| {
                let end = pick(&mut rng, &CITY_ENDINGS);
                City {
                    name: capitalise(&namer.word(&mut rng, 1, 2, end)),
                    country: rng.below(cfg.countries),
                }
            })
            .collect();
        let orgs = (0..cfg.organisations)
            .map(|_| Org {
                name: format!(
                    "{} {}",
                    capitalise(&namer.word(&mut rng, 2, 2, "")),
                    pick(&mut rng, &ORG_KINDS)
                ),
                founded_in: rng.below(cfg.cities),
            })
            .collect();
        let people = (0..cfg.people)
            .map(|_| {
                let first = capitalise(&namer.word(&mut rng, 1, 2, ""));
                let last = capitalise(&namer.word(&mut rng, 2, 3, ""));
                Person {
                    name: format!("{first} {last}"),
                    city: rng.below(cfg.cities),
                    year: 1700 + rng.below(200) as u32,
                    occupation: pick(&mut rng, &OCCUPATIONS),
                    org: rng.below(cfg.organisations),
                }
            })
            .collect();
        World {
            people,
            cities,
            countries,
            orgs,
        }
    }

    fn biography(&self, p: &Person) -> String {
        format!(
            "{n} was born in {c} in {y}. {n} worked as a {o} at the {g}.",
            n = p.name,
            c = self.cities[p.city].name,
            y = p.year,
            o = p.occupation,
            g = self.orgs[p.org].name
        )
    }

    /// The corpus: one biography per person, one page per city and per organisation.
    pub fn documents(&self) -> Vec<Doc> {
        let mut docs: Vec<Doc> = self
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| Doc {
                id: format!("person-{i}"),
                title: p.name.clone(),
                text: self.biography(p),
            })
            .collect();
        for (i, c) in self.cities.iter().enumerate() {
            let mut text = format!("{} is a city in {}.", c.name, self.countries[c.country]);
            for p in self.people.iter().filter(|p| p.city == i) {
                text += &format!(
                    " {} was the birthplace of {} in {}.",
                    c.name, p.name, p.year
                );
            }
            docs.push(Doc {
                id: format!("city-{i}"),
                title: c.name.clone(),
                text,
            });
        }
        for (i, g) in self.orgs.iter().enumerate() {
            let mut text = format!(
                "The {} was founded in {}.",
                g.name, self.cities[g.founded_in].name
            );
            for p in self.people.iter().filter(|p| p.org == i) {
                text += &format!(" {} served the {} as a {}.", p.name, g.name, p.occupation);
            }
            docs.push(Doc {
                id: format!("org-{i}"),
                title: g.name.clone(),
                text,
            });
        }
        docs
    }

    /// Four questions per person.
    pub fn questions(&self) -> Vec<Question> {
        let mut out = Vec::with_capacity(4 * self.people.len());
        for (i, p) in self.people.iter().enumerate() {
            let n = &p.name;
            let qa = [
                (
                    format!("Where was {n} born?"),
                    self.cities[p.city].name.clone(),
                ),
                (format!("In which year was {n} born?"), p.year.to_string()),
                (format!("What did {n} work as?"), p.occupation.to_string()),
                (
                    format!("Which organisation did {n} work at?"),
                    self.orgs[p.org].name.clone(),
                ),
            ];
            for (j, (question, answer)) in qa.into_iter().enumerate() {
                out.push(Question {
                    id: format!("q{i}-{j}"),
                    person: i,
                    question,
                    answer,
                });
            }
        }
        out
    }

    /// SQuAD v1.1 JSON: one article per person, the biography as its paragraph, answers
    /// located by character offset.
    pub fn squad_json(&self) -> serde_json::Value {
        let qs = self.questions();
        let data: Vec<_> = self
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let context = self.biography(p);
                let qas: Vec<_> = qs
                    .iter()
                    .filter(|q| q.person == i)
                    .map(|q| {
                        let start = context.find(&q.answer).expect("answer in biography");
                        json!({"id": q.id, "question": q.question,
                               "answers": [{"text": q.answer, "answer_start": start}]})
                    })
                    .collect();
                json!({"title": p.name, "paragraphs": [{"context": context, "qas": qas}]})
            })
            .collect();
        json!({"version": "ragl-synth-world", "data": data})
    }

    /// Writes `docs.jsonl`, `qa.json` (SQuAD layout) and `vocab.txt` (every word of both)
    /// into `dir`.
    pub fn write(&self, dir: &Path) -> ragl_core::Result<()> {
        let docs = self.documents();
        ragl_core::atomic::write_atomic(&dir.join("docs.jsonl"), |w| {
            for d in &docs {
                let line = json!({"id": d.id, "title": d.title, "text": d.text});
                writeln!(w, "{line}")?;
            }
            Ok(())
        })?;
        ragl_core::atomic::write_bytes_atomic(
            &dir.join("qa.json"),
            self.squad_json().to_string().as_bytes(),
        )?;
        let qs = self.questions();
        let texts = docs
            .iter()
            .flat_map(|d| [d.title.as_str(), d.text.as_str()])
            .chain(qs.iter().map(|q| q.question.as_str()));
        let vocab = crate::vocab::wordpiece_vocab(texts);
        ragl_core::atomic::write_bytes_atomic(
            &dir.join("vocab.txt"),
            (vocab.join("\n") + "\n").as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_is_on_two_pages_and_names_are_unique() {
        let w = World::generate(&WorldConfig::default());
        let docs = w.documents();
        assert_eq!(docs.len(), 240 + 24 + 12);
        let mut names: Vec<&str> = w.people.iter().map(|p| p.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 240);
        for q in w.questions() {
            let p = &w.people[q.person];
            let pages = docs
                .iter()
                .filter(|d| d.text.contains(&p.name) && d.text.contains(&q.answer))
                .count();
            assert!(pages >= 2, "{} / {}: {pages} pages", q.question, q.answer);
        }
        // Deterministic in the seed.
        let again = World::generate(&WorldConfig::default());
        assert_eq!(again.documents()[7].text, docs[7].text);
        let other = World::generate(&WorldConfig {
            seed: 2,
            ..Default::default()
        });
        assert_ne!(other.documents()[7].text, docs[7].text);
    }

    #[test]
    fn a_large_world_terminates_with_unique_names() {
        let w = World::generate(&WorldConfig {
            people: 3000,
            ..WorldConfig::default()
        });
        let names: std::collections::HashSet<&str> =
            w.people.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), 3000);
    }
}
