//! voxaug: augmentation and preprocessing of 3D medical volumes, on the CPU (reference) and the GPU.
//!
//! ```no_run
//! use voxaug::{io, Executor, Kind, Pipeline, Subject};
//! let image = io::read_volume("t1.nii.gz", Kind::Image)?;
//! let label = io::read_volume("seg.nii.gz", Kind::Label)?;
//! let subject = Subject::new(vec![image], vec![label])?;
//! let pipeline = Pipeline::from_json(r#"{"transforms": [{"type": "rotate", "degrees": [0, 0, 15]}]}"#)?;
//! let (out, plan) = pipeline.sample(&Executor::Cpu, &subject, 0)?;
//! io::write_volume("t1_rot.nii.gz", &out.images[0])?;
//! # Ok::<(), voxaug::Error>(())
//! ```

#![warn(missing_docs)]

pub mod augment;
// Timing harness of `voxaug bench` and the criterion benches; not a stable API.
#[doc(hidden)]
pub mod bench;
pub mod dataset;
pub mod error;
pub mod exec;
pub mod grid;
pub mod invert;
pub mod io;
pub mod patches;
pub mod phantom;
pub mod register;
pub mod settings;
pub mod simd;
pub mod stats;
pub mod transform;
pub mod view;
pub mod volume;
pub mod voxels;

pub use error::{Error, Result};

/// The README's Rust example, compiled as a doctest (not run: it reads the user's files).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
pub use exec::Executor;
pub use grid::{Grid, Mat4};
pub use transform::{Fill, Pipeline, Plan, Transform};
pub use volume::{DType, Kind, Stats, Subject, Volume};
pub use voxels::{Voxel, Voxels};
