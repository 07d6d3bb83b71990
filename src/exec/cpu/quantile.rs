//! Intensity maps built from an image's own quantiles: Nyul & Udupa histogram standardisation and
//! fastai's `hist_scaled`. Both are piecewise-linear maps through knots. (Both executors use this code:
//! the GPU executor reads the image back for these two ops.)

use super::reduce;
pub use crate::exec::kernel::{LANDMARK_PERCENTS, LANDMARK_RANGE};

/// Voxels used for landmarks: those above the image mean (TorchIO's default foreground).
pub fn foreground(data: &[f32]) -> Vec<f32> {
    let mean = reduce::stats(data, None).mean;
    let fg: Vec<f32> = data.iter().copied().filter(|&x| x as f64 > mean).collect();
    if fg.is_empty() {
        data.to_vec()
    } else {
        fg
    }
}

/// The landmarks of one image (percentiles of its foreground).
pub fn landmarks(data: &[f32]) -> Vec<f64> {
    reduce::percentiles(&foreground(data), &LANDMARK_PERCENTS)
}

/// Maps an image's landmarks linearly so that the first goes to 0 and the last to 100 (learning step).
pub fn normalised_landmarks(data: &[f32]) -> Vec<f64> {
    let l = landmarks(data);
    let (a, b) = (l[0], l[l.len() - 1]);
    let span = if b > a { b - a } else { 1.0 };
    l.iter()
        .map(|x| LANDMARK_RANGE[0] + (x - a) / span * (LANDMARK_RANGE[1] - LANDMARK_RANGE[0]))
        .collect()
}

/// Piecewise-linear map through knots `(xs[i], ys[i])`; outside, the end segments are extended
/// (`extrapolate`) or the ends held (clamped).
pub fn piecewise(x: f64, xs: &[f64], ys: &[f64], extrapolate: bool) -> f64 {
    let n = xs.len();
    if n == 1 {
        return ys[0];
    }
    let seg = if x <= xs[0] {
        if !extrapolate {
            return ys[0];
        }
        0
    } else if x >= xs[n - 1] {
        if !extrapolate {
            return ys[n - 1];
        }
        n - 2
    } else {
        xs.partition_point(|&k| k <= x).saturating_sub(1).min(n - 2)
    };
    let (x0, x1, y0, y1) = (xs[seg], xs[seg + 1], ys[seg], ys[seg + 1]);
    if x1 > x0 {
        y0 + (x - x0) / (x1 - x0) * (y1 - y0)
    } else {
        y0
    }
}

/// Strictly increasing knots: duplicates (flat quantiles) are merged keeping the first target.
fn dedup(xs: Vec<f64>, ys: Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    let mut ox: Vec<f64> = Vec::with_capacity(xs.len());
    let mut oy = Vec::with_capacity(ys.len());
    for (x, y) in xs.into_iter().zip(ys) {
        if ox.last().is_none_or(|&l| x > l) {
            ox.push(x);
            oy.push(y);
        }
    }
    (ox, oy)
}

/// Histogram standardisation of `data` onto `standard` landmarks (in place).
pub fn standardize(data: &mut [f32], standard: &[f64]) {
    let (xs, ys) = dedup(landmarks(data), standard.to_vec());
    data.iter_mut()
        .for_each(|v| *v = piecewise(*v as f64, &xs, &ys, true) as f32);
}

/// fastai `hist_scaled` with `freqhist_bins(bins)` breakpoints (in place).
pub fn hist_scale(data: &mut [f32], bins: usize) {
    let mut sorted = data.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let n = sorted.len();
    let mut t: Vec<f64> = vec![0.001];
    t.extend((0..bins).map(|i| i as f64 / bins as f64 + 1.0 / (2.0 * bins as f64)));
    t.push(0.999);
    let mut brks: Vec<f64> = t
        .iter()
        .map(|q| sorted[((n as f64 * q) as usize).min(n - 1)] as f64)
        .collect();
    brks.sort_by(f64::total_cmp);
    brks.dedup();
    let ys: Vec<f64> = (0..brks.len())
        .map(|i| {
            if brks.len() > 1 {
                i as f64 / (brks.len() - 1) as f64
            } else {
                0.0
            }
        })
        .collect();
    data.iter_mut()
        .for_each(|v| *v = piecewise(*v as f64, &brks, &ys, false) as f32);
}
