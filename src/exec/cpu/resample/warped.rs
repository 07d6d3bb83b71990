//! The resampler's displacement-field path (elastic deformations): each output row's coordinates
//! through the field, computed once into a thread's scratch and sampled by every volume before the
//! next row (in runs of interior cells, with the checked samplers of `mod.rs` where they leave the
//! interior).

use super::{blend_run, sample_linear_checked, sample_nearest_checked, Outside, Params, Spec, RUN};
use crate::error::Result;
use crate::transform::SamplingMap;
use crate::voxels::{Voxel, Voxels};
use rayon::prelude::*;

/// Resampling through a map with a displacement field: `c = matrix * (q + d(q))`, `q = post * p`, each
/// in the same f32 operation order as the shader. Output rows are walked in parallel blocks; each row's
/// coordinates (the field's interpolation is the costly part) are computed once into the thread's
/// scratch and sampled by every volume before the next row, so they never leave the cache.
pub fn resample_many_field(
    specs: &[Spec<'_>],
    map: &SamplingMap,
    in_shape: [usize; 3],
    field: &crate::exec::cpu::field::Field,
) -> Result<Vec<Voxels>> {
    let [nx, ny, nz] = map.grid.shape;
    let n = nx * ny * nz;
    let post = Params::new(&map.post, in_shape, map.grid.shape);
    let pre = [0, 1, 2].map(|r| map.matrix[r].map(|v| v as f32));
    let mut outs: Vec<Voxels> = specs
        .iter()
        .map(|s| match s {
            Spec::Linear(..) => Voxels::output(crate::DType::F32, n),
            Spec::Nearest(d, _) | Spec::Argmax(d, _) => Voxels::output(d.dtype(), n),
        })
        .collect::<Result<_>>()?;
    if n == 0 {
        return Ok(outs);
    }
    // Blocks of whole rows, about 4096 voxels each: rayon hands each thread runs of neighbouring
    // blocks, whose rows read neighbouring parts of the input.
    let rows_per_block = (4096 / nx).clamp(1, ny * nz);
    let block = rows_per_block * nx;
    // Each output as blocks of bytes (aligned: a multiple of its voxel size from the buffer's start),
    // regrouped by block so that one task owns block b of every output.
    let mut parts: Vec<_> = outs
        .iter_mut()
        .map(|o| {
            let size = o.dtype().size();
            o.as_bytes_mut().chunks_mut(block * size)
        })
        .collect();
    let blocks: Vec<Vec<&mut [u8]>> = (0..n.div_ceil(block))
        .map(|_| {
            parts
                .iter_mut()
                .map(|p| p.next().expect("every output has n voxels"))
                .collect()
        })
        .collect();
    blocks
        .into_par_iter()
        .enumerate()
        .for_each_init(RowScratch::default, |sc, (b, mut outs)| {
            for r in b * rows_per_block..((b + 1) * rows_per_block).min(ny * nz) {
                let (j, k) = (r % ny, r / ny);
                sc.coords(field, &post, &pre, j, k);
                let cs = [&sc.c[0][..], &sc.c[1][..], &sc.c[2][..]];
                let at = (r - b * rows_per_block) * nx;
                for (s, out) in specs.iter().zip(outs.iter_mut()) {
                    sample_row(*s, in_shape, cs, &mut sc.cells, out, at..at + nx);
                }
            }
        });
    Ok(outs)
}

/// Samples `spec` at the coordinates `cs` into voxels `range` of `out` (an output's bytes, in its
/// input's type).
fn sample_row(
    spec: Spec<'_>,
    shape: [usize; 3],
    cs: Planes<'_>,
    cells: &mut Scratch,
    out: &mut [u8],
    range: std::ops::Range<usize>,
) {
    match spec {
        Spec::Linear(src, outside) => {
            let o: &mut [f32] = bytemuck::cast_slice_mut(out);
            linear_at(src, shape, outside, cs, &mut o[range], cells)
        }
        Spec::Nearest(src, fill) => crate::with_voxels!(src, src => {
            let o = bytemuck::cast_slice_mut(out);
            nearest_at(src, shape, fill.map(Voxel::from_f64), cs, &mut o[range], cells)
        }),
        Spec::Argmax(src, fill) => crate::with_voxels!(src, src => {
            let o = &mut bytemuck::cast_slice_mut(out)[range];
            let fill = fill.map(Voxel::from_f64);
            for (i, o) in o.iter_mut().enumerate() {
                let c = [cs[0][i], cs[1][i], cs[2][i]];
                *o = super::sample_argmax_checked(src, shape, c, fill);
            }
        }),
    }
}

/// One thread's buffers for a row: the field's line and displacements, the coordinates, the cells.
#[derive(Default)]
struct RowScratch {
    line: [Vec<f32>; 3],
    d: [Vec<f32>; 3],
    nodes: Vec<u32>,
    c: [Vec<f32>; 3],
    cells: Scratch,
}

impl RowScratch {
    /// The input coordinates of output row `(j, k)` into `self.c`.
    fn coords(
        &mut self,
        field: &crate::exec::cpu::field::Field,
        post: &Params,
        pre: &[[f32; 4]; 3],
        j: usize,
        k: usize,
    ) {
        let nx = post.out_shape[0];
        let base = post.row_base(j, k);
        for v in self.c.iter_mut() {
            v.resize(nx, 0.0);
        }
        let [rx, ry, rz] = &mut self.c;
        // When i moves q along x only, the field's y/z interpolation is shared by the whole row.
        if post.m[1][0] == 0.0 && post.m[2][0] == 0.0 {
            // The row's displacements first (a lookup into the coarse line per voxel), then the
            // coordinates in a loop that vectorises.
            field.line(base[1], base[2], &mut self.line);
            for dd in self.d.iter_mut() {
                dd.resize(nx, 0.0);
            }
            let [dx, dy, dz] = &mut self.d;
            field.row_from_line(
                &self.line,
                base[0],
                post.m[0][0],
                [dx, dy, dz],
                &mut self.nodes,
            );
            row_coords(
                pre,
                base,
                post.m[0][0],
                [&dx[..], &dy[..], &dz[..]],
                [rx, ry, rz],
            );
            return;
        }
        for i in 0..nx {
            let fi = i as f32;
            let q = [
                base[0] + post.m[0][0] * fi,
                base[1] + post.m[1][0] * fi,
                base[2] + post.m[2][0] * fi,
            ];
            let d = field.at(q);
            let qd = [q[0] + d[0], q[1] + d[1], q[2] + d[2]];
            let row = |r: &[f32; 4]| r[0] * qd[0] + r[1] * qd[1] + r[2] * qd[2] + r[3];
            (rx[i], ry[i], rz[i]) = (row(&pre[0]), row(&pre[1]), row(&pre[2]));
        }
    }
}

crate::simd_fn! {
    /// Coordinates of a row whose fine `q` moves along x only: `c = pre * (q + d)` with `q = base +
    /// (m00 i, 0, 0)`, in the per-voxel path's operation order (AVX2 where the CPU has it), one output
    /// slice per axis.
    fn row_coords(
        pre: &[[f32; 4]; 3],
        base: [f32; 3],
        m00: f32,
        d: [&[f32]; 3],
        row: [&mut [f32]; 3],
    ) -> () = row_coords_body;
}

#[inline(always)]
fn row_coords_body(
    pre: &[[f32; 4]; 3],
    base: [f32; 3],
    m00: f32,
    d: [&[f32]; 3],
    row: [&mut [f32]; 3],
) {
    let [rx, ry, rz] = row;
    let n = rx.len();
    let (ry, rz) = (&mut ry[..n], &mut rz[..n]);
    let [dx, dy, dz] = d.map(|v| &v[..n]);
    for i in 0..n {
        let fi = crate::simd::index_f32(i);
        let qd = [
            base[0] + m00 * fi + dx[i],
            base[1] + 0.0 * fi + dy[i],
            base[2] + 0.0 * fi + dz[i],
        ];
        let r = |r: &[f32; 4]| r[0] * qd[0] + r[1] * qd[1] + r[2] * qd[2] + r[3];
        (rx[i], ry[i], rz[i]) = (r(&pre[0]), r(&pre[1]), r(&pre[2]));
    }
}

/// A lane inside the interior: sampled from its precomputed index (and fractions).
const INTERIOR: u32 = 0;
/// A lane whose sample is the fill value, when there is one: past the last voxel a trilinear cell
/// (or the rounding) can reach.
const FAR: u32 = 1;
/// Any other lane (near the border, or a NaN coordinate): sampled by the checked sampler.
const BORDER: u32 = 2;

/// Coordinates of a run, one slice per axis.
type Planes<'a> = [&'a [f32]; 3];

