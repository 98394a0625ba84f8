//! SentencePiece model files written by hand: the `ModelProto` wire format with pieces,
//! scores and types, and a trainer spec naming the model type (1 unigram, 2 BPE). No
//! normaliser is written, so text is segmented as given (spaces still become `▁`).

/// `(piece, score, type)` with sentencepiece's type numbers: 1 normal, 2 unknown,
/// 3 control, 4 user-defined, 5 unused, 6 byte.
pub fn proto(pieces: &[(&str, f32, u64)], model_type: u64) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn bytes(field: u64, b: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }
    let mut out = Vec::new();
    for (p, s, t) in pieces {
        let mut inner = Vec::new();
        bytes(1, p.as_bytes(), &mut inner);
        varint(2 << 3 | 5, &mut inner);
        inner.extend_from_slice(&s.to_le_bytes());
        varint(3 << 3, &mut inner);
        varint(*t, &mut inner);
        bytes(1, &inner, &mut out);
    }
    let mut trainer = Vec::new();
    varint(3 << 3, &mut trainer);
    varint(model_type, &mut trainer);
    bytes(2, &trainer, &mut out);
    out
}

/// A small unigram model over German/English fixture words: `</s>` 0 (control),
/// `<unk>` 1, then word pieces and single letters.
pub fn tiny_unigram() -> Vec<u8> {
    let mut pieces: Vec<(&str, f32, u64)> = vec![("</s>", 0.0, 3), ("<unk>", 0.0, 2)];
    for w in [
        "▁ein",
        "▁Hund",
        "▁läuft",
        "▁a",
        "▁dog",
        "▁runs",
        "▁the",
        "▁der",
        "▁die",
        "▁Katze",
        "▁cat",
        "▁",
        ".",
    ] {
        pieces.push((w, -3.0, 1));
    }
    for c in "abcdefghijklmnopqrstuvwxyzäöüßABCDEFGHIJKLMNOPQRSTUVWXYZ".chars() {
        pieces.push((Box::leak(c.to_string().into_boxed_str()), -6.0, 1));
    }
    proto(&pieces, 1)
}
