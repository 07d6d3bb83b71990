//! Scale-and-shift maps (resize, resample to a spacing, zoom without rotation, fractional shifts): each
//! output axis reads one input axis, so an input row interpolated along x serves every output row that
//! reads it (nearer rows share input rows when the output is finer), and y and z blend whole rows in a
//! loop that vectorises. The arithmetic is [`blend8`](super::blend8)'s, in its order: x first, then y,
//! then z, so the result is bit-identical to the general path.

use super::span::{interior, reach, RowSpan};
use super::{lerp, row_setup, sample_linear_checked, Outside, Params};
use crate::error::Result;
use rayon::prelude::*;

/// True when output axis `r` reads input axis `r` only (the 3x3 part is diagonal) and the map is not
/// an integer copy (the caller checks that first).
pub(super) fn is_scaled(p: &Params) -> bool {
    (0..3).all(|r| (0..3).all(|c| r == c || p.m[r][c] == 0.0))
}

/// Input slices along z interpolated along x, kept while output slices read them: row `y` of input
/// slice `z` over the output columns of the interior span.
struct Rows {
    /// `(z, values (sy rows of nx), which rows are filled)`.
    slices: Vec<(usize, Vec<f32>, Vec<bool>)>,
}

impl Rows {
    /// Makes sure row `(y, z)` is interpolated; `keep` names the slices still needed (others are
    /// reused for new ones).
    fn ensure(&mut self, y: usize, z: usize, keep: [usize; 2], fill: impl Fn(&mut [f32])) {
        let at = match self.slices.iter().position(|s| s.0 == z) {
            Some(at) => at,
            None => {
                // Three slices, two kept: one is free.
                let at = self
                    .slices
                    .iter()
                    .position(|s| !keep.contains(&s.0))
                    .expect("a free slice");
                let s = &mut self.slices[at];
                s.0 = z;
                s.2.iter_mut().for_each(|f| *f = false);
                at
            }
        };
        let (_, vals, filled) = &mut self.slices[at];
        if !filled[y] {
            let nx = vals.len() / filled.len();
            fill(&mut vals[y * nx..(y + 1) * nx]);
            filled[y] = true;
        }
    }

    fn row(&self, y: usize, z: usize) -> &[f32] {
        let (_, vals, filled) = self
            .slices
            .iter()
            .find(|s| s.0 == z)
            .expect("ensured before");
        let nx = vals.len() / filled.len();
        &vals[y * nx..(y + 1) * nx]
    }
}

/// Trilinear resampling through a scale-and-shift map (see the module documentation).
pub(super) fn linear_scaled(src: &[f32], outside: Outside, p: &Params) -> Result<Vec<f32>> {
    let [nx, ny, nz] = p.out_shape;
    let [sx, sy, _] = p.in_shape;
    let mut out = crate::exec::cpu::alloc::output::<f32>(nx * ny * nz)?;
    if out.is_empty() {
        return Ok(out);
    }
    // Column tables: x depends on i alone (the shader's `row + m00 * i`, row = m03 + 0 j + 0 k).
    let (base0, step0) = (p.row_base(0, 0)[0], p.m[0][0]);
    let cols: Vec<(usize, f32)> = (0..nx)
        .map(|i| {
            let x = base0 + step0 * i as f32;
            // Only the interior span's entries are used; others are clamped to stay harmless.
            let x0 = (x.max(0.0) as usize).min(sx.saturating_sub(2));
            (x0, x - x0 as f32)
        })
        .collect();
    let slab = 8;
    let fill = match outside {
        Outside::Value(v) => Some(v),
        Outside::Edge => None,
    };
    out.par_chunks_mut(nx * ny * slab)
        .enumerate()
        .for_each_init(
            || Rows {
                slices: (0..3)
                    .map(|_| (usize::MAX, vec![0f32; sy * nx], vec![false; sy]))
                    .collect(),
            },
            |rows, (b, chunk)| {
                let k0 = b * slab;
                for (dk, slice) in chunk.chunks_mut(nx * ny).enumerate() {
                    let k = k0 + dk;
                    for (j, row) in slice.chunks_mut(nx).enumerate() {
                        let base = p.row_base(j, k);
                        let span = RowSpan {
                            inner: interior(p, base, 0.0, 0.0),
                            reach: reach(p, base),
                        };
                        let (coord, (ra, a, b, rb)) = row_setup(p, j, k, span, fill, row);
                        for i in (ra..a).chain(b..rb) {
                            row[i] = sample_linear_checked(src, p.in_shape, coord(i), outside);
                        }
                        if a >= b {
                            continue;
                        }
                        let c = coord(a);
                        // Inside the interior span 0 <= c < n - 1: truncation is floor.
                        let (y0, z0) = (c[1] as usize, c[2] as usize);
                        let (fy, fz) = (c[1] - y0 as f32, c[2] - z0 as f32);
                        for (y, z) in [(y0, z0), (y0 + 1, z0), (y0, z0 + 1), (y0 + 1, z0 + 1)] {
                            rows.ensure(y, z, [z0, z0 + 1], |dst| {
                                let s = &src[(z * sy + y) * sx..(z * sy + y + 1) * sx];
                                interp_x(&mut dst[a..b], s, &cols[a..b]);
                            });
                        }
                        let r = |y, z| &rows.row(y, z)[a..b];
                        blend_rows(
                            &mut row[a..b],
                            [r(y0, z0), r(y0 + 1, z0), r(y0, z0 + 1), r(y0 + 1, z0 + 1)],
                            fy,
                            fz,
                        );
                    }
                }
            },
        );
    Ok(out)
}