/// The sub-slices `r` of each plane.
fn planes(c: Planes<'_>, r: std::ops::Range<usize>) -> Planes<'_> {
    c.map(|p| &p[r.clone()])
}

/// Calls `f(run of out, its coordinates, scratch)` for the runs of [`RUN`] voxels of `out`.
fn runs<T>(
    out: &mut [T],
    cs: Planes<'_>,
    scratch: &mut Scratch,
    mut f: impl FnMut(&mut [T], Planes<'_>, &mut Scratch),
) {
    for (ri, o) in out.chunks_mut(RUN).enumerate() {
        let at = ri * RUN;
        f(o, planes(cs, at..at + o.len()), scratch);
    }
}

/// Per-run arrays of [`cells_at`].
struct Scratch {
    idx: [u32; RUN],
    frac: [[f32; RUN]; 3],
    state: [u32; RUN],
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            idx: [0; RUN],
            frac: [[0.0; RUN]; 3],
            state: [0; RUN],
        }
    }
}

/// Trilinear samples at given coordinates: in runs of [`RUN`], the interior ones' indices and
/// fractions in a loop that vectorises and their blends eight at a time ([`blend_run`]), the fill for
/// those past the border, the others checked one by one.
fn linear_at(
    src: &[f32],
    shape: [usize; 3],
    outside: Outside,
    cs: Planes<'_>,
    out: &mut [f32],
    scratch: &mut Scratch,
) {
    let [sx, sy, _] = shape;
    let fill = match outside {
        Outside::Value(v) => Some(v),
        Outside::Edge => None,
    };
    let wide = src.len() >= u32::MAX as usize;
    runs(out, cs, scratch, |o, c, s| {
        let n = o.len();
        if wide {
            // Indices past u32: the checked sampler for every voxel (the same values).
            for (l, o) in o.iter_mut().enumerate() {
                *o = sample_linear_checked(src, shape, [c[0][l], c[1][l], c[2][l]], outside);
            }
            return;
        }
        let count = cells_at(
            c,
            shape,
            Cells::LINEAR,
            &mut s.idx[..n],
            &mut s.frac,
            &mut s.state[..n],
        );
        if count > 0 {
            blend_run(src, [sx, sx * sy], &s.idx[..n], &s.frac, o);
        }
        if count < n {
            for l in 0..n {
                match (s.state[l], fill) {
                    (INTERIOR, _) => {}
                    (FAR, Some(v)) => o[l] = v,
                    _ => {
                        o[l] =
                            sample_linear_checked(src, shape, [c[0][l], c[1][l], c[2][l]], outside)
                    }
                }
            }
        }
    });
}

