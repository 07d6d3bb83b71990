//! Summary statistics every module may use: min, max, mean and population std of a set of voxels, with
//! mergeable moments (Chan et al.) accumulated in f64 over parallel chunks.

use rayon::prelude::*;
use serde::Serialize;

/// min, max, mean and population std of a set of voxels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// Voxels counted.
    pub count: usize,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
}

/// Voxels per parallel chunk; each chunk is reduced in cache, then chunks are merged (Chan et al.).
pub(crate) const CHUNK: usize = 1 << 16;

/// Count, mean, sum of squared deviations, min and max of a set of values; merged pairwise (Chan et
/// al.), so chunks, volumes or whole datasets combine without keeping their values.
#[derive(Clone, Copy, Debug)]
pub struct Moments {
    /// Count.
    pub n: f64,
    /// Mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Moments {
    /// Moments of no values (the identity of `merge`).
    pub const EMPTY: Moments = Moments {
        n: 0.0,
        mean: 0.0,
        m2: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };
    /// Moments of the union of two sets (Chan et al.).
    pub fn merge(a: Moments, b: Moments) -> Moments {
        if a.n == 0.0 {
            return b;
        }
        if b.n == 0.0 {
            return a;
        }
        let n = a.n + b.n;
        let d = b.mean - a.mean;
        Moments {
            n,
            mean: a.mean + d * b.n / n,
            m2: a.m2 + b.m2 + d * d * a.n * b.n / n,
            min: a.min.min(b.min),
            max: a.max.max(b.max),
        }
    }
}

/// Lanes of independent accumulators: 8 sums in flight instead of one dependent chain, and the
/// result does not depend on the machine (the AVX2 path keeps the same 8 lanes in registers).
const LANES: usize = 8;

/// Per-lane partial results of one chunk's pass: counts, sums and sums of squares of `x - shift` in
/// f64, min and max.
struct Lanes {
    /// Largest magnitude bits of every value, counted or not (the finiteness scan).
    bits: [u32; LANES],
    n: [u32; LANES],
    sum: [f64; LANES],
    sq: [f64; LANES],
    lo: [f32; LANES],
    hi: [f32; LANES],
}

/// Whether a value counts: finite, and nonzero when `nz` (on the bits: NaN never reaches a
/// comparison).
#[inline(always)]
fn keeps(x: f32, nz: bool) -> bool {
    let m = x.to_bits() & 0x7fff_ffff;
    (m < 0x7f80_0000) & (!nz | (m != 0))
}

