//! Volumes (voxel data + grid) and subjects (images and label maps sharing one grid).

use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::voxels::{Voxel, Voxels};
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

/// Voxel data on a grid: images hold f32, label maps their integer type (see [`Voxels`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// Voxels in i-fastest order: `data[i + ni * (j + nj * k)]`. `Voxels::F32` for images, an integer
    /// variant for label maps (the constructors keep to this; kernels refuse anything else).
    pub data: Voxels,
    /// Shape and voxel -> world affine.
    pub grid: Grid,
    /// Image or label map.
    pub kind: Kind,
    /// Type the voxels were stored with on disk (written back with it while every value fits).
    pub dtype: DType,
}

impl Volume {
    /// A volume from i-fastest f32 data; checks the length and the grid. Label values must be integers:
    /// they are stored in the narrowest integer type that holds them.
    pub fn new(data: Vec<f32>, grid: Grid, kind: Kind) -> Result<Volume> {
        check_len(data.len(), &grid)?;
        match kind {
            Kind::Image => Volume::from_voxels(Voxels::from(data), grid, kind),
            Kind::Label => Volume::from_voxels(Voxels::labels_from_f32(&data)?, grid, kind),
        }
    }

    /// A volume from typed voxels: f32 for an image, an integer type for a label map (the on-disk
    /// type recorded is the in-memory one).
    pub fn from_voxels(data: Voxels, grid: Grid, kind: Kind) -> Result<Volume> {
        check_len(data.len(), &grid)?;
        let dtype = data.dtype();
        match (kind, dtype) {
            (Kind::Image, DType::F32) => {}
            (Kind::Image, d) => {
                return Err(Error::invalid(format!(
                    "image voxels must be float32 ({} given)",
                    d.name()
                )))
            }
            (Kind::Label, DType::F32 | DType::F64) => {
                return Err(Error::invalid(
                    "label voxels must be an integer type (float32 given; Volume::label converts)",
                ))
            }
            (Kind::Label, _) => {}
        }
        Ok(Volume {
            data,
            grid,
            kind,
            dtype,
        })
    }

    /// An intensity image.
    pub fn image(data: Vec<f32>, grid: Grid) -> Result<Volume> {
        Volume::new(data, grid, Kind::Image)
    }

    /// A label map from f32 values; stored (and written) in the smallest integer type that holds them.
    pub fn label(data: Vec<f32>, grid: Grid) -> Result<Volume> {
        Volume::new(data, grid, Kind::Label)
    }

    /// The f32 voxels of an image; an error for a label map (which holds integers).
    pub fn image_data(&self) -> Result<&[f32]> {
        self.data.as_f32().ok_or_else(|| {
            Error::invalid(format!(
                "an image's voxels must be float32 ({} found)",
                self.data.dtype().name()
            ))
        })
    }

    /// The f32 voxels of an image, writable; an error for a label map.
    pub fn image_data_mut(&mut self) -> Result<&mut crate::voxels::Buf<f32>> {
        let dtype = self.data.dtype();
        self.data.as_f32_mut().ok_or_else(|| {
            Error::invalid(format!(
                "an image's voxels must be float32 ({} found)",
                dtype.name()
            ))
        })
    }

    /// Image voxels must be float32 and label voxels integers (a volume built field by field may break
    /// this; the executors check before running).
    pub fn check_storage(&self) -> Result<()> {
        match self.kind {
            Kind::Image => self.image_data().map(|_| ()),
            Kind::Label if matches!(self.data.dtype(), DType::F32 | DType::F64) => Err(
                Error::invalid("a label map's voxels must be an integer type (float32 found)"),
            ),
            Kind::Label => Ok(()),
        }
    }

    /// Rejects NaN/infinite voxels (label maps are integers and always pass).
    pub fn check_values(&self) -> Result<()> {
        use rayon::prelude::*;
        let Some(data) = self.data.as_f32() else {
            return Ok(());
        };
        if !data.par_iter().all(|v| v.is_finite()) {
            let bad = data.iter().filter(|v| !v.is_finite()).count();
            return Err(Error::invalid(format!(
                "volume contains {bad} NaN or infinite voxel value(s)"
            )));
        }
        Ok(())
    }

    /// The voxels as f32 (borrowed for images, converted for label maps).
    pub fn values(&self) -> std::borrow::Cow<'_, [f32]> {
        self.data.values()
    }

    /// The voxels as an ndarray view indexed `[i, j, k]` (f32: a copy for label maps).
    pub fn array(&self) -> ndarray::CowArray<'_, f32, ndarray::Ix3> {
        let [ni, nj, nk] = self.grid.shape;
        match self.data.values() {
            std::borrow::Cow::Borrowed(d) => ArrayView3::from_shape((ni, nj, nk).f(), d)
                .expect("length checked on creation")
                .into(),
            std::borrow::Cow::Owned(d) => ndarray::Array3::from_shape_vec((ni, nj, nk).f(), d)
                .expect("length checked on creation")
                .into(),
        }
    }

    /// Value at voxel `(i, j, k)`.
    pub fn at(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data.get(self.grid.index(i, j, k))
    }

    /// Same grid, kind and on-disk type, other f32 data (images).
    pub fn with_data(&self, data: Vec<f32>) -> Volume {
        self.with_voxels(Voxels::from(data))
    }

    /// Same grid, kind and on-disk type, other voxels (of the kind's storage type).
    pub fn with_voxels(&self, data: Voxels) -> Volume {
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
        crate::stats::stats(&self.values(), None)
    }

    /// Sorted distinct label values with their voxel counts.
    pub fn label_counts(&self) -> Vec<(f32, usize)> {
        crate::with_voxels!(&self.data, d => label_counts(d))
    }
}

