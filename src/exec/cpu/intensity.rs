//! Point-wise intensity kernels (CPU twin of `shaders/intensity.wgsl`) and separable Gaussian blur (twin
//! of `shaders/blur.wgsl`). Statistics come from `reduce`.

use super::reduce;
use crate::grid::Grid;
use crate::transform::{IntensityOp, ZMask};
use rayon::prelude::*;

/// Maximum number of bias-field coefficients (polynomial order 5: 56 terms).
pub const MAX_BIAS_TERMS: usize = 56;

/// Point kernel parameters shared with the shader. For voxel value `x` at `(i, j, k)`, linear index `l`:
/// ```text
/// y = (x - sub) * mul
/// if gamma != 1: y = max(y, 0) ^ gamma
/// y = y * post + add
/// if noise_std > 0: y += noise_mean + noise_std * gauss(noise_seed, l)
/// if bias_order > 0: y *= exp(sum c[t] * u^a * v^b * w^c)   (u, v, w in [-1, 1] across the volume)
/// out = clamp(y, lo, hi); with skip_zero, voxels equal to 0 stay 0
/// ```
/// All fields are finite: "no clamp" is `±f32::MAX`, "constant image" is `mul = 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct PointKernel {
    pub sub: f32,
    pub mul: f32,
    pub add: f32,
    pub lo: f32,
    pub hi: f32,
    pub skip_zero: bool,
    pub gamma: f32,
    pub post: f32,
    pub noise_std: f32,
    pub noise_mean: f32,
    pub noise_seed: [u32; 2],
    pub bias_order: u32,
    pub bias: Vec<f32>,
}

/// The identity kernel.
pub fn identity() -> PointKernel {
    PointKernel {
        sub: 0.0,
        mul: 1.0,
        add: 0.0,
        lo: -f32::MAX,
        hi: f32::MAX,
        skip_zero: false,
        gamma: 1.0,
        post: 1.0,
        noise_std: 0.0,
        noise_mean: 0.0,
        noise_seed: [0, 0],
        bias_order: 0,
        bias: Vec::new(),
    }
}

/// PCG hash (shared with WGSL, u32 wrapping arithmetic).
#[inline]
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// Uniform in (0, 1) from `(seed, index, stream)`: counter-based, identical in Rust and WGSL.
#[inline]
pub fn uniform01(seed: [u32; 2], index: u32, stream: u32) -> f32 {
    let h = pcg(seed[0] ^ pcg(index ^ pcg(seed[1] ^ pcg(stream))));
    ((h >> 8) as f32 + 0.5) * (1.0 / 16777216.0)
}

