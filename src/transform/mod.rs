//! Transforms: the pipeline format (public JSON contract), the geometry of each spatial transform, and
//! the fusion of consecutive spatial transforms into one sampling map.
//!
//! `kspace.rs` (k-space artefacts), `values.rs` (values inside transforms: three numbers, fill, margins, masks, units), `spec.rs`
//! (deterministic transforms), `range.rs` (random parameter ranges and their checks),
//! `random.rs` (random transforms, combinators and the step parser), `names.rs` (hints for unknown
//! types: TorchIO/MONAI names, typos), `sampler.rs` (the per-sample random
//! source), `pipeline.rs` (pipelines and plans), `spatial.rs` (geometry), `fuse.rs` (fusion). Imports go
//! one way: spec <- range <- random <- sampler <- pipeline.

pub mod fuse;
pub mod kspace;
pub mod labels;
mod names;
pub mod pipeline;
pub mod random;
pub mod range;
pub mod sampler;
pub mod spatial;
pub mod spec;
pub mod values;

pub use fuse::{compile, SamplingMap, Stage};
pub use pipeline::{Pipeline, Plan};
pub use random::{RandomTransform, Step};
pub use range::{AxisName, Center, Range3, RangeArg};
pub use sampler::SampleInput;
pub use spec::{
    Fill, IntensityOp, LabelInterp, Margins, NanValue, RefGrid, Transform, Units, Vec3, ZMask,
};
