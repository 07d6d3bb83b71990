//! Point-wise intensity kernels (CPU twin of `shaders/intensity.wgsl`) and separable Gaussian blur (twin
//! of `shaders/blur.wgsl`). Statistics come from `reduce`.

use super::reduce;
use crate::error::Result;
use crate::exec::kernel::{
    bias_factor, bias_row, blur_sigmas, gauss, gaussian_weights, kernel_from, needs, unit_coord,
    Needs, PointKernel, EMPTY_STATS,
};
use crate::grid::Grid;
use crate::transform::IntensityOp;
use rayon::prelude::*;

/// Applies a kernel in place (rayon over slices).
pub fn apply_kernel(k: &PointKernel, data: &mut [f32], shape: [usize; 3]) {
    let [nx, ny, _] = shape;
    let slice = nx * ny;
    if k.bias_order == 0 {
        // Runs of 1024 voxels through a stack buffer (the run functions read and write apart).
        data.par_chunks_mut(1 << 16)
            .enumerate()
            .for_each(|(c, xs)| {
                let mut tmp = [0f32; 1024];
                for (r, part) in xs.chunks_mut(1024).enumerate() {
                    let n = part.len();
                    k.point_run((c << 16) + (r << 10), part, &mut tmp[..n]);
                    part.copy_from_slice(&tmp[..n]);
                }
            });
        return;
    }
    // A bias field: row by row (its polynomial in u once per row), through a row buffer.
    let plain = k.unbiased();
    data.par_chunks_mut(slice).enumerate().for_each(|(kz, xs)| {
        let mut tmp = vec![0f32; nx];
        for (j, row) in xs.chunks_mut(nx).enumerate() {
            k.bias_run(&plain, [0, j, kz], shape, row, &mut tmp);
            row.copy_from_slice(&tmp);
        }
    });
}

/// One separable pass along `axis` with edge replication: `out[p] = sum w[t] * in[clamp(p + t - r)]`,
/// accumulated in f32 in tap order (as the shader does). Vectorised across outputs, sixteen at a time
/// held in registers over all taps: along y and z from the taps' rows, along x from the row edge-padded
/// once.
pub fn blur_axis(src: &[f32], shape: [usize; 3], axis: usize, w: &[f32]) -> Result<Vec<f32>> {
    let mut out = super::alloc::output(src.len())?;
    blur_axis_within(src, shape, axis, w, &shape.map(|n| 0..n), &mut out);
    Ok(out)
}

/// [`blur_axis`] into `out` (the shape of `src`) for the voxels of `bx` only (x, y, z ranges): the
/// same values there, the rest of `out` untouched.
pub fn blur_axis_within(
    src: &[f32],
    shape: [usize; 3],
    axis: usize,
    w: &[f32],
    bx: &[std::ops::Range<usize>; 3],
    out: &mut [f32],
) {
    let r = (w.len() / 2) as i64;
    let [nx, ny, nz] = shape;
    let xs = bx[0].clone();
    let row_at = |j: usize, k: usize| &src[(k * ny + j) * nx..(k * ny + j + 1) * nx];
    let clamp = |p: i64, n: usize| p.clamp(0, n as i64 - 1) as usize;
    if xs.is_empty() || bx[1].is_empty() || bx[2].is_empty() {
        return;
    }
    if axis == 2 {
        // Along z, a task takes a run of slices and walks y outside, z inside: the taps' rows of one y
        // (the run plus 2r) stay in cache from one output row to the next.
        out.par_chunks_mut(nx * ny * Z_RUN)
            .enumerate()
            .for_each_init(Vec::new, |rows, (c, dst)| {
                let k0 = c * Z_RUN;
                let ks = k0.max(bx[2].start)..(k0 + dst.len() / (nx * ny)).min(bx[2].end);
                for j in bx[1].clone() {
                    for k in ks.clone() {
                        rows.clear();
                        rows.extend(
                            (0..w.len()).map(|t| {
                                &row_at(j, clamp(k as i64 + t as i64 - r, nz))[xs.clone()]
                            }),
                        );
                        let at = ((k - k0) * ny + j) * nx;
                        taps(&mut dst[at + xs.start..at + xs.end], w, rows, 0);
                    }
                }
            });
        return;
    }
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .filter(|(k, _)| bx[2].contains(k))
        .for_each(|(k, dst)| {
            let mut pad = vec![0f32; xs.len() + 2 * r as usize];
            let mut rows: Vec<&[f32]> = Vec::with_capacity(w.len());
            for j in bx[1].clone() {
                let row = &mut dst[j * nx + xs.start..j * nx + xs.end];
                if axis == 0 {
                    let s = row_at(j, k);
                    for (q, p) in pad.iter_mut().enumerate() {
                        *p = s[clamp(xs.start as i64 + q as i64 - r, nx)];
                    }
                    // Tap t reads pad[t + i]: one row, shifted.
                    taps(row, w, &[&pad[..]], 1);
                } else {
                    rows.clear();
                    rows.extend(
                        (0..w.len())
                            .map(|t| &row_at(clamp(j as i64 + t as i64 - r, ny), k)[xs.clone()]),
                    );
                    taps(row, w, &rows, 0);
                }
            }
        });
}

