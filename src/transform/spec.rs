//! The pipeline file format. The `type` names and field names here are a public contract: users'
//! scripts depend on them. Unknown types and unknown fields are errors that name them.
//!
//! ```json
//! {"seed": 0, "transforms": [{"type": "rotate", "degrees": [0, 0, 15]}, {"type": "zscore"}]}
//! ```
//!
//! Over 600 lines on purpose: the contract of every deterministic transform (fields, defaults, docs and
//! validation) stays in one place.

use crate::error::{Error, Result};
use crate::grid::Mat4;

pub use super::values::{Fill, LabelInterp, Margins, NanValue, RefGrid, Units, Vec3, ZMask};
use serde::{de, Deserialize, Deserializer, Serialize};

fn default_max() -> f64 {
    1.0
}

fn two() -> u8 {
    2
}

fn hundred() -> usize {
    100
}

/// Landmarks inline (`[...]`) or from a JSON file written by `dataset-stats --landmarks`.
fn landmarks_arg<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    let from = |v: &serde_json::Value| -> Option<Vec<f64>> {
        let a = v.get("landmarks").unwrap_or(v).as_array()?;
        a.iter().map(|x| x.as_f64()).collect()
    };
    match &v {
        serde_json::Value::String(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| de::Error::custom(format!("landmarks file {path}: {e}")))?;
            let j: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| de::Error::custom(format!("landmarks file {path}: {e}")))?;
            from(&j).ok_or_else(|| {
                de::Error::custom(format!("landmarks file {path}: no list of numbers"))
            })
        }
        _ => {
            from(&v).ok_or_else(|| de::Error::custom("landmarks: a list of numbers or a file name"))
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `match` binding `label_interpolation` of every spatial transform to `$li` (`$other` for the rest).
macro_rules! spatial_field {
    ($t:expr, $li:ident => $body:expr, $other:expr) => {
        match $t {
            Transform::Affine {
                label_interpolation: $li,
                ..
            }
            | Transform::Rotate {
                label_interpolation: $li,
                ..
            }
            | Transform::Zoom {
                label_interpolation: $li,
                ..
            }
            | Transform::Shift {
                label_interpolation: $li,
                ..
            }
            | Transform::Shear {
                label_interpolation: $li,
                ..
            }
            | Transform::Flip {
                label_interpolation: $li,
                ..
            }
            | Transform::Crop {
                label_interpolation: $li,
                ..
            }
            | Transform::CenterCrop {
                label_interpolation: $li,
                ..
            }
            | Transform::ResampleTo {
                label_interpolation: $li,
                ..
            }
            | Transform::ApplyTransform {
                label_interpolation: $li,
                ..
            }
            | Transform::Invert {
                label_interpolation: $li,
                ..
            }
            | Transform::ToCanonical {
                label_interpolation: $li,
                ..
            }
            | Transform::CropOrPad {
                label_interpolation: $li,
                ..
            }
            | Transform::Pad {
                label_interpolation: $li,
                ..
            }
            | Transform::Resize {
                label_interpolation: $li,
                ..
            }
            | Transform::Resample {
                label_interpolation: $li,
                ..
            }
            | Transform::Elastic {
                label_interpolation: $li,
                ..
            }
            | Transform::ElasticBspline {
                label_interpolation: $li,
                ..
            } => $body,
            _ => $other,
        }
    };
}

/// One deterministic transform. `type` names and fields are the public contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Replaces NaN and infinite image voxels (SPM writes NaN outside the brain); must come first in a
    /// pipeline, before anything else runs. Label maps are never touched.
    NanToNum {
        /// The replacement: a number (default 0) or `"min"`.
        #[serde(default)]
        value: NanValue,
    },
    /// Explicit voxel pull-back: output index -> input index (like `scipy.ndimage.affine_transform`).
    Affine {
        /// Output voxel -> input voxel matrix (row-major 4x4, like `scipy.ndimage.affine_transform`).
        matrix: Mat4,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Rotation in degrees about world x, then y, then z, through the volume centre.
    Rotate {
        /// Rotation about the world x, y and z axes (RAS), applied x, then y, then z.
        degrees: Vec3,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Content scale factors along world x, y, z about the volume centre (2 = twice as large).
    Zoom {
        /// Content scale per axis about the centre (2 = twice as large).
        #[serde(alias = "scales")]
        factors: Vec3,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Translation of the content in world millimetres.
    Shift {
        /// Translation in world millimetres.
        #[serde(alias = "translation_mm")]
        mm: Vec3,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Shear of the content in degrees, about the centre: `x += tan(xy) y + tan(xz) z`, `y += tan(yz) z`.
    Shear {
        /// Shear angles `[xy, xz, yz]`: `x += tan(xy) y + tan(xz) z`, `y += tan(yz) z`.
        degrees: Vec3,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Mirror along voxel axes.
    Flip {
        /// Voxel axes (0, 1, 2) to flip.
        axes: Vec<usize>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Sub-volume: `start` + `size` in voxels, or per-side `margins` (voxels, or fractions with `percent`).
    Crop {
        /// First voxel of the crop (with `size`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<[usize; 3]>,
        /// Voxels kept per axis (with `start`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<[usize; 3]>,
        /// Voxels (or fractions with `percent`) removed from each side, instead of `start` + `size`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        margins: Option<Margins>,
        /// `margins` are fractions of the shape.
        #[serde(default, skip_serializing_if = "is_false")]
        percent: bool,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Centred sub-volume of `size` voxels.
    CenterCrop {
        /// Voxels kept per axis, centred.
        size: [usize; 3],
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Resamples onto the grid of a reference volume (TorchIO's `Resample(target=...)` with an image):
    /// `reference` is a file whose shape and affine are read when the pipeline is parsed (a relative
    /// path is relative to the pipeline file's folder); `grid` records them, so a plan re-applies without
    /// the file. Trilinear for images, nearest for label maps, `fill` outside the input (default 0).
    ResampleTo {
        /// The reference volume's path (any format voxaug reads).
        reference: String,
        /// The reference grid, filled in when the pipeline is parsed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grid: Option<RefGrid>,
        /// Value outside the input (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Applies a saved registration (`voxaug register`'s `transform.json`, or an ITK `.tfm` text
    /// transform): resamples onto the fixed grid the file records (`grid`: `"fixed"`, the default; a
    /// `.tfm` has none and keeps the input grid) or keeps the input grid (`"input"`), pulling each output
    /// voxel through the file's fixed -> moving world matrix. `file` is read when the pipeline is parsed
    /// (relative to the pipeline file's folder); `world_matrix` and `fixed_grid` record it, so a plan
    /// re-applies without the file. Fused with the other spatial transforms: "register, then augment"
    /// is one interpolation.
    #[serde(rename = "transform")]
    ApplyTransform {
        /// `transform.json` or `.tfm` path.
        file: String,
        /// `"fixed"` (default) or `"input"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grid: Option<String>,
        /// Fixed world -> moving world (RAS mm), filled in when the pipeline is parsed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        world_matrix: Option<Box<[[f64; 4]; 4]>>,
        /// The fixed grid, filled in when the pipeline is parsed (absent for a `.tfm`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fixed_grid: Option<Box<RefGrid>>,
        /// Value outside the input (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Maps a prediction made on an augmented sample back onto the original grid (test-time
    /// augmentation; `voxaug invert` as a pipeline step): undoes the spatial transforms of `plan` (the
    /// sample's `plan.json`, a path relative to the pipeline file's folder, or the plan object itself;
    /// its intensity transforms are ignored) for a volume on the grid that plan produced from
    /// `reference` (the original's file). Trilinear for images and probabilities, nearest for label
    /// maps; `fill` (default 0) where the sample saw nothing of the original. Resolved when the
    /// pipeline is parsed: `grid` (the original grid), `matrix` (original voxel -> sample voxel) and
    /// `input_shape` (the sample's shape) record it, so a plan re-applies without the files. Elastic
    /// plans are refused (no exact inverse).
    Invert {
        /// `plan.json` path, or the plan object.
        plan: serde_json::Value,
        /// The original volume's path (its grid is the output grid).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// The original grid, filled in when the pipeline is parsed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grid: Option<Box<RefGrid>>,
        /// Original voxel -> sample voxel, filled in when the pipeline is parsed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        matrix: Option<Box<Mat4>>,
        /// The sample's shape (the input this step expects), filled in when the pipeline is parsed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_shape: Option<[usize; 3]>,
        /// Value where the sample saw nothing of the original (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Reorders and flips the voxel axes so that they point right, anterior and superior (RAS, like
    /// nibabel's `as_closest_canonical` and TorchIO's `ToCanonical`): an exact copy with a new affine, the
    /// world position of every voxel unchanged. Oblique grids take the closest axes.
    ToCanonical {
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Simulates a lower resolution (nnU-Net's `SimulateLowResolutionTransform`, TorchIO's
    /// `RandomAnisotropy`, MONAI's `RandSimulateLowResolution`): each image is resized to `zoom`
    /// times the shape (same extent) with nearest-neighbour sampling, then trilinearly back onto its
    /// grid; label maps are untouched (as nnU-Net and TorchIO's default `scalars_only` leave them).
    /// `zoom` per axis in (0, 1]; 1 leaves that axis alone.
    SimulateLowResolution {
        /// Resolution factor per axis (0.5: half the voxels along that axis).
        zoom: Vec3,
    },
    /// Gibbs ringing from k-space truncation (MONAI's `GibbsNoise`): see [`super::kspace::Gibbs`].
    Gibbs(super::kspace::Gibbs),
    /// Spikes in k-space (TorchIO's `Spike`): see [`super::kspace::Spike`].
    Spike(super::kspace::Spike),
    /// Periodic ghosts (TorchIO's `Ghosting`): see [`super::kspace::Ghosting`].
    Ghosting(super::kspace::Ghosting),
    /// Motion during the acquisition (TorchIO's `Motion`): see [`super::kspace::Motion`].
    Motion(super::kspace::Motion),
    /// Replaces label values in every label map (TorchIO's `RemapLabels`): `mapping` from old to new
    /// values (`{"1": 2, "3": 0}`: JSON keys are strings); values not listed are kept. Images are
    /// untouched. The label type widens when a new value needs it.
    RemapLabels {
        /// Old value (as a string key) -> new value.
        mapping: std::collections::BTreeMap<String, i64>,
    },
    /// Keeps the listed label values and sets every other label voxel to 0 (TorchIO's
    /// `RemoveLabels` the other way round). Images are untouched.
    KeepLabels {
        /// Values kept.
        labels: Vec<i64>,
    },
    /// Crops or pads each axis to `size` voxels about the centre (TorchIO's `CropOrPad`): larger axes
    /// are centre-cropped, smaller ones padded with `fill` (default 0). An odd difference puts the extra
    /// voxel at the start, as TorchIO does. Works on any input shape, unlike `crop`/`center_crop`.
    CropOrPad {
        /// Output voxels per axis.
        size: [usize; 3],
        /// Value of padded voxels (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Adds per-side margins (voxels) filled with `fill` (default 0).
    Pad {
        /// Voxels added before and after each axis.
        margins: Margins,
        /// Value of the added voxels (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// New shape, same physical extent (half-voxel aligned); fill defaults to edge replication.
    Resize {
        /// Output shape; the physical extent is kept.
        shape: [usize; 3],
        /// Value outside the input (default `"edge"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// New voxel spacing in mm, same physical extent (shape rounded, spacing adjusted to keep the extent).
    Resample {
        /// Output voxel size in mm; the shape is `round(n s / s')` and the extent is kept exactly.
        spacing: Vec3,
        /// Value outside the input (default `"edge"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Elastic deformation (Simard et al.): uniform noise in [-1, 1] per component, smoothed by a
    /// Gaussian of `sigma`, scaled by `alpha`; `units` voxels or mm. Fused with the other spatial
    /// transforms of its run: `p_in = M_before * (q + d(q))`, `q = M_after * p_out`.
    Elastic {
        /// Smoothing of the random field per axis (in `units`).
        sigma: Vec3,
        /// Scale of the displacements per axis (in `units`).
        alpha: Vec3,
        /// Whether `sigma` and `alpha` are voxels or millimetres.
        #[serde(default)]
        units: Units,
        /// Seed of the field's counter-based noise.
        seed: u64,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Elastic deformation from a coarse grid of `control_points` with random displacements up to
    /// `max_displacement_mm`, interpolated by cubic B-splines (TorchIO style); `locked_borders` 1 keeps the
    /// outer control points still, 2 also those on the volume border.
    ElasticBspline {
        /// B-spline control points per axis (TorchIO's `num_control_points`).
        control_points: [usize; 3],
        /// Largest displacement of a control point per axis, in mm.
        max_displacement_mm: Vec3,
        /// Control-point layers at each border held at zero displacement (0, 1 or 2).
        #[serde(default = "two")]
        locked_borders: u8,
        /// Seed of the control-point displacements.
        seed: u64,
        /// Value for samples outside the input (a number, `"min"` or `"edge"`); default: the transform's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<Fill>,
        /// Label maps: `"nearest"` (default) or `"linear_argmax"` (see [`LabelInterp`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_interpolation: Option<LabelInterp>,
    },
    /// Clamp intensities to `[min, max]`.
    Clip {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Gamma on the image's own range: `((x - min) / range) ^ gamma * range + min`.
    Gamma {
        /// Exponent applied on the image's own range.
        gamma: f64,
    },
    /// Additive Gaussian noise from a counter-based generator (same values on CPU and GPU).
    Noise {
        /// Standard deviation of the Gaussian noise.
        std: f64,
        /// Mean of the Gaussian noise.
        #[serde(default)]
        mean: f64,
        /// Seed of the counter-based noise (the same values on CPU and GPU).
        seed: u64,
    },
    /// Gaussian blur, sigma in mm per world-aligned voxel axis (converted with the voxel spacing).
    Blur {
        /// Gaussian sigma in mm per axis.
        sigma: Vec3,
    },
    /// Multiplicative polynomial bias field `exp(sum c * u^a v^b w^c)`, u, v, w in [-1, 1] across the
    /// volume, terms ordered by a, then b, then c with `a + b + c <= order`.
    BiasField {
        /// Polynomial order of the log bias field.
        order: u32,
        /// Polynomial coefficients, terms ordered by the powers of u, then v, then w.
        coefficients: Vec<f64>,
    },
    /// `(x - mean) * factor + mean` (mean over all voxels).
    Contrast {
        /// `(x - mean) * factor + mean`.
        factor: f64,
    },
    /// `x * factor`.
    Brightness {
        /// `x * factor`.
        factor: f64,
    },
    /// `x + offset`.
    IntensityShift {
        /// `x + offset`.
        offset: f64,
    },
    /// Nyul & Udupa histogram standardisation: the image's landmarks (percentiles 1, 10, 20, ..., 90, 99
    /// of voxels above its mean) are mapped piecewise-linearly onto `landmarks` (learned with
    /// `voxaug dataset-stats --landmarks`; a file name is read when the pipeline is parsed).
    HistogramStandardize {
        /// Target intensities of the percentiles 1, 10, ..., 90, 99 (11 numbers).
        #[serde(deserialize_with = "landmarks_arg")]
        landmarks: Vec<f64>,
    },
    /// fastai's `hist_scaled`: intensities mapped to [0, 1] through `bins` + 1 quantiles of the image
    /// (`freqhist_bins`), piecewise-linearly, clamped outside.
    HistScale {
        /// Number of histogram bins used for the scaling.
        #[serde(default = "hundred")]
        bins: usize,
    },
    /// Clamp intensities to the `low` and `high` percentiles (numpy's linear definition).
    PercentileClip {
        /// Lower percentile (0-100).
        low: f64,
        /// Upper percentile (0-100).
        high: f64,
    },
    /// (x - mean) / std over a mask (population std): `"nonzero"` (default; zero voxels stay 0),
    /// `"all"`, or `"label"` (the first label map's nonzero voxels; every voxel is then normalised).
    Zscore {
        /// Voxels whose moments are used: nonzero (default), all, or label.
        #[serde(default)]
        mask: ZMask,
    },
    /// Linear rescale of [image min, image max] to `[min, max]` (default 0..1); with `"mask"` the
    /// min and max are those of the masked voxels (`"nonzero"`, `"label"`: the first label map's
    /// nonzero voxels) and every voxel is rescaled, values past them clipped to `[min, max]`.
    Minmax {
        /// Output minimum (default 0).
        #[serde(default)]
        min: f64,
        /// Output maximum (default 1).
        #[serde(default = "default_max")]
        max: f64,
        /// Voxels whose min and max are used (default: all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mask: Option<ZMask>,
    },
}

/// The intensity transforms, as the executors see them.
#[derive(Clone, Debug, PartialEq)]
pub enum IntensityOp {
    /// Clamp to `[min, max]`.
    Clip {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Clamp to the image's percentiles.
    PercentileClip {
        /// Lower percentile.
        low: f64,
        /// Upper percentile.
        high: f64,
    },
    /// Zero mean, unit std over the mask.
    Zscore {
        /// Voxels whose moments are used.
        mask: ZMask,
    },
    /// Linear rescale onto `[min, max]`.
    Minmax {
        /// Output minimum.
        min: f64,
        /// Output maximum.
        max: f64,
        /// Voxels whose min and max are used (None: all).
        mask: Option<ZMask>,
    },
    /// Power law on the image's own range.
    Gamma {
        /// Exponent.
        gamma: f64,
    },
    /// Additive Gaussian noise.
    Noise {
        /// Standard deviation.
        std: f64,
        /// Mean.
        mean: f64,
        /// Noise seed.
        seed: u64,
    },
    /// Separable Gaussian blur.
    Blur {
        /// Sigma in mm per axis.
        sigma_mm: [f64; 3],
    },
    /// Nearest down to `zoom` x shape, trilinear back (simulate_low_resolution).
    LowResolution {
        /// Resolution factor per axis, in (0, 1].
        zoom: [f64; 3],
    },
    /// A k-space artefact (gibbs, spike, ghosting, motion).
    KSpace(super::kspace::KSpaceOp),
    /// Multiplicative smooth bias field.
    BiasField {
        /// Polynomial order.
        order: u32,
        /// Polynomial coefficients.
        coefficients: Vec<f64>,
    },
    /// Contrast about the mean.
    Contrast {
        /// Contrast factor.
        factor: f64,
    },
    /// Multiplicative brightness.
    Brightness {
        /// Brightness factor.
        factor: f64,
    },
    /// Additive offset.
    IntensityShift {
        /// Offset.
        offset: f64,
    },
    /// Nyul & Udupa histogram standardisation.
    HistogramStandardize {
        /// Target landmark intensities.
        landmarks: Vec<f64>,
    },
    /// Histogram-based intensity scaling.
    HistScale {
        /// Histogram bins.
        bins: usize,
    },
}

impl Transform {
    /// The intensity op, or `None` for a spatial transform.
    pub fn intensity(&self) -> Option<IntensityOp> {
        Some(match *self {
            Transform::Clip { min, max } => IntensityOp::Clip { min, max },
            Transform::PercentileClip { low, high } => IntensityOp::PercentileClip { low, high },
            Transform::Zscore { mask } => IntensityOp::Zscore { mask },
            Transform::Minmax { min, max, mask } => IntensityOp::Minmax { min, max, mask },
            Transform::Gamma { gamma } => IntensityOp::Gamma { gamma },
            Transform::Noise { std, mean, seed } => IntensityOp::Noise { std, mean, seed },
            Transform::Blur { sigma } => IntensityOp::Blur { sigma_mm: sigma.0 },
            Transform::BiasField {
                order,
                ref coefficients,
            } => IntensityOp::BiasField {
                order,
                coefficients: coefficients.clone(),
            },
            Transform::Contrast { factor } => IntensityOp::Contrast { factor },
            Transform::Brightness { factor } => IntensityOp::Brightness { factor },
            Transform::IntensityShift { offset } => IntensityOp::IntensityShift { offset },
            Transform::HistogramStandardize { ref landmarks } => {
                IntensityOp::HistogramStandardize {
                    landmarks: landmarks.clone(),
                }
            }
            Transform::HistScale { bins } => IntensityOp::HistScale { bins },
            Transform::SimulateLowResolution { zoom } => {
                IntensityOp::LowResolution { zoom: zoom.0 }
            }
            Transform::Gibbs(ref t) => IntensityOp::KSpace(t.op()),
            Transform::Spike(ref t) => IntensityOp::KSpace(t.op()),
            Transform::Ghosting(ref t) => IntensityOp::KSpace(t.op()),
            Transform::Motion(ref t) => IntensityOp::KSpace(t.op()),
            _ => return None,
        })
    }

    /// The label map of `remap_labels` / `keep_labels` (None for other transforms); errors on keys
    /// that are not integers and values outside the 32-bit label range.
    pub fn label_lut(&self) -> Option<Result<super::labels::LabelLut>> {
        const LO: i64 = i32::MIN as i64;
        const HI: i64 = u32::MAX as i64;
        let in_range = |v: i64| -> Result<i64> {
            if (LO..=HI).contains(&v) {
                Ok(v)
            } else {
                Err(Error::pipeline(format!(
                    "label value {v} is outside the 32-bit label range [{LO}, {HI}]"
                )))
            }
        };
        match self {
            Transform::RemapLabels { mapping } => Some((|| {
                let pairs = mapping
                    .iter()
                    .map(|(k, v)| {
                        let k: i64 = k.trim().parse().map_err(|_| {
                            Error::pipeline(format!(
                                "mapping key {k:?} is not an integer label value"
                            ))
                        })?;
                        Ok((in_range(k)?, in_range(*v)?))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(super::labels::LabelLut::new(pairs, None))
            })()),
            Transform::KeepLabels { labels } => Some((|| {
                let pairs = labels
                    .iter()
                    .map(|&v| Ok((in_range(v)?, v)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(super::labels::LabelLut::new(pairs, Some(0)))
            })()),
            _ => None,
        }
    }

    /// The `label_interpolation` a spatial transform asks for (`None`: not given, or not spatial).
    pub fn label_interpolation(&self) -> Option<LabelInterp> {
        spatial_field!(self, li => *li, None)
    }

    /// Sets `label_interpolation` on a spatial transform that gives none (random transforms pass
    /// theirs to what they emit); other transforms are left alone.
    pub fn inherit_label_interpolation(&mut self, v: Option<LabelInterp>) {
        spatial_field!(self, li => if li.is_none() { *li = v }, ())
    }

    /// The JSON `type` name.
    pub fn type_name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
            .unwrap_or_default()
    }

    /// Checks parameters that do not depend on the volume (ranges, finite numbers).
    pub fn validate(&self) -> Result<()> {
        if let Transform::NanToNum {
            value: NanValue::Value(v),
        } = self
        {
            if !v.is_finite() {
                return Err(Error::pipeline(format!(
                    "nan_to_num: value must be finite, got {v}"
                )));
            }
        }
        let finite = |name: &str, xs: &[f64]| -> Result<()> {
            if xs.iter().all(|x| x.is_finite()) {
                Ok(())
            } else {
                Err(Error::pipeline(format!(
                    "{name}: values must be finite numbers, got {xs:?}"
                )))
            }
        };
        let fill_ok = |f: &Option<Fill>| -> Result<()> {
            match f {
                Some(Fill::Value(v)) if !v.is_finite() => {
                    Err(Error::pipeline("fill must be finite"))
                }
                _ => Ok(()),
            }
        };
        match self {
            Transform::NanToNum { .. } | Transform::ToCanonical { label_interpolation: _ } => Ok(()),
            Transform::Gibbs(t) => t.validate(),
            Transform::Spike(t) => t.validate(),
            Transform::Ghosting(t) => t.validate(),
            Transform::Motion(t) => t.validate(),
            Transform::SimulateLowResolution { zoom } => {
                if zoom.0.iter().any(|z| !(z.is_finite() && *z > 0.0 && *z <= 1.0)) {
                    return Err(Error::pipeline(format!(
                        "simulate_low_resolution.zoom: {:?} (each factor in (0, 1]; 1 = identity)",
                        zoom.0
                    )));
                }
                Ok(())
            }
            Transform::RemapLabels { .. } | Transform::KeepLabels { .. } => self
                .label_lut()
                .transpose()
                .map(|_| ())
                .map_err(|e| Error::pipeline(format!("{}: {e}", self.type_name()))),
            Transform::Invert {
                grid,
                matrix,
                fill,
                ..
            } => {
                if let Some(g) = grid {
                    finite("invert.grid.affine", &g.affine.concat())?;
                    crate::grid::Grid::new(g.shape, g.affine)
                        .map_err(|e| Error::pipeline(format!("invert.grid: {e}")))?;
                }
                if let Some(m) = matrix {
                    finite("invert.matrix", &m.concat())?;
                    if m[3] != [0.0, 0.0, 0.0, 1.0] {
                        return Err(Error::pipeline(
                            "invert.matrix: last row must be [0, 0, 0, 1]",
                        ));
                    }
                }
                fill_ok(fill)
            }
            Transform::ResampleTo { grid, fill, .. } => {
                if let Some(g) = grid {
                    finite("resample_to.grid.affine", &g.affine.concat())?;
                    crate::grid::Grid::new(g.shape, g.affine)
                        .map_err(|e| Error::pipeline(format!("resample_to.grid: {e}")))?;
                }
                fill_ok(fill)
            }
            Transform::ApplyTransform {
                grid,
                world_matrix,
                fixed_grid,
                fill,
                ..
            } => {
                if let Some(g) = grid {
                    if g != "fixed" && g != "input" {
                        return Err(Error::pipeline(format!(
                            "transform.grid: {g:?} (expected \"fixed\" or \"input\")"
                        )));
                    }
                }
                if let Some(m) = world_matrix {
                    finite("transform.world_matrix", &m.concat())?;
                    if m[3] != [0.0, 0.0, 0.0, 1.0] {
                        return Err(Error::pipeline(
                            "transform.world_matrix: last row must be [0, 0, 0, 1]",
                        ));
                    }
                    if crate::grid::mat_inv(m).is_none() {
                        return Err(Error::pipeline("transform.world_matrix is singular"));
                    }
                }
                if let Some(g) = fixed_grid {
                    finite("transform.fixed_grid.affine", &g.affine.concat())?;
                    crate::grid::Grid::new(g.shape, g.affine)
                        .map_err(|e| Error::pipeline(format!("transform.fixed_grid: {e}")))?;
                }
                fill_ok(fill)
            }
            Transform::Affine { matrix, fill, label_interpolation: _ } => {
                finite("affine.matrix", &matrix.concat())?;
                if matrix[3] != [0.0, 0.0, 0.0, 1.0] {
                    return Err(Error::pipeline("affine.matrix: last row must be [0, 0, 0, 1]"));
                }
                fill_ok(fill)
            }
            Transform::Rotate { degrees, fill, label_interpolation: _ } => {
                finite("rotate.degrees", &degrees.0)?;
                fill_ok(fill)
            }
            Transform::Zoom { factors, fill, label_interpolation: _ } => {
                finite("zoom.factors", &factors.0)?;
                if factors.0.iter().any(|&f| f <= 0.0) {
                    return Err(Error::pipeline(format!(
                        "zoom.factors must be > 0, got {:?}",
                        factors.0
                    )));
                }
                fill_ok(fill)
            }
            Transform::Shift { mm, fill, label_interpolation: _ } => {
                finite("shift.mm", &mm.0)?;
                fill_ok(fill)
            }
            Transform::Shear { degrees, fill, label_interpolation: _ } => {
                finite("shear.degrees", &degrees.0)?;
                if degrees.0.iter().any(|d| d.abs() >= 89.0) {
                    return Err(Error::pipeline("shear.degrees must be within (-89, 89)"));
                }
                fill_ok(fill)
            }
            Transform::Flip { axes, label_interpolation: _ } => {
                if let Some(a) = axes.iter().find(|&&a| a > 2) {
                    return Err(Error::pipeline(format!("flip.axes: axis {a} is not 0, 1 or 2")));
                }
                Ok(())
            }
            Transform::Crop {
                start,
                size,
                margins,
                percent, label_interpolation: _ } => match (start, size, margins) {
                (Some(_), Some(_), None) if !percent => Ok(()),
                (None, None, Some(m)) => {
                    let flat: Vec<f64> = m.0.concat();
                    finite("crop.margins", &flat)?;
                    if flat.iter().any(|&x| x < 0.0) {
                        return Err(Error::pipeline("crop.margins must be >= 0"));
                    }
                    if *percent && flat.iter().any(|&x| x >= 1.0) {
                        return Err(Error::pipeline(
                            "crop.margins with \"percent\": true are fractions of the size, each < 1",
                        ));
                    }
                    if !percent && flat.iter().any(|x| x.fract() != 0.0) {
                        return Err(Error::pipeline("crop.margins in voxels must be whole numbers"));
                    }
                    Ok(())
                }
                _ => Err(Error::pipeline(
                    "crop takes either \"start\" and \"size\", or \"margins\" (with optional \"percent\")",
                )),
            },
            Transform::CenterCrop { size, label_interpolation: _ } => {
                if size.contains(&0) {
                    return Err(Error::pipeline("center_crop.size must be >= 1"));
                }
                Ok(())
            }
            Transform::CropOrPad { size, fill, label_interpolation: _ } => {
                if size.contains(&0) {
                    return Err(Error::pipeline("crop_or_pad.size must be >= 1"));
                }
                fill_ok(fill)
            }
            Transform::Pad { margins, fill, label_interpolation: _ } => {
                let flat: Vec<f64> = margins.0.concat();
                finite("pad.margins", &flat)?;
                if flat.iter().any(|&x| x < 0.0 || x.fract() != 0.0) {
                    return Err(Error::pipeline("pad.margins must be whole numbers >= 0"));
                }
                fill_ok(fill)
            }
            Transform::Resize { shape, fill, label_interpolation: _ } => {
                if shape.contains(&0) {
                    return Err(Error::pipeline("resize.shape must be >= 1 on every axis"));
                }
                fill_ok(fill)
            }
            Transform::Resample { spacing, fill, label_interpolation: _ } => {
                finite("resample.spacing", &spacing.0)?;
                if spacing.0.iter().any(|&s| s <= 0.0) {
                    return Err(Error::pipeline(format!(
                        "resample.spacing must be > 0 mm, got {:?}",
                        spacing.0
                    )));
                }
                fill_ok(fill)
            }
            Transform::Clip { min, max } => {
                finite("clip", &[*min, *max])?;
                if min > max {
                    return Err(Error::pipeline(format!("clip: min {min} > max {max}")));
                }
                Ok(())
            }
            Transform::PercentileClip { low, high } => {
                finite("percentile_clip", &[*low, *high])?;
                if !(0.0..=100.0).contains(low) || !(0.0..=100.0).contains(high) || low > high {
                    return Err(Error::pipeline(format!(
                        "percentile_clip: need 0 <= low <= high <= 100, got low {low}, high {high}"
                    )));
                }
                Ok(())
            }
            Transform::Zscore { .. } => Ok(()),
            Transform::Elastic {
                sigma, alpha, fill, ..
            } => {
                finite("elastic", &[sigma.0, alpha.0].concat())?;
                if sigma.0.iter().any(|&x| x <= 0.0 || x > 1000.0) {
                    return Err(Error::pipeline(format!(
                        "elastic.sigma must be within (0, 1000], got {:?}",
                        sigma.0
                    )));
                }
                fill_ok(fill)
            }
            Transform::ElasticBspline {
                control_points,
                max_displacement_mm,
                locked_borders,
                fill,
                ..
            } => {
                finite("elastic_bspline.max_displacement_mm", &max_displacement_mm.0)?;
                if control_points.iter().any(|&c| !(4..=64).contains(&c)) {
                    return Err(Error::pipeline(format!(
                        "elastic_bspline.control_points must be within 4..=64 per axis, got {control_points:?}"
                    )));
                }
                if *locked_borders > 2 {
                    return Err(Error::pipeline("elastic_bspline.locked_borders must be 0, 1 or 2"));
                }
                fill_ok(fill)
            }
            Transform::Gamma { gamma } => {
                finite("gamma", &[*gamma])?;
                if *gamma <= 0.0 {
                    return Err(Error::pipeline(format!("gamma must be > 0, got {gamma}")));
                }
                Ok(())
            }
            Transform::Noise { std, mean, .. } => {
                finite("noise", &[*std, *mean])?;
                if *std < 0.0 {
                    return Err(Error::pipeline(format!("noise.std must be >= 0, got {std}")));
                }
                Ok(())
            }
            Transform::Blur { sigma } => {
                finite("blur.sigma", &sigma.0)?;
                if sigma.0.iter().any(|&x| !(0.0..=100.0).contains(&x)) {
                    return Err(Error::pipeline(format!(
                        "blur.sigma must be within 0..100 mm, got {:?}",
                        sigma.0
                    )));
                }
                Ok(())
            }
            Transform::BiasField { order, coefficients } => {
                finite("bias_field.coefficients", coefficients)?;
                if *order > 5 {
                    return Err(Error::pipeline("bias_field.order must be <= 5"));
                }
                let want = bias_terms(*order);
                if coefficients.len() != want {
                    return Err(Error::pipeline(format!(
                        "bias_field of order {order} needs {want} coefficients, got {}",
                        coefficients.len()
                    )));
                }
                Ok(())
            }
            Transform::Contrast { factor } | Transform::Brightness { factor } => {
                finite("factor", &[*factor])
            }
            Transform::IntensityShift { offset } => finite("intensity_shift.offset", &[*offset]),
            Transform::HistogramStandardize { landmarks } => {
                finite("histogram_standardize.landmarks", landmarks)?;
                let want = LANDMARK_PERCENTS.len();
                if landmarks.len() != want || landmarks.windows(2).any(|w| w[0] > w[1]) {
                    return Err(Error::pipeline(format!(
                        "histogram_standardize.landmarks must be {want} non-decreasing numbers, got {landmarks:?}"
                    )));
                }
                Ok(())
            }
            Transform::HistScale { bins } => {
                if !(2..=10000).contains(bins) {
                    return Err(Error::pipeline(format!("hist_scale.bins must be within 2..=10000, got {bins}")));
                }
                Ok(())
            }
            Transform::Minmax { min, max, .. } => {
                finite("minmax", &[*min, *max])?;
                if min > max {
                    return Err(Error::pipeline(format!("minmax: min {min} > max {max}")));
                }
                Ok(())
            }
        }
    }
}

/// Number of bias-field terms of an order.
pub fn bias_terms(order: u32) -> usize {
    let o = order as usize;
    (o + 1) * (o + 2) * (o + 3) / 6
}

/// Percentiles of the standardisation landmarks (TorchIO's defaults: cutoffs 1 and 99, deciles between).
pub const LANDMARK_PERCENTS: [f64; 11] = [
    1.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 99.0,
];

/// Output range of learned landmarks (the first and last landmark of each image map here).
pub const LANDMARK_RANGE: [f64; 2] = [0.0, 100.0];
