//! Running compiled stages on the GPU: one subject, or several samples over one upload (batched
//! submissions), kernel timing for `voxaug bench`.

use super::*;
use std::sync::Arc;

/// Builds the output subject of a run from its host data (deferred outputs taken from `words`).
pub(super) fn assemble(
    subject: &Subject,
    host: &[&Volume],
    results: Vec<Option<HostData>>,
    grid: crate::grid::Grid,
    words: &mut [Option<Voxels>],
) -> Subject {
    let mut it = host.iter().zip(results).map(|(v, r)| Volume {
        data: match r {
            None => v.data.clone(),
            Some(HostData::Ready(d)) => d,
            Some(HostData::Deferred(id)) => {
                words[id].take().expect("each deferred output is read once")
            }
        },
        grid: grid.clone(),
        kind: v.kind,
        dtype: v.dtype,
    });
    let images = (0..subject.images.len())
        .map(|_| it.next().unwrap())
        .collect();
    let labels = it.collect();
    Subject {
        images,
        labels,
        names: subject.names.clone(),
    }
}

/// Whether a stage is a statistic over the label map's nonzero voxels (`"mask": "label"`).
fn is_label_masked(s: &Stage) -> bool {
    matches!(s, Stage::Intensity(op) if matches!(kernel::needs(op), Needs::LabelStats))
}

pub(super) fn cumulative(h: &[u32]) -> Vec<u64> {
    let mut c = Vec::with_capacity(h.len() + 1);
    c.push(0u64);
    for &x in h {
        c.push(c.last().unwrap() + x as u64);
    }
    c
}

/// A subject's volumes on the device (see [`GpuContext::upload_subject`]).
pub struct Uploaded<'a> {
    subject: &'a Subject,
    vols: Vec<GpuVolume>,
    /// Statistics of the uploaded volumes, shared by the samples of every batch over them.
    stats: InputStats,
}

/// Runs recorded and submitted whose outputs are still on the device (see
/// [`GpuContext::submit_batch`] and [`GpuContext::finish`]).
pub struct Pending {
    runs: Vec<(Vec<Option<HostData>>, crate::grid::Grid)>,
    deferred: Vec<DeferredRead>,
    /// A submission after every one of theirs.
    done: wgpu::SubmissionIndex,
}

/// What [`GpuContext::kernel_times`] measured, one entry per repetition, in seconds.
#[derive(Clone, Debug)]
pub struct KernelTimes {
    /// Wall clock from the first command to completion, data resident on the device.
    pub wall: Vec<f64>,
    /// Summed compute-pass durations from timestamp queries (None without `TIMESTAMP_QUERY`).
    pub passes: Option<Vec<f64>>,
    /// Each compute pass of the last repetition, in recording order (None without timestamps).
    pub last_passes: Option<Vec<f64>>,
}

/// A label map in the type the stages' label maps need (see `plan_dtype`; the CPU uses the same), as
/// uploaded: itself unless a new label value needs a wider type.
fn widened<'a>(v: &'a Volume, stages: &[Stage]) -> Result<std::borrow::Cow<'a, Volume>> {
    if v.kind != Kind::Label || !stages.iter().any(|s| matches!(s, Stage::Labels(_))) {
        return Ok(std::borrow::Cow::Borrowed(v));
    }
    let t = crate::transform::labels::plan_dtype(v, stages)?;
    if t == v.data.dtype() {
        return Ok(std::borrow::Cow::Borrowed(v));
    }
    Ok(std::borrow::Cow::Owned(crate::exec::cpu::labels::widen(
        v, t,
    )?))
}

impl GpuContext {
    /// Runs compiled stages on the GPU. Each volume's last kernel writes straight to host memory.
    pub fn run(&self, subject: &Subject, stages: &[Stage]) -> Result<Subject> {
        self.run_keyed(subject, None, stages)
    }

    /// [`run`](Self::run) of a shared subject, whose uploaded volumes stay on the device for its next
    /// run (see `pool::Resident`; `VOXAUG_GPU_RESIDENT_MB` bounds them, default 2048).
    pub fn run_shared(&self, subject: &Arc<Subject>, stages: &[Stage]) -> Result<Subject> {
        self.run_keyed(subject, Some(subject), stages)
    }

