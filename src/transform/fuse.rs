//! Fusion: consecutive spatial transforms collapse into one [`SamplingMap`] so that each run of spatial
//! transforms costs one interpolation of the *original* data (DESIGN.md section 1).

use super::spatial::{self, FillChoice};
use super::spec::{Fill, IntensityOp, Transform};
use crate::error::Result;
use crate::grid::{mat_mul, snap, Grid, Mat4, IDENTITY};

/// One resampling pass: for each output voxel `p`, the input voxel sampled is `matrix * p`.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingMap {
    /// Output voxel index -> input voxel index (4x4, last row `[0, 0, 0, 1]`).
    pub matrix: Mat4,
    /// Grid of the output.
    pub grid: Grid,
    /// Fill for images (label maps use 0 for a numeric fill, their minimum for `min`, edge for `edge`).
    pub fill: Fill,
}

impl SamplingMap {
    /// True when the map reads every output voxel from the same input voxel (no resampling needed).
    pub fn is_identity(&self, input: &Grid) -> bool {
        self.grid.shape == input.shape && self.matrix == IDENTITY
    }
}

/// An executable step: a fused resampling pass or an intensity op (images only).
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    Spatial(SamplingMap),
    Intensity(IntensityOp),
}

/// Compiles deterministic transforms on an input grid into stages. Each maximal run of spatial transforms
/// becomes one [`SamplingMap`]; parameters of each transform refer to the grid the previous one produced.
///
/// Fill of a fused run: the last fill given explicitly in the run; otherwise 0 if some transform in it
/// defaults to 0 (affine, rotate, zoom, shift, shear, pad), else edge replication (resize, resample).
pub fn compile(transforms: &[Transform], input: &Grid) -> Result<Vec<Stage>> {
    let mut stages = Vec::new();
    let mut grid = input.clone();
    let mut run: Option<(Mat4, Vec<FillChoice>)> = None;
    for t in transforms {
        match spatial::step(t, &grid)? {
            Some(step) => {
                let (m, fills) = run.get_or_insert_with(|| (IDENTITY, Vec::new()));
                *m = snap(&mat_mul(m, &step.pull));
                fills.push(step.fill);
                grid = step.grid;
            }
            None => {
                if let Some((m, fills)) = run.take() {
                    stages.push(Stage::Spatial(SamplingMap {
                        matrix: m,
                        grid: grid.clone(),
                        fill: choose_fill(&fills),
                    }));
                }
                let op = t.intensity().expect("not spatial, so intensity");
                stages.push(Stage::Intensity(op));
            }
        }
    }
    if let Some((m, fills)) = run.take() {
        stages.push(Stage::Spatial(SamplingMap {
            matrix: m,
            grid,
            fill: choose_fill(&fills),
        }));
    }
    Ok(stages)
}

fn choose_fill(fills: &[FillChoice]) -> Fill {
    if let Some(f) = fills.iter().rev().find_map(|f| match f {
        FillChoice::Explicit(f) => Some(*f),
        _ => None,
    }) {
        return f;
    }
    let defaults: Vec<Fill> = fills
        .iter()
        .filter_map(|f| match f {
            FillChoice::Default(f) => Some(*f),
            _ => None,
        })
        .collect();
    if defaults.is_empty() || defaults.iter().any(|f| matches!(f, Fill::Value(_))) {
        Fill::Value(0.0)
    } else {
        Fill::Edge
    }
}