/// `if a < b { a } else { b }`: what `vminps` computes (the values here are never NaN).
#[inline(always)]
fn lt_min(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn gt_max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// `lo`/`hi` extended by `x` when it is kept (scalar form of the AVX2 `extend`).
#[inline(always)]
fn extend_scalar(x: f32, ok: bool, lo: f32, hi: f32) -> (f32, f32) {
    (
        lt_min(if ok { x } else { f32::INFINITY }, lo),
        gt_max(if ok { x } else { f32::NEG_INFINITY }, hi),
    )
}

/// The pass over whole groups of [`LANES`] values (scalar form; [`x86`] holds its AVX2 twin).
#[allow(clippy::needless_range_loop)] // lane k of every accumulator, as the registers hold them
fn lanes_scalar(xs: &[f32], nz: bool, shift: f64) -> Lanes {
    let mut l = Lanes {
        bits: [0; LANES],
        n: [0; LANES],
        sum: [0.0; LANES],
        sq: [0.0; LANES],
        lo: [f32::INFINITY; LANES],
        hi: [f32::NEG_INFINITY; LANES],
    };
    for c in xs.chunks_exact(LANES) {
        for k in 0..LANES {
            let ok = keeps(c[k], nz);
            l.bits[k] = l.bits[k].max(c[k].to_bits() & 0x7fff_ffff);
            l.n[k] += ok as u32;
            let y = (if ok { c[k] } else { 0.0 }) as f64 - shift;
            l.sum[k] += if ok { y } else { 0.0 };
            l.sq[k] += if ok { y * y } else { 0.0 };
            (l.lo[k], l.hi[k]) = extend_scalar(c[k], ok, l.lo[k], l.hi[k]);
        }
    }
    l
}

/// Per-lane minimum and maximum of the finite values, and largest magnitude bits, over whole groups
/// of [`LANES`] values: the lane loop's `lo`, `hi` and `bits` without its f64 moments (what
/// [`min_max_scan`] needs; scalar form, [`x86`] holds its AVX2 twin).
#[allow(clippy::needless_range_loop)] // lane k of every accumulator, as the registers hold them
fn extremes_scalar(xs: &[f32]) -> Extremes {
    let mut e = Extremes {
        lo: [f32::INFINITY; LANES],
        hi: [f32::NEG_INFINITY; LANES],
        bits: [0; LANES],
    };
    for c in xs.chunks_exact(LANES) {
        for k in 0..LANES {
            let ok = keeps(c[k], false);
            e.bits[k] = e.bits[k].max(c[k].to_bits() & 0x7fff_ffff);
            (e.lo[k], e.hi[k]) = extend_scalar(c[k], ok, e.lo[k], e.hi[k]);
        }
    }
    e
}

/// Per-lane results of [`extremes_scalar`] and its AVX2 twin.
#[derive(Debug, PartialEq)]
struct Extremes {
    lo: [f32; LANES],
    hi: [f32; LANES],
    bits: [u32; LANES],
}

/// Largest magnitude bits of a slice (scalar form).
fn max_bits_scalar(xs: &[f32]) -> u32 {
    xs.iter().fold(0, |m, x| m.max(x.to_bits() & 0x7fff_ffff))
}

/// AVX2 twins of the lane loop and the magnitude scan: the same operations on the same lanes (`vcvtps2pd`, `vsubpd`,
/// `vaddpd`, `vmulpd`, `vminps`, `vmaxps` are exact per lane, like the scalar ones), so the results are
/// bit-identical. The compiler did not vectorise the scalar forms (mixed u32/f32/f64 lanes).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Extremes, Lanes, LANES};
    use std::arch::x86_64::*;

    /// The magnitude bits of eight values and their keep mask (all ones where a value counts).
    #[inline(always)]
    unsafe fn keep_mask(x: __m256, nz: bool) -> (__m256i, __m256i) {
        let m = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7fff_ffff));
        let fin = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7f80_0000), m);
        let ok = if nz {
            _mm256_andnot_si256(_mm256_cmpeq_epi32(m, _mm256_setzero_si256()), fin)
        } else {
            fin
        };
        (m, ok)
    }

    /// Lane-wise `lo`/`hi` extended by the kept values of `x` (`okf`: the keep mask), in the scalar
    /// form's operand order (`vminps`/`vmaxps` return the second operand on ties: the sign of zeros).
    #[inline(always)]
    unsafe fn extend(x: __m256, okf: __m256, lo: __m256, hi: __m256) -> (__m256, __m256) {
        (
            _mm256_min_ps(_mm256_blendv_ps(_mm256_set1_ps(f32::INFINITY), x, okf), lo),
            _mm256_max_ps(
                _mm256_blendv_ps(_mm256_set1_ps(f32::NEG_INFINITY), x, okf),
                hi,
            ),
        )
    }

    /// The kept values less `shift` in f64 (lanes 0-3, 4-7), zero where not kept.
    #[inline(always)]
    unsafe fn shifted(x: __m256, ok: __m256i, shift: __m256d) -> [__m256d; 2] {
        let kept = _mm256_and_ps(x, _mm256_castsi256_ps(ok));
        // The 32-bit masks widened to 64 bits (sign extension keeps all ones).
        let k0 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(ok)));
        let k1 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(ok, 1)));
        let y0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(kept)), shift);
        let y1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(kept, 1)), shift);
        [_mm256_and_pd(y0, k0), _mm256_and_pd(y1, k1)]
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn lanes(xs: &[f32], nz: bool, shift: f64) -> Lanes {
        let (mut bits, mut n) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let (mut s, mut q) = ([_mm256_setzero_pd(); 2], [_mm256_setzero_pd(); 2]);
        let mut lo = _mm256_set1_ps(f32::INFINITY);
        let mut hi = _mm256_set1_ps(f32::NEG_INFINITY);
        let k = _mm256_set1_pd(shift);
        for c in xs.chunks_exact(LANES) {
            let x = _mm256_loadu_ps(c.as_ptr());
            let (m, ok) = keep_mask(x, nz);
            let okf = _mm256_castsi256_ps(ok);
            bits = _mm256_max_epu32(bits, m);
            n = _mm256_sub_epi32(n, ok);
            let y = shifted(x, ok, k);
            for h in 0..2 {
                // Masked lanes add +0 (y is zeroed, and so is y * y).
                s[h] = _mm256_add_pd(s[h], y[h]);
                q[h] = _mm256_add_pd(q[h], _mm256_mul_pd(y[h], y[h]));
            }
            (lo, hi) = extend(x, okf, lo, hi);
        }
        let mut out = Lanes {
            bits: [0; LANES],
            n: [0; LANES],
            sum: [0.0; LANES],
            sq: [0.0; LANES],
            lo: [0.0; LANES],
            hi: [0.0; LANES],
        };
        _mm256_storeu_si256(out.bits.as_mut_ptr().cast(), bits);
        _mm256_storeu_si256(out.n.as_mut_ptr().cast(), n);
        _mm256_storeu_ps(out.lo.as_mut_ptr(), lo);
        _mm256_storeu_ps(out.hi.as_mut_ptr(), hi);
        for h in 0..2 {
            _mm256_storeu_pd(out.sum.as_mut_ptr().add(4 * h), s[h]);
            _mm256_storeu_pd(out.sq.as_mut_ptr().add(4 * h), q[h]);
        }
        out
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn extremes(xs: &[f32]) -> Extremes {
        let mut bits = _mm256_setzero_si256();
        let mut lo = _mm256_set1_ps(f32::INFINITY);
        let mut hi = _mm256_set1_ps(f32::NEG_INFINITY);
        for c in xs.chunks_exact(LANES) {
            let x = _mm256_loadu_ps(c.as_ptr());
            let (m, ok) = keep_mask(x, false);
            let okf = _mm256_castsi256_ps(ok);
            bits = _mm256_max_epu32(bits, m);
            (lo, hi) = extend(x, okf, lo, hi);
        }
        let mut out = Extremes {
            lo: [0.0; LANES],
            hi: [0.0; LANES],
            bits: [0; LANES],
        };
        _mm256_storeu_ps(out.lo.as_mut_ptr(), lo);
        _mm256_storeu_ps(out.hi.as_mut_ptr(), hi);
        _mm256_storeu_si256(out.bits.as_mut_ptr().cast(), bits);
        out
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn max_bits(xs: &[f32]) -> u32 {
        let mask = _mm256_set1_epi32(0x7fff_ffff);
        let (mut m0, mut m1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let mut body = xs.chunks_exact(16);
        for c in body.by_ref() {
            let a = _mm256_loadu_si256(c.as_ptr().cast());
            let b = _mm256_loadu_si256(c.as_ptr().add(8).cast());
            m0 = _mm256_max_epu32(m0, _mm256_and_si256(a, mask));
            m1 = _mm256_max_epu32(m1, _mm256_and_si256(b, mask));
        }
        let mut out = [0u32; 8];
        _mm256_storeu_si256(out.as_mut_ptr().cast(), _mm256_max_epu32(m0, m1));
        out.into_iter()
            .fold(super::max_bits_scalar(body.remainder()), u32::max)
    }
}

/// [`extremes_scalar`] or its AVX2 twin.
fn extremes(xs: &[f32]) -> Extremes {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time just above).
        return unsafe { x86::extremes(xs) };
    }
    extremes_scalar(xs)
}

