//! Large crops copied past the cache: rows of a crop inside the input whose output does not fit the
//! cache whole are written with non-temporal stores (no read of each output line before it is
//! written). The same values as the copies of `copy.rs`.

use super::copy::crop_offset;
use super::Params;
use crate::error::Result;
use crate::voxels::Voxel;

/// Outputs at least this large are written past the cache where they are crops (see
/// [`streamed_crop`]).
const STREAM_BYTES: usize = 8 << 20;

/// The offset of a crop inside the input ([`crop_offset`]) whose output of `T` is large enough to be
/// copied with non-temporal stores ([`stream_copy`]): it does not fit the cache whole anyway, and a
/// store that bypasses the cache skips reading each line in before writing it, a third of a copy's
/// memory traffic (256^3 f32 + uint8 label map cropped to 192^3: 2.3-2.4 -> 1.5-1.6 ms steady, 2
/// threads, AMD EPYC). Pads keep ordinary stores: streaming the copied part of rows that also hold
/// fill made them 1.3x slower.
pub(super) fn streamed_crop<T>(p: &Params) -> Option<[usize; 3]> {
    let bytes = p.out_shape.iter().product::<usize>() * std::mem::size_of::<T>();
    if !cfg!(target_arch = "x86_64") || bytes < STREAM_BYTES {
        return None;
    }
    crop_offset(p)
}

/// Row `(j, k)` of the crop at `off`: `src`'s run that the row is (`len` voxels).
fn crop_row<'s, T>(
    src: &'s [T],
    p: &Params,
    off: [usize; 3],
    j: usize,
    k: usize,
    len: usize,
) -> &'s [T] {
    let [nx, ny, _] = p.in_shape;
    let s = off[0] + (off[1] + j) * nx + (off[2] + k) * nx * ny;
    &src[s..s + len]
}

/// `dst.copy_from_slice(src)` with non-temporal 16-byte stores (SSE2, in every x86-64) for the
/// aligned middle. [`store_fence`] must follow before the data is read by another thread.
fn stream_copy<T: Copy>(dst: &mut [T], src: &[T]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let n = std::mem::size_of_val(dst);
        let d = dst.as_mut_ptr().cast::<u8>();
        let s = src.as_ptr().cast::<u8>();
        let head = d.align_offset(16).min(n);
        // SAFETY: `dst` and `src` are distinct slices of `n` bytes (one `&mut`, one `&`); every
        // access below stays inside them, and the streaming stores are at 16-byte aligned addresses
        // (`head` aligns `d`).
        unsafe {
            std::ptr::copy_nonoverlapping(s, d, head);
            let mut i = head;
            while i + 64 <= n {
                let a = _mm_loadu_si128(s.add(i).cast());
                let b = _mm_loadu_si128(s.add(i + 16).cast());
                let c = _mm_loadu_si128(s.add(i + 32).cast());
                let e = _mm_loadu_si128(s.add(i + 48).cast());
                _mm_stream_si128(d.add(i).cast(), a);
                _mm_stream_si128(d.add(i + 16).cast(), b);
                _mm_stream_si128(d.add(i + 32).cast(), c);
                _mm_stream_si128(d.add(i + 48).cast(), e);
                i += 64;
            }
            while i + 16 <= n {
                _mm_stream_si128(d.add(i).cast(), _mm_loadu_si128(s.add(i).cast()));
                i += 16;
            }
            std::ptr::copy_nonoverlapping(s.add(i), d.add(i), n - i);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// Orders this thread's non-temporal stores before its later stores, so before the end of its task
/// is seen by the thread that joins it.
pub(super) fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// A large crop inside the input ([`streamed_crop`]): each output row copied from its input run past
/// the cache, `scan` of the run (in cache) returned as the largest of its values.
pub(super) fn crop_streamed<T: Voxel>(
    src: &[T],
    p: &Params,
    off: [usize; 3],
    scan: impl Fn(&[T]) -> u32 + Sync,
) -> Result<(Vec<T>, u32)> {
    super::drive_max(p, None, true, |j, k, _, row| {
        let run = crop_row(src, p, off, j, k, row.len());
        stream_copy(row, run);
        scan(run)
    })
}
