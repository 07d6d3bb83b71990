//! `--init moments`: intensity centres of mass and principal axes (greedy's `-moments 2`, ITK's
//! `ImageMomentsCalculator`). The second central moments of each image (voxels above its minimum, weighted
//! by intensity, in world mm) give three principal axes; the rotations that carry the fixed image's axes
//! onto the moving image's (four sign choices with determinant +1) are candidates next to no rotation,
//! and the one with the best metric at the coarsest level starts the optimisation.

use crate::grid::{mat_apply, Grid, Mat4};
use crate::volume::Volume;

/// A 3x3 matrix, rows first.
pub(super) type Mat3 = [[f64; 3]; 3];

/// The identity rotation.
pub(super) const I3: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Intensity-weighted centre of mass (world) and covariance (world mm^2) of the voxels above the
/// minimum; `None` when no voxel is above it (a constant image).
pub(super) fn mass_moments(v: &Volume) -> Option<([f64; 3], Mat3)> {
    let vals = v.values();
    let lo = vals.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let s = v.grid.shape;
    // Sums of w, w p, w p p^T in voxel coordinates.
    let (mut w0, mut w1, mut w2) = (0.0f64, [0.0f64; 3], [[0.0f64; 3]; 3]);
    for (l, &x) in vals.iter().enumerate() {
        let w = x as f64 - lo;
        if !(w > 0.0 && w.is_finite()) {
            continue;
        }
        let p = [
            (l % s[0]) as f64,
            ((l / s[0]) % s[1]) as f64,
            (l / (s[0] * s[1])) as f64,
        ];
        w0 += w;
        for a in 0..3 {
            w1[a] += w * p[a];
            for b in 0..3 {
                w2[a][b] += w * p[a] * p[b];
            }
        }
    }
    if w0 <= 0.0 {
        return None;
    }
    let mean = w1.map(|x| x / w0);
    let mut cov = [[0.0; 3]; 3];
    for a in 0..3 {
        for b in 0..3 {
            cov[a][b] = w2[a][b] / w0 - mean[a] * mean[b];
        }
    }
    // World covariance: L C L^T with L the affine's linear part.
    let l: Mat3 = [0, 1, 2].map(|r| [0, 1, 2].map(|c| v.grid.affine[r][c]));
    let world = mul(&mul(&l, &cov), &transpose(&l));
    Some((mat_apply(&v.grid.affine, mean), world))
}

/// Centre of the grid's voxels in world coordinates.
pub(super) fn grid_center(g: &Grid) -> [f64; 3] {
    mat_apply(&g.affine, g.shape.map(|n| (n as f64 - 1.0) / 2.0))
}

pub(super) fn mul(a: &Mat3, b: &Mat3) -> Mat3 {
    [0, 1, 2].map(|r| [0, 1, 2].map(|c| (0..3).map(|k| a[r][k] * b[k][c]).sum()))
}

fn transpose(a: &Mat3) -> Mat3 {
    [0, 1, 2].map(|r| [0, 1, 2].map(|c| a[c][r]))
}

fn det(a: &Mat3) -> f64 {
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
}

/// Eigenvalues (descending) and unit eigenvectors (the columns, in the same order) of a symmetric 3x3
/// matrix, by cyclic Jacobi rotations.
pub(super) fn eigen_sym(mut a: Mat3) -> ([f64; 3], Mat3) {
    let mut v = I3;
    for _ in 0..64 {
        let off = a[0][1].abs() + a[0][2].abs() + a[1][2].abs();
        let scale = a[0][0].abs() + a[1][1].abs() + a[2][2].abs();
        if off <= 1e-15 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q] == 0.0 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            let mut j = I3;
            j[p][p] = c;
            j[q][q] = c;
            j[p][q] = s;
            j[q][p] = -s;
            a = mul(&mul(&transpose(&j), &a), &j);
            v = mul(&v, &j);
        }
    }
    let mut order = [0usize, 1, 2];
    order.sort_by(|&x, &y| a[y][y].total_cmp(&a[x][x]));
    let vals = order.map(|i| a[i][i]);
    let vecs = [0, 1, 2].map(|r| order.map(|i| v[r][i]));
    (vals, vecs)
}

/// Rotations carrying the fixed image's principal axes onto the moving image's (`E_m S E_f^T` with the
/// four sign choices `S` of determinant +1).
pub(super) fn axis_rotations(fixed_cov: &Mat3, moving_cov: &Mat3) -> Vec<Mat3> {
    let (_, ef) = eigen_sym(*fixed_cov);
    let (_, em) = eigen_sym(*moving_cov);
    let mut out = Vec::new();
    for signs in 0..8u8 {
        let s = [0, 1, 2].map(|i| if signs >> i & 1 == 1 { -1.0 } else { 1.0 });
        let d = [0, 1, 2].map(|r| [0, 1, 2].map(|c| if r == c { s[r] } else { 0.0 }));
        let r = mul(&mul(&em, &d), &transpose(&ef));
        if det(&r) > 0.0 {
            out.push(r);
        }
    }
    out
}

/// The fixed world -> moving world map `y = r (x - from) + to`.
pub(super) fn about(r: &Mat3, from: [f64; 3], to: [f64; 3]) -> Mat4 {
    let mut m = crate::grid::IDENTITY;
    for i in 0..3 {
        m[i][..3].copy_from_slice(&r[i]);
        m[i][3] = to[i] - (0..3).map(|k| r[i][k] * from[k]).sum::<f64>();
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_sym_diagonalises() {
        let a = [[4.0, 1.0, -2.0], [1.0, 3.0, 0.5], [-2.0, 0.5, 6.0]];
        let (vals, vecs) = eigen_sym(a);
        assert!(vals[0] >= vals[1] && vals[1] >= vals[2]);
        for k in 0..3 {
            let v = [vecs[0][k], vecs[1][k], vecs[2][k]];
            let av = [0, 1, 2].map(|r| (0..3).map(|c| a[r][c] * v[c]).sum::<f64>());
            for r in 0..3 {
                assert!(
                    (av[r] - vals[k] * v[r]).abs() < 1e-12,
                    "{k}: {av:?} {vals:?}"
                );
            }
        }
        assert!((det(&vecs).abs() - 1.0).abs() < 1e-12);
    }
}
