//! The resampler's displacement-field path (elastic deformations): coordinates through the field for a
//! group of slices, computed once and shared by every volume, then sampled with the checked samplers of
//! `mod.rs` where they leave the interior.

use super::{
    blend8, blend_run, sample_linear_checked, sample_nearest_checked, Outside, Params, Spec, RUN,
};
use crate::error::Result;
use crate::transform::SamplingMap;
use crate::voxels::{Voxel, Voxels};
use rayon::prelude::*;

/// Resampling through a map with a displacement field: `c = matrix * (q + d(q))`, `q = post * p`, each
/// in the same f32 operation order as the shader. The coordinates of a group of slices are computed once
/// (the field's interpolation is the costly part) and shared by every volume.
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
    let slice = nx * ny;
    if n == 0 {
        return Ok(outs);
    }
    // Slices per group: enough rows for every thread, coordinates bounded to ~12 MiB.
    let group =
        (((1usize << 20) / slice.max(1)).max(rayon::current_num_threads() * 2)).clamp(1, nz);
    // A pooled buffer (12 MiB at 256^3: fresh pages cost the kernel a clear each call); every entry
    // used is written before it is read.
    let mut flat = crate::exec::cpu::alloc::output::<f32>(3 * slice * group)?;
    let coords: &mut [[f32; 3]] = bytemuck::cast_slice_mut(&mut flat);
    // When i moves q along x only, the field's y/z interpolation is shared by the whole row.
    let row_aligned = post.m[1][0] == 0.0 && post.m[2][0] == 0.0;
    for k0 in (0..nz).step_by(group) {
        let g = group.min(nz - k0);
        let cs = &mut coords[..g * slice];
        cs.par_chunks_mut(nx).enumerate().for_each_init(
            || (Vec::new(), [Vec::new(), Vec::new(), Vec::new()], Vec::new()),
            |(line, d, nodes), (r, row)| {
                let (j, k) = (r % ny, k0 + r / ny);
                let base = post.row_base(j, k);
                if row_aligned {
                    // The row's displacements first (a lookup into the coarse line per voxel),
                    // then the coordinates in a loop that vectorises.
                    field.line(base[1], base[2], line);
                    for dd in d.iter_mut() {
                        dd.resize(nx, 0.0);
                    }
                    let [dx, dy, dz] = d;
                    field.row_from_line(line, base[0], post.m[0][0], [dx, dy, dz], nodes);
                    row_coords(&pre, base, post.m[0][0], [&dx[..], &dy[..], &dz[..]], row);
                    return;
                }
                for (i, c) in row.iter_mut().enumerate() {
                    let fi = i as f32;
                    let q = [
                        base[0] + post.m[0][0] * fi,
                        base[1] + post.m[1][0] * fi,
                        base[2] + post.m[2][0] * fi,
                    ];
                    let d = field.at(q);
                    let qd = [q[0] + d[0], q[1] + d[1], q[2] + d[2]];
                    let row = |r: &[f32; 4]| r[0] * qd[0] + r[1] * qd[1] + r[2] * qd[2] + r[3];
                    *c = [row(&pre[0]), row(&pre[1]), row(&pre[2])];
                }
            },
        );
        let cs = &coords[..g * slice];
        let range = k0 * slice..(k0 + g) * slice;
        for (s, out) in specs.iter().zip(outs.iter_mut()) {
            match (*s, out) {
                (Spec::Linear(src, outside), Voxels::F32(o)) => {
                    linear_at(src, in_shape, outside, cs, &mut o[range.clone()])
                }
                (Spec::Nearest(src, fill), out) => crate::with_voxels!(out, o => {
                    let src = Voxel::slice(src).expect("outputs take their input's type");
                    nearest_at(src, in_shape, fill.map(Voxel::from_f64), cs, &mut o[range.clone()])
                }),
                (Spec::Argmax(src, fill), out) => crate::with_voxels!(out, o => {
                    let src = Voxel::slice(src).expect("outputs take their input's type");
                    let fill = fill.map(Voxel::from_f64);
                    o[range.clone()]
                        .par_iter_mut()
                        .zip(cs.par_iter())
                        .for_each(|(o, c)| *o = super::sample_argmax_checked(src, in_shape, *c, fill));
                }),
                _ => unreachable!("image outputs are f32"),
            }
        }
    }
    crate::exec::cpu::alloc::recycle(flat);
    Ok(outs)
}

