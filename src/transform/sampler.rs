//! The per-sample random source and what sampling may look at: turns the random steps of a pipeline
//! into the deterministic transforms of one sample (a [`Plan`](super::Plan)).

use super::random::*;
use super::range::*;
use super::spatial;
use super::spec::{Transform, Vec3};
use crate::error::{Error, Result};
use crate::grid::{self, mat_inv, mat_mul, Grid, Mat4};
use crate::volume::Volume;
use crate::voxels::Voxel;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

/// What sampling may look at: the input grid and the first label map (for `label_crop`). Foreground
/// positions are found once and shared by all samples.
pub struct SampleInput<'a> {
    /// The input grid.
    pub grid: Grid,
    /// The first label map (for foreground crops).
    pub label: Option<&'a Volume>,
    /// The first image (for `crop_foreground` of the image).
    pub image: Option<&'a Volume>,
    /// Grids of the subject's named members (`resample_to` may name one as its reference).
    pub members: Vec<(String, Grid)>,
    foreground: OnceLock<Vec<u32>>,
    by_value: OnceLock<std::collections::BTreeMap<i64, Vec<u32>>>,
}

impl<'a> SampleInput<'a> {
    /// What sampling may look at for a subject on `grid` with this label map.
    pub fn new(grid: Grid, label: Option<&'a Volume>) -> SampleInput<'a> {
        SampleInput {
            grid,
            label,
            image: None,
            members: Vec::new(),
            foreground: OnceLock::new(),
            by_value: OnceLock::new(),
        }
    }

    /// The same input with the subject's first image (`crop_foreground` looks at it).
    pub fn with_image(mut self, image: Option<&'a Volume>) -> SampleInput<'a> {
        self.image = image;
        self
    }

    /// Bounding box `[lo, hi]` (inclusive, input voxels) of the nonzero voxels of the first image or
    /// label map; None when there are none (or no such volume, or it is on another grid).
    fn nonzero_box(&self, label: bool) -> Option<[[usize; 3]; 2]> {
        let v = if label { self.label } else { self.image }?;
        if v.grid.shape != self.grid.shape {
            return None;
        }
        let [nx, ny, _] = v.grid.shape;
        crate::with_voxels!(&v.data, d => {
            use rayon::prelude::*;
            d.par_chunks(nx)
                .enumerate()
                .filter_map(|(row, r)| {
                    let first = r.iter().position(|x| x.to_f64() != 0.0)?;
                    let last = r.iter().rposition(|x| x.to_f64() != 0.0)?;
                    let (j, k) = (row % ny, row / ny);
                    Some([[first, j, k], [last, j, k]])
                })
                .reduce_with(|a, b| {
                    [
                        [0, 1, 2].map(|i| a[0][i].min(b[0][i])),
                        [0, 1, 2].map(|i| a[1][i].max(b[1][i])),
                    ]
                })
        })
    }

    /// Sorted distinct values of the first label map (empty without one).
    fn label_values(&self) -> Vec<i64> {
        let Some(l) = self.label else {
            return Vec::new();
        };
        crate::with_voxels!(&l.data, d => {
            use rayon::prelude::*;
            let mut v: Vec<i64> = d.par_iter().map(|x| x.to_f64() as i64).collect();
            v.par_sort_unstable();
            v.dedup();
            v
        })
    }

    /// The same input with the grids of the subject's named members.
    pub fn with_members(mut self, members: Vec<(String, Grid)>) -> SampleInput<'a> {
        self.members = members;
        self
    }

    /// Voxel indices of each label value (first label map), found once.
    fn voxels_of(&self, value: i64) -> &[u32] {
        let m = self.by_value.get_or_init(|| {
            let mut m: std::collections::BTreeMap<i64, Vec<u32>> = Default::default();
            if let Some(l) = self.label {
                crate::with_voxels!(&l.data, d => {
                    for (i, v) in d.iter().enumerate() {
                        m.entry(v.to_f64() as i64).or_default().push(i as u32);
                    }
                });
            }
            m
        });
        m.get(&value).map(|v| &v[..]).unwrap_or(&[])
    }

    fn foreground(&self) -> &[u32] {
        self.foreground.get_or_init(|| match self.label {
            Some(l) => crate::with_voxels!(&l.data, d => d
                .iter()
                .enumerate()
                .filter(|(_, v)| v.to_f64() > 0.0)
                .map(|(i, _)| i as u32)
                .collect()),
            None => Vec::new(),
        })
    }
}

/// The grid of the subject member `reference` names (a `resample_to` reference that is not a file).
fn member_grid(members: &[(String, Grid)], reference: &str) -> Result<super::spec::RefGrid> {
    match members.iter().find(|(n, _)| n == reference) {
        Some((_, g)) => Ok(super::spec::RefGrid {
            shape: g.shape,
            affine: g.affine,
        }),
        None => {
            let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
            Err(Error::pipeline(format!(
                "resample_to.reference {reference:?} is not a member of the subject (members: {}); \
                 name a member, or a file by a path with its extension (\"{reference}.nii.gz\") or a \
                 folder separator (\"./{reference}\")",
                if names.is_empty() {
                    "none named".to_string()
                } else {
                    names.join(", ")
                }
            )))
        }
    }
}

/// splitmix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// The per-sample random source: ChaCha8 seeded from `(seed, index)`; floats and integers are derived
/// from raw 64-bit words here (not through a distribution whose algorithm could change between crate
/// versions), so plans are stable.
pub struct Sampler<'a> {
    rng: ChaCha8Rng,
    input: &'a SampleInput<'a>,
    /// Current grid (after the transforms sampled so far).
    grid: Grid,
    /// Current voxel -> input voxel.
    to_input: Mat4,
    out: Vec<Transform>,
    /// `label_interpolation` of the random transform being sampled, given to what it emits.
    label_interp: Option<crate::transform::LabelInterp>,
}

