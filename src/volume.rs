//! Volumes (voxel data + grid) and subjects (images and label maps sharing one grid).

use crate::error::{Error, Result};
use crate::grid::Grid;
use ndarray::{ArrayView3, ShapeBuilder};
use serde::{Deserialize, Serialize};

pub use crate::stats::Stats;

/// Whether a volume holds intensities (interpolated, intensity ops apply) or labels (nearest only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Intensities: interpolated, intensity ops apply.
    Image,
    /// A label map: nearest sampling, never new values.
    Label,
}

/// Voxel data type a volume was stored with; label maps are written back with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 8-bit unsigned.
    U8,
    /// 8-bit signed.
    I8,
    /// 16-bit unsigned.
    U16,
    /// 16-bit signed.
    I16,
    /// 32-bit unsigned.
    U32,
    /// 32-bit signed.
    I32,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

impl DType {
    /// Name as printed by `voxaug info` (numpy style).
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::U16 => "uint16",
            DType::I16 => "int16",
            DType::U32 => "uint32",
            DType::I32 => "int32",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Range of values the type holds exactly (integers) or `None` for floats.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::F64 => 8,
        }
    }

    /// Range of an integer type, `None` for floats.
    pub fn int_range(self) -> Option<(f64, f64)> {
        match self {
            DType::U8 => Some((0.0, 255.0)),
            DType::I8 => Some((-128.0, 127.0)),
            DType::U16 => Some((0.0, 65535.0)),
            DType::I16 => Some((-32768.0, 32767.0)),
            DType::U32 => Some((0.0, 4294967295.0)),
            DType::I32 => Some((-2147483648.0, 2147483647.0)),
            DType::F32 | DType::F64 => None,
        }
    }
}

/// Voxel data (f32, i-fastest) on a grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// Voxels in i-fastest order: `data[i + ni * (j + nj * k)]`.
    pub data: Vec<f32>,
    /// Shape and voxel -> world affine.
    pub grid: Grid,
    /// Image or label map.
    pub kind: Kind,
    /// Type the voxels were stored with on disk (for writing label maps back unchanged).
    pub dtype: DType,
}

impl Volume {
    /// A volume from i-fastest data; checks the length and the grid.
    pub fn new(data: Vec<f32>, grid: Grid, kind: Kind) -> Result<Volume> {
        grid.validate()?;
        if data.len() != grid.len() {
            return Err(Error::invalid(format!(
                "{} voxels given for shape {:?} ({} expected)",
                data.len(),
                grid.shape,
                grid.len()
            )));
        }
        let dtype = match kind {
            Kind::Image => DType::F32,
            Kind::Label => DType::U8,
        };
        let v = Volume {
            data,
            grid,
            kind,
            dtype,
        };
        v.check_labels()?;
        Ok(v)
    }

    /// An intensity image.
    pub fn image(data: Vec<f32>, grid: Grid) -> Result<Volume> {
        Volume::new(data, grid, Kind::Image)
    }

    /// A label map; its on-disk type is the smallest unsigned type that holds its values.
    pub fn label(data: Vec<f32>, grid: Grid) -> Result<Volume> {
        let mut v = Volume::new(data, grid, Kind::Label)?;
        let max = v.data.iter().fold(0.0f32, |m, &x| m.max(x));
        let min = v.data.iter().fold(0.0f32, |m, &x| m.min(x));
        v.dtype = if min < 0.0 {
            DType::I32
        } else if max <= 255.0 {
            DType::U8
        } else if max <= 65535.0 {
            DType::U16
        } else {
            DType::U32
        };
        Ok(v)
    }

    /// Label maps hold finite integers. Images may hold NaN or infinite voxels (readers, `info`,
    /// `convert` and the views accept them); operations refuse them unless `nan_to_num` comes first.
    pub fn check_labels(&self) -> Result<()> {
        if self.kind == Kind::Image {
            return Ok(());
        }
        self.check_values()
    }

    /// Rejects NaN/infinite voxels, and non-integer values in label maps.
    pub fn check_values(&self) -> Result<()> {
        use rayon::prelude::*;
        let finite = |v: &f32| v.is_finite();
        if !self.data.par_iter().all(finite) {
            let bad = self.data.iter().filter(|v| !finite(v)).count();
            return Err(Error::invalid(format!(
                "volume contains {bad} NaN or infinite voxel value(s)"
            )));
        }
        if self.kind == Kind::Label {
            let whole = crate::stats::all_whole_within(&self.data, f64::MIN, f64::MAX);
            if let Some(v) = (!whole)
                .then(|| self.data.iter().find(|v| v.fract() != 0.0))
                .flatten()
            {
                return Err(Error::invalid(format!(
                    "label map contains the non-integer value {v}; label maps must hold integer labels"
                )));
            }
        }
        Ok(())
    }

    /// The voxels as an ndarray view indexed `[i, j, k]`.
    pub fn array(&self) -> ArrayView3<'_, f32> {
        let [ni, nj, nk] = self.grid.shape;
        ArrayView3::from_shape((ni, nj, nk).f(), &self.data).expect("length checked on creation")
    }

    /// Value at voxel `(i, j, k)`.
    pub fn at(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[self.grid.index(i, j, k)]
    }

    /// Same grid, other data (used by transforms that keep the geometry).
    pub fn with_data(&self, data: Vec<f32>) -> Volume {
        debug_assert_eq!(data.len(), self.data.len());
        Volume {
            data,
            grid: self.grid.clone(),
            kind: self.kind,
            dtype: self.dtype,
        }
    }

    /// Basic statistics: min, max, mean, population std (f64 accumulation).
    pub fn stats(&self) -> Stats {
        crate::stats::stats(&self.data, None)
    }

    /// Sorted distinct label values with their voxel counts.
    pub fn label_counts(&self) -> Vec<(f32, usize)> {
        let mut m: std::collections::BTreeMap<i64, usize> = Default::default();
        for &v in &self.data {
            *m.entry(v as i64).or_default() += 1;
        }
        m.into_iter().map(|(v, c)| (v as f32, c)).collect()
    }
}

/// Images and label maps of one subject, all on one grid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subject {
    /// Intensity images.
    pub images: Vec<Volume>,
    /// Label maps.
    pub labels: Vec<Volume>,
}

impl Subject {
    /// A subject; every volume must share the first one's grid (within 1e-4 relative).
    pub fn new(images: Vec<Volume>, labels: Vec<Volume>) -> Result<Subject> {
        let s = Subject { images, labels };
        s.check_grids()?;
        Ok(s)
    }

    /// The common grid (of the first volume).
    pub fn grid(&self) -> Option<&Grid> {
        self.images.first().or(self.labels.first()).map(|v| &v.grid)
    }

    /// Errors when volumes are on different grids.
    pub fn check_grids(&self) -> Result<()> {
        if self.images.is_empty() && self.labels.is_empty() {
            return Err(Error::invalid("subject has no image and no label map"));
        }
        let g = self.grid().expect("non-empty").clone();
        for (n, v) in self.images.iter().chain(&self.labels).enumerate() {
            if !g.same_as(&v.grid, 1e-4) {
                return Err(Error::invalid(format!(
                    "volume {n} is on a different grid than the first volume: shape {:?} vs {:?}, affine {:?} vs {:?}",
                    v.grid.shape, g.shape, v.grid.affine, g.affine
                )));
            }
        }
        Ok(())
    }
}
