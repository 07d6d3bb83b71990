//! Executors: the CPU reference and the GPU (wgpu) backend run the same compiled stages.

pub mod cpu;
mod finite;
pub mod gpu;
pub mod kernel;
pub mod kspace;
pub(crate) mod math;

use crate::error::{Error, Result};
use crate::transform::{compile, Stage, Transform};
use crate::volume::Subject;
use std::borrow::Cow;
use std::sync::Arc;

pub use finite::largest_abs;
use finite::{
    check_output, copies_only, max_abs, nan_error, non_finite, replace_non_finite, Check,
};

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
    /// Leading `nan_to_num` transforms run first on the host; images with NaN or infinite voxels are
    /// refused otherwise, with a message naming `nan_to_num` (a pipeline of copies only: flips,
    /// crops, pads, axis permutations, label remaps, refuses those its output keeps: a crop may cut
    /// them away). A result with non-finite values (an intensity parameter past the float range) is
    /// refused too, never returned.
    pub fn apply(&self, subject: &Subject, transforms: &[Transform]) -> Result<Subject> {
        self.apply_checked(Cow::Borrowed(subject), transforms, Check::Scan, None)
    }

    /// [`apply`](Self::apply) to a subject the caller gives up (`voxaug apply`'s decoded files). On the
    /// CPU a leading intensity op or label map stage, and a leading `nan_to_num`, run in the subject's
    /// own buffers instead of new ones (no fresh pages, no copy of the volumes it leaves alone), and
    /// buffers a spatial stage no longer needs serve later outputs. Same results as
    /// [`apply`](Self::apply).
    pub fn apply_owned(&self, subject: Subject, transforms: &[Transform]) -> Result<Subject> {
        self.apply_checked(Cow::Owned(subject), transforms, Check::Scan, None)
    }

    /// [`apply`](Self::apply) to a subject shared through an `Arc` (a training loader's decoded
    /// subjects): on the GPU its volumes stay on the device after their upload, so later samples of
    /// the same subject skip it (up to `VOXAUG_GPU_RESIDENT_MB` of device memory, default 2048,
    /// least recently used subjects evicted first; a dropped subject's volumes are freed at the next
    /// run). `largest`: the images' largest |value| when the caller has it (from
    /// [`largest_abs`], once per subject; a finite value: the images are not scanned again), else
    /// `None` (scanned as [`apply`](Self::apply) does). Same results as [`apply`](Self::apply).
    pub fn apply_shared(
        &self,
        subject: &Arc<Subject>,
        transforms: &[Transform],
        largest: Option<f32>,
    ) -> Result<Subject> {
        let check = largest.map_or(Check::Scan, Check::known);
        self.apply_checked(Cow::Borrowed(subject), transforms, check, Some(subject))
    }

    /// [`apply`](Self::apply) for a subject whose images' largest |value| the caller has computed
    /// ([`largest_abs`]; a finite value: the images are not scanned again, and output scans are
    /// skipped where the bound allows; otherwise they are scanned as `apply` does).
    #[doc(hidden)]
    pub fn apply_known(
        &self,
        subject: &Subject,
        transforms: &[Transform],
        largest: f32,
    ) -> Result<Subject> {
        self.apply_checked(
            Cow::Borrowed(subject),
            transforms,
            Check::known(largest),
            None,
        )
    }

    /// `key`: the subject's `Arc` when it is shared (its GPU uploads are kept; see
    /// [`apply_shared`](Self::apply_shared)).
    fn apply_checked(
        &self,
        input: Cow<'_, Subject>,
        transforms: &[Transform],
        check: Check,
        key: Option<&Arc<Subject>>,
    ) -> Result<Subject> {
        if !input.same_grid() {
            return self.apply_by_grid(input, transforms, check);
        }
        let subject: &Subject = &input;
        subject.check_grids()?;
        subject.check_storage()?;
        let (input, prepared, transforms) = replace_non_finite(input, transforms)?;
        // A prepared subject is not the shared one.
        let key = key.filter(|_| !prepared);
        let subject: &Subject = &input;
        let grid = subject.grid().expect("checked non-empty").clone();
        let stages = compile(transforms, &grid)?;
        // On the CPU a leading z-score, min-max or percentile stage scans the images in its statistics
        // pass (their largest |value| comes with it); its kernels are kept for the run.
        let first = match (self, stages.first()) {
            (Executor::Cpu, Some(Stage::Intensity(op))) if !prepared => {
                cpu::intensity::scan_first(op, &subject.images)
            }
            _ => None,
        };
        // A run of copies checks its output instead of its input: it computes nothing from the
        // values, so only those it keeps matter (a crop need not read what it cuts away).
        let check_out =
            !prepared && first.is_none() && matches!(check, Check::Scan) && copies_only(&stages);
        // Largest |value| of the images (None: not known).
        let mut largest = None;
        if !prepared {
            let m = match (&first, check) {
                (Some(f), _) => Some(f.1),
                (None, Check::Bound(m)) => Some(m),
                (None, Check::Scan) if check_out => None,
                (None, Check::Scan) => Some(max_abs(subject)),
                (None, Check::Finite) => None,
            };
            if let Some(m) = m {
                if !m.is_finite() {
                    let (i, n) = non_finite(subject).expect("a non-finite value was seen");
                    return Err(nan_error(i, n));
                }
                largest = Some(m);
            }
        }
        let (out, seen) = match self {
            Executor::Cpu => {
                let first = first.as_ref().map(|f| &f.0[..]);
                match (input, check_out) {
                    (input, true) => cpu::run_checked(input, &stages, first)?,
                    (Cow::Borrowed(s), false) => (cpu::run_with(s, &stages, first)?, None),
                    (Cow::Owned(s), false) => (cpu::run_owned(s, &stages, first)?, None),
                }
            }
            Executor::Gpu(g) => (
                match key {
                    Some(k) => g.run_shared(k, &stages),
                    None => g.run(subject, &stages),
                }?,
                None,
            ),
        };
        if check_out {
            if !seen.unwrap_or_else(|| max_abs(&out)).is_finite() {
                let (i, n) = non_finite(&out).expect("a non-finite value was seen");
                return Err(nan_error(i, n));
            }
            return Ok(out);
        }
        // A bound on |value| carried through the stages: resampling blends input values with the fill
        // (`a + (b - a) t`), and an affine kernel whose f32 steps stay within a quarter of the range
        // (the first stage's, known here) maps a bound to a bound. With a bound within a quarter of the
        // f32 range nothing can overflow, and the output scan is skipped.
        let lim = (f32::MAX / 4.0) as f64;
        let mut bound = largest.map(|m| m as f64);
        for (i, s) in stages.iter().enumerate() {
            bound = match s {
                Stage::Spatial(m) => match m.fill {
                    crate::transform::Fill::Value(x) => bound.map(|b| b.max(x.abs())),
                    _ => bound,
                },
                Stage::Labels(_) => bound,
                Stage::Intensity(_) => match (&first, bound) {
                    (Some((kernels, _)), Some(b)) if i == 0 => kernels
                        .iter()
                        .map(|k| k.output_bound(b))
                        .try_fold(0f64, |acc, k| k.map(|k| acc.max(k))),
                    _ => None,
                },
            };
        }
        let safe = bound.is_some_and(|b| b <= lim);
        if !safe {
            check_output(&out)?;
        }
        Ok(out)
    }
}

