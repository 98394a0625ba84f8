//! BERT's encoder layers for inference on the CPU backend (burn-flex), written directly
//! against the `gemm` crate that burn-flex itself multiplies with.
//!
//! Why: encoding a corpus is the hot loop of index building and refresh, and through
//! burn's generic ops half of a CPU forward pass went to things other than matrix
//! products — libm `erff` for the exact GELU, the head reshapes' strided copies, the
//! naive attention, bias and residual passes. Here one layer is five GEMMs that read
//! their operands in place (the attention reads Q, K and V out of the fused QKV rows by
//! stride) and write into buffers that already hold the bias and the residual, plus
//! three vectorised row passes: masked softmax, LayerNorm, GELU with a rational erf
//! (Eigen's, as TensorFlow and XLA use; within 5e-7 of erf).
//!
//! The results equal the generic path to f32 rounding (tested in `bert.rs` and against the
//! PyTorch fixtures). Training never comes here: [`encoder_layers`] declines any backend
//! other than plain `Flex`, autodiff included, and the caller then runs burn's ops.

use std::any::{Any, TypeId};

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use rayon::prelude::*;

/// One encoder layer's parameters as the CPU path reads them: post-norm BERT (attention,
/// add & norm, feed-forward with GELU, add & norm). The architecture files build it from
/// their own layer types, so this kernel knows no model.
pub(crate) struct LayerParams<'a, B: Backend> {
    pub query: &'a Linear<B>,
    pub key: &'a Linear<B>,
    pub value: &'a Linear<B>,
    pub attention_output: &'a Linear<B>,
    pub attention_norm: &'a LayerNorm<B>,
    pub intermediate: &'a Linear<B>,
    pub output: &'a Linear<B>,
    pub output_norm: &'a LayerNorm<B>,
    /// Both norms' epsilon (burn keeps a LayerNorm's own private).
    pub eps: f64,
    pub n_heads: usize,
    pub gelu_tanh: bool,
}

/// Runs `layers` over `x` (`[b, s, d]`) with `pad` (`[b, s]`, `true` = padding key) when
/// `B` is the CPU backend and everything is f32; gives `x` back untouched otherwise.
pub(crate) fn encoder_layers<B: Backend>(
    layers: &[LayerParams<'_, B>],
    x: Tensor<B, 3>,
    pad: &Tensor<B, 2, Bool>,
) -> std::result::Result<Tensor<B, 3>, Tensor<B, 3>> {
    if TypeId::of::<B>() != TypeId::of::<Flex>() || layers.is_empty() {
        return Err(x);
    }
    let [b, s, d] = x.dims();
    let Some(weights) = layers
        .iter()
        .map(LayerWeights::of)
        .collect::<Option<Vec<_>>>()
    else {
        return Err(x);
    };
    let Ok(pad) = pad.clone().into_data().into_vec::<bool>() else {
        return Err(x);
    };
    let device = x.device();
    let mut h = match x.into_data().into_vec::<f32>() {
        Ok(h) => h,
        Err(e) => panic!("f32 weights but activations that are not: {e:?}"),
    };
    let mut scratch = Scratch::default();
    for w in &weights {
        layer_forward(w, &mut h, &pad, b, s, &mut scratch);
    }
    Ok(Tensor::from_data(TensorData::new(h, [b, s, d]), &device))
}

/// The Flex tensor under `t`, contiguous, if it holds f32: the same buffer, not a copy
/// (parameters are read in place on every forward pass).
fn flex_f32<B: Backend, const D: usize>(t: Tensor<B, D>) -> Option<FlexTensor> {
    let p: Box<dyn Any> = Box::new(t.into_primitive().tensor());
    let t = *p.downcast::<FlexTensor>().ok()?;
    let t = if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    };
    t.as_slice::<f32>().is_some().then_some(t)
}

/// A parameter matrix or vector, read in place.
struct Mat(FlexTensor);

impl Mat {
    fn of<B: Backend, const D: usize>(t: Tensor<B, D>) -> Option<Self> {
        flex_f32(t).map(Mat)
    }
    fn get(&self) -> &[f32] {
        self.0.as_slice::<f32>().expect("checked in Mat::of")
    }
}

