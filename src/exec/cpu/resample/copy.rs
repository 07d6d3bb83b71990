//! Maps onto voxel centres (signed permutations with integer offsets: flip, crop, pad, axis
//! permutations) are copies: each output row is a strided copy of an input row, exact for every type.
//! A map that only reverses axes of a grid onto the same shape, crops it or pads it with a constant
//! can also run in the input's own buffer ([`flip_in_place`], [`crop_in_place`], [`pad_in_place`])
//! when the run owns it.

use super::{sample_nearest_checked, Params};
use crate::voxels::{Buf, Voxel};
use rayon::prelude::*;

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

/// Writes output row `(j, k)` of an integer map; returns the part of it that holds input values (the
/// rest holds `fill`).
#[inline(always)]
pub(super) fn row_integer<T: Voxel>(
    src: &[T],
    fill: Option<T>,
    p: &Params,
    im: &IntMap,
    j: usize,
    k: usize,
    dst: &mut [T],
) -> std::ops::Range<usize> {
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
    let lo = lo.clamp(0, nx);
    let hi = hi.clamp(0, nx).max(lo);
    if let Some(f) = fill {
        // Outside [lo, hi) some axis falls off the input at a whole voxel: the fill value (a pad's
        // margins, a whole row of them included, at memset speed).
        dst[..lo as usize].fill(f);
        dst[hi as usize..].fill(f);
    } else {
        for i in (0..lo).chain(hi..nx) {
            let c = [0, 1, 2].map(|r| (start[r] + step[r] * i) as f32);
            dst[i as usize] = sample_nearest_checked(src, p.in_shape, c, fill);
        }
    }
    let held = match fill {
        Some(_) => lo as usize..hi as usize,
        None => 0..dst.len(),
    };
    if lo >= hi {
        return held;
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
    held
}

/// The axes a map reverses when it is a pure flip: output and input shapes equal, no axis permuted, and
/// along every axis either `p_in = p_out` or `p_in = n - 1 - p_out` (every output voxel reads one input
/// voxel, each input voxel is read once). `Some([false; 3])` for the identity.
pub(super) fn flip_axes(p: &Params) -> Option<[bool; 3]> {
    if p.in_shape != p.out_shape {
        return None;
    }
    let im = integer_map(p)?;
    let mut flip = [false; 3];
    for r in 0..3 {
        if im.axis[r] != r {
            return None;
        }
        let last = p.in_shape[r] as i64 - 1;
        flip[r] = match (im.sign[r], im.off[r]) {
            (1, 0) => false,
            (-1, o) if o == last => true,
            _ => return None,
        };
    }
    Some(flip)
}

/// The offsets of a map that only shifts (no axis flipped or permuted): `p_in = p_out + off`.
fn shift(p: &Params) -> Option<[i64; 3]> {
    let im = integer_map(p)?;
    (0..3)
        .all(|r| im.axis[r] == r && im.sign[r] == 1)
        .then_some(im.off)
}

/// The first input voxel of a map that is a pure crop: a [`shift`] whose output box
/// `p_in = p_out + off` lies wholly inside the input (every output voxel read from the input, none
/// filled).
pub(super) fn crop_offset(p: &Params) -> Option<[usize; 3]> {
    let off = shift(p)?;
    (0..3)
        .all(|r| off[r] >= 0 && off[r] as usize + p.out_shape[r] <= p.in_shape[r])
        .then(|| off.map(|o| o as usize))
}

/// Crops `data` (i-fastest, `in_shape`) to the box of `out_shape` at `off` in its own buffer: rows move
/// towards the start in output order (each row's destination lies at or before its source and after
/// every earlier row's, so no row is overwritten before it is read), then the buffer is shortened and
/// its tail handed back (the allocator shrinks a large block where it lies). The same values as the
/// copy [`row_integer`] makes of a [`crop_offset`] map.
///
/// Output k-planes (slabs) move in parallel waves: every slab whose destination ends at or before the
/// first source plane still to be read (that of the wave's first slab, which may overlap its own
/// destination and moves its rows in order on one thread) joins the wave. A crop to 3/4 of each axis
/// needs three to nine waves whatever the size.
pub(super) fn crop_in_place<T: Voxel>(
    data: &mut Buf<T>,
    in_shape: [usize; 3],
    out_shape: [usize; 3],
    off: [usize; 3],
) {
    let [nx, ny, nz] = in_shape;
    let [ox, oy, oz] = out_shape;
    let (plane_in, plane_out) = (nx * ny, ox * oy);
    assert!(data.len() == plane_in * nz && (0..3).all(|r| off[r] + out_shape[r] <= in_shape[r]));
    let base = Shared(data.as_mut_ptr());
    let slab = |k: usize| {
        for j in 0..oy {
            let src = off[0] + (off[1] + j) * nx + (off[2] + k) * plane_in;
            let dst = k * plane_out + j * ox;
            // SAFETY: both rows lie inside the buffer (asserted box); `ptr::copy` allows them to
            // overlap. Within the slab rows move in order, each destination at or before its source
            // and after the earlier rows' (the sequential argument). Across the slabs of a wave: slab
            // k writes [k * A, (k + 1) * A) (A = plane_out) and reads inside input plane off[2] + k;
            // every later slab of the wave ends its destination at or before the first slab's
            // source plane, so at or before every source plane of the wave and of later waves, and
            // destinations are disjoint.
            unsafe { std::ptr::copy(base.at(src), base.at(dst), ox) };
        }
    };
    let mut done = 0;
    while done < oz {
        let m = wave_end(done, off[2], plane_in, plane_out, oz);
        (done..m).into_par_iter().for_each(slab);
        done = m;
    }
    data.truncate(ox * oy * oz);
    data.shrink_to_fit();
}

/// A buffer shared by the slabs of a wave of [`crop_in_place`] or [`pad_in_place`], which touch
/// disjoint ranges of it (see their safety notes).
struct Shared<T>(*mut T);
// SAFETY: the slabs of a wave read and write disjoint ranges of one live buffer.
unsafe impl<T: Send> Send for Shared<T> {}
unsafe impl<T: Send> Sync for Shared<T> {}
impl<T> Shared<T> {
    /// The element at `i` (a method, so closures capture the whole `Shared`).
    fn at(&self, i: usize) -> *mut T {
        // SAFETY: callers pass indices inside the buffer.
        unsafe { self.0.add(i) }
    }
}

/// The first slab of the wave of [`pad_in_place`] that ends below input plane `hi`: slab `hi - 1`,
/// and every lower slab `k` whose destination, starting at `(lead_k + k) * a`, starts at or after the
/// end of slab `hi - 1`'s source, `hi * p` (`p`, `a`: input and output plane sizes, `p <= a`).
fn pad_wave_start(hi: usize, lead_k: usize, p: usize, a: usize) -> usize {
    (hi * p)
        .div_ceil(a.max(1))
        .saturating_sub(lead_k)
        .min(hi - 1)
}

/// The end of the wave of [`crop_in_place`] that starts at output plane `done`: slab `done`, and every
/// later slab `k` whose destination `[k * a, (k + 1) * a)` ends at or before slab `done`'s source plane,
/// which starts at `(off_k + done) * p` (`a`, `p`: output and input plane sizes, `a <= p`).
fn wave_end(done: usize, off_k: usize, p: usize, a: usize, oz: usize) -> usize {
    ((off_k + done) * p / a.max(1)).clamp(done + 1, oz)
}

/// The leading margins of a map that is a pure pad: a [`shift`] that places the input box wholly
/// inside the output at `p_out = p_in + lead` (every input voxel kept, the rest filled).
pub(super) fn pad_lead(p: &Params) -> Option<[usize; 3]> {
    let off = shift(p)?;
    (0..3)
        .all(|r| off[r] <= 0 && off[r].unsigned_abs() as usize + p.in_shape[r] <= p.out_shape[r])
        .then(|| off.map(|o| o.unsigned_abs() as usize))
}

/// Pads `data` (i-fastest, `in_shape`) to `out_shape` with the input at `lead`, in its own buffer: the
/// buffer grows (the allocator may extend it where it lies), rows move towards the end in reverse
/// order (each row's destination lies at or after its source and before every later row's), then
/// every voxel outside the input box takes `fill`. The same values as the copy [`row_integer`] makes
/// of a [`pad_lead`] map with a constant fill.
pub(super) fn pad_in_place<T: Voxel>(
    data: &mut Vec<T>,
    in_shape: [usize; 3],
    out_shape: [usize; 3],
    lead: [usize; 3],
    fill: T,
) -> crate::error::Result<()> {
    let [ix, iy, iz] = in_shape;
    let [ox, oy, oz] = out_shape;
    let n = ox * oy * oz;
    data.try_reserve_exact(n - data.len()).map_err(|_| {
        crate::error::Error::OutOfMemory(format!(
            "a volume could not grow to {out_shape:?} voxels; free memory or use a \
             smaller volume"
        ))
    })?;
    // The grown tail, written in parallel (its pages are faulted in on both threads); rows moved
    // there overwrite its inside, its margins keep the fill.
    let old = data.len();
    data.spare_capacity_mut()[..n - old]
        .par_chunks_mut(1 << 16)
        .for_each(|c| {
            c.iter_mut()
                .for_each(|x| *x = std::mem::MaybeUninit::new(fill))
        });
    // SAFETY: the first `n` elements are initialised (the old ones and the tail just written) and
    // the capacity holds `n` (reserved above).
    unsafe { data.set_len(n) };
    let (plane_in, plane_out) = (ix * iy, ox * oy);
    let base = Shared(data.as_mut_ptr());
    let slab = |k: usize| {
        for j in (0..iy).rev() {
            let src = j * ix + k * plane_in;
            let dst = lead[0] + (lead[1] + j) * ox + (lead[2] + k) * plane_out;
            // SAFETY: both rows lie inside the grown buffer; `ptr::copy` allows overlap. Within the
            // slab rows move in reverse order, each destination at or after its source and before
            // the later rows' (the sequential argument). Across a wave: every slab but the first
            // (the highest) starts its destination at or after the end of the first's source, so
            // after every source of the wave and of later waves; destinations are disjoint planes.
            unsafe { std::ptr::copy(base.at(src), base.at(dst), ix) };
        }
    };
    let mut hi = if ix > 0 { iz } else { 0 };
    while hi > 0 {
        let lo = pad_wave_start(hi, lead[2], plane_in, plane_out);
        (lo..hi).into_par_iter().for_each(slab);
        hi = lo;
    }
    let inside = |v: usize, r: usize, n: usize| v >= lead[r] && v < lead[r] + n;
    // Margins in the grown tail still hold the fill written above (every moved row lands inside the
    // input box): only the planes that start in the old length can hold stale values.
    let stale = old.div_ceil(plane_out.max(1)) * plane_out;
    data[..stale.min(n)]
        .par_chunks_mut(plane_out.max(1))
        .enumerate()
        .for_each(|(k, slice)| {
            for (j, row) in slice.chunks_mut(ox.max(1)).enumerate() {
                if inside(k, 2, iz) && inside(j, 1, iy) {
                    row[..lead[0]].fill(fill);
                    row[lead[0] + ix..].fill(fill);
                } else {
                    row.fill(fill);
                }
            }
        });
    Ok(())
}

/// Reverses `data` (i-fastest, `shape`) along the axes `flip` names, in place: the same values as the
/// copy [`row_integer`] makes of a [`flip_axes`] map, without a second buffer. Pairs of slices (or of
/// rows within a slice) swap their contents, in parallel over slices.
pub(super) fn flip_in_place<T: Copy + Send>(data: &mut [T], shape: [usize; 3], flip: [bool; 3]) {
    let [nx, ny, nz] = shape;
    let plane = nx * ny;
    debug_assert_eq!(data.len(), plane * nz);
    if plane == 0 || nz == 0 || flip == [false; 3] {
        return;
    }
    let [fx, fy, fz] = flip;
    if fz {
        let half = nz / 2;
        let (low, rest) = data.split_at_mut(half * plane);
        let (mid, high) = rest.split_at_mut((nz - 2 * half) * plane);
        low.par_chunks_mut(plane)
            .zip(high.par_chunks_mut(plane).rev())
            .for_each(|(a, b)| {
                for j in 0..ny {
                    let jb = if fy { ny - 1 - j } else { j };
                    swap_rows(
                        &mut a[j * nx..(j + 1) * nx],
                        &mut b[jb * nx..(jb + 1) * nx],
                        fx,
                    );
                }
            });
        flip_plane(mid, nx, fy, fx);
    } else {
        data.par_chunks_mut(plane)
            .for_each(|s| flip_plane(s, nx, fy, fx));
    }
}

/// One slice (or none, when `s` is empty) reversed along y and/or x in place.
fn flip_plane<T: Copy>(s: &mut [T], nx: usize, fy: bool, fx: bool) {
    if s.is_empty() {
        return;
    }
    let ny = s.len() / nx;
    if fy {
        let half = ny / 2;
        let (top, rest) = s.split_at_mut(half * nx);
        let (mid, bottom) = rest.split_at_mut((ny - 2 * half) * nx);
        for (a, b) in top
            .chunks_exact_mut(nx)
            .zip(bottom.chunks_exact_mut(nx).rev())
        {
            swap_rows(a, b, fx);
        }
        if fx {
            mid.reverse();
        }
    } else if fx {
        s.chunks_exact_mut(nx).for_each(|r| r.reverse());
    }
}

/// Exchanges two rows, each reversed when `fx`.
fn swap_rows<T: Copy>(a: &mut [T], b: &mut [T], fx: bool) {
    if fx {
        a.iter_mut()
            .zip(b.iter_mut().rev())
            .for_each(|(x, y)| std::mem::swap(x, y));
    } else {
        a.swap_with_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Mat4;

    /// The pull-back of a flip of `shape` along `flip` (`p_in = n - 1 - p_out` on flipped axes).
    fn flip_params(shape: [usize; 3], flip: [bool; 3]) -> Params {
        let mut m: Mat4 = crate::grid::IDENTITY;
        for r in 0..3 {
            if flip[r] {
                m[r][r] = -1.0;
                m[r][3] = shape[r] as f64 - 1.0;
            }
        }
        Params::new(&m, shape, shape)
    }

    #[test]
    fn flips_in_place_equal_the_copy_on_every_axis_set_and_parity() {
        for shape in [
            [5, 4, 3],
            [4, 5, 6],
            [1, 1, 1],
            [3, 1, 2],
            [1, 7, 1],
            [6, 6, 7],
        ] {
            let n = shape.iter().product::<usize>();
            let src: Vec<u16> = (0..n as u16).map(|v| v.wrapping_mul(7919)).collect();
            for bits in 0..8 {
                let flip = [bits & 1 != 0, bits & 2 != 0, bits & 4 != 0];
                let p = flip_params(shape, flip);
                assert_eq!(flip_axes(&p), Some(flip), "{shape:?} {flip:?}");
                let copy = super::super::resample_nearest(&src, Some(0.0), &p).unwrap();
                let mut own = src.clone();
                flip_in_place(&mut own, shape, flip);
                assert_eq!(own, copy, "{shape:?} {flip:?}");
            }
        }
    }

    /// The pull-back `p_in = p_out + off` between two shapes.
    fn shifted(in_shape: [usize; 3], out_shape: [usize; 3], off: [f64; 3]) -> Params {
        let mut m: Mat4 = crate::grid::IDENTITY;
        for r in 0..3 {
            m[r][3] = off[r];
        }
        Params::new(&m, in_shape, out_shape)
    }

    #[test]
    fn integer_copies_equal_per_voxel_nearest_sampling_with_margins() {
        // Rows wholly outside, partly outside on either side, flips and a permutation with offsets
        // past the edges: the copy (margins at memset speed for a fill) equals sampling each voxel.
        let in_shape = [5, 4, 3];
        let n = in_shape.iter().product::<usize>();
        let src: Vec<i16> = (0..n as i16).map(|v| v * 3 - 20).collect();
        let out_shape = [8, 6, 5];
        let mut maps: Vec<Mat4> = Vec::new();
        for off in [
            [-2.0, -1.0, -1.0],
            [3.0, 2.0, 1.0],
            [-9.0, 0.0, 0.0],
            [0.0, 0.0, 4.0],
        ] {
            let mut m: Mat4 = crate::grid::IDENTITY;
            (0..3).for_each(|r| m[r][3] = off[r]);
            maps.push(m);
        }
        let mut flip: Mat4 = crate::grid::IDENTITY;
        flip[0][0] = -1.0;
        flip[0][3] = 6.0;
        flip[2][2] = -1.0;
        flip[2][3] = 3.0;
        maps.push(flip);
        let mut perm = [[0.0; 4]; 4];
        perm[3][3] = 1.0;
        perm[0][2] = 1.0;
        perm[1][1] = -1.0;
        perm[2][0] = 1.0;
        perm[1][3] = 4.0;
        perm[2][3] = -2.0;
        maps.push(perm);
        for m in &maps {
            let p = Params::new(m, in_shape, out_shape);
            assert!(integer_map(&p).is_some());
            for fill in [Some(-2.0), None] {
                let got = super::super::resample_nearest(&src, fill, &p).unwrap();
                let mut want = Vec::new();
                for k in 0..out_shape[2] {
                    for j in 0..out_shape[1] {
                        for i in 0..out_shape[0] {
                            let o = [i as f32, j as f32, k as f32, 1.0];
                            let c = [0, 1, 2].map(|r| (0..4).map(|a| m[r][a] as f32 * o[a]).sum());
                            want.push(sample_nearest_checked(
                                &src,
                                in_shape,
                                c,
                                fill.map(|f| f as i16),
                            ));
                        }
                    }
                }
                assert_eq!(got, want, "{m:?} fill {fill:?}");
            }
        }
    }

    #[test]
    fn crops_in_place_equal_the_copy() {
        let in_shape = [6, 5, 4];
        let n = in_shape.iter().product::<usize>();
        let src: Vec<i32> = (0..n as i32).map(|v| v * 31 - 7).collect();
        for (out_shape, off) in [
            ([6, 5, 4], [0, 0, 0]),
            ([4, 3, 2], [1, 1, 1]),
            ([2, 5, 4], [4, 0, 0]),
            ([6, 1, 1], [0, 4, 3]),
            ([1, 1, 1], [5, 4, 3]),
            ([3, 2, 4], [0, 3, 0]),
            ([0, 2, 2], [6, 0, 0]),
        ] {
            let p = shifted(in_shape, out_shape, off.map(|o| o as f64));
            assert_eq!(crop_offset(&p), Some(off), "{out_shape:?} at {off:?}");
            let copy = super::super::resample_nearest(&src, Some(0.0), &p).unwrap();
            let mut own: Buf<_> = src.clone().into();
            crop_in_place(&mut own, in_shape, out_shape, off);
            assert_eq!(own, copy, "{out_shape:?} at {off:?}");
        }
        // Many output planes: the parallel waves (from one slab at a time with no k offset to
        // wide waves with one), planes of 30 to 36 rows.
        let big = [37, 9, 64];
        let n = big.iter().product::<usize>();
        let data: Vec<i32> = (0..n as i32).map(|v| v * 7 + 3).collect();
        for (out_shape, off) in [
            ([30, 8, 60], [0, 0, 0]),
            ([30, 8, 60], [7, 1, 4]),
            ([36, 9, 33], [1, 0, 31]),
            ([4, 2, 64], [33, 7, 0]),
        ] {
            let p = shifted(big, out_shape, off.map(|o| o as f64));
            let copy = super::super::resample_nearest(&data, Some(0.0), &p).unwrap();
            for _ in 0..20 {
                let mut own: Buf<_> = data.clone().into();
                crop_in_place(&mut own, big, out_shape, off);
                assert_eq!(own, copy, "{out_shape:?} at {off:?}");
            }
        }
        // Boxes that reach outside (a pad) or flip are not crops.
        let mut m: Mat4 = crate::grid::IDENTITY;
        m[0][3] = -1.0;
        assert_eq!(crop_offset(&Params::new(&m, in_shape, [6, 5, 4])), None);
        m[0][3] = 1.0;
        assert_eq!(crop_offset(&Params::new(&m, in_shape, [6, 5, 4])), None);
        let mut m: Mat4 = crate::grid::IDENTITY;
        m[2][2] = -1.0;
        m[2][3] = 3.0;
        assert_eq!(crop_offset(&Params::new(&m, in_shape, [6, 5, 4])), None);
    }

    #[test]
    fn crop_waves_never_write_a_source_still_to_read() {
        for (p, a) in [(64, 64), (64, 63), (64, 36), (1000, 1), (7, 3)] {
            for off_k in 0..4 {
                for oz in 1..40 {
                    let mut done = 0;
                    while done < oz {
                        let m = wave_end(done, off_k, p, a, oz);
                        assert!(m > done && m <= oz);
                        // Every slab after the first ends its destination before the first's source.
                        assert!((done + 1..m).all(|k| (k + 1) * a <= (off_k + done) * p));
                        // And the wave is as wide as that allows.
                        assert!(m == oz || (m + 1) * a > (off_k + done) * p || m == done + 1);
                        done = m;
                    }
                }
            }
        }
    }

    #[test]
    fn pad_waves_never_write_a_source_still_to_read() {
        for (p, a) in [(64, 64), (63, 64), (36, 64), (1, 1000), (3, 7)] {
            for lead_k in 0..4 {
                for iz in 1..40 {
                    let mut hi = iz;
                    while hi > 0 {
                        let lo = pad_wave_start(hi, lead_k, p, a);
                        assert!(lo < hi);
                        // Every slab below the first starts its destination after the first's source.
                        assert!((lo..hi - 1).all(|k| (lead_k + k) * a >= hi * p));
                        // And the wave is as wide as that allows.
                        assert!(lo == 0 || (lead_k + lo - 1) * a < hi * p || lo == hi - 1);
                        hi = lo;
                    }
                }
            }
        }
    }

    #[test]
    fn pads_in_place_equal_the_copy() {
        let in_shape = [4, 3, 2];
        let n = in_shape.iter().product::<usize>();
        let src: Vec<f32> = (0..n).map(|v| v as f32 * 1.5 + 1.0).collect();
        for (out_shape, lead) in [
            ([4, 3, 2], [0, 0, 0]),
            ([6, 5, 4], [1, 1, 1]),
            ([7, 3, 2], [3, 0, 0]),
            // Margins over the input's old rows (they must be refilled, not left stale).
            ([7, 3, 2], [1, 0, 0]),
            ([5, 4, 3], [0, 1, 1]),
            ([4, 6, 2], [0, 0, 0]),
            ([4, 3, 5], [0, 0, 3]),
            ([9, 8, 7], [5, 2, 4]),
        ] {
            let p = shifted(in_shape, out_shape, lead.map(|l| -(l as f64)));
            assert_eq!(pad_lead(&p), Some(lead), "{out_shape:?} at {lead:?}");
            let copy = super::super::resample_nearest(&src, Some(-2.0), &p).unwrap();
            let mut own = src.clone();
            pad_in_place(&mut own, in_shape, out_shape, lead, -2.0).unwrap();
            assert_eq!(own, copy, "{out_shape:?} at {lead:?}");
        }
        // Many input planes: the parallel waves (one slab at a time without a k margin, wider
        // waves with one).
        let big = [30, 8, 60];
        let data: Vec<f32> = (0..big.iter().product::<usize>())
            .map(|v| v as f32 * 0.5)
            .collect();
        for (out_shape, lead) in [
            ([37, 9, 60], [0, 0, 0]),
            ([37, 9, 64], [7, 1, 4]),
            ([31, 8, 93], [1, 0, 33]),
        ] {
            let p = shifted(big, out_shape, lead.map(|l| -(l as f64)));
            let copy = super::super::resample_nearest(&data, Some(-2.0), &p).unwrap();
            for _ in 0..20 {
                let mut own = data.clone();
                pad_in_place(&mut own, big, out_shape, lead, -2.0).unwrap();
                assert_eq!(own, copy, "{out_shape:?} at {lead:?}");
            }
        }
        // Boxes that cut the input (a crop, a shift past the end) are not pads.
        let mut m: Mat4 = crate::grid::IDENTITY;
        m[1][3] = 1.0;
        assert_eq!(pad_lead(&Params::new(&m, in_shape, [4, 5, 2])), None);
        m[1][3] = -3.0;
        assert_eq!(pad_lead(&Params::new(&m, in_shape, [4, 5, 2])), None);
    }

    #[test]
    fn only_pure_flips_run_in_place() {
        let shape = [4, 5, 6];
        let mut m = crate::grid::IDENTITY;
        // A shift by one voxel: integer, but it reads outside.
        m[0][3] = 1.0;
        assert_eq!(flip_axes(&Params::new(&m, shape, shape)), None);
        // A flip whose offset misses the last voxel.
        let mut m = crate::grid::IDENTITY;
        m[1][1] = -1.0;
        m[1][3] = 3.0;
        assert_eq!(flip_axes(&Params::new(&m, shape, shape)), None);
        // An axis swap of a cube.
        let mut m = crate::grid::IDENTITY;
        m[0] = [0.0, 1.0, 0.0, 0.0];
        m[1] = [1.0, 0.0, 0.0, 0.0];
        assert_eq!(flip_axes(&Params::new(&m, [4, 4, 4], [4, 4, 4])), None);
        // A crop.
        assert_eq!(
            flip_axes(&Params::new(&crate::grid::IDENTITY, shape, [4, 5, 5])),
            None
        );
    }
}