/// Standard normal from `(seed, index)` by Box-Muller over two counter-based uniforms.
#[inline]
pub fn gauss(seed: [u32; 2], index: u32) -> f32 {
    let u1 = uniform01(seed, index, 0);
    let u2 = uniform01(seed, index, 1);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Normalised coordinate of voxel `i` of `n` in [-1, 1] (0 for a single voxel), as in the shader.
#[inline]
pub fn unit_coord(i: usize, n: usize) -> f32 {
    if n > 1 {
        -1.0 + 2.0 * i as f32 / (n - 1) as f32
    } else {
        0.0
    }
}

/// Polynomial of the bias field at (u, v, w): terms ordered by `a` then `b` then `c`, `a + b + c <= order`.
pub fn bias_poly(order: u32, coef: &[f32], u: f32, v: f32, w: f32) -> f32 {
    let mut s = 0.0f32;
    let mut t = 0usize;
    let mut ua = 1.0f32;
    for a in 0..=order {
        let mut vb = 1.0f32;
        for b in 0..=(order - a) {
            let mut wc = 1.0f32;
            for _c in 0..=(order - a - b) {
                s += coef[t] * ua * vb * wc;
                t += 1;
                wc *= w;
            }
            vb *= v;
        }
        ua *= u;
    }
    s
}

/// Number of bias-field terms of an order.
pub fn bias_terms(order: u32) -> usize {
    let o = order as usize;
    (o + 1) * (o + 2) * (o + 3) / 6
}

impl PointKernel {
    /// Applies the kernel to one voxel.
    #[inline]
    pub fn eval(&self, x: f32, l: usize, ijk: [usize; 3], shape: [usize; 3]) -> f32 {
        if self.skip_zero && x == 0.0 {
            return 0.0;
        }
        let mut y = (x - self.sub) * self.mul;
        if self.gamma != 1.0 {
            y = y.max(0.0).powf(self.gamma);
        }
        y = y * self.post + self.add;
        if self.noise_std > 0.0 {
            y += self.noise_mean + self.noise_std * gauss(self.noise_seed, l as u32);
        }
        if self.bias_order > 0 {
            let u = unit_coord(ijk[0], shape[0]);
            let v = unit_coord(ijk[1], shape[1]);
            let w = unit_coord(ijk[2], shape[2]);
            y *= bias_poly(self.bias_order, &self.bias, u, v, w).exp();
        }
        y.clamp(self.lo, self.hi)
    }

    /// True when the kernel needs voxel positions (noise, bias field).
    pub fn positional(&self) -> bool {
        self.noise_std > 0.0 || self.bias_order > 0
    }

    /// Applies a kernel without noise, bias or gamma to a run of voxels (`out[i] = f(x[i])`), in a
    /// branch-free form the compiler vectorises; same arithmetic as `eval`.
    #[inline]
    fn affine_run(&self, x: &[f32], out: &mut [f32]) {
        debug_assert!(!self.positional() && self.gamma == 1.0);
        let (sub, mul, post, add, lo, hi) =
            (self.sub, self.mul, self.post, self.add, self.lo, self.hi);
        let skip = self.skip_zero;
        for (o, &v) in out.iter_mut().zip(x) {
            let y = ((v - sub) * mul * post + add).max(lo).min(hi);
            *o = if skip && v == 0.0 { 0.0 } else { y };
        }
    }
}

/// Clamp kernel.
pub fn clip_params(lo: f64, hi: f64) -> PointKernel {
    PointKernel {
        lo: lo as f32,
        hi: hi as f32,
        ..identity()
    }
}

/// z-score kernel from mask statistics; a constant (or empty) selection maps to 0, never NaN.
pub fn zscore_params(count: usize, mean: f64, std: f64, skip_zero: bool) -> PointKernel {
    let ok = count > 0 && std > 0.0 && std.is_finite();
    PointKernel {
        sub: mean as f32,
        mul: if ok { (1.0 / std) as f32 } else { 0.0 },
        skip_zero,
        ..identity()
    }
}

/// min-max kernel mapping `[lo, hi]` to `[a, b]`; a constant image maps to `a`.
pub fn minmax_params(lo: f32, hi: f32, a: f64, b: f64) -> PointKernel {
    let range = (hi - lo) as f64;
    PointKernel {
        sub: lo,
        mul: if range > 0.0 {
            ((b - a) / range) as f32
        } else {
            0.0
        },
        add: a as f32,
        lo: a as f32,
        hi: b as f32,
        ..identity()
    }
}

/// Gamma on the image's own range (nnU-Net style, works for negative intensities):
/// `((x - min) / range) ^ gamma * range + min`.
pub fn gamma_params(lo: f32, hi: f32, gamma: f64) -> PointKernel {
    let range = hi - lo;
    PointKernel {
        sub: lo,
        mul: if range > 0.0 { 1.0 / range } else { 0.0 },
        gamma: gamma as f32,
        post: range,
        add: lo,
        ..identity()
    }
}

/// The statistics an op needs, and the kernel built from them (shared by both executors).
pub enum Needs {
    None(PointKernel),
    Stats {
        nonzero: bool,
    },
    MinMax,
    Percentiles([f64; 2]),
    Blur,
    /// Piecewise maps from the image's own quantiles (histogram standardisation, hist_scale): run on
    /// the host by both executors.
    Host,
}

/// Kernel of an op given statistics (`count, mean, std, min, max`) or percentiles.
pub fn kernel_from(
    op: &IntensityOp,
    st: &crate::volume::Stats,
    pct: Option<[f64; 2]>,
) -> PointKernel {
    match *op {
        IntensityOp::Clip { min, max } => clip_params(min, max),
        IntensityOp::PercentileClip { .. } => {
            let p = pct.expect("percentiles computed");
            clip_params(p[0], p[1])
        }
        IntensityOp::Zscore { mask } => {
            zscore_params(st.count, st.mean, st.std, mask == ZMask::Nonzero)
        }
        IntensityOp::Minmax { min, max } => minmax_params(st.min as f32, st.max as f32, min, max),
        IntensityOp::Gamma { gamma } => gamma_params(st.min as f32, st.max as f32, gamma),
        IntensityOp::Noise { std, mean, seed } => PointKernel {
            noise_std: std as f32,
            noise_mean: mean as f32,
            noise_seed: [seed as u32, (seed >> 32) as u32],
            ..identity()
        },
        IntensityOp::BiasField {
            order,
            ref coefficients,
        } => PointKernel {
            bias_order: order,
            bias: coefficients.iter().map(|&c| c as f32).collect(),
            ..identity()
        },
        IntensityOp::Contrast { factor } => PointKernel {
            sub: st.mean as f32,
            mul: factor as f32,
            add: st.mean as f32,
            ..identity()
        },
        IntensityOp::Brightness { factor } => PointKernel {
            mul: factor as f32,
            ..identity()
        },
        IntensityOp::IntensityShift { offset } => PointKernel {
            add: offset as f32,
            ..identity()
        },
        IntensityOp::Blur { .. }
        | IntensityOp::HistogramStandardize { .. }
        | IntensityOp::HistScale { .. } => identity(),
    }
}

/// What an op needs computed from the data before its kernel can be built.
pub fn needs(op: &IntensityOp) -> Needs {
    match *op {
        IntensityOp::PercentileClip { low, high } => Needs::Percentiles([low, high]),
        IntensityOp::Zscore { mask } => Needs::Stats {
            nonzero: mask == ZMask::Nonzero,
        },
        IntensityOp::Contrast { .. } => Needs::Stats { nonzero: false },
        IntensityOp::Minmax { .. } | IntensityOp::Gamma { .. } => Needs::MinMax,
        IntensityOp::Blur { .. } => Needs::Blur,
        IntensityOp::HistogramStandardize { .. } | IntensityOp::HistScale { .. } => Needs::Host,
        _ => Needs::None(kernel_from(op, &EMPTY_STATS, None)),
    }
}

const EMPTY_STATS: crate::volume::Stats = crate::volume::Stats {
    count: 0,
    min: 0.0,
    max: 0.0,
    mean: 0.0,
    std: 0.0,
};

/// Applies a kernel in place (rayon over slices).
pub fn apply_kernel(k: &PointKernel, data: &mut [f32], shape: [usize; 3]) {
    let [nx, ny, _] = shape;
    let slice = nx * ny;
    if !k.positional() && k.gamma == 1.0 {
        data.par_chunks_mut(1 << 16).for_each(|c| {
            let mut tmp = [0f32; 1024];
            for part in c.chunks_mut(1024) {
                let n = part.len();
                k.affine_run(part, &mut tmp[..n]);
                part.copy_from_slice(&tmp[..n]);
            }
        });
        return;
    }
    if !k.positional() {
        data.par_chunks_mut(1 << 16)
            .enumerate()
            .for_each(|(c, xs)| {
                let base = c << 16;
                for (o, x) in xs.iter_mut().enumerate() {
                    *x = k.eval(*x, base + o, [0, 0, 0], shape);
                }
            });
        return;
    }
    data.par_chunks_mut(slice).enumerate().for_each(|(kz, xs)| {
        for j in 0..ny {
            for i in 0..nx {
                let l = kz * slice + j * nx + i;
                xs[j * nx + i] = k.eval(xs[j * nx + i], l, [i, j, kz], shape);
            }
        }
    });
}

/// Normalised Gaussian weights for `sigma` voxels, radius `ceil(3 sigma)` (at least 1 tap each side
/// when sigma > 0). Shared with the GPU, which receives these weights.
pub fn gaussian_weights(sigma: f64) -> Vec<f32> {
    gaussian_weights_truncated(sigma, 3.0)
}

/// Normalised Gaussian weights, radius `ceil(truncate * sigma)` (at least 1).
pub fn gaussian_weights_truncated(sigma: f64, truncate: f64) -> Vec<f32> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let r = (truncate * sigma).ceil().max(1.0) as i64;
    let w: Vec<f64> = (-r..=r)
        .map(|x| (-(x * x) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|x| (x / s) as f32).collect()
}

/// Gaussian sigma in voxels along each axis for a sigma in mm.
pub fn blur_sigmas(sigma_mm: [f64; 3], grid: &Grid) -> [f64; 3] {
    let sp = grid.spacing();
    [0, 1, 2].map(|a| sigma_mm[a] / sp[a])
}

/// One separable pass along `axis` with edge replication: `out[p] = sum w[t] * in[clamp(p + t - r)]`,
/// accumulated in f32 in tap order (as the shader does). Vectorised across outputs: along y and z whole
/// rows are accumulated; along x each row is edge-padded once.
pub fn blur_axis(src: &[f32], shape: [usize; 3], axis: usize, w: &[f32]) -> Vec<f32> {
    let r = (w.len() / 2) as i64;
    let [nx, ny, nz] = shape;
    let mut out = super::alloc::zeroed(src.len());
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, dst)| {
            let mut pad = vec![0f32; nx + 2 * r as usize];
            for j in 0..ny {
                let row = &mut dst[j * nx..(j + 1) * nx];
                match axis {
                    0 => {
                        let s = &src[(k * ny + j) * nx..(k * ny + j + 1) * nx];
                        for (q, p) in pad.iter_mut().enumerate() {
                            *p = s[(q as i64 - r).clamp(0, nx as i64 - 1) as usize];
                        }
                        for (t, wt) in w.iter().enumerate() {
                            for (o, x) in row.iter_mut().zip(&pad[t..t + nx]) {
                                *o += wt * x;
                            }
                        }
                    }
                    _ => {
                        let (pos, n) = if axis == 1 { (j, ny) } else { (k, nz) };
                        for (t, wt) in w.iter().enumerate() {
                            let q = (pos as i64 + t as i64 - r).clamp(0, n as i64 - 1) as usize;
                            let (jj, kk) = if axis == 1 { (q, k) } else { (j, q) };
                            let s = &src[(kk * ny + jj) * nx..(kk * ny + jj + 1) * nx];
                            for (o, x) in row.iter_mut().zip(s) {
                                *o += wt * x;
                            }
                        }
                    }
                }
            }
        });
    out
}

