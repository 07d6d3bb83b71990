//! Displacement fields for elastic deformation (CPU twin of `shaders/field.wgsl` + the field part of
//! `shaders/resample_image.wgsl`).
//!
//! Both kinds of field are stored on a coarse grid and interpolated trilinearly where the resampler needs
//! them, so a 256^3 sample holds three small component arrays, never three full-size ones:
//! - Gaussian (`elastic`): uniform noise in [-1, 1] from a counter-based hash of `(seed, coarse index,
//!   component)`, on a grid `f` voxels apart, `f = sigma / 4` from sigma 8 on (a fractional step: four
//!   nodes per sigma) and 1 below (a margin of 4 sigma around the volume), smoothed by a separable Gaussian
//!   of `sigma / f` coarse voxels truncated at 4 sigma, scaled by `alpha * f^(-3/2)` (so its amplitude
//!   matches noise drawn per voxel), then interpolated. With `f = 1` this is exactly the textbook recipe
//!   (tests/elastic.rs: 1e-4 of the field's std from a direct 3D Gaussian sum, the difference being the
//!   4-sigma truncation); from sigma 8 on the smoothing is 33 taps on `(n / f)^3` nodes, a cost that falls
//!   as sigma grows, and trilinear interpolation between coarse nodes (the field varies over 4 of them)
//!   stays within 3% of the field's std (1.8% measured against exact smoothing at the same points for
//!   sigma 16; tested for sigma 16 and 11, whose step is 2.75). Until 2026-11-27 the step was
//!   `floor(sigma / 4)`: sigma 11 smoothed 45 taps on a grid 2 voxels apart, 3.5 times the work.
//! - B-spline (`elastic_bspline`): control-point displacements from the same hash, evaluated by cubic
//!   B-splines on a grid `max(1, floor(cell / 4))` voxels apart, then interpolated.

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::intensity::blur_axis_within;
use crate::error::Result;
use crate::exec::kernel::{
    bspline_cell, gaussian_weights_truncated, layout, lerp, uniform01, Layout, FIELD_TRUNCATE,
};
use crate::transform::fuse::FieldSpec;
use rayon::prelude::*;

/// A displacement field (in voxels of the grid it is defined on), stored coarse.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Where the field's nodes lie on the output grid.
    pub layout: Layout,
    /// Components x, y, z, each i-fastest on `layout.shape`.
    pub comp: [Vec<f32>; 3],
    /// The nodes that hold the field (x, y, z ranges): every node from [`build`], those a sampling
    /// reads from [`build_within`] (the rest of `comp` is unspecified there).
    pub within: [std::ops::Range<usize>; 3],
}

/// Raw noise of component `axis` at coarse linear index `l`: uniform in [-1, 1].
#[inline(always)]
pub fn noise(seed: u64, l: usize, axis: u32) -> f32 {
    2.0 * uniform01([seed as u32, (seed >> 32) as u32], l as u32, 2 + axis) - 1.0
}

crate::simd_fn! {
    /// `xs[i] = noise(seed, base + i, axis)` (AVX2 where the CPU has it: the hash's variable shifts
    /// vectorise there; the same values).
    fn noise_fill(seed: u64, base: usize, axis: u32, xs: &mut [f32]) -> () = noise_fill_body;
}

#[inline(always)]
fn noise_fill_body(seed: u64, base: usize, axis: u32, xs: &mut [f32]) {
    for (i, x) in xs.iter_mut().enumerate() {
        *x = noise(seed, base + i, axis);
    }
}

