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

fn chunk_acc(xs: &[f32], nonzero_only: bool) -> Moments {
    let (mut n, mut sum, mut lo, mut hi) = (0usize, 0.0f64, f32::INFINITY, f32::NEG_INFINITY);
    for &x in xs {
        if (nonzero_only && x == 0.0) || !x.is_finite() {
            continue;
        }
        n += 1;
        sum += x as f64;
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if n == 0 {
        return Moments::EMPTY;
    }
    let mean = sum / n as f64;
    let mut m2 = 0.0f64;
    for &x in xs {
        if (nonzero_only && x == 0.0) || !x.is_finite() {
            continue;
        }
        let d = x as f64 - mean;
        m2 += d * d;
    }
    Moments {
        n: n as f64,
        mean,
        m2,
        min: lo as f64,
        max: hi as f64,
    }
}

/// Count, min, max, mean and population std over all voxels, or over nonzero voxels when
/// `mask_nonzero` is `Some(true)`. An empty selection gives zeros.
pub fn stats(data: &[f32], mask_nonzero: Option<bool>) -> Stats {
    let nz = mask_nonzero.unwrap_or(false);
    let acc = data
        .par_chunks(CHUNK)
        .map(|c| chunk_acc(c, nz))
        .reduce(|| Moments::EMPTY, Moments::merge);
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

/// Minimum and maximum (parallel).
pub fn min_max(data: &[f32]) -> (f32, f32) {
    data.par_chunks(CHUNK)
        .map(|c| {
            c.iter()
                .filter(|x| x.is_finite())
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                })
        })
        .reduce(
            || (f32::INFINITY, f32::NEG_INFINITY),
            |a, b| (a.0.min(b.0), a.1.max(b.1)),
        )
}
