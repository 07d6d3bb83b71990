//! Volumes on the device: upload into 3D textures, z-slabs of storage buffers under the binding limit,
//! the kernels' outputs sent there or to staging (read back by `readback.rs`); dispatch and submission
//! are in `submit.rs`.

use super::*;

/// A volume living on the GPU.
pub(super) struct GpuVolume {
    pub(super) tex: wgpu::Texture,
    pub(super) shape: [usize; 3],
    pub(super) kind: Kind,
    /// The host type of its voxels: f32 images in R32Float; labels in the unsigned integer format of
    /// their width (R8Uint, R16Uint, R32Uint), signed ones as their raw bits (nearest sampling only
    /// moves them).
    pub(super) dtype: DType,
}

/// The texture format holding voxels of a host type.
pub(super) fn texel_format(dtype: DType) -> wgpu::TextureFormat {
    match dtype {
        DType::F32 | DType::F64 => wgpu::TextureFormat::R32Float,
        DType::U8 | DType::I8 => wgpu::TextureFormat::R8Uint,
        DType::U16 | DType::I16 => wgpu::TextureFormat::R16Uint,
        DType::U32 | DType::I32 => wgpu::TextureFormat::R32Uint,
    }
}

/// Bytes of one voxel of a host type on the device (f64 is held as f32).
pub(super) fn texel_size(dtype: DType) -> usize {
    dtype.size().min(4)
}

/// Where a kernel's output goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dest {
    /// Into a new texture (input of a later stage).
    Texture,
    /// Back to the host.
    Read,
}

pub(super) enum Output {
    Texture(wgpu::Texture),
    Host(Voxels),
    /// Read back later, when the batch it belongs to is resolved (index into `Batch::deferred`).
    Deferred(usize),
}

/// A 3D texture addressed from slice `z` on (copies of whole slices).
pub(super) fn slice_of(tex: &wgpu::Texture, z: usize) -> wgpu::TexelCopyTextureInfo<'_> {
    wgpu::TexelCopyTextureInfo {
        texture: tex,
        mip_level: 0,
        origin: wgpu::Origin3d {
            x: 0,
            y: 0,
            z: z as u32,
        },
        aspect: wgpu::TextureAspect::All,
    }
}

/// Row pitch, in f32 elements, of a slab buffer of f32 rows of `nx` voxels.
pub(super) fn pitch(nx: usize) -> usize {
    pitch_bytes(nx, 4) / 4
}

/// Row pitch in bytes of `nx` voxels of `size` bytes (rows copied to textures start 256-byte aligned).
pub(super) fn pitch_bytes(nx: usize, size: usize) -> usize {
    (nx * size).div_ceil(PITCH_ELEMS * 4) * PITCH_ELEMS * 4
}

pub(super) fn extent(s: [usize; 3]) -> wgpu::Extent3d {
    wgpu::Extent3d {
        width: s[0] as u32,
        height: s[1] as u32,
        depth_or_array_layers: s[2] as u32,
    }
}

impl GpuContext {
    pub(super) fn check_shape(&self, s: [usize; 3]) -> Result<()> {
        let max = self.limits.max_texture_dimension_3d as usize;
        if s.iter().any(|&n| n > max) {
            return Err(Error::Limits(format!(
                "volume shape {s:?} exceeds this GPU's 3D texture limit of {max} voxels per axis \
                 (adapter {}); use --device cpu",
                self.adapter.name
            )));
        }
        Ok(())
    }

    /// Slices per slab so that one slab buffer fits every storage binding and buffer limit.
    pub(super) fn slab_slices(&self, s: [usize; 3], size: usize) -> Result<usize> {
        let slice = (pitch_bytes(s[0], size) * s[1]) as u64;
        let cap = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            .min(MAX_SLAB_BYTES);
        if slice > cap {
            return Err(Error::Limits(format!(
                "one slice of {}x{} voxels ({slice} bytes) exceeds the GPU's storage binding limit of {cap} bytes",
                s[0], s[1]
            )));
        }
        Ok(((cap / slice) as usize).clamp(1, s[2]))
    }