impl Executor {
    /// Members on different grids: each group of members sharing a grid runs the plan up to the end of
    /// the spatial run that the leading `resample_to` opens (required: every later transform assumes one
    /// grid), so each group is pulled from its own grid in one fused pass; the rest of the plan then
    /// runs once on the members together (a label-masked statistic sees the label map).
    /// An owned subject's members move into their groups; a borrowed one's are copied.
    fn apply_by_grid(
        &self,
        subject: Cow<'_, Subject>,
        transforms: &[Transform],
        check: Check,
    ) -> Result<Subject> {
        let non_spatial = |t: &Transform| {
            matches!(t, Transform::NanToNum { .. })
                || t.intensity().is_some()
                || t.label_lut().is_some()
        };
        let lead = transforms.iter().position(|t| !non_spatial(t));
        if !matches!(
            lead.map(|i| &transforms[i]),
            Some(Transform::ResampleTo { .. })
        ) {
            subject.check_grids()?;
        }
        let lead = lead.expect("checked: a resample_to leads");
        let end = transforms[lead..]
            .iter()
            .position(non_spatial)
            .map_or(transforms.len(), |p| lead + p);
        let (transforms, rest) = transforms.split_at(end);
        let n_images = subject.images.len();
        let names = subject.names.clone();
        let grids: Vec<crate::Grid> = subject
            .images
            .iter()
            .chain(&subject.labels)
            .map(|v| v.grid.clone())
            .collect();
        let mut vols: Vec<Option<crate::Volume>> = match subject {
            Cow::Owned(s) => s.images.into_iter().chain(s.labels).map(Some).collect(),
            Cow::Borrowed(s) => s
                .images
                .iter()
                .chain(&s.labels)
                .map(|v| Some(v.clone()))
                .collect(),
        };
        let mut done = vec![false; vols.len()];
        let mut out: Vec<Option<crate::Volume>> = vec![None; vols.len()];
        for first in 0..vols.len() {
            if done[first] {
                continue;
            }
            let members: Vec<usize> = (first..vols.len())
                .filter(|&i| !done[i] && grids[i].same_as(&grids[first], 1e-4))
                .collect();
            let mut pick = |images: bool| -> Vec<crate::Volume> {
                members
                    .iter()
                    .filter(|&&i| (i < n_images) == images)
                    .map(|&i| vols[i].take().expect("each member is in one group"))
                    .collect()
            };
            let group = Subject {
                images: pick(true),
                labels: pick(false),
                names: Vec::new(),
            };
            let r = self.apply_checked(Cow::Owned(group), transforms, check, None)?;
            for (&i, v) in members.iter().zip(r.images.into_iter().chain(r.labels)) {
                done[i] = true;
                out[i] = Some(v);
            }
        }
        let mut all = out.into_iter().map(|v| v.expect("every member ran"));
        let images = all.by_ref().take(n_images).collect();
        let together = Subject {
            images,
            labels: all.collect(),
            names,
        };
        if rest.is_empty() {
            return Ok(together);
        }
        // The groups' outputs were checked (or bounded) by their runs.
        self.apply_checked(Cow::Owned(together), rest, Check::Finite, None)
    }

