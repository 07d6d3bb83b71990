//! Reductions (CPU twin of `shaders/reduce.wgsl`): statistics over all voxels or a mask, min/max, and
//! exact percentiles by a two-pass radix selection on the f32 order key (the shader's two-level
//! histogram over the value range is within (max - min) / 2^33 of it).

pub use crate::stats::{min_max, min_max_scan, stats, stats_scan, Moments};
use rayon::prelude::*;

/// An order-preserving u32 key of an f32: `key(a) < key(b)` exactly when `a < b` (with -0 before +0);
/// negative NaNs and -inf sort below every finite value, +inf and positive NaNs above.
#[inline(always)]
fn key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

#[inline(always)]
fn from_key(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7fff_ffff
    } else {
        !k
    })
}

/// High-16-bit buckets whose keys are all non-finite: below `LOW_END` (-inf, negative NaNs) and from
/// `HIGH_START` on (+inf, positive NaNs). Finite values fill the buckets in between.
const LOW_END: usize = 0x0080;
const HIGH_START: usize = 0xff80;
const BUCKETS: usize = 1 << 16;

/// Histogram tables per part, filled round robin: a run of equal values (an image's zero background)
/// increments four counters in turn instead of one, so each increment need not wait for the last.
const WAYS: usize = 4;

/// Voxels checked together for a run of one value (an image's background, a flat region): such a
/// block adds [`RUN`] to one counter instead of going through the tables voxel by voxel.
const RUN: usize = 16;

/// The value of a block whose voxels all have the same bits (so the same key), else `None`. A
/// branch-free compare of the whole block (vectorised): on varying data one predictable test.
#[inline(always)]
fn uniform(r: &[f32]) -> Option<f32> {
    let b0 = r[0].to_bits();
    r.iter()
        .fold(true, |same, x| same & (x.to_bits() == b0))
        .then_some(r[0])
}

/// Sums the [`WAYS`] tables of `len` counters each into the first.
fn fold_ways(mut h: Vec<u32>, len: usize) -> Vec<u32> {
    let (first, rest) = h.split_at_mut(len);
    for t in rest.chunks_exact(len) {
        first.iter_mut().zip(t).for_each(|(a, b)| *a += b);
    }
    h.truncate(len);
    h
}

/// Parts the data is split into for per-thread histograms (a few per thread, each with its own table).
fn parts(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads() * 2).max(1 << 16)
}

/// Exact percentiles (numpy's default "linear" method) of the finite voxels, for each `q` in percent.
///
/// A radix selection on the f32 order key in two passes over the data: a histogram of the key's high
/// 16 bits (which also counts the non-finite voxels: they own buckets of their own), then, for the few
/// buckets holding a needed rank, a histogram of the low 16 bits, which pins each ranked value exactly.
/// Blocks of 16 voxels of one value (an image's background) count with one increment in both
/// passes. No sort, no copy of the data, no min/max pass.
pub fn percentiles(data: &[f32], qs: &[f64]) -> Vec<f64> {
    percentiles_scan(data, qs).0
}

