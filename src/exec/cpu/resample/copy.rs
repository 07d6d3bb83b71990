//! Maps onto voxel centres (signed permutations with integer offsets: flip, crop, pad, axis
//! permutations) are copies: each output row is a strided copy of an input row, exact for every type.

use super::{sample_nearest_checked, Params};
use crate::voxels::Voxel;

/// Signed-permutation map with integer offsets: `p_in[r] = sign[r] * p_out[axis[r]] + off[r]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct IntMap {
    axis: [usize; 3],
    sign: [i64; 3],
    off: [i64; 3],
}

/// Whether pull-back rows `m` are a signed permutation with integer offsets (flip, crop, pad, axis
/// permutations): every sample lands on a voxel centre and resampling is a copy. The GPU then fetches
/// one texel instead of blending eight: the same values, without the blend's `(b - a) * 0`, which is
/// NaN where neighbours differ by more than f32 holds.
pub fn is_integer_map(m: &[[f32; 4]; 3]) -> bool {
    integer_rows(m).is_some()
}

pub(super) fn integer_map(p: &Params) -> Option<IntMap> {
    integer_rows(&p.m)
}

fn integer_rows(m: &[[f32; 4]; 3]) -> Option<IntMap> {
    let mut axis = [0usize; 3];
    let mut sign = [0i64; 3];
    let mut off = [0i64; 3];
    let mut used = [false; 3];
    for r in 0..3 {
        let mut found = None;
        for c in 0..3 {
            let v = m[r][c];
            if v == 1.0 || v == -1.0 {
                if found.is_some() {
                    return None;
                }
                found = Some((c, v as i64));
            } else if v != 0.0 {
                return None;
            }
        }
        let (c, s) = found?;
        if used[c] {
            return None;
        }
        used[c] = true;
        axis[r] = c;
        sign[r] = s;
        let t = m[r][3];
        if t.fract() != 0.0 || t.abs() > 1e9 {
            return None;
        }
        off[r] = t as i64;
    }
    Some(IntMap { axis, sign, off })
}

pub(super) fn row_integer<T: Voxel>(
    src: &[T],
    fill: Option<T>,
    p: &Params,
    im: &IntMap,
    j: usize,
    k: usize,
    dst: &mut [T],
) {
    let out_idx = [0i64, j as i64, k as i64];
    let shape = p.in_shape.map(|n| n as i64);
    // Input coordinate at i = 0 and its change per step of i.
    let mut start = [0i64; 3];
    let mut step = [0i64; 3];
    for r in 0..3 {
        start[r] = im.sign[r] * out_idx[im.axis[r]] + im.off[r];
        step[r] = if im.axis[r] == 0 { im.sign[r] } else { 0 };
    }
    let stride = [1i64, shape[0], shape[0] * shape[1]];
    let nx = dst.len() as i64;
    // Valid span of i: 0 <= start + step * i < n on every axis.
    let (mut lo, mut hi) = (0i64, nx);
    for r in 0..3 {
        let (s0, st, n) = (start[r], step[r], shape[r]);
        if st == 0 {
            if s0 < 0 || s0 >= n {
                lo = 0;
                hi = 0;
            }
        } else if st > 0 {
            lo = lo.max(-s0);
            hi = hi.min(n - s0);
        } else {
            lo = lo.max(s0 - n + 1);
            hi = hi.min(s0 + 1);
        }
    }
    let lin = |i: i64| -> i64 { (0..3).map(|r| (start[r] + step[r] * i) * stride[r]).sum() };
    let hi = hi.max(lo);
    for i in (0..lo.min(nx)).chain(hi..nx) {
        let c = [0, 1, 2].map(|r| (start[r] + step[r] * i) as f32);
        dst[i as usize] = sample_nearest_checked(src, p.in_shape, c, fill);
    }
    if lo >= hi {
        return;
    }
    let first = lin(lo);
    let d: i64 = (0..3).map(|r| step[r] * stride[r]).sum();
    let len = (hi - lo) as usize;
    let out = &mut dst[lo as usize..hi as usize];
    // Contiguous runs copy as slices (a flip along i is a reversed copy, which vectorises); other
    // strides walk the source with `step_by` (no per-voxel bounds check).
    let first = first as usize;
    match d {
        1 => out.copy_from_slice(&src[first..first + len]),
        -1 => {
            let run = &src[first + 1 - len..=first];
            out.iter_mut()
                .zip(run.iter().rev())
                .for_each(|(o, &x)| *o = x);
        }
        d if d > 0 => out
            .iter_mut()
            .zip(src[first..].iter().step_by(d as usize))
            .for_each(|(o, &x)| *o = x),
        d => {
            let step = d.unsigned_abs() as usize;
            let start = first - step * (len - 1);
            out.iter_mut()
                .zip(src[start..=first].iter().step_by(step).rev())
                .for_each(|(o, &x)| *o = x);
        }
    }
}