    /// Runs compiled stages on a subject whose images are finite (the building block of
    /// [`invert`](crate::invert::invert); most callers want [`apply`](Self::apply)).
    pub fn run_stages(&self, subject: &Subject, stages: &[Stage]) -> Result<Subject> {
        subject.check_grids()?;
        subject.check_storage()?;
        if let Some((i, n)) = non_finite(subject) {
            return Err(nan_error(i, n));
        }
        let out = match self {
            Executor::Cpu => cpu::run(subject, stages),
            Executor::Gpu(g) => g.run(subject, stages),
        }?;
        check_output(&out)?;
        Ok(out)
    }

    /// Applies several deterministic plans to one subject (augmentation samples). On the GPU the subject
    /// is uploaded once and the samples share submissions; on the CPU this is a loop.
    pub fn apply_batch(&self, subject: &Subject, plans: &[Vec<Transform>]) -> Result<Vec<Subject>> {
        self.batches(subject).apply(plans)
    }

    /// Several batches of plans over one subject (`augment`): the images are scanned once for all
    /// of them and, on the GPU, the subject is uploaded once (at the first batch that runs there).
    pub fn batches<'a>(&'a self, subject: &'a Subject) -> Batches<'a> {
        Batches {
            exec: self,
            subject,
            largest: None,
            uploaded: None,
        }
    }
}

/// Batches of samples of one subject: see [`Executor::batches`].
pub struct Batches<'a> {
    exec: &'a Executor,
    subject: &'a Subject,
    /// The images' largest |value|, scanned at the first batch.
    largest: Option<f32>,
    /// The subject on the device, from the first batch that ran there.
    uploaded: Option<gpu::Uploaded<'a>>,
}

/// A batch handed to [`Batches::submit`]: on the GPU its work is on the device, on the CPU it runs
/// when the batch is finished.
pub struct Submitted(Later);

enum Later {
    /// Computed by [`Batches::finish`] (the CPU; plans that run one by one).
    Plans(Vec<Vec<Transform>>),
    /// On the device; read back by [`Batches::finish`].
    Gpu(gpu::Pending),
}

