//! `voxaug bench`: the same operations timed the same way every time, next to this machine's memcpy
//! bandwidth. Used by the CLI; criterion benches in `benches/` cover the same ops.

use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::transform::{compile, Pipeline, Transform};
use crate::volume::Subject;
use serde::Serialize;

/// Operations `voxaug bench` knows, with the pipeline each one runs on an `n^3` phantom.
pub fn op_transforms(op: &str, n: usize) -> Result<Vec<Transform>> {
    let json = match op {
        "rotate" => r#"{"type": "rotate", "degrees": [10, -5, 15]}"#.to_string(),
        "flip" => r#"{"type": "flip", "axes": [0, 1]}"#.to_string(),
        "crop" => format!(r#"{{"type": "crop", "margins": {}}}"#, n / 8),
        "pad" => format!(r#"{{"type": "pad", "margins": {}}}"#, n / 16),
        "resize" => format!(r#"{{"type": "resize", "shape": [{m}, {m}, {m}]}}"#, m = n * 3 / 4),
        "resample" => r#"{"type": "resample", "spacing": [1.3, 1.3, 1.3]}"#.to_string(),
        "elastic" => r#"{"type": "rotate", "degrees": [0, 0, 10]}, {"type": "elastic", "sigma": 35, "alpha": 4, "seed": 1}"#.to_string(),
        "elastic_nnunet" => r#"{"type": "rotate", "degrees": [0, 0, 10]}, {"type": "elastic", "sigma": 11, "alpha": 150, "seed": 1}"#.to_string(),
        "low_resolution" => {
            r#"{"type": "simulate_low_resolution", "zoom": [0.5, 1, 1]}"#.to_string()
        }
        "low_resolution_iso" => {
            r#"{"type": "simulate_low_resolution", "zoom": 0.5}"#.to_string()
        }
        "motion" => r#"{"type": "motion", "degrees": [[5, -3, 8], [-4, 6, 2]], "translation_mm": [[4, -2, 3], [-3, 5, -1]], "times": [0.35, 0.68]}"#.to_string(),
        "ghosting" => r#"{"type": "ghosting", "ghosts": 6, "axis": 2, "intensity": 0.8}"#.to_string(),
        "spike" => r#"{"type": "spike", "positions": [[0.3, 0.6, 0.45]], "intensity": 2}"#.to_string(),
        "gibbs" => r#"{"type": "gibbs", "fraction": 0.5}"#.to_string(),
        "zscore" => r#"{"type": "zscore"}"#.to_string(),
        "minmax" => r#"{"type": "minmax"}"#.to_string(),
        "percentile_clip" => r#"{"type": "percentile_clip", "low": 0.5, "high": 99.5}"#.to_string(),
        "gamma" => r#"{"type": "gamma", "gamma": 1.2}"#.to_string(),
        "noise" => r#"{"type": "noise", "std": 0.05, "seed": 4}"#.to_string(),
        "bias_field" => format!(
            r#"{{"type": "bias_field", "order": 3, "coefficients": [{}]}}"#,
            (0..20)
                .map(|t| format!("{:.4}", 0.1 * (t as f64 * 0.7).sin()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "nnunet" => r#"{"type": "zscore"}, {"type": "zoom", "factors": 1.1}, {"type": "rotate", "degrees": [10, 5, -8]},
            {"type": "elastic", "sigma": 11, "alpha": 150, "seed": 3}, {"type": "flip", "axes": [0]},
            {"type": "noise", "std": 0.05, "seed": 4}, {"type": "gamma", "gamma": 1.2}"#.to_string(),
        other => {
            return Err(Error::InvalidInput(format!(
                "unknown bench op `{other}` (known: {})",
                OPS.join(", ")
            )))
        }
    };
    Pipeline::from_json(&format!("{{\"transforms\": [{json}]}}"))?.fixed_transforms()
}

/// Every op of `voxaug bench`, in table order.
pub const OPS: &[&str] = &[
    "rotate",
    "flip",
    "crop",
    "pad",
    "resize",
    "resample",
    "elastic",
    "elastic_nnunet",
    "low_resolution",
    "low_resolution_iso",
    "motion",
    "ghosting",
    "spike",
    "gibbs",
    "zscore",
    "minmax",
    "percentile_clip",
    "gamma",
    "noise",
    "bias_field",
    "nnunet",
];

/// True for ops that only change intensities.
pub fn is_intensity(op: &str) -> bool {
    matches!(
        op,
        "zscore"
            | "minmax"
            | "percentile_clip"
            | "gamma"
            | "noise"
            | "bias_field"
            | "motion"
            | "ghosting"
            | "spike"
            | "gibbs"
    )
}

/// Bytes a pass must read and write at least: every input and output voxel of every volume touched, in
/// its own type (4 bytes per image voxel, 1 per uint8 label voxel).
pub fn min_bytes(subject: &Subject, out: &Subject, op: &str) -> f64 {
    let spatial = !is_intensity(op);
    let vols: Vec<(usize, usize)> = subject
        .images
        .iter()
        .zip(&out.images)
        .chain(subject.labels.iter().zip(&out.labels).filter(|_| spatial))
        .map(|(a, b)| (a.data.as_bytes().len(), b.data.as_bytes().len()))
        .collect();
    vols.iter().map(|(a, b)| (a + b) as f64).sum()
}

/// Best-of-5 parallel memcpy bandwidth of a 256 MiB buffer (read + write bytes per second).
pub fn memcpy_bandwidth() -> f64 {
    use rayon::prelude::*;
    let n = 64 << 20;
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        dst.par_chunks_mut(1 << 20)
            .zip(src.par_chunks(1 << 20))
            .for_each(|(d, s)| d.copy_from_slice(s));
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(&dst);
    }
    (2 * n * 4) as f64 / best
}

/// Datasheet memory bandwidth (bytes/s) of GPUs known by adapter-name substring, most specific first;
/// None for others (lavapipe has none: it is host memory).
pub fn device_bandwidth(adapter: &str) -> Option<f64> {
    const KNOWN: &[(&str, f64)] = &[
        ("H100 80GB HBM3", 3.35e12),
        ("H100 PCIe", 2.0e12),
        ("H100 NVL", 3.9e12),
        ("H200", 4.8e12),
        ("A100-SXM4-80GB", 2.039e12),
        ("A100 80GB PCIe", 1.935e12),
        ("A100", 1.555e12),
        ("L40S", 0.864e12),
        ("RTX 4090", 1.008e12),
        ("RTX 3090", 0.936e12),
    ];
    KNOWN
        .iter()
        .find(|(name, _)| adapter.contains(name))
        .map(|&(_, b)| b)
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Op name.
    pub op: String,
    /// Cube edge length in voxels.
    pub size: usize,
    /// Executor (`cpu`, `gpu` end-to-end or `gpu-kernel`).
    pub device: String,
    /// `end_to_end` (upload, compute, readback; `Executor::apply` called run after run, each output
    /// dropped, which hands its buffers back to the pool for the next; the input scanned for
    /// non-finite voxels as `apply` does), `owned` (CPU: the run owns its input, a copy made before
    /// the clock starts, as `voxaug apply` and Python's `Pipeline.apply` do: elementwise ops, flips,
    /// crops and pads work in its buffers; the output freed inside the clock and the pool emptied
    /// after it, so every run starts from fresh memory, as a one-shot process does), `steady` (outputs recycled
    /// between runs and the input scanned once, as `augment` and the Python loader do), `resident` (GPU: data already on the
    /// device and left there, wall clock) or `kernel` (GPU: summed compute-pass time from timestamp
    /// queries; only where the adapter has them).
    pub mode: String,
    /// Timed runs.
    pub runs: usize,
    /// Median time in ms.
    pub median_ms: f64,
    /// Fastest run in ms.
    pub min_ms: f64,
    /// Slowest run in ms.
    pub max_ms: f64,
    /// Output voxels per second at the median.
    pub voxels_per_s: f64,
    /// Bytes read and written per run.
    pub bytes: f64,
    /// `bytes` per second at the median, in GB/s.
    pub gb_per_s: f64,
    /// `gb_per_s` over this machine's measured memcpy bandwidth.
    pub fraction_of_memcpy: f64,
    /// GPU rows: `gb_per_s` over the adapter's datasheet memory bandwidth, when the adapter is one
    /// [`device_bandwidth`] knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction_of_device: Option<f64>,
    /// CPU median of the same mode (steady for resident and kernel rows) / this median (GPU rows).
    pub speedup_vs_cpu: Option<f64>,
}

fn stats(mut t: Vec<f64>) -> (f64, f64, f64) {
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[0], t[t.len() - 1])
}

/// Times `op` on an `n^3` phantom (f32 image + label map) with an executor.
pub fn measure(exec: &Executor, op: &str, n: usize, runs: usize, memcpy: f64) -> Result<Vec<Row>> {
    let mut s = crate::phantom::head([n; 3], [1.0, 1.0, 1.2]);
    if is_intensity(op) {
        // Intensity ops never touch label maps: time them on the image alone.
        s.labels.clear();
    }
    let t = op_transforms(op, n)?;
    let out = exec.apply(&s, &t)?; // warm-up (pipelines, pools)
    let bytes = min_bytes(&s, &out, op);
    drop(out);
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = std::time::Instant::now();
        std::hint::black_box(exec.apply(&s, &t)?);
        times.push(t0.elapsed().as_secs_f64());
    }
    let voxels = (n * n * n) as f64;
    let row = |mode: &str, times: Vec<f64>| {
        let k = times.len();
        let (med, min, max) = stats(times);
        Row {
            op: op.to_string(),
            size: n,
            device: exec.name(),
            mode: mode.to_string(),
            runs: k,
            median_ms: med * 1e3,
            min_ms: min * 1e3,
            max_ms: max * 1e3,
            voxels_per_s: voxels / med,
            bytes,
            gb_per_s: bytes / med / 1e9,
            fraction_of_memcpy: bytes / med / memcpy,
            fraction_of_device: match exec {
                Executor::Gpu(g) => device_bandwidth(&g.adapter.name).map(|b| bytes / med / b),
                Executor::Cpu => None,
            },
            speedup_vs_cpu: None,
        }
    };
    let mut rows = vec![row("end_to_end", times)];
    if matches!(exec, Executor::Cpu) {
        // The input as `voxaug apply` decodes it (buffers from the CPU allocator, faulted in before
        // the clock starts); the output freed inside the clock, the pool emptied after it (every run
        // starts from fresh memory, as a one-shot process does).
        let copy =
            |v: &crate::Volume| Ok(v.with_voxels(crate::exec::cpu::alloc::copy_voxels(&v.data)?));
        let mut owned = Vec::with_capacity(runs);
        for _ in 0..runs {
            let input = Subject {
                images: s.images.iter().map(copy).collect::<Result<_>>()?,
                labels: s.labels.iter().map(copy).collect::<Result<_>>()?,
                names: s.names.clone(),
            };
            let t0 = std::time::Instant::now();
            let out = std::hint::black_box(exec.apply_owned(input, &t)?);
            crate::exec::cpu::alloc::free_subject(out);
            owned.push(t0.elapsed().as_secs_f64());
            crate::exec::cpu::alloc::release_pool();
        }
        rows.push(row("owned", owned));
    }
    {
        // Steady state of a sampling loop: each output's buffers serve the next one, and the input
        // is scanned for its largest |value| once, as the Python loader does for each decoded
        // subject and `augment` once per batch.
        let mut steady = Vec::with_capacity(runs);
        crate::exec::cpu::alloc::recycle_subject(exec.apply(&s, &t)?);
        let largest = crate::exec::largest_abs(&s);
        for _ in 0..runs {
            let t0 = std::time::Instant::now();
            let out = std::hint::black_box(exec.apply_known(&s, &t, largest)?);
            steady.push(t0.elapsed().as_secs_f64());
            crate::exec::cpu::alloc::recycle_subject(out);
        }
        crate::exec::cpu::alloc::release_pool();
        rows.push(row("steady", steady));
    }
    if let Executor::Gpu(g) = exec {
        let stages = compile(&t, s.grid().expect("volumes"))?;
        let k = g.kernel_times(&s, &stages, runs)?;
        rows.push(row("resident", k.wall));
        if let Some(p) = k.passes {
            rows.push(row("kernel", p));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_adapters_have_a_bandwidth_and_others_none() {
        assert_eq!(
            super::device_bandwidth("NVIDIA H100 80GB HBM3"),
            Some(3.35e12)
        );
        assert_eq!(
            super::device_bandwidth("NVIDIA A100-SXM4-80GB"),
            Some(2.039e12)
        );
        assert_eq!(
            super::device_bandwidth("NVIDIA A100-PCIE-40GB"),
            Some(1.555e12)
        );
        assert_eq!(
            super::device_bandwidth("llvmpipe (LLVM 15.0.6, 256 bits)"),
            None
        );
    }
}