/// Separable Gaussian blur (sigma in voxels per axis), x then y then z.
pub fn blur(data: &[f32], shape: [usize; 3], sigma_vox: [f64; 3]) -> Vec<f32> {
    let mut cur = data.to_vec();
    for a in 0..3 {
        if sigma_vox[a] > 0.0 && shape[a] > 1 {
            cur = blur_axis(&cur, shape, a, &gaussian_weights(sigma_vox[a]));
        }
    }
    cur
}

/// The point kernel of an op from statistics of `data`, or `None` for blur.
fn kernel_for(op: &IntensityOp, data: &[f32]) -> Option<PointKernel> {
    Some(match needs(op) {
        Needs::None(k) => k,
        Needs::Stats { nonzero } => kernel_from(op, &reduce::stats(data, Some(nonzero)), None),
        Needs::MinMax => {
            let (lo, hi) = reduce::min_max(data);
            let st = crate::volume::Stats {
                min: lo as f64,
                max: hi as f64,
                ..EMPTY_STATS
            };
            kernel_from(op, &st, None)
        }
        Needs::Percentiles(q) => {
            let p = reduce::percentiles(data, &q);
            kernel_from(op, &EMPTY_STATS, Some([p[0], p[1]]))
        }
        Needs::Blur | Needs::Host => return None,
    })
}

