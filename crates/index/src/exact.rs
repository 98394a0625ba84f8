//! Exact search: every query against every vector, by blocked matrix products.
//!
//! Scores for a block of queries against a block of vectors come from one GEMM
//! (`gemm` crate: packed, SIMD, the same kernel family burn's CPU backend uses); each score
//! row is then scanned into the query's [`TopK`]. The vector blocks are spread over threads
//! (rayon), each with its own top-k per query, merged at the end, so the result does not
//! depend on the thread count. This is what faiss's `IndexFlatIP` does with BLAS.

use rayon::prelude::*;

use crate::Metric;
use crate::topk::{Hit, TopK};

/// Vectors per GEMM block: 1,024 × 384 f32 is 1.5 MB, which stays in L2/L3 while a block
/// of queries streams past it.
const DB_BLOCK: usize = 1024;
/// Queries per GEMM block.
const Q_BLOCK: usize = 512;

/// Squared L2 norms of the rows of `x` (for L2 search by inner products).
pub fn squared_norms(x: &[f32], dim: usize) -> Vec<f32> {
    x.par_chunks(dim * 1024)
        .flat_map_iter(|c| c.chunks_exact(dim).map(|r| r.iter().map(|v| v * v).sum()))
        .collect()
}

/// `out[i, j] = q_i · x_j` for a block of queries `q` ([m, dim]) and vectors `x` ([n, dim]),
/// row-major, single-threaded (parallelism is across blocks).
fn dot_block(q: &[f32], x: &[f32], dim: usize, out: &mut [f32]) {
    let m = q.len() / dim;
    let n = x.len() / dim;
    debug_assert_eq!(out.len(), m * n);
    // SAFETY: the pointers and strides describe `q` ([m, dim] row-major), `x` read as its
    // transpose ([dim, n]: column j is row j of x) and `out` ([m, n] row-major), all in
    // bounds by the lengths checked above.
    unsafe {
        gemm::gemm(
            m,
            n,
            dim,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            q.as_ptr(),
            1,
            dim as isize,
            x.as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Exact top-k of each query (rows of `queries`, [nq, dim]) over `vectors` ([n, dim]).
///
/// For `Metric::L2`, `norms` must hold the squared norms of `vectors` and the returned
/// score is the negated squared distance. Results are sorted best first; ties go to the
/// lower row.
pub fn search(
    vectors: &[f32],
    norms: Option<&[f32]>,
    dim: usize,
    metric: Metric,
    queries: &[f32],
    k: usize,
) -> Vec<Vec<Hit>> {
    assert!(dim > 0 && vectors.len().is_multiple_of(dim) && queries.len().is_multiple_of(dim));
    let nq = queries.len() / dim;
    let n = vectors.len() / dim;
    if nq == 0 {
        return Vec::new();
    }
    let k = k.min(n);
    if metric == Metric::L2 {
        assert_eq!(
            norms.map(<[f32]>::len),
            Some(n),
            "L2 search needs the vector norms"
        );
    }
    let blocks: Vec<usize> = (0..n).step_by(DB_BLOCK).collect();
    let merged = blocks
        .par_iter()
        .fold(
            || (vec![TopK::new(k); nq], Vec::<f32>::new()),
            |(mut tops, mut buf), &start| {
                let end = (start + DB_BLOCK).min(n);
                let x = &vectors[start * dim..end * dim];
                let bn = end - start;
                for (qb, q) in queries.chunks(Q_BLOCK * dim).enumerate() {
                    let m = q.len() / dim;
                    buf.resize(m * bn, 0.0);
                    dot_block(q, x, dim, &mut buf);
                    if metric == Metric::L2 {
                        // −‖q − x‖² = 2 q·x − ‖x‖² − ‖q‖²; the last term is added per query below.
                        let xn = &norms.unwrap()[start..end];
                        for row in buf.chunks_exact_mut(bn) {
                            for (s, &xn) in row.iter_mut().zip(xn) {
                                *s = 2.0 * *s - xn;
                            }
                        }
                    }
                    for (i, row) in buf.chunks_exact(bn).enumerate() {
                        tops[qb * Q_BLOCK + i].scan(start as u32, row);
                    }
                }
                (tops, buf)
            },
        )
        .map(|(tops, _)| tops)
        .reduce(
            || vec![TopK::new(k); nq],
            |mut a, b| {
                for (a, b) in a.iter_mut().zip(&b) {
                    a.merge(b);
                }
                a
            },
        );
    merged
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let mut hits = t.into_sorted();
            if metric == Metric::L2 {
                let q = &queries[i * dim..(i + 1) * dim];
                let qn: f32 = q.iter().map(|v| v * v).sum();
                for h in &mut hits {
                    h.score -= qn;
                }
            }
            hits
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random vectors (no rand dependency).
    pub(crate) fn vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n * dim)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    fn brute(x: &[f32], dim: usize, q: &[f32], k: usize, metric: Metric) -> Vec<u32> {
        let mut s: Vec<(f32, u32)> = x
            .chunks_exact(dim)
            .enumerate()
            .map(|(j, r)| {
                let v = match metric {
                    Metric::Ip => r.iter().zip(q).map(|(a, b)| (a * b) as f64).sum::<f64>(),
                    Metric::L2 => -r
                        .iter()
                        .zip(q)
                        .map(|(a, b)| ((a - b) * (a - b)) as f64)
                        .sum::<f64>(),
                };
                (v as f32, j as u32)
            })
            .collect();
        s.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
        s.iter().take(k).map(|p| p.1).collect()
    }

    #[test]
    fn matches_brute_force_across_blocks() {
        let dim = 24;
        let n = DB_BLOCK * 2 + 77;
        let x = vectors(n, dim, 1);
        let q = vectors(Q_BLOCK + 5, dim, 2);
        let norms = squared_norms(&x, dim);
        for metric in [Metric::Ip, Metric::L2] {
            let got = search(&x, Some(&norms), dim, metric, &q, 5);
            for (i, hits) in got.iter().enumerate() {
                let want = brute(&x, dim, &q[i * dim..(i + 1) * dim], 5, metric);
                let rows: Vec<u32> = hits.iter().map(|h| h.row).collect();
                assert_eq!(rows, want, "query {i} {metric:?}");
            }
        }
        // L2 scores are the negated squared distances.
        let h = search(&x, Some(&norms), dim, Metric::L2, &q[..dim], 1)[0][0];
        let r = &x[h.row as usize * dim..(h.row as usize + 1) * dim];
        let d: f32 = r
            .iter()
            .zip(&q[..dim])
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        assert!((h.score + d).abs() < 1e-4, "{} vs {d}", h.score);
    }

    #[test]
    fn k_larger_than_the_index() {
        let x = vectors(3, 4, 3);
        let got = search(&x, None, 4, Metric::Ip, &x[..4], 10);
        assert_eq!(got[0].len(), 3);
    }
}
