//! Fusion: consecutive spatial transforms collapse into one [`SamplingMap`] so that each run of spatial
//! transforms costs one interpolation of the *original* data (DESIGN.md section 1). A run may hold one
//! displacement field (elastic): `p_in = matrix * (q + d(q))` with `q = post * p_out`.

use super::spatial::{self, FillChoice};
use super::spec::{Fill, IntensityOp, LabelInterp, Transform, Units};
use crate::error::Result;
use crate::grid::{mat_mul, snap, Grid, Mat4, IDENTITY};

/// A displacement field, resolved to voxels of the grid it is defined on.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldSpec {
    /// Gaussian-smoothed uniform noise (`elastic`).
    Gaussian {
        /// Field smoothing per axis, in voxels.
        sigma_vox: [f64; 3],
        /// Displacement scale per axis, in voxels.
        alpha_vox: [f64; 3],
        /// Noise seed.
        seed: u64,
    },
    /// Cubic B-spline of random control-point displacements (`elastic_bspline`).
    Bspline {
        /// Control points per axis.
        control_points: [usize; 3],
        /// Largest control-point displacement per axis, in mm.
        max_disp_mm: [f64; 3],
        /// Border layers held at zero.
        locked: u8,
        /// Seed of the control-point displacements.
        seed: u64,
    },
}

/// A displacement field on a grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Displacement {
    /// How the field is generated.
    pub spec: FieldSpec,
    /// Grid the field is defined on (its voxels are the `q` of the map).
    pub grid: Grid,
}

/// One resampling pass: for each output voxel `p`, the input voxel sampled is
/// `matrix * (q + d(q))` with `q = post * p` (no field: `matrix * post * p`, and `post` is the identity).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingMap {
    /// Field-grid voxel -> input voxel (the whole map when there is no field).
    pub matrix: Mat4,
    /// Output voxel -> field-grid voxel.
    pub post: Mat4,
    /// Displacement field applied before the matrix, if any.
    pub field: Option<Displacement>,
    /// Grid of the output.
    pub grid: Grid,
    /// Fill for images (label maps use 0 for a numeric fill, their minimum for `min`, edge for `edge`).
    pub fill: Fill,
    /// Images sampled nearest instead of trilinear (the down pass of `simulate_low_resolution`).
    pub nearest_images: bool,
    /// How label maps are sampled (the last `label_interpolation` given in the run).
    pub label_interp: LabelInterp,
}

impl SamplingMap {
    /// True when the map reads every output voxel from the same input voxel (no resampling needed).
    pub fn is_identity(&self, input: &Grid) -> bool {
        self.grid.shape == input.shape && self.matrix == IDENTITY && self.field.is_none()
    }

    /// The whole map when there is no field.
    pub fn total(&self) -> Mat4 {
        mat_mul(&self.matrix, &self.post)
    }
}

/// An executable step: a fused resampling pass or an intensity op (images only).
#[derive(Clone, Debug, PartialEq)]
// Stages are few and short-lived; boxing the sampling map buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Stage {
    /// One fused resampling pass.
    Spatial(SamplingMap),
    /// One intensity op (images only).
    Intensity(IntensityOp),
    /// A map of label values (label maps only; consecutive label transforms merged).
    Labels(super::labels::LabelLut),
}

fn field_of(t: &Transform, g: &Grid) -> Option<(Displacement, FillChoice)> {
    let sp = g.spacing();
    let fill = |f: &Option<Fill>| match f {
        Some(f) => FillChoice::Explicit(*f),
        None => FillChoice::Default(Fill::Value(0.0)),
    };
    let (spec, f) = match t {
        Transform::Elastic {
            sigma,
            alpha,
            units,
            seed,
            fill: f,
            label_interpolation: _,
        } => {
            let conv = |v: [f64; 3]| match units {
                Units::Voxels => v,
                Units::Mm => [0, 1, 2].map(|a| v[a] / sp[a]),
            };
            (
                FieldSpec::Gaussian {
                    sigma_vox: conv(sigma.0),
                    alpha_vox: conv(alpha.0),
                    seed: *seed,
                },
                fill(f),
            )
        }
        Transform::ElasticBspline {
            control_points,
            max_displacement_mm,
            locked_borders,
            seed,
            fill: f,
            label_interpolation: _,
        } => (
            FieldSpec::Bspline {
                control_points: *control_points,
                max_disp_mm: max_displacement_mm.0,
                locked: *locked_borders,
                seed: *seed,
            },
            fill(f),
        ),
        _ => return None,
    };
    Some((
        Displacement {
            spec,
            grid: g.clone(),
        },
        f,
    ))
}

#[derive(Default)]
struct Run {
    matrix: Option<Mat4>,
    post: Option<Mat4>,
    field: Option<Displacement>,
    fills: Vec<FillChoice>,
    label_interp: Option<LabelInterp>,
}

