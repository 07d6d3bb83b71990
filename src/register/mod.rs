//! Registration of two images: rigid (6 parameters) or affine (12), metric mean squared error,
//! normalised cross-correlation or Mattes mutual information (a joint histogram with cubic B-spline
//! Parzen windows), a Gaussian pyramid, regular-step gradient descent with analytic gradients (the shape
//! of SimpleITK's `ImageRegistrationMethod` with `SetOptimizerAsRegularStepGradientDescent`). The metric
//! and its gradient run on the CPU (`metric.rs`) or the GPU (`shaders/metric.wgsl`), picked by
//! [`RegisterOptions::executor`].
//!
//! The result is a world matrix mapping a point of the fixed image's world (RAS mm) to the corresponding
//! point of the moving image's world (the pull-back direction, as in ITK); resampling the moving image onto
//! the fixed grid with it (`{"type": "transform", ...}`, or [`Registration::transform`]) aligns the two.
//!
//! Parameters are scaled so that a unit step moves points by about a millimetre: translations are in mm,
//! rotation angles and matrix entries are multiplied by the fixed image's radius. The metric is evaluated
//! over fixed-image samples (every voxel of the level's grid, or a seeded random subset, jittered within
//! its voxels as ITK's RANDOM sampling does, for mutual information and for grids over `max_samples`), in
//! fixed chunks summed in order, so the result does not depend on the thread count.

use crate::error::{Error, Result};
use crate::grid::{mat_apply, mat_inv, Mat4};
use crate::transform::{Pipeline, Transform};
use crate::volume::{Kind, Subject, Volume};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

mod metric;
mod moments;
mod tfm;

use metric::{Level, Samples};
use moments::{grid_center, Mat3, I3};
pub use tfm::{from_tfm, read_transform, to_tfm};

/// Rigid (rotation + translation) or affine (any 3x3 matrix + translation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegKind {
    /// 3 rotations, 3 translations.
    Rigid,
    /// 9 matrix entries, 3 translations.
    Affine,
}

/// Similarity measure between the fixed image and the transformed moving image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Mattes mutual information: a joint histogram with the fixed value in one bin and the moving value
    /// spread by a cubic B-spline Parzen window (maximised).
    Mi,
    /// Mean squared difference (minimised; same modality and scale).
    Mse,
    /// Normalised cross-correlation (maximised; same modality, any linear scale).
    Ncc,
}

/// How the transform starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Translation between the centres of the two grids.
    Geometry,
    /// Translation between the intensity centres of mass (voxels above the minimum), and the rotation
    /// carrying the fixed image's principal axes onto the moving image's when one of the four such
    /// rotations scores better than none at the coarsest level.
    Moments,
    /// Identity.
    None,
}

/// Options of [`register`].
#[derive(Clone, Debug)]
pub struct RegisterOptions {
    /// Rigid or affine.
    pub kind: RegKind,
    /// Similarity measure.
    pub metric: Metric,
    /// Shrink factor of each pyramid level, coarse to fine (e.g. `[4, 2, 1]`).
    pub levels: Vec<usize>,
    /// Gaussian sigma in mm of each level (same length as `levels`; 0 = no smoothing).
    pub smooth_mm: Vec<f64>,
    /// Initial transform.
    pub init: Init,
    /// Largest number of iterations per level.
    pub iterations: usize,
    /// Seed of the sample selection.
    pub seed: u64,
    /// Joint histogram bins per image (mutual information; 8 to 256, 2 on each side are padding).
    pub bins: usize,
    /// Most fixed samples per level.
    pub max_samples: usize,
    /// Fraction of a level's (masked) voxels drawn as samples, at most `max_samples` (mutual information
    /// always samples; MSE and NCC use every voxel up to `max_samples`).
    pub sample_fraction: f64,
    /// Only fixed voxels where this mask (on the fixed grid) is nonzero count.
    pub fixed_mask: Option<Volume>,
    /// Where the metric and its gradient run: the CPU (f64 sums) or the GPU (f32 sums per 4096-sample
    /// chunk, summed in f64 in chunk order).
    pub executor: crate::exec::Executor,
}