impl Batches<'_> {
    /// Applies a batch of deterministic plans: the same results as [`Executor::apply`] on each.
    pub fn apply(&mut self, plans: &[Vec<Transform>]) -> Result<Vec<Subject>> {
        let s = self.submit(plans)?;
        self.finish(s)
    }

    /// Starts a batch without waiting for its outputs; [`finish`](Self::finish) returns them (what
    /// [`apply`](Self::apply) would). On the GPU the batch is recorded and submitted here, so
    /// submitting batch k + 1 before finishing batch k keeps the device busy while the host copies
    /// batch k's outputs out; on the CPU the work happens in `finish` (nothing runs ahead, so a
    /// finished batch's buffers can serve the next one's outputs).
    pub fn submit(&mut self, plans: &[Vec<Transform>]) -> Result<Submitted> {
        let later = || Ok(Submitted(Later::Plans(plans.to_vec())));
        let Executor::Gpu(g) = self.exec else {
            return later();
        };
        let subject = self.subject;
        if !subject.same_grid() {
            return later();
        }
        subject.check_grids()?;
        subject.check_storage()?;
        let needs_host = plans
            .iter()
            .any(|p| matches!(p.first(), Some(Transform::NanToNum { .. })));
        if needs_host || !self.largest().is_finite() {
            return later();
        }
        let grid = subject.grid().expect("checked non-empty").clone();
        let stages = plans
            .iter()
            .map(|t| compile(t, &grid))
            .collect::<Result<Vec<_>>>()?;
        // Label value maps may widen a label map's type per plan, and label-masked statistics read
        // the label map back mid-plan without device statistics: those run one by one.
        let one_by_one = stages.iter().flatten().any(|s| match s {
            Stage::Labels(_) => true,
            Stage::Intensity(op) => {
                matches!(kernel::needs(op), kernel::Needs::LabelStats) && !g.device_statistics()
            }
            Stage::Spatial(_) => false,
        });
        if one_by_one {
            return later();
        }
        let up = match self.uploaded.take() {
            Some(up) => up,
            None => g.upload_subject(subject)?,
        };
        let pending = g.submit_batch(&up, &stages);
        // A failed run cleared the pool: upload again next time.
        if pending.is_ok() {
            self.uploaded = Some(up);
        }
        Ok(Submitted(Later::Gpu(pending?)))
    }

    /// The outputs of a batch from [`submit`](Self::submit) (batches may be finished in any order).
    pub fn finish(&mut self, s: Submitted) -> Result<Vec<Subject>> {
        let (exec, subject) = (self.exec, self.subject);
        match s.0 {
            Later::Gpu(pending) => {
                let Executor::Gpu(g) = exec else {
                    unreachable!("submitted on the GPU")
                };
                let outs = g.finish(subject, pending);
                if outs.is_err() {
                    // The failure cleared the pool: upload again next time.
                    self.uploaded = None;
                }
                let outs = outs?;
                for o in &outs {
                    check_output(o)?;
                }
                Ok(outs)
            }
            Later::Plans(plans) => {
                if !subject.same_grid() {
                    return plans.iter().map(|t| exec.apply(subject, t)).collect();
                }
                subject.check_grids()?;
                subject.check_storage()?;
                let needs_host = plans
                    .iter()
                    .any(|p| matches!(p.first(), Some(Transform::NanToNum { .. })));
                let largest = self.largest();
                if needs_host || !largest.is_finite() {
                    return plans.iter().map(|t| exec.apply(subject, t)).collect();
                }
                // The images were scanned once: the samples need not scan them again.
                plans
                    .iter()
                    .map(|t| exec.apply_known(subject, t, largest))
                    .collect()
            }
        }
    }

    /// The images' largest |value|, scanned once.
    fn largest(&mut self) -> f32 {
        let subject = self.subject;
        *self.largest.get_or_insert_with(|| max_abs(subject))
    }
}

impl Drop for Batches<'_> {
    fn drop(&mut self) {
        if let (Some(up), Executor::Gpu(g)) = (self.uploaded.take(), self.exec) {
            g.release(up);
        }
    }
}

