//! The GPU executor (wgpu, WGSL compute shaders). Volumes are uploaded once as 3D textures (R32Float for
//! images; label maps in the unsigned format of their width, R8Uint, R16Uint or R32Uint, signed labels as
//! raw bits); each stage reads textures and writes z-slabs of a row-padded storage buffer (label outputs
//! packed 4 or 2 to a word), which is copied into the next texture or read back in the label's own type. Slabs keep every storage binding under
//! the device's limit (128 MiB on lavapipe), so volume size is bounded by texture limits only.
//!
//! Files mirror `exec/cpu/`: `params.rs` (uniform structs), `slab.rs` (upload, slabs, readback),
//! `submit.rs` (dispatch, bind groups, the parameter arena, pending submissions),
//! `resample.rs`, `intensity.rs`, `labels.rs`, `reduce.rs`, `run.rs`. Kernel descriptions come from `exec/kernel.rs`.
//! Three host fallbacks call the CPU reference on purpose: B-spline displacement fields are evaluated
//! on the host on their small evaluation grid and uploaded, intensity ops without a GPU kernel run on
//! read-back voxels (`exec/cpu/intensity.rs`), and statistics masked by a label map
//! (`"mask": "label"`) are taken on the host (`kernel::label_masked_stats`) before the op's kernel runs
//! on the device: from the host's own voxels while the image and the label map are as uploaded (cached
//! with the upload), else from read-back voxels.
//!
//! Statistics ops (zscore, minmax, gamma, contrast) on a volume an earlier stage changed build their
//! point kernel on the device (`reduce.rs` `device_kernel`, `shaders/stat_kernel.wgsl`: the host's f64
//! expressions, with `SHADER_F64`), so a sample runs without the host waiting for the device between
//! stages; an untouched input's statistics are read back once and cached with its upload.

mod context;
mod intensity;
mod kspace;
mod labels;
mod metric;
mod params;
mod pipelines;
mod pool;
mod readback;
mod reduce;
mod resample;
mod run;
mod slab;
mod submit;
mod timer;
mod uniforms;

pub use context::{
    hardware_possible, list_adapters, AdapterSummary, GpuContext, DEVICE_NODES, NO_ADAPTER,
};
pub use metric::{GpuMetric, MetricSums, MAX_TRANSFORMS};
pub use run::{KernelTimes, Pending, Uploaded};

use crate::error::{Error, Result};
use crate::exec::cpu::intensity as cpu_int;
use crate::exec::kernel::{self, Needs, PointKernel};
use crate::transform::{Fill, IntensityOp, SamplingMap, Stage};
use crate::volume::{DType, Kind, Subject, Volume};
use crate::voxels::Voxels;
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use intensity::{InputStats, LabelMask, StatKey};
use params::*;
use pipelines::ImageEntry;
use readback::*;
use run::*;
use slab::*;