impl Default for RegisterOptions {
    fn default() -> Self {
        RegisterOptions {
            kind: RegKind::Rigid,
            metric: Metric::Mi,
            levels: vec![4, 2, 1],
            smooth_mm: vec![2.0, 1.0, 0.0],
            init: Init::Geometry,
            iterations: 200,
            seed: 0,
            bins: 32,
            max_samples: 100_000,
            sample_fraction: 0.25,
            fixed_mask: None,
            executor: crate::exec::Executor::Cpu,
        }
    }
}

/// What one pyramid level did.
#[derive(Clone, Debug, Serialize)]
pub struct LevelTrace {
    /// Shrink factor.
    pub shrink: usize,
    /// Gaussian sigma in mm.
    pub sigma_mm: f64,
    /// Fixed samples used.
    pub samples: usize,
    /// Iterations run.
    pub iterations: usize,
    /// Metric value at the end of the level (lower is better: MI and NCC are negated).
    pub value: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// A registration result (the contents of `transform.json`).
#[derive(Clone, Debug, Serialize)]
pub struct Registration {
    /// `rigid` or `affine`.
    #[serde(rename = "type")]
    pub kind: RegKind,
    /// Fixed world (RAS mm) -> moving world, 4x4.
    pub world_matrix: Mat4,
    /// The metric.
    pub metric: Metric,
    /// Final metric value (lower is better: MI and NCC are negated).
    pub final_value: f64,
    /// Per-level trace.
    pub levels: Vec<LevelTrace>,
    /// The fixed image's grid (the grid `{"type": "transform"}` resamples onto by default).
    pub fixed_grid: crate::transform::RefGrid,
}

impl Registration {
    /// The pipeline transform that resamples an image of the moving grid onto the fixed grid.
    pub fn transform(&self) -> Transform {
        Transform::ApplyTransform {
            label_interpolation: None,
            file: String::new(),
            grid: None,
            world_matrix: Some(Box::new(self.world_matrix)),
            fixed_grid: Some(Box::new(self.fixed_grid.clone())),
            fill: None,
        }
    }

    /// The same transform in ITK's text format (`.tfm`, LPS coordinates, fixed -> moving), readable by
    /// `SimpleITK.ReadTransform`.
    pub fn to_tfm(&self) -> String {
        to_tfm(&self.world_matrix)
    }
}

/// A smoothed, shrunk copy of an image (CPU executor).
fn level_image(v: &Volume, sigma_mm: f64, shrink: usize) -> Result<Volume> {
    let mut t = Vec::new();
    if sigma_mm > 0.0 {
        t.push(format!(r#"{{"type": "blur", "sigma": {sigma_mm}}}"#));
    }
    if shrink > 1 {
        let sp = v.grid.spacing();
        t.push(format!(
            r#"{{"type": "resample", "spacing": [{}, {}, {}]}}"#,
            sp[0] * shrink as f64,
            sp[1] * shrink as f64,
            sp[2] * shrink as f64
        ));
    }
    if t.is_empty() {
        return Ok(v.clone());
    }
    let p = Pipeline::from_json(&format!(r#"{{"transforms": [{}]}}"#, t.join(",")))?;
    let s = Subject::new(vec![v.clone()], vec![])?;
    let mut out = crate::exec::Executor::Cpu.apply(&s, &p.fixed_transforms()?)?;
    Ok(out.images.remove(0))
}

/// Rotation matrix of Euler angles (radians) about x, then y, then z.
fn euler(r: [f64; 3]) -> [[f64; 3]; 3] {
    let (sx, cx) = r[0].sin_cos();
    let (sy, cy) = r[1].sin_cos();
    let (sz, cz) = r[2].sin_cos();
    let rx = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]];
    let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
    let rz = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]];
    let mul = |a: [[f64; 3]; 3], b: [[f64; 3]; 3]| {
        let mut m = [[0.0; 3]; 3];
        for r in 0..3 {
            for c in 0..3 {
                m[r][c] = (0..3).map(|k| a[r][k] * b[k][c]).sum();
            }
        }
        m
    };
    mul(rz, mul(ry, rx))
}

/// The transform's parameters in scaled units (about a millimetre per unit).
struct Params {
    kind: RegKind,
    center: [f64; 3],
    radius: f64,
    t0: [f64; 3],
    /// Initial linear map (moments: principal axes), applied before the parameters' one.
    r0: Mat3,
}

impl Params {
    fn count(&self) -> usize {
        match self.kind {
            RegKind::Rigid => 6,
            RegKind::Affine => 12,
        }
    }

