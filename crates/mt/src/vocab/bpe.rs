//! Byte-pair encoding with an end-of-word marker, as subword-nmt learns it and
//! `FSMTTokenizer.bpe` applies it: a word's last character carries `</w>`, and the adjacent
//! pair with the lowest merge rank is merged everywhere until no listed pair is left.

use std::collections::HashMap;
use std::path::Path;

use crate::moses;
use crate::{Error, Result};

pub const END: &str = "</w>";

/// The merge table of a `merges.txt`.
pub struct Bpe {
    ranks: HashMap<(String, String), usize>,
}

impl Bpe {
    /// Reads `merges.txt` as FSMTTokenizer does: universal newlines, the text after the
    /// last newline dropped, each line's first two fields a pair ranked by its line number
    /// (a repeated pair keeps its last rank).
    pub fn open(path: &Path) -> Result<Bpe> {
        let bytes = std::fs::read(path).map_err(|e| ragl_core::Error::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| Error::Artifact {
            path: path.to_path_buf(),
            message: format!("not UTF-8 text: {e}"),
        })?;
        Ok(Bpe::parse(&text))
    }

    pub fn parse(text: &str) -> Bpe {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut lines: Vec<&str> = text.split('\n').collect();
        lines.pop();
        let mut ranks = HashMap::with_capacity(lines.len());
        for (rank, line) in lines.iter().enumerate() {
            let mut f = moses::split(line);
            if let (Some(a), Some(b)) = (f.next(), f.next()) {
                ranks.insert((a.to_string(), b.to_string()), rank);
            }
        }
        Bpe { ranks }
    }

    pub fn len(&self) -> usize {
        self.ranks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranks.is_empty()
    }

    /// The subwords of one (non-empty) token.
    pub fn segment(&self, token: &str) -> Vec<String> {
        let mut word: Vec<String> = token.chars().map(String::from).collect();
        match word.last_mut() {
            Some(last) => last.push_str(END),
            None => return vec![END.to_string()],
        }
        let mut key = (String::new(), String::new());
        while word.len() > 1 {
            let mut best: Option<(usize, usize)> = None;
            for i in 0..word.len() - 1 {
                key.0.clone_from(&word[i]);
                key.1.clone_from(&word[i + 1]);
                if let Some(&r) = self.ranks.get(&key)
                    && best.is_none_or(|(b, _)| r < b)
                {
                    best = Some((r, i));
                }
            }
            let Some((_, at)) = best else { break };
            let (first, second) = (word[at].clone(), word[at + 1].clone());
            let mut merged = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == first && word[i + 1] == second {
                    merged.push(format!("{first}{second}"));
                    i += 2;
                } else {
                    merged.push(std::mem::take(&mut word[i]));
                    i += 1;
                }
            }
            word = merged;
        }
        word
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_by_rank_and_marks_the_word_end() {
        let bpe = Bpe::parse("e r</w> 9\nl o 8\nh e 7\nlo w</w> 5\n");
        assert_eq!(bpe.segment("lower"), ["lo", "w", "er</w>"]);
        assert_eq!(bpe.segment("low"), ["low</w>"]);
        assert_eq!(bpe.segment("x"), ["x</w>"]);
        // Without a final newline the last line is not a merge (FSMTTokenizer drops it).
        let bpe = Bpe::parse("l o 1\nlo w</w> 1");
        assert_eq!(bpe.segment("low"), ["lo", "w</w>"]);
    }
}