    /// Image voxels computed on the host (a documented fallback) as a stage's output: uploaded into a
    /// texture, or handed back for reading.
    pub(super) fn host_output(
        &self,
        data: Voxels,
        shape: [usize; 3],
        dest: Dest,
    ) -> Result<Output> {
        Ok(match dest {
            Dest::Texture => {
                let grid = crate::grid::Grid::with_spacing(shape, [1.0; 3])?;
                let vol = Volume::from_voxels(data, grid, Kind::Image)?;
                Output::Texture(self.upload(&vol)?.tex)
            }
            Dest::Read => Output::Host(data),
        })
    }

    pub(super) fn upload(&self, v: &Volume) -> Result<GpuVolume> {
        let s = v.grid.shape;
        let dtype = v.data.dtype();
        let tex =
            self.upload_texels(s, texel_size(dtype), texel_format(dtype), v.data.as_bytes())?;
        Ok(GpuVolume {
            tex,
            shape: s,
            kind: v.kind,
            dtype,
        })
    }

    /// [`upload`](Self::upload) through the queue's own staging (`write_texture`): nothing waits for
    /// the device, so work recorded before it need not finish first (the pooled staging buffers of
    /// `upload` wait for every submission that may still use them), at the cost of a copy on one
    /// thread. For small volumes needed mid-run.
    pub(super) fn upload_queued(&self, v: &Volume) -> Result<GpuVolume> {
        let s = v.grid.shape;
        self.check_shape(s)?;
        let dtype = v.data.dtype();
        // A write goes before every command not yet submitted, and a pooled texture may still be
        // read by recorded commands: those go first.
        self.flush();
        let tex = self.pool.lock().unwrap().texture(
            &self.device,
            s.map(|n| n as u32),
            texel_format(dtype),
        );
        self.queue.write_texture(
            tex.as_image_copy(),
            v.data.as_bytes(),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some((s[0] * texel_size(dtype)) as u32),
                rows_per_image: Some(s[1] as u32),
            },
            extent(s),
        );
        Ok(GpuVolume {
            tex,
            shape: s,
            kind: v.kind,
            dtype,
        })
    }

    /// A new texture of `format` holding `bytes` (x fastest, texels of `size` bytes).
    pub(super) fn upload_texels(
        &self,
        s: [usize; 3],
        size: usize,
        format: wgpu::TextureFormat,
        bytes: &[u8],
    ) -> Result<wgpu::Texture> {
        self.check_shape(s)?;
        debug_assert_eq!(bytes.len(), s[0] * s[1] * s[2] * size);
        let tex = self
            .pool
            .lock()
            .unwrap()
            .texture(&self.device, s.map(|n| n as u32), format);
        // Slab by slab through pooled staging buffers (at most 64 MiB each, so a 512^3 volume never
        // needs a second full-size copy): rows are copied in parallel into the mapped buffer at the
        // row pitch a buffer-to-texture copy needs, then copied into the texture on the device. (wgpu's
        // write_texture stages through a fresh buffer per call, copied on one thread: most of the
        // end-to-end time of a 256^3 run on a hardware GPU.)
        let row = s[0] * size;
        let p = pitch_bytes(s[0], size);
        let slice = p * s[1];
        let per = ((64usize << 20) / slice).clamp(1, s[2]);
        for z0 in (0..s[2]).step_by(per) {
            let nz = per.min(s[2] - z0);
            let (staging, last) = self
                .pool
                .lock()
                .unwrap()
                .staging(&self.device, (slice * per) as u64);
            let used = (slice * nz) as u64;
            self.map_write_with(&staging, used, last, |dst| {
                fill_rows(&bytes[z0 * s[1] * row..(z0 + nz) * s[1] * row], row, p, dst)
            })?;
            let mut enc = self.device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: &staging,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(p as u32),
                        rows_per_image: Some(s[1] as u32),
                    },
                },
                slice_of(&tex, z0),
                extent([s[0], s[1], nz]),
            );
            // Submitted now, after what was recorded before it: the copy runs before any later
            // submission, and the staging buffer may be mapped again once it has run.
            let idx = self.queue_submit(Some(enc.finish()));
            self.pool.lock().unwrap().give_staging(staging, idx);
        }
        Ok(tex)
    }

    /// Runs a slab kernel over an output of `shape` voxels of host type `dtype` and sends the slabs to
    /// `dest`. `encode` records the dispatch for slices `z0 .. z0 + slab` into the given slab buffer
    /// (row pitch `pitch_bytes(nx, texel_size(dtype))`; packed: 4 8-bit or 2 16-bit voxels per word).
    pub(super) fn slabs(
        &self,
        shape: [usize; 3],
        dtype: DType,
        dest: Dest,
        mut encode: impl FnMut(&mut wgpu::ComputePass<'_>, &wgpu::Buffer, u32, u32),
    ) -> Result<Output> {
        if dest == Dest::Texture {
            let tex =
                self.slabs_to_texture(shape, texel_size(dtype), texel_format(dtype), encode)?;
            return Ok(Output::Texture(tex));
        }
        let size = texel_size(dtype);
        let (per, p, slab_bytes, buf) = self.slab_buffer(shape, size)?;
        let [nx, ny, nz] = shape;
        let result = if self.batching() {
            let mut slabs = Vec::new();
            for z0 in (0..nz).step_by(per) {
                let slab = per.min(nz - z0);
                let (staging, cb) =
                    self.slab_to_staging(&mut encode, &buf, z0, slab, p * ny, slab_bytes);
                self.submit(cb);
                slabs.push((staging, z0, slab));
            }
            let mut batch = self.batch.lock().unwrap();
            let b = batch.as_mut().expect("batching");
            b.deferred.push(DeferredRead {
                shape,
                dtype,
                pitch: p,
                slabs,
            });
            Output::Deferred(b.deferred.len() - 1)
        } else {
            let mut out = Voxels::output(dtype, nx * ny * nz)?;
            // Two staging buffers in flight: the GPU works on slab s + 1 while slab s is copied out.
            let mut pending: std::collections::VecDeque<(
                wgpu::Buffer,
                usize,
                usize,
                wgpu::SubmissionIndex,
            )> = Default::default();
            for z0 in (0..nz).step_by(per) {
                let slab = per.min(nz - z0);
                let (staging, cb) =
                    self.slab_to_staging(&mut encode, &buf, z0, slab, p * ny, slab_bytes);
                let idx = self.queue_submit(Some(cb));
                pending.push_back((staging, z0, slab, idx));
                if pending.len() == 2 {
                    let (s, z, n, i) = pending.pop_front().unwrap();
                    self.read_slab(s, i, [nx * size, ny], p, z, n, out.as_bytes_mut())?;
                }
            }
            while let Some((s, z, n, i)) = pending.pop_front() {
                self.read_slab(s, i, [nx * size, ny], p, z, n, out.as_bytes_mut())?;
            }
            Output::Host(out)
        };
        self.pool.lock().unwrap().give_buffer(buf);
        Ok(result)
    }

    /// The slab buffer of an output of `shape` with texels of `size` bytes: slices per slab, row pitch
    /// in bytes, slab bytes and a pooled storage buffer of that size.
    fn slab_buffer(
        &self,
        shape: [usize; 3],
        size: usize,
    ) -> Result<(usize, usize, u64, wgpu::Buffer)> {
        let per = self.slab_slices(shape, size)?;
        let p = pitch_bytes(shape[0], size);
        let slab_bytes = (p * shape[1] * per) as u64;
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let buf = self
            .pool
            .lock()
            .unwrap()
            .buffer(&self.device, slab_bytes, storage);
        Ok((per, p, slab_bytes, buf))
    }

    /// [`slabs`](Self::slabs) into a new texture of `format` (texels of `size` bytes): each slab is
    /// computed into a pooled buffer and copied into its slices.
    pub(super) fn slabs_to_texture(
        &self,
        shape: [usize; 3],
        size: usize,
        format: wgpu::TextureFormat,
        mut encode: impl FnMut(&mut wgpu::ComputePass<'_>, &wgpu::Buffer, u32, u32),
    ) -> Result<wgpu::Texture> {
        let (per, p, _, buf) = self.slab_buffer(shape, size)?;
        let [nx, ny, nz] = shape;
        let tex = self
            .pool
            .lock()
            .unwrap()
            .texture(&self.device, shape.map(|n| n as u32), format);
        let mut enc = self.device.create_command_encoder(&Default::default());
        for z0 in (0..nz).step_by(per) {
            let slab = per.min(nz - z0);
            {
                let mut pass = self.compute_pass(&mut enc);
                encode(&mut pass, &buf, z0 as u32, slab as u32);
            }
            enc.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: &buf,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(p as u32),
                        rows_per_image: Some(ny as u32),
                    },
                },
                slice_of(&tex, z0),
                extent([nx, ny, slab]),
            );
        }
        self.submit(enc.finish());
        self.pool.lock().unwrap().give_buffer(buf);
        Ok(tex)
    }

    /// Commands computing slab `z0 .. z0 + slab` into `buf` and copying it into a new staging buffer.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn slab_to_staging(
        &self,
        encode: &mut impl FnMut(&mut wgpu::ComputePass<'_>, &wgpu::Buffer, u32, u32),
        buf: &wgpu::Buffer,
        z0: usize,
        slab: usize,
        slice_bytes: usize,
        slab_bytes: u64,
    ) -> (wgpu::Buffer, wgpu::CommandBuffer) {
        let read = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        let staging = self
            .pool
            .lock()
            .unwrap()
            .buffer(&self.device, slab_bytes, read);
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = self.compute_pass(&mut enc);
            encode(&mut pass, buf, z0 as u32, slab as u32);
        }
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, (slice_bytes * slab) as u64);
        (staging, enc.finish())
    }

    /// Commands copying uploaded volumes into fresh pooled textures (each run consumes its inputs, so
    /// repeated runs over one upload start from copies made on the device).
    pub(super) fn device_copies(
        &self,
        originals: &[GpuVolume],
    ) -> (wgpu::CommandBuffer, Vec<Option<GpuVolume>>) {
        let mut enc = self.device.create_command_encoder(&Default::default());
        let mut copies = Vec::with_capacity(originals.len());
        for o in originals {
            let t = self.pool.lock().unwrap().texture(
                &self.device,
                o.shape.map(|n| n as u32),
                o.tex.format(),
            );
            enc.copy_texture_to_texture(o.tex.as_image_copy(), t.as_image_copy(), extent(o.shape));
            copies.push(Some(GpuVolume {
                tex: t,
                shape: o.shape,
                kind: o.kind,
                dtype: o.dtype,
            }));
        }
        (enc.finish(), copies)
    }
}