fn opt_mat<B: Backend>(p: &Option<burn::module::Param<Tensor<B, 1>>>) -> Option<Option<Mat>> {
    match p {
        Some(p) => Mat::of(p.val()).map(Some),
        None => Some(None),
    }
}

struct Dense {
    /// `[in, out]`, row-major, as burn's `Linear` stores it.
    weight: Mat,
    bias: Option<Mat>,
    out: usize,
}

impl Dense {
    fn of<B: Backend>(l: &Linear<B>) -> Option<Self> {
        Some(Dense {
            weight: Mat::of(l.weight.val())?,
            bias: opt_mat(&l.bias)?,
            out: l.weight.dims()[1],
        })
    }
}

struct Norm {
    gamma: Mat,
    beta: Option<Mat>,
    eps: f32,
}

/// One layer's parameters, viewed in place.
struct LayerWeights {
    d: usize,
    ff: usize,
    heads: usize,
    q: Dense,
    k: Dense,
    v: Dense,
    out: Dense,
    norm1: Norm,
    inter: Dense,
    down: Dense,
    norm2: Norm,
    gelu_tanh: bool,
}

impl LayerWeights {
    fn of<B: Backend>(l: &LayerParams<'_, B>) -> Option<Self> {
        let norm = |n: &LayerNorm<B>| -> Option<Norm> {
            Some(Norm {
                gamma: Mat::of(n.gamma.val())?,
                beta: opt_mat(&n.beta)?,
                eps: l.eps as f32,
            })
        };
        let [d, ff] = l.intermediate.weight.dims();
        // The generic path would panic in its head reshape; decline and let it.
        if l.n_heads == 0 || !d.is_multiple_of(l.n_heads) {
            return None;
        }
        Some(LayerWeights {
            d,
            ff,
            heads: l.n_heads,
            gelu_tanh: l.gelu_tanh,
            q: Dense::of(l.query)?,
            k: Dense::of(l.key)?,
            v: Dense::of(l.value)?,
            out: Dense::of(l.attention_output)?,
            norm1: norm(l.attention_norm)?,
            inter: Dense::of(l.intermediate)?,
            down: Dense::of(l.output)?,
            norm2: norm(l.output_norm)?,
        })
    }
}

/// Buffers reused across layers.
#[derive(Default)]
struct Scratch {
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    inter: Vec<f32>,
}

/// `h` (`[b·s, d]`) ← the layer applied to `h`.
fn layer_forward(
    w: &LayerWeights,
    h: &mut [f32],
    pad: &[bool],
    b: usize,
    s: usize,
    sc: &mut Scratch,
) {
    let (d, ff) = (w.d, w.ff);
    let m = b * s;
    // qkv rows = [h·Wq + bq | h·Wk + bk | h·Wv + bv]: three products into column blocks.
    sc.qkv.resize(m * 3 * d, 0.0);
    for (j, dense) in [&w.q, &w.k, &w.v].into_iter().enumerate() {
        dense_into(&mut sc.qkv[j * d..], 3 * d, h, m, d, dense, false);
    }
    // ctx = attention over each sequence and head
    sc.ctx.resize(m * d, 0.0);
    attention(&sc.qkv, &mut sc.ctx, pad, b, s, d, w.heads);
    // h = LayerNorm(h + ctx·Wo + bo)
    dense_into(h, d, &sc.ctx, m, d, &w.out, true);
    layer_norm_rows(h, &w.norm1);
    // inter = GELU(h·Wi + bi)
    sc.inter.resize(m * ff, 0.0);
    dense_into(&mut sc.inter, ff, h, m, d, &w.inter, false);
    if w.gelu_tanh {
        sc.inter.par_chunks_mut(ff * 64).for_each(simd::gelu_tanh);
    } else {
        sc.inter.par_chunks_mut(ff * 64).for_each(simd::gelu);
    }
    // h = LayerNorm(h + inter·Wd + bd)
    dense_into(h, d, &sc.inter, m, ff, &w.down, true);
    layer_norm_rows(h, &w.norm2);
}

