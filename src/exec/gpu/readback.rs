//! Staging memory on the host's side: mapping (and the wait it needs), reading outputs back (now, or
//! deferred to the end of a run or batch and done outside the run lock) and the multi-threaded row
//! copies in and out of mapped memory.

use super::*;

/// A volume's host data after a run: ready, or waiting for its batch to be read back.
pub(super) enum HostData {
    Ready(Voxels),
    Deferred(usize),
}

/// Slabs of one output waiting in staging buffers.
pub(super) struct DeferredRead {
    pub(super) shape: [usize; 3],
    pub(super) dtype: DType,
    /// Row pitch in bytes.
    pub(super) pitch: usize,
    pub(super) slabs: Vec<(wgpu::Buffer, usize, usize)>,
}

/// Outputs of several samples recorded into shared submissions, read back all at once when the batch
/// ends.
#[derive(Default)]
pub(crate) struct Batch {
    pub(super) deferred: Vec<DeferredRead>,
}

impl GpuContext {
    /// An image texture read back as f32 values.
    pub(super) fn read_f32(&self, v: &GpuVolume) -> Result<Vec<f32>> {
        match self.read_texture(v)? {
            Voxels::F32(x) => Ok(x.into_owned_vec()),
            _ => Err(Error::invalid("intensity ops apply to float32 images only")),
        }
    }

    /// Maps a staging buffer once its submission is done and copies its rows (without padding) out.
    /// `row_ny`: bytes of a row without padding, rows per slice; `p`: row pitch in bytes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn read_slab(
        &self,
        staging: wgpu::Buffer,
        idx: wgpu::SubmissionIndex,
        row_ny: [usize; 2],
        p: usize,
        z0: usize,
        slab: usize,
        out: &mut [u8],
    ) -> Result<()> {
        let [row, ny] = row_ny;
        let bytes = (p * ny * slab) as u64;
        self.map_read_with(&staging, bytes, Some(idx), |src| {
            copy_rows(src, p, row, &mut out[z0 * ny * row..(z0 + slab) * ny * row])
        })?;
        self.pool.lock().unwrap().give_buffer(staging);
        Ok(())
    }

    /// Maps the first `bytes` of a MAP_READ buffer and returns them as words.
    pub(super) fn map_read(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        idx: Option<wgpu::SubmissionIndex>,
    ) -> Result<Vec<u32>> {
        self.map_read_with(staging, bytes, idx, |b| {
            bytemuck::cast_slice::<u8, u32>(b).to_vec()
        })
    }

    /// Maps `slice` for `mode` once submission `idx` (None: all submitted work) has run; `what` names
    /// the buffer in errors.
    fn map_and_wait(
        &self,
        slice: &wgpu::BufferSlice<'_>,
        mode: wgpu::MapMode,
        idx: Option<wgpu::SubmissionIndex>,
        what: &str,
    ) -> Result<()> {
        self.waits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        slice.map_async(mode, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: idx,
                timeout: None,
            })
            .map_err(|e| self.gpu_error(format!("waiting for the GPU failed: {e}")))?;
        match pollster::block_on(rx.receive()) {
            Some(Ok(())) => Ok(()),
            _ => Err(self.gpu_error(format!("could not map {what}"))),
        }
    }

    /// Maps the first `bytes` of a MAP_WRITE buffer once submission `last` (the last to use it) has
    /// run (None: the buffer is new and mapped at creation), lets `f` fill them and unmaps it.
    pub(super) fn map_write_with(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        last: Option<wgpu::SubmissionIndex>,
        f: impl FnOnce(wgpu::WriteOnly<'_, [u8]>),
    ) -> Result<()> {
        let slice = staging.slice(..bytes);
        if last.is_some() {
            self.map_and_wait(&slice, wgpu::MapMode::Write, last, "an upload buffer")?;
        }
        {
            let mut view = slice
                .get_mapped_range_mut()
                .map_err(|e| self.gpu_error(format!("mapping an upload buffer: {e}")))?;
            f(view.slice(..));
        }
        staging.unmap();
        Ok(())
    }

    /// Maps the first `bytes` of a MAP_READ buffer and hands them to `f`.
    pub(super) fn map_read_with<R>(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        idx: Option<wgpu::SubmissionIndex>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        // Work a batch has recorded must run before anything it produced can be read.
        self.flush();
        let slice = staging.slice(..bytes);
        self.map_and_wait(&slice, wgpu::MapMode::Read, idx, "a readback buffer")?;
        let r = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| self.gpu_error(format!("mapping a readback buffer: {e}")))?;
            f(&view)
        };
        staging.unmap();
        Ok(r)
    }

    /// Reads a whole texture back (rare path: label minimum after an earlier resampling; host-side
    /// intensity maps).
    /// A volume's texture back to the host as a run's output: with the batch's deferred reads when
    /// batching, else now.
    pub(super) fn texture_output(&self, v: &GpuVolume) -> Result<Output> {
        if !self.batching() {
            return Ok(Output::Host(self.read_texture(v)?));
        }
        let (staging, p, cb) = self.texture_to_staging(v);
        self.submit(cb);
        let mut batch = self.batch.lock().unwrap();
        let b = batch.as_mut().expect("batching");
        b.deferred.push(DeferredRead {
            shape: v.shape,
            dtype: v.dtype,
            pitch: p,
            slabs: vec![(staging, 0, v.shape[2])],
        });
        Ok(Output::Deferred(b.deferred.len() - 1))
    }

    /// Commands copying a volume's texture into a new staging buffer at the row pitch such copies
    /// need; returns the buffer, the pitch in bytes and the commands.
    fn texture_to_staging(&self, v: &GpuVolume) -> (wgpu::Buffer, usize, wgpu::CommandBuffer) {
        let [nx, ny, nz] = v.shape;
        let p = pitch_bytes(nx, texel_size(v.dtype));
        let staging = self.scratch((p * ny * nz) as u64, true);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_texture_to_buffer(
            slice_of(&v.tex, 0),
            wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(p as u32),
                    rows_per_image: Some(ny as u32),
                },
            },
            extent(v.shape),
        );
        (staging, p, enc.finish())
    }

    pub(super) fn read_texture(&self, v: &GpuVolume) -> Result<Voxels> {
        let [nx, ny, nz] = v.shape;
        let size = texel_size(v.dtype);
        let (staging, p, cb) = self.texture_to_staging(v);
        let bytes = (p * ny * nz) as u64;
        let idx = Some(self.queue_submit(Some(cb)));
        let mut out = Voxels::output(v.dtype, nx * ny * nz)?;
        self.map_read_with(&staging, bytes, idx, |src| {
            copy_rows(src, p, nx * size, out.as_bytes_mut())
        })?;
        self.pool.lock().unwrap().give_buffer(staging);
        Ok(out)
    }

    /// Maps every staging buffer of a batch at once, waits once (for submission `done`, which follows
    /// every one of theirs: not for work submitted since), and copies the rows out.
    pub(super) fn read_deferred(
        &self,
        deferred: Vec<DeferredRead>,
        done: wgpu::SubmissionIndex,
    ) -> Result<Vec<Option<Voxels>>> {
        let mut receivers = Vec::new();
        for d in &deferred {
            for (staging, _, slab) in &d.slabs {
                let bytes = (d.pitch * d.shape[1] * slab) as u64;
                let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
                staging
                    .slice(..bytes)
                    .map_async(wgpu::MapMode::Read, move |r| {
                        let _ = tx.send(r);
                    });
                receivers.push(rx);
            }
        }
        self.waits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(done),
                timeout: None,
            })
            .map_err(|e| self.gpu_error(format!("waiting for the GPU failed: {e}")))?;
        for rx in receivers {
            match pollster::block_on(rx.receive()) {
                Some(Ok(())) => {}
                _ => return Err(self.gpu_error("could not map a readback buffer".into())),
            }
        }
        let mut out = Vec::with_capacity(deferred.len());
        for d in deferred {
            let [nx, ny, nz] = d.shape;
            let row = nx * texel_size(d.dtype);
            let mut voxels = Voxels::output(d.dtype, nx * ny * nz)?;
            for (staging, z0, slab) in d.slabs {
                let bytes = (d.pitch * ny * slab) as u64;
                {
                    let view = staging
                        .slice(..bytes)
                        .get_mapped_range()
                        .map_err(|e| self.gpu_error(format!("mapping a readback buffer: {e}")))?;
                    let dst = &mut voxels.as_bytes_mut()[z0 * ny * row..(z0 + slab) * ny * row];
                    copy_rows(&view, d.pitch, row, dst);
                }
                staging.unmap();
                self.pool.lock().unwrap().give_buffer(staging);
            }
            out.push(Some(voxels));
        }
        Ok(out)
    }
}

