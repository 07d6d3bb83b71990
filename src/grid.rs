//! Voxel grids: shape plus the voxel -> world (RAS+ mm) affine, and the small 4x4 algebra they need.
//!
//! Conventions (DESIGN.md section 2): voxel `(i, j, k)` is the NIfTI voxel index, voxel centres sit at
//! integer indices, memory order is i-fastest (`index = i + ni * (j + nj * k)`), and the affine maps a
//! voxel index to world RAS+ millimetres.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Row-major 4x4 matrix; the last row of an affine is `[0, 0, 0, 1]`.
pub type Mat4 = [[f64; 4]; 4];

/// The 4x4 identity.
pub const IDENTITY: Mat4 = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

/// `a * b`.
pub fn mat_mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut r = [[0.0; 4]; 4];
    for (i, row) in r.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}

/// Applies an affine to a point.
pub fn mat_apply(m: &Mat4, p: [f64; 3]) -> [f64; 3] {
    let mut r = [0.0; 3];
    for (i, v) in r.iter_mut().enumerate() {
        *v = m[i][0] * p[0] + m[i][1] * p[1] + m[i][2] * p[2] + m[i][3];
    }
    r
}

/// Inverse by Gauss-Jordan elimination with partial pivoting; `None` when singular.
pub fn mat_inv(m: &Mat4) -> Option<Mat4> {
    let mut a = *m;
    let mut inv = IDENTITY;
    for col in 0..4 {
        let pivot = (col..4).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for j in 0..4 {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for row in 0..4 {
            if row != col {
                let f = a[row][col];
                if f != 0.0 {
                    for j in 0..4 {
                        a[row][j] -= f * a[col][j];
                        inv[row][j] -= f * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

/// Rounds entries within `1e-9` of an integer to it: compositions such as four quarter turns or
/// crop-then-pad then give exact identity/permutation maps instead of ones off by rounding noise.
pub fn snap(m: &Mat4) -> Mat4 {
    m.map(|row| {
        row.map(|v| {
            let r = v.round();
            if (v - r).abs() < 1e-9 {
                r
            } else {
                v
            }
        })
    })
}

/// Cross product of 3-vectors.
pub fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Dot product of 3-vectors.
pub fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Translation by `t`.
pub fn translation(t: [f64; 3]) -> Mat4 {
    let mut m = IDENTITY;
    for i in 0..3 {
        m[i][3] = t[i];
    }
    m
}

/// Diagonal scaling.
pub fn scaling(s: [f64; 3]) -> Mat4 {
    let mut m = IDENTITY;
    for i in 0..3 {
        m[i][i] = s[i];
    }
    m
}

/// `(sin, cos)` of an angle in degrees, exact for multiples of 90 degrees (so that quarter turns are
/// exact voxel permutations).
pub fn sin_cos_degrees(d: f64) -> (f64, f64) {
    let q = d / 90.0;
    if q == q.round() {
        match (q.round() as i64).rem_euclid(4) {
            0 => (0.0, 1.0),
            1 => (1.0, 0.0),
            2 => (0.0, -1.0),
            _ => (-1.0, 0.0),
        }
    } else {
        d.to_radians().sin_cos()
    }
}

/// Rotation about world x, then y, then z (angles in degrees): `Rz * Ry * Rx`.
pub fn rotation_xyz(degrees: [f64; 3]) -> Mat4 {
    let [(sa, ca), (sb, cb), (sc, cc)] = degrees.map(sin_cos_degrees);
    let rx = [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, ca, -sa, 0.0],
        [0.0, sa, ca, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let ry = [
        [cb, 0.0, sb, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [-sb, 0.0, cb, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let rz = [
        [cc, -sc, 0.0, 0.0],
        [sc, cc, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    mat_mul(&rz, &mat_mul(&ry, &rx))
}

/// Shear in world axes, angles in degrees: `x += tan(xy) y + tan(xz) z`, `y += tan(yz) z`.
pub fn shear(degrees: [f64; 3]) -> Mat4 {
    let [xy, xz, yz] = degrees.map(|d| d.to_radians().tan());
    [
        [1.0, xy, xz, 0.0],
        [0.0, 1.0, yz, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// Shape and voxel -> world geometry of a volume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Number of voxels along i, j, k.
    pub shape: [usize; 3],
    /// Voxel index -> world RAS+ millimetres.
    pub affine: Mat4,
}

impl Grid {
    /// A grid with the given shape and affine, validated (non-empty, finite, invertible affine).
    pub fn new(shape: [usize; 3], affine: Mat4) -> Result<Grid> {
        let g = Grid { shape, affine };
        g.validate()?;
        Ok(g)
    }

    /// Axis-aligned grid with the given spacing and origin at world 0.
    pub fn with_spacing(shape: [usize; 3], spacing: [f64; 3]) -> Result<Grid> {
        Grid::new(shape, scaling(spacing))
    }

    /// Checks what every operation relies on: no empty axis, a voxel count within [`max_voxels`]
    /// (computed without overflow), finite affine, non-zero spacing. Every grid a reader or a transform
    /// makes passes here before any voxel buffer is allocated.
    pub fn validate(&self) -> Result<()> {
        if self.shape.contains(&0) {
            return Err(Error::invalid(format!(
                "volume shape {:?} has an empty axis",
                self.shape
            )));
        }
        let limit = max_voxels();
        let count = self
            .shape
            .iter()
            .try_fold(1u128, |n, &d| n.checked_mul(d as u128))
            .unwrap_or(u128::MAX);
        if count > limit as u128 {
            return Err(Error::Limits(format!(
                "volume shape {:?} has {count} voxels, over the limit of {limit} \
                 (set VOXAUG_MAX_VOXELS to raise it if this is a real volume)",
                self.shape
            )));
        }
        if self.affine.iter().flatten().any(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "affine contains NaN or infinite values (bad spacing or orientation in the header)",
            ));
        }
        let sp = self.spacing();
        if sp.iter().any(|&s| s <= 1e-9) {
            return Err(Error::invalid(format!(
                "voxel spacing {sp:?} has a zero axis (the affine is singular)"
            )));
        }
        if mat_inv(&self.affine).is_none() {
            return Err(Error::invalid("affine is singular (not invertible)"));
        }
        Ok(())
    }
}

/// A shape computed in floating point (resample, random resize, zoom to a size), checked before it is
/// used: finite, at least 1 and a voxel count within [`max_voxels`]; `what` names the operation.
pub fn shape_from_f64(shape: [f64; 3], what: &str) -> Result<[usize; 3]> {
    let limit = max_voxels() as f64;
    let count: f64 = shape.iter().product();
    if shape.iter().any(|s| !s.is_finite() || *s < 1.0) || count > limit {
        let shown = shape.map(|s| {
            if s.is_finite() && s < 1e30 {
                format!("{s:.0}")
            } else {
                format!("{s:e}")
            }
        });
        return Err(Error::Limits(format!(
            "{what} gives shape [{}], {count:.3e} voxels, over the limit of {limit} \
             (set VOXAUG_MAX_VOXELS to raise it if this is a real volume)",
            shown.join(", ")
        )));
    }
    Ok(shape.map(|s| s as usize))
}

/// Largest number of voxels a volume may have: `VOXAUG_MAX_VOXELS` if set (read once), else 2^31
/// (a 1290^3 volume; real scans are far below). Checked before any voxel buffer is allocated.
pub fn max_voxels() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("VOXAUG_MAX_VOXELS")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(1 << 31)
    })
}

impl Grid {
    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True if the grid has no voxel (never for a validated grid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Voxel size in mm along each voxel axis (norm of each affine column).
    pub fn spacing(&self) -> [f64; 3] {
        let a = &self.affine;
        [0, 1, 2].map(|c| (0..3).map(|r| a[r][c] * a[r][c]).sum::<f64>().sqrt())
    }

    /// World position of voxel `(0, 0, 0)`.
    pub fn origin(&self) -> [f64; 3] {
        [self.affine[0][3], self.affine[1][3], self.affine[2][3]]
    }

    /// Volume of one voxel in mm^3 (absolute determinant of the 3x3 part).
    pub fn voxel_volume(&self) -> f64 {
        let a = &self.affine;
        (a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]))
            .abs()
    }

    /// World position of the volume centre, voxel `(n - 1) / 2`.
    pub fn world_center(&self) -> [f64; 3] {
        let c = self.shape.map(|n| (n as f64 - 1.0) / 2.0);
        mat_apply(&self.affine, c)
    }

    /// Inverse affine: world mm -> voxel index.
    pub fn inverse_affine(&self) -> Mat4 {
        mat_inv(&self.affine).expect("validated grids have invertible affines")
    }

    /// Orientation codes such as `"LAS"`: for each voxel axis, the world direction it points to.
    pub fn orientation(&self) -> String {
        orientation_codes(&self.affine)
    }

    /// Linear index of voxel `(i, j, k)` (i fastest).
    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.shape[0] * (j + self.shape[1] * k)
    }

    /// Same shape and same affine within `tol` mm (used to check that images and labels match).
    pub fn same_as(&self, other: &Grid, tol: f64) -> bool {
        self.shape == other.shape
            && self
                .affine
                .iter()
                .flatten()
                .zip(other.affine.iter().flatten())
                .all(|(a, b)| (a - b).abs() <= tol * (1.0 + a.abs()))
    }
}

/// Orientation letters of an affine (like nibabel's `aff2axcodes`): each voxel axis is assigned the world
/// axis it is most aligned with, greedily by largest component, each world axis used once.
pub fn orientation_codes(affine: &Mat4) -> String {
    const POS: [char; 3] = ['R', 'A', 'S'];
    const NEG: [char; 3] = ['L', 'P', 'I'];
    // Normalised columns.
    let cols: Vec<[f64; 3]> = (0..3)
        .map(|c| {
            let v = [affine[0][c], affine[1][c], affine[2][c]];
            let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(1e-300);
            v.map(|x| x / n)
        })
        .collect();
    let mut pairs: Vec<(usize, usize, f64)> = Vec::with_capacity(9);
    for (c, col) in cols.iter().enumerate() {
        for (w, v) in col.iter().enumerate() {
            pairs.push((c, w, *v));
        }
    }
    pairs.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
    let mut out = ['?'; 3];
    let mut used_world = [false; 3];
    for (c, w, v) in pairs {
        if out[c] == '?' && !used_world[w] {
            out[c] = if v >= 0.0 { POS[w] } else { NEG[w] };
            used_world[w] = true;
        }
    }
    out.iter().collect()
}
