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

/// A short label for an axis tick: up to 4 significant digits, no trailing zeros.
fn tick_label(v: f64) -> String {
    let a = v.abs();
    let t = if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        format!(
            "{v:.*}",
            (3 - (a.max(1e-12).log10().floor() as i64)).clamp(0, 4) as usize
        )
    };
    if t.contains('.') && !t.contains('e') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    }
}

/// A bar plot of one or two histograms with axes: bars scaled to each histogram's own peak (y axis in %
/// of the peak), x ticks with values, a legend naming each histogram (`names`). Two histograms whose
/// ranges overlap share one x axis; otherwise (before/after a normalisation, say) each keeps its own
/// range, the first's ticks below the plot and the second's above it, in the bars' colours, as the
/// legend says.
pub fn plot(hists: &[&Histogram], names: &[&str], width: usize, height: usize) -> Rgb {
    const COLOURS: [[u8; 3]; 2] = [[70, 130, 220], [235, 110, 40]];
    const INK: [u8; 3] = [40, 40, 40];
    let mut img = Rgb::new(width, height, [255, 255, 255]);

    // Shared x range when the ranges overlap over half of their union.
    let (ulo, uhi) = hists
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), h| {
            (a.min(h.lo), b.max(h.hi))
        });
    let overlap = match hists {
        [a, b] => (a.hi.min(b.hi) - a.lo.max(b.lo)).max(0.0),
        _ => uhi - ulo,
    };
    let shared = hists.len() < 2 || overlap >= 0.5 * (uhi - ulo);
    let range = |h: &Histogram| if shared { (ulo, uhi) } else { (h.lo, h.hi) };
    // Legend on top; a second x axis under it when the ranges are separate.
    let (left, right, top, bottom) = (44usize, 12usize, if shared { 18 } else { 42 }, 24usize);
    let pw = width.saturating_sub(left + right).max(1);
    let ph = height.saturating_sub(top + bottom).max(1);
    for (k, h) in hists.iter().enumerate() {
        let peak = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let c = COLOURS[k % 2];
        let (lo, hi) = range(h);
        let nb = h.counts.len();
        for x in 0..pw {
            let v = lo + (x as f64 + 0.5) / pw as f64 * (hi - lo);
            let b = if h.hi > h.lo {
                (v - h.lo) / (h.hi - h.lo) * nb as f64
            } else {
                0.0
            };
            if !(0.0..=nb as f64).contains(&b) {
                continue;
            }
            let count = h.counts[(b as usize).min(nb - 1)];
            let bar = (count as f64 / peak * ph as f64).round() as usize;
            for y in (top + ph).saturating_sub(bar)..top + ph {
                let old = img.get(left + x, y);
                let mix = if k == 0 {
                    c
                } else {
                    [0, 1, 2].map(|i| ((old[i] as u16 + c[i] as u16) / 2) as u8)
                };
                img.set(left + x, y, mix);
            }
        }
    }
    // Axes, ticks and labels.
    for x in left..left + pw {
        img.set(x, top + ph, INK);
    }
    for y in top..=top + ph {
        img.set(left - 1, y, INK);
    }
    for (pct, y) in [(0, top + ph), (50, top + ph / 2), (100, top)] {
        img.set(left - 2, y, INK);
        img.set(left - 3, y, INK);
        let t = format!("{pct}%");
        super::font::text(
            &mut img,
            &t,
            (left - 4).saturating_sub(8 * t.len()),
            y.saturating_sub(4),
            INK,
        );
    }
    // Tick marks from `y` (3 px) and their labels below them, or above them when `above`.
    let ticks = |img: &mut Rgb, h: &Histogram, y: usize, above: bool, colour: [u8; 3]| {
        let (lo, hi) = range(h);
        for t in 0..5 {
            let x = left + t * (pw - 1) / 4;
            let v = lo + (hi - lo) * t as f64 / 4.0;
            for dy in 0..3 {
                img.set(x, y + dy, colour);
            }
            let label = tick_label(v);
            let w = label.len() * 8;
            let lx = (x.saturating_sub(w / 2)).min(width.saturating_sub(w));
            let ly = if above { y.saturating_sub(11) } else { y + 4 };
            super::font::text(img, &label, lx, ly, colour);
        }
    };
    let first = hists.first().copied();
    if let Some(h) = first {
        ticks(
            &mut img,
            h,
            top + ph + 1,
            false,
            if shared { INK } else { COLOURS[0] },
        );
    }
    if let (false, Some(h)) = (shared, hists.get(1)) {
        ticks(&mut img, h, top - 3, true, COLOURS[1]);
    }
    // Legend.
    let mut x = left;
    for (k, name) in names.iter().enumerate().take(hists.len()) {
        for dy in 0..8 {
            for dx in 0..8 {
                img.set(x + dx, 2 + dy, COLOURS[k % 2]);
            }
        }
        let label = if !shared && k == 1 {
            format!("{name} (own x axis, top)")
        } else {
            name.to_string()
        };
        super::font::text(&mut img, &label, x + 11, 2, INK);
        x += 11 + label.len() * 8 + 12;
    }
    img
}

/// Most bins a histogram may have (a million: far past what a picture or a JSON reader can use).
pub const MAX_BINS: usize = 1 << 20;
