//! Geometry of each spatial transform: given the grid it receives, the grid it produces and its voxel
//! pull-back (output voxel index -> index in the received grid).

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

use super::spec::{Fill, Margins, Transform};
use crate::error::{Error, Result};
use crate::grid::{self, mat_inv, mat_mul, Grid, Mat4};

/// What one spatial transform does to the grid it receives.
#[derive(Clone, Debug)]
pub struct Step {
    /// Output voxel index -> received voxel index.
    pub pull: Mat4,
    /// Output grid (shape and affine).
    pub grid: Grid,
    /// The fill this step asks for: explicit, its default, or `None` when it never samples outside
    /// (flip, crop).
    pub fill: FillChoice,
}

/// Fill wish of a step, used to choose the fill of a fused group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FillChoice {
    /// The transform set `fill`.
    Explicit(Fill),
    /// The transform's default (`"edge"` for resize/resample).
    Default(Fill),
    /// No fill needed: the transform never samples outside the input.
    Neutral,
}

fn fill_or(f: &Option<Fill>, default: Fill) -> FillChoice {
    match f {
        Some(f) => FillChoice::Explicit(*f),
        None => FillChoice::Default(default),
    }
}

/// Pull-back in voxels for a forward world map `W` applied about the world centre:
/// `p_in = A^-1 * C * W^-1 * C^-1 * A * p_out`.
fn world_about_center(g: &Grid, forward: &Mat4) -> Result<Mat4> {
    let inv = mat_inv(forward)
        .ok_or_else(|| Error::invalid("transform is singular (cannot be inverted)"))?;
    let c = g.world_center();
    let to_c = grid::translation(c);
    let from_c = grid::translation(c.map(|x| -x));
    let world_pull = mat_mul(&to_c, &mat_mul(&inv, &from_c));
    Ok(mat_mul(
        &g.inverse_affine(),
        &mat_mul(&world_pull, &g.affine),
    ))
}

fn margins_voxels(m: &Margins, shape: [usize; 3], percent: bool) -> [[usize; 2]; 3] {
    let mut out = [[0usize; 2]; 3];
    for a in 0..3 {
        for s in 0..2 {
            out[a][s] = if percent {
                (m.0[a][s] * shape[a] as f64).round() as usize
            } else {
                m.0[a][s] as usize
            };
        }
    }
    out
}

/// Sub-grid starting at `start` with `size` voxels (pull-back = translation).
fn subgrid(g: &Grid, start: [i64; 3], size: [usize; 3]) -> Result<(Mat4, Grid)> {
    let pull = grid::translation(start.map(|s| s as f64));
    let out = Grid::new(size, mat_mul(&g.affine, &pull))?;
    Ok((pull, out))
}

fn check_crop(g: &Grid, start: [usize; 3], size: [usize; 3], what: &str) -> Result<()> {
    for a in 0..3 {
        let end = start[a].checked_add(size[a]);
        if size[a] == 0 || end.is_none_or(|e| e > g.shape[a]) {
            return Err(Error::invalid(format!(
                "{what}: crop of start {start:?} size {size:?} does not fit in the volume of shape {:?} (axis {a})",
                g.shape
            )));
        }
    }
    Ok(())
}

/// The pull-back (output voxel -> input voxel) and output shape that make a grid's voxel axes point to
/// +R, +A, +S: output axis `w` is the input axis whose direction is closest to world axis `w` (greedy on
/// the largest |cosine|, as nibabel's `io_orientation`), flipped when it points the other way.
pub fn canonical_pull(g: &Grid) -> (Mat4, [usize; 3]) {
    let sp = g.spacing();
    // cos[w][a]: component along world axis w of voxel axis a's unit direction.
    let cos = [0, 1, 2].map(|w| [0, 1, 2].map(|a| g.affine[w][a] / sp[a]));
    let mut axis_of = [usize::MAX; 3];
    let (mut used_w, mut used_a) = ([false; 3], [false; 3]);
    for _ in 0..3 {
        let mut best = (0, 0, -1.0);
        for w in 0..3 {
            for a in 0..3 {
                if !used_w[w] && !used_a[a] && cos[w][a].abs() > best.2 {
                    best = (w, a, cos[w][a].abs());
                }
            }
        }
        let (w, a, _) = best;
        axis_of[w] = a;
        used_w[w] = true;
        used_a[a] = true;
    }
    let mut pull = [[0.0; 4]; 4];
    pull[3][3] = 1.0;
    let mut shape = [0usize; 3];
    for w in 0..3 {
        let a = axis_of[w];
        shape[w] = g.shape[a];
        if cos[w][a] < 0.0 {
            pull[a][w] = -1.0;
            pull[a][3] = g.shape[a] as f64 - 1.0;
        } else {
            pull[a][w] = 1.0;
        }
    }
    (pull, shape)
}

