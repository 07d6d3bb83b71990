//! A built-in 3D phantom (no data download): a head-like set of ellipsoids with tissue labels, on an
//! anisotropic, slightly oblique grid. Used by `voxaug demo`, the benches and the tests.

use crate::grid::{mat_mul, rotation_xyz, scaling, translation, Grid};
use crate::volume::{DType, Subject, Volume};

/// Tissue labels of the phantom.
pub const LABELS: [(&str, u8); 5] = [
    ("background", 0),
    ("scalp", 1),
    ("brain", 2),
    ("ventricles", 3),
    ("lesion", 4),
];

/// Head phantom of `shape` voxels with `spacing` mm: one T1-like image (int16 range) and its label map.
pub fn head(shape: [usize; 3], spacing: [f64; 3]) -> Subject {
    let affine = mat_mul(
        &translation([
            -(shape[0] as f64) * spacing[0] / 2.0,
            -(shape[1] as f64) * spacing[1] / 2.0,
            -(shape[2] as f64) * spacing[2] / 2.0,
        ]),
        &mat_mul(&rotation_xyz([0.0, 0.0, 0.0]), &scaling(spacing)),
    );
    let grid = Grid::new(shape, affine).expect("valid phantom grid");
    let ext = [0, 1, 2].map(|a| shape[a] as f64 * spacing[a]);
    let c = [0, 1, 2].map(|a| ext[a] / 2.0);
    let n: usize = shape.iter().product();
    let mut img = vec![0.0f32; n];
    let mut lab = vec![0.0f32; n];
    // Semi-axes in mm, relative to the field of view.
    let head = [0.42 * ext[0], 0.46 * ext[1], 0.44 * ext[2]];
    let brain = [0.36 * ext[0], 0.40 * ext[1], 0.37 * ext[2]];
    let vent = [0.07 * ext[0], 0.14 * ext[1], 0.09 * ext[2]];
    let lesion_c = [
        c[0] + 0.15 * ext[0],
        c[1] - 0.1 * ext[1],
        c[2] + 0.08 * ext[2],
    ];
    let lesion_r = 0.06 * ext[0].min(ext[1]);
    let inside = |p: [f64; 3], ctr: [f64; 3], r: [f64; 3]| {
        (0..3)
            .map(|a| ((p[a] - ctr[a]) / r[a]).powi(2))
            .sum::<f64>()
            <= 1.0
    };
    for k in 0..shape[2] {
        for j in 0..shape[1] {
            for i in 0..shape[0] {
                let p = [
                    (i as f64 + 0.5) * spacing[0],
                    (j as f64 + 0.5) * spacing[1],
                    (k as f64 + 0.5) * spacing[2],
                ];
                let idx = i + shape[0] * (j + shape[1] * k);
                let (l, base) = if (0..3).map(|a| (p[a] - lesion_c[a]).powi(2)).sum::<f64>()
                    <= lesion_r * lesion_r
                {
                    (4.0, 1250.0)
                } else if inside(p, [c[0] - 0.08 * ext[0], c[1], c[2]], vent)
                    || inside(p, [c[0] + 0.08 * ext[0], c[1], c[2]], vent)
                {
                    (3.0, 300.0)
                } else if inside(p, c, brain) {
                    (2.0, 800.0)
                } else if inside(p, c, head) {
                    (1.0, 450.0)
                } else {
                    (0.0, 0.0)
                };
                // Smooth texture so interpolation has something to do.
                let tex = if l > 0.0 {
                    60.0 * ((p[0] * 0.21).sin() * (p[1] * 0.17).cos() + 0.5 * (p[2] * 0.13).sin())
                } else {
                    0.0
                };
                img[idx] = (base + tex).round() as f32;
                lab[idx] = l;
            }
        }
    }
    let mut image = Volume::image(img, grid.clone()).expect("finite");
    image.dtype = DType::I16;
    let label = Volume::label(lab, grid).expect("integer labels");
    Subject::new(vec![image], vec![label]).expect("same grid")
}
