//! Reuse of textures and buffers across samples of the same size (creating and freeing them per sample
//! costs more than the kernels on small volumes).

use std::collections::HashMap;

type TexKey = ([u32; 3], wgpu::TextureFormat);
type BufKey = (u64, wgpu::BufferUsages);

/// Free textures and buffers by size; at most `KEEP` of each kind are kept.
#[derive(Default)]
pub struct Pool {
    textures: HashMap<TexKey, Vec<wgpu::Texture>>,
    buffers: HashMap<BufKey, Vec<wgpu::Buffer>>,
}

const KEEP: usize = 4;

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
        if v.len() < KEEP {
            v.push(b);
        }
    }

    /// Frees everything held.
    pub fn clear(&mut self) {
        self.textures.clear();
        self.buffers.clear();
    }
}
