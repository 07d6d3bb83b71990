//! Backend-neutral descriptions of the work both executors do: point kernels and what statistics they
//! need, how samples outside the input are filled, blur weights, the counter-based noise hash shared with
//! WGSL, percentile binning and the layout of displacement fields. The CPU executor evaluates them
//! (`exec/cpu/`), the GPU executor hands them to its shaders (`exec/gpu/`); neither imports the other.

use crate::grid::Grid;
use crate::transform::fuse::FieldSpec;
use crate::transform::{Fill, IntensityOp, ZMask};
use crate::volume::{Kind, Volume};

pub use crate::transform::spec::{bias_terms, LANDMARK_PERCENTS, LANDMARK_RANGE};

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
/// "No clamp" is `±inf` (so an overflow stays infinite and the executor refuses the result instead of
/// saturating it silently at `±f32::MAX`); "constant image" is `mul = 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct PointKernel {
    /// Power of two the voxel is multiplied by first: 1 unless `mul` would be subnormal (GPUs flush
    /// subnormal floats to zero, which would zero a z-score or min-max map of values near the f32
    /// limit); then `sub` and `mul` are given in the scaled units ([`prescaled`]).
    pub pre: f32,
    /// Subtracted next.
    pub sub: f32,
    /// Then multiplied.
    pub mul: f32,
    /// Added after `post`.
    pub add: f32,
    /// Lower clamp.
    pub lo: f32,
    /// Upper clamp.
    pub hi: f32,
    /// Voxels equal to 0 stay 0.
    pub skip_zero: bool,
    /// Exponent (1: none).
    pub gamma: f32,
    /// Multiplier after the exponent.
    pub post: f32,
    /// Std of the added Gaussian noise (0: none).
    pub noise_std: f32,
    /// Mean of the added noise.
    pub noise_mean: f32,
    /// Seed of the counter-based noise.
    pub noise_seed: [u32; 2],
    /// Order of the bias-field polynomial (0: none).
    pub bias_order: u32,
    /// Bias-field coefficients.
    pub bias: Vec<f32>,
}

