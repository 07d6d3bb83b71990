//! The fused resampler (CPU twin of `shaders/resample.wgsl`).
//!
//! For output voxel `(i, j, k)` the input coordinate is computed exactly as the shader does, in f32:
//! `row = m[r][3] + m[r][1] * j + m[r][2] * k` once per row, then `x = row + m[r][0] * i`.
//! Trilinear interpolation uses grid-constant semantics (outside neighbours take the fill and are
//! blended) or edge replication; nearest rounds with `floor(x + 0.5)`.
//!
//! Speed: rows are split into an interior span, where all 8 neighbours are inside and no bounds checks are
//! made, and border spans with checks. Interior voxels go in runs of 64: indices and fractions eight
//! at a time, then blends eight at a time (AVX2; each pair of x neighbours is one 8-byte load). Maps
//! that are signed permutations with integer offsets (flip, crop, pad) are copies and take a separate
//! exact path (`copy.rs`; large crops past the cache, `stream.rs`; copies that check their values for
//! NaN as they go, `checked_copy.rs`); scale-and-shift maps (resize, resample) interpolate input rows along x once
//! (`scaled.rs`); the AVX2 bodies of the interior runs are in `x86.rs`; a subject the run owns is
//! resampled in its own buffers where the map allows (`owned.rs`).
//!
//! The row kernels (linear, nearest, integer map) share their span and zone set-up and mirror
//! `shaders/resample*.wgsl` line for line; the displacement-field path (per-voxel coordinates through the
//! field, shared by every volume) is in `warped.rs`.

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

mod argmax;
mod checked;
mod checked_copy;
mod copy;
mod owned;
mod scaled;
mod span;
mod spec;
mod stream;
mod warped;
pub use argmax::sample_argmax_checked;
pub use checked::{sample_linear_checked, sample_nearest_checked};
use checked_copy::copy_checked;
pub use checked_copy::resample_subject_checked;
pub use copy::is_integer_map;
use copy::{integer_map, row_integer};
pub use owned::{resample_subject_owned, resample_subject_owned_checked};
use span::{box_inside, interior, reach, zones, RowSpan};
use spec::fill_of;
pub use spec::{label_fill, Spec};
use stream::{crop_streamed, store_fence, streamed_crop};
pub use warped::resample_many_field;

use crate::error::Result;
use crate::grid::{Grid, Mat4};
use crate::transform::SamplingMap;
use crate::volume::{Subject, Volume};
use crate::voxels::{Voxel, Voxels};
use rayon::prelude::*;

pub use crate::exec::kernel::{floor, interp_for, lerp, outside_for, Interp, Outside};

/// Parameters of one resampling pass shared by every volume of a subject (the shader's uniform).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Rows 0..3 of the 4x4 pull-back, as f32.
    pub m: [[f32; 4]; 3],
    /// Input shape.
    pub in_shape: [usize; 3],
    /// Output shape.
    pub out_shape: [usize; 3],
}

impl Params {
    /// Parameters of a pull-back by `matrix` (output voxel -> input voxel) between the shapes.
    pub fn new(matrix: &Mat4, in_shape: [usize; 3], out_shape: [usize; 3]) -> Params {
        let m = [0, 1, 2].map(|r| matrix[r].map(|v| v as f32));
        Params {
            m,
            in_shape,
            out_shape,
        }
    }

    /// Change of the input coordinate per output step along i.
    #[inline]
    pub fn step(&self) -> [f32; 3] {
        [self.m[0][0], self.m[1][0], self.m[2][0]]
    }

    /// Input coordinate of the row start `(0, j, k)` for each axis (the shader's per-row term).
    #[inline(always)]
    pub fn row_base(&self, j: usize, k: usize) -> [f32; 3] {
        let (jf, kf) = (j as f32, k as f32);
        let m = &self.m;
        // Written out (an array `map` here was an out-of-line call per row piece).
        [
            m[0][3] + m[0][1] * jf + m[0][2] * kf,
            m[1][3] + m[1][1] * jf + m[1][2] * kf,
            m[2][3] + m[2][1] * jf + m[2][2] * kf,
        ]
    }
}