/// For coordinates `cs`, each lane's state: see [`cells_at_scalar`], whose results these are (explicit
/// AVX2 where the CPU has it: the compiler's vectorisation of the scalar loop ran four lanes wide).
fn cells_at(
    cs: Planes<'_>,
    shape: [usize; 3],
    how: Cells,
    idx: &mut [u32],
    frac: &mut [[f32; RUN]; 3],
    state: &mut [u32],
) -> usize {
    let n = idx.len();
    assert!(cs.iter().all(|p| p.len() >= n) && state.len() >= n && n <= RUN);
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        // SAFETY: AVX2 is present; every slice holds at least n entries (asserted above).
        return unsafe { x86::cells_at(cs, shape, how, idx, frac, state) };
    }
    cells_at_scalar(cs, shape, how, idx, frac, state)
}

/// What [`cells_at`] computes: a trilinear cell's corner or the nearest voxel.
#[derive(Clone, Copy, Debug)]
struct Cells {
    /// Interior lanes are below `n - margin - half`.
    margin: f32,
    /// Added before truncation (0.5 rounds to the nearest voxel).
    half: f32,
    /// Lanes whose `c + half` is below this (or at least `n`) get the fill.
    far_lo: f32,
}

impl Cells {
    /// Trilinear cells whose eight corners exist; the fill past one voxel outside.
    const LINEAR: Cells = Cells {
        margin: 1.0,
        half: 0.0,
        far_lo: -1.0,
    };
    /// Rounding to the nearest voxel; the fill where it rounds outside.
    const NEAREST: Cells = Cells {
        margin: 0.0,
        half: 0.5,
        far_lo: 0.0,
    };
}

