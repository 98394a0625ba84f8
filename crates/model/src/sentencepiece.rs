//! SentencePiece models (`.spm`/`.model` files, a `ModelProto` protobuf) read without the C++
//! library, and unigram segmentation as `sentencepiece` does it: the precompiled normaliser
//! (`nmt_nfkc` and friends), extra whitespace removed, a dummy `▁` prefix, spaces escaped as
//! `▁`, then the Viterbi path over the whole sentence as `EncodeOptimized` computes it: in
//! `f32`, left to right, the first of equal scores kept. The arithmetic matters: `0 00` and
//! `00 0` score the same on paper, and which one sentencepiece picks depends on how the two
//! sums round.
//!
//! Mirrors `sentencepiece/src/normalizer.cc` and `unigram_model.cc`; the field numbers are
//! those of `sentencepiece_model.proto`. Only unigram models are read (every Marian/opus-mt
//! model is one); a BPE model is refused by name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokenizers::normalizers::precompiled::Precompiled;
use tokenizers::{NormalizedString, Normalizer};

use crate::{Error, Result};

/// A piece's kind (`ModelProto.SentencePiece.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug, Clone)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

/// A parsed SentencePiece unigram model, ready to segment text.
pub struct SentencePiece {
    pub path: PathBuf,
    pub pieces: Vec<Piece>,
    ids: HashMap<String, u32>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    precompiled: Option<Precompiled>,
    /// Every prefix of a piece the segmenter may match, with the piece's id where the
    /// prefix is a whole piece (the trie, flattened).
    prefixes: HashMap<String, Option<u32>>,
    unk: u32,
    /// The lowest normal piece's score minus 10 (`kUnkPenalty`).
    unk_score: f32,
    /// The highest normal piece's score (user-defined pieces get `length × max − 0.1`).
    max_score: f32,
}

impl std::fmt::Debug for SentencePiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentencePiece")
            .field("path", &self.path)
            .field("pieces", &self.pieces.len())
            .finish()
    }
}

const SPACE: char = '\u{2581}';

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Tokenizer {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A protobuf wire-format reader: just what `ModelProto` needs.
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64,
    Bytes(&'a [u8]),
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Wire { buf, pos: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// The next `(field number, value)`, `None` at the end, `Some(Err)` when malformed.
    fn next(&mut self) -> Option<std::result::Result<(u64, Field<'a>), ()>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let field = || -> Option<(u64, Field<'a>)> {
            let key = self.varint()?;
            let value = match key & 7 {
                0 => Field::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Field::Fixed64
                }
                2 => {
                    let n = usize::try_from(self.varint()?).ok()?;
                    Field::Bytes(self.take(n)?)
                }
                5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
                _ => return None,
            };
            Some((key >> 3, value))
        }();
        Some(field.ok_or(()))
    }
}

/// Walks every path the normaliser's double-array trie can take (the layout of
/// `spm_precompiled`, which indexes without checking) and checks that each stays inside the
/// array and each value points at a character of the replacement strings: a corrupt model
/// is refused here instead of panicking on the first unusual character of some input.
fn check_charsmap(m: &[u8]) -> std::result::Result<(), String> {
    let size = u32::from_le_bytes(m[..4].try_into().expect("4 bytes")) as usize;
    let units: Vec<usize> = m[4..4 + size]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize)
        .collect();
    let normalized =
        std::str::from_utf8(&m[4 + size..]).map_err(|_| "replacements are not UTF-8")?;
    let offset = |u: usize| (u >> 10) << ((u & (1 << 9)) >> 6);
    let label = |u: usize| u & ((1 << 31) | 0xFF);
    let root = *units.first().ok_or("empty trie")?;
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![offset(root)];
    while let Some(base) = todo.pop() {
        if !seen.insert(base) {
            continue;
        }
        for c in 1..=255usize {
            let pos = base ^ c;
            let unit = *units.get(pos).ok_or("a trie index outside the array")?;
            if label(unit) != c {
                continue;
            }
            let next = pos ^ offset(unit);
            if (unit >> 8) & 1 == 1 {
                let value = *units.get(next).ok_or("a trie leaf outside the array")?;
                let start = value & ((1 << 31) - 1);
                if !normalized.is_char_boundary(start) {
                    return Err("a replacement outside the replacement strings".into());
                }
            }
            todo.push(next);
        }
    }
    Ok(())
}