/// `dst[m, out]` (rows `dst_rs` apart) ← (`dst` if `residual`, else 0) + bias + `a[m, k]·W`.
fn dense_into(
    dst: &mut [f32],
    dst_rs: usize,
    a: &[f32],
    m: usize,
    k: usize,
    w: &Dense,
    residual: bool,
) {
    let n = w.out;
    for r in 0..m {
        let row = &mut dst[r * dst_rs..r * dst_rs + n];
        match (&w.bias, residual) {
            (Some(bias), true) => row.iter_mut().zip(bias.get()).for_each(|(x, b)| *x += b),
            (Some(bias), false) => row.copy_from_slice(bias.get()),
            (None, true) => {}
            (None, false) => row.fill(0.0),
        }
    }
    matmul_acc(dst, dst_rs, a, w.weight.get(), m, k, n);
}

/// Whether a product is big enough to split across threads (burn-flex's threshold).
fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= 192 * 192 * 192 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// `dst[m, n] += a[m, k] · w[k, n]`, all row-major; `dst`'s rows are `dst_rs` apart.
fn matmul_acc(dst: &mut [f32], dst_rs: usize, a: &[f32], w: &[f32], m: usize, k: usize, n: usize) {
    assert!(dst_rs >= n && (m == 0 || dst.len() >= (m - 1) * dst_rs + n));
    assert!(a.len() >= m * k && w.len() >= k * n);
    // SAFETY: the three buffers are distinct (one `&mut`, two `&`) and hold the extents
    // asserted above; the strides describe row-major matrices of those shapes.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            true,
            a.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(m, n, k),
        );
    }
}