/// For coordinates `cs`, each lane's state: [`INTERIOR`] when in `[-half, n - margin - half)` on
/// every axis (margin 1, half 0 for a trilinear cell whose eight corners exist; margin 0, half 0.5
/// for rounding to the nearest voxel), [`FAR`] when `c + half` is below `far_lo` or at least `n` on
/// some axis (the checked samplers' fill tests: -1 for trilinear, 0 for nearest), else
/// [`BORDER`]; for interior lanes the linear index of `floor(c + half)` and the fractions `c -
/// floor(c + half)` (the trilinear fractions when half is 0; index 0 for the others). Returns how
/// many are interior. The volume must have under 2^32 voxels.
fn cells_at_scalar(
    cs: Planes<'_>,
    shape: [usize; 3],
    how: Cells,
    idx: &mut [u32],
    frac: &mut [[f32; RUN]; 3],
    state: &mut [u32],
) -> usize {
    let Cells {
        margin,
        half,
        far_lo,
    } = how;
    let n = idx.len();
    let state = &mut state[..n];
    let [cx, cy, cz] = cs.map(|p| &p[..n]);
    let dims = shape.map(|v| v as f32);
    let hi = dims.map(|v| v - margin - half);
    let (sx, sxy) = (shape[0] as u32, (shape[0] * shape[1]) as u32);
    let [fx, fy, fz] = frac;
    let mut count = 0;
    for l in 0..n {
        let c = [cx[l], cy[l], cz[l]];
        let ok = (0..3).all(|a| c[a] >= -half && c[a] < hi[a]);
        let far = (0..3).any(|a| c[a] + half < far_lo || c[a] + half >= dims[a]);
        // Other lanes take the origin, whose cell exists; the caller overwrites their samples.
        let c = c.map(|v| if ok { v } else { 0.0 });
        // SAFETY: 0 <= c + half < n < 2^31 (the test above, or 0): the conversion is exact
        // truncation (= floor).
        let t = c.map(|v| unsafe { (v + half).to_int_unchecked::<i32>() });
        idx[l] = (t[0] as u32)
            .wrapping_add(sx.wrapping_mul(t[1] as u32))
            .wrapping_add(sxy.wrapping_mul(t[2] as u32));
        fx[l] = c[0] - t[0] as f32;
        fy[l] = c[1] - t[1] as f32;
        fz[l] = c[2] - t[2] as f32;
        state[l] = if ok {
            INTERIOR
        } else if far {
            FAR
        } else {
            BORDER
        };
        count += ok as usize;
    }
    count
}