/// Output slices per task of a z pass of [`blur_axis`].
const Z_RUN: usize = 16;

crate::simd_fn! {
    /// `dst[i] = sum_t w[t] * rows[t][i]` (`shift` 0), or `sum_t w[t] * rows[0][i + t]` (`shift` 1),
    /// summed in tap order from 0 in f32 (as the shader does; AVX2 where the CPU has it, the same sums).
    fn taps(dst: &mut [f32], w: &[f32], rows: &[&[f32]], shift: usize) -> () = taps_body;
}

#[inline(always)]
fn taps_body(dst: &mut [f32], w: &[f32], rows: &[&[f32]], shift: usize) {
    // Sixteen outputs stay in registers across all taps (one store each, not one per tap).
    const B: usize = 16;
    let n = dst.len();
    let row = |t: usize| if shift == 0 { rows[t] } else { &rows[0][t..] };
    let mut i0 = 0;
    while i0 + B <= n {
        let mut acc = [0f32; B];
        for (t, &wt) in w.iter().enumerate() {
            let s = &row(t)[i0..i0 + B];
            for l in 0..B {
                acc[l] += wt * s[l];
            }
        }
        dst[i0..i0 + B].copy_from_slice(&acc);
        i0 += B;
    }
    for (i, d) in dst.iter_mut().enumerate().skip(i0) {
        let mut acc = 0f32;
        for (t, &wt) in w.iter().enumerate() {
            acc += wt * row(t)[i];
        }
        *d = acc;
    }
}

/// Separable Gaussian blur (sigma in voxels per axis), x then y then z.
pub fn blur(data: &[f32], shape: [usize; 3], sigma_vox: [f64; 3]) -> Result<Vec<f32>> {
    let mut cur = super::alloc::copy_of(data)?;
    for a in 0..3 {
        if sigma_vox[a] > 0.0 && shape[a] > 1 {
            let next = blur_axis(&cur, shape, a, &gaussian_weights(sigma_vox[a]))?;
            super::alloc::recycle(std::mem::replace(&mut cur, next));
        }
    }
    Ok(cur)
}

/// The point kernel of an op from statistics of `data` (and of `mask`, the first label map's voxels,
/// for `"mask": "label"`), or `None` for the ops that are not point kernels.
fn kernel_for(
    op: &IntensityOp,
    data: &[f32],
    mask: Option<&crate::voxels::Voxels>,
) -> Result<Option<PointKernel>> {
    Ok(Some(match needs(op) {
        Needs::None(k) => k,
        Needs::LabelStats => {
            let m = mask.ok_or_else(|| {
                crate::Error::invalid(
                    "\"mask\": \"label\" takes its voxels from the subject's first label map, and \
                     this subject has none: add a label map (--label) or use \"nonzero\"/\"all\"",
                )
            })?;
            kernel_from(op, &crate::exec::kernel::label_masked_stats(data, m), None)
        }
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
        Needs::Blur | Needs::Host | Needs::LowResolution | Needs::KSpace => return Ok(None),
    }))
}

/// The first stage's point kernels, one per image, computed with the input's finiteness scan fused
/// into the statistics pass (z-score, min-max and percentile statistics read every voxel anyway), and
/// the largest |value| over the images (+inf or NaN when a voxel is not finite). `None` for ops whose
/// kernel needs no statistic or the label map; those scan separately.
pub fn scan_first(op: &IntensityOp, images: &[crate::Volume]) -> Option<(Vec<PointKernel>, f32)> {
    let mut kernels = Vec::with_capacity(images.len());
    let mut largest = 0f32;
    for img in images {
        let data = img.data.as_f32()?;
        let (k, m) = match needs(op) {
            Needs::Stats { nonzero } => {
                let (st, m) = reduce::stats_scan(data, nonzero);
                (kernel_from(op, &st, None), m)
            }
            Needs::MinMax => {
                let (lo, hi, m) = reduce::min_max_scan(data);
                let st = crate::volume::Stats {
                    min: lo as f64,
                    max: hi as f64,
                    ..EMPTY_STATS
                };
                (kernel_from(op, &st, None), m)
            }
            Needs::Percentiles(q) => {
                let (p, m) = reduce::percentiles_scan(data, &q);
                (kernel_from(op, &EMPTY_STATS, Some([p[0], p[1]])), m)
            }
            _ => return None,
        };
        // A NaN marks a NaN voxel: keep it.
        if m.is_nan() || m > largest {
            largest = m;
        }
        kernels.push(k);
    }
    Some((kernels, largest))
}

