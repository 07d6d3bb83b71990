//! Random transforms and combinators: each one *samples* parameters from the per-sample RNG and emits
//! deterministic transforms (the Plan), which the executors then apply (TorchIO's sample-then-apply).
//! Sample `i` of seed `s` draws from an RNG seeded from `(s, i)` only, so results do not depend on thread
//! count, batch size, processing order or executor.

use super::range::*;
use super::spec::{Fill, LabelInterp, Transform};
use crate::error::{Error, Result};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

fn low_res_default() -> [f64; 2] {
    [0.5, 1.0]
}

fn image_source() -> String {
    "image".into()
}

fn zero_margin() -> super::Vec3 {
    super::Vec3([0.0; 3])
}

/// Random transforms and combinators (public JSON contract, like [`Transform`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RandomTransform {
    /// Random rotation (`degrees`), scaling (`scales`, `isotropic`), translation (`translation_mm`) and
    /// shear (`shear_degrees`) about the image centre or the world origin.
    RandomAffine {
        /// Rotation range per axis in degrees (one number `d`: `[-d, d]`).
        #[serde(default = "ten_degrees")]
        degrees: Range3,
        /// Scale range per axis (one number `s`: `[1 - s, 1 + s]`).
        #[serde(default = "scales_default")]
        scales: Range3,
        /// One scale factor for all axes.
        #[serde(default)]
        isotropic: bool,
        /// Translation range per axis in mm.
        #[serde(default = "zero_range")]
        translation_mm: Range3,
        /// Shear angle ranges `[xy, xz, yz]` in degrees.
        #[serde(default = "zero_range")]
        shear_degrees: Range3,
        /// Centre of rotation, scaling and shear: the image centre or the world origin.
        #[serde(default)]
        center: Center,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Flips each listed axis with probability `p` (default 0.5).
    RandomFlip {
        /// Axes that may flip, each with probability `p`: voxel axes or anatomical names (`"LR"`, `"AP"`, `"IS"`).
        #[serde(default = "all_axes")]
        axes: Vec<AxisName>,
        /// Probability of flipping each axis (default 0.5).
        #[serde(default = "half")]
        p: f64,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Crop of `size` at a uniformly random position.
    RandomCrop {
        /// Crop size in voxels.
        size: [usize; 3],
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Crop of `size`; a fraction `foreground_p` of crops is centred on a random foreground voxel of the
    /// first label map (nnU-Net style oversampling), the others are uniform.
    LabelCrop {
        /// Crop size in voxels.
        size: [usize; 3],
        /// Probability that the crop is centred on a foreground (nonzero label) voxel.
        #[serde(default = "fg_default")]
        foreground_p: f64,
        /// Probability of centring on each label value (`{"0": 0.2, "1": 0.4, "2": 0.4}`); replaces
        /// `foreground_p` when given. A value absent from the label map gives a uniform crop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_probabilities: Option<std::collections::BTreeMap<String, f64>>,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Crops to the bounding box of the foreground (MONAI's `CropForeground`): the nonzero voxels of
    /// the first image (`source: "image"`, the default; channel 0 of a multi-channel image) or of the
    /// first label map (`"label"`), grown by `margin` voxels per side (one number or one per axis) and
    /// clipped to the volume. Data-dependent, so it is resolved when a plan is sampled: the plan
    /// records a `crop`. An empty foreground keeps the whole volume. After spatial transforms the box
    /// is that of the moved foreground box (conservative).
    CropForeground {
        /// `"image"` (default) or `"label"`.
        #[serde(default = "image_source")]
        source: String,
        /// Voxels added on each side of the box (default 0).
        #[serde(default = "zero_margin")]
        margin: super::Vec3,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// `simulate_low_resolution` with random factors (nnU-Net's default augmentation, TorchIO's
    /// `RandomAnisotropy`, MONAI's `RandSimulateLowResolution`): each axis, with probability
    /// `p_per_axis`, gets a factor drawn uniformly from `zoom_range`, the others keep 1.
    RandomLowResolution {
        /// Range of the factor (default `[0.5, 1]`).
        #[serde(default = "low_res_default")]
        zoom_range: [f64; 2],
        /// Probability that each axis is made coarser (default 0.5).
        #[serde(default = "half")]
        p_per_axis: f64,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// Random Gibbs ringing: see [`super::kspace::RandomGibbs`].
    RandomGibbs(super::kspace::RandomGibbs),
    /// Random k-space spikes: see [`super::kspace::RandomSpike`].
    RandomSpike(super::kspace::RandomSpike),
    /// Random ghosting: see [`super::kspace::RandomGhosting`].
    RandomGhosting(super::kspace::RandomGhosting),
    /// Random motion: see [`super::kspace::RandomMotion`].
    RandomMotion(super::kspace::RandomMotion),
    /// Renumbers label values to 0, 1, 2, ... in sorted order (TorchIO's `SequentialLabels`): the
    /// first label map's values, read when a plan is sampled; the plan records the `remap_labels`
    /// it applies to every label map.
    SequentialLabels {
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// Resize the grid by a random factor (`scale`, same factor on every axis when `isotropic`).
    RandomResize {
        /// Range of the resize factor.
        #[serde(default = "resize_default")]
        scale: RangeArg,
        /// One factor for all axes.
        #[serde(default = "yes")]
        isotropic: bool,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Zoom the content by a random factor, same grid.
    RandomZoom {
        /// Zoom factor range per axis.
        #[serde(default = "scales_default")]
        factors: Range3,
        /// One factor for all axes.
        #[serde(default = "yes")]
        isotropic: bool,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Gamma with `log(gamma)` drawn from a range.
    RandomGamma {
        /// Range of `log(gamma)`.
        #[serde(default = "log_gamma_default")]
        log_gamma: RangeArg,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// Gaussian noise with a random std and mean.
    RandomNoise {
        /// Range of the noise std.
        #[serde(default = "noise_std_default")]
        std: RangeArg,
        /// Range of the noise mean.
        #[serde(default = "zero_arg")]
        mean: RangeArg,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// Gaussian blur with random sigmas.
    RandomBlur {
        /// Sigma range per axis in mm.
        #[serde(default = "blur_default")]
        sigma: Range3,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// Smooth multiplicative bias field with random coefficients.
    RandomBiasField {
        /// Range of each coefficient.
        #[serde(default = "bias_default")]
        coefficients: RangeArg,
        /// Polynomial order.
        #[serde(default = "order_default")]
        order: u32,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// Contrast about the mean with a random factor.
    RandomContrast {
        /// Range of the factor.
        #[serde(default = "factor_default")]
        factor: RangeArg,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// Multiplicative brightness with a random factor.
    RandomBrightness {
        /// Range of the factor.
        #[serde(default = "factor_default")]
        factor: RangeArg,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// Additive offset drawn from a range.
    RandomIntensityShift {
        /// Range of the offset.
        #[serde(default = "offset_default")]
        offset: RangeArg,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// `elastic` without a `seed`: `sigma` and `alpha` may be ranges; a seed is drawn per sample.
    #[serde(rename = "elastic")]
    RandomElastic {
        /// Range of the field smoothing per axis (in `units`).
        sigma: Range3,
        /// Range of the displacement scale per axis (in `units`).
        alpha: Range3,
        /// Whether `sigma` and `alpha` are voxels or millimetres.
        #[serde(default)]
        units: super::spec::Units,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// `elastic_bspline` without a `seed`: `max_displacement_mm` may be a range; a seed is drawn per sample.
    #[serde(rename = "elastic_bspline")]
    RandomElasticBspline {
        /// B-spline control points per axis.
        #[serde(default = "seven")]
        control_points: [usize; 3],
        /// Range of the largest control-point displacement per axis, in mm.
        max_displacement_mm: Range3,
        /// Control-point layers at each border held at zero (0, 1 or 2).
        #[serde(default = "two_u8")]
        locked_borders: u8,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// One of `transforms`, chosen with `weights` (default equal).
    OneOf {
        /// The candidates.
        #[serde(deserialize_with = "steps")]
        transforms: Vec<Step>,
        /// Relative weights of the candidates (default: equal).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<Vec<f64>>,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// `n` (a number or [min, max]) of `transforms`, distinct, applied in their listed order.
    SomeOf {
        /// The candidates.
        #[serde(deserialize_with = "steps")]
        transforms: Vec<Step>,
        /// Range of how many candidates are applied (in their order).
        n: RangeArg,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
    /// A nested list (a bare JSON list is read as this).
    Compose {
        /// The transforms, applied in order.
        #[serde(deserialize_with = "steps")]
        transforms: Vec<Step>,
        /// Probability that the transform is applied (default 1).
        #[serde(default = "one")]
        p: f64,
    },
}

fn seven() -> [usize; 3] {
    [7, 7, 7]
}
fn two_u8() -> u8 {
    2
}

fn all_axes() -> Vec<AxisName> {
    vec![AxisName::Voxel(0), AxisName::Voxel(1), AxisName::Voxel(2)]
}

fn steps<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Step>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    let a = v
        .as_array()
        .ok_or_else(|| de::Error::custom("\"transforms\" must be a list"))?;
    a.iter()
        .enumerate()
        .map(|(i, t)| {
            parse_step(&format!("transforms[{i}]"), t).map_err(|e| de::Error::custom(strip(e)))
        })
        .collect()
}

fn strip(e: Error) -> String {
    match e {
        Error::Pipeline(m) => m,
        other => other.to_string(),
    }
}

/// One entry of a pipeline: a deterministic transform or a random transform / combinator.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A deterministic transform.
    Fixed(Transform),
    /// A random transform or combinator.
    Random(Box<RandomTransform>),
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Step::Fixed(t) => t.serialize(s),
            Step::Random(r) => r.serialize(s),
        }
    }
}

/// Type names of the random transforms and combinators.
pub const RANDOM_TYPES: &[&str] = &[
    "random_affine",
    "random_flip",
    "random_crop",
    "label_crop",
    "crop_foreground",
    "sequential_labels",
    "random_low_resolution",
    "random_gibbs",
    "random_spike",
    "random_ghosting",
    "random_motion",
    "random_resize",
    "random_zoom",
    "random_gamma",
    "random_noise",
    "random_blur",
    "random_bias_field",
    "random_contrast",
    "random_brightness",
    "random_intensity_shift",
    "one_of",
    "some_of",
    "compose",
];

/// Parses one pipeline entry; `at` names it in errors (`transforms[2]`).
pub fn parse_step(at: &str, v: &serde_json::Value) -> Result<Step> {
    if v.is_array() {
        let wrapped = serde_json::json!({"type": "compose", "transforms": v});
        return parse_step(at, &wrapped);
    }
    let ty = v
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| Error::pipeline(format!("{at}: missing \"type\"")))?;
    // Elastic transforms with a seed are deterministic (as written in plans); without, they are sampled.
    let seeded = v.get("seed").is_some();
    if RANDOM_TYPES.contains(&ty) || (["elastic", "elastic_bspline"].contains(&ty) && !seeded) {
        let r: RandomTransform = serde_json::from_value(v.clone())
            .map_err(|e| Error::pipeline(format!("{at} ({ty}): {e}")))?;
        r.validate()
            .map_err(|e| Error::pipeline(format!("{at} ({ty}): {}", strip(e))))?;
        return Ok(Step::Random(Box::new(r)));
    }
    parse_transform(at, v).map(Step::Fixed)
}

impl RandomTransform {
    pub(crate) fn p(&self) -> f64 {
        use RandomTransform::*;
        match self {
            RandomAffine { p, .. }
            | RandomFlip { p, .. }
            | RandomCrop { p, .. }
            | LabelCrop { p, .. }
            | CropForeground { p, .. }
            | SequentialLabels { p }
            | RandomLowResolution { p, .. }
            | RandomResize { p, .. }
            | RandomZoom { p, .. }
            | RandomGamma { p, .. }
            | RandomNoise { p, .. }
            | RandomBlur { p, .. }
            | RandomBiasField { p, .. }
            | RandomContrast { p, .. }
            | RandomBrightness { p, .. }
            | RandomIntensityShift { p, .. }
            | RandomElastic { p, .. }
            | RandomElasticBspline { p, .. }
            | OneOf { p, .. }
            | SomeOf { p, .. }
            | Compose { p, .. } => *p,
            RandomGibbs(r) => r.p,
            RandomSpike(r) => r.p,
            RandomGhosting(r) => r.p,
            RandomMotion(r) => r.p,
        }
    }

    /// The `label_interpolation` of a random spatial transform (given to what it emits).
    pub fn label_interpolation(&self) -> Option<LabelInterp> {
        use RandomTransform::*;
        match self {
            RandomAffine {
                label_interpolation: li,
                ..
            }
            | RandomFlip {
                label_interpolation: li,
                ..
            }
            | RandomCrop {
                label_interpolation: li,
                ..
            }
            | LabelCrop {
                label_interpolation: li,
                ..
            }
            | CropForeground {
                label_interpolation: li,
                ..
            }
            | RandomResize {
                label_interpolation: li,
                ..
            }
            | RandomZoom {
                label_interpolation: li,
                ..
            }
            | RandomElastic {
                label_interpolation: li,
                ..
            }
            | RandomElasticBspline {
                label_interpolation: li,
                ..
            } => *li,
            _ => None,
        }
    }

    /// Checks ranges and probabilities (before any data is touched).
    pub fn validate(&self) -> Result<()> {
        use RandomTransform::*;
        check_p(self.p())?;
        match self {
            RandomGibbs(r) => r.validate()?,
            RandomSpike(r) => r.validate()?,
            RandomGhosting(r) => r.validate()?,
            RandomMotion(r) => r.validate()?,
            RandomAffine {
                degrees,
                scales,
                translation_mm,
                shear_degrees,
                ..
            } => {
                check_range3("degrees", degrees.resolve(Around::Zero))?;
                let s = scales.resolve(Around::One);
                check_range3("scales", s)?;
                if s.iter().any(|r| r[0] <= 0.0) {
                    return Err(Error::pipeline(format!("scales must stay > 0, got {s:?}")));
                }
                check_range3("translation_mm", translation_mm.resolve(Around::Zero))?;
                let sh = shear_degrees.resolve(Around::Zero);
                check_range3("shear_degrees", sh)?;
                if sh.iter().flatten().any(|d| d.abs() >= 89.0) {
                    return Err(Error::pipeline("shear_degrees must be within (-89, 89)"));
                }
            }
            RandomFlip { axes, .. } => {
                for a in axes {
                    match a {
                        AxisName::Voxel(v) if *v > 2 => {
                            return Err(Error::pipeline(format!("axis {v} is not 0, 1 or 2")))
                        }
                        AxisName::Named(n) if world_axis(n).is_none() => {
                            return Err(Error::pipeline(format!(
                                "unknown axis name `{n}` (use 0, 1, 2 or LR, AP, IS)"
                            )))
                        }
                        _ => {}
                    }
                }
            }
            CropForeground { source, margin, .. } => {
                if source != "image" && source != "label" {
                    return Err(Error::pipeline(format!(
                        "crop_foreground.source: {source:?} (expected \"image\" or \"label\")"
                    )));
                }
                if margin
                    .0
                    .iter()
                    .any(|m| !m.is_finite() || *m < 0.0 || m.fract() != 0.0 || *m > 1e6)
                {
                    return Err(Error::pipeline(format!(
                        "crop_foreground.margin: {:?} (expected whole numbers of voxels >= 0)",
                        margin.0
                    )));
                }
            }
            RandomCrop { size, .. } | LabelCrop { size, .. } => {
                if size.contains(&0) {
                    return Err(Error::pipeline("crop size must be >= 1"));
                }
                if let LabelCrop {
                    foreground_p,
                    label_probabilities,
                    ..
                } = self
                {
                    check_p(*foreground_p)?;
                    if let Some(m) = label_probabilities {
                        for (k, v) in m {
                            if k.parse::<i64>().is_err() {
                                return Err(Error::pipeline(format!(
                                    "label_probabilities: key `{k}` is not an integer label value"
                                )));
                            }
                            if !v.is_finite() || *v < 0.0 {
                                return Err(Error::pipeline(format!(
                                    "label_probabilities: probability of label {k} must be >= 0, got {v}"
                                )));
                            }
                        }
                        if m.values().sum::<f64>() <= 0.0 {
                            return Err(Error::pipeline(
                                "label_probabilities must have a positive sum",
                            ));
                        }
                    }
                }
            }
            RandomResize { scale, .. } => {
                let r = scale.resolve(Around::One);
                check_range("scale", r)?;
                if r[0] <= 0.0 {
                    return Err(Error::pipeline("scale must stay > 0"));
                }
            }
            RandomZoom { factors, .. } => {
                let r = factors.resolve(Around::One);
                check_range3("factors", r)?;
                if r.iter().any(|x| x[0] <= 0.0) {
                    return Err(Error::pipeline("factors must stay > 0"));
                }
            }
            RandomGamma { log_gamma, .. } => {
                check_range("log_gamma", log_gamma.resolve(Around::Zero))?
            }
            RandomNoise { std, mean, .. } => {
                let s = std.resolve(Around::FromZero);
                check_range("std", s)?;
                if s[0] < 0.0 {
                    return Err(Error::pipeline("std must be >= 0"));
                }
                check_range("mean", mean.resolve(Around::Zero))?;
            }
            RandomBlur { sigma, .. } => {
                let s = sigma.resolve(Around::FromZero);
                check_range3("sigma", s)?;
                if s.iter().flatten().any(|&x| !(0.0..=100.0).contains(&x)) {
                    return Err(Error::pipeline("sigma must be within 0..100 mm"));
                }
            }
            RandomBiasField {
                coefficients,
                order,
                ..
            } => {
                check_range("coefficients", coefficients.resolve(Around::Zero))?;
                if *order > 5 {
                    return Err(Error::pipeline("order must be <= 5"));
                }
            }
            RandomContrast { factor, .. } | RandomBrightness { factor, .. } => {
                check_range("factor", factor.resolve(Around::One))?
            }
            RandomIntensityShift { offset, .. } => {
                check_range("offset", offset.resolve(Around::Zero))?
            }
            OneOf {
                transforms,
                weights,
                ..
            } => {
                if transforms.is_empty() {
                    return Err(Error::pipeline("one_of needs at least one transform"));
                }
                if let Some(w) = weights {
                    if w.len() != transforms.len() {
                        return Err(Error::pipeline(format!(
                            "one_of: {} weights for {} transforms",
                            w.len(),
                            transforms.len()
                        )));
                    }
                    if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().sum::<f64>() <= 0.0
                    {
                        return Err(Error::pipeline(
                            "one_of: weights must be >= 0 with a positive sum",
                        ));
                    }
                }
            }
            SomeOf { transforms, n, .. } => {
                let r = n.resolve(Around::Zero);
                let r = match n {
                    RangeArg::One(x) => [*x, *x],
                    _ => r,
                };
                check_range("n", r)?;
                if r[0] < 0.0
                    || r[1] > transforms.len() as f64
                    || r.iter().any(|x| x.fract() != 0.0)
                {
                    return Err(Error::pipeline(format!(
                        "some_of: n {r:?} must be whole numbers within 0..={}",
                        transforms.len()
                    )));
                }
            }
            RandomElastic { sigma, alpha, .. } => {
                let s = sigma.resolve(Around::Exact);
                check_range3("sigma", s)?;
                if s.iter().flatten().any(|&x| x <= 0.0 || x > 1000.0) {
                    return Err(Error::pipeline("sigma must be within (0, 1000]"));
                }
                check_range3("alpha", alpha.resolve(Around::Exact))?;
            }
            RandomElasticBspline {
                control_points,
                max_displacement_mm,
                locked_borders,
                ..
            } => {
                check_range3(
                    "max_displacement_mm",
                    max_displacement_mm.resolve(Around::Exact),
                )?;
                if control_points.iter().any(|&c| !(4..=64).contains(&c)) || *locked_borders > 2 {
                    return Err(Error::pipeline(
                        "control_points must be within 4..=64 per axis and locked_borders 0, 1 or 2",
                    ));
                }
            }
            Compose { .. } | SequentialLabels { .. } => {}
            RandomLowResolution {
                zoom_range,
                p_per_axis,
                ..
            } => {
                check_p(*p_per_axis)?;
                let [lo, hi] = *zoom_range;
                if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi && hi <= 1.0) {
                    return Err(Error::pipeline(format!(
                        "random_low_resolution.zoom_range: {zoom_range:?} (0 < low <= high <= 1)"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Parses one deterministic transform; `at` names it in errors.
pub(crate) fn parse_transform(at: &str, v: &serde_json::Value) -> Result<Transform> {
    let ty = v
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| Error::pipeline(format!("{at}: missing \"type\"")))?;
    let t: Transform = serde_json::from_value(v.clone()).map_err(|e| {
        let msg = e.to_string();
        // Only an unknown `type`: an unknown value of an enum field (`"mask": "bogus"`) names itself.
        if msg.starts_with(&format!("unknown variant `{ty}`")) {
            let fixed = msg
                .split("expected one of ")
                .nth(1)
                .unwrap_or("")
                .to_string();
            Error::pipeline(super::names::unknown_type(at, ty, &fixed, RANDOM_TYPES))
        } else {
            Error::pipeline(format!("{at} ({ty}): {msg}"))
        }
    })?;
    t.validate()
        .map_err(|e| Error::pipeline(format!("{at} ({ty}): {}", strip(e))))?;
    Ok(t)
}
