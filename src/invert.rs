//! Inverting a plan for test-time augmentation: a prediction made on an augmented grid mapped back onto
//! the original grid (label maps nearest, probabilities and images trilinear). Plans whose spatial
//! transforms are affine maps (rotate, zoom, shift, shear, flip, crop, pad, resize, resample, ...)
//! invert exactly up to interpolation; regions the plan cropped away or moved out of view come back as
//! the fill value. Elastic deformations have no closed-form inverse and are refused.

use crate::error::{Error, Result};
use crate::grid::{mat_inv, mat_mul, Grid, Mat4, IDENTITY};
use crate::transform::{compile, Fill, SamplingMap, Stage, Transform};
use crate::volume::{Subject, Volume};
use crate::Executor;

/// The map from the original grid to the augmented one that undoes `plan`'s spatial transforms (its
/// intensity transforms are ignored: a prediction is not an image of the input's intensities), and the
/// augmented grid `plan` produces from `original`.
pub fn inverse_map(plan: &[Transform], original: &Grid, fill: Fill) -> Result<(SamplingMap, Grid)> {
    let stages = compile(plan, original)?;
    // Augmented voxel -> original voxel: the product of every spatial pass's pull-back, in order.
    let mut total: Mat4 = IDENTITY;
    let mut augmented = original.clone();
    for s in &stages {
        if let Stage::Spatial(m) = s {
            if m.field.is_some() {
                return Err(Error::invalid(
                    "the plan holds an elastic deformation, which has no exact inverse; invert \
                     supports plans of affine maps, flips, crops, pads, resizes and resamplings",
                ));
            }
            total = mat_mul(&total, &m.total());
            augmented = m.grid.clone();
        }
    }
    let inv = mat_inv(&total).ok_or_else(|| {
        Error::invalid("the plan's spatial map is singular and cannot be inverted")
    })?;
    Ok((
        SamplingMap {
            matrix: inv,
            post: IDENTITY,
            field: None,
            grid: original.clone(),
            fill,
            nearest_images: false,
            label_interp: crate::transform::LabelInterp::Nearest,
        },
        augmented,
    ))
}

/// Maps `volume` (on the grid `plan` produced from `original`) back onto `original`: trilinear for an
/// image (probabilities, logits), nearest for a label map; `fill` where the plan saw nothing of the
/// original (default for the CLI: 0). Errors when the volume's shape is not the plan's output shape.
pub fn invert(
    exec: &Executor,
    plan: &[Transform],
    original: &Grid,
    volume: &Volume,
    fill: Fill,
) -> Result<Volume> {
    if let Fill::Value(x) = fill {
        if !x.is_finite() {
            return Err(Error::invalid(format!(
                "invert: the fill must be finite, got {x}"
            )));
        }
    }
    let (map, augmented) = inverse_map(plan, original, fill)?;
    if volume.grid.shape != augmented.shape {
        return Err(Error::invalid(format!(
            "the volume has shape {:?}, the plan's output on the reference grid has shape {:?}: \
             give the plan of the sample this volume was predicted on and the original it came from",
            volume.grid.shape, augmented.shape
        )));
    }
    // The volume is taken on the augmented grid (its own affine may have been rounded by a file format).
    let mut v = volume.clone();
    v.grid = augmented;
    let subject = match v.kind {
        crate::Kind::Image => Subject::new(vec![v], vec![])?,
        crate::Kind::Label => Subject::new(vec![], vec![v])?,
    };
    let mut out = exec.run_stages(&subject, &[Stage::Spatial(map)])?;
    Ok(out
        .images
        .pop()
        .or(out.labels.pop())
        .expect("one volume in, one out"))
}
