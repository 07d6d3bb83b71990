//! Values the pipeline JSON uses inside transforms: three numbers (or one for all axes), fill modes,
//! crop/pad margins, the z-score mask and the units of elastic parameters.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Three numbers (one per axis); in JSON either one number for all axes or a list of three.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vec3(pub [f64; 3]);

impl Serialize for Vec3 {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Vec3 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let num = |x: &serde_json::Value| x.as_f64();
        match &v {
            serde_json::Value::Number(_) => Ok(Vec3([num(&v).unwrap(); 3])),
            serde_json::Value::Array(a) if a.len() == 3 && a.iter().all(|x| x.is_number()) => {
                Ok(Vec3([
                    num(&a[0]).unwrap(),
                    num(&a[1]).unwrap(),
                    num(&a[2]).unwrap(),
                ]))
            }
            _ => Err(de::Error::custom(format!(
                "expected a number or a list of 3 numbers, got {v}"
            ))),
        }
    }
}

/// Value given to output voxels whose sample falls outside the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fill {
    /// A constant (grid-constant semantics: outside neighbours take it and are blended).
    Value(f64),
    /// The minimum of each image (label maps: their minimum label).
    Min,
    /// Replicate the nearest border voxel.
    Edge,
}

impl Serialize for Fill {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Fill::Value(v) => v.serialize(s),
            Fill::Min => s.serialize_str("min"),
            Fill::Edge => s.serialize_str("edge"),
        }
    }
}

impl<'de> Deserialize<'de> for Fill {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) => Ok(Fill::Value(n.as_f64().unwrap())),
            serde_json::Value::String(s) if s == "min" => Ok(Fill::Min),
            serde_json::Value::String(s) if s == "edge" => Ok(Fill::Edge),
            _ => Err(de::Error::custom(format!(
                "fill must be a number, \"min\" or \"edge\", got {v}"
            ))),
        }
    }
}

/// Per-side margins: one number for every side, `[a, b, c]` (both sides of each axis), or
/// `[[i0, i1], [j0, j1], [k0, k1]]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Margins(pub [[f64; 2]; 3]);

impl Serialize for Margins {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Margins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let bad = || {
            de::Error::custom(format!(
                "margins must be a number, [i, j, k] or [[i0, i1], [j0, j1], [k0, k1]], got {v}"
            ))
        };
        if let Some(x) = v.as_f64() {
            return Ok(Margins([[x; 2]; 3]));
        }
        let a = v.as_array().filter(|a| a.len() == 3).ok_or_else(bad)?;
        let mut m = [[0.0; 2]; 3];
        for (axis, item) in a.iter().enumerate() {
            if let Some(x) = item.as_f64() {
                m[axis] = [x, x];
            } else {
                let p = item.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
                m[axis] = [
                    p[0].as_f64().ok_or_else(bad)?,
                    p[1].as_f64().ok_or_else(bad)?,
                ];
            }
        }
        Ok(Margins(m))
    }
}

/// How label maps are resampled by a spatial transform (`label_interpolation`); in a fused run of
/// spatial transforms the last value given applies to the whole pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelInterp {
    /// The nearest voxel's label (default).
    #[default]
    Nearest,
    /// Each label's indicator interpolated trilinearly, the label of the largest weight taken (ties to
    /// the lower label value): smoother boundaries, never a new label value.
    LinearArgmax,
}

/// Voxels a z-score is computed over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZMask {
    /// Nonzero voxels; zero voxels stay 0 (nnU-Net style).
    #[default]
    Nonzero,
    /// Every voxel.
    All,
    /// The first label map's nonzero voxels (TorchIO's `masking_method` with a label map); the
    /// normalisation then applies to every voxel.
    Label,
}

/// Units of elastic `sigma` and `alpha`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    /// Displacements and sigmas in voxels of the input.
    #[default]
    Voxels,
    /// Millimetres: anisotropic spacing is honoured (physically isotropic displacements).
    Mm,
}

/// What `nan_to_num` puts in place of NaN and infinite voxels: a number, or `"min"` (the image's
/// smallest finite voxel).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NanValue {
    /// This value.
    Value(f64),
    /// The smallest finite voxel of the image (0 when none is finite).
    Min,
}

impl Default for NanValue {
    fn default() -> Self {
        NanValue::Value(0.0)
    }
}

impl Serialize for NanValue {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            NanValue::Value(v) => s.serialize_f64(*v),
            NanValue::Min => s.serialize_str("min"),
        }
    }
}

impl<'de> Deserialize<'de> for NanValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => Ok(NanValue::Value(n.as_f64().unwrap_or(f64::NAN))),
            serde_json::Value::String(s) if s == "min" => Ok(NanValue::Min),
            other => Err(de::Error::custom(format!(
                "value must be a number or \"min\", got {other}"
            ))),
        }
    }
}

/// The grid `resample_to` resamples onto: shape and voxel -> world affine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefGrid {
    /// Voxels per axis.
    pub shape: [usize; 3],
    /// Voxel -> world (RAS mm) affine.
    pub affine: [[f64; 4]; 4],
}
