//! MRI k-space artefacts (TorchIO's `Motion`, `Ghosting`, `Spike`, MONAI's `GibbsNoise`): the JSON
//! contract of the deterministic transforms (`gibbs`, `spike`, `ghosting`, `motion`) and of their random
//! forms (`random_gibbs`, `random_spike`, `random_ghosting`, `random_motion`), and the resolved op the
//! executors receive ([`KSpaceOp`]). The k-space maths both executors share is in `exec/kspace.rs`.
//!
//! k-space positions follow TorchIO: the spectrum is `fftshift(fftn(image))`, so shifted index `s` along
//! an axis of `n` voxels is frequency `s - n / 2`; every artefact is an image-only intensity transform
//! (label maps are untouched) that returns the real part of the inverse transform.

use super::range::{one, Around, RangeArg};
use super::values::Vec3;
use crate::error::{Error, Result};
use serde::{de, Deserialize, Deserializer, Serialize};

/// `gibbs`: Gibbs ringing from k-space truncation (MONAI's `GibbsNoise`). Along each axis only the
/// frequencies `|k| <= floor(fraction * n / 2)` are kept (a box centred on the k-space centre, symmetric
/// so the result is real); `fraction` 1 keeps everything (identity). MONAI keeps a sphere of radius
/// `(1 - alpha)` of the half-diagonal instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gibbs {
    /// Fraction of k-space kept per axis, in (0, 1] (one number for all axes or `[x, y, z]`).
    pub fraction: Vec3,
}

/// `spike`: herringbone artefact from spikes in k-space (TorchIO's `Spike`): each spike adds
/// `intensity` times the largest magnitude of the image's spectrum at one k-space position, so the image
/// gains a plane wave. `positions` are TorchIO's: each coordinate in [0, 1) of the shifted spectrum
/// (`floor(position * n)`); when absent, `spikes` positions are drawn from `seed`. Unlike TorchIO, whose
/// loop re-reads the spectrum's maximum after each spike, every spike has the size of the first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    /// Number of spikes (0: identity); must match `positions` when both are given.
    #[serde(default, alias = "num_spikes", skip_serializing_if = "Option::is_none")]
    pub spikes: Option<usize>,
    /// Spike size relative to the spectrum's largest magnitude (0: identity; negative subtracts).
    pub intensity: f64,
    /// Spike positions, each `[x, y, z]` in [0, 1) of the shifted spectrum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<Vec<[f64; 3]>>,
    /// Seed of the positions when `positions` is absent (default 0).
    #[serde(default)]
    pub seed: u64,
}

/// `ghosting`: periodic ghosts along the phase-encode axis (TorchIO's `Ghosting`): every `ghosts`-th
/// k-space plane along `axis` (shifted index multiple of `ghosts`) is scaled by `1 - intensity`, then
/// the centre is restored: the central plane, or `round(restore * n)` planes about it when `restore` is
/// given (TorchIO's slice `mid - r // 2 .. mid + r // 2`). `ghosts` 0 or `intensity` 0: identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ghosting {
    /// Period of the attenuated planes (TorchIO's `num_ghosts`).
    #[serde(alias = "num_ghosts")]
    pub ghosts: u32,
    /// Voxel axis of the ghosts (0, 1 or 2).
    pub axis: usize,
    /// Attenuation of the planes, in [0, 1] (1 removes them).
    pub intensity: f64,
    /// Fraction of the k-space centre restored along the axis, in [0, 1] (default: the central plane).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<f64>,
}

/// `motion`: rigid motion during the acquisition (TorchIO's `Motion`). Movement `i` is a copy of the
/// image rotated by `degrees[i]` about the volume centre (as `rotate`) and shifted by
/// `translation_mm[i]` (as `shift`), trilinear, the image minimum outside. k-space along the last voxel
/// axis is cut at `floor(times * n)`; each segment comes from one copy, the unmoved image taking the
/// segment that holds the k-space centre (TorchIO's ordering). Zero movement is the identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Motion {
    /// Rotation `[x, y, z]` in degrees of each movement (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degrees: Vec<Vec3>,
    /// Translation `[x, y, z]` in mm of each movement (default: none).
    #[serde(default, alias = "translation", skip_serializing_if = "Vec::is_empty")]
    pub translation_mm: Vec<Vec3>,
    /// When each movement happens, as an increasing fraction in (0, 1) of the acquisition (default:
    /// evenly spaced, `i / (movements + 1)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<f64>,
}