/// [`lanes_scalar`] or its AVX2 twin.
fn lanes(xs: &[f32], nz: bool, shift: f64) -> Lanes {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time just above).
        return unsafe { x86::lanes(xs, nz, shift) };
    }
    lanes_scalar(xs, nz, shift)
}

/// Largest magnitude of the values' bits (`f32::from_bits` of it is the largest |value|; past +inf's
/// bits it is a NaN): parallel over chunks, AVX2 where the CPU has it.
pub fn max_abs_bits(data: &[f32]) -> u32 {
    data.par_chunks(CHUNK)
        .map(max_abs_bits_sequential)
        .max()
        .unwrap_or(0)
}

/// [`max_abs_bits`] on the calling thread alone (for code that may run where the global thread pool
/// is unusable, such as a forked DataLoader worker); AVX2 where the CPU has it.
pub fn max_abs_bits_sequential(data: &[f32]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time just above).
        return unsafe { x86::max_bits(data) };
    }
    max_bits_scalar(data)
}

/// Moments of one chunk and the largest magnitude bits of all its values, in one pass in [`LANES`]
/// lanes: sums and sums of squares of `x - K` in f64, `K` the chunk's first counted value. As `K` is
/// one of the values, `(K - mean)^2 <= m2`, so `sum (x - K)^2 = m2 + n (K - mean)^2 <= (n + 1) m2`:
/// forming `m2` from it cancels at most log2([`CHUNK`] + 1) = 16 of f64's 53 bits (a far outlier as
/// `K` is the worst case, tested), and the chunk is read once.
fn chunk_acc(xs: &[f32], nz: bool) -> (Moments, u32) {
    let split = xs.len() - xs.len() % LANES;
    let (body, tail) = xs.split_at(split);
    let Some(&first) = xs.iter().find(|&&x| keeps(x, nz)) else {
        return (Moments::EMPTY, max_bits_scalar(xs));
    };
    let shift = first as f64;
    let mut l = lanes(body, nz, shift);
    for &x in tail.iter().filter(|&&x| keeps(x, nz)) {
        let y = x as f64 - shift;
        l.n[0] += 1;
        l.sum[0] += y;
        l.sq[0] += y * y;
        l.lo[0] = lt_min(x, l.lo[0]);
        l.hi[0] = gt_max(x, l.hi[0]);
    }
    let n = l.n.iter().map(|&c| c as u64).sum::<u64>() as f64;
    let (sy, sq) = (l.sum.iter().sum::<f64>(), l.sq.iter().sum::<f64>());
    let (mean, m2) = (shift + sy / n, (sq - sy * sy / n).max(0.0));
    let bits = tail
        .iter()
        .fold(l.bits.into_iter().max().unwrap_or(0), |m, x| {
            m.max(x.to_bits() & 0x7fff_ffff)
        });
    let m = Moments {
        n,
        mean,
        m2,
        min: l.lo.iter().fold(f32::INFINITY, |a, &b| a.min(b)) as f64,
        max: l.hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64,
    };
    (m, bits)
}

