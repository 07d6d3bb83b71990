//! Transposes between voxaug's voxel order (i fastest, numpy's Fortran order) and numpy's and torch's
//! default C order (k fastest), shared by arrays entering voxaug and by the loader's batches.

use rayon::prelude::*;

/// `dst` in C order (k fastest) from `src` in Fortran order (i fastest), both of `shape`. For each j
/// that is a transpose of the (i, k) plane, done in 16 x 16 tiles, slabs of 16 along i of `dst` in
/// parallel (on the caller's rayon pool). Whole tiles of 4-byte voxels (images, 32-bit labels) are
/// transposed in AVX2 registers as four 8 x 8 blocks; other tiles go through a local tile (16 source
/// rows along i copied in, 16 destination rows along k written out). At 128^3, a loader batch of two
/// f32 images and two uint8 label maps (standalone, same minutes): 6.3-8.9 ms (mostly 6.5), the local
/// tile alone 8.4-10.8, a per-voxel strided walk 15.4-15.5, a plain copy 2.3-2.8.
///
/// The other direction is the same function: a C-ordered `(X, Y, Z)` array is a Fortran-ordered
/// `(Z, Y, X)` one, so [`c_to_fortran`] calls this with the shape reversed.
///
/// Every voxel of `dst` is written (old values allowed).
pub fn fortran_to_c<T: Copy + Send + Sync + Default + 'static>(
    src: &[T],
    shape: [usize; 3],
    dst: &mut [T],
) {
    let [nx, ny, nz] = shape;
    assert!(
        src.len() == nx * ny * nz && dst.len() == src.len(),
        "sizes match the shape"
    );
    if dst.is_empty() {
        return;
    }
    const TILE: usize = 16;
    // 4-byte voxels move as their bits in f32 lanes (shuffles do not touch the bits); voxaug's own
    // dispatch rule (`VOXAUG_SIMD` included).
    let wide = size_of::<T>() == 4 && align_of::<T>() == 4 && voxaug::simd::avx2();
    let (ss, ds) = (nx * ny, ny * nz);
    dst.par_chunks_mut(TILE * ny * nz)
        .enumerate()
        .for_each(|(t, block)| {
            let i0 = t * TILE;
            let ni = block.len() / (ny * nz);
            let mut tile = [[T::default(); TILE]; TILE];
            for j in 0..ny {
                for k0 in (0..nz).step_by(TILE) {
                    let nk = TILE.min(nz - k0);
                    let (s0, d0) = (i0 + nx * (j + ny * k0), k0 + nz * j);
                    if wide && ni == TILE && nk == TILE {
                        // The tile's last source and destination voxels exist.
                        assert!(s0 + 15 * ss + 15 < src.len());
                        assert!(d0 + 15 * ds + 15 < block.len());
                        #[cfg(target_arch = "x86_64")]
                        for (bi, bk) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
                            // SAFETY: AVX2 is present (`wide`); T is 4 bytes with 4-byte
                            // alignment; every read and write is inside the tile, whose corners
                            // are checked above.
                            unsafe {
                                x86::block8(
                                    src.as_ptr().add(s0 + bi + ss * bk).cast(),
                                    ss,
                                    block.as_mut_ptr().add(d0 + bk + ds * bi).cast(),
                                    ds,
                                )
                            }
                        }
                        continue;
                    }
                    // tile[dk][di]: source row (j, k0 + dk) at i0 + di.
                    if ni == TILE && nk == TILE {
                        // Whole tiles with fixed lengths: no bounds checks in the loops.
                        for (dk, row) in tile.iter_mut().enumerate() {
                            let s = &src[s0 + ss * dk..][..TILE];
                            *row = s.try_into().expect("a tile row");
                        }
                        // di indexes the tile's columns and the destination's rows.
                        #[allow(clippy::needless_range_loop)]
                        for di in 0..TILE {
                            let d: &mut [T; TILE] = (&mut block[d0 + ds * di..][..TILE])
                                .try_into()
                                .expect("a tile row");
                            for (dk, d) in d.iter_mut().enumerate() {
                                *d = tile[dk][di];
                            }
                        }
                        continue;
                    }
                    for (dk, row) in tile[..nk].iter_mut().enumerate() {
                        let s = &src[s0 + ss * dk..][..ni];
                        row[..ni].copy_from_slice(s);
                    }
                    for di in 0..ni {
                        let d = &mut block[d0 + ds * di..][..nk];
                        for (dk, d) in d.iter_mut().enumerate() {
                            *d = tile[dk][di];
                        }
                    }
                }
            }
        });
}

/// `dst` in Fortran order (i fastest) from `src` in C order (k fastest), both of `shape` (see
/// [`fortran_to_c`]).
pub fn c_to_fortran<T: Copy + Send + Sync + Default + 'static>(
    src: &[T],
    shape: [usize; 3],
    dst: &mut [T],
) {
    let [nx, ny, nz] = shape;
    fortran_to_c(src, [nz, ny, nx], dst)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `dst[c * ds + r] = src[r * ss + c]` for `r, c < 8`: an 8 x 8 block of 4-byte values transposed
    /// in registers (unpacks, shuffles and lane permutes move bits only).
    ///
    /// # Safety
    /// AVX2 must be present; the eight rows of eight values at `src` (stride `ss`) and at `dst`
    /// (stride `ds`) must be readable and writable.
    #[target_feature(enable = "avx2")]
    pub unsafe fn block8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ss)));
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for c in 0..4 {
            _mm256_storeu_ps(
                dst.add(c * ds),
                _mm256_permute2f128_ps::<0x20>(u[c], u[c + 4]),
            );
            _mm256_storeu_ps(
                dst.add((c + 4) * ds),
                _mm256_permute2f128_ps::<0x31>(u[c], u[c + 4]),
            );
        }
    }
}