    /// The gradient with respect to the scaled parameters `p` of a function whose gradient with respect
    /// to the entries of the 3x4 world matrix is `dm` (chain rule; the matrix's derivative in each
    /// parameter by central differences of a thousandth of a unit: exact for affine parameters, 1e-9
    /// relative for the rotations).
    fn gradient(&self, p: &[f64], dm: &[[f64; 4]; 3]) -> Vec<f64> {
        const H: f64 = 1e-3;
        (0..p.len())
            .map(|k| {
                let (mut a, mut b) = (p.to_vec(), p.to_vec());
                a[k] += H;
                b[k] -= H;
                let (ma, mb) = (self.matrix(&a), self.matrix(&b));
                let mut d = 0.0;
                for r in 0..3 {
                    for c in 0..4 {
                        d += dm[r][c] * (ma[r][c] - mb[r][c]) / (2.0 * H);
                    }
                }
                d
            })
            .collect()
    }

    /// Fixed world -> moving world of scaled parameters `p`.
    fn matrix(&self, p: &[f64]) -> Mat4 {
        let a: [[f64; 3]; 3] = match self.kind {
            RegKind::Rigid => euler([p[0] / self.radius, p[1] / self.radius, p[2] / self.radius]),
            RegKind::Affine => {
                let mut a = [[0.0; 3]; 3];
                for r in 0..3 {
                    for c in 0..3 {
                        a[r][c] = (r == c) as u8 as f64 + p[3 * r + c] / self.radius;
                    }
                }
                a
            }
        };
        let a = moments::mul(&a, &self.r0);
        let t = &p[p.len() - 3..];
        let mut m = crate::grid::IDENTITY;
        for r in 0..3 {
            let mut b = self.center[r] + t[r] + self.t0[r];
            for c in 0..3 {
                m[r][c] = a[r][c];
                b -= a[r][c] * self.center[c];
            }
            m[r][3] = b;
        }
        m
    }
}

/// Registers `moving` to `fixed` (both images); see the module documentation.
pub fn register(fixed: &Volume, moving: &Volume, opts: &RegisterOptions) -> Result<Registration> {
    if fixed.kind != Kind::Image || moving.kind != Kind::Image {
        return Err(Error::invalid(
            "register: fixed and moving must be images, not label maps",
        ));
    }
    if opts.levels.is_empty() || opts.levels.len() != opts.smooth_mm.len() {
        return Err(Error::invalid(format!(
            "register: {} levels but {} smoothing sigmas (give one sigma per level, e.g. --levels 4,2,1 \
             --smooth 2,1,0)",
            opts.levels.len(),
            opts.smooth_mm.len()
        )));
    }
    if opts.levels.contains(&0) || opts.smooth_mm.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
        return Err(Error::invalid(
            "register: shrink factors must be >= 1 and sigmas finite and >= 0",
        ));
    }
    if opts.bins < 8 || opts.bins > 256 || opts.max_samples < 100 {
        return Err(Error::invalid(format!(
            "register: {} bins and {} max_samples: 8 to 256 bins (4 of them padding for the cubic \
             Parzen window) and max_samples >= 100 required",
            opts.bins, opts.max_samples
        )));
    }
    for (what, v) in [("fixed", fixed), ("moving", moving)] {
        let vals = v.values();
        if vals.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(format!(
                "register: the {what} image has NaN or infinite voxels (replace them first: \
                 {{\"type\": \"nan_to_num\"}})"
            )));
        }
        if vals.iter().all(|&x| x == vals[0]) {
            return Err(Error::invalid(format!(
                "register: the {what} image is constant ({}): there is nothing to align",
                vals[0]
            )));
        }
    }
    if let Some(m) = &opts.fixed_mask {
        if !m.grid.same_as(&fixed.grid, 1e-4) {
            return Err(Error::invalid(format!(
                "register: the fixed mask must be on the fixed image's grid (shape {:?}, affine {:?}); \
                 it has shape {:?} and affine {:?}",
                fixed.grid.shape, fixed.grid.affine, m.grid.shape, m.grid.affine
            )));
        }
    }
    let center = grid_center(&fixed.grid);
    let ext: Vec<f64> = (0..3)
        .map(|a| fixed.grid.spacing()[a] * fixed.grid.shape[a] as f64)
        .collect();
    let radius = (ext.iter().map(|e| e * e).sum::<f64>()).sqrt() / 2.0;
    // Starting maps y = r0 (x - from) + to, as (r0, t0) of Params: t0 = to - center + r0 (center - from).
    let start = |r0: Mat3, from: [f64; 3], to: [f64; 3]| -> (Mat3, [f64; 3]) {
        let m = moments::about(&r0, from, to);
        let at = mat_apply(&m, center);
        (r0, [0, 1, 2].map(|i| at[i] - center[i]))
    };
    let (grid_f, grid_m) = (grid_center(&fixed.grid), grid_center(&moving.grid));
    // Moments: candidates tried at the coarsest level (no rotation first: it wins ties).
    let mut candidates: Vec<(Mat3, [f64; 3])> = Vec::new();
    let (r0, t0) = match opts.init {
        Init::Geometry => start(I3, grid_f, grid_m),
        Init::Moments => match (moments::mass_moments(fixed), moments::mass_moments(moving)) {
            (Some((cf, sf)), Some((cm, sm))) => {
                candidates.push(start(I3, cf, cm));
                for r in moments::axis_rotations(&sf, &sm) {
                    candidates.push(start(r, cf, cm));
                }
                candidates[0]
            }
            _ => start(I3, grid_f, grid_m),
        },
        Init::None => (I3, [0.0; 3]),
    };
    let mut par = Params {
        kind: opts.kind,
        center,
        radius: radius.max(1.0),
        t0,
        r0,
    };
    let mut p = vec![0.0; par.count()];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut trace = Vec::new();
    let mut last = f64::INFINITY;
    for (&shrink, &sigma) in opts.levels.iter().zip(&opts.smooth_mm) {
        let t_level = std::time::Instant::now();
        let f = level_image(fixed, sigma, shrink)?;
        let m = level_image(moving, sigma, 1)?;
        let mask = match &opts.fixed_mask {
            Some(mk) if shrink > 1 => {
                let mut mk = mk.clone();
                mk.kind = Kind::Image;
                mk.data = crate::voxels::Voxels::from(mk.values().into_owned());
                Some(level_image(&mk, 0.0, shrink)?)
            }
            Some(mk) => Some(mk.clone()),
            None => None,
        };
        let fv = f.values();
        let mask_vals = mask.as_ref().map(|m| m.values());
        let mut idx: Vec<usize> = (0..fv.len())
            .filter(|&l| mask_vals.as_ref().is_none_or(|mv| mv[l] > 0.5))
            .collect();
        if idx.len() < 64 {
            return Err(Error::invalid(format!(
                "register: only {} fixed voxels at shrink {shrink} (mask empty or image too small)",
                idx.len()
            )));
        }
        let k = if opts.metric == Metric::Mi {
            ((idx.len() as f64 * opts.sample_fraction) as usize).clamp(64, opts.max_samples)
        } else {
            opts.max_samples
        };
        let n_masked = idx.len();
        if k < idx.len() {
            // Seeded partial shuffle: the first k entries are a uniform random subset.
            for i in 0..k {
                let j = rng.random_range(i..idx.len());
                idx.swap(i, j);
            }
            idx.truncate(k);
            idx.sort_unstable();
        }
        let s = f.grid.shape;
        // A random subset is also jittered within its voxels (uniformly, half a voxel each way; the
        // fixed value interpolated there), as ITK's RANDOM sampling does: samples on the fixed grid's
        // points bias the optimum towards where the moving image's interpolation smooths least (TRE on
        // the MNI benchmark 0.09 mm on the grid, 0.03-0.05 mm jittered).
        let jitter = k < n_masked;
        let mut val = Vec::with_capacity(idx.len());
        let pos: Vec<[f64; 3]> = idx
            .iter()
            .map(|&l| {
                let mut q = [
                    (l % s[0]) as f64,
                    ((l / s[0]) % s[1]) as f64,
                    (l / (s[0] * s[1])) as f64,
                ];
                if jitter {
                    for a in 0..3 {
                        q[a] = (q[a] + rng.random_range(-0.5..0.5)).clamp(0.0, (s[a] - 1) as f64);
                    }
                    val.push(metric::sample(&fv, s, q).map_or(fv[l], |(v, _)| v as f32));
                } else {
                    val.push(fv[l]);
                }
                mat_apply(&f.grid.affine, q)
            })
            .collect();
        let (fmin, fmax) = val
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v as f64), b.max(v as f64))
            });
        let mvals = m.values();
        let (mmin, mmax) = mvals
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v as f64), b.max(v as f64))
            });
        let world_to_moving = mat_inv(&m.grid.affine)
            .ok_or_else(|| Error::invalid("register: the moving image's affine is singular"))?;
        let mut level = Level {
            samples: Samples {
                pos,
                val,
                fmin,
                fmax,
            },
            moving: &mvals,
            mshape: m.grid.shape,
            world_to_moving,
            mmin,
            mmax,
            metric: opts.metric,
            bins: opts.bins,
            gpu: None,
        };
        if let crate::exec::Executor::Gpu(ctx) = &opts.executor {
            level.upload(ctx, &m)?;
        }
        // Regular-step gradient descent in scaled units: the step starts at 2 voxels of this level and
        // halves whenever a step does not improve the metric; the gradient is analytic (one pass over
        // the samples after the value's), so an iteration costs two passes, or one when it is refused.
        let vox = f
            .grid
            .spacing()
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let mut step = 2.0 * vox;
        let min_step = 0.01 * vox.min(1.0);
        if !candidates.is_empty() {
            let maps: Vec<Mat4> = candidates
                .iter()
                .map(|&(r0, t0)| Params { r0, t0, ..par }.matrix(&p))
                .collect();
            let v = level.values(&maps)?;
            let best = (0..v.len()).filter(|&i| v[i].is_finite()).fold(0, |b, i| {
                if v[i] < v[b] || !v[b].is_finite() {
                    i
                } else {
                    b
                }
            });
            (par.r0, par.t0) = candidates[best];
            candidates.clear();
        }
        let at = par.matrix(&p);
        let e = level.evals(&[at])?.remove(0);
        let mut cur = e.value;
        let mut g = par.gradient(&p, &level.gradient(&at, &e)?);
        let mut its = 0;
        while its < opts.iterations && step >= min_step && cur.is_finite() {
            its += 1;
            let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 || !norm.is_finite() {
                break;
            }
            let cand: Vec<f64> = p.iter().zip(&g).map(|(x, d)| x - step * d / norm).collect();
            let at = par.matrix(&cand);
            let e = level.evals(&[at])?.remove(0);
            if e.value < cur {
                p = cand;
                cur = e.value;
                g = par.gradient(&p, &level.gradient(&at, &e)?);
            } else {
                step *= 0.5;
            }
        }
        if !cur.is_finite() {
            return Err(Error::invalid(format!(
                "register: at shrink {shrink} the images do not overlap (under 10% of the fixed samples \
                 land in the moving image); try --init moments or geometry"
            )));
        }
        if let Some((ctx, gm)) = level.gpu.take() {
            ctx.metric_release(gm);
        }
        last = cur;
        trace.push(LevelTrace {
            shrink,
            sigma_mm: sigma,
            samples: level.samples.pos.len(),
            iterations: its,
            value: cur,
            seconds: t_level.elapsed().as_secs_f64(),
        });
    }
    Ok(Registration {
        kind: opts.kind,
        world_matrix: par.matrix(&p),
        metric: opts.metric,
        final_value: last,
        levels: trace,
        fixed_grid: crate::transform::RefGrid {
            shape: fixed.grid.shape,
            affine: fixed.grid.affine,
        },
    })
}