/// Resamples every image (trilinear) and label map (nearest, in its own type) of a subject through one
/// map.
pub fn resample_subject(s: &Subject, map: &SamplingMap) -> Result<Subject> {
    let in_grid = s.grid().expect("subject has volumes");
    if map.is_identity(in_grid) {
        let mut out = s.clone();
        for v in out.images.iter_mut().chain(out.labels.iter_mut()) {
            v.grid = map.grid.clone();
        }
        return Ok(out);
    }
    let specs: Vec<Spec<'_>> = s
        .images
        .iter()
        .chain(&s.labels)
        .map(|v| Spec::under_map(v, map))
        .collect::<Result<_>>()?;
    let outs = match &map.field {
        None => resample_many(
            &specs,
            &Params::new(&map.total(), in_grid.shape, map.grid.shape),
        )?,
        Some(d) => {
            // Smoothed only where this sampling reads it.
            let lay = crate::exec::kernel::layout(&d.spec, d.grid.shape);
            let reach = super::field::reach(&lay, &map.post, map.grid.shape);
            let field =
                super::field::build_within(&d.spec, d.grid.shape, d.grid.spacing(), Some(reach))?;
            let outs = resample_many_field(&specs, map, in_grid.shape, &field)?;
            for c in field.comp {
                super::alloc::recycle(c);
            }
            outs
        }
    };
    let mut it = outs.into_iter();
    let mut rebuild = |v: &Volume| Volume {
        data: it.next().unwrap(),
        grid: map.grid.clone(),
        kind: v.kind,
        dtype: v.dtype,
    };
    Ok(Subject {
        images: s.images.iter().map(&mut rebuild).collect(),
        labels: s.labels.iter().map(&mut rebuild).collect(),
        names: s.names.clone(),
    })
}

/// Resamples one f32 array (trilinear) through a map onto `out_grid`.
pub fn resample(
    src: &[f32],
    in_grid: &Grid,
    matrix: &Mat4,
    out_grid: &Grid,
    outside: Outside,
) -> Result<Vec<f32>> {
    let p = Params::new(matrix, in_grid.shape, out_grid.shape);
    linear_volume(src, outside, &p)
}

/// Rows of output walked together inside each slab of slices (whole rows: every row of `TILE_J x
/// slab` before the next `TILE_J`), so that a rotated block reads a compact region of the input. Rows
/// are not split: the interior runs are vectorised 64 voxels at a time and each row piece has a fixed
/// cost (its spans, zones and run set-up); 32-voxel pieces made a 256^3 rotate 1.6x slower on two
/// threads (80 against 49 ms steady, AMD EPYC, session 16), with no gain for other angles.
const TILE_J: usize = 8;

