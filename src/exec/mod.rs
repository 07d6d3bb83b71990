//! Executors: the CPU reference and the GPU (wgpu) backend run the same compiled stages.

pub mod cpu;
pub mod gpu;
pub mod kernel;

use crate::error::{Error, Result};
use crate::transform::{compile, Transform};
use crate::volume::Subject;
use std::sync::Arc;

/// Which executor runs a pipeline.
#[derive(Clone, Debug)]
pub enum Executor {
    /// The CPU reference (rayon).
    Cpu,
    /// A wgpu device (Vulkan, Metal or DX12; lavapipe on machines without a GPU).
    Gpu(Arc<gpu::GpuContext>),
}

impl Executor {
    /// Short name for messages (`cpu`, or the GPU adapter's name).
    pub fn name(&self) -> String {
        match self {
            Executor::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
            Executor::Gpu(g) => format!("gpu ({}, {})", g.adapter.name, g.adapter.backend),
        }
    }

    /// Applies deterministic transforms to a subject (spatial runs fused into single passes).
    pub fn apply(&self, subject: &Subject, transforms: &[Transform]) -> Result<Subject> {
        subject.check_grids()?;
        let grid = subject.grid().expect("checked non-empty").clone();
        let stages = compile(transforms, &grid)?;
        match self {
            Executor::Cpu => cpu::run(subject, &stages),
            Executor::Gpu(g) => g.run(subject, &stages),
        }
    }
}

impl Executor {
    /// Applies several deterministic plans to one subject (augmentation samples). On the GPU the subject
    /// is uploaded once and the samples share submissions; on the CPU this is a loop.
    pub fn apply_batch(&self, subject: &Subject, plans: &[Vec<Transform>]) -> Result<Vec<Subject>> {
        subject.check_grids()?;
        let grid = subject.grid().expect("checked non-empty").clone();
        match self {
            Executor::Cpu => plans.iter().map(|t| self.apply(subject, t)).collect(),
            Executor::Gpu(g) => {
                let stages = plans
                    .iter()
                    .map(|t| compile(t, &grid))
                    .collect::<Result<Vec<_>>>()?;
                g.run_batch(subject, &stages)
            }
        }
    }
}

/// Opens the GPU executor (best adapter, or the first whose name contains `adapter`).
pub fn gpu(adapter: Option<&str>) -> Result<Executor> {
    Ok(Executor::Gpu(Arc::new(gpu::GpuContext::open(adapter)?)))
}

/// Chooses an executor from a device name (`auto`, `cpu`, `gpu`). `auto` takes a hardware GPU when one
/// opens; with none, or only a software renderer (lavapipe/llvmpipe, which runs on the same CPU cores
/// and is slower than the CPU executor), it runs on the CPU and returns a one-line note saying why.
/// `--adapter` or `gpu` use whatever adapter is named or found.
pub fn select(device: &str, adapter: Option<&str>) -> Result<(Executor, Option<String>)> {
    match device {
        "cpu" => Ok((Executor::Cpu, None)),
        "gpu" => Ok((gpu(adapter)?, None)),
        "auto" => {
            if adapter.is_none() {
                if let Some(best) = gpu::list_adapters().first() {
                    if best.device_type == "Cpu" {
                        return Ok((
                            Executor::Cpu,
                            Some(format!(
                                "voxaug: the only GPU adapter is a software renderer ({}), slower than \
                                 the CPU executor; running on the CPU (--device gpu uses it anyway)",
                                best.name
                            )),
                        ));
                    }
                }
            }
            match gpu(adapter) {
                Ok(e) => Ok((e, None)),
                Err(e) => Ok((
                    Executor::Cpu,
                    Some(format!("voxaug: no usable GPU, running on the CPU ({e})")),
                )),
            }
        }
        other => Err(Error::InvalidInput(format!(
            "unknown device `{other}` (expected auto, cpu or gpu)"
        ))),
    }
}
