//! Reductions (CPU twin of `shaders/reduce.wgsl`): statistics over all voxels or a mask, min/max, and
//! exact percentiles through a value histogram followed by a selection inside one bin.

use crate::exec::kernel::{value_bin, PERCENTILE_BINS};
use crate::stats::CHUNK;
pub use crate::stats::{min_max, stats, Moments};
use rayon::prelude::*;

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
    if data.iter().any(|x| !x.is_finite()) {
        // Non-finite voxels (views of files with NaN) are left out.
        let finite: Vec<f32> = data.iter().copied().filter(|x| x.is_finite()).collect();
        return percentiles(&finite, qs);
    }
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
