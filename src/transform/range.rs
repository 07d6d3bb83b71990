//! Ranges of random parameters as the pipeline JSON writes them (one number or `[min, max]`, per axis
//! or for all axes), their defaults, and the checks every random transform applies to them.

use crate::error::{Error, Result};
use serde::{de, Deserialize, Deserializer, Serialize};

/// A range argument: one number (whose meaning depends on the field: `x` -> `[-x, x]`, `[1 - x, 1 + x]`
/// or `[0, x]`) or `[min, max]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RangeArg {
    /// One number, read according to the field (`x` -> `[-x, x]` or `[1 - x, 1 + x]`).
    One(f64),
    /// `[min, max]`.
    Two([f64; 2]),
}

pub(crate) fn range_from_value(v: &serde_json::Value) -> Option<RangeArg> {
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
pub(crate) enum Around {
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
    pub(crate) fn resolve(self, around: Around) -> [f64; 2] {
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
    /// One range for every axis.
    All(RangeArg),
    /// A range per axis.
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
    pub(crate) fn resolve(self, around: Around) -> [[f64; 2]; 3] {
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
    /// A voxel axis (0, 1 or 2).
    Voxel(usize),
    /// An anatomical axis name (`"LR"`, `"AP"`, `"IS"`, or one letter).
    Named(String),
}

/// Where random_affine rotates, scales and shears about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Center {
    /// The centre of the image.
    #[default]
    Image,
    /// The world origin (0, 0, 0).
    Origin,
}

pub(crate) fn one() -> f64 {
    1.0
}

pub(crate) fn half() -> f64 {
    0.5
}

pub(crate) fn zero_range() -> Range3 {
    Range3::All(RangeArg::One(0.0))
}

pub(crate) fn ten_degrees() -> Range3 {
    Range3::All(RangeArg::One(10.0))
}

pub(crate) fn scales_default() -> Range3 {
    Range3::All(RangeArg::One(0.1))
}

pub(crate) fn log_gamma_default() -> RangeArg {
    RangeArg::One(0.3)
}

pub(crate) fn noise_std_default() -> RangeArg {
    RangeArg::Two([0.0, 0.25])
}

pub(crate) fn zero_arg() -> RangeArg {
    RangeArg::One(0.0)
}

pub(crate) fn blur_default() -> Range3 {
    Range3::All(RangeArg::Two([0.0, 2.0]))
}

pub(crate) fn bias_default() -> RangeArg {
    RangeArg::One(0.5)
}

pub(crate) fn order_default() -> u32 {
    3
}

pub(crate) fn factor_default() -> RangeArg {
    RangeArg::Two([0.75, 1.25])
}

pub(crate) fn offset_default() -> RangeArg {
    RangeArg::One(0.1)
}

pub(crate) fn resize_default() -> RangeArg {
    RangeArg::Two([0.9, 1.1])
}

pub(crate) fn fg_default() -> f64 {
    0.33
}

pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn check_p(p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return Err(Error::pipeline(format!(
            "probability p must be within [0, 1], got {p}"
        )));
    }
    Ok(())
}

pub(crate) fn check_range(name: &str, r: [f64; 2]) -> Result<()> {
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

pub(crate) fn check_range3(name: &str, r: [[f64; 2]; 3]) -> Result<()> {
    r.iter().try_for_each(|x| check_range(name, *x))
}

/// World axis (0 = x/LR, 1 = y/AP, 2 = z/IS) of an anatomical axis name.
pub(crate) fn world_axis(name: &str) -> Option<usize> {
    match name.to_ascii_uppercase().as_str() {
        "LR" | "RL" | "L" | "R" => Some(0),
        "AP" | "PA" | "A" | "P" => Some(1),
        "IS" | "SI" | "I" | "S" => Some(2),
        _ => None,
    }
}