/// Applies an intensity op to one image in place.
pub fn apply(op: &IntensityOp, data: &mut crate::voxels::Buf<f32>, grid: &Grid) -> Result<()> {
    apply_masked(op, data, grid, None)
}

/// [`apply`] with the subject's first label map (`"mask": "label"` takes its nonzero voxels).
pub fn apply_masked(
    op: &IntensityOp,
    data: &mut crate::voxels::Buf<f32>,
    grid: &Grid,
    mask: Option<&crate::voxels::Voxels>,
) -> Result<()> {
    apply_masked_with(op, data, grid, mask, None)
}

/// [`apply_masked`] with the op's point kernel when the caller has it (from [`scan_first`]: the
/// statistics are not computed again).
pub fn apply_masked_with(
    op: &IntensityOp,
    data: &mut crate::voxels::Buf<f32>,
    grid: &Grid,
    mask: Option<&crate::voxels::Voxels>,
    known: Option<&PointKernel>,
) -> Result<()> {
    let k = match known {
        Some(k) => Some(k.clone()),
        None => kernel_for(op, data, mask)?,
    };
    match k {
        Some(k) => apply_kernel(&k, data, grid.shape),
        None => match op {
            IntensityOp::Blur { sigma_mm } => {
                *data = blur(data, grid.shape, blur_sigmas(*sigma_mm, grid))?.into()
            }
            IntensityOp::HistogramStandardize { landmarks } => {
                super::quantile::standardize(data, landmarks)
            }
            IntensityOp::HistScale { bins } => super::quantile::hist_scale(data, *bins),
            IntensityOp::LowResolution { zoom } => {
                *data = low_resolution(data, grid, *zoom)?.into()
            }
            IntensityOp::KSpace(k) => *data = super::kspace::apply(k, data, grid)?.into(),
            _ => unreachable!("every other op has a point kernel"),
        },
    }
    Ok(())
}

/// simulate_low_resolution of one image: nearest onto the coarse grid (same extent), trilinear back,
/// the edge replicated outside (CPU twin of the GPU's two resample passes).
pub fn low_resolution(data: &[f32], grid: &Grid, zoom: [f64; 3]) -> Result<Vec<f32>> {
    use super::resample::{resample, resample_nearest, Outside, Params};
    let Some(down) = crate::transform::spatial::low_resolution(grid, zoom)? else {
        return Ok(data.to_vec());
    };
    let low = resample_nearest(
        data,
        None,
        &Params::new(&down.pull, grid.shape, down.grid.shape),
    )?;
    let up = crate::grid::mat_inv(&down.pull).expect("a resize pull-back is invertible");
    resample(&low, &down.grid, &up, grid, Outside::Edge)
}

/// Applies an intensity op to one image into a new buffer (the input is read once more, not copied).
pub fn apply_to_new(op: &IntensityOp, data: &[f32], grid: &Grid) -> Result<Vec<f32>> {
    apply_to_new_masked(op, data, grid, None)
}

/// [`apply_to_new`] with the subject's first label map (`"mask": "label"`).
pub fn apply_to_new_masked(
    op: &IntensityOp,
    data: &[f32],
    grid: &Grid,
    mask: Option<&crate::voxels::Voxels>,
) -> Result<Vec<f32>> {
    apply_to_new_with(op, data, grid, mask, None)
}

