//! The checked per-voxel samplers: every bound tested, the fill or the edge outside. The border zones
//! of the row and run paths use them, and every fast path is tested against them bit for bit.

use super::{blend8, floor, lerp, Outside};
use crate::voxels::Voxel;

/// The interpolation cell of coordinate `c`: its lower corner and the fractions along each axis. Clamped
/// first so that the integer conversion cannot overflow; beyond one voxel outside only the fill or the
/// edge matters.
#[inline(always)]
pub(super) fn cell(c: [f32; 3], shape: [usize; 3]) -> ([i64; 3], [f32; 3]) {
    let axis = |a: usize| {
        let c = c[a].clamp(-2.0, shape[a] as f32 + 1.0);
        let f = floor(c);
        (f as i64, c - f)
    };
    let (x, y, z) = (axis(0), axis(1), axis(2));
    ([x.0, y.0, z.0], [x.1, y.1, z.1])
}

/// Checked trilinear sample (shared with the border spans; the shader does the same per voxel).
#[inline]
pub fn sample_linear_checked(src: &[f32], shape: [usize; 3], c: [f32; 3], outside: Outside) -> f32 {
    let [nx, ny, nz] = [shape[0] as i64, shape[1] as i64, shape[2] as i64];
    let ([x0, y0, z0], [fx, fy, fz]) = cell(c, shape);
    if x0 >= 0 && y0 >= 0 && z0 >= 0 && x0 + 1 < nx && y0 + 1 < ny && z0 + 1 < nz {
        // The whole cell inside (the margins of the interior spans): the same blend, no checks.
        let corner = [x0 as usize, y0 as usize, z0 as usize];
        return blend8(src, shape[0], shape[0] * shape[1], corner, c);
    }
    if let Outside::Value(v) = outside {
        if x0 < -1 || y0 < -1 || z0 < -1 || x0 >= nx || y0 >= ny || z0 >= nz {
            return v;
        }
    }
    let get = |x: i64, y: i64, z: i64| -> f32 {
        let inside = x >= 0 && y >= 0 && z >= 0 && x < nx && y < ny && z < nz;
        if inside {
            src[(x + nx * (y + ny * z)) as usize]
        } else {
            match outside {
                Outside::Value(v) => v,
                Outside::Edge => {
                    let (x, y, z) = (x.clamp(0, nx - 1), y.clamp(0, ny - 1), z.clamp(0, nz - 1));
                    src[(x + nx * (y + ny * z)) as usize]
                }
            }
        }
    };
    let c00 = lerp(get(x0, y0, z0), get(x0 + 1, y0, z0), fx);
    let c10 = lerp(get(x0, y0 + 1, z0), get(x0 + 1, y0 + 1, z0), fx);
    let c01 = lerp(get(x0, y0, z0 + 1), get(x0 + 1, y0, z0 + 1), fx);
    let c11 = lerp(get(x0, y0 + 1, z0 + 1), get(x0 + 1, y0 + 1, z0 + 1), fx);
    lerp(lerp(c00, c10, fy), lerp(c01, c11, fy), fz)
}