/// A k-space artefact, resolved: what the executors run.
#[derive(Clone, Debug, PartialEq)]
pub enum KSpaceOp {
    /// Box truncation per axis.
    Gibbs {
        /// Fraction kept per axis.
        fraction: [f64; 3],
    },
    /// Spikes at shifted positions in [0, 1).
    Spike {
        /// Positions `[x, y, z]`.
        positions: Vec<[f64; 3]>,
        /// Size relative to the spectrum's largest magnitude.
        intensity: f64,
    },
    /// Attenuated planes along one axis.
    Ghosting {
        /// Period.
        ghosts: u32,
        /// Axis.
        axis: usize,
        /// Attenuation.
        intensity: f64,
        /// Restored centre fraction (None: the central plane).
        restore: Option<f64>,
    },
    /// Segments of k-space from moved copies.
    Motion {
        /// `(degrees, translation_mm)` of each movement.
        moves: Vec<([f64; 3], [f64; 3])>,
        /// When each movement happens, increasing in (0, 1).
        times: Vec<f64>,
    },
}

fn finite(name: &str, xs: &[f64]) -> Result<()> {
    if xs.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(Error::pipeline(format!(
            "{name}: values must be finite numbers, got {xs:?}"
        )))
    }
}

/// Positions drawn from a seed (the same on every executor and platform).
pub fn seeded_positions(count: usize, seed: u64) -> Vec<[f64; 3]> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut unit = || (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    (0..count).map(|_| [unit(), unit(), unit()]).collect()
}

/// Largest number of spikes or movements accepted (each costs a pass over the volume).
pub const MAX_EVENTS: usize = 64;

impl Gibbs {
    /// Checks `fraction`.
    pub fn validate(&self) -> Result<()> {
        if self
            .fraction
            .0
            .iter()
            .any(|f| !(f.is_finite() && *f > 0.0 && *f <= 1.0))
        {
            return Err(Error::pipeline(format!(
                "gibbs.fraction: {:?} (each in (0, 1]; 1 = identity)",
                self.fraction.0
            )));
        }
        Ok(())
    }
    /// The resolved op.
    pub fn op(&self) -> KSpaceOp {
        KSpaceOp::Gibbs {
            fraction: self.fraction.0,
        }
    }
}

impl Spike {
    /// Checks counts, positions and intensity.
    pub fn validate(&self) -> Result<()> {
        finite("spike.intensity", &[self.intensity])?;
        if let Some(p) = &self.positions {
            finite("spike.positions", &p.concat())?;
            if p.iter().flatten().any(|x| !(0.0..1.0).contains(x)) {
                return Err(Error::pipeline(
                    "spike.positions: each coordinate must be in [0, 1) (a fraction of the shifted k-space)",
                ));
            }
            if self.spikes.is_some_and(|n| n != p.len()) {
                return Err(Error::pipeline(format!(
                    "spike: spikes = {} but {} positions are given; drop one of them",
                    self.spikes.unwrap_or(0),
                    p.len()
                )));
            }
        } else if self.spikes.is_none() {
            return Err(Error::pipeline(
                "spike: give `spikes` (a count; positions drawn from `seed`) or `positions`",
            ));
        }
        let n = self
            .positions
            .as_ref()
            .map_or(self.spikes.unwrap_or(0), Vec::len);
        if n > MAX_EVENTS {
            return Err(Error::pipeline(format!(
                "spike: {n} spikes (at most {MAX_EVENTS})"
            )));
        }
        Ok(())
    }
    /// The resolved op (positions drawn from `seed` when not given).
    pub fn op(&self) -> KSpaceOp {
        KSpaceOp::Spike {
            positions: self
                .positions
                .clone()
                .unwrap_or_else(|| seeded_positions(self.spikes.unwrap_or(0), self.seed)),
            intensity: self.intensity,
        }
    }
}

