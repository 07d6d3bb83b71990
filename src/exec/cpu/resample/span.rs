//! Where a row of output needs which sampler: the interior span (every neighbour exists, no checks),
//! the reach (beyond it the sample is the fill) and the zones between, computed once per row.

use super::Params;

/// Range of `i` in `0..nx` for which `lo <= base + step * i <= hi` holds for sure in f32 (conservative:
/// one voxel and a small margin are given up at each end; the checked path handles those).
fn safe_span(base: f32, step: f32, lo: f64, hi: f64, nx: usize) -> (usize, usize) {
    let (b, s) = (base as f64, step as f64);
    let margin = 1e-3;
    let (lo, hi) = (lo + margin, hi - margin);
    if hi < lo {
        return (0, 0);
    }
    if s.abs() < 1e-12 {
        return if b >= lo && b <= hi { (0, nx) } else { (0, 0) };
    }
    let (t0, t1) = ((lo - b) / s, (hi - b) / s);
    let (a, c) = if t0 < t1 { (t0, t1) } else { (t1, t0) };
    let start = (a.ceil() + 1.0).max(0.0);
    let end = (c.floor() - 1.0).min(nx as f64 - 1.0);
    if end < start {
        (0, 0)
    } else {
        (start as usize, end as usize + 1)
    }
}

/// The interior span of the row starting at `base`: the output columns whose coordinate lies in
/// `[lo, n - 1 + hi_off]` on every axis for sure (0 and 0 for a trilinear cell whose eight corners
/// exist, -0.5 and 0.5 for rounding to a voxel).
pub(super) fn interior(p: &Params, base: [f32; 3], lo: f64, hi_off: f64) -> (usize, usize) {
    let nx = p.out_shape[0];
    let mut span = (0, nx);
    for r in 0..3 {
        let hi = p.in_shape[r] as f64 - 1.0 + hi_off;
        let s = safe_span(base[r], p.m[r][0], lo, hi, nx);
        span = (span.0.max(s.0), span.1.min(s.1));
        if span.0 >= span.1 {
            return (0, 0);
        }
    }
    span
}

/// Spans of one output row: `inner`, where no bounds checks are needed, and `reach`, outside of which the
/// sample lies more than one voxel outside the input (the result is the fill value).
#[derive(Clone, Copy, Debug)]
pub(super) struct RowSpan {
    pub(super) inner: (usize, usize),
    pub(super) reach: (usize, usize),
}

/// Range of `i` whose coordinate may lie in `[-1, n]` on every axis (conservative: widened by a voxel).
pub(super) fn reach(p: &Params, base: [f32; 3]) -> (usize, usize) {
    let nx = p.out_shape[0] as f64;
    let (mut a, mut b) = (0.0f64, nx);
    for r in 0..3 {
        let (b0, s) = (base[r] as f64, p.m[r][0] as f64);
        let (lo, hi) = (-1.0 - 1e-3, p.in_shape[r] as f64 + 1e-3);
        if s.abs() < 1e-12 {
            if b0 < lo || b0 > hi {
                return (0, 0);
            }
            continue;
        }
        let (t0, t1) = ((lo - b0) / s, (hi - b0) / s);
        let (u, v) = if t0 < t1 { (t0, t1) } else { (t1, t0) };
        a = a.max(u.floor() - 1.0);
        b = b.min(v.ceil() + 2.0);
    }
    if b <= a {
        (0, 0)
    } else {
        (a.max(0.0) as usize, b.min(nx) as usize)
    }
}

/// Splits a row of `nx` voxels into fill / checked / interior / checked / fill zones:
/// returns `(reach_start, inner_start, inner_end, reach_end)`, all in `0..=nx`, in order.
pub(super) fn zones(span: RowSpan, nx: usize, edge: bool) -> (usize, usize, usize, usize) {
    let clamp = |x: usize| x.min(nx);
    let (ra, rb) = if edge {
        (0, nx)
    } else {
        (clamp(span.reach.0), clamp(span.reach.1))
    };
    let rb = rb.max(ra);
    let (a, b) = (clamp(span.inner.0).max(ra), clamp(span.inner.1).min(rb));
    if a >= b {
        (ra, rb, rb, rb)
    } else {
        (ra, a, b, rb)
    }
}

/// Whether every output voxel's coordinate lies in the interior `[lo, n - 1 + hi_off)` of every axis
/// (as in [`interior`]), so that every row is one interior span and no row needs its spans computed.
/// The extremes of an affine map over the output box are at its corners; they are computed in f64
/// from the f32 matrix and must stay inside by more than the rounding of the kernels' f32
/// coordinates (at most six roundings of terms no larger than the sum of the magnitudes: eight
/// units in the last place of that sum are allowed). A crop of a larger volume through a mild
/// affine (the training loader's case) is inside; then the per-row spans, a fifth of such a
/// pipeline's time on 48-voxel rows, are skipped.
pub(super) fn box_inside(p: &Params, lo: f64, hi_off: f64) -> bool {
    let ext = p.out_shape.map(|n| n.saturating_sub(1) as f64);
    (0..3).all(|r| {
        let m = p.m[r].map(f64::from);
        let (mut min, mut max, mut mag) = (m[3], m[3], m[3].abs() + 1.0);
        for a in 0..3 {
            let t = m[a] * ext[a];
            min += t.min(0.0);
            max += t.max(0.0);
            mag += t.abs();
        }
        let err = 8.0 * f64::from(f32::EPSILON) * mag;
        min - err >= lo && max + err < p.in_shape[r] as f64 - 1.0 + hi_off
    })
}
