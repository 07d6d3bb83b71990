//! Executors: the CPU reference and the GPU (wgpu) backend run the same compiled stages.

pub mod cpu;

use crate::error::Result;
use crate::transform::{compile, Transform};
use crate::volume::Subject;

/// Which executor runs a pipeline.
#[derive(Clone, Debug)]
pub enum Executor {
    /// The CPU reference (rayon).
    Cpu,
}

impl Executor {
    /// Short name for messages (`cpu`, or the GPU adapter's name).
    pub fn name(&self) -> String {
        match self {
            Executor::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
        }
    }

    /// Applies deterministic transforms to a subject (spatial runs fused into single passes).
    pub fn apply(&self, subject: &Subject, transforms: &[Transform]) -> Result<Subject> {
        subject.check_grids()?;
        let grid = subject.grid().expect("checked non-empty").clone();
        let stages = compile(transforms, &grid)?;
        match self {
            Executor::Cpu => cpu::run(subject, &stages),
        }
    }
}

/// Chooses an executor from a device name (`auto`, `cpu`, `gpu`). Returns a note to print when `auto`
/// falls back to the CPU.
pub fn select(device: &str, adapter: Option<&str>) -> Result<(Executor, Option<String>)> {
    let _ = adapter;
    match device {
        "cpu" => Ok((Executor::Cpu, None)),
        "auto" => Ok((
            Executor::Cpu,
            Some("voxaug: using the CPU executor".to_string()),
        )),
        "gpu" => Err(crate::Error::Gpu(
            "the GPU executor is not available in this build".into(),
        )),
        other => Err(crate::Error::InvalidInput(format!(
            "unknown device `{other}` (expected auto, cpu or gpu)"
        ))),
    }
}