impl Ghosting {
    /// Checks the axis, intensity and restore fraction.
    pub fn validate(&self) -> Result<()> {
        finite("ghosting.intensity", &[self.intensity])?;
        if self.axis > 2 {
            return Err(Error::pipeline(format!(
                "ghosting.axis: {} (a voxel axis: 0, 1 or 2)",
                self.axis
            )));
        }
        if !(0.0..=1.0).contains(&self.intensity) {
            return Err(Error::pipeline(format!(
                "ghosting.intensity: {} (in [0, 1]; 1 removes the planes)",
                self.intensity
            )));
        }
        if let Some(r) = self.restore {
            if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
                return Err(Error::pipeline(format!(
                    "ghosting.restore: {r} (a fraction in [0, 1])"
                )));
            }
        }
        Ok(())
    }
    /// The resolved op.
    pub fn op(&self) -> KSpaceOp {
        KSpaceOp::Ghosting {
            ghosts: self.ghosts,
            axis: self.axis,
            intensity: self.intensity,
            restore: self.restore,
        }
    }
}

impl Motion {
    fn count(&self) -> usize {
        self.degrees.len().max(self.translation_mm.len())
    }
    /// Checks that the lists agree and the times increase in (0, 1).
    pub fn validate(&self) -> Result<()> {
        let n = self.count();
        for (name, len) in [
            ("degrees", self.degrees.len()),
            ("translation_mm", self.translation_mm.len()),
        ] {
            if len != 0 && len != n {
                return Err(Error::pipeline(format!(
                    "motion.{name}: {len} movements, but another list has {n}; give one [x, y, z] per movement in each"
                )));
            }
        }
        if n > MAX_EVENTS {
            return Err(Error::pipeline(format!(
                "motion: {n} movements (at most {MAX_EVENTS})"
            )));
        }
        let all: Vec<f64> = self
            .degrees
            .iter()
            .chain(&self.translation_mm)
            .flat_map(|v| v.0)
            .collect();
        finite("motion", &all)?;
        if !self.times.is_empty() {
            finite("motion.times", &self.times)?;
            let increasing = self.times.windows(2).all(|w| w[0] < w[1]);
            if self.times.len() != n
                || !increasing
                || self.times.iter().any(|t| !(*t > 0.0 && *t < 1.0))
            {
                return Err(Error::pipeline(format!(
                    "motion.times: {:?} (one per movement, increasing, each in (0, 1))",
                    self.times
                )));
            }
        }
        Ok(())
    }
    /// The resolved op.
    pub fn op(&self) -> KSpaceOp {
        let n = self.count();
        let get = |v: &Vec<Vec3>, i: usize| v.get(i).map_or([0.0; 3], |x| x.0);
        let times = if self.times.is_empty() {
            (1..=n).map(|i| i as f64 / (n + 1) as f64).collect()
        } else {
            self.times.clone()
        };
        KSpaceOp::Motion {
            moves: (0..n)
                .map(|i| (get(&self.degrees, i), get(&self.translation_mm, i)))
                .collect(),
            times,
        }
    }
}

/// An integer or an inclusive `[min, max]` range (one number `d` reads as the field says).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum IntRange {
    /// One number.
    One(u32),
    /// `[min, max]`, inclusive.
    Two([u32; 2]),
}

impl<'de> Deserialize<'de> for IntRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let int = |x: &serde_json::Value| x.as_u64().and_then(|x| u32::try_from(x).ok());
        if let Some(x) = int(&v) {
            return Ok(IntRange::One(x));
        }
        if let Some(a) = v.as_array().filter(|a| a.len() == 2) {
            if let (Some(a0), Some(a1)) = (int(&a[0]), int(&a[1])) {
                return Ok(IntRange::Two([a0, a1]));
            }
        }
        Err(de::Error::custom(format!(
            "expected a whole number or [min, max] of whole numbers, got {v}"
        )))
    }
}

impl IntRange {
    fn resolve(self, one_from_zero: bool) -> [u32; 2] {
        match self {
            IntRange::Two(r) => r,
            IntRange::One(x) if one_from_zero => [0, x],
            IntRange::One(x) => [x, x],
        }
    }
}

fn gibbs_default() -> RangeArg {
    RangeArg::Two([0.5, 1.0])
}
fn one_spike() -> IntRange {
    IntRange::One(1)
}
fn spike_intensity() -> RangeArg {
    RangeArg::Two([1.0, 3.0])
}
fn ghosts_default() -> IntRange {
    IntRange::Two([4, 10])
}
fn all_axes() -> Vec<usize> {
    vec![0, 1, 2]
}
fn ghost_intensity() -> RangeArg {
    RangeArg::Two([0.5, 1.0])
}
fn ten() -> RangeArg {
    RangeArg::One(10.0)
}
fn two_moves() -> usize {
    2
}