impl<'a> Sampler<'a> {
    /// The random source of sample `index` of seed `seed` (ChaCha8 seeded from both).
    pub fn new(input: &'a SampleInput<'a>, seed: u64, index: u64) -> Sampler<'a> {
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(mix(seed ^ mix(index))),
            input,
            grid: input.grid.clone(),
            to_input: grid::IDENTITY,
            out: Vec::new(),
            label_interp: None,
        }
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn uniform(&mut self, r: [f64; 2]) -> f64 {
        r[0] + (r[1] - r[0]) * self.unit()
    }

    /// One uniform draw per axis, x then y then z.
    fn uniform3(&mut self, r: [[f64; 2]; 3]) -> [f64; 3] {
        r.map(|a| self.uniform(a))
    }

    /// Scale factors: one draw for every axis when `isotropic`, else one per axis (x first either way).
    fn factors(&mut self, r: [[f64; 2]; 3], isotropic: bool) -> [f64; 3] {
        let f0 = self.uniform(r[0]);
        if isotropic {
            [f0; 3]
        } else {
            [f0, self.uniform(r[1]), self.uniform(r[2])]
        }
    }

    /// Uniform integer in `lo..=hi`.
    fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.unit() * (hi - lo + 1) as f64) as usize
    }

    fn emit(&mut self, mut t: Transform) -> Result<()> {
        t.inherit_label_interpolation(self.label_interp);
        if let Transform::ResampleTo {
            reference,
            grid: g @ None,
            ..
        } = &mut t
        {
            *g = Some(member_grid(&self.input.members, reference)?);
        }
        if let Some(step) = spatial::step(&t, &self.grid)? {
            self.to_input = mat_mul(&self.to_input, &step.pull);
            self.grid = step.grid;
        }
        self.out.push(t);
        Ok(())
    }

    /// Samples a list of steps; returns the deterministic plan.
    pub fn run(mut self, steps: &[Step]) -> Result<Vec<Transform>> {
        self.steps(steps)?;
        Ok(self.out)
    }

    fn steps(&mut self, steps: &[Step]) -> Result<()> {
        for s in steps {
            match s {
                Step::Fixed(t) => self.emit(t.clone())?,
                Step::Random(r) => self.random(r)?,
            }
        }
        Ok(())
    }

    fn random(&mut self, r: &RandomTransform) -> Result<()> {
        let outer = std::mem::replace(&mut self.label_interp, r.label_interpolation());
        let done = self.random_inner(r);
        self.label_interp = outer;
        done
    }

    fn random_inner(&mut self, r: &RandomTransform) -> Result<()> {
        use RandomTransform::*;
        // The probability draw always happens, so later draws do not shift with the outcome's branch.
        let go = self.unit() < r.p();
        if let RandomFlip { .. } = r {
            // random_flip's p is per axis.
        } else if !go {
            return Ok(());
        }
        match r {
            RandomAffine {
                degrees,
                scales,
                isotropic,
                translation_mm,
                shear_degrees,
                center,
                fill,
                ..
            } => {
                let factors = self.factors(scales.resolve(Around::One), *isotropic);
                let shear = self.uniform3(shear_degrees.resolve(Around::Zero));
                let rot = self.uniform3(degrees.resolve(Around::Zero));
                let mm = self.uniform3(translation_mm.resolve(Around::Zero));
                match center {
                    Center::Image => {
                        if factors != [1.0; 3] {
                            self.emit(Transform::Zoom {
                                label_interpolation: None,
                                factors: Vec3(factors),
                                fill: *fill,
                            })?;
                        }
                        if shear != [0.0; 3] {
                            self.emit(Transform::Shear {
                                label_interpolation: None,
                                degrees: Vec3(shear),
                                fill: *fill,
                            })?;
                        }
                        if rot != [0.0; 3] {
                            self.emit(Transform::Rotate {
                                label_interpolation: None,
                                degrees: Vec3(rot),
                                fill: *fill,
                            })?;
                        }
                        if mm != [0.0; 3] {
                            self.emit(Transform::Shift {
                                label_interpolation: None,
                                mm: Vec3(mm),
                                fill: *fill,
                            })?;
                        }
                    }
                    Center::Origin => {
                        // Forward world map about the world origin, written as an explicit voxel pull-back.
                        let fwd = mat_mul(
                            &grid::translation(mm),
                            &mat_mul(
                                &grid::rotation_xyz(rot),
                                &mat_mul(&grid::shear(shear), &grid::scaling(factors)),
                            ),
                        );
                        let inv = mat_inv(&fwd)
                            .ok_or_else(|| Error::invalid("random_affine: singular transform"))?;
                        let g = &self.grid;
                        let m = mat_mul(&g.inverse_affine(), &mat_mul(&inv, &g.affine));
                        self.emit(Transform::Affine {
                            label_interpolation: None,
                            matrix: m,
                            fill: *fill,
                        })?;
                    }
                }
            }
            RandomFlip {
                axes,
                p,
                label_interpolation: _,
            } => {
                let codes: Vec<char> = self.grid.orientation().chars().collect();
                let mut chosen = Vec::new();
                for a in axes {
                    let axis = match a {
                        AxisName::Voxel(v) => *v,
                        AxisName::Named(n) => {
                            let w = world_axis(n).expect("validated");
                            let letters = [['R', 'L'], ['A', 'P'], ['S', 'I']][w];
                            codes.iter().position(|c| letters.contains(c)).unwrap_or(w)
                        }
                    };
                    if self.unit() < *p && !chosen.contains(&axis) {
                        chosen.push(axis);
                    }
                }
                if !chosen.is_empty() {
                    self.emit(Transform::Flip {
                        axes: chosen,
                        label_interpolation: None,
                    })?;
                }
            }
            RandomCrop { size, .. } => {
                let start = self.crop_start(*size, "random_crop")?;
                let start = [0, 1, 2].map(|a| self.int(0, start[a]));
                self.emit(Transform::Crop {
                    label_interpolation: None,
                    start: Some(start),
                    size: Some(*size),
                    margins: None,
                    percent: false,
                })?;
            }
            LabelCrop {
                size,
                foreground_p,
                label_probabilities,
                ..
            } => {
                let max_start = self.crop_start(*size, "label_crop")?;
                // Voxels to centre on: one label value's (by probability) or any foreground voxel.
                let pool: &[u32] = match label_probabilities {
                    Some(m) => {
                        let total: f64 = m.values().sum();
                        let mut x = self.unit() * total;
                        let mut chosen = m.keys().last().expect("validated non-empty");
                        for (k, w) in m {
                            if x < *w {
                                chosen = k;
                                break;
                            }
                            x -= w;
                        }
                        self.input.voxels_of(chosen.parse().expect("validated"))
                    }
                    None => {
                        if self.unit() < *foreground_p {
                            self.input.foreground()
                        } else {
                            &[]
                        }
                    }
                };
                let start = if !pool.is_empty() {
                    let pick = pool[self.int(0, pool.len() - 1)] as usize;
                    let [nx, ny, _] = self.input.grid.shape;
                    let p_in = [
                        (pick % nx) as f64,
                        ((pick / nx) % ny) as f64,
                        (pick / (nx * ny)) as f64,
                    ];
                    let to_cur = mat_inv(&self.to_input)
                        .ok_or_else(|| Error::invalid("label_crop: singular map"))?;
                    let c = grid::mat_apply(&to_cur, p_in);
                    [0, 1, 2].map(|a| {
                        let s = (c[a].round() - (size[a] / 2) as f64).max(0.0) as usize;
                        s.min(max_start[a])
                    })
                } else {
                    [0, 1, 2].map(|a| self.int(0, max_start[a]))
                };
                self.emit(Transform::Crop {
                    label_interpolation: None,
                    start: Some(start),
                    size: Some(*size),
                    margins: None,
                    percent: false,
                })?;
            }
            CropForeground { source, margin, .. } => {
                let Some([lo, hi]) = self.input.nonzero_box(source == "label") else {
                    return Ok(()); // no foreground: the whole volume
                };
                // The box's corners in the current grid (the input's when nothing moved it).
                let to_cur = mat_inv(&self.to_input)
                    .ok_or_else(|| Error::invalid("crop_foreground: singular map"))?;
                let (mut a, mut b) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
                for c in 0..8 {
                    let p = [0, 1, 2].map(|i| {
                        if c >> i & 1 == 0 {
                            lo[i] as f64
                        } else {
                            hi[i] as f64
                        }
                    });
                    let q = grid::mat_apply(&to_cur, p);
                    for i in 0..3 {
                        a[i] = a[i].min(q[i]);
                        b[i] = b[i].max(q[i]);
                    }
                }
                let s = self.grid.shape;
                let mut start = [0usize; 3];
                let mut size = [0usize; 3];
                for i in 0..3 {
                    let from = (a[i].round() - margin.0[i]).max(0.0);
                    let to = (b[i].round() + margin.0[i]).min(s[i] as f64 - 1.0);
                    if from > to {
                        return Ok(()); // the moved box lies outside the volume
                    }
                    start[i] = from as usize;
                    size[i] = (to - from) as usize + 1;
                }
                if start == [0; 3] && size == s {
                    return Ok(());
                }
                self.emit(Transform::Crop {
                    label_interpolation: None,
                    start: Some(start),
                    size: Some(size),
                    margins: None,
                    percent: false,
                })?;
            }
            RandomLowResolution {
                zoom_range,
                p_per_axis,
                ..
            } => {
                // Both draws happen for every axis, so later draws do not depend on the outcomes.
                let mut zoom = [1.0; 3];
                for z in zoom.iter_mut() {
                    let coarse = self.unit() < *p_per_axis;
                    let f = self.uniform(*zoom_range);
                    if coarse {
                        *z = f;
                    }
                }
                if zoom != [1.0; 3] {
                    self.emit(Transform::SimulateLowResolution { zoom: Vec3(zoom) })?;
                }
            }
            RandomGibbs(r) => {
                let t = r.sample(&mut || self.unit());
                self.emit(Transform::Gibbs(t))?;
            }
            RandomSpike(r) => {
                let t = r.sample(&mut || self.unit());
                self.emit(Transform::Spike(t))?;
            }
            RandomGhosting(r) => {
                let t = r.sample(&mut || self.unit());
                self.emit(Transform::Ghosting(t))?;
            }
            RandomMotion(r) => {
                let t = r.sample(&mut || self.unit());
                self.emit(Transform::Motion(t))?;
            }
            SequentialLabels { .. } => {
                let mapping: std::collections::BTreeMap<String, i64> = self
                    .input
                    .label_values()
                    .into_iter()
                    .enumerate()
                    .filter(|&(i, v)| i as i64 != v)
                    .map(|(i, v)| (v.to_string(), i as i64))
                    .collect();
                if !mapping.is_empty() {
                    self.emit(Transform::RemapLabels { mapping })?;
                }
            }
            RandomResize {
                scale, isotropic, ..
            } => {
                let f = self.factors([scale.resolve(Around::One); 3], *isotropic);
                let shape = crate::grid::shape_from_f64(
                    [0, 1, 2].map(|a| (self.grid.shape[a] as f64 * f[a]).round().max(1.0)),
                    "random_resize",
                )?;
                self.emit(Transform::Resize {
                    shape,
                    fill: None,
                    label_interpolation: None,
                })?;
            }
            RandomZoom {
                factors,
                isotropic,
                fill,
                ..
            } => {
                let f = self.factors(factors.resolve(Around::One), *isotropic);
                self.emit(Transform::Zoom {
                    label_interpolation: None,
                    factors: Vec3(f),
                    fill: *fill,
                })?;
            }
            RandomGamma { log_gamma, .. } => {
                let g = self.uniform(log_gamma.resolve(Around::Zero)).exp();
                self.emit(Transform::Gamma { gamma: g })?;
            }
            RandomNoise { std, mean, .. } => {
                let s = self.uniform(std.resolve(Around::FromZero));
                let m = self.uniform(mean.resolve(Around::Zero));
                let seed = self.rng.next_u64();
                self.emit(Transform::Noise {
                    std: s,
                    mean: m,
                    seed,
                })?;
            }
            RandomBlur { sigma, .. } => {
                let r = sigma.resolve(Around::FromZero);
                let s = self.uniform3(r);
                self.emit(Transform::Blur { sigma: Vec3(s) })?;
            }
            RandomBiasField {
                coefficients,
                order,
                ..
            } => {
                let r = coefficients.resolve(Around::Zero);
                let n = super::spec::bias_terms(*order);
                let c: Vec<f64> = (0..n).map(|_| self.uniform(r)).collect();
                self.emit(Transform::BiasField {
                    order: *order,
                    coefficients: c,
                })?;
            }
            RandomContrast { factor, .. } => {
                let f = self.uniform(factor.resolve(Around::One));
                self.emit(Transform::Contrast { factor: f })?;
            }
            RandomBrightness { factor, .. } => {
                let f = self.uniform(factor.resolve(Around::One));
                self.emit(Transform::Brightness { factor: f })?;
            }
            RandomIntensityShift { offset, .. } => {
                let o = self.uniform(offset.resolve(Around::Zero));
                self.emit(Transform::IntensityShift { offset: o })?;
            }
            OneOf {
                transforms,
                weights,
                ..
            } => {
                let w: Vec<f64> = weights
                    .clone()
                    .unwrap_or_else(|| vec![1.0; transforms.len()]);
                let total: f64 = w.iter().sum();
                let mut x = self.unit() * total;
                let mut pick = transforms.len() - 1;
                for (i, wi) in w.iter().enumerate() {
                    if x < *wi {
                        pick = i;
                        break;
                    }
                    x -= wi;
                }
                self.steps(std::slice::from_ref(&transforms[pick]))?;
            }
            SomeOf { transforms, n, .. } => {
                let r = match n {
                    RangeArg::One(x) => [*x, *x],
                    RangeArg::Two(r) => *r,
                };
                let k = self.int(r[0] as usize, r[1] as usize);
                // Partial Fisher-Yates for k distinct indices, then keep the listed order.
                let mut idx: Vec<usize> = (0..transforms.len()).collect();
                for i in 0..k {
                    let j = self.int(i, idx.len() - 1);
                    idx.swap(i, j);
                }
                let mut chosen = idx[..k].to_vec();
                chosen.sort_unstable();
                for i in chosen {
                    self.steps(std::slice::from_ref(&transforms[i]))?;
                }
            }
            Compose { transforms, .. } => self.steps(transforms)?,
            RandomElastic {
                sigma,
                alpha,
                units,
                fill,
                ..
            } => {
                let s = sigma.resolve(Around::Exact);
                let a = alpha.resolve(Around::Exact);
                let sigma = self.uniform3(s);
                let alpha = self.uniform3(a);
                let seed = self.rng.next_u64();
                self.emit(Transform::Elastic {
                    label_interpolation: None,
                    sigma: Vec3(sigma),
                    alpha: Vec3(alpha),
                    units: *units,
                    seed,
                    fill: *fill,
                })?;
            }
            RandomElasticBspline {
                control_points,
                max_displacement_mm,
                locked_borders,
                fill,
                ..
            } => {
                let r = max_displacement_mm.resolve(Around::Exact);
                let m = self.uniform3(r);
                let seed = self.rng.next_u64();
                self.emit(Transform::ElasticBspline {
                    label_interpolation: None,
                    control_points: *control_points,
                    max_displacement_mm: Vec3(m),
                    locked_borders: *locked_borders,
                    seed,
                    fill: *fill,
                })?;
            }
        }
        Ok(())
    }

    /// Largest crop start per axis; errors when the crop does not fit the current grid.
    fn crop_start(&self, size: [usize; 3], what: &str) -> Result<[usize; 3]> {
        let s = self.grid.shape;
        for a in 0..3 {
            if size[a] > s[a] {
                return Err(Error::invalid(format!(
                    "{what}: crop size {size:?} is larger than the volume {s:?} (axis {a}); put \
                     {{\"type\": \"crop_or_pad\", \"size\": [...]}} before it to pad small volumes"
                )));
            }
        }
        Ok([0, 1, 2].map(|a| s[a] - size[a]))
    }
}