    /// Number of shared subjects with volumes resident on the device.
    pub fn resident_subjects(&self) -> usize {
        self.pool.lock().unwrap().resident.len()
    }

    /// Sets the most device memory, in bytes, that shared subjects' volumes may keep between runs
    /// (default `VOXAUG_GPU_RESIDENT_MB` MiB, else 2 GiB; 0 keeps nothing). Subjects over it are
    /// evicted at their next upload.
    pub fn set_resident_budget(&self, bytes: u64) {
        let mut pool = self.pool.lock().unwrap();
        pool.resident.budget = bytes;
        for t in pool.resident.shrink() {
            pool.give_texture(t);
        }
    }

    fn run_keyed(
        &self,
        subject: &Subject,
        key: Option<&Arc<Subject>>,
        stages: &[Stage],
    ) -> Result<Subject> {
        let pending = {
            let _one_at_a_time = self.one_at_a_time();
            {
                let mut pool = self.pool.lock().unwrap();
                for t in pool.resident.purge() {
                    pool.give_texture(t);
                }
            }
            let r = self.scoped("GPU pipeline", || self.record(subject, key, stages));
            if r.is_err() {
                // Work and resources of a failed run are not reused.
                self.discard();
            }
            r?
        };
        // Outside the run lock: another thread records and submits its run while this one waits for
        // its own outputs and copies them out (the device is never idle for that copy).
        Ok(self.finish(subject, pending)?.pop().expect("one run"))
    }

    /// Index of the last stage that changes each volume (images: any stage; labels: spatial ones).
    pub(super) fn last_touch(host: &[&Volume], stages: &[Stage]) -> Vec<Option<usize>> {
        host.iter()
            .map(|v| {
                stages.iter().rposition(|s| match s {
                    Stage::Spatial(_) => true,
                    Stage::Intensity(_) => v.kind == Kind::Image,
                    Stage::Labels(_) => v.kind == Kind::Label,
                })
            })
            .collect()
    }

    /// Records and submits one run: its outputs are read back by [`finish`](Self::finish), except
    /// where a label-masked statistic after a stage that changed the label map may need the label
    /// map back mid-run (then every output is read as its last kernel runs).
    fn record(
        &self,
        subject: &Subject,
        key: Option<&Arc<Subject>>,
        stages: &[Stage],
    ) -> Result<Pending> {
        let label_readback = !subject.labels.is_empty()
            && !self.device_statistics()
            && stages.iter().enumerate().any(|(j, s)| {
                is_label_masked(s)
                    && stages[..j]
                        .iter()
                        .any(|t| matches!(t, Stage::Spatial(_) | Stage::Labels(_)))
            });
        if !label_readback {
            *self.batch.lock().unwrap() = Some(Batch::default());
        }
        let r = self.record_inner(subject, key, stages);
        let deferred = self.batch.lock().unwrap().take().map(|b| b.deferred);
        let run = r?;
        Ok(Pending {
            runs: vec![run],
            deferred: deferred.unwrap_or_default(),
            done: self.queue_submit(None),
        })
    }

    fn record_inner(
        &self,
        subject: &Subject,
        key: Option<&Arc<Subject>>,
        stages: &[Stage],
    ) -> Result<(Vec<Option<HostData>>, crate::grid::Grid)> {
        let host: Vec<&Volume> = subject.images.iter().chain(&subject.labels).collect();
        let last_touch = Self::last_touch(&host, stages);
        let mut gpu: Vec<Option<GpuVolume>> = Vec::with_capacity(host.len());
        for (vi, (v, lt)) in host.iter().zip(&last_touch).enumerate() {
            if lt.is_none() {
                gpu.push(None);
                continue;
            }
            let w = widened(v, stages)?;
            // A widened label map is a copy made for these stages: not kept.
            let key = key.filter(|_| matches!(w, std::borrow::Cow::Borrowed(_)));
            let kept = key.and_then(|k| self.pool.lock().unwrap().resident.get(k, vi));
            gpu.push(Some(match kept {
                Some(tex) => GpuVolume {
                    tex,
                    shape: v.grid.shape,
                    kind: v.kind,
                    dtype: v.data.dtype(),
                },
                None => {
                    let up = self.upload(&w)?;
                    if let Some(k) = key {
                        let mut pool = self.pool.lock().unwrap();
                        for t in pool.resident.keep(k, vi, host.len(), &up.tex) {
                            pool.give_texture(t);
                        }
                    }
                    up
                }
            }));
        }
        // A shared subject's statistics live with its resident entry (while the subject lives).
        let stats = key.and_then(|k| self.pool.lock().unwrap().resident.stats(k));
        self.execute(subject, &host, gpu, stages, false, stats.as_deref())
    }

