//! Runtime CPU-feature dispatch for hot loops. The crate is built for the baseline x86-64 (SSE2), so
//! the same loop bodies are also compiled with AVX2 and chosen at run time when the CPU has it. The
//! arithmetic is the same in both (AVX2 without FMA: Rust never fuses a multiply and an add unless
//! asked), so results are bit-identical on every machine; only the speed differs.

/// True when the AVX2 builds of the hot loops run on this CPU (checked once; `VOXAUG_SIMD=off` turns
/// them off, to compare).
#[inline]
pub fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::env::var("VOXAUG_SIMD").map_or(true, |v| v != "off")
                && std::is_x86_feature_detected!("avx2")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `$name` calling `$body` (an `#[inline(always)]` function) through an AVX2-compiled copy
/// when [`avx2`] holds, else directly.
#[macro_export]
#[doc(hidden)]
macro_rules! simd_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:path;) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn with_avx2($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if $crate::simd::avx2() {
                    // SAFETY: the CPU supports AVX2 (checked at run time just above).
                    return unsafe { with_avx2($($arg),*) };
                }
            }
            $body($($arg),*)
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