/// Cubic B-spline basis weights at fraction `t` for points `i - 1 .. i + 2`.
#[inline]
pub fn bspline_weights(t: f64) -> [f64; 4] {
    let t2 = t * t;
    let t3 = t2 * t;
    [
        (1.0 - t).powi(3) / 6.0,
        (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
        (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
        t3 / 6.0,
    ]
}

/// Displacement (mm) of a control point, zero when locked.
pub fn control_displacement(
    cp: [usize; 3],
    c: [usize; 3],
    max_mm: [f64; 3],
    locked: u8,
    seed: u64,
    axis: usize,
) -> f64 {
    let l = locked as usize;
    if (0..3).any(|a| c[a] < l || c[a] + l >= cp[a]) {
        return 0.0;
    }
    let lin = c[0] + cp[0] * (c[1] + cp[1] * c[2]);
    max_mm[axis] * noise(seed, lin, axis as u32) as f64
}

/// Builds the field of `spec` on a fine grid of `shape` with voxel `spacing` (the CPU reference).
pub fn build(spec: &FieldSpec, shape: [usize; 3], spacing: [f64; 3]) -> Result<Field> {
    build_within(spec, shape, spacing, None)
}

/// [`build`] for a sampling that reads only the coarse nodes `reach` (per axis; see [`reach`]):
/// Gaussian fields are smoothed there and wherever a later pass reads, with the same values as
/// [`build`] at those nodes. Most of a Gaussian field's nodes lie in its margin (four sigma on each
/// side, for the noise beyond the edges): sigma 35 at 256^3 smooths 33^3 of 63^3 nodes in its last
/// pass, about a third of the taps in all. B-spline fields are evaluated everywhere.
pub fn build_within(
    spec: &FieldSpec,
    shape: [usize; 3],
    spacing: [f64; 3],
    reach: Option<[std::ops::Range<usize>; 3]>,
) -> Result<Field> {
    let lay = layout(spec, shape);
    let n: usize = lay.shape.iter().product();
    let all = lay.shape.map(|m| 0..m);
    match spec {
        FieldSpec::Gaussian {
            sigma_vox, seed, ..
        } => {
            let within = match reach {
                Some(r) => {
                    [0, 1, 2].map(|a| r[a].start.min(lay.shape[a])..r[a].end.min(lay.shape[a]))
                }
                None => all.clone(),
            };
            let weights: [Option<Vec<f32>>; 3] = [0, 1, 2].map(|a| {
                (lay.shape[a] > 1).then(|| {
                    gaussian_weights_truncated(sigma_vox[a] / lay.step[a] as f64, FIELD_TRUNCATE)
                })
            });
            // Pass `a` computes the nodes within `within` along the axes already smoothed and its
            // own, and along each later axis those that axis's pass reads (its radius further out).
            let pass_box = |a: usize| {
                [0, 1, 2].map(|b| {
                    let r = weights[b].as_ref().map_or(0, |w| w.len() / 2);
                    if b <= a {
                        within[b].clone()
                    } else {
                        within[b].start.saturating_sub(r)..(within[b].end + r).min(lay.shape[b])
                    }
                })
            };
            let component = |axis: u32| -> Result<Vec<f32>> {
                // Noise on rayon's threads, buffers recycled between passes (each is 20 MiB for
                // sigma 11 at 256^3: fresh pages cost as much as a pass).
                let mut v: Vec<f32> = super::alloc::output(n)?;
                v.par_chunks_mut(1 << 14)
                    .enumerate()
                    .for_each(|(c, xs)| noise_fill(*seed, c << 14, axis, xs));
                for (a, w) in weights.iter().enumerate() {
                    if let Some(w) = w {
                        let mut next = super::alloc::output(n)?;
                        blur_axis_within(&v, lay.shape, a, w, &pass_box(a), &mut next);
                        super::alloc::recycle(std::mem::replace(&mut v, next));
                    }
                }
                Ok(v)
            };
            let comp = [component(0)?, component(1)?, component(2)?];
            Ok(Field {
                layout: lay,
                comp,
                within,
            })
        }
        FieldSpec::Bspline {
            control_points: cp,
            max_disp_mm,
            locked,
            seed,
        } => {
            let cell = bspline_cell(shape, *cp);
            let ctrl: Vec<[f64; 3]> = (0..cp[0] * cp[1] * cp[2])
                .map(|l| {
                    let c = [l % cp[0], (l / cp[0]) % cp[1], l / (cp[0] * cp[1])];
                    [0, 1, 2].map(|a| control_displacement(*cp, c, *max_disp_mm, *locked, *seed, a))
                })
                .collect();
            let mut comp = [vec![0f32; n], vec![0f32; n], vec![0f32; n]];
            let [ex, ey, ez] = lay.shape;
            for k in 0..ez {
                for j in 0..ey {
                    for i in 0..ex {
                        let e = [i, j, k];
                        let mut idx = [0i64; 3];
                        let mut w = [[0f64; 4]; 3];
                        for a in 0..3 {
                            let x = (e[a] as f64 * lay.step[a] as f64).min(shape[a] as f64 - 1.0);
                            let u = x / cell[a] + 1.0;
                            let fl = u.floor();
                            idx[a] = fl as i64;
                            w[a] = bspline_weights(u - fl);
                        }
                        let mut d = [0f64; 3];
                        for (c2, wz) in w[2].iter().enumerate() {
                            let z = (idx[2] - 1 + c2 as i64).clamp(0, cp[2] as i64 - 1) as usize;
                            for (c1, wy) in w[1].iter().enumerate() {
                                let y =
                                    (idx[1] - 1 + c1 as i64).clamp(0, cp[1] as i64 - 1) as usize;
                                for (c0, wx) in w[0].iter().enumerate() {
                                    let x = (idx[0] - 1 + c0 as i64).clamp(0, cp[0] as i64 - 1)
                                        as usize;
                                    let wt = wx * wy * wz;
                                    let cd = ctrl[x + cp[0] * (y + cp[1] * z)];
                                    for a in 0..3 {
                                        d[a] += wt * cd[a];
                                    }
                                }
                            }
                        }
                        let l = i + ex * (j + ey * k);
                        for a in 0..3 {
                            comp[a][l] = (d[a] / spacing[a]) as f32;
                        }
                    }
                }
            }
            Ok(Field {
                layout: lay,
                comp,
                within: all,
            })
        }
    }
}

crate::simd_fn! {
    /// [`cell`] at `q0 + m00 i` for each `i`: fractions into `t`, lower nodes into `node`.
    fn row_cells(q0: f32, m00: f32, step: f32, offset: f32, n: usize, t: &mut [f32], node: &mut [u32]) -> () = row_cells_body;
}

#[inline(always)]
fn row_cells_body(
    q0: f32,
    m00: f32,
    step: f32,
    offset: f32,
    n: usize,
    t: &mut [f32],
    node: &mut [u32],
) {
    let hi = (n - 1) as f32;
    for (i, (t, node)) in t.iter_mut().zip(node.iter_mut()).enumerate() {
        let q = q0 + m00 * crate::simd::index_f32(i);
        // `cell`'s clamp as max/min (equal for every non-NaN value; coordinates are finite) and its
        // floor as truncation (equal on [0, n - 1]): both vectorise, the saturating forms did not.
        let u = (q / step + offset).max(0.0).min(hi);
        // SAFETY: u is in [0, n - 1] (n < 2^31), so the conversion is exact truncation.
        let fi = unsafe { u.to_int_unchecked::<i32>() };
        *t = u - fi as f32;
        *node = fi as u32;
    }
}

/// The coarse nodes of a field on `lay` that sampling it at `post * p` reads, for every voxel `p` of an
/// output of `shape`: those of [`cell`] between the extreme coordinates (an affine map's extremes
/// lie at the corners), with two nodes to spare on each side for the rounding of the sampler's f32
/// coordinates; every node when a coordinate is not finite.
pub fn reach(
    lay: &Layout,
    post: &crate::grid::Mat4,
    shape: [usize; 3],
) -> [std::ops::Range<usize>; 3] {
    [0, 1, 2].map(|a| {
        let n = lay.shape[a];
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for c in 0..8 {
            let p = [0, 1, 2].map(|b| {
                if c >> b & 1 == 1 {
                    shape[b].max(1) as f64 - 1.0
                } else {
                    0.0
                }
            });
            let q = post[a][0] * p[0] + post[a][1] * p[1] + post[a][2] * p[2] + post[a][3];
            let u = q / lay.step[a] as f64 + lay.offset[a] as f64;
            lo = lo.min(u);
            hi = hi.max(u);
        }
        if !(lo.is_finite() && hi.is_finite()) {
            return 0..n;
        }
        let first = (lo.floor() - 2.0).clamp(0.0, n as f64) as usize;
        let end = (hi.floor() + 4.0).clamp(0.0, n as f64) as usize;
        first..end.max(first)
    })
}

/// Coarse cell of a coordinate along one axis: lower node, upper node (clamped) and fraction.
#[inline]
pub fn cell(q: f32, step: f32, offset: f32, n: usize) -> (usize, usize, f32) {
    let u = (q / step + offset).clamp(0.0, (n - 1) as f32);
    let f = crate::exec::kernel::floor(u);
    let i0 = f as usize;
    (i0, (i0 + 1).min(n - 1), u - f)
}

impl Field {
    /// The field along the coarse x nodes at fixed fine `(q_y, q_z)`: y then z interpolated, per
    /// component (one vector each), unscaled, with the last node repeated once more (so the upper node
    /// of every cell is the next entry). `at` finishes with the x interpolation, so `line` + x-lerp ==
    /// `at`.
    pub fn line(&self, qy: f32, qz: f32, out: &mut [Vec<f32>; 3]) {
        let l = &self.layout;
        let [nx, ny, nz] = l.shape;
        let (y0, y1, ty) = cell(qy, l.step[1], l.offset[1], ny);
        let (z0, z1, tz) = cell(qz, l.step[2], l.offset[2], nz);
        let (r00, r10, r01, r11) = (
            nx * (y0 + ny * z0),
            nx * (y1 + ny * z0),
            nx * (y0 + ny * z1),
            nx * (y1 + ny * z1),
        );
        for (c, out) in self.comp.iter().zip(out.iter_mut()) {
            let (a, b, d, e) = (
                &c[r00..][..nx],
                &c[r10..][..nx],
                &c[r01..][..nx],
                &c[r11..][..nx],
            );
            out.clear();
            out.extend((0..nx).map(|x| lerp(lerp(a[x], b[x], ty), lerp(d[x], e[x], ty), tz)));
            out.push(out[nx - 1]);
        }
    }

    /// Finishes a displacement from a `line` at fine `q_x`.
    #[inline]
    pub fn from_line(&self, line: &[Vec<f32>; 3], qx: f32) -> [f32; 3] {
        let l = &self.layout;
        let (x0, x1, tx) = cell(qx, l.step[0], l.offset[0], l.shape[0]);
        [0, 1, 2].map(|a| lerp(line[a][x0], line[a][x1], tx) * l.scale[a])
    }

    /// [`from_line`](Self::from_line) at `q_x = q0 + m00 i` for every `i` of `d`'s rows (their length;
    /// `nodes` is scratch): the cells first, in a loop that vectorises, then the lookups (AVX2
    /// gathers where the CPU has them).
    pub fn row_from_line(
        &self,
        line: &[Vec<f32>; 3],
        q0: f32,
        m00: f32,
        d: [&mut Vec<f32>; 3],
        nodes: &mut Vec<u32>,
    ) {
        let l = &self.layout;
        let [dx, dy, dz] = d;
        let n = dx.len();
        nodes.resize(n, 0);
        // Cell fractions in dy (overwritten below by the displacement).
        row_cells(
            q0,
            m00,
            l.step[0],
            l.offset[0],
            l.shape[0],
            &mut dy[..n],
            &mut nodes[..n],
        );
        let line = [&line[0][..], &line[1][..], &line[2][..]];
        // Every cell's upper node exists: nodes are at most nx - 1, each line has nx + 1 entries.
        assert!(line.iter().all(|v| v.len() == l.shape[0] + 1));
        #[cfg(target_arch = "x86_64")]
        if crate::simd::avx2() {
            // SAFETY: AVX2 is present; nodes + 1 < each line's length (asserted above, and
            // `row_cells` clamps nodes to nx - 1).
            unsafe { x86::row_lookup(line, l.scale, &nodes[..n], [dx, dy, dz]) };
            return;
        }
        for i in 0..n {
            let (t, x0) = (dy[i], nodes[i] as usize);
            dx[i] = lerp(line[0][x0], line[0][x0 + 1], t) * l.scale[0];
            dy[i] = lerp(line[1][x0], line[1][x0 + 1], t) * l.scale[1];
            dz[i] = lerp(line[2][x0], line[2][x0 + 1], t) * l.scale[2];
        }
    }

    /// Displacement (voxels) at fine coordinate `q`: trilinear on the coarse grid (y, then z, then x),
    /// edges clamped. The shader computes the same expression.
    #[inline]
    pub fn at(&self, q: [f32; 3]) -> [f32; 3] {
        let l = &self.layout;
        let [nx, ny, nz] = l.shape;
        let (x0, x1, tx) = cell(q[0], l.step[0], l.offset[0], nx);
        let (y0, y1, ty) = cell(q[1], l.step[1], l.offset[1], ny);
        let (z0, z1, tz) = cell(q[2], l.step[2], l.offset[2], nz);
        // The eight corner indices, shared by the three components (written out: a closure per
        // component through `array::map` was not inlined and led the elastic profile).
        let (r00, r10, r01, r11) = (
            nx * (y0 + ny * z0),
            nx * (y1 + ny * z0),
            nx * (y0 + ny * z1),
            nx * (y1 + ny * z1),
        );
        let comp = |c: &[f32]| {
            let v0 = lerp(
                lerp(c[r00 + x0], c[r10 + x0], ty),
                lerp(c[r01 + x0], c[r11 + x0], ty),
                tz,
            );
            let v1 = lerp(
                lerp(c[r00 + x1], c[r10 + x1], ty),
                lerp(c[r01 + x1], c[r11 + x1], ty),
                tz,
            );
            lerp(v0, v1, tx)
        };
        [
            comp(&self.comp[0]) * l.scale[0],
            comp(&self.comp[1]) * l.scale[1],
            comp(&self.comp[2]) * l.scale[2],
        ]
    }

    /// Largest |displacement| per component over the nodes it holds (bounds the resampler's interior
    /// spans).
    pub fn max_abs(&self) -> [f32; 3] {
        let [nx, ny, _] = self.layout.shape;
        let [x, y, z] = &self.within;
        [0, 1, 2].map(|a| {
            let mut m = 0f32;
            for k in z.clone() {
                for j in y.clone() {
                    let row = &self.comp[a][(k * ny + j) * nx..][x.clone()];
                    m = row.iter().fold(m, |m, v| m.max(v.abs()));
                }
            }
            m * self.layout.scale[a].abs()
        })
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// The lookups of `Field::row_from_line`, eight voxels at a time: `d[a] = lerp(line[a][x0],
    /// line[a][x0 + 1], t) * scale[a]`, the fractions `t` read from `d[1]` (the scalar loop's
    /// operations lane by lane).
    ///
    /// # Safety
    /// AVX2 must be present, every `node + 1` below each line's length, and `d`'s slices at
    /// least `nodes.len()` long.
    #[target_feature(enable = "avx2")]
    pub unsafe fn row_lookup(
        line: [&[f32]; 3],
        scale: [f32; 3],
        nodes: &[u32],
        d: [&mut Vec<f32>; 3],
    ) {
        let n = nodes.len();
        let [dx, dy, dz] = d;
        let (px, py, pz) = (dx.as_mut_ptr(), dy.as_mut_ptr(), dz.as_mut_ptr());
        let lerp = |a: __m256, b: __m256, t: __m256| {
            _mm256_add_ps(a, _mm256_mul_ps(_mm256_sub_ps(b, a), t))
        };
        let s = scale.map(|v| _mm256_set1_ps(v));
        let mut i = 0;
        while i + 8 <= n {
            let q = nodes.as_ptr().add(i);
            let t = _mm256_loadu_ps(py.add(i));
            let at = |a: usize| {
                let (lo, hi) = crate::simd::x86::pairs8(line[a].as_ptr(), q, 0);
                _mm256_mul_ps(lerp(lo, hi, t), s[a])
            };
            let (vx, vy, vz) = (at(0), at(1), at(2));
            _mm256_storeu_ps(px.add(i), vx);
            _mm256_storeu_ps(py.add(i), vy);
            _mm256_storeu_ps(pz.add(i), vz);
            i += 8;
        }
        for i in i..n {
            let (t, x0) = (*py.add(i), nodes[i] as usize);
            let lerp = crate::exec::kernel::lerp;
            *px.add(i) = lerp(line[0][x0], line[0][x0 + 1], t) * scale[0];
            *py.add(i) = lerp(line[1][x0], line[1][x0 + 1], t) * scale[1];
            *pz.add(i) = lerp(line[2][x0], line[2][x0 + 1], t) * scale[2];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field smoothed only where a sampling reads it gives the full field's displacement at every
    /// sampled voxel, bit for bit, and holds the same values at its nodes; with large sigmas most
    /// nodes are skipped.
    #[test]
    fn field_within_reach_samples_as_the_full_field() {
        let shape = [40, 36, 30];
        let r = |deg: f64| {
            let (s, c) = deg.to_radians().sin_cos();
            let ctr = [19.5, 17.5, 14.5];
            // A rotation about z through the centre, then a 0.8 zoom: corners map outside the grid.
            let m = [
                [0.8 * c, -0.8 * s, 0.0],
                [0.8 * s, 0.8 * c, 0.0],
                [0.0, 0.0, 0.8],
            ];
            let t: [f64; 3] =
                [0, 1, 2].map(|a| ctr[a] - (0..3).map(|b| m[a][b] * ctr[b]).sum::<f64>());
            let mut out = crate::grid::IDENTITY;
            for a in 0..3 {
                out[a] = [m[a][0], m[a][1], m[a][2], t[a]];
            }
            out
        };
        for (sigma, post) in [
            (35.0, crate::grid::IDENTITY),
            (11.0, r(20.0)),
            (3.0, r(-7.0)),
        ] {
            let spec = FieldSpec::Gaussian {
                sigma_vox: [sigma, sigma * 0.8, sigma * 1.2],
                alpha_vox: [3.0, 2.0, 4.0],
                seed: 11,
            };
            let full = build(&spec, shape, [1.0; 3]).unwrap();
            let reach = reach(&full.layout, &post, shape);
            let part = build_within(&spec, shape, [1.0; 3], Some(reach.clone())).unwrap();
            let [nx, ny, _] = full.layout.shape;
            for a in 0..3 {
                for k in reach[2].clone() {
                    for j in reach[1].clone() {
                        let at = (k * ny + j) * nx;
                        assert_eq!(
                            full.comp[a][at..][reach[0].clone()],
                            part.comp[a][at..][reach[0].clone()],
                            "sigma {sigma}"
                        );
                    }
                }
            }
            // The bound on |displacement| covers every sampled one, and is at most the full field's.
            let (bound, full_bound) = (part.max_abs(), full.max_abs());
            for a in 0..3 {
                assert!(bound[a] <= full_bound[a]);
            }
            for k in 0..shape[2] {
                for j in 0..shape[1] {
                    for i in 0..shape[0] {
                        let p = [i as f64, j as f64, k as f64];
                        let q = [0, 1, 2].map(|a| {
                            (post[a][0] * p[0] + post[a][1] * p[1] + post[a][2] * p[2] + post[a][3])
                                as f32
                        });
                        let d = part.at(q);
                        assert_eq!(full.at(q), d, "sigma {sigma} at {p:?}");
                        for a in 0..3 {
                            assert!(
                                d[a].abs() <= bound[a] * (1.0 + 1e-6),
                                "bound, sigma {sigma}"
                            );
                        }
                    }
                }
            }
            if sigma >= 11.0 {
                let kept: usize = reach.iter().map(|r| r.len()).product();
                let all: usize = full.layout.shape.iter().product();
                assert!(kept * 2 < all, "sigma {sigma}: {kept} of {all} nodes");
            }
        }
    }

    /// The row path (cells vectorised, then lookups) gives `from_line`'s values bit for bit.
    #[test]
    fn row_from_line_equals_from_line() {
        let spec = FieldSpec::Gaussian {
            sigma_vox: [9.0, 7.0, 11.0],
            alpha_vox: [3.0, 2.0, 4.0],
            seed: 7,
        };
        let f = build(&spec, [61, 40, 33], [1.0, 1.0, 1.0]).unwrap();
        let mut line = Default::default();
        f.line(13.25, 20.5, &mut line);
        for (q0, m00) in [
            (0.0, 1.0),
            (-3.7, 1.0),
            (2.5, 0.8),
            (60.0, -1.0),
            (5.0, 1.37),
        ] {
            let n = 61;
            let (mut dx, mut dy, mut dz, mut nodes) =
                (vec![0f32; n], vec![0f32; n], vec![0f32; n], Vec::new());
            f.row_from_line(&line, q0, m00, [&mut dx, &mut dy, &mut dz], &mut nodes);
            for i in 0..n {
                let qx = q0 + m00 * i as f32;
                let want = f.from_line(&line, qx);
                assert_eq!([dx[i], dy[i], dz[i]], want, "q0 {q0} m00 {m00} i {i}");
                assert_eq!(want, f.at([qx, 13.25, 20.5]), "q0 {q0} m00 {m00} i {i}");
            }
        }
    }
}
