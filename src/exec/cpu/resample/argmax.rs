//! Label maps resampled by `linear_argmax` (CPU twin of `resample_label_argmax` in
//! `shaders/resample_label.wgsl`): the trilinear weight of each label among the eight neighbours is its
//! interpolated indicator; the label with the largest weight wins, ties to the lower label value. Only
//! neighbours' labels can win, so no new value appears; on integer coordinates it is nearest.

use super::checked::cell;
use super::{drive, Params};
use crate::error::Result;
use crate::voxels::Voxel;

/// The label of the largest summed weight (sums over corners in a fixed order, as the shader does);
/// ties go to the lower label value.
#[inline]
fn pick<T: Voxel>(lab: &[T; 8], w: &[f32; 8]) -> T {
    let mut best = lab[0];
    let mut best_w = -1.0f32;
    for a in 0..8 {
        let mut s = 0.0f32;
        for b in 0..8 {
            if lab[b] == lab[a] {
                s += w[b];
            }
        }
        if s > best_w || (s == best_w && lab[a] < best) {
            best = lab[a];
            best_w = s;
        }
    }
    best
}

/// One `linear_argmax` sample at input coordinate `c`; neighbours outside the input take `fill`, or
/// the edge when `None`.
#[inline]
pub fn sample_argmax_checked<T: Voxel>(
    src: &[T],
    shape: [usize; 3],
    c: [f32; 3],
    fill: Option<T>,
) -> T {
    let [nx, ny, nz] = shape.map(|n| n as i64);
    let ([x0, y0, z0], t) = cell(c, shape);
    let get = |x: i64, y: i64, z: i64| -> T {
        let inside = x >= 0 && y >= 0 && z >= 0 && x < nx && y < ny && z < nz;
        match (inside, fill) {
            (false, Some(v)) => v,
            _ => {
                let (x, y, z) = (x.clamp(0, nx - 1), y.clamp(0, ny - 1), z.clamp(0, nz - 1));
                src[(x + nx * (y + ny * z)) as usize]
            }
        }
    };
    let mut lab = [T::default(); 8];
    let mut w = [0f32; 8];
    for corner in 0..8 {
        let d = [corner & 1, (corner >> 1) & 1, corner >> 2];
        lab[corner] = get(x0 + d[0] as i64, y0 + d[1] as i64, z0 + d[2] as i64);
        let wa = |a: usize| if d[a] == 1 { t[a] } else { 1.0 - t[a] };
        w[corner] = wa(0) * wa(1) * wa(2);
    }
    pick(&lab, &w)
}

/// `linear_argmax` resampling of one label map (`fill`: outside value, `None`: edge).
pub(super) fn argmax_volume<T: Voxel>(src: &[T], fill: Option<f64>, p: &Params) -> Result<Vec<T>> {
    let fill = fill.map(T::from_f64);
    drive(p, None, |j, k, _, row| {
        let base = p.row_base(j, k);
        let step = p.step();
        for i in 0..row.len() {
            let fi = i as f32;
            let c = [
                base[0] + step[0] * fi,
                base[1] + step[1] * fi,
                base[2] + step[2] * fi,
            ];
            row[i] = sample_argmax_checked(src, p.in_shape, c, fill);
        }
    })
}
