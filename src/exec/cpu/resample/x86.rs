//! AVX2 bodies of the interior runs of the trilinear resampler (`cells`, `blend_run` in `mod.rs`
//! dispatch here when the CPU has AVX2; the same operations in the same order as their scalar forms).

use super::RUN;
use std::arch::x86_64::*;

/// `a + (b - a) t` on eight lanes (the scalar `lerp`'s operations).
#[inline(always)]
unsafe fn lerp8(a: __m256, b: __m256, t: __m256) -> __m256 {
    _mm256_add_ps(a, _mm256_mul_ps(_mm256_sub_ps(b, a), t))
}

/// [`super::cells_scalar`] eight lanes at a time (the same operations in the same order); a last
/// partial group is computed whole and only its first lanes are kept.
///
/// # Safety
/// AVX2 must be present and `idx.len() <= RUN`.
#[target_feature(enable = "avx2")]
pub unsafe fn cells(
    base: [f32; 3],
    step: [f32; 3],
    i0: usize,
    half: f32,
    strides: [usize; 2],
    idx: &mut [u32],
    frac: &mut [[f32; RUN]; 3],
) {
    let n = idx.len();
    let b = base.map(|v| _mm256_set1_ps(v));
    let st = step.map(|v| _mm256_set1_ps(v));
    let h = _mm256_set1_ps(half);
    let (sx, sxy) = (
        _mm256_set1_epi32(strides[0] as i32),
        _mm256_set1_epi32(strides[1] as i32),
    );
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut l = 0;
    while l < n {
        let fi = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_set1_epi32((i0 + l) as i32), lanes));
        let c = [0, 1, 2].map(|r| _mm256_add_ps(_mm256_add_ps(b[r], _mm256_mul_ps(st[r], fi)), h));
        let t = c.map(|v| _mm256_cvttps_epi32(v));
        let q = _mm256_add_epi32(
            _mm256_add_epi32(t[0], _mm256_mullo_epi32(sx, t[1])),
            _mm256_mullo_epi32(sxy, t[2]),
        );
        // `frac` holds RUN lanes and l + 8 <= RUN: whole groups are stored there.
        for r in 0..3 {
            let f = _mm256_sub_ps(c[r], _mm256_cvtepi32_ps(t[r]));
            _mm256_storeu_ps(frac[r].as_mut_ptr().add(l), f);
        }
        if l + 8 <= n {
            _mm256_storeu_si256(idx.as_mut_ptr().add(l).cast(), q);
        } else {
            let mut last = [0u32; 8];
            _mm256_storeu_si256(last.as_mut_ptr().cast(), q);
            idx[l..].copy_from_slice(&last[..n - l]);
        }
        l += 8;
    }
}

/// # Safety
/// AVX2 must be present, and every `idx + sxy + sx + 1` below `src.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn blend_run(
    src: &[f32],
    strides: [usize; 2],
    idx: &[u32],
    frac: &[[f32; RUN]; 3],
    out: &mut [f32],
) {
    let [sx, sxy] = strides;
    let p = src.as_ptr();
    let n = out.len();
    let mut l = 0;
    while l + 8 <= n {
        let q = idx.as_ptr().add(l);
        let (fx, fy, fz) = (
            _mm256_loadu_ps(frac[0].as_ptr().add(l)),
            _mm256_loadu_ps(frac[1].as_ptr().add(l)),
            _mm256_loadu_ps(frac[2].as_ptr().add(l)),
        );
        let corner = |off: usize| {
            let (a, b) = crate::simd::x86::pairs8(p, q, off);
            lerp8(a, b, fx)
        };
        let (c00, c10) = (corner(0), corner(sx));
        let (c01, c11) = (corner(sxy), corner(sxy + sx));
        let v = lerp8(lerp8(c00, c10, fy), lerp8(c01, c11, fy), fz);
        _mm256_storeu_ps(out.as_mut_ptr().add(l), v);
        l += 8;
    }
    for l in l..n {
        let f = [frac[0][l], frac[1][l], frac[2][l]];
        out[l] = super::blend_at(&src[idx[l] as usize..], sx, sxy, f);
    }
}