/// `random_gibbs` (MONAI's `RandGibbsNoise`): `gibbs` with one `fraction` for all axes drawn from
/// `fraction` (default `[0.5, 1]`; one number `f`: exactly `f`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomGibbs {
    /// Range of the kept fraction.
    #[serde(default = "gibbs_default")]
    pub fraction: RangeArg,
    /// Probability that the transform is applied (default 1).
    #[serde(default = "one")]
    pub p: f64,
}

/// `random_spike` (TorchIO's `RandomSpike`): `spikes` count (default 1; `[a, b]` inclusive) at uniform
/// positions, `intensity` from `[1, 3]` (one number `d`: `[-d, d]`, as TorchIO).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSpike {
    /// Number of spikes (TorchIO's `num_spikes`).
    #[serde(default = "one_spike", alias = "num_spikes")]
    pub spikes: IntRange,
    /// Range of the spike size relative to the spectrum's maximum.
    #[serde(default = "spike_intensity")]
    pub intensity: RangeArg,
    /// Probability that the transform is applied (default 1).
    #[serde(default = "one")]
    pub p: f64,
}

/// `random_ghosting` (TorchIO's `RandomGhosting`): `ghosts` from `[4, 10]` (one number `d`: `[0, d]`),
/// an axis from `axes` (default all), `intensity` from `[0.5, 1]` (one number `d`: `[0, d]`), `restore`
/// (default: the central plane; one number `d`: `[0, d]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomGhosting {
    /// Range of the ghost period (TorchIO's `num_ghosts`).
    #[serde(default = "ghosts_default", alias = "num_ghosts")]
    pub ghosts: IntRange,
    /// Axes one is drawn from.
    #[serde(default = "all_axes")]
    pub axes: Vec<usize>,
    /// Range of the attenuation.
    #[serde(default = "ghost_intensity")]
    pub intensity: RangeArg,
    /// Range of the restored centre fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RangeArg>,
    /// Probability that the transform is applied (default 1).
    #[serde(default = "one")]
    pub p: f64,
}

/// `random_motion` (TorchIO's `RandomMotion`): `num_transforms` movements (default 2), each with
/// rotations from `degrees` (default 10: `[-10, 10]` per axis) and translations from `translation_mm`
/// (default 10 mm), at times `i / (n + 1)` jittered by up to 30% of the step (as TorchIO).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomMotion {
    /// Rotation range in degrees (one number `d`: `[-d, d]`).
    #[serde(default = "ten")]
    pub degrees: RangeArg,
    /// Translation range in mm (one number `d`: `[-d, d]`; TorchIO's `translation`).
    #[serde(default = "ten", alias = "translation")]
    pub translation_mm: RangeArg,
    /// Number of movements.
    #[serde(default = "two_moves")]
    pub num_transforms: usize,
    /// Probability that the transform is applied (default 1).
    #[serde(default = "one")]
    pub p: f64,
}

fn check_range(name: &str, r: [f64; 2], lo: f64, hi: f64) -> Result<()> {
    if !(r[0].is_finite() && r[1].is_finite() && lo <= r[0] && r[0] <= r[1] && r[1] <= hi) {
        return Err(Error::pipeline(format!(
            "{name}: {r:?} (min <= max, within [{lo}, {hi}])"
        )));
    }
    Ok(())
}

fn check_ints(name: &str, r: [u32; 2], max: usize) -> Result<()> {
    if r[0] > r[1] || r[1] as usize > max {
        return Err(Error::pipeline(format!(
            "{name}: {r:?} (min <= max <= {max})"
        )));
    }
    Ok(())
}

/// Uniform integer in `r` (inclusive) from a unit draw.
fn int_in(r: [u32; 2], u: f64) -> u32 {
    (r[0] + (u * (r[1] - r[0] + 1) as f64) as u32).min(r[1])
}

fn lerp(r: [f64; 2], u: f64) -> f64 {
    r[0] + (r[1] - r[0]) * u
}

impl RandomGibbs {
    /// Checks the range.
    pub fn validate(&self) -> Result<()> {
        let r = self.fraction.resolve(Around::Exact);
        check_range("random_gibbs.fraction", r, 0.0, 1.0)?;
        if r[0] <= 0.0 {
            return Err(Error::pipeline("random_gibbs.fraction: must be above 0"));
        }
        Ok(())
    }
    /// Samples a `gibbs` from unit draws (one draw).
    pub fn sample(&self, unit: &mut dyn FnMut() -> f64) -> Gibbs {
        let f = lerp(self.fraction.resolve(Around::Exact), unit());
        Gibbs {
            fraction: Vec3([f; 3]),
        }
    }
}