fn utf8(path: &Path, b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| bad(path, "a piece is not UTF-8"))
}

impl SentencePiece {
    pub fn open(path: &Path) -> Result<SentencePiece> {
        let bytes = std::fs::read(path).map_err(|e| ragl_core::Error::io(path, e))?;
        Self::from_bytes(path, &bytes)
    }

    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<SentencePiece> {
        let malformed = || bad(path, "not a SentencePiece model (malformed protobuf)");
        let mut pieces = Vec::new();
        let mut model_type = 1u64;
        let (mut dummy, mut strip, mut escape) = (true, true, true);
        let mut charsmap: Option<Vec<u8>> = None;
        let mut w = Wire::new(bytes);
        while let Some(f) = w.next() {
            match f.map_err(|_| malformed())? {
                (1, Field::Bytes(b)) => {
                    let mut p = Piece {
                        piece: String::new(),
                        score: 0.0,
                        kind: PieceType::Normal,
                    };
                    let mut inner = Wire::new(b);
                    while let Some(f) = inner.next() {
                        match f.map_err(|_| malformed())? {
                            (1, Field::Bytes(s)) => p.piece = utf8(path, s)?,
                            (2, Field::Fixed32(x)) => p.score = f32::from_bits(x),
                            (3, Field::Varint(t)) => {
                                p.kind = match t {
                                    1 => PieceType::Normal,
                                    2 => PieceType::Unknown,
                                    3 => PieceType::Control,
                                    4 => PieceType::UserDefined,
                                    5 => PieceType::Unused,
                                    6 => PieceType::Byte,
                                    _ => return Err(bad(path, format!("unknown piece type {t}"))),
                                }
                            }
                            _ => {}
                        }
                    }
                    pieces.push(p);
                }
                (2, Field::Bytes(b)) => {
                    let mut inner = Wire::new(b);
                    while let Some(f) = inner.next() {
                        if let (3, Field::Varint(t)) = f.map_err(|_| malformed())? {
                            model_type = t;
                        }
                    }
                }
                (3, Field::Bytes(b)) => {
                    let mut inner = Wire::new(b);
                    while let Some(f) = inner.next() {
                        match f.map_err(|_| malformed())? {
                            (2, Field::Bytes(m)) => charsmap = Some(m.to_vec()),
                            (3, Field::Varint(v)) => dummy = v != 0,
                            (4, Field::Varint(v)) => strip = v != 0,
                            (5, Field::Varint(v)) => escape = v != 0,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if pieces.is_empty() {
            return Err(bad(path, "not a SentencePiece model (no pieces)"));
        }
        if model_type != 1 {
            let name = match model_type {
                2 => "BPE",
                3 => "word",
                4 => "char",
                _ => "unknown",
            };
            return Err(bad(
                path,
                format!("a {name} SentencePiece model: only unigram models are supported"),
            ));
        }
        let unk = pieces
            .iter()
            .position(|p| p.kind == PieceType::Unknown)
            .ok_or_else(|| bad(path, "the model has no unknown piece"))?;
        let precompiled = match charsmap {
            Some(m) if !m.is_empty() => {
                // The blob opens with its trie's size; the parser reserves that much before
                // reading, so a corrupt size would ask for gigabytes.
                let trie = m
                    .get(..4)
                    .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
                if trie.is_none_or(|t| t % 4 != 0 || t > m.len() - 4) {
                    return Err(bad(
                        path,
                        "precompiled normaliser: the trie size does not fit the blob",
                    ));
                }
                check_charsmap(&m)
                    .map_err(|e| bad(path, format!("precompiled normaliser: {e}")))?;
                Some(
                    Precompiled::from(&m)
                        .map_err(|e| bad(path, format!("precompiled normaliser: {e}")))?,
                )
            }
            _ => None,
        };
        // The trie holds normal, user-defined and unused pieces (unused ones are skipped when
        // matched); control and unknown pieces never match text.
        let mut prefixes: HashMap<String, Option<u32>> = HashMap::new();
        for (i, p) in pieces.iter().enumerate() {
            if !matches!(
                p.kind,
                PieceType::Normal | PieceType::UserDefined | PieceType::Unused
            ) || p.piece.is_empty()
            {
                continue;
            }
            for (j, _) in p.piece.char_indices().skip(1) {
                prefixes.entry(p.piece[..j].to_string()).or_insert(None);
            }
            prefixes.insert(p.piece.clone(), Some(i as u32));
        }
        let normal = || pieces.iter().filter(|p| p.kind == PieceType::Normal);
        let min_score = normal().map(|p| p.score).fold(f32::MAX, f32::min);
        let max_score = normal().map(|p| p.score).fold(f32::MIN_POSITIVE, f32::max);
        let ids = pieces
            .iter()
            .enumerate()
            .map(|(i, p)| (p.piece.clone(), i as u32))
            .collect();
        Ok(SentencePiece {
            path: path.to_path_buf(),
            pieces,
            ids,
            add_dummy_prefix: dummy,
            remove_extra_whitespaces: strip,
            escape_whitespaces: escape,
            precompiled,
            prefixes,
            unk: unk as u32,
            unk_score: min_score - 10.0,
            max_score,
        })
    }

    /// The text the lattice sees: normalised, whitespace cleaned, `▁` for spaces.
    pub fn normalize(&self, text: &str) -> String {
        let mut s = text.to_owned();
        if let Some(p) = &self.precompiled {
            let mut n = NormalizedString::from(text);
            if p.normalize(&mut n).is_ok() {
                s = n.get().to_owned();
            }
        }
        let mut out = String::with_capacity(s.len() + 3);
        let mut last_space = true; // drops leading spaces when stripping
        for c in s.chars() {
            if c == ' ' {
                if self.remove_extra_whitespaces && last_space {
                    continue;
                }
                last_space = true;
            } else {
                last_space = false;
            }
            out.push(c);
        }
        if self.remove_extra_whitespaces {
            while out.ends_with(' ') {
                out.pop();
            }
        }
        if out.is_empty() {
            return out;
        }
        if self.add_dummy_prefix {
            out.insert(0, ' ');
        }
        if self.escape_whitespaces {
            out = out.replace(' ', &SPACE.to_string());
        }
        out
    }

    /// The best segmentation of normalised text, as `(byte range, id)` pieces.
    fn viterbi(&self, norm: &str) -> Vec<(usize, usize, u32)> {
        #[derive(Clone, Copy)]
        struct Node {
            score: f32,
            start: Option<usize>,
            id: u32,
        }
        let n = norm.len();
        let mut best = vec![
            Node {
                score: 0.0,
                start: None,
                id: 0,
            };
            n + 1
        ];
        let offer = |best: &mut Vec<Node>, end: usize, start: usize, score: f32, id: u32| {
            let t = &mut best[end];
            if t.start.is_none() || score > t.score {
                *t = Node {
                    score,
                    start: Some(start),
                    id,
                };
            }
        };
        let mut start = 0;
        while start < n {
            let here = best[start].score;
            let one = norm[start..].chars().next().map_or(1, char::len_utf8);
            let mut single = false;
            for (end, _) in norm[start..]
                .char_indices()
                .skip(1)
                .map(|(j, c)| (start + j, c))
                .chain(std::iter::once((n, ' ')))
            {
                match self.prefixes.get(&norm[start..end]) {
                    None => break,
                    Some(None) => {}
                    Some(Some(id)) => {
                        let p = &self.pieces[*id as usize];
                        if p.kind == PieceType::Unused {
                            continue;
                        }
                        let len = end - start;
                        let score = if p.kind == PieceType::UserDefined {
                            len as f32 * self.max_score - 0.1
                        } else {
                            p.score
                        };
                        offer(&mut best, end, start, score + here, *id);
                        single |= len == one;
                    }
                }
            }
            if !single {
                offer(
                    &mut best,
                    start + one,
                    start,
                    self.unk_score + here,
                    self.unk,
                );
            }
            start += one;
        }
        let mut out = Vec::new();
        let mut end = n;
        while end > 0 {
            let node = best[end];
            let s = node.start.expect("every position is reached");
            out.push((s, end, node.id));
            end = s;
        }
        out.reverse();
        out
    }

    /// The pieces of `text` (unknown stretches as their surface text, runs of them merged,
    /// as sentencepiece's `EncodeAsPieces` gives them).
    pub fn encode_pieces(&self, text: &str) -> Result<Vec<String>> {
        let norm = self.normalize(text);
        let mut out: Vec<String> = Vec::new();
        let mut last_unk = false;
        for (s, e, id) in self.viterbi(&norm) {
            let unk = id == self.unk;
            match out.last_mut() {
                Some(prev) if unk && last_unk => prev.push_str(&norm[s..e]),
                _ => out.push(norm[s..e].to_string()),
            }
            last_unk = unk;
        }
        Ok(out)
    }

    pub fn piece_id(&self, piece: &str) -> Option<u32> {
        self.ids.get(piece).copied()
    }

    /// Text of `pieces` as `DecodePieces` gives it: control pieces dropped, pieces the model
    /// does not know as ` ⁇ `, `▁` as a space, the dummy prefix's space removed.
    pub fn decode_pieces<S: AsRef<str>>(&self, pieces: &[S]) -> String {
        let mut out = String::new();
        for p in pieces {
            let p = p.as_ref();
            match self.piece_id(p).map(|i| self.pieces[i as usize].kind) {
                Some(PieceType::Control) => {}
                Some(PieceType::Unknown) | None => out.push_str(" \u{2047} "),
                _ => out.push_str(p),
            }
        }
        let mut text = out.replace(SPACE, " ");
        if self.add_dummy_prefix && text.starts_with(' ') {
            text.remove(0);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ragl_testkit::spm::proto;

    fn model() -> SentencePiece {
        let p = proto(
            &[
                ("</s>", 0.0, 3),
                ("<unk>", 0.0, 2),
                ("▁", -2.0, 1),
                ("▁ein", -3.0, 1),
                ("▁Hund", -4.0, 1),
                ("e", -3.0, 1),
                ("i", -3.0, 1),
                ("n", -3.0, 1),
                ("H", -5.0, 1),
                ("u", -5.0, 1),
                ("d", -5.0, 1),
            ],
            1,
        );
        SentencePiece::from_bytes(Path::new("t.spm"), &p).unwrap()
    }

    #[test]
    fn segments_with_dummy_prefix_and_extra_spaces_removed() {
        let m = model();
        assert_eq!(m.normalize("  ein   Hund "), "▁ein▁Hund");
        assert_eq!(m.encode_pieces("ein  Hund").unwrap(), ["▁ein", "▁Hund"]);
        assert_eq!(m.encode_pieces("").unwrap(), Vec::<String>::new());
        // Unknown characters come back as their surface text.
        assert_eq!(m.encode_pieces("ein xy").unwrap(), ["▁ein", "▁", "xy"]);
        assert_eq!(m.decode_pieces(&["▁ein", "▁Hund", "</s>"]), "ein Hund");
        assert_eq!(m.decode_pieces(&["▁ein", "zz"]), "ein ⁇ ");
    }

    #[test]
    fn refuses_bpe_and_garbage() {
        let p = proto(&[("<unk>", 0.0, 2), ("a", -1.0, 1)], 2);
        let e = SentencePiece::from_bytes(Path::new("b.spm"), &p).unwrap_err();
        assert!(e.to_string().contains("BPE"), "{e}");
        let e = SentencePiece::from_bytes(Path::new("g.spm"), b"{\"not\": 1}").unwrap_err();
        assert!(e.to_string().contains("g.spm"), "{e}");
        // A normaliser whose trie claims 2 GiB (found by fuzzing: the parser reserved it).
        let mut p = proto(&[("<unk>", 0.0, 2), ("a", -1.0, 1)], 1);
        let mut spec = vec![2 << 3 | 2, 8];
        spec.extend_from_slice(&0x8000_0000u32.to_le_bytes());
        spec.extend_from_slice(b"abcd");
        p.push(3 << 3 | 2);
        p.push(spec.len() as u8);
        p.extend_from_slice(&spec);
        let e = SentencePiece::from_bytes(Path::new("n.spm"), &p).unwrap_err();
        assert!(e.to_string().contains("trie size"), "{e}");
        let e = SentencePiece::from_bytes(Path::new("e.spm"), b"").unwrap_err();
        assert!(e.to_string().contains("no pieces"), "{e}");
    }
}
