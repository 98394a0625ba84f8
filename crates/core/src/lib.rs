//! # ragl-core
//!
//! What every ragl crate shares: streaming readers for the text formats users already have
//! (plain line-aligned text, JSONL, TSV) whose errors name the file and the line; atomic
//! writes (temp file + rename, so a crash never leaves half a file behind); and the artifact
//! manifest that every index, datastore and checkpoint carries, so that an artifact made by
//! another model or format version is refused instead of silently misused.
//!
//! ```no_run
//! use ragl_core::read::{Input, Lines};
//! # fn main() -> ragl_core::Result<()> {
//! for line in Lines::open(&Input::from_arg("hyp.txt"))? {
//!     let line = line?;
//!     println!("{}: {}", line.number, line.text);
//! }
//! # Ok(()) }
//! ```

pub mod atomic;
pub mod error;
pub mod lock;
pub mod manifest;
pub mod npy;
pub mod npy_objects;
pub mod passage;
pub mod pickle;
pub mod progress;
pub mod qa;
pub mod read;
pub mod rng;
pub mod run;
pub mod text;

pub use error::{Error, Result};
