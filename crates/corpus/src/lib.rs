//! # ragl-corpus
//!
//! REALM retrieves passages, not articles. This crate turns documents into passages:
//! [`document`] reads JSONL, TSV and SQuAD inputs as a stream of documents,
//! [`sentences`] finds sentence boundaries by rule, and [`chunk`] packs whole sentences into
//! windows that fit the encoder's token budget together with the title, splitting only
//! sentences that are longer than the budget, and dropping exact duplicates.

pub mod chunk;
pub mod document;
pub mod sentences;
