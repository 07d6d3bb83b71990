//! Reductions (CPU twin of `shaders/reduce.wgsl`): statistics over all voxels or a mask, min/max, and
//! exact percentiles through a value histogram followed by a selection inside one bin.

use crate::volume::Stats;
use rayon::prelude::*;

/// Voxels per parallel chunk; each chunk is reduced in cache, then chunks are merged (Chan et al.).
const CHUNK: usize = 1 << 16;

/// Count, mean, sum of squared deviations, min and max of a set of values; merged pairwise (Chan et
/// al.), so chunks, volumes or whole datasets combine without keeping their values.
#[derive(Clone, Copy, Debug)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Moments {
    pub const EMPTY: Moments = Moments {
        n: 0.0,
        mean: 0.0,
        m2: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };
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
        if nonzero_only && x == 0.0 {
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
        if nonzero_only && x == 0.0 {
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
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                })
        })
        .reduce(
            || (f32::INFINITY, f32::NEG_INFINITY),
            |a, b| (a.0.min(b.0), a.1.max(b.1)),
        )
}

/// Number of histogram bins used to locate a percentile before the exact selection.
pub const PERCENTILE_BINS: usize = 1 << 16;

/// Bin of a value: monotonic in `x` (f32 subtraction and multiplication by a positive constant are
/// monotonic), so bins partition the sorted order. Shared formula with the shader.
#[inline]
pub fn value_bin(x: f32, min: f32, scale: f32, bins: usize) -> usize {
    (((x - min) * scale) as usize).min(bins - 1)
}

/// Histogram of `bins` equal-width bins over `[min, max]` (the percentile pass).
pub fn histogram(data: &[f32], min: f32, max: f32, bins: usize) -> Vec<u64> {
    let scale = if max > min {
        bins as f32 / (max - min)
    } else {
        0.0
    };
    data.par_chunks(CHUNK * 4)
        .fold(
            || vec![0u64; bins],
            |mut h, c| {
                for &x in c {
                    h[value_bin(x, min, scale, bins)] += 1;
                }
                h
            },
        )
        .reduce(
            || vec![0u64; bins],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// Exact percentiles (numpy's default "linear" method) of all voxels, for each `q` in percent.
pub fn percentiles(data: &[f32], qs: &[f64]) -> Vec<f64> {
    if data.is_empty() {
        return vec![0.0; qs.len()];
    }
    let (min, max) = min_max(data);
    if min == max {
        return vec![min as f64; qs.len()];
    }
    let bins = PERCENTILE_BINS;
    let hist = histogram(data, min, max, bins);
    let scale = bins as f32 / (max - min);
    let n = data.len();
    // Ranks needed (lower and upper neighbour of each fractional rank).
    let mut ranks: Vec<usize> = Vec::new();
    for &q in qs {
        let r = q / 100.0 * (n - 1) as f64;
        let lo = r.floor() as usize;
        ranks.push(lo.min(n - 1));
        ranks.push((lo + 1).min(n - 1));
    }
    let mut cum = Vec::with_capacity(bins + 1);
    cum.push(0u64);
    for &h in &hist {
        cum.push(cum.last().unwrap() + h);
    }
    // Bins holding the needed ranks, then one pass that collects the members of all of them.
    let bin_of = |rank: usize| cum.partition_point(|&c| c <= rank as u64) - 1;
    let mut wanted: Vec<usize> = ranks.iter().map(|&r| bin_of(r)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    // bin -> index in `wanted` (u8::MAX: not wanted); at most 2 bins per percentile.
    let mut slot = vec![u8::MAX; bins];
    for (i, &b) in wanted.iter().enumerate() {
        slot[b] = i as u8;
    }
    // First the range of each wanted bin: a bin whose values are all equal (the background of a
    // masked image, say) needs no collection at all.
    let ranges: Vec<(f32, f32)> = data
        .par_chunks(CHUNK * 4)
        .fold(
            || vec![(f32::INFINITY, f32::NEG_INFINITY); wanted.len()],
            |mut acc, c| {
                for &x in c {
                    let w = slot[value_bin(x, min, scale, bins)];
                    if w != u8::MAX {
                        let r = &mut acc[w as usize];
                        *r = (r.0.min(x), r.1.max(x));
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![(f32::INFINITY, f32::NEG_INFINITY); wanted.len()],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = (x.0.min(y.0), x.1.max(y.1));
                }
                a
            },
        );
    for (i, r) in ranges.iter().enumerate() {
        if r.0 == r.1 {
            slot[wanted[i]] = u8::MAX;
        }
    }
    let mut members: Vec<Vec<f32>> = vec![Vec::new(); wanted.len()];
    if slot.iter().any(|&w| w != u8::MAX) {
        members = data
            .par_chunks(CHUNK * 4)
            .fold(
                || vec![Vec::new(); wanted.len()],
                |mut acc, c| {
                    for &x in c {
                        let w = slot[value_bin(x, min, scale, bins)];
                        if w != u8::MAX {
                            acc[w as usize].push(x);
                        }
                    }
                    acc
                },
            )
            .reduce(
                || vec![Vec::new(); wanted.len()],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        x.extend(y);
                    }
                    a
                },
            );
        for m in members.iter_mut() {
            m.sort_unstable_by(f32::total_cmp);
        }
    }
    let value_at = |rank: usize| -> f32 {
        // Bin b holds sorted positions cum[b] .. cum[b + 1].
        let b = bin_of(rank);
        let w = wanted.binary_search(&b).expect("collected");
        if ranges[w].0 == ranges[w].1 {
            return ranges[w].0;
        }
        members[w][rank - cum[b] as usize]
    };
    qs.iter()
        .enumerate()
        .map(|(i, &q)| {
            let r = q / 100.0 * (n - 1) as f64;
            let frac = r - r.floor();
            let a = value_at(ranks[2 * i]) as f64;
            let b = value_at(ranks[2 * i + 1]) as f64;
            a + (b - a) * frac
        })
        .collect()
}