/// Resamples several volumes of one input shape through the same map; one output per spec, each in
/// its input's type.
pub fn resample_many(specs: &[Spec<'_>], p: &Params) -> Result<Vec<Voxels>> {
    specs
        .iter()
        .map(|s| match *s {
            Spec::Linear(src, outside) => Ok(Voxels::from(linear_volume(src, outside, p)?)),
            Spec::Nearest(src, fill) => {
                crate::with_voxels!(src, d => Ok(Voxel::wrap(nearest_volume(d, fill, p)?)))
            }
            Spec::Argmax(src, fill) => {
                crate::with_voxels!(src, d => Ok(Voxel::wrap(argmax::argmax_volume(d, fill, p)?)))
            }
        })
        .collect()
}

fn linear_volume(src: &[f32], outside: Outside, p: &Params) -> Result<Vec<f32>> {
    if let Some(off) = streamed_crop::<f32>(p) {
        return Ok(crop_streamed(src, p, off, |_| 0)?.0);
    }
    match integer_map(p) {
        Some(im) => drive(p, None, |j, k, _, row| {
            row_integer(src, fill_of(outside), p, &im, j, k, row);
        }),
        None if scaled::is_scaled(p) => scaled::linear_scaled(src, outside, p),
        None => drive(p, Some((0.0, 0.0)), |j, k, span, row| {
            row_linear(src, outside, p, j, k, span, row)
        }),
    }
}

/// Nearest-neighbour resampling of one volume of any voxel type (`fill`: outside value, `None`: edge).
pub fn resample_nearest<T: Voxel>(src: &[T], fill: Option<f64>, p: &Params) -> Result<Vec<T>> {
    nearest_volume(src, fill, p)
}

fn nearest_volume<T: Voxel>(src: &[T], fill: Option<f64>, p: &Params) -> Result<Vec<T>> {
    if let Some(off) = streamed_crop::<T>(p) {
        return Ok(crop_streamed(src, p, off, |_| 0)?.0);
    }
    let fill = fill.map(T::from_f64);
    match integer_map(p) {
        Some(im) => drive(p, None, |j, k, _, row| {
            row_integer(src, fill, p, &im, j, k, row);
        }),
        None => drive(p, Some((-0.5, 0.5)), |j, k, span, row| {
            row_nearest(src, fill, p, j, k, span, row)
        }),
    }
}

/// Runs `row(j, k, span, row_out)` over the output rows. Work is split into slabs of whole slices
/// (contiguous output, one rayon task each) and, inside a slab, into blocks of `TILE_J` whole rows.
/// `bounds`: the interior span's margins (`None` for integer maps, which take whole rows).
fn drive<T: Voxel>(
    p: &Params,
    bounds: Option<(f64, f64)>,
    row: impl Fn(usize, usize, RowSpan, &mut [T]) + Sync,
) -> Result<Vec<T>> {
    let row = |j, k, span, out: &mut [T]| {
        row(j, k, span, out);
        0
    };
    Ok(drive_max(p, bounds, false, row)?.0)
}

/// [`drive`] with rows that return a number (a row's largest |value| bits, taken while it is in
/// cache); returns the largest. `streamed`: rows are written with non-temporal stores.
fn drive_max<T: Voxel>(
    p: &Params,
    bounds: Option<(f64, f64)>,
    streamed: bool,
    row: impl Fn(usize, usize, RowSpan, &mut [T]) -> u32 + Sync,
) -> Result<(Vec<T>, u32)> {
    let [nx, ny, nz] = p.out_shape;
    let n = nx * ny * nz;
    let mut out = super::alloc::output::<T>(n)?;
    if n == 0 {
        return Ok((out, 0));
    }
    let slab = if nz >= 32 {
        8
    } else if nz >= 8 {
        2
    } else {
        1
    };
    let tj = if bounds.is_some() { TILE_J } else { ny };
    // Every row wholly inside: no per-row spans.
    let inside = bounds.is_some_and(|(lo, hi)| box_inside(p, lo, hi));
    let whole = RowSpan {
        inner: (0, nx),
        reach: (0, nx),
    };
    let last = out
        .par_chunks_mut(nx * ny * slab)
        .enumerate()
        .map(|(b, chunk)| {
            let k0 = b * slab;
            let slices = chunk.len() / (nx * ny);
            // Interior spans of every row of the slab, computed once (not once per tile).
            let spans: Vec<RowSpan> = match bounds {
                None => Vec::new(),
                Some(_) if inside => vec![whole; slices * ny],
                Some((lo, hi)) => (0..slices * ny)
                    .map(|r| {
                        let base = p.row_base(r % ny, k0 + r / ny);
                        RowSpan {
                            inner: interior(p, base, lo, hi),
                            reach: reach(p, base),
                        }
                    })
                    .collect(),
            };
            let none = RowSpan {
                inner: (0, 0),
                reach: (0, 0),
            };
            let mut seen = 0;
            for j0 in (0..ny).step_by(tj) {
                for dk in 0..slices {
                    for j in j0..(j0 + tj).min(ny) {
                        let r = dk * ny + j;
                        let span = spans.get(r).copied().unwrap_or(none);
                        let out = &mut chunk[r * nx..(r + 1) * nx];
                        seen = seen.max(row(j, k0 + dk, span, out));
                    }
                }
            }
            if streamed {
                // Rows written past the cache, ordered before the task's end (a fence after
                // ordinary stores waits for them: 0.4 ms on a 288^3 pad).
                store_fence();
            }
            seen
        })
        .max()
        .unwrap_or(0);
    Ok((out, last))
}

/// Shared start of a row: fills the zones far outside with the fill value, returns the coordinate of
/// output voxel `i` (the shader's expression) and the zones (`reach_start, inner_start, inner_end,
/// reach_end`).
#[allow(clippy::type_complexity)]
fn row_setup<T: Voxel>(
    p: &Params,
    j: usize,
    k: usize,
    span: RowSpan,
    fill: Option<T>,
    dst: &mut [T],
) -> (impl Fn(usize) -> [f32; 3], (usize, usize, usize, usize)) {
    let base = p.row_base(j, k);
    let step = [p.m[0][0], p.m[1][0], p.m[2][0]];
    let z = zones(span, dst.len(), fill.is_none());
    if let Some(v) = fill {
        dst[..z.0].fill(v);
        dst[z.3..].fill(v);
    }
    let coord = move |i: usize| {
        let fi = i as f32;
        [
            base[0] + step[0] * fi,
            base[1] + step[1] * fi,
            base[2] + step[2] * fi,
        ]
    };
    (coord, z)
}

#[allow(clippy::too_many_arguments)]
fn row_linear(
    src: &[f32],
    outside: Outside,
    p: &Params,
    j: usize,
    k: usize,
    span: RowSpan,
    dst: &mut [f32],
) {
    let (coord, (ra, a, b, rb)) = row_setup(p, j, k, span, fill_of(outside), dst);
    for i in (ra..a).chain(b..rb) {
        dst[i] = sample_linear_checked(src, p.in_shape, coord(i), outside);
    }
    let [sx, sy, _] = p.in_shape;
    let sxy = sx * sy;
    if src.len() < u32::MAX as usize {
        // Indices and fractions of a run in a loop that vectorises, then the gathers and blends.
        interior_runs(p, j, k, a, 0.0, &mut dst[a..b], |idx, frac, out| {
            blend_run(src, [sx, sxy], idx, frac, out)
        });
        return;
    }
    for (i, d) in dst[a..b].iter_mut().enumerate() {
        let c = coord(a + i);
        // Inside the interior span every coordinate is in [0, n - 1): truncation is floor and all eight
        // neighbours exist.
        // SAFETY: inside the span 0 <= c < n - 1 < 2^31, so the conversion is exact truncation.
        let (x0, y0, z0) = unsafe {
            (
                c[0].to_int_unchecked::<i32>() as usize,
                c[1].to_int_unchecked::<i32>() as usize,
                c[2].to_int_unchecked::<i32>() as usize,
            )
        };
        *d = blend8(src, sx, sxy, [x0, y0, z0], c);
    }
}

/// Interior voxels of a row handled at a time: their indices and fractions are computed first, in a
/// loop that vectorises, into arrays this long on the stack.
const RUN: usize = 64;

/// Walks the interior voxels `dst` of row `(j, k)`, from output column `i0`, in runs of [`RUN`]: each
/// run's linear indices and fractions ([`cells`], `half` as there), then `f(indices, fractions, out)`.
fn interior_runs<T>(
    p: &Params,
    j: usize,
    k: usize,
    i0: usize,
    half: f32,
    dst: &mut [T],
    mut f: impl FnMut(&[u32], &[[f32; RUN]; 3], &mut [T]),
) {
    let (base, step) = (p.row_base(j, k), p.step());
    let [sx, sy, _] = p.in_shape;
    let (mut idx, mut frac) = ([0u32; RUN], [[0f32; RUN]; 3]);
    for (r, out) in dst.chunks_mut(RUN).enumerate() {
        let n = out.len();
        let at = i0 + r * RUN;
        cells(
            base,
            step,
            at,
            half,
            [sx, sx * sy],
            &mut idx[..n],
            &mut frac,
        );
        f(&idx[..n], &frac, out);
    }
}

/// Linear indices (`x0 + sx y0 + sxy z0`) and fractions of `idx.len()` (<= [`RUN`]) consecutive
/// interior voxels from output `i0`, at the shader's coordinates `base + step * i` (plus `half`: 0.5
/// rounds to the nearest voxel, 0 takes the trilinear cell's corner). Every coordinate must be in
/// `[0, n - 1)` (`[-0.5, n - 0.5)` with `half` 0.5), the volume under 2^32 voxels and `i0 + RUN`
/// under 2^31. Explicit AVX2 where the CPU has it (LLVM left a scalar tail and spills), else
/// [`cells_scalar`]; the same operations, so the same bits.
fn cells(
    base: [f32; 3],
    step: [f32; 3],
    i0: usize,
    half: f32,
    strides: [usize; 2],
    idx: &mut [u32],
    frac: &mut [[f32; RUN]; 3],
) {
    assert!(idx.len() <= RUN && i0 + RUN <= i32::MAX as usize);
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        // SAFETY: AVX2 is present (checked just above); `idx` is at most RUN long (asserted).
        unsafe { x86::cells(base, step, i0, half, strides, idx, frac) };
        return;
    }
    cells_scalar(base, step, i0, half, strides, idx, frac)
}