/// Checked nearest sample: `floor(x + 0.5)`; outside the input `fill`, or the edge when `None`.
#[inline]
pub fn sample_nearest_checked<T: Voxel>(
    src: &[T],
    shape: [usize; 3],
    c: [f32; 3],
    fill: Option<T>,
) -> T {
    let [nx, ny, nz] = [shape[0] as i64, shape[1] as i64, shape[2] as i64];
    let round = |a: usize| floor(c[a].clamp(-2.0, shape[a] as f32 + 1.0) + 0.5) as i64;
    let (mut x, mut y, mut z) = (round(0), round(1), round(2));
    let inside = x >= 0 && y >= 0 && z >= 0 && x < nx && y < ny && z < nz;
    if !inside {
        match fill {
            Some(v) => return v,
            None => {
                x = x.clamp(0, nx - 1);
                y = y.clamp(0, ny - 1);
                z = z.clamp(0, nz - 1);
            }
        }
    }
    src[(x + nx * (y + ny * z)) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked samplers (with their shortcut for cells wholly inside) against a plain statement
    /// of the rules, every corner looked up on its own, at coordinates inside, on and past the edges.
    #[test]
    fn checked_samplers_follow_the_plain_rules() {
        let shape = [7, 5, 4];
        let [nx, ny, nz] = shape.map(|n| n as i64);
        let src: Vec<f32> = (0..140)
            .map(|i| ((i * 37) % 23) as f32 * 1.5 - 9.0)
            .collect();
        let labels: Vec<i16> = (0..140).map(|i| ((i * 11) % 9) as i16 - 4).collect();
        let at = |x: i64, y: i64, z: i64| (x + nx * (y + ny * z)) as usize;
        let inside = |x: i64, y: i64, z: i64| {
            (0..nx).contains(&x) && (0..ny).contains(&y) && (0..nz).contains(&z)
        };
        let plain = |c: [f32; 3], outside: Outside| -> f32 {
            let c = [0, 1, 2].map(|a| c[a].clamp(-2.0, shape[a] as f32 + 1.0));
            let f = c.map(f32::floor);
            let (x0, y0, z0) = (f[0] as i64, f[1] as i64, f[2] as i64);
            let t = [0, 1, 2].map(|a| c[a] - f[a]);
            let get = |x: i64, y: i64, z: i64| match outside {
                _ if inside(x, y, z) => src[at(x, y, z)],
                Outside::Value(v) => v,
                Outside::Edge => {
                    src[at(x.clamp(0, nx - 1), y.clamp(0, ny - 1), z.clamp(0, nz - 1))]
                }
            };
            if let Outside::Value(v) = outside {
                if [x0, y0, z0]
                    .iter()
                    .zip([nx, ny, nz])
                    .any(|(&q, n)| q < -1 || q >= n)
                {
                    return v;
                }
            }
            let l = |a: f32, b: f32, t: f32| a + (b - a) * t;
            let c00 = l(get(x0, y0, z0), get(x0 + 1, y0, z0), t[0]);
            let c10 = l(get(x0, y0 + 1, z0), get(x0 + 1, y0 + 1, z0), t[0]);
            let c01 = l(get(x0, y0, z0 + 1), get(x0 + 1, y0, z0 + 1), t[0]);
            let c11 = l(get(x0, y0 + 1, z0 + 1), get(x0 + 1, y0 + 1, z0 + 1), t[0]);
            l(l(c00, c10, t[1]), l(c01, c11, t[1]), t[2])
        };
        let mut seen = [0usize; 2];
        for q in 0..4000u32 {
            let r = |m: u32| (q.wrapping_mul(m) % 1000) as f32 / 1000.0;
            let c = [
                r(7919) * 11.0 - 2.5,
                r(104_729) * 9.0 - 2.5,
                r(1_299_709) * 8.0 - 2.5,
            ];
            for outside in [Outside::Value(-3.5), Outside::Edge] {
                let got = sample_linear_checked(&src, shape, c, outside);
                assert_eq!(
                    got.to_bits(),
                    plain(c, outside).to_bits(),
                    "{c:?} {outside:?}"
                );
            }
            let whole = (0..3).all(|a| c[a] >= 0.0 && c[a].floor() + 1.0 < shape[a] as f32);
            seen[whole as usize] += 1;
            let n = [0, 1, 2].map(|a| (c[a].clamp(-2.0, shape[a] as f32 + 1.0) + 0.5).floor());
            let want = if inside(n[0] as i64, n[1] as i64, n[2] as i64) {
                labels[at(n[0] as i64, n[1] as i64, n[2] as i64)]
            } else {
                7
            };
            assert_eq!(
                sample_nearest_checked(&labels, shape, c, Some(7)),
                want,
                "{c:?}"
            );
        }
        assert!(
            seen[0] > 300 && seen[1] > 300,
            "both kinds of cell: {seen:?}"
        );
    }
}