crate::simd_fn! {
    /// Coordinates of a row whose fine `q` moves along x only: `c = pre * (q + d)` with `q = base +
    /// (m00 i, 0, 0)`, in the per-voxel path's operation order (AVX2 where the CPU has it).
    fn row_coords(
        pre: &[[f32; 4]; 3],
        base: [f32; 3],
        m00: f32,
        d: [&[f32]; 3],
        row: &mut [[f32; 3]],
    ) -> () = row_coords_body;
}

#[inline(always)]
fn row_coords_body(
    pre: &[[f32; 4]; 3],
    base: [f32; 3],
    m00: f32,
    d: [&[f32]; 3],
    row: &mut [[f32; 3]],
) {
    let n = row.len();
    let [dx, dy, dz] = d.map(|v| &v[..n]);
    for (i, c) in row.iter_mut().enumerate() {
        let fi = crate::simd::index_f32(i);
        let qd = [
            base[0] + m00 * fi + dx[i],
            base[1] + 0.0 * fi + dy[i],
            base[2] + 0.0 * fi + dz[i],
        ];
        let r = |r: &[f32; 4]| r[0] * qd[0] + r[1] * qd[1] + r[2] * qd[2] + r[3];
        *c = [r(&pre[0]), r(&pre[1]), r(&pre[2])];
    }
}

/// Trilinear samples at given coordinates: in runs of [`RUN`], the interior ones' indices and
/// fractions in a loop that vectorises and their blends eight at a time ([`blend_run`]), the others
/// (near or past the border) checked one by one.
fn linear_at(src: &[f32], shape: [usize; 3], outside: Outside, cs: &[[f32; 3]], out: &mut [f32]) {
    let [sx, sy, _] = shape;
    if src.len() >= u32::MAX as usize {
        // Indices past u32: the per-voxel path.
        out.par_chunks_mut(1 << 12)
            .zip(cs.par_chunks(1 << 12))
            .for_each(|(o, c)| {
                for (o, c) in o.iter_mut().zip(c) {
                    *o = if interior(*c, shape, 1.0, 0.0) {
                        sample_linear_interior(src, sx, sx * sy, *c)
                    } else {
                        sample_linear_checked(src, shape, *c, outside)
                    };
                }
            });
        return;
    }
    out.par_chunks_mut(1 << 12)
        .zip(cs.par_chunks(1 << 12))
        .for_each(|(o, c)| {
            let (mut idx, mut frac, mut inside) = ([0u32; RUN], [[0f32; RUN]; 3], [false; RUN]);
            for (o, c) in o.chunks_mut(RUN).zip(c.chunks(RUN)) {
                let n = o.len();
                let all = cells_at(
                    c,
                    shape,
                    1.0,
                    0.0,
                    &mut idx[..n],
                    &mut frac,
                    &mut inside[..n],
                );
                if all > 0 {
                    blend_run(src, [sx, sx * sy], &idx[..n], &frac, o);
                }
                if all < n {
                    for l in (0..n).filter(|&l| !inside[l]) {
                        o[l] = sample_linear_checked(src, shape, c[l], outside);
                    }
                }
            }
        });
}

/// Whether `c` is in `[lo, n - margin)` on every axis.
#[inline(always)]
fn interior(c: [f32; 3], shape: [usize; 3], margin: f32, lo: f32) -> bool {
    (0..3).all(|a| c[a] >= lo && c[a] < shape[a] as f32 - margin)
}

crate::simd_fn! {
    /// For coordinates `cs`: whether each is interior (`inside`: in `[-half, n - margin - half)` on
    /// every axis: margin 1, half 0 for a trilinear cell whose eight corners exist; margin 0, half 0.5
    /// for rounding to the nearest voxel), and for those the linear index of `floor(c + half)` and the
    /// fractions `c - floor(c + half)` (the trilinear fractions when half is 0; index 0 for the
    /// others). Returns how many are interior. The volume must have under 2^32 voxels.
    fn cells_at(
        cs: &[[f32; 3]],
        shape: [usize; 3],
        margin: f32,
        half: f32,
        idx: &mut [u32],
        frac: &mut [[f32; RUN]; 3],
        inside: &mut [bool],
    ) -> usize = cells_at_body;
}