/// Nearest samples at given coordinates: in runs of [`RUN`], the interior ones' indices in a loop that
/// vectorises, the fill for those past the border, the others checked one by one.
fn nearest_at<T: Voxel>(
    src: &[T],
    shape: [usize; 3],
    fill: Option<T>,
    cs: Planes<'_>,
    out: &mut [T],
    scratch: &mut Scratch,
) {
    let wide = src.len() >= u32::MAX as usize;
    runs(out, cs, scratch, |o, c, s| {
        let n = o.len();
        if wide {
            // Indices past u32: the checked sampler for every voxel (the same values).
            for (l, o) in o.iter_mut().enumerate() {
                *o = sample_nearest_checked(src, shape, [c[0][l], c[1][l], c[2][l]], fill);
            }
            return;
        }
        let count = cells_at(
            c,
            shape,
            Cells::NEAREST,
            &mut s.idx[..n],
            &mut s.frac,
            &mut s.state[..n],
        );
        if count == n {
            for (o, &q) in o.iter_mut().zip(&s.idx[..n]) {
                *o = src[q as usize];
            }
            return;
        }
        for l in 0..n {
            o[l] = match (s.state[l], fill) {
                (INTERIOR, _) => src[s.idx[l] as usize],
                (FAR, Some(v)) => v,
                _ => sample_nearest_checked(src, shape, [c[0][l], c[1][l], c[2][l]], fill),
            };
        }
    });
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Cells, Planes, BORDER, FAR, RUN};
    use std::arch::x86_64::*;

    /// [`super::cells_at_scalar`] eight lanes at a time (the same comparisons, ordered and false on
    /// NaN, and the same arithmetic), the remainder by the scalar loop.
    ///
    /// # Safety
    /// AVX2 must be present; `cs`' planes and `state` at least `idx.len()` (<= RUN) long.
    #[target_feature(enable = "avx2")]
    pub unsafe fn cells_at(
        cs: Planes<'_>,
        shape: [usize; 3],
        how: Cells,
        idx: &mut [u32],
        frac: &mut [[f32; RUN]; 3],
        state: &mut [u32],
    ) -> usize {
        let Cells {
            margin,
            half,
            far_lo,
        } = how;
        let n = idx.len();
        let dims = shape.map(|v| v as f32);
        let hi = dims.map(|v| _mm256_set1_ps(v - margin - half));
        let dims = dims.map(|v| _mm256_set1_ps(v));
        let (lo, h, flo) = (
            _mm256_set1_ps(-half),
            _mm256_set1_ps(half),
            _mm256_set1_ps(far_lo),
        );
        let (sx, sxy) = (
            _mm256_set1_epi32(shape[0] as i32),
            _mm256_set1_epi32((shape[0] * shape[1]) as i32),
        );
        let (far_s, border_s) = (
            _mm256_set1_epi32(FAR as i32),
            _mm256_set1_epi32(BORDER as i32),
        );
        let mut count = 0;
        let mut l = 0;
        while l + 8 <= n {
            let c = cs.map(|p| _mm256_loadu_ps(p.as_ptr().add(l)));
            let mut ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
            let mut far = _mm256_setzero_ps();
            for a in 0..3 {
                let inside = _mm256_and_ps(
                    _mm256_cmp_ps::<_CMP_GE_OQ>(c[a], lo),
                    _mm256_cmp_ps::<_CMP_LT_OQ>(c[a], hi[a]),
                );
                ok = _mm256_and_ps(ok, inside);
                let ch = _mm256_add_ps(c[a], h);
                far = _mm256_or_ps(
                    far,
                    _mm256_or_ps(
                        _mm256_cmp_ps::<_CMP_LT_OQ>(ch, flo),
                        _mm256_cmp_ps::<_CMP_GE_OQ>(ch, dims[a]),
                    ),
                );
            }
            // Other lanes take the origin (+0.0), as in the scalar loop.
            let c = c.map(|v| _mm256_and_ps(v, ok));
            let t = c.map(|v| _mm256_cvttps_epi32(_mm256_add_ps(v, h)));
            let q = _mm256_add_epi32(
                _mm256_add_epi32(t[0], _mm256_mullo_epi32(sx, t[1])),
                _mm256_mullo_epi32(sxy, t[2]),
            );
            _mm256_storeu_si256(idx.as_mut_ptr().add(l).cast(), q);
            for a in 0..3 {
                let f = _mm256_sub_ps(c[a], _mm256_cvtepi32_ps(t[a]));
                _mm256_storeu_ps(frac[a].as_mut_ptr().add(l), f);
            }
            // INTERIOR (0) where ok, else FAR or BORDER.
            let st = _mm256_blendv_epi8(border_s, far_s, _mm256_castps_si256(far));
            let st = _mm256_andnot_si256(_mm256_castps_si256(ok), st);
            _mm256_storeu_si256(state.as_mut_ptr().add(l).cast(), st);
            count += _mm256_movemask_ps(ok).count_ones() as usize;
            l += 8;
        }
        if l < n {
            let rest = cs.map(|p| &p[l..n]);
            let mut f = [[0f32; RUN]; 3];
            count +=
                super::cells_at_scalar(rest, shape, how, &mut idx[l..n], &mut f, &mut state[l..n]);
            for a in 0..3 {
                frac[a][l..n].copy_from_slice(&f[a][..n - l]);
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Coordinates on and around every boundary of the interior tests (and NaN, and far outside).
    fn coords(shape: [usize; 3]) -> Vec<[f32; 3]> {
        let mut edges = vec![f32::NAN, -1e9, 1e9, -3.0, -1.0, -0.0, 0.0, 0.25];
        for a in 0..3 {
            let n = shape[a] as f32;
            for v in [n - 1.5, n - 1.0, n - 0.5, n, n + 0.5] {
                edges.extend([
                    v,
                    f32::from_bits(v.to_bits() - 1),
                    f32::from_bits(v.to_bits() + 1),
                ]);
            }
        }
        edges.extend([-0.5, f32::from_bits((-0.5f32).to_bits() - 1), -0.4999]);
        let mut out = Vec::new();
        let mut h = 12345u64;
        for _ in 0..9003 {
            let mut c = [0f32; 3];
            for v in c.iter_mut() {
                h = h
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *v = if h >> 62 == 0 {
                    edges[(h >> 32) as usize % edges.len()]
                } else {
                    ((h >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 1.5
                };
            }
            out.push(c);
        }
        out
    }

    #[test]
    fn runs_equal_the_checked_samplers_bit_for_bit() {
        let shape = [7, 5, 6];
        let n = shape.iter().product::<usize>();
        let src: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 101) as f32 * 0.37 - 9.0)
            .collect();
        let labels: Vec<u8> = (0..n).map(|i| (i * 31 % 7) as u8).collect();
        let cs = coords(shape);
        let axes: [Vec<f32>; 3] = [0, 1, 2].map(|a| cs.iter().map(|c| c[a]).collect());
        let planes = [&axes[0][..], &axes[1][..], &axes[2][..]];
        for outside in [Outside::Value(-4.5), Outside::Edge] {
            let mut out = vec![0f32; cs.len()];
            linear_at(
                &src,
                shape,
                outside,
                planes,
                &mut out,
                &mut Scratch::default(),
            );
            for (c, o) in cs.iter().zip(&out) {
                let want = sample_linear_checked(&src, shape, *c, outside);
                assert_eq!(o.to_bits(), want.to_bits(), "linear at {c:?} ({outside:?})");
            }
        }
        for fill in [Some(9u8), None] {
            let mut out = vec![0u8; cs.len()];
            nearest_at(
                &labels,
                shape,
                fill,
                planes,
                &mut out,
                &mut Scratch::default(),
            );
            for (c, o) in cs.iter().zip(&out) {
                assert_eq!(
                    *o,
                    sample_nearest_checked(&labels, shape, *c, fill),
                    "nearest at {c:?}"
                );
            }
        }
    }
}