/// Applies an intensity op to one image in place.
pub fn apply(op: &IntensityOp, data: &mut Vec<f32>, grid: &Grid) {
    match kernel_for(op, data) {
        Some(k) => apply_kernel(&k, data, grid.shape),
        None => match op {
            IntensityOp::Blur { sigma_mm } => {
                *data = blur(data, grid.shape, blur_sigmas(*sigma_mm, grid))
            }
            IntensityOp::HistogramStandardize { landmarks } => {
                super::quantile::standardize(data, landmarks)
            }
            IntensityOp::HistScale { bins } => super::quantile::hist_scale(data, *bins),
            _ => unreachable!("every other op has a point kernel"),
        },
    }
}

/// Applies an intensity op to one image into a new buffer (the input is read once more, not copied).
pub fn apply_to_new(op: &IntensityOp, data: &[f32], grid: &Grid) -> Vec<f32> {
    let Some(k) = kernel_for(op, data) else {
        if let IntensityOp::Blur { sigma_mm } = op {
            return blur(data, grid.shape, blur_sigmas(*sigma_mm, grid));
        }
        let mut out = data.to_vec();
        apply(op, &mut out, grid);
        return out;
    };
    let shape = grid.shape;
    let mut out = super::alloc::zeroed(data.len());
    if !k.positional() && k.gamma == 1.0 {
        out.par_chunks_mut(1 << 16)
            .zip(data.par_chunks(1 << 16))
            .for_each(|(o, x)| k.affine_run(x, o));
        return out;
    }
    if !k.positional() {
        out.par_chunks_mut(1 << 16)
            .zip(data.par_chunks(1 << 16))
            .for_each(|(o, x)| {
                for (o, x) in o.iter_mut().zip(x) {
                    *o = k.eval(*x, 0, [0, 0, 0], shape);
                }
            });
        return out;
    }
    out.copy_from_slice(data);
    apply_kernel(&k, &mut out, shape);
    out
}
