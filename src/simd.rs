//! Runtime CPU-feature dispatch for hot loops. The crate is built for the baseline x86-64 (SSE2), so
//! the same loop bodies are also compiled with AVX2 (and, for the arithmetic-bound point kernels, with
//! AVX-512) and chosen at run time when the CPU has it. The arithmetic is the same in every build (no
//! FMA: Rust never fuses a multiply and an add unless asked), so results are bit-identical on every
//! machine; only the speed differs.

/// `VOXAUG_SIMD`: `off` for the baseline loops only, `avx2` to stop at AVX2 (to compare), else (unset)
/// the widest the CPU has.
#[cfg(target_arch = "x86_64")]
fn allowed(level: &str) -> bool {
    match std::env::var("VOXAUG_SIMD") {
        Ok(v) if v == "off" => false,
        Ok(v) if v == "avx2" => level == "avx2",
        _ => true,
    }
}

/// True when the AVX2 builds of the hot loops run on this CPU (checked once; `VOXAUG_SIMD=off` turns
/// them off, to compare).
#[inline]
pub fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| allowed("avx2") && std::is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when the AVX-512 builds (F, DQ, VL) of the arithmetic-bound loops run on this CPU (checked
/// once; `VOXAUG_SIMD=avx2` or `off` turns them off). Only loops whose time is arithmetic take this
/// tier (gamma's power, the noise's logarithm and cosine, the bias field's exponential: 1.5-1.65x
/// over AVX2 on an AMD EPYC with AVX-512, whose 512-bit units are two 256-bit halves); loops bound by
/// memory or by loads keep AVX2.
#[inline]
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            allowed("avx512")
                && std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx512vl")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `$name` calling `$body` (an `#[inline(always)]` function) through an AVX2-compiled copy
/// when [`avx2`] holds, else directly. With a leading `avx512:` the body also gets an AVX-512 copy,
/// taken when [`avx512`] holds.
#[macro_export]
#[doc(hidden)]
macro_rules! simd_fn {
    (avx512: $(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:path;) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            $crate::simd_fn!(@tier "avx2,avx512f,avx512dq,avx512vl", avx512, with_avx512, ($($arg: $ty),*) -> $ret = $body);
            $crate::simd_fn!(@tier "avx2", avx2, with_avx2, ($($arg: $ty),*) -> $ret = $body);
            $body($($arg),*)
        }
    };
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:path;) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            $crate::simd_fn!(@tier "avx2", avx2, with_avx2, ($($arg: $ty),*) -> $ret = $body);
            $body($($arg),*)
        }
    };
    // Returns from the enclosing function through `$copy`, `$body` compiled with `$features`, when
    // `simd::$check()` holds (the copy's name shows in profiles).
    (@tier $features:literal, $check:ident, $copy:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty = $body:path) => {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = $features)]
            unsafe fn $copy($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            if $crate::simd::$check() {
                // SAFETY: the CPU supports these features (checked at run time just above).
                return unsafe { $copy($($arg),*) };
            }
        }
    };
}

/// `i as f32` for an index below 2^31 (every voxel index along an axis is), through `i32`: the same
/// value, but the conversion vectorises (`vcvtdq2ps`), where a `usize` converts lane by lane.
#[inline(always)]
pub fn index_f32(i: usize) -> f32 {
    debug_assert!(i <= i32::MAX as usize);
    i as i32 as f32
}

/// x86 helpers shared by the AVX2 loops.
#[cfg(target_arch = "x86_64")]
#[doc(hidden)]
pub mod x86 {
    use std::arch::x86_64::*;

    /// The values at `q + off` and `q + off + 1` for the eight indices `idx[..8]`, as two vectors
    /// (`a`: first of each pair, `b`: second). Each pair is one 8-byte load: on the CPUs measured
    /// (AMD EPYC with AVX-512) 32 such loads and a few shuffles take ~40% fewer cycles than eight
    /// 8-lane gathers, and gathers are slower still on Intel parts with the GDS microcode fix.
    ///
    /// # Safety
    /// AVX2 must be present, `idx` must hold 8 indices, and every `idx + off + 1` must be inside
    /// the array at `p`.
    #[inline(always)]
    pub unsafe fn pairs8(p: *const f32, idx: *const u32, off: usize) -> (__m256, __m256) {
        let two = |k: usize| {
            let q = p.add(*idx.add(k) as usize + off);
            _mm_castpd_ps(_mm_load_sd(q.cast()))
        };
        // x01 = a0 b0 a1 b1, ...
        let (x01, x23) = (_mm_movelh_ps(two(0), two(1)), _mm_movelh_ps(two(2), two(3)));
        let (x45, x67) = (_mm_movelh_ps(two(4), two(5)), _mm_movelh_ps(two(6), two(7)));
        // lo = a0 b0 a1 b1 | a4 b4 a5 b5, hi = a2 b2 a3 b3 | a6 b6 a7 b7
        let (lo, hi) = (_mm256_set_m128(x45, x01), _mm256_set_m128(x67, x23));
        (
            _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi),
            _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi),
        )
    }
}