/// The identity kernel.
pub fn identity() -> PointKernel {
    PointKernel {
        pre: 1.0,
        sub: 0.0,
        mul: 1.0,
        add: 0.0,
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
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
#[inline(always)]
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// Uniform in (0, 1) from `(seed, index, stream)`: counter-based, identical in Rust and WGSL.
#[inline(always)]
pub fn uniform01(seed: [u32; 2], index: u32, stream: u32) -> f32 {
    let h = pcg(seed[0] ^ pcg(index ^ pcg(seed[1] ^ pcg(stream))));
    // Through i32 (the same value below 2^24): the conversion vectorises.
    ((h >> 8) as i32 as f32 + 0.5) * (1.0 / 16777216.0)
}

/// Standard normal from `(seed, index)` by Box-Muller over two counter-based uniforms (the logarithm
/// and cosine in f64 by `exec::math`, so that runs of them vectorise; WGSL takes its own f32 ones).
#[inline(always)]
pub fn gauss(seed: [u32; 2], index: u32) -> f32 {
    let u1 = uniform01(seed, index, 0);
    let u2 = uniform01(seed, index, 1);
    let r = (-2.0 * std::f64::consts::LN_2 * super::math::log2(u1 as f64)).sqrt();
    (r * super::math::cos_turns(u2 as f64)) as f32
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

/// The bias polynomial along a row of fixed `(v, w)` as a polynomial in `u`: coefficient `a` of
/// `u^a` sums the terms of power `a` in u (in f64; the CPU's form of [`bias_poly`]).
pub fn bias_row(order: u32, coef: &[f32], v: f32, w: f32) -> [f64; 6] {
    let (v, w) = (v as f64, w as f64);
    let mut row = [0f64; 6];
    let mut t = 0usize;
    for (a, ra) in row.iter_mut().enumerate().take(order as usize + 1) {
        let mut vb = 1.0f64;
        for b in 0..=(order as usize - a) {
            let mut wc = 1.0f64;
            for _c in 0..=(order as usize - a - b) {
                *ra += coef[t] as f64 * vb * wc;
                t += 1;
                wc *= w;
            }
            vb *= v;
        }
    }
    row
}

/// The multiplicative bias `exp(sum_a row[a] u^a)` at `u` (Horner over all six coefficients, those
/// past the order being zero: a fixed length, so that runs vectorise; exp in f64 by `exec::math`).
#[inline(always)]
pub fn bias_factor(row: &[f64; 6], u: f32) -> f32 {
    let u = u as f64;
    let p = ((((row[5] * u + row[4]) * u + row[3]) * u + row[2]) * u + row[1]) * u + row[0];
    super::math::exp2(p * std::f64::consts::LOG2_E) as f32
}

impl PointKernel {
    /// Applies the kernel to one voxel.
    #[inline]
    pub fn eval(&self, x: f32, l: usize, ijk: [usize; 3], shape: [usize; 3]) -> f32 {
        if self.skip_zero && x == 0.0 {
            return 0.0;
        }
        let mut y = (x * self.pre - self.sub) * self.mul;
        if self.gamma != 1.0 {
            y = super::math::pow(y.max(0.0), self.gamma);
        }
        y = y * self.post + self.add;
        if self.noise_std > 0.0 {
            y += self.noise_mean + self.noise_std * gauss(self.noise_seed, l as u32);
        }
        if self.bias_order > 0 {
            let u = unit_coord(ijk[0], shape[0]);
            let v = unit_coord(ijk[1], shape[1]);
            let w = unit_coord(ijk[2], shape[2]);
            let row = bias_row(self.bias_order, &self.bias, v, w);
            y *= bias_factor(&row, u);
        }
        y.clamp(self.lo, self.hi)
    }

    /// A bound on |output| for inputs with |x| <= `m`, when the kernel is affine (no gamma, noise or
    /// bias) and no step of its f32 arithmetic can pass a quarter of the f32 range; `None` otherwise.
    /// With such a bound the output needs no finiteness scan.
    pub fn output_bound(&self, m: f64) -> Option<f64> {
        if self.positional() || self.gamma != 1.0 {
            return None;
        }
        let lim = (f32::MAX / 4.0) as f64;
        let a = m * (self.pre as f64).abs() + (self.sub as f64).abs();
        let b = a * (self.mul as f64).abs();
        let c = b * (self.post as f64).abs();
        let d = c + (self.add as f64).abs();
        // NaN fails every comparison.
        [m, a, b, c, d].iter().all(|v| *v <= lim).then_some(d)
    }

    /// True when the kernel needs voxel positions (noise, bias field).
    pub fn positional(&self) -> bool {
        self.noise_std > 0.0 || self.bias_order > 0
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

/// `(pre, sub * pre, mul / pre)` for `(x - sub) * mul`, with `pre` the largest power of two <= 1 that
/// keeps `mul / pre` a normal f32 (>= 2^-120): `pre` is 1, and the kernel bit-identical to the plain
/// form, unless `|mul| < 2^-120`, which only a range near the f32 limit gives (`1 / 3e38`). A GPU that
/// flushes subnormals would otherwise multiply by zero.
pub fn prescaled(sub: f64, mul: f64) -> (f32, f32, f32) {
    let mut pre = 1.0f64;
    if mul != 0.0 && mul.is_finite() {
        while (mul / pre).abs() < 2f64.powi(-120) {
            pre *= 0.5;
        }
    }
    (pre as f32, (sub * pre) as f32, (mul / pre) as f32)
}

/// z-score kernel from mask statistics; a constant (or empty) selection maps to 0, never NaN.
pub fn zscore_params(count: usize, mean: f64, std: f64, skip_zero: bool) -> PointKernel {
    let ok = count > 0 && std > 0.0 && std.is_finite();
    let (pre, sub, mul) = prescaled(mean, if ok { 1.0 / std } else { 0.0 });
    PointKernel {
        pre,
        sub,
        mul,
        skip_zero,
        ..identity()
    }
}

/// min-max kernel mapping `[lo, hi]` to `[a, b]`; a constant image maps to `a`. Written as
/// `x * mul + add` with both computed in f64, so an image spanning more than f32 can (values near
/// +-3.4e38) still maps into `[a, b]` (`x - lo` would overflow).
pub fn minmax_params(lo: f32, hi: f32, a: f64, b: f64) -> PointKernel {
    let range = hi as f64 - lo as f64;
    let mul = if range > 0.0 { (b - a) / range } else { 0.0 };
    let (pre, _, mul32) = prescaled(0.0, mul);
    PointKernel {
        pre,
        mul: mul32,
        add: (a - lo as f64 * mul) as f32,
        lo: a as f32,
        hi: b as f32,
        ..identity()
    }
}

/// Gamma on the image's own range (nnU-Net style, works for negative intensities):
/// `((x - min) / range) ^ gamma * range + min`.
pub fn gamma_params(lo: f32, hi: f32, gamma: f64) -> PointKernel {
    let range = hi - lo;
    // The f32 reciprocal as always; f64 only where that would be subnormal (range near f32's limit).
    let m32 = if range > 0.0 { 1.0 / range } else { 0.0 };
    let m = if m32.abs() >= 2f32.powi(-120) || m32 == 0.0 {
        m32 as f64
    } else {
        1.0 / range as f64
    };
    let (pre, sub, mul) = prescaled(lo as f64, m);
    PointKernel {
        pre,
        sub,
        mul,
        gamma: gamma as f32,
        post: range,
        add: lo,
        ..identity()
    }
}

/// The statistics an op needs, and the kernel built from them (shared by both executors).
pub enum Needs {
    /// A point kernel that needs no statistics.
    None(PointKernel),
    /// Moments (and min, max) of the image over the first label map's nonzero voxels: computed on
    /// the host by both executors ([`label_masked_stats`]).
    LabelStats,
    /// Moments of the image.
    Stats {
        /// Over nonzero voxels only.
        nonzero: bool,
    },
    /// Minimum and maximum.
    MinMax,
    /// Percentiles of the image.
    Percentiles([f64; 2]),
    /// A blur, not a point kernel.
    Blur,
    /// Two resampling passes (simulate_low_resolution), not a point kernel.
    LowResolution,
    /// A k-space artefact (FFT line filters, spike waves, motion copies: `exec/kspace.rs`).
    KSpace,
    /// Piecewise maps from the image's own quantiles (histogram standardisation, hist_scale): run on
    /// the host by both executors.
    Host,
}

/// Kernel of an op given statistics (`count, mean, std, min, max`) or percentiles. The GPU builds the
/// kernels of zscore, minmax, gamma and contrast on the device with the same f64 expressions
/// (`shaders/stat_kernel.wgsl`, with [`zscore_params`], [`minmax_params`], [`gamma_params`] and
/// [`prescaled`]): keep them in step.
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
        IntensityOp::Minmax { min, max, .. } => {
            minmax_params(st.min as f32, st.max as f32, min, max)
        }
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
        | IntensityOp::LowResolution { .. }
        | IntensityOp::KSpace(_)
        | IntensityOp::HistogramStandardize { .. }
        | IntensityOp::HistScale { .. } => identity(),
    }
}

/// Statistics of the image voxels where the label map is nonzero (same grid): count, mean,
/// population std, min, max. Both executors call this, so their kernels are built from the same numbers.
pub fn label_masked_stats(image: &[f32], label: &crate::voxels::Voxels) -> crate::volume::Stats {
    use rayon::prelude::*;
    let vals: Vec<f32> = crate::with_voxels!(label, m => image
        .par_iter()
        .zip(m.par_iter())
        .filter(|(_, l)| crate::voxels::Voxel::to_f64(**l) != 0.0)
        .map(|(x, _)| *x)
        .collect());
    crate::stats::stats(&vals, None)
}

/// What an op needs computed from the data before its kernel can be built.
pub fn needs(op: &IntensityOp) -> Needs {
    match *op {
        IntensityOp::PercentileClip { low, high } => Needs::Percentiles([low, high]),
        IntensityOp::Zscore {
            mask: ZMask::Label, ..
        }
        | IntensityOp::Minmax {
            mask: Some(ZMask::Label),
            ..
        } => Needs::LabelStats,
        IntensityOp::Zscore { mask } => Needs::Stats {
            nonzero: mask == ZMask::Nonzero,
        },
        IntensityOp::Minmax {
            mask: Some(ZMask::Nonzero),
            ..
        } => Needs::Stats { nonzero: true },
        IntensityOp::Contrast { .. } => Needs::Stats { nonzero: false },
        IntensityOp::Minmax { .. } | IntensityOp::Gamma { .. } => Needs::MinMax,
        IntensityOp::Blur { .. } => Needs::Blur,
        IntensityOp::LowResolution { .. } => Needs::LowResolution,
        IntensityOp::KSpace(_) => Needs::KSpace,
        IntensityOp::HistogramStandardize { .. } | IntensityOp::HistScale { .. } => Needs::Host,
        _ => Needs::None(kernel_from(op, &EMPTY_STATS, None)),
    }
}

pub(crate) const EMPTY_STATS: crate::volume::Stats = crate::volume::Stats {
    count: 0,
    min: 0.0,
    max: 0.0,
    mean: 0.0,
    std: 0.0,
};

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

/// Interpolation of one volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interp {
    /// Trilinear (images).
    Linear,
    /// Nearest neighbour (label maps).
    Nearest,
}

/// Outside handling of one volume, resolved to a number or edge replication.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outside {
    /// A constant.
    Value(f32),
    /// The nearest border voxel.
    Edge,
}

/// Resolves the fill of a map for one volume: labels get 0 for numeric fills (never a new label).
pub fn outside_for(fill: Fill, v: &Volume) -> Outside {
    match (fill, v.kind) {
        (Fill::Edge, _) => Outside::Edge,
        (Fill::Min, _) => Outside::Value(crate::stats::min_max(&v.values()).0),
        (Fill::Value(x), Kind::Image) => Outside::Value(x as f32),
        (Fill::Value(_), Kind::Label) => Outside::Value(0.0),
    }
}

/// Interpolation used for a volume kind.
pub fn interp_for(kind: Kind) -> Interp {
    match kind {
        Kind::Image => Interp::Linear,
        Kind::Label => Interp::Nearest,
    }
}

/// Number of histogram bins used to locate a percentile before the exact selection.
pub const PERCENTILE_BINS: usize = 1 << 16;

/// Bin of a value: monotonic in `x` (f32 subtraction and multiplication by a positive constant are
/// monotonic), so bins partition the sorted order. Shared formula with the shader.
#[inline]
pub fn value_bin(x: f32, min: f32, scale: f32, bins: usize) -> usize {
    (((x - min) * scale) as usize).min(bins - 1)
}

/// Gaussian truncation radius of the elastic field, in sigmas.
pub const FIELD_TRUNCATE: f64 = 4.0;

/// Coarse grid of a field: fine coordinate `q` maps to coarse coordinate `q / step + offset`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// Nodes per axis.
    pub shape: [usize; 3],
    /// Output voxels between nodes per axis.
    pub step: [f32; 3],
    /// Position of node 0 in output voxels.
    pub offset: [f32; 3],
    /// Multiplies each interpolated component (alpha and the noise normalisation).
    pub scale: [f32; 3],
}

