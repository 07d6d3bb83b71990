//! The GPU executor (wgpu, WGSL compute shaders). Volumes are uploaded once as 3D textures (R32Float for
//! images, R32Uint for label maps); each stage reads textures and writes z-slabs of a row-padded storage
//! buffer, which is copied into the next texture or read back. Slabs keep every storage binding under
//! the device's limit (128 MiB on lavapipe), so volume size is bounded by texture limits only.

mod context;
mod pipelines;
mod pool;

pub use context::{list_adapters, AdapterSummary, GpuContext, NO_ADAPTER};

use crate::error::{Error, Result};
use crate::exec::cpu::intensity::{self as cpu_int, Needs, PointKernel};
use crate::exec::cpu::resample::Outside;
use crate::transform::{Fill, IntensityOp, SamplingMap, Stage};
use crate::volume::{Kind, Subject, Volume};
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

/// Largest slab buffer, whatever the device allows.
const MAX_SLAB_BYTES: u64 = 256 << 20;
/// Row pitch alignment of buffers that are copied to or from textures, in f32/u32 elements.
const PITCH_ELEMS: usize = (wgpu::COPY_BYTES_PER_ROW_ALIGNMENT / 4) as usize;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ResampleParams {
    m: [[f32; 4]; 3],
    in_shape: [u32; 4],
    out_shape: [u32; 4],
    fill: f32,
    edge: u32,
    pitch: u32,
    slab: u32,
    post: [[f32; 4]; 3],
    fshape: [u32; 4],
    fstep: [f32; 4],
    foffset: [f32; 4],
    fscale: [f32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct NoiseParams {
    shape: [u32; 4],
    seed: [u32; 2],
    stream: u32,
    pitch: u32,
    slab: u32,
    pad: [u32; 3],
}

/// A displacement field on the device: three R32Float component textures and their layout.
struct GpuField {
    comp: [wgpu::Texture; 3],
    layout: crate::exec::cpu::field::Layout,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ReduceParams {
    shape: [u32; 4],
    mask_nonzero: u32,
    partials: u32,
    groups_x: u32,
    filter_bin: i32,
    hmin: f32,
    hscale: f32,
    h1min: f32,
    h1scale: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ElementParams {
    shape: [u32; 4],
    sub: f32,
    mul: f32,
    add: f32,
    lo: f32,
    hi: f32,
    skip_zero: u32,
    pitch: u32,
    slab: u32,
    gamma: f32,
    post: f32,
    noise_std: f32,
    noise_mean: f32,
    seed: [u32; 2],
    bias_order: u32,
    pad: u32,
    bias: [[f32; 4]; 14],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct BlurParams {
    shape: [u32; 4],
    axis: u32,
    radius: u32,
    pitch: u32,
    slab: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
struct Partial {
    count: u32,
    mean: f32,
    m2: f32,
    min: f32,
    max: f32,
    pad: [u32; 3],
}

/// A volume living on the GPU.
struct GpuVolume {
    tex: wgpu::Texture,
    shape: [usize; 3],
    kind: Kind,
    /// Label texels hold i32 bits (some label is negative).
    signed: bool,
}

/// Where a kernel's output goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// Into a new texture (input of a later stage).
    Texture,
    /// Back to the host.
    Read,
}

enum Output {
    Texture(wgpu::Texture),
    Host(Vec<u32>),
    /// Read back later, when the batch it belongs to is resolved (index into `Batch::deferred`).
    Deferred(usize),
}

/// A volume's host data after a run: ready, or waiting for its batch to be read back.
enum HostData {
    Ready(Vec<f32>),
    Deferred { id: usize, kind: Kind, signed: bool },
}

/// Slabs of one output waiting in staging buffers.
struct DeferredRead {
    shape: [usize; 3],
    pitch: usize,
    slabs: Vec<(wgpu::Buffer, usize, usize)>,
}

/// Command buffers recorded while several samples are batched: submitted together when a statistic
/// must be read back or the batch ends, outputs read back all at once at the end.
#[derive(Default)]
pub(crate) struct Batch {
    cmds: Vec<wgpu::CommandBuffer>,
    deferred: Vec<DeferredRead>,
}

/// A 3D texture addressed from slice `z` on (copies of whole slices).
fn slice_of(tex: &wgpu::Texture, z: usize) -> wgpu::TexelCopyTextureInfo<'_> {
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

fn pitch(nx: usize) -> usize {
    nx.div_ceil(PITCH_ELEMS) * PITCH_ELEMS
}

fn extent(s: [usize; 3]) -> wgpu::Extent3d {
    wgpu::Extent3d {
        width: s[0] as u32,
        height: s[1] as u32,
        depth_or_array_layers: s[2] as u32,
    }
}

impl GpuContext {
    fn check_shape(&self, s: [usize; 3]) -> Result<()> {
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
    fn slab_slices(&self, s: [usize; 3]) -> Result<usize> {
        let slice = (pitch(s[0]) * s[1] * 4) as u64;
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

    fn upload(&self, v: &Volume) -> Result<GpuVolume> {
        let s = v.grid.shape;
        self.check_shape(s)?;
        let (format, signed) = match v.kind {
            Kind::Image => (wgpu::TextureFormat::R32Float, false),
            Kind::Label => (
                wgpu::TextureFormat::R32Uint,
                v.data.iter().any(|&x| x < 0.0),
            ),
        };
        let tex = self
            .pool
            .lock()
            .unwrap()
            .texture(&self.device, s.map(|n| n as u32), format);
        // Upload slab by slab: write_texture stages its data, and whole 512^3 volumes would double memory.
        let per_slab = ((64usize << 20) / (s[0] * s[1] * 4)).max(1);
        let slice = s[0] * s[1];
        let mut words: Vec<u32> = Vec::new();
        for z0 in (0..s[2]).step_by(per_slab) {
            let nz = per_slab.min(s[2] - z0);
            let part = &v.data[z0 * slice..(z0 + nz) * slice];
            let bytes: &[u8] = match v.kind {
                Kind::Image => bytemuck::cast_slice(part),
                Kind::Label => {
                    words.clear();
                    words.extend(
                        part.iter()
                            .map(|&x| if signed { x as i32 as u32 } else { x as u32 }),
                    );
                    bytemuck::cast_slice(&words)
                }
            };
            self.queue.write_texture(
                slice_of(&tex, z0),
                bytes,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(s[0] as u32 * 4),
                    rows_per_image: Some(s[1] as u32),
                },
                extent([s[0], s[1], nz]),
            );
        }
        Ok(GpuVolume {
            tex,
            shape: s,
            kind: v.kind,
            signed,
        })
    }

    /// Binds `params` (binding 0) and `resources` (bindings 1, 2, ...) and dispatches an (8, 8, 4)
    /// workgroup kernel over `nx x ny x slab` voxels: the shape every slab kernel shares.
    #[allow(clippy::too_many_arguments)]
    fn dispatch_slab<T: Pod>(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        pipe: &wgpu::ComputePipeline,
        layout: &wgpu::BindGroupLayout,
        params: &T,
        resources: Vec<wgpu::BindingResource<'_>>,
        nxy: [usize; 2],
        slab: u32,
    ) {
        let bg = self.bind(layout, params, resources);
        pass.set_pipeline(pipe);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(
            (nxy[0] as u32).div_ceil(8),
            (nxy[1] as u32).div_ceil(8),
            slab.div_ceil(4),
        );
    }

    /// A bind group of `params` (binding 0, uniform) followed by `resources` (bindings 1, 2, ...).
    fn bind<T: Pod>(
        &self,
        layout: &wgpu::BindGroupLayout,
        params: &T,
        resources: Vec<wgpu::BindingResource<'_>>,
    ) -> wgpu::BindGroup {
        let ub = self.uniform(params);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: ub.as_entire_binding(),
        }];
        entries.extend(resources.into_iter().enumerate().map(|(i, resource)| {
            wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource,
            }
        }));
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout,
            entries: &entries,
        })
    }

    /// Submits now, or records into the current batch (then `None`).
    fn submit(&self, cb: wgpu::CommandBuffer) -> Option<wgpu::SubmissionIndex> {
        let mut batch = self.batch.lock().unwrap();
        match batch.as_mut() {
            Some(b) => {
                b.cmds.push(cb);
                None
            }
            None => Some(self.queue.submit([cb])),
        }
    }

    /// Submits everything a batch recorded so far, in one submission.
    fn flush(&self) {
        let cmds: Vec<wgpu::CommandBuffer> = match self.batch.lock().unwrap().as_mut() {
            Some(b) => b.cmds.drain(..).collect(),
            None => return,
        };
        if !cmds.is_empty() {
            self.queue.submit(cmds);
        }
    }

    fn batching(&self) -> bool {
        self.batch.lock().unwrap().is_some()
    }

    fn uniform<T: Pod>(&self, v: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("voxaug params"),
                contents: bytemuck::bytes_of(v),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// Runs a slab kernel over an output of `shape` and sends the slabs to `dest`. `encode` records the
    /// dispatch for slices `z0 .. z0 + slab` into the given slab buffer (row pitch `pitch(nx)`).
    fn slabs(
        &self,
        shape: [usize; 3],
        format: wgpu::TextureFormat,
        dest: Dest,
        mut encode: impl FnMut(&mut wgpu::ComputePass<'_>, &wgpu::Buffer, u32, u32),
    ) -> Result<Output> {
        let per = self.slab_slices(shape)?;
        let [nx, ny, nz] = shape;
        let p = pitch(nx);
        let slab_bytes = (p * ny * per * 4) as u64;
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let buf = self
            .pool
            .lock()
            .unwrap()
            .buffer(&self.device, slab_bytes, storage);
        let result = match dest {
            Dest::Texture => {
                let tex = self.pool.lock().unwrap().texture(
                    &self.device,
                    shape.map(|n| n as u32),
                    format,
                );
                let mut enc = self.device.create_command_encoder(&Default::default());
                for z0 in (0..nz).step_by(per) {
                    let slab = per.min(nz - z0);
                    {
                        let mut pass = enc.begin_compute_pass(&Default::default());
                        encode(&mut pass, &buf, z0 as u32, slab as u32);
                    }
                    enc.copy_buffer_to_texture(
                        wgpu::TexelCopyBufferInfo {
                            buffer: &buf,
                            layout: wgpu::TexelCopyBufferLayout {
                                offset: 0,
                                bytes_per_row: Some(p as u32 * 4),
                                rows_per_image: Some(ny as u32),
                            },
                        },
                        slice_of(&tex, z0),
                        extent([nx, ny, slab]),
                    );
                }
                self.submit(enc.finish());
                Output::Texture(tex)
            }
            Dest::Read if self.batching() => {
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
                    pitch: p,
                    slabs,
                });
                Output::Deferred(b.deferred.len() - 1)
            }
            Dest::Read => {
                let mut out = vec![0u32; nx * ny * nz];
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
                    let idx = self.queue.submit([cb]);
                    pending.push_back((staging, z0, slab, idx));
                    if pending.len() == 2 {
                        let (s, z, n, i) = pending.pop_front().unwrap();
                        self.read_slab(s, i, [nx, ny], p, z, n, &mut out)?;
                    }
                }
                while let Some((s, z, n, i)) = pending.pop_front() {
                    self.read_slab(s, i, [nx, ny], p, z, n, &mut out)?;
                }
                Output::Host(out)
            }
        };
        self.pool.lock().unwrap().give_buffer(buf);
        Ok(result)
    }

    /// Commands computing slab `z0 .. z0 + slab` into `buf` and copying it into a new staging buffer.
    #[allow(clippy::too_many_arguments)]
    fn slab_to_staging(
        &self,
        encode: &mut impl FnMut(&mut wgpu::ComputePass<'_>, &wgpu::Buffer, u32, u32),
        buf: &wgpu::Buffer,
        z0: usize,
        slab: usize,
        slice_elems: usize,
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
            let mut pass = enc.begin_compute_pass(&Default::default());
            encode(&mut pass, buf, z0 as u32, slab as u32);
        }
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, (slice_elems * slab * 4) as u64);
        (staging, enc.finish())
    }

    /// Maps a staging buffer once its submission is done and copies its rows (without padding) out.
    #[allow(clippy::too_many_arguments)]
    fn read_slab(
        &self,
        staging: wgpu::Buffer,
        idx: wgpu::SubmissionIndex,
        nxy: [usize; 2],
        p: usize,
        z0: usize,
        slab: usize,
        out: &mut [u32],
    ) -> Result<()> {
        let [nx, ny] = nxy;
        let bytes = (p * ny * slab * 4) as u64;
        let words = self.map_read(&staging, bytes, Some(idx))?;
        for r in 0..ny * slab {
            let dst = (z0 * ny + r) * nx;
            out[dst..dst + nx].copy_from_slice(&words[r * p..r * p + nx]);
        }
        self.pool.lock().unwrap().give_buffer(staging);
        Ok(())
    }

    /// Maps the first `bytes` of a MAP_READ buffer and returns them as words.
    fn map_read(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        idx: Option<wgpu::SubmissionIndex>,
    ) -> Result<Vec<u32>> {
        // Work a batch has recorded must run before anything it produced can be read.
        self.flush();
        let slice = staging.slice(..bytes);
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: idx,
                timeout: None,
            })
            .map_err(|e| self.gpu_error(format!("waiting for the GPU failed: {e}")))?;
        match pollster::block_on(rx.receive()) {
            Some(Ok(())) => {}
            _ => return Err(self.gpu_error("could not map a readback buffer".into())),
        }
        let words = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| self.gpu_error(format!("mapping a readback buffer: {e}")))?;
            bytemuck::cast_slice::<u8, u32>(&view).to_vec()
        };
        staging.unmap();
        Ok(words)
    }

    fn resample(
        &self,
        v: &GpuVolume,
        map: &SamplingMap,
        field: Option<&GpuField>,
        outside: Outside,
        dest: Dest,
    ) -> Result<Output> {
        let out_shape = map.grid.shape;
        self.check_shape(out_shape)?;
        let (m, post) = match field {
            None => (map.total(), crate::grid::IDENTITY),
            Some(_) => (map.matrix, map.post),
        };
        let m = [0, 1, 2].map(|r| m[r].map(|x| x as f32));
        let post = [0, 1, 2].map(|r| post[r].map(|x| x as f32));
        let dummy = match field {
            Some(_) => None,
            None => Some(self.pool.lock().unwrap().texture(
                &self.device,
                [1, 1, 1],
                wgpu::TextureFormat::R32Float,
            )),
        };
        let field_views: [wgpu::TextureView; 3] = match (field, &dummy) {
            (Some(f), _) => [0, 1, 2].map(|a| f.comp[a].create_view(&Default::default())),
            (None, Some(d)) => [0, 1, 2].map(|_| d.create_view(&Default::default())),
            (None, None) => unreachable!(),
        };
        let (fshape, fstep, foffset, fscale) = match field {
            Some(f) => {
                let l = &f.layout;
                (
                    [l.shape[0] as u32, l.shape[1] as u32, l.shape[2] as u32, 1],
                    [l.step[0], l.step[1], l.step[2], 1.0],
                    [l.offset[0], l.offset[1], l.offset[2], 0.0],
                    [l.scale[0], l.scale[1], l.scale[2], 0.0],
                )
            }
            None => ([1, 1, 1, 0], [1.0; 4], [0.0; 4], [0.0; 4]),
        };
        let (fill, edge) = match outside {
            Outside::Value(x) => (x, 0),
            Outside::Edge => (0.0, 1),
        };
        let view = v.tex.create_view(&Default::default());
        let (pipe, layout, format) = match v.kind {
            Kind::Image => (
                &self.pipes.resample_image,
                &self.pipes.resample_image_layout,
                wgpu::TextureFormat::R32Float,
            ),
            Kind::Label => (
                &self.pipes.resample_label,
                &self.pipes.resample_label_layout,
                wgpu::TextureFormat::R32Uint,
            ),
        };
        let p = pitch(out_shape[0]);
        let out = self.slabs(out_shape, format, dest, |pass, buf, z0, slab| {
            let params = ResampleParams {
                m,
                in_shape: [v.shape[0] as u32, v.shape[1] as u32, v.shape[2] as u32, 0],
                out_shape: [
                    out_shape[0] as u32,
                    out_shape[1] as u32,
                    out_shape[2] as u32,
                    z0,
                ],
                fill,
                edge,
                pitch: p as u32,
                slab,
                post,
                fshape,
                fstep,
                foffset,
                fscale,
            };
            self.dispatch_slab(
                pass,
                pipe,
                layout,
                &params,
                vec![
                    wgpu::BindingResource::TextureView(&view),
                    buf.as_entire_binding(),
                    wgpu::BindingResource::TextureView(&field_views[0]),
                    wgpu::BindingResource::TextureView(&field_views[1]),
                    wgpu::BindingResource::TextureView(&field_views[2]),
                ],
                [out_shape[0], out_shape[1]],
                slab,
            );
        });
        if let Some(d) = dummy {
            self.pool.lock().unwrap().give_texture(d);
        }
        out
    }

    /// Builds a displacement field on the device. Gaussian fields are generated (counter-based noise)
    /// and smoothed (separable passes of blur.wgsl) on the GPU; B-spline fields are evaluated on the host
    /// (a small coarse grid) and uploaded.
    fn build_field(&self, d: &crate::transform::fuse::Displacement) -> Result<GpuField> {
        use crate::exec::cpu::field;
        use crate::transform::fuse::FieldSpec;
        let lay = field::layout(&d.spec, d.grid.shape);
        self.check_shape(lay.shape)?;
        let s = lay.shape;
        let comp: Vec<wgpu::Texture> = match &d.spec {
            FieldSpec::Gaussian {
                sigma_vox, seed, ..
            } => {
                let mut out = Vec::with_capacity(3);
                for axis in 0..3u32 {
                    let p = pitch(s[0]);
                    let noise = self.slabs(
                        s,
                        wgpu::TextureFormat::R32Float,
                        Dest::Texture,
                        |pass, buf, z0, slab| {
                            let params = NoiseParams {
                                shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                                seed: [*seed as u32, (*seed >> 32) as u32],
                                stream: 2 + axis,
                                pitch: p as u32,
                                slab,
                                pad: [0; 3],
                            };
                            self.dispatch_slab(
                                pass,
                                &self.pipes.noise,
                                &self.pipes.noise_layout,
                                &params,
                                vec![buf.as_entire_binding()],
                                [s[0], s[1]],
                                slab,
                            );
                        },
                    )?;
                    let Output::Texture(tex) = noise else {
                        unreachable!()
                    };
                    let mut cur = GpuVolume {
                        tex,
                        shape: s,
                        kind: Kind::Image,
                        signed: false,
                    };
                    for a in 0..3 {
                        if s[a] > 1 {
                            let w = cpu_int::gaussian_weights_truncated(
                                sigma_vox[a] / lay.step[a] as f64,
                                field::FIELD_TRUNCATE,
                            );
                            let Output::Texture(t) = self.blur_pass(&cur, a, &w, Dest::Texture)?
                            else {
                                unreachable!()
                            };
                            let old = std::mem::replace(&mut cur.tex, t);
                            self.pool.lock().unwrap().give_texture(old);
                        }
                    }
                    out.push(cur.tex);
                }
                out
            }
            FieldSpec::Bspline { .. } => {
                let f = field::build(&d.spec, d.grid.shape, d.grid.spacing());
                let g = crate::grid::Grid::with_spacing(s, [1.0; 3])?;
                f.comp
                    .iter()
                    .map(|c| {
                        self.upload(&Volume {
                            data: c.clone(),
                            grid: g.clone(),
                            kind: Kind::Image,
                            dtype: crate::DType::F32,
                        })
                        .map(|v| v.tex)
                    })
                    .collect::<Result<_>>()?
            }
        };
        let mut it = comp.into_iter();
        Ok(GpuField {
            comp: [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()],
            layout: lay,
        })
    }

    fn elementwise(&self, v: &GpuVolume, k: &PointKernel, dest: Dest) -> Result<Output> {
        let s = v.shape;
        let view = v.tex.create_view(&Default::default());
        let p = pitch(s[0]);
        let mut bias = [[0.0f32; 4]; 14];
        for (t, c) in k.bias.iter().enumerate().take(cpu_int::MAX_BIAS_TERMS) {
            bias[t / 4][t % 4] = *c;
        }
        self.slabs(
            s,
            wgpu::TextureFormat::R32Float,
            dest,
            |pass, buf, z0, slab| {
                let params = ElementParams {
                    shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                    sub: k.sub,
                    mul: k.mul,
                    add: k.add,
                    lo: k.lo,
                    hi: k.hi,
                    skip_zero: k.skip_zero as u32,
                    pitch: p as u32,
                    slab,
                    gamma: k.gamma,
                    post: k.post,
                    noise_std: k.noise_std,
                    noise_mean: k.noise_mean,
                    seed: k.noise_seed,
                    bias_order: k.bias_order,
                    pad: 0,
                    bias,
                };
                self.dispatch_slab(
                    pass,
                    &self.pipes.elementwise,
                    &self.pipes.elementwise_layout,
                    &params,
                    vec![
                        wgpu::BindingResource::TextureView(&view),
                        buf.as_entire_binding(),
                    ],
                    [s[0], s[1]],
                    slab,
                );
            },
        )
    }

    /// Workgroup grid for `n` voxels in chunks of 4096, as (x, y) under the 65535 per-dimension limit.
    fn reduce_groups(n: usize) -> (u32, u32, u32) {
        let groups = n.div_ceil(4096) as u32;
        let gx = groups.min(65535);
        (groups, gx, groups.div_ceil(gx))
    }

    fn reduce_bind_group(
        &self,
        params: &ReduceParams,
        view: &wgpu::TextureView,
        partials: &wgpu::Buffer,
        result: &wgpu::Buffer,
        hist: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        self.bind(
            &self.pipes.reduce_layout,
            params,
            vec![
                wgpu::BindingResource::TextureView(view),
                partials.as_entire_binding(),
                result.as_entire_binding(),
                hist.as_entire_binding(),
            ],
        )
    }

    fn scratch(&self, bytes: u64, read: bool) -> wgpu::Buffer {
        let usage = if read {
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST
        } else {
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST
        };
        self.pool
            .lock()
            .unwrap()
            .buffer(&self.device, bytes.max(32), usage)
    }

    /// Count, mean, M2, min, max of an image (all voxels or nonzero ones): workgroup partials, then one
    /// final merge pass, both on the GPU.
    fn stats(&self, v: &GpuVolume, nonzero: bool) -> Result<Partial> {
        let n = v.shape.iter().product::<usize>();
        let (groups, gx, gy) = Self::reduce_groups(n);
        let params = ReduceParams {
            shape: [
                v.shape[0] as u32,
                v.shape[1] as u32,
                v.shape[2] as u32,
                n as u32,
            ],
            mask_nonzero: nonzero as u32,
            partials: groups,
            groups_x: gx,
            filter_bin: -1,
            hmin: 0.0,
            hscale: 0.0,
            h1min: 0.0,
            h1scale: 0.0,
        };
        let view = v.tex.create_view(&Default::default());
        let partials = self.scratch(groups as u64 * 32, false);
        let result = self.scratch(32, false);
        let hist = self.scratch(4, false);
        let staging = self.scratch(32, true);
        let bg = self.reduce_bind_group(&params, &view, &partials, &result, &hist);
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_bind_group(0, &bg, &[]);
            pass.set_pipeline(&self.pipes.stats_partial);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_pipeline(&self.pipes.stats_final);
            pass.dispatch_workgroups(1, 1, 1);
        }
        enc.copy_buffer_to_buffer(&result, 0, &staging, 0, 32);
        let idx = self.submit(enc.finish());
        let words = self.map_read(&staging, 32, idx)?;
        let mut pool = self.pool.lock().unwrap();
        for b in [partials, result, hist, staging] {
            pool.give_buffer(b);
        }
        Ok(*bytemuck::from_bytes::<Partial>(bytemuck::cast_slice(
            &words[..8],
        )))
    }

    /// Histogram of 65536 bins (`filter`: restrict to one level-1 bin, counted in sub-bins of it).
    fn histogram(
        &self,
        v: &GpuVolume,
        lo: f32,
        scale: f32,
        filter: Option<(u32, f32, f32)>,
    ) -> Result<Vec<u32>> {
        const BINS: u64 = 65536;
        let n = v.shape.iter().product::<usize>();
        let (_, gx, gy) = Self::reduce_groups(n);
        let (fb, h1min, h1scale) = match filter {
            Some((b, m, s)) => (b as i32, m, s),
            None => (-1, 0.0, 0.0),
        };
        let params = ReduceParams {
            shape: [
                v.shape[0] as u32,
                v.shape[1] as u32,
                v.shape[2] as u32,
                n as u32,
            ],
            mask_nonzero: 0,
            partials: 0,
            groups_x: gx,
            filter_bin: fb,
            hmin: lo,
            hscale: scale,
            h1min,
            h1scale,
        };
        let view = v.tex.create_view(&Default::default());
        let dummy = self.scratch(32, false);
        let dummy2 = self.scratch(32, false);
        let hist = self.scratch(BINS * 4, false);
        let staging = self.scratch(BINS * 4, true);
        let bg = self.reduce_bind_group(&params, &view, &dummy, &dummy2, &hist);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&hist, 0, None);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_bind_group(0, &bg, &[]);
            pass.set_pipeline(&self.pipes.histogram);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        enc.copy_buffer_to_buffer(&hist, 0, &staging, 0, BINS * 4);
        let idx = self.submit(enc.finish());
        let words = self.map_read(&staging, BINS * 4, idx)?;
        let mut pool = self.pool.lock().unwrap();
        for b in [dummy, dummy2, hist, staging] {
            pool.give_buffer(b);
        }
        Ok(words)
    }

    /// Percentiles (numpy's linear definition) from a two-level histogram: a level-1 histogram over
    /// [min, max] locates the bin of each needed rank, a level-2 histogram of that bin locates its
    /// sub-bin; the value is the sub-bin centre. Error against the exact value: at most
    /// (max - min) / 2^33, reported as the GPU tolerance.
    fn percentiles(&self, v: &GpuVolume, qs: &[f64]) -> Result<Vec<f64>> {
        let st = self.stats(v, false)?;
        let (min, max) = (st.min, st.max);
        let n = st.count as usize;
        if n == 0 || min == max {
            return Ok(vec![min as f64; qs.len()]);
        }
        let bins = crate::exec::cpu::reduce::PERCENTILE_BINS;
        let scale = bins as f32 / (max - min);
        let h1 = self.histogram(v, min, scale, None)?;
        let cum1 = cumulative(&h1);
        let mut level2: std::collections::HashMap<usize, (f32, f32, Vec<u64>)> = Default::default();
        let mut value_at = |rank: usize| -> Result<f64> {
            let b = cum1.partition_point(|&c| c <= rank as u64) - 1;
            if let std::collections::hash_map::Entry::Vacant(e) = level2.entry(b) {
                let edge = min + b as f32 / scale;
                let sub_scale = scale * bins as f32;
                let h2 = self.histogram(v, edge, sub_scale, Some((b as u32, min, scale)))?;
                e.insert((edge, sub_scale, cumulative(&h2)));
            }
            let (edge, sub_scale, cum2) = &level2[&b];
            let within = (rank as u64 - cum1[b]).min(cum2[cum2.len() - 1].saturating_sub(1));
            let s = cum2.partition_point(|&c| c <= within) - 1;
            Ok(*edge as f64 + (s as f64 + 0.5) / *sub_scale as f64)
        };
        let mut out = Vec::with_capacity(qs.len());
        for &q in qs {
            let r = q / 100.0 * (n - 1) as f64;
            let lo = r.floor() as usize;
            let a = value_at(lo.min(n - 1))?;
            let b = value_at((lo + 1).min(n - 1))?;
            out.push((a + (b - a) * (r - r.floor())).clamp(min as f64, max as f64));
        }
        Ok(out)
    }

    /// One separable Gaussian pass along `axis`.
    fn blur_pass(&self, v: &GpuVolume, axis: usize, w: &[f32], dest: Dest) -> Result<Output> {
        let s = v.shape;
        let view = v.tex.create_view(&Default::default());
        let p = pitch(s[0]);
        let weights = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("blur weights"),
                contents: bytemuck::cast_slice(w),
                usage: wgpu::BufferUsages::STORAGE,
            });
        self.slabs(
            s,
            wgpu::TextureFormat::R32Float,
            dest,
            |pass, buf, z0, slab| {
                let params = BlurParams {
                    shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                    axis: axis as u32,
                    radius: (w.len() / 2) as u32,
                    pitch: p as u32,
                    slab,
                };
                self.dispatch_slab(
                    pass,
                    &self.pipes.blur,
                    &self.pipes.blur_layout,
                    &params,
                    vec![
                        wgpu::BindingResource::TextureView(&view),
                        buf.as_entire_binding(),
                        weights.as_entire_binding(),
                    ],
                    [s[0], s[1]],
                    slab,
                );
            },
        )
    }

    /// Statistics in the CPU's form.
    fn host_stats(&self, v: &GpuVolume, nonzero: bool) -> Result<crate::volume::Stats> {
        let s = self.stats(v, nonzero)?;
        let std = if s.count > 0 {
            (s.m2 as f64 / s.count as f64).max(0.0).sqrt()
        } else {
            0.0
        };
        Ok(crate::volume::Stats {
            count: s.count as usize,
            min: s.min as f64,
            max: s.max as f64,
            mean: s.mean as f64,
            std,
        })
    }

    /// Applies an intensity op to an image on the GPU: statistics on the device, then one point kernel
    /// (or, for blur, up to three separable passes).
    fn intensity(
        &self,
        v: GpuVolume,
        op: &IntensityOp,
        spacing: [f64; 3],
        dest: Dest,
    ) -> Result<(GpuVolume, Option<Output>)> {
        let k = match cpu_int::needs(op) {
            Needs::None(k) => k,
            Needs::Host => {
                // Quantile-based maps: read back, apply the host code, upload (same result as the CPU).
                let mut data = self.read_texture(&v)?;
                let g = crate::grid::Grid::with_spacing(v.shape, spacing)?;
                cpu_int::apply(op, &mut data, &g);
                let host = Volume {
                    data,
                    grid: g,
                    kind: Kind::Image,
                    dtype: crate::DType::F32,
                };
                let out = match dest {
                    Dest::Texture => Output::Texture(self.upload(&host)?.tex),
                    Dest::Read => Output::Host(host.data.iter().map(|x| x.to_bits()).collect()),
                };
                return Ok((v, Some(out)));
            }
            Needs::Stats { nonzero } => {
                cpu_int::kernel_from(op, &self.host_stats(&v, nonzero)?, None)
            }
            Needs::MinMax => cpu_int::kernel_from(op, &self.host_stats(&v, false)?, None),
            Needs::Percentiles(q) => {
                let p = self.percentiles(&v, &q)?;
                cpu_int::kernel_from(op, &self.host_stats(&v, false)?, Some([p[0], p[1]]))
            }
            Needs::Blur => {
                let IntensityOp::Blur { sigma_mm } = op else {
                    unreachable!()
                };
                let axes: Vec<usize> = (0..3)
                    .filter(|&a| sigma_mm[a] / spacing[a] > 0.0 && v.shape[a] > 1)
                    .collect();
                if axes.is_empty() {
                    let out = self.elementwise(&v, &cpu_int::identity(), dest)?;
                    return Ok((v, Some(out)));
                }
                let mut cur = v;
                for (n, &a) in axes.iter().enumerate() {
                    let w = cpu_int::gaussian_weights(sigma_mm[a] / spacing[a]);
                    let last = n + 1 == axes.len();
                    let d = if last { dest } else { Dest::Texture };
                    let out = self.blur_pass(&cur, a, &w, d)?;
                    if last {
                        return Ok((cur, Some(out)));
                    }
                    let Output::Texture(tex) = out else {
                        unreachable!()
                    };
                    let old = std::mem::replace(&mut cur.tex, tex);
                    self.pool.lock().unwrap().give_texture(old);
                }
                unreachable!("the last axis returns")
            }
        };
        let out = self.elementwise(&v, &k, dest)?;
        Ok((v, Some(out)))
    }

    /// Fill of a map for a volume on the GPU (same rules as the CPU's `outside_for`).
    fn outside(&self, fill: Fill, v: &GpuVolume, host: Option<&Volume>) -> Result<Outside> {
        Ok(match (fill, v.kind) {
            (Fill::Edge, _) => Outside::Edge,
            (Fill::Value(x), Kind::Image) => Outside::Value(x as f32),
            (Fill::Value(_), Kind::Label) => Outside::Value(0.0),
            (Fill::Min, Kind::Image) => Outside::Value(self.stats(v, false)?.min),
            (Fill::Min, Kind::Label) => {
                // Label textures are integer: take the minimum on the host (read back if needed).
                let m = match host {
                    Some(h) => crate::exec::cpu::reduce::min_max(&h.data).0,
                    None => {
                        let data = self.read_texture(v)?;
                        data.iter().fold(f32::INFINITY, |a, &b| a.min(b))
                    }
                };
                Outside::Value(m)
            }
        })
    }

    /// Reads a whole texture back (rare path: label minimum after an earlier resampling).
    fn read_texture(&self, v: &GpuVolume) -> Result<Vec<f32>> {
        let [nx, ny, nz] = v.shape;
        let p = pitch(nx);
        let bytes = (p * ny * nz * 4) as u64;
        let staging = self.scratch(bytes, true);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_texture_to_buffer(
            slice_of(&v.tex, 0),
            wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(p as u32 * 4),
                    rows_per_image: Some(ny as u32),
                },
            },
            extent(v.shape),
        );
        let idx = self.submit(enc.finish());
        let words = self.map_read(&staging, bytes, idx)?;
        self.pool.lock().unwrap().give_buffer(staging);
        let mut out = Vec::with_capacity(nx * ny * nz);
        for r in 0..ny * nz {
            out.extend(
                words[r * p..r * p + nx]
                    .iter()
                    .map(|&w| word_to_f32(w, v.kind, v.signed)),
            );
        }
        Ok(out)
    }

    /// Runs compiled stages on the GPU. Each volume's last kernel writes straight to host memory.
    pub fn run(&self, subject: &Subject, stages: &[Stage]) -> Result<Subject> {
        let _one_at_a_time = self.run_lock.lock().unwrap();
        let r = self.scoped("GPU pipeline", || self.run_inner(subject, stages));
        if r.is_err() {
            // Resources touched by a failed run are not reused.
            self.pool.lock().unwrap().clear();
        }
        r
    }

    /// Index of the last stage that changes each volume (images: any stage; labels: spatial ones).
    fn last_touch(host: &[&Volume], stages: &[Stage]) -> Vec<Option<usize>> {
        host.iter()
            .map(|v| {
                stages
                    .iter()
                    .rposition(|s| matches!(s, Stage::Spatial(_)) || v.kind == Kind::Image)
            })
            .collect()
    }

    fn run_inner(&self, subject: &Subject, stages: &[Stage]) -> Result<Subject> {
        let host: Vec<&Volume> = subject.images.iter().chain(&subject.labels).collect();
        let last_touch = Self::last_touch(&host, stages);
        let mut gpu: Vec<Option<GpuVolume>> = Vec::with_capacity(host.len());
        for (v, lt) in host.iter().zip(&last_touch) {
            gpu.push(match lt {
                Some(_) => Some(self.upload(v)?),
                None => None,
            });
        }
        let (results, grid) = self.execute(subject, &host, gpu, stages, false)?;
        Ok(assemble(subject, &host, results, grid, &mut Vec::new()))
    }

    /// Runs several samples' stages over one upload of `subject`: kernels of all samples are recorded
    /// into shared submissions (split only where a statistic must be read back), and all outputs are read
    /// back together at the end.
    pub fn run_batch(&self, subject: &Subject, plans: &[Vec<Stage>]) -> Result<Vec<Subject>> {
        let _one_at_a_time = self.run_lock.lock().unwrap();
        *self.batch.lock().unwrap() = Some(Batch::default());
        let r = self.scoped("GPU batch", || self.run_batch_inner(subject, plans));
        self.batch.lock().unwrap().take();
        if r.is_err() {
            self.pool.lock().unwrap().clear();
        }
        r
    }

    fn run_batch_inner(&self, subject: &Subject, plans: &[Vec<Stage>]) -> Result<Vec<Subject>> {
        let host: Vec<&Volume> = subject.images.iter().chain(&subject.labels).collect();
        let originals: Vec<GpuVolume> =
            host.iter().map(|v| self.upload(v)).collect::<Result<_>>()?;
        let mut runs = Vec::with_capacity(plans.len());
        for stages in plans {
            let (cb, copies) = self.device_copies(&originals);
            self.submit(cb);
            runs.push(self.execute(subject, &host, copies, stages, false)?);
        }
        self.flush();
        let deferred = std::mem::take(
            &mut self
                .batch
                .lock()
                .unwrap()
                .as_mut()
                .expect("batching")
                .deferred,
        );
        let mut words = self.read_deferred(deferred)?;
        {
            let mut pool = self.pool.lock().unwrap();
            for o in originals {
                pool.give_texture(o.tex);
            }
        }
        Ok(runs
            .into_iter()
            .map(|(results, grid)| assemble(subject, &host, results, grid, &mut words))
            .collect())
    }

    /// Commands copying uploaded volumes into fresh pooled textures (each run consumes its inputs, so
    /// repeated runs over one upload start from copies made on the device).
    fn device_copies(
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
                signed: o.signed,
            }));
        }
        (enc.finish(), copies)
    }

    /// Maps every staging buffer of a batch at once, waits once, and copies the rows out.
    fn read_deferred(&self, deferred: Vec<DeferredRead>) -> Result<Vec<Option<Vec<u32>>>> {
        let mut receivers = Vec::new();
        for d in &deferred {
            for (staging, _, slab) in &d.slabs {
                let bytes = (d.pitch * d.shape[1] * slab * 4) as u64;
                let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
                staging
                    .slice(..bytes)
                    .map_async(wgpu::MapMode::Read, move |r| {
                        let _ = tx.send(r);
                    });
                receivers.push(rx);
            }
        }
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
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
            let mut words = vec![0u32; nx * ny * nz];
            for (staging, z0, slab) in d.slabs {
                let bytes = (d.pitch * ny * slab * 4) as u64;
                {
                    let view = staging
                        .slice(..bytes)
                        .get_mapped_range()
                        .map_err(|e| self.gpu_error(format!("mapping a readback buffer: {e}")))?;
                    let src: &[u32] = bytemuck::cast_slice(&view);
                    for r in 0..ny * slab {
                        let dst = (z0 * ny + r) * nx;
                        words[dst..dst + nx].copy_from_slice(&src[r * d.pitch..r * d.pitch + nx]);
                    }
                }
                staging.unmap();
                self.pool.lock().unwrap().give_buffer(staging);
            }
            out.push(Some(words));
        }
        Ok(out)
    }

    /// Device time of the stages with the data already on the GPU and left there (no upload, no
    /// readback; statistics for intensity ops are still read back, as in a real run): `reps` timings in
    /// seconds. Inputs are uploaded once and copied on the device before each repetition (not timed).
    pub fn kernel_times(
        &self,
        subject: &Subject,
        stages: &[Stage],
        reps: usize,
    ) -> Result<Vec<f64>> {
        let _one_at_a_time = self.run_lock.lock().unwrap();
        self.scoped("GPU kernel timing", || {
            let host: Vec<&Volume> = subject.images.iter().chain(&subject.labels).collect();
            let originals: Vec<GpuVolume> =
                host.iter().map(|v| self.upload(v)).collect::<Result<_>>()?;
            let mut times = Vec::with_capacity(reps);
            for _ in 0..reps {
                let (cb, copies) = self.device_copies(&originals);
                let idx = self.queue.submit([cb]);
                self.device
                    .poll(wgpu::PollType::Wait {
                        submission_index: Some(idx),
                        timeout: None,
                    })
                    .map_err(|e| self.gpu_error(format!("waiting for the GPU failed: {e}")))?;
                let t0 = std::time::Instant::now();
                self.execute(subject, &host, copies, stages, true)?;
                times.push(t0.elapsed().as_secs_f64());
            }
            let mut pool = self.pool.lock().unwrap();
            for o in originals {
                pool.give_texture(o.tex);
            }
            Ok(times)
        })
    }

    /// Runs the stages over uploaded volumes. Each volume's last kernel writes to host memory unless
    /// `resident` (then everything stays on the device and the call waits for completion).
    fn execute(
        &self,
        subject: &Subject,
        host: &[&Volume],
        mut gpu: Vec<Option<GpuVolume>>,
        stages: &[Stage],
        resident: bool,
    ) -> Result<(Vec<Option<HostData>>, crate::grid::Grid)> {
        let last_touch = Self::last_touch(host, stages);
        let mut results: Vec<Option<HostData>> = (0..host.len()).map(|_| None).collect();
        let mut grid = subject.grid().expect("subject has volumes").clone();
        let mut first_spatial = true;
        for (si, stage) in stages.iter().enumerate() {
            let field = match stage {
                Stage::Spatial(SamplingMap { field: Some(d), .. }) => Some(self.build_field(d)?),
                _ => None,
            };
            for vi in 0..host.len() {
                let Some(v) = gpu[vi].as_ref() else { continue };
                let v_shape = v.shape;
                let dest = if last_touch[vi] == Some(si) && !resident {
                    Dest::Read
                } else {
                    Dest::Texture
                };
                let out = match stage {
                    Stage::Spatial(map) => {
                        let h = if first_spatial { Some(host[vi]) } else { None };
                        let outside = self.outside(map.fill, v, h)?;
                        Some(self.resample(v, map, field.as_ref(), outside, dest)?)
                    }
                    Stage::Intensity(op) if host[vi].kind == Kind::Image => {
                        let owned = gpu[vi].take().unwrap();
                        let (back, out) = self.intensity(owned, op, grid.spacing(), dest)?;
                        gpu[vi] = Some(back);
                        out
                    }
                    Stage::Intensity(_) => None,
                };
                let new_shape = match stage {
                    Stage::Spatial(map) => map.grid.shape,
                    _ => v_shape,
                };
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
                    Some(Output::Host(words)) => {
                        let old = gpu[vi].take().unwrap();
                        results[vi] = Some(HostData::Ready(
                            words
                                .iter()
                                .map(|&w| word_to_f32(w, old.kind, old.signed))
                                .collect(),
                        ));
                        self.pool.lock().unwrap().give_texture(old.tex);
                    }
                    Some(Output::Deferred(id)) => {
                        let old = gpu[vi].take().unwrap();
                        results[vi] = Some(HostData::Deferred {
                            id,
                            kind: old.kind,
                            signed: old.signed,
                        });
                        self.pool.lock().unwrap().give_texture(old.tex);
                    }
                }
            }
            if let Some(f) = field {
                let mut pool = self.pool.lock().unwrap();
                for t in f.comp {
                    pool.give_texture(t);
                }
            }
            if let Stage::Spatial(map) = stage {
                grid = map.grid.clone();
                first_spatial = false;
            }
        }
        if resident {
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

/// Builds the output subject of a run from its host data (deferred outputs taken from `words`).
fn assemble(
    subject: &Subject,
    host: &[&Volume],
    results: Vec<Option<HostData>>,
    grid: crate::grid::Grid,
    words: &mut [Option<Vec<u32>>],
) -> Subject {
    let mut it = host.iter().zip(results).map(|(v, r)| Volume {
        data: match r {
            None => v.data.clone(),
            Some(HostData::Ready(d)) => d,
            Some(HostData::Deferred { id, kind, signed }) => words[id]
                .take()
                .expect("each deferred output is read once")
                .into_iter()
                .map(|w| word_to_f32(w, kind, signed))
                .collect(),
        },
        grid: grid.clone(),
        kind: v.kind,
        dtype: v.dtype,
    });
    let images = (0..subject.images.len())
        .map(|_| it.next().unwrap())
        .collect();
    let labels = it.collect();
    Subject { images, labels }
}

fn cumulative(h: &[u32]) -> Vec<u64> {
    let mut c = Vec::with_capacity(h.len() + 1);
    c.push(0u64);
    for &x in h {
        c.push(c.last().unwrap() + x as u64);
    }
    c
}

fn word_to_f32(w: u32, kind: Kind, signed: bool) -> f32 {
    match kind {
        Kind::Image => f32::from_bits(w),
        Kind::Label if signed => w as i32 as f32,
        Kind::Label => w as f32,
    }
}
