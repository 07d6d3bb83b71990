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

/// Lanes of independent accumulators: the loop vectorises (8 f64 sums in flight instead of one
/// dependent chain) and the result does not depend on the machine.
const LANES: usize = 8;

crate::simd_fn! {
    fn chunk_acc(xs: &[f32], nonzero_only: bool) -> Moments = chunk_acc_body;
}

#[inline(always)]
fn chunk_acc_body(xs: &[f32], nonzero_only: bool) -> Moments {
    let keep = |x: f32| x.is_finite() && !(nonzero_only && x == 0.0);
    let (mut n, mut sum) = ([0u32; LANES], [0.0f64; LANES]);
    let (mut lo, mut hi) = ([f32::INFINITY; LANES], [f32::NEG_INFINITY; LANES]);
    let body = xs.chunks_exact(LANES);
    let tail = body.remainder();
    for c in body {
        for k in 0..LANES {
            let x = c[k];
            let ok = keep(x);
            n[k] += ok as u32;
            sum[k] += if ok { x as f64 } else { 0.0 };
            lo[k] = lo[k].min(if ok { x } else { f32::INFINITY });
            hi[k] = hi[k].max(if ok { x } else { f32::NEG_INFINITY });
        }
    }
    for &x in tail {
        if keep(x) {
            n[0] += 1;
            sum[0] += x as f64;
            lo[0] = lo[0].min(x);
            hi[0] = hi[0].max(x);
        }
    }
    let count: u64 = n.iter().map(|&c| c as u64).sum();
    if count == 0 {
        return Moments::EMPTY;
    }
    let mean = sum.iter().sum::<f64>() / count as f64;
    let mut m2 = [0.0f64; LANES];
    let body = xs.chunks_exact(LANES);
    for c in body {
        for k in 0..LANES {
            let x = c[k];
            let d = x as f64 - mean;
            m2[k] += if keep(x) { d * d } else { 0.0 };
        }
    }
    for &x in tail {
        if keep(x) {
            let d = x as f64 - mean;
            m2[0] += d * d;
        }
    }
    Moments {
        n: count as f64,
        mean,
        m2: m2.iter().sum(),
        min: lo.iter().fold(f32::INFINITY, |a, &b| a.min(b)) as f64,
        max: hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64,
    }
}

/// Count, min, max, mean and population std over all voxels, or over nonzero voxels when
/// `mask_nonzero` is `Some(true)`. An empty selection gives zeros.
pub fn stats(data: &[f32], mask_nonzero: Option<bool>) -> Stats {
    let nz = mask_nonzero.unwrap_or(false);
    // Chunks are merged in order on one thread: the same result for every thread count.
    let parts: Vec<Moments> = data.par_chunks(CHUNK).map(|c| chunk_acc(c, nz)).collect();
    let acc = parts.into_iter().fold(Moments::EMPTY, Moments::merge);
    if acc.n == 0.0 {
        return Stats {
            count: 0,
            min: 0.0,
            max: 0.0,
            mean: 0.0,
            std: 0.0,
        };
    }
    Stats {
        count: acc.n as usize,
        min: acc.min,
        max: acc.max,
        mean: acc.mean,
        std: (acc.m2 / acc.n).max(0.0).sqrt(),
    }
}

/// Minimum and maximum of the finite values (parallel, vectorised in lanes).
pub fn min_max(data: &[f32]) -> (f32, f32) {
    data.par_chunks(CHUNK).map(chunk_min_max).reduce(
        || (f32::INFINITY, f32::NEG_INFINITY),
        |a, b| (a.0.min(b.0), a.1.max(b.1)),
    )
}

crate::simd_fn! {
    fn chunk_min_max(xs: &[f32]) -> (f32, f32) = chunk_min_max_body;
}

#[inline(always)]
fn chunk_min_max_body(xs: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::INFINITY; LANES], [f32::NEG_INFINITY; LANES]);
    let body = xs.chunks_exact(LANES);
    let tail = body.remainder();
    for c in body {
        for k in 0..LANES {
            let x = c[k];
            let ok = x.is_finite();
            lo[k] = lo[k].min(if ok { x } else { f32::INFINITY });
            hi[k] = hi[k].max(if ok { x } else { f32::NEG_INFINITY });
        }
    }
    for &x in tail.iter().filter(|x| x.is_finite()) {
        lo[0] = lo[0].min(x);
        hi[0] = hi[0].max(x);
    }
    (
        lo.iter().fold(f32::INFINITY, |a, &b| a.min(b)),
        hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)),
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
