//! Intensity histograms (one or two volumes overlaid, e.g. before/after normalisation), as numbers and
//! as a PNG bar plot.

use super::Rgb;
use crate::error::{Error, Result};
use crate::volume::Volume;
use serde::Serialize;

/// Counts of equal-width bins over `[lo, hi]` (the last bin includes `hi`).
#[derive(Clone, Debug, Serialize)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub lo: f64,
    /// Right edge of the last bin.
    pub hi: f64,
    /// Voxels per bin.
    pub counts: Vec<u64>,
    /// Voxels counted (after the mask).
    pub total: u64,
}

impl Histogram {
    /// Lower edge of bin `b`.
    pub fn edge(&self, b: usize) -> f64 {
        self.lo + (self.hi - self.lo) * b as f64 / self.counts.len() as f64
    }
}

/// Histogram of a volume's voxels (all, or nonzero ones when `nonzero`), `bins` bins over its range.
pub fn histogram(v: &Volume, bins: usize, nonzero: bool) -> Result<Histogram> {
    if bins == 0 {
        return Err(Error::invalid("histogram needs at least one bin"));
    }
    let sel: Vec<f32> = v
        .values()
        .iter()
        .copied()
        .filter(|&x| x.is_finite() && (!nonzero || x != 0.0))
        .collect();
    if sel.is_empty() {
        return Err(Error::invalid("no voxel to count (the mask is empty)"));
    }
    let (lo, hi) = crate::stats::min_max(&sel);
    let (lo, hi) = (lo as f64, hi as f64);
    if bins == 0 || bins > MAX_BINS {
        return Err(Error::invalid(format!(
            "{bins} bins: a histogram takes 1 to {MAX_BINS} bins"
        )));
    }
    let mut counts = vec![0u64; bins];
    let scale = if hi > lo {
        bins as f64 / (hi - lo)
    } else {
        0.0
    };
    for &x in &sel {
        let b = (((x as f64 - lo) * scale) as usize).min(bins - 1);
        counts[b] += 1;
    }
    Ok(Histogram {
        lo,
        hi,
        counts,
        total: sel.len() as u64,
    })
}

/// A bar plot of one or two histograms (each scaled to its own peak; the second drawn over the first,
/// translucent), with a baseline. Each histogram covers the full width.
pub fn plot(hists: &[&Histogram], width: usize, height: usize) -> Rgb {
    const COLOURS: [[u8; 3]; 2] = [[70, 130, 220], [235, 110, 40]];
    let mut img = Rgb::new(width, height, [255, 255, 255]);
    let plot_h = height.saturating_sub(10);
    for (hi, h) in hists.iter().enumerate() {
        let peak = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let c = COLOURS[hi % 2];
        for x in 0..width {
            let b = x * h.counts.len() / width;
            let bar = (h.counts[b] as f64 / peak * plot_h as f64).round() as usize;
            for y in plot_h.saturating_sub(bar)..plot_h {
                let old = img.get(x, y);
                let mix = if hi == 0 {
                    c
                } else {
                    [0, 1, 2].map(|k| ((old[k] as u16 + c[k] as u16) / 2) as u8)
                };
                img.set(x, y, mix);
            }
        }
    }
    for x in 0..width {
        img.set(x, plot_h, [0, 0, 0]);
    }
    img
}

/// Most bins a histogram may have (a million: far past what a picture or a JSON reader can use).
pub const MAX_BINS: usize = 1 << 20;