/// Count, min, max, mean and population std over all voxels, or over nonzero voxels when
/// `mask_nonzero` is `Some(true)`. An empty selection gives zeros.
pub fn stats(data: &[f32], mask_nonzero: Option<bool>) -> Stats {
    stats_scan(data, mask_nonzero.unwrap_or(false)).0
}

/// [`stats`] (over nonzero voxels when `nonzero`) and the largest |value| of all voxels in the same
/// pass (+inf or NaN when a voxel is not finite): the statistics double as the input's finiteness
/// scan.
pub fn stats_scan(data: &[f32], nonzero: bool) -> (Stats, f32) {
    // Chunks are merged in order on one thread: the same result for every thread count.
    let parts: Vec<(Moments, u32)> = data
        .par_chunks(CHUNK)
        .map(|c| chunk_acc(c, nonzero))
        .collect();
    let bits = parts.iter().map(|p| p.1).max().unwrap_or(0);
    let acc = parts
        .into_iter()
        .map(|p| p.0)
        .fold(Moments::EMPTY, Moments::merge);
    let largest = f32::from_bits(bits);
    if acc.n == 0.0 {
        let none = Stats {
            count: 0,
            min: 0.0,
            max: 0.0,
            mean: 0.0,
            std: 0.0,
        };
        return (none, largest);
    }
    let st = Stats {
        count: acc.n as usize,
        min: acc.min,
        max: acc.max,
        mean: acc.mean,
        std: (acc.m2 / acc.n).max(0.0).sqrt(),
    };
    (st, largest)
}