/// [`percentiles`] and a bound on the largest |value| from the same first pass (+inf when a voxel is
/// not finite: they own buckets of their own): the histogram doubles as the input's finiteness scan.
pub fn percentiles_scan(data: &[f32], qs: &[f64]) -> (Vec<f64>, f32) {
    let chunk = parts(data.len());
    let add = |mut a: Vec<u32>, b: Vec<u32>| {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        a
    };
    let high: Vec<u64> = data
        .par_chunks(chunk)
        .map(|c| {
            let mut h = vec![0u32; WAYS * BUCKETS];
            let body = c.chunks_exact(RUN);
            for &x in body.remainder() {
                h[(key(x) >> 16) as usize] += 1;
            }
            for r in body {
                if let Some(x) = uniform(r) {
                    h[(key(x) >> 16) as usize] += RUN as u32;
                    continue;
                }
                for q in r.chunks_exact(WAYS) {
                    for (w, &x) in q.iter().enumerate() {
                        h[w * BUCKETS + (key(x) >> 16) as usize] += 1;
                    }
                }
            }
            fold_ways(h, BUCKETS)
        })
        .reduce(|| vec![0u32; BUCKETS], add)
        .into_iter()
        .map(u64::from)
        .collect();
    let below: u64 = high[..LOW_END].iter().sum();
    let n: u64 = high[LOW_END..HIGH_START].iter().sum();
    let largest = if below + high[HIGH_START..].iter().sum::<u64>() > 0 {
        f32::INFINITY
    } else {
        // The outer edges of the lowest and highest occupied buckets.
        let occupied = |b: &usize| high[*b] > 0;
        let lo = (LOW_END..HIGH_START).find(occupied);
        let hi = (LOW_END..HIGH_START).rev().find(occupied);
        match (lo, hi) {
            (Some(lo), Some(hi)) => from_key((lo as u32) << 16)
                .abs()
                .max(from_key(((hi as u32) << 16) | 0xffff).abs()),
            _ => 0.0,
        }
    };
    if n == 0 {
        return (vec![0.0; qs.len()], largest);
    }
    // Ranks among the finite values (lower and upper neighbour of each fractional rank), shifted past
    // the non-finite values that sort first.
    let mut ranks: Vec<u64> = Vec::new();
    for &q in qs {
        let r = q / 100.0 * (n - 1) as f64;
        let lo = (r.floor() as u64).min(n - 1);
        ranks.push(below + lo);
        ranks.push(below + (lo + 1).min(n - 1));
    }
    let mut cum = Vec::with_capacity(BUCKETS + 1);
    cum.push(0u64);
    for &h in &high {
        cum.push(cum.last().unwrap() + h);
    }
    let bucket_of = |rank: u64| cum.partition_point(|&c| c <= rank) - 1;
    let mut wanted: Vec<usize> = ranks.iter().map(|&r| bucket_of(r)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    // bucket -> index in `wanted` (u8::MAX: not wanted); at most 2 buckets per percentile. A branch
    // skips the unwanted (measured faster than routing them to a spill counter: in an image, wanted
    // and unwanted values come in runs, the background and the tissue).
    let mut slot = vec![u8::MAX; BUCKETS];
    for (i, &b) in wanted.iter().enumerate() {
        slot[b] = i as u8;
    }
    let w = wanted.len();
    let low: Vec<u32> = data
        .par_chunks(chunk)
        .map(|c| {
            let mut h = vec![0u32; WAYS * w * BUCKETS];
            let count = |h: &mut [u32], way: usize, x: f32, n: u32| {
                let k = key(x);
                let s = slot[(k >> 16) as usize];
                if s != u8::MAX {
                    h[(way * w + s as usize) * BUCKETS + (k & 0xffff) as usize] += n;
                }
            };
            let body = c.chunks_exact(RUN);
            for &x in body.remainder() {
                count(&mut h, 0, x, 1);
            }
            for r in body {
                if let Some(x) = uniform(r) {
                    count(&mut h, 0, x, RUN as u32);
                    continue;
                }
                for q in r.chunks_exact(WAYS) {
                    for (way, &x) in q.iter().enumerate() {
                        count(&mut h, way, x, 1);
                    }
                }
            }
            fold_ways(h, w * BUCKETS)
        })
        .reduce(|| vec![0u32; w * BUCKETS], add);
    let value_at = |rank: u64| -> f32 {
        let b = bucket_of(rank);
        let s = slot[b] as usize;
        let mut left = rank - cum[b];
        for (lo, &c) in low[s * BUCKETS..(s + 1) * BUCKETS].iter().enumerate() {
            if left < c as u64 {
                return from_key(((b as u32) << 16) | lo as u32);
            }
            left -= c as u64;
        }
        unreachable!("the bucket holds the rank")
    };
    let values = qs
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let r = q / 100.0 * (n - 1) as f64;
            let frac = r - r.floor();
            let a = value_at(ranks[2 * i]) as f64;
            let b = value_at(ranks[2 * i + 1]) as f64;
            a + (b - a) * frac
        })
        .collect();
    (values, largest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_key_is_monotonic_and_invertible() {
        let xs = [
            f32::NEG_INFINITY,
            -3e38,
            -1.5,
            -1e-40,
            -0.0,
            0.0,
            1e-40,
            1.0,
            3e38,
            f32::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} {}", w[0], w[1]);
        }
        for &x in &xs {
            assert_eq!(from_key(key(x)).to_bits(), x.to_bits());
        }
        assert!((key(f32::NAN) >> 16) as usize >= HIGH_START);
        assert!(((key(-f32::NAN) >> 16) as usize) < LOW_END);
        assert!(((key(f32::NEG_INFINITY) >> 16) as usize) < LOW_END);
        assert!((key(f32::INFINITY) >> 16) as usize >= HIGH_START);
        assert!(((key(f32::MAX) >> 16) as usize) < HIGH_START);
        assert!((key(f32::MIN) >> 16) as usize >= LOW_END);
    }

    /// `percentiles(data, qs)` equals numpy's linear percentiles of a sort of the finite values.
    fn percentiles_like_a_sort(data: &[f32], qs: &[f64]) {
        let mut sorted: Vec<f64> = data
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| x as f64)
            .collect();
        sorted.sort_by(f64::total_cmp);
        for (q, got) in qs.iter().zip(percentiles(data, qs)) {
            let r = q / 100.0 * (sorted.len() - 1) as f64;
            let (lo, hi) = (sorted[r.floor() as usize], sorted[r.ceil() as usize]);
            assert_eq!(got, lo + (hi - lo) * (r - r.floor()), "q = {q}");
        }
    }

    #[test]
    fn runs_of_one_value_count_like_single_voxels() {
        // Runs of equal values (whole RUN blocks, and runs straddling block edges) among varying
        // ones, where the ranked values fall inside runs and between them; NaN runs, -0 against +0.
        let mut data = Vec::new();
        let mut x = 12345u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u32
        };
        let values = [0.0, -0.0, 7.25, -3.5, f32::NAN, 1e30];
        while data.len() < 300_000 {
            let len = 1 + next() as usize % 90;
            if next() % 2 == 0 {
                data.extend(std::iter::repeat_n(
                    values[next() as usize % values.len()],
                    len,
                ));
            } else {
                data.extend((0..len).map(|_| (next() % 2000) as f32 * 0.01 - 10.0));
            }
        }
        let qs: Vec<f64> = (0..=200).map(|i| i as f64 * 0.5).collect();
        percentiles_like_a_sort(&data, &qs);
        assert!(uniform(&[-0.0; RUN]).is_some() && uniform(&[0.0, -0.0]).is_none());
    }

    #[test]
    fn percentiles_match_a_sort() {
        let mut data: Vec<f32> = (0..200_003u64)
            .map(|i| ((i.wrapping_mul(2654435761) % 100_000) as f32 - 50_000.0) * 0.37)
            .collect();
        data[7] = f32::NAN;
        data[9] = f32::NEG_INFINITY;
        data[11] = f32::INFINITY;
        data.extend(std::iter::repeat_n(0.0, 50_000));
        percentiles_like_a_sort(&data, &[0.0, 0.5, 1.0, 25.0, 50.0, 99.5, 100.0]);
        assert_eq!(percentiles(&[f32::NAN], &[50.0]), vec![0.0]);
        assert_eq!(percentiles_scan(&data, &[50.0]).1, f32::INFINITY);
        let finite: Vec<f32> = data.iter().copied().filter(|x| x.is_finite()).collect();
        let big = finite.iter().fold(0f32, |m, x| m.max(x.abs()));
        let bound = percentiles_scan(&finite, &[50.0]).1;
        assert!(bound >= big && bound <= big * 1.01, "{bound} {big}");
        assert_eq!(percentiles(&[2.0; 5], &[10.0, 90.0]), vec![2.0, 2.0]);
    }
}
