//! Per-label measurements: voxel count, volume (mm^3, ml), centroid in world mm, bounding box, and the
//! intensities of each image inside each label.

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

use crate::error::{Error, Result};
use crate::grid::mat_apply;
use crate::volume::Volume;
use serde::Serialize;

/// Intensity statistics of one image inside one label.
#[derive(Clone, Debug, Serialize)]
pub struct Inside {
    /// Index of the image.
    pub image: usize,
    /// Mean inside the label.
    pub mean: f64,
    /// Std inside the label.
    pub std: f64,
    /// Smallest value inside.
    pub min: f64,
    /// Largest value inside.
    pub max: f64,
}

/// Measurements of one label value.
#[derive(Clone, Debug, Serialize)]
pub struct LabelStats {
    /// Label value.
    pub value: i64,
    /// Voxels with the label.
    pub voxels: usize,
    /// Volume in mm^3.
    pub mm3: f64,
    /// Volume in ml.
    pub ml: f64,
    /// Mean world position (RAS mm) of the label's voxel centres.
    pub centroid_mm: [f64; 3],
    /// Inclusive voxel bounding box `[min, max]` per axis.
    pub bbox_voxels: [[usize; 2]; 3],
    /// Intensities of each image inside the label.
    pub images: Vec<Inside>,
}

/// Measures every label value of `label` (0 included), with the intensities of `images` inside each.
pub fn label_stats(label: &Volume, images: &[&Volume]) -> Result<Vec<LabelStats>> {
    for img in images {
        if !img.grid.same_as(&label.grid, 1e-4) {
            return Err(Error::invalid("image and label map are on different grids"));
        }
    }
    let [nx, ny, _] = label.grid.shape;
    let vox = label.grid.voxel_volume();
    struct Acc {
        n: usize,
        sum: [f64; 3],
        lo: [usize; 3],
        hi: [usize; 3],
        img: Vec<(f64, f64, f64, f64)>,
    }
    let mut accs: std::collections::BTreeMap<i64, Acc> = Default::default();
    let values: Vec<_> = images.iter().map(|i| i.values()).collect();
    for (l, &v) in label.values().iter().enumerate() {
        let ijk = [l % nx, (l / nx) % ny, l / (nx * ny)];
        let a = accs.entry(v as i64).or_insert_with(|| Acc {
            n: 0,
            sum: [0.0; 3],
            lo: [usize::MAX; 3],
            hi: [0; 3],
            img: vec![(0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY); images.len()],
        });
        a.n += 1;
        for d in 0..3 {
            a.sum[d] += ijk[d] as f64;
            a.lo[d] = a.lo[d].min(ijk[d]);
            a.hi[d] = a.hi[d].max(ijk[d]);
        }
        for (k, img) in values.iter().enumerate() {
            let x = img[l] as f64;
            let s = &mut a.img[k];
            *s = (s.0 + x, s.1 + x * x, s.2.min(x), s.3.max(x));
        }
    }
    Ok(accs
        .into_iter()
        .map(|(value, a)| {
            let n = a.n as f64;
            let mean_ijk = a.sum.map(|s| s / n);
            LabelStats {
                value,
                voxels: a.n,
                mm3: n * vox,
                ml: n * vox / 1000.0,
                centroid_mm: mat_apply(&label.grid.affine, mean_ijk),
                bbox_voxels: [0, 1, 2].map(|d| [a.lo[d], a.hi[d]]),
                images: a
                    .img
                    .iter()
                    .enumerate()
                    .map(|(k, &(s, s2, lo, hi))| {
                        let mean = s / n;
                        Inside {
                            image: k,
                            mean,
                            std: (s2 / n - mean * mean).max(0.0).sqrt(),
                            min: lo,
                            max: hi,
                        }
                    })
                    .collect(),
            }
        })
        .collect())
}
