//! Top-k selection over scores, higher is better.
//!
//! Ties are broken by the lower row, so that a result does not depend on the order in
//! which threads visited the rows.

use std::cmp::Ordering;

/// One search result: a row of the index and its score (higher is better).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub row: u32,
    pub score: f32,
}

fn better(a: &Hit, b: &Hit) -> bool {
    a.score > b.score || (a.score == b.score && a.row < b.row)
}

/// The best `k` hits seen so far, kept sorted best first. Insertion is O(k), but after the
/// first few blocks almost every candidate fails the threshold test and costs one compare.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    hits: Vec<Hit>,
    /// Score of the worst kept hit once full, else −∞.
    threshold: f32,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            hits: Vec::with_capacity(k + 1),
            threshold: f32::NEG_INFINITY,
        }
    }

    #[inline]
    pub fn push(&mut self, row: u32, score: f32) {
        // NaN never enters: it fails both comparisons.
        if score < self.threshold || self.k == 0 || score.is_nan() {
            return;
        }
        let hit = Hit { row, score };
        if self.hits.len() == self.k && !better(&hit, self.hits.last().unwrap()) {
            return;
        }
        let pos = self.hits.partition_point(|h| better(h, &hit));
        self.hits.insert(pos, hit);
        if self.hits.len() > self.k {
            self.hits.pop();
        }
        if self.hits.len() == self.k {
            self.threshold = self.hits[self.k - 1].score;
        }
    }

    /// Scans one block of scores whose first row is `row0`.
    #[inline]
    pub fn scan(&mut self, row0: u32, scores: &[f32]) {
        let t = self.threshold;
        for (j, &s) in scores.iter().enumerate() {
            if s >= t {
                self.push(row0 + j as u32, s);
            }
        }
    }

    pub fn merge(&mut self, other: &TopK) {
        for h in &other.hits {
            self.push(h.row, h.score);
        }
    }

    pub fn into_sorted(self) -> Vec<Hit> {
        self.hits
    }
}

/// Orders hits best first (for results assembled from elsewhere).
pub fn sort_hits(hits: &mut [Hit]) {
    hits.sort_by(|a, b| {
        if better(a, b) {
            Ordering::Less
        } else if better(b, a) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_k_with_row_tie_break() {
        let mut t = TopK::new(3);
        for (r, s) in [
            (5, 1.0),
            (1, 3.0),
            (2, 2.0),
            (9, 3.0),
            (0, 1.0),
            (7, f32::NAN),
        ] {
            t.push(r, s);
        }
        let rows: Vec<u32> = t.clone().into_sorted().iter().map(|h| h.row).collect();
        assert_eq!(rows, vec![1, 9, 2]);
        let mut u = TopK::new(3);
        u.scan(10, &[2.5, 3.0, -1.0]);
        t.merge(&u);
        let rows: Vec<u32> = t.into_sorted().iter().map(|h| h.row).collect();
        assert_eq!(rows, vec![1, 9, 11]);
    }
}