/// [`cells`] lane by lane.
fn cells_scalar(
    base: [f32; 3],
    step: [f32; 3],
    i0: usize,
    half: f32,
    strides: [usize; 2],
    idx: &mut [u32],
    frac: &mut [[f32; RUN]; 3],
) {
    let (sx, sxy) = (strides[0] as u32, strides[1] as u32);
    let [fx, fy, fz] = frac;
    for (l, q) in idx.iter_mut().enumerate() {
        let fi = crate::simd::index_f32(i0 + l);
        let c = [0, 1, 2].map(|r| base[r] + step[r] * fi + half);
        // SAFETY: the caller's span keeps 0 <= c < n < 2^31: exact truncation (= floor).
        let t = c.map(|v| unsafe { v.to_int_unchecked::<i32>() });
        *q = (t[0] as u32)
            .wrapping_add(sx.wrapping_mul(t[1] as u32))
            .wrapping_add(sxy.wrapping_mul(t[2] as u32));
        fx[l] = c[0] - t[0] as f32;
        fy[l] = c[1] - t[1] as f32;
        fz[l] = c[2] - t[2] as f32;
    }
}

/// Trilinear blends of a run of interior voxels from their corner indices and fractions (as
/// [`blend8`]); in AVX2 where the CPU has it, the same arithmetic lane by lane.
fn blend_run(
    src: &[f32],
    strides: [usize; 2],
    idx: &[u32],
    frac: &[[f32; RUN]; 3],
    out: &mut [f32],
) {
    let [sx, sxy] = strides;
    // Every corner the run reads exists (the interior span's guarantee, checked here once).
    let top = idx.iter().copied().fold(0, u32::max) as usize + sxy + sx + 1;
    assert!(idx.is_empty() || top < src.len());
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        // SAFETY: AVX2 is present (checked just above); every index + offset < src.len().
        unsafe { x86::blend_run(src, strides, idx, frac, out) };
        return;
    }
    for (l, d) in out.iter_mut().enumerate() {
        let f = [frac[0][l], frac[1][l], frac[2][l]];
        *d = blend_at(&src[idx[l] as usize..], sx, sxy, f);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

/// Trilinear blend of the eight neighbours from corner `(x0, y0, z0)` (all inside: the caller's span
/// guarantees `i0 + 1 + sx + sxy < src.len()`), x first, then y, then z, as the shader does.
#[inline(always)]
fn blend8(src: &[f32], sx: usize, sxy: usize, corner: [usize; 3], c: [f32; 3]) -> f32 {
    let [x0, y0, z0] = corner;
    let f = [c[0] - x0 as f32, c[1] - y0 as f32, c[2] - z0 as f32];
    let i0 = x0 + sx * y0 + sxy * z0;
    blend_at(&src[i0..i0 + sxy + sx + 2], sx, sxy, f)
}

/// The trilinear blend of the cell whose first corner is `v[0]`, at fractions `f`: x first, then y,
/// then z, as the shader does.
#[inline(always)]
fn blend_at(v: &[f32], sx: usize, sxy: usize, f: [f32; 3]) -> f32 {
    let [fx, fy, fz] = f;
    let c00 = lerp(v[0], v[1], fx);
    let c10 = lerp(v[sx], v[sx + 1], fx);
    let c01 = lerp(v[sxy], v[sxy + 1], fx);
    let c11 = lerp(v[sxy + sx], v[sxy + sx + 1], fx);
    lerp(lerp(c00, c10, fy), lerp(c01, c11, fy), fz)
}

/// `span`: where every coordinate is in [-0.5, n - 0.5), so rounding stays inside.
#[allow(clippy::too_many_arguments)]
fn row_nearest<T: Voxel>(
    src: &[T],
    fill: Option<T>,
    p: &Params,
    j: usize,
    k: usize,
    span: RowSpan,
    dst: &mut [T],
) {
    let (coord, (ra, a, b, rb)) = row_setup(p, j, k, span, fill, dst);
    for i in (ra..a).chain(b..rb) {
        dst[i] = sample_nearest_checked(src, p.in_shape, coord(i), fill);
    }
    let [sx, sy, _] = p.in_shape;
    if a < b && p.m[1][0] == 0.0 && p.m[2][0] == 0.0 {
        // y and z stay put along the row: one source row, only x is looked up.
        let c = coord(a);
        // SAFETY: as below.
        let (y, z) = unsafe {
            (
                (c[1] + 0.5).to_int_unchecked::<i32>() as usize,
                (c[2] + 0.5).to_int_unchecked::<i32>() as usize,
            )
        };
        let src_row = &src[sx * (y + sy * z)..][..sx];
        let (base, step) = (p.row_base(j, k)[0], p.m[0][0]);
        for (i, d) in dst[a..b].iter_mut().enumerate() {
            let x = base + step * (a + i) as f32;
            // SAFETY: as below.
            *d = src_row[unsafe { (x + 0.5).to_int_unchecked::<i32>() } as usize];
        }
        return;
    }
    if src.len() < u32::MAX as usize {
        interior_runs(p, j, k, a, 0.5, &mut dst[a..b], |idx, _, out| {
            for (d, &q) in out.iter_mut().zip(idx) {
                *d = src[q as usize];
            }
        });
        return;
    }
    for (i, d) in dst[a..b].iter_mut().enumerate() {
        let c = coord(a + i);
        // SAFETY: inside the span 0 <= c + 0.5 < n < 2^31, so the conversion is exact truncation
        // (= floor for non-negative values).
        let (x, y, z) = unsafe {
            (
                (c[0] + 0.5).to_int_unchecked::<i32>() as usize,
                (c[1] + 0.5).to_int_unchecked::<i32>() as usize,
                (c[2] + 0.5).to_int_unchecked::<i32>() as usize,
            )
        };
        *d = src[x + sx * (y + sy * z)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `box_inside` holds only where every voxel's coordinate, as the run kernels compute it, is in the
    /// interior; maps are rotations and scales placed to end just inside or just past the edges.
    #[test]
    fn a_box_inside_has_every_voxel_inside() {
        let mut held = [0usize; 2];
        for q in 0..400u32 {
            let u = |m: u32| (q.wrapping_mul(m) % 1000) as f32 / 1000.0;
            let (a, b) = (u(7919) - 0.5, u(104_729) - 0.5);
            let s = 0.8 + u(15_485_863) * 0.4;
            let (ca, sa, cb, sb) = (a.cos(), a.sin(), b.cos(), b.sin());
            let rot = [
                [ca * cb, -sa, ca * sb],
                [sa * cb, ca, sa * sb],
                [-sb, 0.0, cb],
            ];
            let in_shape = [61usize, 53, 47];
            let out_shape = [24usize, 20, 17];
            let half_out = out_shape.map(|n| (n - 1) as f32 / 2.0);
            // Centred so that the box's extreme reaches `reach` voxels from the low edge (a few
            // hundredths inside to a little outside).
            let reach = (u(32_452_843) - 0.3) * 0.1;
            let mut m = [[0f32; 4]; 3];
            for r in 0..3 {
                let ext: f32 = (0..3).map(|c| (rot[r][c] * s).abs() * half_out[c]).sum();
                let centre = ext + reach;
                m[r][3] = centre;
                for c in 0..3 {
                    m[r][c] = rot[r][c] * s;
                    m[r][3] -= m[r][c] * half_out[c];
                }
            }
            let p = Params {
                m,
                in_shape,
                out_shape,
            };
            for (lo, hi) in [(0.0, 0.0), (-0.5, 0.5)] {
                if !span::box_inside(&p, lo, hi) {
                    continue;
                }
                held[(lo < 0.0) as usize] += 1;
                let half = -lo as f32;
                for k in 0..out_shape[2] {
                    for j in 0..out_shape[1] {
                        let base = p.row_base(j, k);
                        for i in 0..out_shape[0] {
                            for r in 0..3 {
                                let c = (base[r] + p.step()[r] * i as f32) + half;
                                let top = (in_shape[r] as f64 - 1.0 + hi - lo) as f32;
                                assert!(c >= 0.0 && c < top, "{m:?} {lo} {i} {j} {k}");
                            }
                        }
                    }
                }
            }
        }
        assert!(held.iter().all(|&h| h > 50), "both samplers: {held:?}");
    }

    /// Every fast path (interior spans, rows along which y and z stay put, scale-and-shift maps) gives
    /// what the checked per-voxel samplers give at the shader's coordinates, bit for bit.
    #[test]
    fn row_paths_equal_the_per_voxel_samplers() {
        let shape = [21, 19, 15];
        let src: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|i| ((i * 104729) % 997) as f32 * 0.53 - 120.0)
            .collect();
        let labels: Vec<u16> = src.iter().map(|&x| (x.abs() as u16) % 7).collect();
        let (c, s) = (0.3f32.cos(), 0.3f32.sin());
        let maps: [[[f32; 4]; 3]; 4] = [
            // A rotation about x (y and z stay put along a row), shifted.
            [[1.1, 0.0, 0.0, -0.7], [0.0, c, -s, 4.2], [0.0, s, c, -2.1]],
            // Scale and shift, partly outside.
            [
                [0.8, 0.0, 0.0, -1.3],
                [0.0, 1.25, 0.0, 0.6],
                [0.0, 0.0, 0.9, 1.1],
            ],
            // Flipped along x, scaled along z.
            [
                [-1.0, 0.0, 0.0, 20.4],
                [0.0, 1.0, 0.0, 0.5],
                [0.0, 0.0, 1.7, -0.2],
            ],
            // A general rotation (the per-voxel interior path).
            [[c, -s, 0.1, 3.0], [s, c, 0.0, -2.0], [0.05, 0.0, 1.0, 0.7]],
        ];
        for m in maps {
            let p = Params {
                m,
                in_shape: shape,
                out_shape: [24, 17, 16],
            };
            let coord = |i: usize, j: usize, k: usize| {
                let b = p.row_base(j, k);
                let st = p.step();
                [0, 1, 2].map(|r| b[r] + st[r] * i as f32)
            };
            for outside in [Outside::Value(-3.0), Outside::Edge] {
                let got = linear_volume(&src, outside, &p).unwrap();
                let fill = fill_of(outside).map(f64::from);
                let near = nearest_volume(&labels, fill, &p).unwrap();
                let [nx, ny, nz] = p.out_shape;
                for k in 0..nz {
                    for j in 0..ny {
                        for i in 0..nx {
                            let l = i + nx * (j + ny * k);
                            let want = sample_linear_checked(&src, shape, coord(i, j, k), outside);
                            assert_eq!(got[l].to_bits(), want.to_bits(), "{m:?} {i} {j} {k}");
                            let f = fill.map(u16::from_f64);
                            let want = sample_nearest_checked(&labels, shape, coord(i, j, k), f);
                            assert_eq!(near[l], want, "{m:?} {i} {j} {k}");
                        }
                    }
                }
            }
        }
    }
}
