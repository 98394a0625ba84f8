//! f32 distance kernels for the HNSW graph.
//!
//! usearch's bundled kernels (NumKong) accumulate f32 dot products in f64, which halves
//! their SIMD width; on a 2-core AVX2 machine that made HNSW search 1.8× slower than
//! faiss. These kernels accumulate in f32 with FMA, as faiss does, chosen at run time.

/// Inner product of two equal-length slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        return unsafe { x86::dot(a, b) };
    }
    dot_portable(a, b)
}

/// Squared L2 distance of two equal-length slices.
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: as above.
        return unsafe { x86::l2sq(a, b) };
    }
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The kernels chosen for this CPU, to hoist the feature test out of hot loops.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub dot: fn(&[f32], &[f32]) -> f32,
    pub l2sq: fn(&[f32], &[f32]) -> f32,
    /// One query against four vectors at once: the query is loaded once per four products
    /// and four independent accumulators keep the FMA units busy (faiss's batch-of-4 trick).
    pub dot4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
    pub l2sq4: fn(&[f32], [&[f32]; 4]) -> [f32; 4],
}

pub fn kernels() -> Kernels {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        return Kernels {
            dot: |a, b| unsafe { x86::dot(a, b) },
            l2sq: |a, b| unsafe { x86::l2sq(a, b) },
            dot4: |q, xs| unsafe { x86::batch4::<false>(q, xs) },
            l2sq4: |q, xs| unsafe { x86::batch4::<true>(q, xs) },
        };
    }
    fn l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }
    Kernels {
        dot: dot_portable,
        l2sq: l2,
        dot4: |q, xs| xs.map(|x| dot_portable(q, x)),
        l2sq4: |q, xs| xs.map(|x| l2(q, x)),
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Eight independent accumulators, so the compiler can vectorise without reassociating.
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): i + 32 <= n, resp. i + 8 <= n, bounds both slices.
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = unsafe { _mm256_loadu_ps(pa.add(i + 8 * j)) };
                let y = unsafe { _mm256_loadu_ps(pb.add(i + 8 * j)) };
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = unsafe { _mm256_loadu_ps(pa.add(i)) };
            let y = unsafe { _mm256_loadu_ps(pb.add(i)) };
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut r = unsafe { hsum(s) };
        while i < n {
            r += a[i] * b[i];
            i += 1;
        }
        r
    }

    /// Four dot products (or squared distances when `L2`) of `q` with `xs`, which all have
    /// `q`'s length.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn batch4<const L2: bool>(q: &[f32], xs: [&[f32]; 4]) -> [f32; 4] {
        let n = q.len();
        debug_assert!(xs.iter().all(|x| x.len() == n));
        let pq = q.as_ptr();
        let p = xs.map(|x| x.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): i + 8 <= n, and every slice has length n.
        while i + 8 <= n {
            let qv = unsafe { _mm256_loadu_ps(pq.add(i)) };
            for j in 0..4 {
                let x = unsafe { _mm256_loadu_ps(p[j].add(i)) };
                acc[j] = if L2 {
                    let d = _mm256_sub_ps(qv, x);
                    _mm256_fmadd_ps(d, d, acc[j])
                } else {
                    _mm256_fmadd_ps(qv, x, acc[j])
                };
            }
            i += 8;
        }
        let mut out = [0f32; 4];
        for j in 0..4 {
            let mut r = unsafe { hsum(acc[j]) };
            for k in i..n {
                let (a, b) = (q[k], xs[j][k]);
                r += if L2 { (a - b) * (a - b) } else { a * b };
            }
            out[j] = r;
        }
        out
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2sq(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = unsafe { _mm256_loadu_ps(pa.add(i + 8 * j)) };
                let y = unsafe { _mm256_loadu_ps(pb.add(i + 8 * j)) };
                let d = _mm256_sub_ps(x, y);
                *acc = _mm256_fmadd_ps(d, d, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = unsafe { _mm256_loadu_ps(pa.add(i)) };
            let y = unsafe { _mm256_loadu_ps(pb.add(i)) };
            let d = _mm256_sub_ps(x, y);
            acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut r = unsafe { hsum(s) };
        while i < n {
            r += (a[i] - b[i]) * (a[i] - b[i]);
            i += 1;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_f64_sums_for_all_tail_lengths() {
        for n in [0, 1, 7, 8, 9, 31, 32, 33, 100, 384] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0).collect();
            let d: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            let l: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| ((*x - *y) as f64).powi(2))
                .sum();
            assert!((dot(&a, &b) as f64 - d).abs() < 1e-4, "dot n={n}");
            assert!(
                (dot_portable(&a, &b) as f64 - d).abs() < 1e-4,
                "portable n={n}"
            );
            assert!((l2sq(&a, &b) as f64 - l).abs() < 1e-4, "l2 n={n}");
            let k = kernels();
            let four = (k.dot4)(&a, [&b, &a, &b, &b]);
            assert!(
                (four[0] as f64 - d).abs() < 1e-4 && (four[3] as f64 - d).abs() < 1e-4,
                "dot4 n={n}"
            );
            let four = (k.l2sq4)(&a, [&b, &b, &a, &b]);
            assert!(
                (four[1] as f64 - l).abs() < 1e-4 && four[2].abs() < 1e-6,
                "l2sq4 n={n}"
            );
        }
    }
}
