//! What each volume of a resampling pass is sampled as (trilinear, nearest in its own type,
//! `linear_argmax`) and the value it takes outside the input.

use super::{outside_for, Outside};
use crate::error::Result;
use crate::transform::SamplingMap;
use crate::volume::Volume;
use crate::voxels::Voxels;

/// One volume of a resampling pass.
#[derive(Clone, Copy, Debug)]
pub enum Spec<'a> {
    /// An image: trilinear, outside the input the fill value or the edge.
    Linear(&'a [f32], Outside),
    /// Voxels sampled nearest in their own type (label maps); outside the input `Some(fill)` (converted
    /// to the voxel type, exact for every 32-bit integer) or `None` for the edge.
    Nearest(&'a Voxels, Option<f64>),
    /// A label map sampled by `linear_argmax` (fill as for `Nearest`).
    Argmax(&'a Voxels, Option<f64>),
}

impl<'a> Spec<'a> {
    /// The spec of a volume in a resampling pass through `map`: [`for_volume`](Self::for_volume), with
    /// images sampled nearest where the map says so and label maps by `linear_argmax` where it asks.
    pub fn under_map(v: &'a Volume, map: &SamplingMap) -> Result<Spec<'a>> {
        match (v.kind, map.nearest_images) {
            (crate::volume::Kind::Image, true) => Ok(Spec::Nearest(
                &v.data,
                fill_of(outside_for(map.fill, v)).map(f64::from),
            )),
            (crate::volume::Kind::Label, _)
                if map.label_interp == crate::transform::LabelInterp::LinearArgmax =>
            {
                Ok(Spec::Argmax(&v.data, label_fill(map.fill, &v.data)))
            }
            _ => Spec::for_volume(v, map.fill),
        }
    }

    /// The spec of a volume under a map's fill rule: images trilinear, label maps nearest (fill 0, or
    /// their minimum label, or the edge).
    pub fn for_volume(v: &'a Volume, fill: crate::transform::Fill) -> Result<Spec<'a>> {
        Ok(match v.kind {
            crate::volume::Kind::Image => Spec::Linear(v.image_data()?, outside_for(fill, v)),
            crate::volume::Kind::Label => Spec::Nearest(&v.data, label_fill(fill, &v.data)),
        })
    }
}

/// A label map's fill under a map's rule, in f64 (exact for every label type): 0 for a value fill (label
/// maps are padded with background), the smallest label for `min`, `None` for the edge.
pub fn label_fill(fill: crate::transform::Fill, data: &Voxels) -> Option<f64> {
    use crate::transform::Fill;
    match fill {
        Fill::Edge => None,
        Fill::Value(_) => Some(0.0),
        Fill::Min => Some(data.range().0.clamp(f64::MIN, f64::MAX)),
    }
}

pub(super) fn fill_of(outside: Outside) -> Option<f32> {
    match outside {
        Outside::Value(v) => Some(v),
        Outside::Edge => None,
    }
}