/// [`apply_to_new_masked`] with the op's point kernel when it is already known (from [`scan_first`]).
pub fn apply_to_new_with(
    op: &IntensityOp,
    data: &[f32],
    grid: &Grid,
    mask: Option<&crate::voxels::Voxels>,
    known: Option<&PointKernel>,
) -> Result<Vec<f32>> {
    let k = match known {
        Some(k) => Some(k.clone()),
        None => kernel_for(op, data, mask)?,
    };
    let Some(k) = k else {
        if let IntensityOp::Blur { sigma_mm } = op {
            return blur(data, grid.shape, blur_sigmas(*sigma_mm, grid));
        }
        if let IntensityOp::LowResolution { zoom } = op {
            return low_resolution(data, grid, *zoom);
        }
        if let IntensityOp::KSpace(k) = op {
            return super::kspace::apply(k, data, grid);
        }
        let mut out = data.to_vec().into();
        apply(op, &mut out, grid)?;
        return Ok(out.into_owned_vec());
    };
    let shape = grid.shape;
    let mut out = super::alloc::output(data.len())?;
    if k.bias_order == 0 {
        out.par_chunks_mut(1 << 16)
            .zip(data.par_chunks(1 << 16))
            .enumerate()
            .for_each(|(c, (o, x))| k.point_run(c << 16, x, o));
        return Ok(out);
    }
    out.copy_from_slice(data);
    apply_kernel(&k, &mut out, shape);
    Ok(out)
}

/// CPU runs of the point kernels (`exec::kernel::PointKernel`; `eval` is the per-voxel reference they
/// equal bit for bit).
impl PointKernel {
    /// The kernel up to its bias field: no bias, clamp or zero rule (what [`bias_run`](Self::bias_run)
    /// applies before the factor).
    pub(crate) fn unbiased(&self) -> PointKernel {
        PointKernel {
            bias_order: 0,
            bias: Vec::new(),
            lo: f32::NEG_INFINITY,
            hi: f32::INFINITY,
            skip_zero: false,
            ..self.clone()
        }
    }

    /// Applies a kernel with a bias field to the voxels `i0 ..` of row `(j, k)` of a volume of `shape`
    /// (`out[i] = eval(x[i], l, (i0 + i, j, k))`), the row's polynomial in u computed once and every
    /// voxel's exponential vectorised (with AVX2 where present); the same values as `eval`. `plain`:
    /// [`unbiased`](Self::unbiased), made once per volume.
    pub(crate) fn bias_run(
        &self,
        plain: &PointKernel,
        ijk0: [usize; 3],
        shape: [usize; 3],
        x: &[f32],
        out: &mut [f32],
    ) {
        let v = unit_coord(ijk0[1], shape[1]);
        let w = unit_coord(ijk0[2], shape[2]);
        let row = bias_row(self.bias_order, &self.bias, v, w);
        let l0 = (ijk0[2] * shape[1] + ijk0[1]) * shape[0] + ijk0[0];
        plain.point_run(l0, x, out);
        bias_apply(self, &row, ijk0[0], shape[0], x, out);
    }

    /// Applies a kernel without a bias field to a run of voxels whose first linear index is `l0`
    /// (`out[i] = eval(x[i], l0 + i)`): gamma and noise vectorised (with AVX2 where present), the
    /// same values as `eval`.
    #[inline]
    pub(crate) fn point_run(&self, l0: usize, x: &[f32], out: &mut [f32]) {
        debug_assert!(self.bias_order == 0);
        match (self.gamma != 1.0, self.noise_std > 0.0) {
            // Branch-free, the compiler vectorises it; same arithmetic as `eval`.
            (false, false) => affine_run(self, x, out),
            (true, false) => gamma_run(self, l0, x, out),
            (false, true) => noise_run(self, l0, x, out),
            (true, true) => gamma_noise_run(self, l0, x, out),
        }
    }
}

crate::simd_fn! {
    fn affine_run(k: &PointKernel, x: &[f32], out: &mut [f32]) -> () = affine_run_body;
}

crate::simd_fn! {
    avx512: fn gamma_run(k: &PointKernel, l0: usize, x: &[f32], out: &mut [f32]) -> () =
        point_run_body::<true, false>;
}

crate::simd_fn! {
    avx512: fn noise_run(k: &PointKernel, l0: usize, x: &[f32], out: &mut [f32]) -> () =
        point_run_body::<false, true>;
}

crate::simd_fn! {
    avx512: fn gamma_noise_run(k: &PointKernel, l0: usize, x: &[f32], out: &mut [f32]) -> () =
        point_run_body::<true, true>;
}

crate::simd_fn! {
    avx512: fn bias_apply(k: &PointKernel, row: &[f64; 6], i0: usize, n: usize, x: &[f32], out: &mut [f32]) -> () =
        bias_apply_body;
}

