//! Progress reports from long library jobs. Libraries call an `impl FnMut(Progress)`; the CLI
//! turns it into a progress bar, tests ignore it.

/// `done` units of work finished, out of `total` when it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}