/// Scaled dot-product attention with a key padding mask, reading heads out of the fused
/// `[b·s, 3d]` rows and writing `[b·s, d]` (heads side by side, as HF's reshape does).
fn attention(
    qkv: &[f32],
    ctx: &mut [f32],
    pad: &[bool],
    b: usize,
    s: usize,
    d: usize,
    heads: usize,
) {
    let dh = d / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let row = 3 * d;
    let no_pad = vec![false; s];
    let task = |scores: &mut Vec<f32>, (bi, out): (usize, &mut [f32])| {
        let mut pad = &pad[bi * s..(bi + 1) * s];
        // Keys past the last real one are skipped outright; padding inside is masked.
        let mut keys = pad.iter().rposition(|&p| !p).map_or(0, |i| i + 1);
        if keys == 0 {
            // Every key is padding: HF's additive mask then averages all of them evenly,
            // which is what attending to all of them unmasked gives.
            (keys, pad) = (s, &no_pad);
        }
        let base = &qkv[bi * s * row..(bi + 1) * s * row];
        scores.resize(s * keys, 0.0);
        for h in 0..heads {
            let q = &base[h * dh..];
            let k = &base[d + h * dh..];
            let v = &base[2 * d + h * dh..];
            // SAFETY: q/k/v rows are `row` apart inside `base`, which holds s rows; the
            // scores buffer is [s, keys]; `out` holds s rows of d.
            unsafe {
                // scores[s, keys] = scale · Q[s, dh] · Kᵀ[dh, keys]
                gemm::gemm(
                    s,
                    keys,
                    dh,
                    scores.as_mut_ptr(),
                    1,
                    keys as isize,
                    false,
                    q.as_ptr(),
                    1,
                    row as isize,
                    k.as_ptr(),
                    row as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            simd::masked_softmax(scores, keys, &pad[..keys]);
            unsafe {
                // out[s, dh] (row stride d) = P[s, keys] · V[keys, dh]
                gemm::gemm(
                    s,
                    dh,
                    keys,
                    out.as_mut_ptr().add(h * dh),
                    1,
                    d as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    keys as isize,
                    v.as_ptr(),
                    1,
                    row as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
    };
    ctx[..b * s * d]
        .par_chunks_mut(s * d)
        .enumerate()
        .for_each_init(Vec::new, task);
}

fn layer_norm_rows(h: &mut [f32], n: &Norm) {
    let gamma = n.gamma.get();
    let zeros;
    let beta = match &n.beta {
        Some(b) => b.get(),
        None => {
            zeros = vec![0.0; gamma.len()];
            &zeros
        }
    };
    h.par_chunks_mut(gamma.len() * 64)
        .for_each(|block| simd::layer_norm(block, gamma, beta, n.eps));
}

/// Element-wise kernels, compiled twice: for AVX2+FMA (chosen at run time) and for the
/// baseline target. Loops are written over fixed-width lanes so that the compiler
/// vectorises the reductions without reassociating anything itself.
mod simd {
    const LANES: usize = 8;

    macro_rules! dispatch {
        ($name:ident, $generic:ident, ($($arg:ident: $ty:ty),*)) => {
            pub fn $name($($arg: $ty),*) {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn fast($($arg: $ty),*) {
                        $generic::<true>($($arg),*)
                    }
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        // SAFETY: the features `fast` is compiled for were just detected.
                        return unsafe { fast($($arg),*) };
                    }
                }
                $generic::<false>($($arg),*)
            }
        };
    }

    /// `a·b + c`, fused where the target has FMA (`mul_add` is a slow libm call otherwise).
    #[inline(always)]
    fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
        if FMA { a.mul_add(b, c) } else { a * b + c }
    }

    /// erf, Eigen's rational approximation (`generic_fast_erf_float`): |error| < 5e-7 in f32.
    #[inline(always)]
    pub(super) fn erf<const FMA: bool>(x: f32) -> f32 {
        let x = x.clamp(-4.0, 4.0);
        let x2 = x * x;
        let mut p = madd::<FMA>(x2, -2.726_142_3e-10, 2.770_681_4e-8);
        p = madd::<FMA>(x2, p, -2.101_024e-6);
        p = madd::<FMA>(x2, p, -5.692_506_4e-5);
        p = madd::<FMA>(x2, p, -7.349_906_3e-4);
        p = madd::<FMA>(x2, p, -2.954_6e-3);
        p = madd::<FMA>(x2, p, -1.609_603_3e-2);
        let mut q = madd::<FMA>(x2, -1.456_607_2e-5, -2.133_740_6e-4);
        q = madd::<FMA>(x2, q, -1.682_827e-3);
        q = madd::<FMA>(x2, q, -7.373_329e-3);
        q = madd::<FMA>(x2, q, -1.426_474e-2);
        x * p / q
    }

    /// e^x for x ≤ 0 (softmax after the row maximum is subtracted), Cephes' `expf`:
    /// relative error about 2e-7; inputs below −87 give e^−87.
    #[inline(always)]
    pub(super) fn exp_neg<const FMA: bool>(x: f32) -> f32 {
        let x = x.clamp(-87.0, 0.0);
        // n = round(x / ln 2), through the 1.5·2²³ trick so that it vectorises.
        const MAGIC: f32 = 12_582_912.0;
        let t = madd::<FMA>(x, std::f32::consts::LOG2_E, MAGIC);
        let n = t - MAGIC;
        let r = madd::<FMA>(n, -0.693_359_4, x);
        let r = madd::<FMA>(n, 2.121_944_4e-4, r);
        let mut y = madd::<FMA>(1.987_569_1e-4, r, 1.398_2e-3);
        y = madd::<FMA>(y, r, 8.333_452e-3);
        y = madd::<FMA>(y, r, 4.166_579_6e-2);
        y = madd::<FMA>(y, r, 1.666_666_5e-1);
        y = madd::<FMA>(y, r, 0.5);
        y = madd::<FMA>(y, r * r, r + 1.0);
        let bits = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
        y * f32::from_bits(((bits + 127) << 23) as u32)
    }

    #[inline(always)]
    fn gelu_impl<const FMA: bool>(v: &mut [f32]) {
        for x in v.iter_mut() {
            *x = 0.5 * *x * (1.0 + erf::<FMA>(*x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
    dispatch!(gelu, gelu_impl, (v: &mut [f32]));

    /// `gelu_new`: `½x(1 + tanh(u))`, `u = √(2/π)(x + 0.044715x³)`, with
    /// `tanh(u) = sign(u)(1 − e^{−2|u|})/(1 + e^{−2|u|})` on [`exp_neg`].
    #[inline(always)]
    fn gelu_tanh_impl<const FMA: bool>(v: &mut [f32]) {
        const C: f32 = 0.797_884_6;
        for x in v.iter_mut() {
            let u = C * madd::<FMA>(0.044_715 * *x * *x, *x, *x);
            let e = exp_neg::<FMA>(-2.0 * u.abs());
            let t = ((1.0 - e) / (1.0 + e)).copysign(u);
            *x = 0.5 * *x * (1.0 + t);
        }
    }
    dispatch!(gelu_tanh, gelu_tanh_impl, (v: &mut [f32]));

    #[inline(always)]
    fn sum<const FMA: bool>(v: &[f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        let mut chunks = v.chunks_exact(LANES);
        for c in &mut chunks {
            for i in 0..LANES {
                acc[i] += c[i];
            }
        }
        acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
    }

    /// Softmax of each `keys`-wide row of `scores`, keys where `pad` is set getting 0.
    #[inline(always)]
    fn softmax_impl<const FMA: bool>(scores: &mut [f32], keys: usize, pad: &[bool]) {
        for row in scores.chunks_exact_mut(keys) {
            let mut acc = [f32::NEG_INFINITY; LANES];
            for (c, p) in row.chunks(LANES).zip(pad.chunks(LANES)) {
                for i in 0..c.len() {
                    let v = if p[i] { f32::NEG_INFINITY } else { c[i] };
                    acc[i] = if v > acc[i] { v } else { acc[i] };
                }
            }
            let max = acc.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            for (x, &p) in row.iter_mut().zip(pad) {
                let e = exp_neg::<FMA>(*x - max);
                *x = if p { 0.0 } else { e };
            }
            let inv = 1.0 / sum::<FMA>(row);
            for x in row.iter_mut() {
                *x *= inv;
            }
        }
    }
    dispatch!(masked_softmax, softmax_impl, (scores: &mut [f32], keys: usize, pad: &[bool]));

    /// LayerNorm of each `gamma`-wide row of `rows` (biased variance, as PyTorch).
    #[inline(always)]
    fn layer_norm_impl<const FMA: bool>(rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        for row in rows.chunks_exact_mut(gamma.len()) {
            let n = row.len() as f32;
            let mean = sum::<FMA>(row) / n;
            let mut acc = [0.0f32; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for c in &mut chunks {
                for i in 0..LANES {
                    let t = c[i] - mean;
                    acc[i] = madd::<FMA>(t, t, acc[i]);
                }
            }
            let tail: f32 = chunks
                .remainder()
                .iter()
                .map(|x| (x - mean) * (x - mean))
                .sum();
            let var = (acc.iter().sum::<f32>() + tail) / n;
            let inv = 1.0 / (var + eps).sqrt();
            for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *x = madd::<FMA>((*x - mean) * inv, *g, *b);
            }
        }
    }
    dispatch!(layer_norm, layer_norm_impl, (rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32));
}

#[cfg(test)]
mod tests {
    use super::simd;

    fn erf64(x: f64) -> f64 {
        // Abramowitz–Stegun 7.1.26 is too coarse to test against; integrate instead.
        let n = 20_000;
        let h = x / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_and_exp_match_the_exact_functions() {
        for i in -600..=600 {
            let x = i as f32 / 100.0;
            let want = erf64(x as f64);
            for got in [simd::erf::<false>(x), simd::erf::<true>(x)] {
                assert!(
                    (got as f64 - want).abs() < 5e-7,
                    "erf({x}) = {got}, want {want}"
                );
            }
        }
        for i in 0..=9000 {
            let x = -(i as f32) / 100.0;
            let want = (x as f64).exp();
            for got in [simd::exp_neg::<false>(x), simd::exp_neg::<true>(x)] {
                let rel = (got as f64 - want).abs() / want.max(1e-38);
                assert!(rel < 5e-7 || want < 1e-37, "exp({x}) = {got}, want {want}");
            }
        }
    }

    #[test]
    fn masked_softmax_ignores_padding() {
        let mut row = vec![1.0, 2.0, 100.0, 3.0];
        simd::masked_softmax(&mut row, 4, &[false, false, true, false]);
        let z = 1f32.exp() + 2f32.exp() + 3f32.exp();
        let want = [1f32.exp() / z, 2f32.exp() / z, 0.0, 3f32.exp() / z];
        for (g, w) in row.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{row:?}");
        }
    }
}