fn label_counts<T: Voxel>(d: &[T]) -> Vec<(f32, usize)> {
    let mut m: std::collections::BTreeMap<i64, usize> = Default::default();
    for &v in d {
        *m.entry(v.to_f64() as i64).or_default() += 1;
    }
    m.into_iter().map(|(v, c)| (v as f32, c)).collect()
}

fn check_len(n: usize, grid: &Grid) -> Result<()> {
    grid.validate()?;
    if n != grid.len() {
        return Err(Error::invalid(format!(
            "{} voxels given for shape {:?} ({} expected)",
            n,
            grid.shape,
            grid.len()
        )));
    }
    Ok(())
}

/// Images and label maps of one subject, with their member names.
///
/// Volumes share one grid, except in a subject made with [`Subject::named`]: members on different grids
/// are accepted there, and a pipeline applied to them must start its spatial transforms with
/// `resample_to` (a file, or a member by name: TorchIO's `Resample("t1")`), which brings every member
/// onto one grid in the same interpolation as the transforms fused with it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subject {
    /// Intensity images.
    pub images: Vec<Volume>,
    /// Label maps.
    pub labels: Vec<Volume>,
    /// Member name of each volume, images then labels (empty: unnamed members). The channels of a
    /// multi-channel member are consecutive images with the same name.
    pub names: Vec<String>,
}

impl Subject {
    /// A subject; every volume must share the first one's grid (within 1e-4 relative).
    pub fn new(images: Vec<Volume>, labels: Vec<Volume>) -> Result<Subject> {
        let s = Subject {
            images,
            labels,
            names: Vec::new(),
        };
        s.check_grids()?;
        Ok(s)
    }

    /// A subject of named members (one name per volume, images then labels; the channels of a
    /// multi-channel member repeat its name). Members may be on different grids (see [`Subject`]); the
    /// channels of one member may not.
    pub fn named(images: Vec<Volume>, labels: Vec<Volume>, names: Vec<String>) -> Result<Subject> {
        let s = Subject {
            images,
            labels,
            names,
        };
        let n = s.images.len() + s.labels.len();
        if n == 0 {
            return Err(Error::invalid("subject has no image and no label map"));
        }
        if s.names.len() != n {
            return Err(Error::invalid(format!(
                "{} member names given for {n} volumes",
                s.names.len()
            )));
        }
        let vols: Vec<&Volume> = s.images.iter().chain(&s.labels).collect();
        for (i, name) in s.names.iter().enumerate() {
            if name.is_empty() {
                return Err(Error::invalid("a subject member has an empty name"));
            }
            if let Some(j) = s.names[..i].iter().rposition(|m| m == name) {
                let channels = j + 1 == i && i < s.images.len();
                if !channels {
                    return Err(Error::invalid(format!(
                        "two subject members are named {name:?}; member names must be unique"
                    )));
                }
                if !vols[j].grid.same_as(&vols[i].grid, 1e-4) {
                    return Err(Error::invalid(format!(
                        "the channels of member {name:?} are on different grids"
                    )));
                }
            }
        }
        Ok(s)
    }

    /// The common grid (of the first volume).
    pub fn grid(&self) -> Option<&Grid> {
        self.images.first().or(self.labels.first()).map(|v| &v.grid)
    }

    /// The grid of the member called `name`.
    pub fn member_grid(&self, name: &str) -> Option<&Grid> {
        let i = self.names.iter().position(|n| n == name)?;
        self.images
            .iter()
            .chain(&self.labels)
            .nth(i)
            .map(|v| &v.grid)
    }

    /// True when every volume is on the first one's grid (within 1e-4 relative).
    pub fn same_grid(&self) -> bool {
        match self.grid() {
            None => true,
            Some(g) => self
                .images
                .iter()
                .chain(&self.labels)
                .all(|v| g.same_as(&v.grid, 1e-4)),
        }
    }

    /// Errors when an image's voxels are not float32 or a label map's not integers (see
    /// [`Volume::check_storage`]).
    pub fn check_storage(&self) -> Result<()> {
        self.images
            .iter()
            .chain(&self.labels)
            .try_for_each(Volume::check_storage)
    }

    /// Errors when volumes are on different grids.
    pub fn check_grids(&self) -> Result<()> {
        if self.images.is_empty() && self.labels.is_empty() {
            return Err(Error::invalid("subject has no image and no label map"));
        }
        let g = self.grid().expect("non-empty").clone();
        for (n, v) in self.images.iter().chain(&self.labels).enumerate() {
            if !g.same_as(&v.grid, 1e-4) {
                let who = |i: usize| match self.names.get(i) {
                    Some(name) => format!("member {name:?}"),
                    None => format!("volume {i}"),
                };
                return Err(Error::invalid(format!(
                    "{} is on a different grid than {}: shape {:?} vs {:?}, affine {:?} vs {:?}; \
                     bring the members onto one grid first: start the pipeline with \
                     {{\"type\": \"resample_to\", \"reference\": \"<member name or file>\"}}",
                    who(n),
                    who(0),
                    v.grid.shape,
                    g.shape,
                    v.grid.affine,
                    g.affine
                )));
            }
        }
        Ok(())
    }
}
