//! Transforms: the pipeline format (public JSON contract), the geometry of each spatial transform, and
//! the fusion of consecutive spatial transforms into one sampling map.

pub mod fuse;
pub mod random;
pub mod spatial;
pub mod spec;

pub use fuse::{compile, SamplingMap, Stage};
pub use random::{RandomTransform, SampleInput, Step};
pub use spec::{Fill, IntensityOp, Margins, Pipeline, Plan, Transform, Units, Vec3, ZMask};
