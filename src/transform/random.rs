//! Random transforms and combinators: each one *samples* parameters from the per-sample RNG and emits
//! deterministic transforms (the Plan), which the executors then apply (TorchIO's sample-then-apply).
//! Sample `i` of seed `s` draws from an RNG seeded from `(s, i)` only, so results do not depend on thread
//! count, batch size, processing order or executor.

use super::spatial;
use super::spec::{Fill, Transform, Vec3};
use crate::error::{Error, Result};
use crate::grid::{self, mat_inv, mat_mul, Grid, Mat4};
use crate::volume::Volume;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::sync::OnceLock;

/// A range argument: one number (whose meaning depends on the field: `x` -> `[-x, x]`, `[1 - x, 1 + x]`
/// or `[0, x]`) or `[min, max]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RangeArg {
    One(f64),
    Two([f64; 2]),
}

fn range_from_value(v: &serde_json::Value) -> Option<RangeArg> {
    if let Some(x) = v.as_f64() {
        return Some(RangeArg::One(x));
    }
    let a = v.as_array()?;
    if a.len() == 2 {
        return Some(RangeArg::Two([a[0].as_f64()?, a[1].as_f64()?]));
    }
    None
}

impl<'de> Deserialize<'de> for RangeArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        range_from_value(&v)
            .ok_or_else(|| de::Error::custom(format!("expected a number or [min, max], got {v}")))
    }
}

/// How one number is read as a range.
#[derive(Clone, Copy)]
enum Around {
    /// `x` -> `[-x, x]`
    Zero,
    /// `x` -> `[1 - x, 1 + x]`
    One,
    /// `x` -> `[0, x]`
    FromZero,
    /// `x` -> `[x, x]`
    Exact,
}

impl RangeArg {
    fn resolve(self, around: Around) -> [f64; 2] {
        match (self, around) {
            (RangeArg::Two(r), _) => r,
            (RangeArg::One(x), Around::Zero) => [-x.abs(), x.abs()],
            (RangeArg::One(x), Around::One) => [1.0 - x, 1.0 + x],
            (RangeArg::One(x), Around::FromZero) => [0.0, x],
            (RangeArg::One(x), Around::Exact) => [x, x],
        }
    }
}

/// A range per axis: one range for all axes, or three (`[x, y, z]` of numbers or `[min, max]` pairs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Range3 {
    All(RangeArg),
    Each([RangeArg; 3]),
}

impl<'de> Deserialize<'de> for Range3 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if let Some(a) = v.as_array().filter(|a| a.len() == 3) {
            let each: Option<Vec<RangeArg>> = a.iter().map(range_from_value).collect();
            if let Some(e) = each {
                return Ok(Range3::Each([e[0], e[1], e[2]]));
            }
        }
        range_from_value(&v).map(Range3::All).ok_or_else(|| {
            de::Error::custom(format!(
                "expected a number, [min, max], or one of those per axis [x, y, z], got {v}"
            ))
        })
    }
}

impl Range3 {
    fn resolve(self, around: Around) -> [[f64; 2]; 3] {
        match self {
            Range3::All(r) => [r.resolve(around); 3],
            Range3::Each(e) => e.map(|r| r.resolve(around)),
        }
    }
}

/// A flip axis: a voxel axis or an anatomical axis name (`"LR"`, `"AP"`, `"IS"`, or one letter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AxisName {
    Voxel(usize),
    Named(String),
}

/// Where random_affine rotates, scales and shears about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Center {
    #[default]
    Image,
    Origin,
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn zero_range() -> Range3 {
    Range3::All(RangeArg::One(0.0))
}
fn ten_degrees() -> Range3 {
    Range3::All(RangeArg::One(10.0))
}
fn scales_default() -> Range3 {
    Range3::All(RangeArg::One(0.1))
}
fn log_gamma_default() -> RangeArg {
    RangeArg::One(0.3)
}
fn noise_std_default() -> RangeArg {
    RangeArg::Two([0.0, 0.25])
}
fn zero_arg() -> RangeArg {
    RangeArg::One(0.0)
}
fn blur_default() -> Range3 {
    Range3::All(RangeArg::Two([0.0, 2.0]))
}
fn bias_default() -> RangeArg {
    RangeArg::One(0.5)
}
fn order_default() -> u32 {
    3
}
fn factor_default() -> RangeArg {
    RangeArg::Two([0.75, 1.25])
}
fn offset_default() -> RangeArg {
    RangeArg::One(0.1)
}
fn resize_default() -> RangeArg {
    RangeArg::Two([0.9, 1.1])
}
fn fg_default() -> f64 {
    0.33
}
fn yes() -> bool {
    true
}