// The copies run on scoped threads of their own, not on rayon: uploads and immediate readbacks run
// while the context's run lock is held, and a rayon worker of the caller's pool that waited for them
// could pick up another task of its pool that needs that lock (the Python loader's workers deadlocked
// so).

/// Threads for copying `bytes` in or out of mapped staging memory: one below 4 MiB (spawning costs
/// more), else up to 16.
pub(super) fn copy_threads(bytes: usize) -> usize {
    if bytes < 4 << 20 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(16))
    }
}

/// Copies rows of `row` bytes from a buffer with a row pitch of `pitch` bytes into a packed `dst`, on
/// several threads (one thread moves a few GB/s out of mapped memory; the readback of a 256^3 volume
/// took longer than its kernel on a hardware GPU).
fn copy_rows(src: &[u8], pitch: usize, row: usize, dst: &mut [u8]) {
    let rows = dst.len() / row.max(1);
    let per = rows
        .div_ceil(copy_threads(dst.len()).min(rows).max(1))
        .max(1);
    let copy = |t: usize, d: &mut [u8]| {
        for (r, d) in d.chunks_exact_mut(row).enumerate() {
            let at = (t * per + r) * pitch;
            d.copy_from_slice(&src[at..at + row]);
        }
    };
    if per >= rows {
        return copy(0, dst);
    }
    std::thread::scope(|s| {
        for (t, d) in dst.chunks_mut(per * row).enumerate() {
            s.spawn(move || copy(t, d));
        }
    });
}