impl Run {
    fn open(&self) -> bool {
        self.matrix.is_some()
    }
    fn close(&mut self, grid: &Grid, stages: &mut Vec<Stage>) {
        if let Some(m) = self.matrix.take() {
            stages.push(Stage::Spatial(SamplingMap {
                matrix: m,
                post: self.post.take().unwrap_or(IDENTITY),
                field: self.field.take(),
                grid: grid.clone(),
                fill: choose_fill(&self.fills),
                nearest_images: false,
                label_interp: self.label_interp.unwrap_or_default(),
            }));
        }
        *self = Run::default();
    }
}

/// Largest blur radius in voxels (3 sigma): past it a blur costs minutes and only flattens the volume.
pub const MAX_BLUR_RADIUS: f64 = 4096.0;

/// Refuses a blur whose radius (3 sigma, in voxels) exceeds [`MAX_BLUR_RADIUS`] along some axis.
fn check_blur_radius(sigma_mm: [f64; 3], grid: &Grid) -> Result<()> {
    let sp = grid.spacing();
    for a in 0..3 {
        let r = (3.0 * sigma_mm[a] / sp[a]).ceil();
        if r > MAX_BLUR_RADIUS {
            return Err(crate::error::Error::Limits(format!(
                "blur sigma {} mm is a radius of {r} voxels along axis {a} (spacing {} mm), over the \
                 limit of {MAX_BLUR_RADIUS}; use a smaller sigma (it is in mm, not voxels)",
                sigma_mm[a], sp[a]
            )));
        }
    }
    Ok(())
}

/// Largest magnitude of an entry of a fused voxel map: past it (a shift of 10^12 voxels, a zoom of
/// 10^-12) every output voxel is fill and f32 coordinates lose all precision.
pub const MAX_MAP_ENTRY: f64 = 1e12;

/// Refuses a fused voxel map that is not finite or has entries beyond [`MAX_MAP_ENTRY`], naming the
/// transform that took it there.
fn check_map(t: &Transform, run: &Run) -> Result<()> {
    let worst = run
        .matrix
        .iter()
        .chain(run.post.iter())
        .flatten()
        .flatten()
        .fold(0.0f64, |m, &v| {
            if v.is_finite() {
                m.max(v.abs())
            } else {
                f64::INFINITY
            }
        });
    if worst > MAX_MAP_ENTRY {
        return Err(crate::error::Error::invalid(format!(
            "{}: the spatial transforms so far map output voxels to input positions as far as {worst:e} \
             voxels (limit {MAX_MAP_ENTRY:e}); a shift, zoom, shear or matrix entry is out of any useful \
             range",
            t.type_name()
        )));
    }
    Ok(())
}

/// Compiles deterministic transforms on an input grid into stages. Each maximal run of spatial transforms
/// becomes one [`SamplingMap`]; parameters of each transform refer to the grid the previous one produced.
/// A second displacement field in a run starts a new run (one more interpolation).
///
/// Fill of a fused run: the last fill given explicitly in the run; otherwise 0 if some transform in it
/// defaults to 0 (affine, rotate, zoom, shift, shear, pad, elastic), else edge replication (resize,
/// resample).
pub fn compile(transforms: &[Transform], input: &Grid) -> Result<Vec<Stage>> {
    let mut stages = Vec::new();
    let mut grid = input.clone();
    let mut run = Run::default();
    for t in transforms {
        let li = t.label_interpolation();
        if let Some((field, fill)) = field_of(t, &grid) {
            if run.field.is_some() {
                run.close(&grid, &mut stages);
            }
            run.matrix.get_or_insert(IDENTITY);
            run.post = Some(IDENTITY);
            run.field = Some(field);
            run.fills.push(fill);
            run.label_interp = li.or(run.label_interp);
            continue;
        }
        match spatial::step(t, &grid)? {
            Some(step) => {
                if run.field.is_some() {
                    let p = run.post.get_or_insert(IDENTITY);
                    *p = snap(&mat_mul(p, &step.pull));
                } else {
                    let m = run.matrix.get_or_insert(IDENTITY);
                    *m = snap(&mat_mul(m, &step.pull));
                }
                run.fills.push(step.fill);
                run.label_interp = li.or(run.label_interp);
                check_map(t, &run)?;
                grid = step.grid;
            }
            None if t.label_lut().is_some() => {
                if run.open() {
                    run.close(&grid, &mut stages);
                }
                let lut = t.label_lut().expect("checked")?;
                match stages.last_mut() {
                    Some(Stage::Labels(prev)) => *prev = prev.then(&lut),
                    _ => stages.push(Stage::Labels(lut)),
                }
            }
            None => {
                if run.open() {
                    run.close(&grid, &mut stages);
                }
                let op = t
                    .intensity()
                    .expect("neither spatial nor elastic, so intensity");
                if let IntensityOp::Blur { sigma_mm } = &op {
                    check_blur_radius(*sigma_mm, &grid)?;
                }
                stages.push(Stage::Intensity(op));
            }
        }
    }
    run.close(&grid, &mut stages);
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