/// Random transforms and combinators (public JSON contract, like [`Transform`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RandomTransform {
    /// Random rotation (`degrees`), scaling (`scales`, `isotropic`), translation (`translation_mm`) and
    /// shear (`shear_degrees`) about the image centre or the world origin.
    RandomAffine {
        #[serde(default = "ten_degrees")]
        degrees: Range3,
        #[serde(default = "scales_default")]
        scales: Range3,
        #[serde(default)]
        isotropic: bool,
        #[serde(default = "zero_range")]
        translation_mm: Range3,
        #[serde(default = "zero_range")]
        shear_degrees: Range3,
        #[serde(default)]
        center: Center,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        #[serde(default = "one")]
        p: f64,
    },
    /// Flips each listed axis with probability `p` (default 0.5).
    RandomFlip {
        #[serde(default = "all_axes")]
        axes: Vec<AxisName>,
        #[serde(default = "half")]
        p: f64,
    },
    /// Crop of `size` at a uniformly random position.
    RandomCrop {
        size: [usize; 3],
        #[serde(default = "one")]
        p: f64,
    },
    /// Crop of `size`; a fraction `foreground_p` of crops is centred on a random foreground voxel of the
    /// first label map (nnU-Net style oversampling), the others are uniform.
    LabelCrop {
        size: [usize; 3],
        #[serde(default = "fg_default")]
        foreground_p: f64,
        /// Probability of centring on each label value (`{"0": 0.2, "1": 0.4, "2": 0.4}`); replaces
        /// `foreground_p` when given. A value absent from the label map gives a uniform crop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_probabilities: Option<std::collections::BTreeMap<String, f64>>,
        #[serde(default = "one")]
        p: f64,
    },
    /// Resize the grid by a random factor (`scale`, same factor on every axis when `isotropic`).
    RandomResize {
        #[serde(default = "resize_default")]
        scale: RangeArg,
        #[serde(default = "yes")]
        isotropic: bool,
        #[serde(default = "one")]
        p: f64,
    },
    /// Zoom the content by a random factor, same grid.
    RandomZoom {
        #[serde(default = "scales_default")]
        factors: Range3,
        #[serde(default = "yes")]
        isotropic: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        #[serde(default = "one")]
        p: f64,
    },
    RandomGamma {
        #[serde(default = "log_gamma_default")]
        log_gamma: RangeArg,
        #[serde(default = "one")]
        p: f64,
    },
    RandomNoise {
        #[serde(default = "noise_std_default")]
        std: RangeArg,
        #[serde(default = "zero_arg")]
        mean: RangeArg,
        #[serde(default = "one")]
        p: f64,
    },
    RandomBlur {
        #[serde(default = "blur_default")]
        sigma: Range3,
        #[serde(default = "one")]
        p: f64,
    },
    RandomBiasField {
        #[serde(default = "bias_default")]
        coefficients: RangeArg,
        #[serde(default = "order_default")]
        order: u32,
        #[serde(default = "one")]
        p: f64,
    },
    RandomContrast {
        #[serde(default = "factor_default")]
        factor: RangeArg,
        #[serde(default = "one")]
        p: f64,
    },
    RandomBrightness {
        #[serde(default = "factor_default")]
        factor: RangeArg,
        #[serde(default = "one")]
        p: f64,
    },
    RandomIntensityShift {
        #[serde(default = "offset_default")]
        offset: RangeArg,
        #[serde(default = "one")]
        p: f64,
    },
    /// `elastic` without a `seed`: `sigma` and `alpha` may be ranges; a seed is drawn per sample.
    #[serde(rename = "elastic")]
    RandomElastic {
        sigma: Range3,
        alpha: Range3,
        #[serde(default)]
        units: super::spec::Units,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        #[serde(default = "one")]
        p: f64,
    },
    /// `elastic_bspline` without a `seed`: `max_displacement_mm` may be a range; a seed is drawn per sample.
    #[serde(rename = "elastic_bspline")]
    RandomElasticBspline {
        #[serde(default = "seven")]
        control_points: [usize; 3],
        max_displacement_mm: Range3,
        #[serde(default = "two_u8")]
        locked_borders: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        #[serde(default = "one")]
        p: f64,
    },
    /// One of `transforms`, chosen with `weights` (default equal).
    OneOf {
        #[serde(deserialize_with = "steps")]
        transforms: Vec<Step>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<Vec<f64>>,
        #[serde(default = "one")]
        p: f64,
    },
    /// `n` (a number or [min, max]) of `transforms`, distinct, applied in their listed order.
    SomeOf {
        #[serde(deserialize_with = "steps")]
        transforms: Vec<Step>,
        n: RangeArg,
        #[serde(default = "one")]
        p: f64,
    },
    /// A nested list (a bare JSON list is read as this).
    Compose {
        #[serde(deserialize_with = "steps")]
        transforms: Vec<Step>,
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
    Fixed(Transform),
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
    super::spec::parse_transform(at, v).map(Step::Fixed)
}

fn check_p(p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return Err(Error::pipeline(format!(
            "probability p must be within [0, 1], got {p}"
        )));
    }
    Ok(())
}

fn check_range(name: &str, r: [f64; 2]) -> Result<()> {
    if !(r[0].is_finite() && r[1].is_finite()) {
        return Err(Error::pipeline(format!(
            "{name}: range {r:?} must be finite"
        )));
    }
    if r[0] > r[1] {
        return Err(Error::pipeline(format!(
            "{name}: range min {} > max {}",
            r[0], r[1]
        )));
    }
    Ok(())
}

