//! # ragl-synth
//!
//! Small data sets that ragl makes itself from a seed, so that `ragl quickstart` shows both
//! papers working offline, in minutes, with no third-party data:
//!
//! - [`world`]: a fictional encyclopedia. People, cities and organisations with invented
//!   names, each fact stated in two different passages (a person's biography and the page of
//!   their city or employer), and questions about every person. No model can know these
//!   facts without reading the corpus, which is the point: closed-book answers are guesses,
//!   and with REALM's own-passage exclusion a masked fact must come from the *other* page.
//! - [`parallel`]: a toy translation pair (English words into an invented verb-final
//!   language) with a general domain and a medical one. The medical domain brings words the
//!   general training data never has, and gives a second sense to some general words, which
//!   is what a kNN datastore over in-domain text fixes.
//! - [`vocab`]: a whole-word WordPiece vocabulary for a closed world, so BERTs can be trained
//!   from scratch on it.
//!
//! Everything is a pure function of the seed: the same seed gives the same bytes on every
//! platform (the generator is [`ragl_core::rng::Rng`]).

pub mod parallel;
pub mod vocab;
pub mod world;

use ragl_core::rng::Rng;
use rustc_hash::FxHashSet;

/// Invented words from a syllable inventory, never repeating one already handed out (across
/// every category drawn from the same `Namer`, so a city never shares a person's name).
pub(crate) struct Namer<'a> {
    syllables: &'a [&'a str],
    used: FxHashSet<String>,
}

impl<'a> Namer<'a> {
    pub(crate) fn new(syllables: &'a [&'a str], reserved: &[&str]) -> Self {
        Namer {
            syllables,
            used: reserved.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A new word of `min..=max` syllables plus an optional ending. When 64 draws in a row
    /// are taken (the short words are used up: a large world), one more syllable is
    /// allowed, so that any size terminates; smaller worlds never get there and keep their
    /// words.
    pub(crate) fn word(&mut self, rng: &mut Rng, min: usize, max: usize, ending: &str) -> String {
        let mut max = max;
        let mut taken = 0usize;
        loop {
            let n = min + rng.below(max - min + 1);
            let mut w: String = (0..n)
                .map(|_| self.syllables[rng.below(self.syllables.len())])
                .collect();
            w.push_str(ending);
            if self.used.insert(w.clone()) {
                return w;
            }
            taken += 1;
            if taken.is_multiple_of(64) {
                max += 1;
            }
        }
    }
}

pub(crate) fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Picks one word.
pub(crate) fn pick(rng: &mut Rng, v: &[&'static str]) -> &'static str {
    v[rng.below(v.len())]
}
