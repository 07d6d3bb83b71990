//! The resampler's displacement-field path (elastic deformations): coordinates through the field for a
//! group of slices, computed once and shared by every volume, then sampled with the checked samplers of
//! `mod.rs` where they leave the interior.

use super::{blend8, sample_linear_checked, sample_nearest_checked, Outside, Params, Spec};
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
        let fi = i as f32;
        let qd = [
            base[0] + m00 * fi + dx[i],
            base[1] + 0.0 * fi + dy[i],
            base[2] + 0.0 * fi + dz[i],
        ];
        let r = |r: &[f32; 4]| r[0] * qd[0] + r[1] * qd[1] + r[2] * qd[2] + r[3];
        *c = [r(&pre[0]), r(&pre[1]), r(&pre[2])];
    }
}

/// Trilinear samples at given coordinates (interior ones without bounds checks).
fn linear_at(src: &[f32], shape: [usize; 3], outside: Outside, cs: &[[f32; 3]], out: &mut [f32]) {
    let [sx, sy, _] = shape;
    let lim = shape.map(|v| v as f32 - 1.0);
    out.par_chunks_mut(1 << 12)
        .zip(cs.par_chunks(1 << 12))
        .for_each(|(o, c)| {
            for (o, c) in o.iter_mut().zip(c) {
                let inside = c[0] >= 0.0
                    && c[0] < lim[0]
                    && c[1] >= 0.0
                    && c[1] < lim[1]
                    && c[2] >= 0.0
                    && c[2] < lim[2];
                *o = if inside {
                    sample_linear_interior(src, sx, sx * sy, *c)
                } else {
                    sample_linear_checked(src, shape, *c, outside)
                };
            }
        });
}

/// Nearest samples at given coordinates (interior ones without bounds checks).
fn nearest_at<T: Voxel>(
    src: &[T],
    shape: [usize; 3],
    fill: Option<T>,
    cs: &[[f32; 3]],
    out: &mut [T],
) {
    let [sx, sy, _] = shape;
    let lim = shape.map(|v| v as f32 - 0.5);
    out.par_chunks_mut(1 << 12)
        .zip(cs.par_chunks(1 << 12))
        .for_each(|(o, c)| {
            for (o, c) in o.iter_mut().zip(c) {
                let inside = c[0] >= -0.5
                    && c[0] < lim[0]
                    && c[1] >= -0.5
                    && c[1] < lim[1]
                    && c[2] >= -0.5
                    && c[2] < lim[2];
                *o = if inside {
                    // SAFETY: c + 0.5 is in [0, n) with n < 2^31: truncation is floor, exact in
                    // i32 (the saturating `as usize` cost three branches a voxel).
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