crate::simd_fn! {
    /// One input row interpolated along x at the output columns: `dst[i] = lerp(s[x0], s[x0 + 1], fx)`.
    fn interp_x(dst: &mut [f32], s: &[f32], cols: &[(usize, f32)]) -> () = interp_x_body;
}

#[inline(always)]
fn interp_x_body(dst: &mut [f32], s: &[f32], cols: &[(usize, f32)]) {
    for (d, &(x0, fx)) in dst.iter_mut().zip(cols) {
        *d = lerp(s[x0], s[x0 + 1], fx);
    }
}

crate::simd_fn! {
    /// Rows already interpolated along x (y0 z0, y1 z0, y0 z1, y1 z1) blended along y, then z.
    fn blend_rows(dst: &mut [f32], r: [&[f32]; 4], fy: f32, fz: f32) -> () = blend_rows_body;
}

#[inline(always)]
fn blend_rows_body(dst: &mut [f32], r: [&[f32]; 4], fy: f32, fz: f32) {
    let n = dst.len();
    let [r00, r10, r01, r11] = r.map(|v| &v[..n]);
    for i in 0..n {
        dst[i] = lerp(lerp(r00[i], r10[i], fy), lerp(r01[i], r11[i], fy), fz);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{drive, row_linear};
    use super::*;

    /// The general row path (what every map took before this one).
    fn general(src: &[f32], outside: Outside, p: &Params) -> Vec<f32> {
        drive(p, Some((0.0, 0.0)), |j, k, span, row| {
            row_linear(src, outside, p, j, k, span, row)
        })
        .unwrap()
    }

    #[test]
    fn scale_and_shift_maps_match_the_general_path_bit_for_bit() {
        let shape = [23, 17, 13];
        let src: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|i| ((i * 7919) % 1009) as f32 * 0.37 - 50.0)
            .collect();
        // (scales, offsets, output shape): finer, coarser, flipped, partly outside, a single slice.
        let cases: [([f32; 3], [f32; 3], [usize; 3]); 6] = [
            ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [45, 33, 25]),
            ([1.37, 1.21, 1.6], [0.1, -0.3, 0.2], [16, 14, 8]),
            ([-0.8, 0.9, -1.1], [21.7, 0.4, 12.5], [27, 18, 11]),
            ([1.0, 1.0, 1.0], [-3.5, 2.25, 4.75], [23, 17, 13]),
            ([0.7, 1.3, 1.0], [-5.2, -2.0, 0.0], [40, 20, 1]),
            ([2.3, 0.6, 0.9], [30.0, 1.0, 2.0], [9, 30, 15]),
        ];
        for (sc, off, out_shape) in cases {
            let mut m = [[0f32; 4]; 3];
            for r in 0..3 {
                m[r][r] = sc[r];
                m[r][3] = off[r];
            }
            let p = Params {
                m,
                in_shape: shape,
                out_shape,
            };
            assert!(is_scaled(&p));
            for outside in [Outside::Value(-7.5), Outside::Edge, Outside::Value(0.0)] {
                let a = linear_scaled(&src, outside, &p).unwrap();
                let b = general(&src, outside, &p);
                let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{sc:?} {off:?} {outside:?}");
            }
        }
    }
}