/// Minimum and maximum of the finite values (parallel, vectorised).
pub fn min_max(data: &[f32]) -> (f32, f32) {
    let (lo, hi, _) = min_max_scan(data);
    (lo, hi)
}

/// [`min_max`] and the largest |value| of all voxels in the same pass (+inf or NaN when a voxel is not
/// finite).
pub fn min_max_scan(data: &[f32]) -> (f32, f32, f32) {
    let (lo, hi, bits) = data.par_chunks(CHUNK).map(chunk_min_max).reduce(
        || (f32::INFINITY, f32::NEG_INFINITY, 0),
        |a, b| (a.0.min(b.0), a.1.max(b.1), a.2.max(b.2)),
    );
    (lo, hi, f32::from_bits(bits))
}

/// Min and max of one chunk's finite values, and the largest magnitude bits of all of them.
fn chunk_min_max(xs: &[f32]) -> (f32, f32, u32) {
    let split = xs.len() - xs.len() % LANES;
    let l = extremes(&xs[..split]);
    xs[split..].iter().fold(
        (
            l.lo.iter().fold(f32::INFINITY, |a, &b| a.min(b)),
            l.hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)),
            l.bits.into_iter().max().unwrap_or(0),
        ),
        |(lo, hi, bits), &x| {
            let b = bits.max(x.to_bits() & 0x7fff_ffff);
            if keeps(x, false) {
                (lo.min(x), hi.max(x), b)
            } else {
                (lo, hi, b)
            }
        },
    )
}

/// True when every value is a whole number within `[lo, hi]` (NaN and infinities are not): the check
/// label maps and integer outputs need. Parallel over chunks, vectorised (AVX2 rounds in registers;
/// the baseline build calls `truncf` per value).
pub fn all_whole_within(data: &[f32], lo: f64, hi: f64) -> bool {
    data.par_chunks(CHUNK).all(|c| chunk_whole(c, lo, hi))
}

crate::simd_fn! {
    fn chunk_whole(xs: &[f32], lo: f64, hi: f64) -> bool = chunk_whole_body;
}

