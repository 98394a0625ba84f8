//! # ragl-mask
//!
//! REALM learns what to retrieve by predicting *salient spans* (named entities and dates),
//! which need world knowledge. [`salient`] finds them with rules: a date and number
//! grammar, capitalised name sequences, and a gazetteer mined from the corpus itself
//! (titles, and capitalised n-grams seen in mid-sentence); users may bring spans from any
//! external tagger instead.

pub mod examples;
pub mod files;
pub mod salient;

pub use salient::{Annotator, Gazetteer, Span, SpanType};
