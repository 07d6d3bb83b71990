//! Element-wise intensity ops (CPU twin of `shaders/intensity.wgsl`). Statistics come from `reduce`.

use super::reduce;
use crate::transform::{IntensityOp, ZMask};
use rayon::prelude::*;

const CHUNK: usize = 1 << 16;

/// Element-wise kernel parameters shared with the shader: `out = clamp((x - sub) * mul + add, lo, hi)`;
/// with `skip_zero`, zero voxels are left as they are. All fields are finite (no infinities reach the
/// GPU): "no clamp" is `±f32::MAX`, "constant image" is `mul = 0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine1 {
    pub sub: f32,
    pub mul: f32,
    pub add: f32,
    pub lo: f32,
    pub hi: f32,
    pub skip_zero: bool,
}

impl Affine1 {
    /// `(x - sub) * mul + add`, clamped to `[lo, hi]`, zero voxels kept when `skip_zero`.
    #[inline]
    pub fn eval(&self, x: f32) -> f32 {
        if self.skip_zero && x == 0.0 {
            return 0.0;
        }
        ((x - self.sub) * self.mul + self.add).clamp(self.lo, self.hi)
    }
}

/// The identity kernel.
pub const IDENTITY: Affine1 = Affine1 {
    sub: 0.0,
    mul: 1.0,
    add: 0.0,
    lo: -f32::MAX,
    hi: f32::MAX,
    skip_zero: false,
};

/// Clamp kernel.
pub fn clip_params(lo: f64, hi: f64) -> Affine1 {
    Affine1 {
        lo: lo as f32,
        hi: hi as f32,
        ..IDENTITY
    }
}

/// Resolves an intensity op into the element-wise kernel, using statistics of `data`.
pub fn plan(op: &IntensityOp, data: &[f32]) -> Affine1 {
    match *op {
        IntensityOp::Clip { min, max } => clip_params(min, max),
        IntensityOp::PercentileClip { low, high } => {
            let p = reduce::percentiles(data, &[low, high]);
            clip_params(p[0], p[1])
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
    let ok = count > 0 && std > 0.0 && std.is_finite();
    Affine1 {
        sub: mean as f32,
        mul: if ok { (1.0 / std) as f32 } else { 0.0 },
        skip_zero,
        ..IDENTITY
    }
}

/// min-max kernel mapping `[lo, hi]` to `[a, b]`; a constant image maps to `a`.
pub fn minmax_params(lo: f32, hi: f32, a: f64, b: f64) -> Affine1 {
    let range = (hi - lo) as f64;
    Affine1 {
        sub: lo,
        mul: if range > 0.0 {
            ((b - a) / range) as f32
        } else {
            0.0
        },
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