impl RandomSpike {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        check_ints(
            "random_spike.spikes",
            self.spikes.resolve(false),
            MAX_EVENTS,
        )?;
        check_range(
            "random_spike.intensity",
            self.intensity.resolve(Around::Zero),
            f64::MIN,
            f64::MAX,
        )
    }
    /// Samples a `spike` (draws: count, intensity, then three per spike).
    pub fn sample(&self, unit: &mut dyn FnMut() -> f64) -> Spike {
        let n = int_in(self.spikes.resolve(false), unit()) as usize;
        let intensity = lerp(self.intensity.resolve(Around::Zero), unit());
        let positions = (0..n)
            .map(|_| [unit(), unit(), unit()].map(|x| x.min(1.0 - f64::EPSILON)))
            .collect::<Vec<_>>();
        Spike {
            spikes: Some(n),
            intensity,
            positions: Some(positions),
            seed: 0,
        }
    }
}

impl RandomGhosting {
    /// Checks the ranges and axes.
    pub fn validate(&self) -> Result<()> {
        // A period past every axis length is the identity; 65536 bounds it generously.
        check_ints("random_ghosting.ghosts", self.ghosts.resolve(true), 1 << 16)?;
        if self.axes.is_empty() || self.axes.iter().any(|a| *a > 2) {
            return Err(Error::pipeline(format!(
                "random_ghosting.axes: {:?} (voxel axes 0, 1, 2; at least one)",
                self.axes
            )));
        }
        check_range(
            "random_ghosting.intensity",
            self.intensity.resolve(Around::FromZero),
            0.0,
            1.0,
        )?;
        if let Some(r) = self.restore {
            check_range(
                "random_ghosting.restore",
                r.resolve(Around::FromZero),
                0.0,
                1.0,
            )?;
        }
        Ok(())
    }
    /// Samples a `ghosting` (draws: ghosts, axis, intensity, restore when given).
    pub fn sample(&self, unit: &mut dyn FnMut() -> f64) -> Ghosting {
        let ghosts = int_in(self.ghosts.resolve(true), unit());
        let pick = ((unit() * self.axes.len() as f64) as usize).min(self.axes.len() - 1);
        let intensity = lerp(self.intensity.resolve(Around::FromZero), unit());
        let restore = self
            .restore
            .map(|r| lerp(r.resolve(Around::FromZero), unit()));
        Ghosting {
            ghosts,
            axis: self.axes[pick],
            intensity,
            restore,
        }
    }
}

impl RandomMotion {
    /// Checks the ranges and the movement count.
    pub fn validate(&self) -> Result<()> {
        check_range(
            "random_motion.degrees",
            self.degrees.resolve(Around::Zero),
            -360.0,
            360.0,
        )?;
        check_range(
            "random_motion.translation_mm",
            self.translation_mm.resolve(Around::Zero),
            f64::MIN,
            f64::MAX,
        )?;
        if self.num_transforms == 0 || self.num_transforms > MAX_EVENTS {
            return Err(Error::pipeline(format!(
                "random_motion.num_transforms: {} (1 to {MAX_EVENTS})",
                self.num_transforms
            )));
        }
        Ok(())
    }
    /// Samples a `motion` (draws: per movement three rotations, then per movement three translations,
    /// then one jitter per time).
    pub fn sample(&self, unit: &mut dyn FnMut() -> f64) -> Motion {
        let n = self.num_transforms;
        let deg = self.degrees.resolve(Around::Zero);
        let mm = self.translation_mm.resolve(Around::Zero);
        let degrees = (0..n)
            .map(|_| Vec3([0; 3].map(|_| lerp(deg, unit()))))
            .collect();
        let translation_mm = (0..n)
            .map(|_| Vec3([0; 3].map(|_| lerp(mm, unit()))))
            .collect();
        let step = 1.0 / (n + 1) as f64;
        let times = (1..=n)
            .map(|i| i as f64 * step + lerp([-0.3 * step, 0.3 * step], unit()))
            .collect();
        Motion {
            degrees,
            translation_mm,
            times,
        }
    }
}