/// The coarse layout of a field spec on a fine grid of `shape` (shared with the GPU).
pub fn layout(spec: &FieldSpec, shape: [usize; 3]) -> Layout {
    match spec {
        FieldSpec::Gaussian {
            sigma_vox,
            alpha_vox,
            ..
        } => {
            // Four coarse nodes per sigma from sigma 8 on (a fractional step: the smoothing then
            // always has 33 taps on the fewest nodes the interpolation bound allows), one node per
            // voxel below (the textbook recipe, exactly).
            let f = sigma_vox.map(|s| if s < 8.0 { 1.0 } else { s / 4.0 });
            let mut out_shape = [0usize; 3];
            let mut offset = [0f32; 3];
            for a in 0..3 {
                let sc = sigma_vox[a] / f[a];
                let margin = (FIELD_TRUNCATE * sc).ceil() as usize;
                out_shape[a] = ((shape[a] as f64 - 1.0) / f[a]).ceil() as usize + 1 + 2 * margin;
                offset[a] = margin as f32;
            }
            let norm = 1.0 / (f[0] * f[1] * f[2]).sqrt();
            Layout {
                shape: out_shape,
                step: f.map(|x| x as f32),
                offset,
                scale: [0, 1, 2].map(|a| (alpha_vox[a] * norm) as f32),
            }
        }
        FieldSpec::Bspline { control_points, .. } => {
            let cell = bspline_cell(shape, *control_points);
            let f = cell.map(|c| (c / 4.0).floor().max(1.0));
            Layout {
                shape: [0, 1, 2].map(|a| ((shape[a] as f64 - 1.0) / f[a]).ceil() as usize + 1),
                step: f.map(|x| x as f32),
                offset: [0.0; 3],
                scale: [1.0; 3],
            }
        }
    }
}