/// Opens the GPU executor (best adapter, or the first whose name contains `adapter`).
pub fn gpu(adapter: Option<&str>) -> Result<Executor> {
    Ok(Executor::Gpu(Arc::new(gpu::GpuContext::open(adapter)?)))
}

/// Chooses an executor from a device name (`auto`, `cpu`, `gpu`). `auto` takes a hardware GPU when one
/// opens; otherwise it runs on the CPU and returns a one-line note saying why (the rule is
/// [`auto_cpu_reason`], which `voxaug devices` also prints). `--adapter` or `gpu` use whatever adapter
/// is named or found.
pub fn select(device: &str, adapter: Option<&str>) -> Result<(Executor, Option<String>)> {
    let on_cpu = |why: String| {
        Ok((
            Executor::Cpu,
            Some(format!("voxaug: running on the CPU: {why}")),
        ))
    };
    match device {
        "cpu" => Ok((Executor::Cpu, None)),
        "gpu" => Ok((gpu(adapter)?, None)),
        "auto" => {
            if adapter.is_none() {
                if let Some(why) = auto_cpu_reason(gpu::hardware_possible(), gpu::list_adapters) {
                    return on_cpu(why);
                }
            }
            match gpu(adapter) {
                Ok(e) => Ok((e, None)),
                Err(e) => on_cpu(format!("no usable GPU ({e})")),
            }
        }
        other => Err(Error::InvalidInput(format!(
            "unknown device `{other}` (expected auto, cpu or gpu)"
        ))),
    }
}

/// Why `--device auto` (no `--adapter`) runs on the CPU, or `None` when it opens the best adapter: the
/// one rule that [`select`] follows and `voxaug devices` explains. `hardware_possible` is
/// [`gpu::hardware_possible`]: without a GPU device node on Linux only software renderers could open,
/// and `adapters` (best first, [`gpu::list_adapters`]) is never called, since listing starts the
/// Vulkan loader. A software renderer (lavapipe/llvmpipe) runs on the same CPU cores and is slower
/// than the CPU executor, so `auto` never picks one.
pub fn auto_cpu_reason(
    hardware_possible: bool,
    adapters: impl FnOnce() -> Vec<gpu::AdapterSummary>,
) -> Option<String> {
    if !hardware_possible {
        return Some(format!(
            "no GPU device node ({}); --device gpu uses a software renderer such as lavapipe if one \
             is installed",
            gpu::DEVICE_NODES
        ));
    }
    match adapters().first() {
        None => Some("no GPU adapter found".to_string()),
        Some(a) if a.device_type == "Cpu" => Some(format!(
            "the best GPU adapter is a software renderer ({}), slower than the CPU executor; \
             --device gpu uses it anyway",
            a.name
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod auto_tests {
    use super::auto_cpu_reason;
    use crate::exec::gpu::AdapterSummary;

    fn adapter(name: &str, device_type: &str) -> AdapterSummary {
        AdapterSummary {
            name: name.into(),
            backend: "Vulkan".into(),
            device_type: device_type.into(),
            driver: String::new(),
            driver_info: String::new(),
            max_texture_dimension_3d: 2048,
            max_storage_buffer_binding_size: 128 << 20,
            max_buffer_size: 1 << 30,
        }
    }

    #[test]
    fn auto_never_lists_adapters_without_a_device_node() {
        let why = auto_cpu_reason(false, || panic!("the Vulkan loader must not start")).unwrap();
        assert!(why.contains("no GPU device node"), "{why}");
        assert!(why.contains("/dev/nvidia*"), "{why}");
    }

    #[test]
    fn auto_picks_a_hardware_adapter_and_explains_every_cpu_choice() {
        let h100 = adapter("NVIDIA H100 80GB HBM3", "DiscreteGpu");
        let lvp = adapter("llvmpipe (LLVM 15.0.6, 256 bits)", "Cpu");
        assert_eq!(
            auto_cpu_reason(true, || vec![h100.clone(), lvp.clone()]),
            None
        );
        let why = auto_cpu_reason(true, || vec![lvp.clone()]).unwrap();
        assert!(why.contains("software renderer (llvmpipe"), "{why}");
        assert!(why.contains("--device gpu uses it"), "{why}");
        let why = auto_cpu_reason(true, Vec::new).unwrap();
        assert_eq!(why, "no GPU adapter found");
    }
}
