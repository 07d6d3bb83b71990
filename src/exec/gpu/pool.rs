//! Reuse of textures and buffers across samples of the same size (creating and freeing them per sample
//! costs more than the kernels on small volumes).

use std::collections::HashMap;

type TexKey = ([u32; 3], wgpu::TextureFormat);
type BufKey = (u64, wgpu::BufferUsages);

/// Free textures and buffers by size: at most `KEEP` textures of each size and format, at most
/// `KEEP_BUFFERS` buffers of each size and usage and `KEPT_BUFFER_BYTES` in all.
#[derive(Default)]
pub struct Pool {
    textures: HashMap<TexKey, Vec<wgpu::Texture>>,
    buffers: HashMap<BufKey, Vec<wgpu::Buffer>>,
    buffer_bytes: u64,
}

const KEEP: usize = 4;
/// A batch of 8 samples with an image and a label map reads 16 outputs back through 16 staging
/// buffers (with 4 kept, every batch made fresh ones, and the host faulted their pages in again).
const KEEP_BUFFERS: usize = 16;
const KEPT_BUFFER_BYTES: u64 = 1 << 30;

impl Pool {
    pub fn texture(
        &mut self,
        device: &wgpu::Device,
        size: [u32; 3],
        format: wgpu::TextureFormat,
    ) -> wgpu::Texture {
        if let Some(t) = self.textures.get_mut(&(size, format)).and_then(Vec::pop) {
            return t;
        }
        device.create_texture(&wgpu::TextureDescriptor {
            label: Some("voxaug volume"),
            size: wgpu::Extent3d {
                width: size[0],
                height: size[1],
                depth_or_array_layers: size[2],
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D3,
            format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_DST
                | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        })
    }

    pub fn give_texture(&mut self, t: wgpu::Texture) {
        let s = t.size();
        let v = self
            .textures
            .entry(([s.width, s.height, s.depth_or_array_layers], t.format()))
            .or_default();
        if v.len() < KEEP {
            v.push(t);
        }
    }

    pub fn buffer(
        &mut self,
        device: &wgpu::Device,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        if let Some(b) = self.buffers.get_mut(&(size, usage)).and_then(Vec::pop) {
            self.buffer_bytes -= b.size();
            return b;
        }
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("voxaug buffer"),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    pub fn give_buffer(&mut self, b: wgpu::Buffer) {
        let v = self.buffers.entry((b.size(), b.usage())).or_default();
        if v.len() < KEEP_BUFFERS && self.buffer_bytes + b.size() <= KEPT_BUFFER_BYTES {
            self.buffer_bytes += b.size();
            v.push(b);
        }
    }

    /// Frees everything held.
    pub fn clear(&mut self) {
        self.textures.clear();
        self.buffers.clear();
        self.buffer_bytes = 0;
    }
}