/// Fine voxels per control cell: the volume spans control points 1 ..= n - 2.
pub fn bspline_cell(shape: [usize; 3], cp: [usize; 3]) -> [f64; 3] {
    [0, 1, 2].map(|a| ((shape[a] as f64 - 1.0) / (cp[a] as f64 - 3.0)).max(1e-9))
}

/// `floor` for |x| < 2^31 without a libm call (the default x86-64 target has no SSE4.1 `roundss`).
#[inline(always)]
pub fn floor(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// `a + (b - a) t` in this operation order, as the shaders compute it (`lerp3` in `shaders/resample.wgsl`).
#[inline(always)]
pub fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound that lets a run skip its output scan holds for every input within it, and is
    /// refused where an f32 step could leave a quarter of the range.
    #[test]
    fn output_bounds_hold_and_refuse_what_could_overflow() {
        let k = zscore_params(10, 100.0, 0.5, false);
        let b = k.output_bound(1e3).unwrap();
        for x in [-1e3f32, -1.0, 0.0, 99.5, 1e3] {
            assert!((k.eval(x, 0, [0; 3], [1; 3]) as f64).abs() <= b);
        }
        assert_eq!(identity().output_bound(2.0), Some(2.0));
        assert_eq!(k.output_bound(1e38), None);
        assert_eq!(minmax_params(0.0, 1.0, -3e38, 3e38).output_bound(1.0), None);
        assert_eq!(gamma_params(0.0, 1.0, 2.0).output_bound(1.0), None);
        assert_eq!(identity().output_bound(f64::NAN), None);
    }

    /// A GPU flushes subnormal floats to zero: no kernel coefficient may be subnormal, and the scaled
    /// form must give the plain form's result (exactly when `pre` is 1).
    #[test]
    fn coefficients_stay_normal_near_the_f32_limit() {
        for (mean, std) in [(0.0, 1.7e38), (1e38, 3.0e38), (5.0, 2.0)] {
            let k = zscore_params(10, mean, std, false);
            assert!(k.mul.is_normal(), "{std}: mul {}", k.mul);
            assert!(k.pre > 0.0 && k.pre <= 1.0 && k.pre.log2().fract() == 0.0);
            let x = 2.5e38f32.min(std as f32);
            let want = ((x as f64 - mean) / std) as f32;
            assert!((k.eval(x, 0, [0; 3], [1; 3]) - want).abs() < 1e-6, "{std}");
            if std < 1e30 {
                assert_eq!(k.pre, 1.0);
                assert_eq!(k.mul, (1.0 / std) as f32);
            }
        }
        let m = minmax_params(-3e38, 3e38, 0.0, 1.0);
        assert!(m.mul.is_normal());
        assert!((m.eval(3e38, 0, [0; 3], [1; 3]) - 1.0).abs() < 1e-6);
        assert!(m.eval(-3e38, 0, [0; 3], [1; 3]).abs() < 1e-6);
        let g = gamma_params(-1.5e38, 1.5e38, 1.0);
        assert!(g.mul.is_normal());
        assert!((g.eval(1e38, 0, [0; 3], [1; 3]) - 1e38).abs() < 1e32);
    }
}