    /// Runs several samples' stages over one upload of `subject`: each sample's kernels go to the
    /// device in one submission (split only where a statistic must be read back) while the next sample
    /// is recorded, and all outputs are read back together at the end.
    pub fn run_batch(&self, subject: &Subject, plans: &[Vec<Stage>]) -> Result<Vec<Subject>> {
        let up = self.upload_subject(subject)?;
        let r = self.run_batch_uploaded(&up, plans);
        self.release(up);
        r
    }

    /// Gives an upload's textures back to the pool.
    pub fn release(&self, up: Uploaded<'_>) {
        let mut pool = self.pool.lock().unwrap();
        for o in up.vols {
            pool.give_texture(o.tex);
        }
    }

    /// Uploads every volume of a subject once, for [`run_batch_uploaded`](Self::run_batch_uploaded)
    /// calls over it (the upload borrows the subject, which cannot change meanwhile).
    pub fn upload_subject<'a>(&self, subject: &'a Subject) -> Result<Uploaded<'a>> {
        let _one_at_a_time = self.one_at_a_time();
        let vols = self.scoped("GPU upload", || {
            subject
                .images
                .iter()
                .chain(&subject.labels)
                .map(|v| self.upload(v))
                .collect::<Result<Vec<_>>>()
        });
        if vols.is_err() {
            // As after a failed run: what it touched is not reused.
            self.discard();
        }
        Ok(Uploaded {
            subject,
            vols: vols?,
            stats: InputStats::default(),
        })
    }

    /// [`run_batch`](Self::run_batch) over an earlier upload: batches of samples of one subject pay
    /// its upload once.
    pub fn run_batch_uploaded(
        &self,
        up: &Uploaded<'_>,
        plans: &[Vec<Stage>],
    ) -> Result<Vec<Subject>> {
        let pending = self.submit_batch(up, plans)?;
        self.finish(up.subject, pending)
    }

    /// Records and submits a batch over an earlier upload without waiting for it:
    /// [`finish`](Self::finish) reads its outputs back. Submitting the next batch before finishing
    /// this one keeps the device busy while the host copies outputs out (double-buffered readback).
    pub fn submit_batch(&self, up: &Uploaded<'_>, plans: &[Vec<Stage>]) -> Result<Pending> {
        let _one_at_a_time = self.one_at_a_time();
        *self.batch.lock().unwrap() = Some(Batch::default());
        let r = self.scoped("GPU batch", || {
            let runs = self.record_batch(up, plans)?;
            Ok((runs, self.queue_submit(None)))
        });
        let deferred = self.batch.lock().unwrap().take().map(|b| b.deferred);
        match r {
            Ok((runs, done)) => Ok(Pending {
                runs,
                deferred: deferred.unwrap_or_default(),
                done,
            }),
            Err(e) => {
                self.discard();
                Err(e)
            }
        }
    }

    fn record_batch(
        &self,
        up: &Uploaded<'_>,
        plans: &[Vec<Stage>],
    ) -> Result<Vec<(Vec<Option<HostData>>, crate::grid::Grid)>> {
        let host: Vec<&Volume> = up.subject.images.iter().chain(&up.subject.labels).collect();
        let mut runs = Vec::with_capacity(plans.len());
        for stages in plans {
            let (cb, copies) = self.device_copies(&up.vols);
            self.submit(cb);
            runs.push(self.execute(up.subject, &host, copies, stages, false, Some(&up.stats))?);
            // Submitted sample by sample: the device starts on this one while the next is recorded.
            self.flush();
        }
        Ok(runs)
    }

    /// Waits for a submitted run or batch (`subject`: the one it ran on) and reads its outputs back.
    /// Takes no run lock: other threads record and submit meanwhile, and this waits for its own
    /// submissions only.
    pub fn finish(&self, subject: &Subject, pending: Pending) -> Result<Vec<Subject>> {
        let Pending {
            runs,
            deferred,
            done,
        } = pending;
        let words = self.scoped("GPU readback", || self.read_deferred(deferred, done));
        let mut words = match words {
            Ok(w) => w,
            Err(e) => {
                let _one_at_a_time = self.run_lock.lock().unwrap();
                self.discard();
                return Err(e);
            }
        };
        let host: Vec<&Volume> = subject.images.iter().chain(&subject.labels).collect();
        Ok(runs
            .into_iter()
            .map(|(results, grid)| assemble(subject, &host, results, grid, &mut words))
            .collect())
    }

    /// Device time of the stages with the data already on the GPU and left there (no upload, no
    /// readback; statistics ops build their kernels as in a real run: on the device with f64
    /// shaders): `reps` wall-clock
    /// timings in seconds, and with timestamp queries (see [`GpuContext::has_timestamps`]) the summed
    /// duration of the compute passes of each repetition. Inputs are uploaded once and copied on the
    /// device before each repetition (not timed).
    pub fn kernel_times(
        &self,
        subject: &Subject,
        stages: &[Stage],
        reps: usize,
    ) -> Result<KernelTimes> {
        let _one_at_a_time = self.one_at_a_time();
        self.scoped("GPU kernel timing", || {
            let host: Vec<&Volume> = subject.images.iter().chain(&subject.labels).collect();
            let originals: Vec<GpuVolume> = host
                .iter()
                .map(|v| self.upload(&*widened(v, stages)?))
                .collect::<Result<_>>()?;
            let mut times = Vec::with_capacity(reps);
            let mut passes = Vec::with_capacity(reps);
            let mut last = None;
            for _ in 0..reps {
                let (cb, copies) = self.device_copies(&originals);
                let idx = self.queue_submit(Some(cb));
                self.device
                    .poll(wgpu::PollType::Wait {
                        submission_index: Some(idx),
                        timeout: None,
                    })
                    .map_err(|e| self.gpu_error(format!("waiting for the GPU failed: {e}")))?;
                self.arm_timer();
                let t0 = std::time::Instant::now();
                // Statistics are computed every time, as one run computes them.
                let run = self.execute(subject, &host, copies, stages, true, None);
                times.push(t0.elapsed().as_secs_f64());
                let timed = self.read_timer();
                run?;
                if let Some(p) = timed? {
                    passes.push(p.iter().sum());
                    last = Some(p);
                }
            }
            let mut pool = self.pool.lock().unwrap();
            for o in originals {
                pool.give_texture(o.tex);
            }
            Ok(KernelTimes {
                wall: times,
                passes: (passes.len() == reps).then_some(passes),
                last_passes: last,
            })
        })
    }

    /// The input of image `vi`'s statistic over the first label map's nonzero voxels (`"mask":
    /// "label"`). When the image and the label map are both as uploaded: statistics from the host's
    /// voxels (the CPU's function, so both executors build the same kernel; no read-back; kept in
    /// `stats` for the next samples). Else, with device statistics, the label map on the device to
    /// reduce over (`labels`: its texture, or `spare` once uploaded for this stage when no stage
    /// touches it); without them, statistics of read-back voxels (the label map's read once per stage
    /// into `label_mask`).
    #[allow(clippy::too_many_arguments)]
    fn label_masked<'g>(
        &self,
        host: &[&Volume],
        image: &GpuVolume,
        labels: Option<&'g GpuVolume>,
        spare: &'g mut Option<GpuVolume>,
        results: &[Option<HostData>],
        untouched: &[bool],
        vi: usize,
        stats: Option<&InputStats>,
        label_mask: &mut Option<Voxels>,
    ) -> Result<LabelMask<'g>> {
        let li = host
            .iter()
            .position(|v| v.kind == Kind::Label)
            .expect("a label map");
        if untouched[vi] && untouched[li] {
            let image = host[vi].data.as_f32().expect("an f32 image");
            return InputStats::moments_or(stats.map(|c| (c, vi)), StatKey::LabelMasked, || {
                Ok(kernel::label_masked_stats(image, &host[li].data))
            })
            .map(LabelMask::Stats);
        }
        if self.device_statistics() {
            return Ok(LabelMask::Device(match labels {
                Some(t) => t,
                None => {
                    if spare.is_none() {
                        *spare = Some(self.upload_queued(host[li])?);
                    }
                    spare.as_ref().expect("uploaded")
                }
            }));
        }
        if label_mask.is_none() {
            *label_mask = Some(match (labels, &results[li]) {
                (Some(t), _) => self.read_texture(t)?,
                (None, Some(HostData::Ready(d))) => d.clone(),
                (None, Some(HostData::Deferred(_))) => return Err(Error::invalid(
                    "internal: a label mask was read back in a batch (run the plans one by one)",
                )),
                (None, None) => host[li].data.clone(),
            });
        }
        let image = self.read_f32(image)?;
        Ok(LabelMask::Stats(kernel::label_masked_stats(
            &image,
            label_mask.as_ref().expect("read above"),
        )))
    }

    /// Runs the stages over uploaded volumes. Each volume's last kernel writes to host memory unless
    /// `resident` (then everything stays on the device and the call waits for completion).
    /// `stats`: statistics of the subject's volumes as uploaded, used and filled by intensity ops
    /// that reach a volume before any other stage changed it.
    pub(super) fn execute(
        &self,
        subject: &Subject,
        host: &[&Volume],
        mut gpu: Vec<Option<GpuVolume>>,
        stages: &[Stage],
        resident: bool,
        stats: Option<&InputStats>,
    ) -> Result<(Vec<Option<HostData>>, crate::grid::Grid)> {
        let last_touch = Self::last_touch(host, stages);
        // Volumes no stage has changed yet (their statistics are the upload's).
        let mut untouched = vec![true; host.len()];
        let mut results: Vec<Option<HostData>> = (0..host.len()).map(|_| None).collect();
        let mut grid = subject.grid().expect("subject has volumes").clone();
        // With device statistics, the first label map stays on the device up to the last
        // label-masked statistic (which reduces over it there), and is read back after it.
        let li = host.iter().position(|v| v.kind == Kind::Label);
        let mask_until = li
            .filter(|_| self.device_statistics())
            .and_then(|_| stages.iter().rposition(is_label_masked));
        let mut first_spatial = true;
        // The previous stage's images already went through this stage's point kernel.
        let mut fused = false;
        for (si, stage) in stages.iter().enumerate() {
            // An intensity op that needs no statistics right after a resampling pass runs inside it
            // for images (one pass instead of two, the same values; labels skip intensity ops).
            let point = match (stage, stages.get(si + 1)) {
                (Stage::Spatial(_), Some(Stage::Intensity(op))) => match kernel::needs(op) {
                    Needs::None(k) => Some(k),
                    _ => None,
                },
                _ => None,
            };
            let skip_images = std::mem::replace(&mut fused, point.is_some());
            let field = match stage {
                Stage::Spatial(SamplingMap { field: Some(d), .. }) => Some(self.build_field(d)?),
                _ => None,
            };
            // `"mask": "label"`: the first label map's current voxels, read when an image needs them
            // (without device statistics), or uploaded when no stage touches it (with them).
            let mut label_mask: Option<Voxels> = None;
            let mut spare_labels: Option<GpuVolume> = None;
            for vi in 0..host.len() {
                let Some(v) = gpu[vi].as_ref() else { continue };
                let v_shape = v.shape;
                let image = host[vi].kind == Kind::Image;
                // A fused image's pass is also the next stage's.
                let touch = if image && point.is_some() { si + 1 } else { si };
                let keep = Some(vi) == li && mask_until.is_some_and(|j| j > touch);
                let dest = if last_touch[vi] == Some(touch) && !resident && !keep {
                    Dest::Read
                } else {
                    Dest::Texture
                };
                let out = match stage {
                    Stage::Spatial(map) => {
                        let h = if first_spatial { Some(host[vi]) } else { None };
                        let outside = self.outside(map.fill, v, h)?;
                        let point = point.as_ref().filter(|_| image);
                        Some(self.resample(v, map, field.as_ref(), outside, point, dest)?)
                    }
                    Stage::Intensity(_) if image && skip_images => None,
                    Stage::Intensity(op) if image => {
                        let owned = gpu[vi].take().unwrap();
                        let label_stats = match (kernel::needs(op), li) {
                            (Needs::LabelStats, Some(li)) => Some(self.label_masked(
                                host,
                                &owned,
                                gpu[li].as_ref(),
                                &mut spare_labels,
                                &results,
                                &untouched,
                                vi,
                                stats,
                                &mut label_mask,
                            )?),
                            _ => None,
                        };
                        let input = stats.filter(|_| untouched[vi]).map(|c| (c, vi));
                        let r = self.intensity(owned, op, &grid, dest, label_stats, input);
                        let (back, out) = r?;
                        gpu[vi] = Some(back);
                        out
                    }
                    Stage::Intensity(_) => None,
                    Stage::Labels(lut) if host[vi].kind == Kind::Label => {
                        Some(self.label_lut(v, lut, dest)?)
                    }
                    Stage::Labels(_) => None,
                };
                let new_shape = match stage {
                    Stage::Spatial(map) => map.grid.shape,
                    _ => v_shape,
                };
                if out.is_some() {
                    untouched[vi] = false;
                }
                match out {
                    None => {}
                    Some(Output::Texture(tex)) => {
                        let old = gpu[vi].take().unwrap();
                        self.pool.lock().unwrap().give_texture(old.tex);
                        gpu[vi] = Some(GpuVolume {
                            tex,
                            shape: new_shape,
                            ..old
                        });
                    }
                    Some(Output::Host(voxels)) => {
                        let old = gpu[vi].take().unwrap();
                        results[vi] = Some(HostData::Ready(voxels));
                        self.pool.lock().unwrap().give_texture(old.tex);
                    }
                    Some(Output::Deferred(id)) => {
                        let old = gpu[vi].take().unwrap();
                        results[vi] = Some(HostData::Deferred(id));
                        self.pool.lock().unwrap().give_texture(old.tex);
                    }
                }
            }
            if let Some(f) = field {
                self.pool.lock().unwrap().give_texture(f.tex);
            }
            if let Some(t) = spare_labels {
                self.pool.lock().unwrap().give_texture(t.tex);
            }
            // The label map kept for label-masked statistics goes back after the last of them.
            if let Some(li) = li.filter(|_| mask_until == Some(si) && !resident) {
                // (Only if no later stage changes it.)
                if last_touch[li].is_some_and(|t| t < si) {
                    if let Some(t) = gpu[li].take() {
                        let out = self.texture_output(&t)?;
                        results[li] = Some(match out {
                            Output::Host(v) => HostData::Ready(v),
                            Output::Deferred(id) => HostData::Deferred(id),
                            Output::Texture(_) => unreachable!("read back"),
                        });
                        self.pool.lock().unwrap().give_texture(t.tex);
                    }
                }
            }
            match stage {
                Stage::Spatial(map) => {
                    grid = map.grid.clone();
                    first_spatial = false;
                }
                // The host's label values are no longer the current ones (a label fill "min").
                Stage::Labels(_) => first_spatial = false,
                Stage::Intensity(_) => {}
            }
        }
        if resident {
            self.flush();
            self.waits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| self.gpu_error(format!("waiting for the GPU failed: {e}")))?;
        }
        let mut pool = self.pool.lock().unwrap();
        for v in gpu.into_iter().flatten() {
            pool.give_texture(v.tex);
        }
        Ok((results, grid))
    }
}