/// The inverse of [`copy_rows`]: packed rows of `row` bytes into `dst` at a row pitch of `pitch`
/// bytes (the padding is left as it is: no kernel reads it). Mapped memory is written, never read (it
/// may be write-combining).
fn fill_rows(src: &[u8], row: usize, pitch: usize, dst: wgpu::WriteOnly<'_, [u8]>) {
    /// Disjoint parts of one mapping, written from several threads.
    struct Part<'a>(wgpu::WriteOnly<'a, [u8]>);
    // SAFETY: a WriteOnly is a pointer and a length into mapped memory, which any thread may write;
    // wgpu implements Send for WriteOnly<T> only for sized T (an unintended bound), and the parts are
    // disjoint (split_at).
    unsafe impl Send for Part<'_> {}
    let rows = src.len() / row.max(1);
    let per = rows
        .div_ceil(copy_threads(src.len()).min(rows).max(1))
        .max(1);
    let fill = |mut d: Part<'_>, s: &[u8]| {
        for (r, s) in s.chunks_exact(row).enumerate() {
            d.0.slice(r * pitch..r * pitch + row).copy_from_slice(s);
        }
    };
    if per >= rows {
        return fill(Part(dst), src);
    }
    let mut parts = Vec::new();
    let mut rest = dst;
    while rest.len() > pitch * per {
        let (a, b) = rest.split_at(pitch * per);
        parts.push(Part(a));
        rest = b;
    }
    parts.push(Part(rest));
    std::thread::scope(|s| {
        for (d, src) in parts.into_iter().zip(src.chunks(row * per)) {
            s.spawn(move || fill(d, src));
        }
    });
}
