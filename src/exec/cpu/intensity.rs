//! Element-wise intensity ops (CPU twin of `shaders/intensity.wgsl`). Statistics come from `reduce`.

use super::reduce;
use crate::transform::{IntensityOp, ZMask};
use rayon::prelude::*;

const CHUNK: usize = 1 << 16;

/// Element-wise kernel parameters shared with the shader: `out = clamp((x - sub) * mul + add, lo, hi)`
/// on selected voxels; with `skip_zero`, zero voxels are left as they are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine1 {
    pub sub: f32,
    pub div: f32,
    pub add: f32,
    pub lo: f32,
    pub hi: f32,
    pub skip_zero: bool,
}

impl Affine1 {
    /// `(x - sub) / div + add`, clamped to `[lo, hi]`, zero voxels kept when `skip_zero`.
    #[inline]
    pub fn eval(&self, x: f32) -> f32 {
        if self.skip_zero && x == 0.0 {
            return 0.0;
        }
        ((x - self.sub) / self.div + self.add).clamp(self.lo, self.hi)
    }
}

/// Resolves an intensity op into the element-wise kernel, using statistics of `data`.
pub fn plan(op: &IntensityOp, data: &[f32]) -> Affine1 {
    let id = Affine1 {
        sub: 0.0,
        div: 1.0,
        add: 0.0,
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
        skip_zero: false,
    };
    match *op {
        IntensityOp::Clip { min, max } => Affine1 {
            lo: min as f32,
            hi: max as f32,
            ..id
        },
        IntensityOp::PercentileClip { low, high } => {
            let p = reduce::percentiles(data, &[low, high]);
            Affine1 {
                lo: p[0] as f32,
                hi: p[1] as f32,
                ..id
            }
        }
        IntensityOp::Zscore { mask } => {
            let nz = mask == ZMask::Nonzero;
            let s = reduce::stats(data, Some(nz));
            zscore_params(s.count, s.mean, s.std, nz)
        }
        IntensityOp::Minmax { min, max } => {
            let (lo, hi) = reduce::min_max(data);
            minmax_params(lo, hi, min, max)
        }
    }
}

/// z-score kernel from mask statistics; a constant (or empty) selection maps to 0, never NaN.
pub fn zscore_params(count: usize, mean: f64, std: f64, skip_zero: bool) -> Affine1 {
    let std = if count == 0 || std <= 0.0 || !std.is_finite() {
        f64::INFINITY
    } else {
        std
    };
    Affine1 {
        sub: mean as f32,
        div: std as f32,
        add: 0.0,
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
        skip_zero,
    }
}

/// min-max kernel mapping `[lo, hi]` to `[a, b]`; a constant image maps to `a`.
pub fn minmax_params(lo: f32, hi: f32, a: f64, b: f64) -> Affine1 {
    let range = (hi - lo) as f64;
    let div = if range > 0.0 {
        range / (b - a)
    } else {
        f64::INFINITY
    };
    Affine1 {
        sub: lo,
        div: if div == 0.0 { f64::INFINITY } else { div } as f32,
        add: a as f32,
        lo: a as f32,
        hi: b as f32,
        skip_zero: false,
    }
}

/// Applies the kernel in place.
pub fn apply_kernel(k: &Affine1, data: &mut [f32]) {
    data.par_chunks_mut(CHUNK)
        .for_each(|c| c.iter_mut().for_each(|x| *x = k.eval(*x)));
}

/// Applies an intensity op in place.
pub fn apply(op: &IntensityOp, data: &mut [f32]) {
    let k = plan(op, data);
    apply_kernel(&k, data);
}