/// `out[i] *= bias at u(i0 + i)`, then `eval`'s clamp and zero rule (`x` the run's inputs).
#[inline(always)]
fn bias_apply_body(
    k: &PointKernel,
    row: &[f64; 6],
    i0: usize,
    n: usize,
    x: &[f32],
    out: &mut [f32],
) {
    for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        // unit_coord, through i32 so that it vectorises.
        let u = if n > 1 {
            -1.0 + 2.0 * crate::simd::index_f32(i0 + i) / (n - 1) as f32
        } else {
            0.0
        };
        let y = (*o * bias_factor(row, u)).clamp(k.lo, k.hi);
        *o = if k.skip_zero && v == 0.0 { 0.0 } else { y };
    }
}

/// `eval` over a run without a bias field, specialised on gamma and noise (no branch per voxel).
#[inline(always)]
fn point_run_body<const GAMMA: bool, const NOISE: bool>(
    k: &PointKernel,
    l0: usize,
    x: &[f32],
    out: &mut [f32],
) {
    let (pre, sub, mul, post, add) = (k.pre, k.sub, k.mul, k.post, k.add);
    let (g, mean, std, seed) = (k.gamma, k.noise_mean, k.noise_std, k.noise_seed);
    let skip = k.skip_zero;
    for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        let mut y = (v * pre - sub) * mul;
        if GAMMA {
            y = crate::exec::math::pow(y.max(0.0), g);
        }
        y = y * post + add;
        if NOISE {
            y += mean + std * gauss(seed, (l0 + i) as u32);
        }
        let y = y.clamp(k.lo, k.hi);
        *o = if skip && v == 0.0 { 0.0 } else { y };
    }
}

#[inline(always)]
fn affine_run_body(k: &PointKernel, x: &[f32], out: &mut [f32]) {
    let (pre, sub, mul, post, add, lo, hi) = (k.pre, k.sub, k.mul, k.post, k.add, k.lo, k.hi);
    let skip = k.skip_zero;
    for (o, &v) in out.iter_mut().zip(x) {
        let y = ((v * pre - sub) * mul * post + add).max(lo).min(hi);
        *o = if skip && v == 0.0 { 0.0 } else { y };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::kernel::{gamma_params, identity, zscore_params};

    /// The run functions give `eval`'s values bit for bit (gamma, noise, both, neither; zeros kept,
    /// clamps; runs starting at any linear index; bias fields row by row).
    #[test]
    fn point_runs_equal_eval_bit_for_bit() {
        let xs: Vec<f32> = (0..3000)
            .map(|i| match i % 7 {
                0 => 0.0,
                1 => -(i as f32) * 0.37,
                _ => (i as f32 * 0.731).sin() * 1e3,
            })
            .collect();
        let base = gamma_params(-1e3, 1e3, 0.61);
        let noisy = |k: PointKernel| PointKernel {
            noise_std: 2.5,
            noise_mean: 0.25,
            noise_seed: [7, 99],
            ..k
        };
        let kernels = [
            zscore_params(100, 3.0, 40.0, true),
            base.clone(),
            PointKernel {
                lo: -5.0,
                hi: 700.0,
                skip_zero: true,
                ..gamma_params(-1e3, 1e3, 1.7)
            },
            noisy(identity()),
            noisy(base),
        ];
        // Bias fields, row by row (with gamma, noise, clamps and zeros kept).
        let shape = [xs.len() / 3, 3, 1];
        for k in [&kernels[2], &kernels[4], &kernels[0]] {
            let biased = PointKernel {
                bias_order: 3,
                bias: (0..20).map(|t| 0.1 * (t as f32 * 0.7).sin()).collect(),
                ..k.clone()
            };
            let plain = biased.unbiased();
            for j in 0..3 {
                let row = &xs[j * shape[0]..(j + 1) * shape[0]];
                let mut out = vec![0f32; row.len()];
                biased.bias_run(&plain, [0, j, 0], shape, row, &mut out);
                for (i, (&x, &o)) in row.iter().zip(&out).enumerate() {
                    let l = j * shape[0] + i;
                    let want = biased.eval(x, l, [i, j, 0], shape);
                    assert_eq!(o.to_bits(), want.to_bits(), "bias at {i}, {j}");
                }
            }
        }
        for k in &kernels {
            for l0 in [0usize, 5, 1 << 20] {
                let mut out = vec![0f32; xs.len()];
                k.point_run(l0, &xs, &mut out);
                for (i, (&x, &o)) in xs.iter().zip(&out).enumerate() {
                    let want = k.eval(x, l0 + i, [0; 3], [1; 3]);
                    assert_eq!(o.to_bits(), want.to_bits(), "{k:?} at {}", l0 + i);
                }
            }
        }
    }
}