/// The step of a spatial transform on grid `g`; `None` for an intensity transform.
pub fn step(t: &Transform, g: &Grid) -> Result<Option<Step>> {
    let same = |pull: Mat4, fill: FillChoice| Step {
        pull,
        grid: g.clone(),
        fill,
    };
    let zero = Fill::Value(0.0);
    Ok(Some(match t {
        Transform::Affine {
            matrix,
            fill,
            label_interpolation: _,
        } => {
            if mat_inv(matrix).is_none() {
                return Err(Error::invalid("affine.matrix is singular"));
            }
            same(*matrix, fill_or(fill, zero))
        }
        Transform::Rotate {
            degrees,
            fill,
            label_interpolation: _,
        } => same(
            world_about_center(g, &grid::rotation_xyz(degrees.0))?,
            fill_or(fill, zero),
        ),
        Transform::Zoom {
            factors,
            fill,
            label_interpolation: _,
        } => same(
            world_about_center(g, &grid::scaling(factors.0))?,
            fill_or(fill, zero),
        ),
        Transform::Shear {
            degrees,
            fill,
            label_interpolation: _,
        } => same(
            world_about_center(g, &grid::shear(degrees.0))?,
            fill_or(fill, zero),
        ),
        Transform::Shift {
            mm,
            fill,
            label_interpolation: _,
        } => same(
            world_about_center(g, &grid::translation(mm.0))?,
            fill_or(fill, zero),
        ),
        Transform::ResampleTo {
            reference,
            grid: target,
            fill,
            label_interpolation: _,
        } => {
            let Some(t) = target else {
                return Err(Error::pipeline(
                    if super::pipeline::is_member_reference(reference) {
                        format!(
                            "resample_to: {reference:?} names a subject member, whose grid is found \
                             when a plan is sampled for a subject with named members \
                             (Pipeline::sample, `voxaug apply`/`augment`, Python); plans record it"
                        )
                    } else {
                        format!(
                            "resample_to: the grid of {reference:?} was not read (a file reference \
                             is read at the top level of a pipeline, not inside \
                             one_of/some_of/compose)"
                        )
                    },
                ));
            };
            let out = Grid::new(t.shape, t.affine)?;
            let inv = mat_inv(&g.affine)
                .ok_or_else(|| Error::invalid("resample_to: the input affine is singular"))?;
            Step {
                pull: mat_mul(&inv, &out.affine),
                grid: out,
                fill: fill_or(fill, zero),
            }
        }
        Transform::ApplyTransform {
            file,
            grid: choice,
            world_matrix,
            fixed_grid,
            fill,
            label_interpolation: _,
        } => {
            let Some(w) = world_matrix else {
                return Err(Error::pipeline(format!(
                    "transform: {file:?} was not read (transform is resolved at the top level of a \
                     pipeline, not inside one_of/some_of/compose)"
                )));
            };
            let out = match (choice.as_deref(), fixed_grid) {
                (Some("input"), _) | (_, None) => g.clone(),
                (_, Some(t)) => Grid::new(t.shape, t.affine)?,
            };
            let inv = mat_inv(&g.affine)
                .ok_or_else(|| Error::invalid("transform: the input affine is singular"))?;
            Step {
                pull: mat_mul(&inv, &mat_mul(w, &out.affine)),
                grid: out,
                fill: fill_or(fill, zero),
            }
        }
        Transform::Invert {
            grid: Some(t),
            matrix: Some(m),
            input_shape: Some(shape),
            fill,
            ..
        } => {
            if g.shape != *shape {
                return Err(Error::invalid(format!(
                    "invert: the input has shape {:?}, the plan's output on the reference grid has \
                     shape {shape:?}: give the volume predicted on this plan's sample (and the \
                     plan and original it came from)",
                    g.shape
                )));
            }
            // Voxel to voxel: the input is taken on the sample's grid whatever affine its file holds.
            Step {
                pull: **m,
                grid: Grid::new(t.shape, t.affine)?,
                fill: fill_or(fill, zero),
            }
        }
        Transform::Invert { .. } => {
            return Err(Error::pipeline(
                "invert: the plan and reference were not read (invert is resolved at the top level \
                 of a pipeline, not inside one_of/some_of/compose; a hand-written step needs \
                 \"grid\", \"matrix\" and \"input_shape\" together)",
            ));
        }
        Transform::ToCanonical {
            label_interpolation: _,
        } => {
            let (pull, shape) = canonical_pull(g);
            Step {
                pull,
                grid: Grid::new(shape, mat_mul(&g.affine, &pull))?,
                fill: FillChoice::Neutral,
            }
        }
        Transform::Flip {
            axes,
            label_interpolation: _,
        } => {
            let mut pull = grid::IDENTITY;
            for &a in axes {
                pull[a][a] = -pull[a][a];
                pull[a][3] = if pull[a][a] < 0.0 {
                    g.shape[a] as f64 - 1.0
                } else {
                    0.0
                };
            }
            same(pull, FillChoice::Neutral)
        }
        Transform::Crop {
            start,
            size,
            margins,
            percent,
            label_interpolation: _,
        } => {
            let (start, size) = match (start, size, margins) {
                (Some(st), Some(sz), _) => (*st, *sz),
                (_, _, Some(m)) => {
                    let mv = margins_voxels(m, g.shape, *percent);
                    let mut size = [0usize; 3];
                    for a in 0..3 {
                        let cut = mv[a][0] + mv[a][1];
                        if cut >= g.shape[a] {
                            return Err(Error::invalid(format!(
                                "crop: margins {:?} remove all of axis {a} (size {})",
                                mv[a], g.shape[a]
                            )));
                        }
                        size[a] = g.shape[a] - cut;
                    }
                    ([mv[0][0], mv[1][0], mv[2][0]], size)
                }
                _ => return Err(Error::pipeline("crop needs start+size or margins")),
            };
            check_crop(g, start, size, "crop")?;
            let (pull, grid) = subgrid(g, start.map(|s| s as i64), size)?;
            Step {
                pull,
                grid,
                fill: FillChoice::Neutral,
            }
        }
        Transform::CenterCrop {
            size,
            label_interpolation: _,
        } => {
            for a in 0..3 {
                if size[a] > g.shape[a] {
                    return Err(Error::invalid(format!(
                        "center_crop: size {size:?} is larger than the volume {:?} (axis {a}); \
                         crop_or_pad pads where the volume is smaller",
                        g.shape
                    )));
                }
            }
            let start = [0, 1, 2].map(|a| (g.shape[a] - size[a]) / 2);
            check_crop(g, start, *size, "center_crop")?;
            let (pull, grid) = subgrid(g, start.map(|s| s as i64), *size)?;
            Step {
                pull,
                grid,
                fill: FillChoice::Neutral,
            }
        }
        Transform::CropOrPad {
            size,
            fill,
            label_interpolation: _,
        } => {
            let cap = grid::max_voxels();
            if size
                .iter()
                .try_fold(1usize, |a, &s| a.checked_mul(s))
                .is_none_or(|n| n > cap)
            {
                return Err(Error::Limits(format!(
                    "crop_or_pad: size {size:?} is over the limit of {cap} voxels"
                )));
            }
            // Start of the output in input voxels: ceil(diff / 2) removed (crop) or added (pad) first.
            let start = [0, 1, 2].map(|a| {
                let diff = g.shape[a] as i64 - size[a] as i64;
                if diff >= 0 {
                    (diff + 1) / 2
                } else {
                    -((-diff + 1) / 2)
                }
            });
            let (pull, grid) = subgrid(g, start, *size)?;
            Step {
                pull,
                grid,
                fill: fill_or(fill, zero),
            }
        }
        Transform::Pad {
            margins,
            fill,
            label_interpolation: _,
        } => {
            let mv = margins_voxels(margins, g.shape, false);
            let mut size = [0usize; 3];
            for a in 0..3 {
                let cap = grid::max_voxels();
                size[a] = g.shape[a]
                    .checked_add(mv[a][0])
                    .and_then(|s| s.checked_add(mv[a][1]))
                    .filter(|&s| s <= cap)
                    .ok_or_else(|| {
                        Error::Limits(format!(
                            "pad: margins {:?} make axis {a} longer than allowed, over the limit of {cap} voxels",
                            mv[a]
                        ))
                    })?;
            }
            let (pull, grid) = subgrid(g, [0, 1, 2].map(|a| -(mv[a][0] as i64)), size)?;
            Step {
                pull,
                grid,
                fill: fill_or(fill, zero),
            }
        }
        Transform::Resize {
            shape,
            fill,
            label_interpolation: _,
        } => resize(g, *shape, fill_or(fill, Fill::Edge))?,
        Transform::Resample {
            spacing,
            fill,
            label_interpolation: _,
        } => {
            let sp = g.spacing();
            let shape = grid::shape_from_f64(
                [0, 1, 2].map(|a| (g.shape[a] as f64 * sp[a] / spacing.0[a]).round().max(1.0)),
                &format!("resample to {:?} mm", spacing.0),
            )?;
            resize(g, shape, fill_or(fill, Fill::Edge))?
        }
        _ => return Ok(None),
    }))
}

/// The nearest-neighbour pass of `simulate_low_resolution`: the low-resolution grid (`zoom` times the
/// shape, same extent) and its pull-back onto `g`; None when every factor keeps the shape.
pub fn low_resolution(g: &Grid, zoom: [f64; 3]) -> Result<Option<Step>> {
    let shape = grid::shape_from_f64(
        [0, 1, 2].map(|a| (g.shape[a] as f64 * zoom[a]).round().max(1.0)),
        "simulate_low_resolution",
    )?;
    if shape == g.shape {
        return Ok(None);
    }
    resize(g, shape, FillChoice::Default(Fill::Edge)).map(Some)
}

/// Half-voxel aligned resize that keeps the physical extent: `p_in = (p_out + 0.5) * n_in / n_out - 0.5`.
fn resize(g: &Grid, shape: [usize; 3], fill: FillChoice) -> Result<Step> {
    let r = [0, 1, 2].map(|a| g.shape[a] as f64 / shape[a] as f64);
    let mut pull = grid::scaling(r);
    for a in 0..3 {
        pull[a][3] = 0.5 * r[a] - 0.5;
    }
    let grid = Grid::new(shape, mat_mul(&g.affine, &pull))?;
    Ok(Step { pull, grid, fill })
}