fn check_range3(name: &str, r: [[f64; 2]; 3]) -> Result<()> {
    r.iter().try_for_each(|x| check_range(name, *x))
}

impl RandomTransform {
    fn p(&self) -> f64 {
        use RandomTransform::*;
        match self {
            RandomAffine { p, .. }
            | RandomFlip { p, .. }
            | RandomCrop { p, .. }
            | LabelCrop { p, .. }
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
        }
    }

    /// Checks ranges and probabilities (before any data is touched).
    pub fn validate(&self) -> Result<()> {
        use RandomTransform::*;
        check_p(self.p())?;
        match self {
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
            Compose { .. } => {}
        }
        Ok(())
    }
}

/// World axis (0 = x/LR, 1 = y/AP, 2 = z/IS) of an anatomical axis name.
fn world_axis(name: &str) -> Option<usize> {
    match name.to_ascii_uppercase().as_str() {
        "LR" | "RL" | "L" | "R" => Some(0),
        "AP" | "PA" | "A" | "P" => Some(1),
        "IS" | "SI" | "I" | "S" => Some(2),
        _ => None,
    }
}

/// What sampling may look at: the input grid and the first label map (for `label_crop`). Foreground
/// positions are found once and shared by all samples.
pub struct SampleInput<'a> {
    pub grid: Grid,
    pub label: Option<&'a Volume>,
    foreground: OnceLock<Vec<u32>>,
    by_value: OnceLock<std::collections::BTreeMap<i64, Vec<u32>>>,
}

impl<'a> SampleInput<'a> {
    pub fn new(grid: Grid, label: Option<&'a Volume>) -> SampleInput<'a> {
        SampleInput {
            grid,
            label,
            foreground: OnceLock::new(),
            by_value: OnceLock::new(),
        }
    }

    /// Voxel indices of each label value (first label map), found once.
    fn voxels_of(&self, value: i64) -> &[u32] {
        let m = self.by_value.get_or_init(|| {
            let mut m: std::collections::BTreeMap<i64, Vec<u32>> = Default::default();
            if let Some(l) = self.label {
                for (i, v) in l.data.iter().enumerate() {
                    m.entry(*v as i64).or_default().push(i as u32);
                }
            }
            m
        });
        m.get(&value).map(|v| &v[..]).unwrap_or(&[])
    }

    fn foreground(&self) -> &[u32] {
        self.foreground.get_or_init(|| match self.label {
            Some(l) => l
                .data
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(i, _)| i as u32)
                .collect(),
            None => Vec::new(),
        })
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
}

impl<'a> Sampler<'a> {
    pub fn new(input: &'a SampleInput<'a>, seed: u64, index: u64) -> Sampler<'a> {
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(mix(seed ^ mix(index))),
            input,
            grid: input.grid.clone(),
            to_input: grid::IDENTITY,
            out: Vec::new(),
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

    fn emit(&mut self, t: Transform) -> Result<()> {
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
                                factors: Vec3(factors),
                                fill: *fill,
                            })?;
                        }
                        if shear != [0.0; 3] {
                            self.emit(Transform::Shear {
                                degrees: Vec3(shear),
                                fill: *fill,
                            })?;
                        }
                        if rot != [0.0; 3] {
                            self.emit(Transform::Rotate {
                                degrees: Vec3(rot),
                                fill: *fill,
                            })?;
                        }
                        if mm != [0.0; 3] {
                            self.emit(Transform::Shift {
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
                            matrix: m,
                            fill: *fill,
                        })?;
                    }
                }
            }
            RandomFlip { axes, p } => {
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
                    self.emit(Transform::Flip { axes: chosen })?;
                }
            }
            RandomCrop { size, .. } => {
                let start = self.crop_start(*size, "random_crop")?;
                let start = [0, 1, 2].map(|a| self.int(0, start[a]));
                self.emit(Transform::Crop {
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
                    start: Some(start),
                    size: Some(*size),
                    margins: None,
                    percent: false,
                })?;
            }
            RandomResize {
                scale, isotropic, ..
            } => {
                let f = self.factors([scale.resolve(Around::One); 3], *isotropic);
                let shape =
                    [0, 1, 2].map(|a| ((self.grid.shape[a] as f64 * f[a]).round() as usize).max(1));
                self.emit(Transform::Resize { shape, fill: None })?;
            }
            RandomZoom {
                factors,
                isotropic,
                fill,
                ..
            } => {
                let f = self.factors(factors.resolve(Around::One), *isotropic);
                self.emit(Transform::Zoom {
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
                let n = crate::exec::cpu::intensity::bias_terms(*order);
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
                    "{what}: crop size {size:?} is larger than the volume {s:?} (axis {a})"
                )));
            }
        }
        Ok([0, 1, 2].map(|a| s[a] - size[a]))
    }
}