#[inline(always)]
fn chunk_whole_body(xs: &[f32], lo: f64, hi: f64) -> bool {
    // Branch-free over blocks (vectorises), one verdict per block; bounds compared in f64 (u32's
    // maximum is not an f32).
    xs.chunks(256).all(|b| {
        b.iter().fold(true, |ok, &x| {
            ok & (x.trunc() == x) & (x as f64 >= lo) & (x as f64 <= hi)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with zeros, NaN, infinities and negative numbers, not a multiple of the lanes long.
    fn awkward(n: usize) -> Vec<f32> {
        (0..n as u64)
            .map(|i| match i % 97 {
                3 => f32::NAN,
                5 => f32::INFINITY,
                7 => f32::NEG_INFINITY,
                11..=13 => 0.0,
                17 => -0.0,
                _ => ((i.wrapping_mul(2654435761) % 10_007) as f32 - 5000.0) * 0.031,
            })
            .collect()
    }

    /// Two-pass f64 reference over the counted values.
    fn reference(xs: &[f32], nz: bool) -> (usize, f64, f64) {
        let kept: Vec<f64> = xs
            .iter()
            .filter(|&&x| x.is_finite() && !(nz && x == 0.0))
            .map(|&x| x as f64)
            .collect();
        let n = kept.len() as f64;
        let mean = kept.iter().sum::<f64>() / n;
        let var = kept.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (kept.len(), mean, var.sqrt())
    }

    #[test]
    fn the_avx2_lanes_equal_the_scalar_ones() {
        let xs = awkward(10_000 * LANES);
        for nz in [false, true] {
            let a = lanes_scalar(&xs, nz, 12.5);
            #[cfg(target_arch = "x86_64")]
            if crate::simd::avx2() {
                // SAFETY: checked just above.
                let b = unsafe { x86::lanes(&xs, nz, 12.5) };
                assert_eq!(a.bits, b.bits);
                assert_eq!(a.n, b.n);
                assert_eq!(a.sum.map(f64::to_bits), b.sum.map(f64::to_bits));
                assert_eq!(a.sq.map(f64::to_bits), b.sq.map(f64::to_bits));
                assert_eq!(a.lo, b.lo);
                assert_eq!(a.hi, b.hi);
                // SAFETY: checked just above.
                assert_eq!(unsafe { x86::max_bits(&xs) }, max_bits_scalar(&xs));
                // The min/max-only lanes are the full lanes' lo, hi and bits (over all finite
                // values), bit for bit: signed zeros included.
                // SAFETY: checked just above.
                let e = unsafe { x86::extremes(&xs) };
                assert_eq!(e, extremes_scalar(&xs));
                if !nz {
                    assert_eq!(
                        (e.lo.map(f32::to_bits), e.hi.map(f32::to_bits), e.bits),
                        (a.lo.map(f32::to_bits), a.hi.map(f32::to_bits), a.bits)
                    );
                }
                // Where the extremes are zeros of both signs, the operand order decides the sign.
                let zeros: Vec<f32> = (0..64 * LANES)
                    .map(|i| if i < LANES { -0.0 } else { 0.0 })
                    .collect();
                // SAFETY: checked just above.
                let (e, f) = (unsafe { x86::extremes(&zeros) }, extremes_scalar(&zeros));
                assert_eq!(
                    (e.lo.map(f32::to_bits), e.hi.map(f32::to_bits)),
                    (f.lo.map(f32::to_bits), f.hi.map(f32::to_bits))
                );
            }
        }
    }

    #[test]
    fn moments_match_a_two_pass_reference() {
        let xs = awkward(300_001);
        for nz in [false, true] {
            let (st, largest) = stats_scan(&xs, nz);
            let (n, mean, std) = reference(&xs, nz);
            assert_eq!(st.count, n);
            assert!(
                (st.mean - mean).abs() <= 1e-12 * mean.abs().max(1.0),
                "{nz}"
            );
            assert!((st.std - std).abs() <= 1e-12 * std, "{nz}");
            assert!(largest.is_nan() || largest.is_infinite());
        }
        let finite: Vec<f32> = xs.iter().copied().filter(|x| x.is_finite()).collect();
        assert_eq!(stats_scan(&finite, false).1, 5006.0 * 0.031);
        let (lo, hi, m) = min_max_scan(&xs);
        assert_eq!((lo, hi), (-5000.0 * 0.031, 5006.0 * 0.031));
        assert!(!m.is_finite());
    }

    /// A far outlier as a chunk's first value (the shift) is the most the shifted sums can cancel: the
    /// mean and std stay exact to f64 rounding of the spread.
    #[test]
    fn a_far_outlier_first_does_not_lose_the_std() {
        let mut xs: Vec<f32> = (0..CHUNK as u64 * 2 + 5)
            .map(|i| 1000.0 + ((i * 7919) % 1000) as f32 * 1e-4)
            .collect();
        xs[0] = 3e9;
        xs[CHUNK] = -3e9;
        let (_, mean, std) = reference(&xs, false);
        let st = stats(&xs, None);
        // The mean to f64 rounding of the spread (what a z-score sees).
        assert!(
            (st.mean - mean).abs() <= 1e-12 * std,
            "{} {}",
            st.mean,
            mean
        );
        assert!((st.std - std).abs() <= 1e-9 * std, "{} {}", st.std, std);
        // Without the outliers the std is tiny next to the mean: still exact.
        let calm: Vec<f32> = xs.iter().copied().filter(|x| x.abs() < 1e4).collect();
        let (_, mean, std) = reference(&calm, false);
        let st = stats(&calm, None);
        assert!((st.std - std).abs() <= 1e-9 * std, "{} {}", st.std, std);
        assert!((st.mean - mean).abs() <= 1e-12 * mean);
    }
}