#[inline(always)]
fn cells_at_body(
    cs: &[[f32; 3]],
    shape: [usize; 3],
    margin: f32,
    half: f32,
    idx: &mut [u32],
    frac: &mut [[f32; RUN]; 3],
    inside: &mut [bool],
) -> usize {
    let n = idx.len();
    let (cs, inside) = (&cs[..n], &mut inside[..n]);
    let lim = shape.map(|v| v as f32 - margin);
    let (sx, sxy) = (shape[0] as u32, (shape[0] * shape[1]) as u32);
    let [fx, fy, fz] = frac;
    let mut count = 0;
    for l in 0..n {
        let c = cs[l];
        let ok = c[0] >= -half
            && c[0] < lim[0] - half
            && c[1] >= -half
            && c[1] < lim[1] - half
            && c[2] >= -half
            && c[2] < lim[2] - half;
        // Outside lanes take the origin, whose cell exists; the caller overwrites their samples.
        let c = [0, 1, 2].map(|a| if ok { c[a] } else { 0.0 });
        // SAFETY: 0 <= c + half < n < 2^31 (the test above, or 0): the conversion is exact
        // truncation (= floor).
        let t = c.map(|v| unsafe { (v + half).to_int_unchecked::<i32>() });
        idx[l] = (t[0] as u32)
            .wrapping_add(sx.wrapping_mul(t[1] as u32))
            .wrapping_add(sxy.wrapping_mul(t[2] as u32));
        fx[l] = c[0] - t[0] as f32;
        fy[l] = c[1] - t[1] as f32;
        fz[l] = c[2] - t[2] as f32;
        inside[l] = ok;
        count += ok as usize;
    }
    count
}

/// Nearest samples at given coordinates: in runs of [`RUN`], the interior ones' indices in a loop that
/// vectorises, the others checked one by one.
fn nearest_at<T: Voxel>(
    src: &[T],
    shape: [usize; 3],
    fill: Option<T>,
    cs: &[[f32; 3]],
    out: &mut [T],
) {
    let [sx, sy, _] = shape;
    if src.len() >= u32::MAX as usize {
        out.par_chunks_mut(1 << 12)
            .zip(cs.par_chunks(1 << 12))
            .for_each(|(o, c)| {
                for (o, c) in o.iter_mut().zip(c) {
                    *o = if interior(*c, shape, 0.5, -0.5) {
                        // SAFETY: c + 0.5 is in [0, n) with n < 2^31: truncation is floor, exact
                        // in i32.
                        let (x, y, z) = unsafe {
                            (
                                (c[0] + 0.5).to_int_unchecked::<i32>() as usize,
                                (c[1] + 0.5).to_int_unchecked::<i32>() as usize,
                                (c[2] + 0.5).to_int_unchecked::<i32>() as usize,
                            )
                        };
                        src[x + sx * (y + sy * z)]
                    } else {
                        sample_nearest_checked(src, shape, *c, fill)
                    };
                }
            });
        return;
    }
    out.par_chunks_mut(1 << 12)
        .zip(cs.par_chunks(1 << 12))
        .for_each(|(o, c)| {
            let (mut idx, mut frac, mut inside) = ([0u32; RUN], [[0f32; RUN]; 3], [false; RUN]);
            for (o, c) in o.chunks_mut(RUN).zip(c.chunks(RUN)) {
                let n = o.len();
                cells_at(
                    c,
                    shape,
                    0.0,
                    0.5,
                    &mut idx[..n],
                    &mut frac,
                    &mut inside[..n],
                );
                for l in 0..n {
                    o[l] = if inside[l] {
                        src[idx[l] as usize]
                    } else {
                        sample_nearest_checked(src, shape, c[l], fill)
                    };
                }
            }
        });
}

/// Trilinear sample known to have all eight neighbours inside (`0 <= c < n - 1`: truncation is floor).
#[inline(always)]
fn sample_linear_interior(src: &[f32], sx: usize, sxy: usize, c: [f32; 3]) -> f32 {
    // SAFETY: 0 <= c < n - 1 < 2^31 (the caller's check): truncation is floor, exact in i32.
    let corner = unsafe {
        [
            c[0].to_int_unchecked::<i32>() as usize,
            c[1].to_int_unchecked::<i32>() as usize,
            c[2].to_int_unchecked::<i32>() as usize,
        ]
    };
    blend8(src, sx, sxy, corner, c)
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
        for _ in 0..4000 {
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
        for outside in [Outside::Value(-4.5), Outside::Edge] {
            let mut out = vec![0f32; cs.len()];
            linear_at(&src, shape, outside, &cs, &mut out);
            for (c, o) in cs.iter().zip(&out) {
                let want = sample_linear_checked(&src, shape, *c, outside);
                assert_eq!(o.to_bits(), want.to_bits(), "linear at {c:?} ({outside:?})");
            }
        }
        for fill in [Some(9u8), None] {
            let mut out = vec![0u8; cs.len()];
            nearest_at(&labels, shape, fill, &cs, &mut out);
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
