//! Elementary functions for the CPU point kernels (gamma's power, the Box-Muller logarithm and cosine of
//! Gaussian noise), written in plain f64 arithmetic without branches so that loops over them vectorise
//! (the libm calls `powf`, `logf` and `cosf` are scalar calls per voxel: a third of the CPU time of the
//! nnU-Net-like augmentation before). Results are the same with and without AVX2: Rust never fuses a
//! multiply and an add, so every lane computes the same operations in the same order.
//!
//! Accuracy: the f64 results are within about 1e-14 (relative) of the exact values, so the f32 results
//! are the correctly rounded ones except where the exact value lies within that distance of a rounding
//! boundary (then one ulp away); `tests` below check both against f64 `std`.

use std::f64::consts::{LN_2, LOG2_E};

/// log2(x) for a positive, finite, normal x.
#[inline(always)]
pub fn log2(x: f64) -> f64 {
    let bits = x.to_bits();
    // The biased exponent as a float: placed in the mantissa of 2^52 (integer-to-float conversions
    // of 64-bit lanes do not vectorise without AVX-512).
    let e = f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - (4503599627370496.0 + 1023.0);
    // Mantissa in [1, 2), moved to [sqrt(1/2), sqrt(2)) so that |t| <= 0.1716 below.
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = e + if big { 1.0 } else { 0.0 };
    // ln(m) = 2 atanh(t) = 2 (t + t^3/3 + t^5/5 + ...), t = (m - 1) / (m + 1), t^2 <= 0.0295.
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let p = 1.0
        + t2 * (1.0 / 3.0
            + t2 * (1.0 / 5.0
                + t2 * (1.0 / 7.0
                    + t2 * (1.0 / 9.0
                        + t2 * (1.0 / 11.0 + t2 * (1.0 / 13.0 + t2 * (1.0 / 15.0)))))));
    e + (2.0 * LOG2_E) * (t * p)
}

/// 2^z for z in [-1020, 1020] (inputs outside are clamped: beyond every f32).
#[inline(always)]
pub fn exp2(z: f64) -> f64 {
    const SHIFT: f64 = 6755399441055744.0; // 1.5 * 2^52: adding it rounds to an integer
    let z = z.clamp(-1020.0, 1020.0);
    let t = z + SHIFT;
    let n = t - SHIFT;
    // 2^f = e^(f ln 2), |f ln 2| <= 0.347: Taylor to the 12th power (error below 1e-15).
    let w = (z - n) * LN_2;
    let mut p = 1.0 / 479001600.0; // 1/12!
    for c in [
        1.0 / 39916800.0,
        1.0 / 3628800.0,
        1.0 / 362880.0,
        1.0 / 40320.0,
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * w + c;
    }
    // 2^n from n's bits in t (its last mantissa bits hold n): a normal f64 for |n| <= 1020.
    let ni = (t.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    p * f64::from_bits(((ni + 1023) as u64) << 52)
}

/// `y^g` for `y >= 0` (as f32 `powf` does for such y: `0^g` is 0 for g > 0, 1 for g = 0, +inf for
/// g < 0; `inf^g` is +inf, 1 or 0).
#[inline(always)]
pub fn pow(y: f32, g: f32) -> f32 {
    let x = y as f64;
    // Any positive finite value for 0 and inf (handled below), so that log2 sees a normal number.
    let safe = if y > 0.0 && y < f32::INFINITY { x } else { 1.0 };
    let r = exp2(g as f64 * log2(safe)) as f32;
    let (at0, at_inf) = if g > 0.0 {
        (0.0, f32::INFINITY)
    } else if g < 0.0 {
        (f32::INFINITY, 0.0)
    } else {
        (1.0, 1.0)
    };
    if y == 0.0 {
        at0
    } else if y == f32::INFINITY {
        at_inf
    } else {
        r
    }
}

/// cos(2 pi u) for u in [0, 1].
#[inline(always)]
pub fn cos_turns(u: f64) -> f64 {
    // |u - round(u)| in [0, 1/2]; then onto [0, 1/4] by cos(2 pi a) = -cos(2 pi (1/2 - a)).
    let a = if u > 0.5 { 1.0 - u } else { u };
    let far = a > 0.25;
    let b = if far { 0.5 - a } else { a };
    let x = std::f64::consts::TAU * b;
    let x2 = x * x;
    // Taylor to x^20 on [0, pi/2] (error below 1e-15).
    let mut p = 1.0 / 2432902008176640000.0; // 1/20!
    for c in [
        -1.0 / 6402373705728000.0,
        1.0 / 20922789888000.0,
        -1.0 / 87178291200.0,
        1.0 / 479001600.0,
        -1.0 / 3628800.0,
        1.0 / 40320.0,
        -1.0 / 720.0,
        1.0 / 24.0,
        -0.5,
        1.0,
    ] {
        p = p * x2 + c;
    }
    if far {
        -p
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in ulps between two f32 of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn log2_and_exp2_match_std() {
        let mut x = 1e-300f64;
        while x < 1e300 {
            // Both sides of the mantissa split at sqrt(2).
            let r2 = std::f64::consts::SQRT_2;
            for k in [
                1.0,
                1.1,
                r2 * (1.0 - 1e-12),
                r2 * (1.0 + 1e-12),
                1.7,
                1.999999,
            ] {
                let v = x * k;
                let rel = (log2(v) - v.log2()).abs() / v.log2().abs().max(1.0);
                assert!(rel < 1e-14, "log2({v}): {} vs {}", log2(v), v.log2());
            }
            x *= 7.3;
        }
        let mut z = -160.0;
        while z < 130.0 {
            let rel = (exp2(z) - z.exp2()).abs() / z.exp2();
            assert!(rel < 1e-14, "exp2({z}): {} vs {}", exp2(z), z.exp2());
            z += 0.0137;
        }
        assert_eq!(exp2(2000.0) as f32, f32::INFINITY);
        assert_eq!(exp2(1020.0), 1020f64.exp2());
        assert_eq!(exp2(-2000.0) as f32, 0.0);
    }

    /// Within one ulp of f64 `powf` rounded to f32 over the f32 range (subnormal results included),
    /// and `powf`'s values at 0 and infinity.
    #[test]
    fn pow_is_within_one_ulp_of_the_rounded_exact_value() {
        let mut worst = 0;
        for g in [0.3f32, 0.7046, 1.0, 1.4918, 2.5, 7.0, -0.5] {
            let mut y = f32::from_bits(1);
            while y < f32::MAX / 2.0 {
                for k in [1.0f32, 1.3, 1.77] {
                    let v = y * k;
                    let want = (v as f64).powf(g as f64) as f32;
                    let got = pow(v, g);
                    if want.is_infinite() || want == 0.0 {
                        assert_eq!(got, want, "{v}^{g}");
                    } else {
                        worst = worst.max(ulps(got, want));
                    }
                }
                y *= 3.1;
            }
            assert_eq!(pow(0.0, g), 0f32.powf(g), "0^{g}");
            assert_eq!(pow(f32::INFINITY, g), f32::INFINITY.powf(g), "inf^{g}");
        }
        assert_eq!(pow(0.0, 0.0), 1.0);
        assert!(worst <= 1, "{worst} ulps");
    }

    #[test]
    fn cos_turns_matches_std() {
        for i in 0..=100_000 {
            let u = i as f64 / 100_000.0;
            let want = (std::f64::consts::TAU * u).cos();
            assert!((cos_turns(u) - want).abs() < 1e-14, "cos(2 pi {u})");
        }
    }
}
