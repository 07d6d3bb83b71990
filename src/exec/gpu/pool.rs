//! Reuse of textures and buffers across samples of the same size (creating and freeing them per sample
//! costs more than the kernels on small volumes), and subjects kept resident on the device between
//! runs (see [`Resident`]).

use crate::volume::Subject;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

type TexKey = ([u32; 3], wgpu::TextureFormat);
type BufKey = (u64, wgpu::BufferUsages);

/// Free textures and buffers by size: at most `KEEP` textures of each size and format, at most
/// `KEEP_BUFFERS` buffers of each size and usage and `KEPT_BUFFER_BYTES` in all.
#[derive(Default)]
pub struct Pool {
    textures: HashMap<TexKey, Vec<wgpu::Texture>>,
    buffers: HashMap<BufKey, Vec<wgpu::Buffer>>,
    buffer_bytes: u64,
    /// Upload staging buffers (MAP_WRITE) with the submission that last copied out of them: mapping
    /// one again waits for that submission only, not for all work (other threads' runs included).
    staging: Vec<(wgpu::Buffer, wgpu::SubmissionIndex)>,
    /// Uploaded volumes of shared subjects, kept for their next run.
    pub resident: Resident,
}

/// Volumes of subjects shared through an `Arc` (the Python loader's decoded subjects), kept on the
/// device after their upload so that the next sample of the same subject skips it. A subject is known
/// by a `Weak` to its `Arc`: while the entry exists the allocation cannot be reused, and an `Arc` with a
/// `Weak` outstanding cannot be changed in place (`Arc::get_mut` refuses, `Arc::make_mut` moves the
/// value), so a live entry always holds the subject's current voxels. Entries whose subject was
/// dropped are freed at the next run; the rest are evicted least recently used first beyond
/// `budget` bytes. Resident textures are never handed out by the pool: every kernel writes a new
/// texture, and [`Pool::give_texture`] ignores them.
pub struct Resident {
    entries: Vec<Entry>,
    /// Most texel bytes kept (`VOXAUG_GPU_RESIDENT_MB`, default 2048; 0 keeps nothing).
    pub budget: u64,
    clock: u64,
}

struct Entry {
    key: Weak<Subject>,
    /// One slot per volume, images then labels.
    vols: Vec<Option<wgpu::Texture>>,
    /// Statistics of the subject's volumes (the same for every run while the entry lives).
    stats: Arc<super::InputStats>,
    used: u64,
}

impl Default for Resident {
    fn default() -> Resident {
        let mb = std::env::var("VOXAUG_GPU_RESIDENT_MB")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(2048);
        Resident {
            entries: Vec::new(),
            budget: mb << 20,
            clock: 0,
        }
    }
}

fn texture_bytes(t: &wgpu::Texture) -> u64 {
    let s = t.size();
    let texel = t.format().block_copy_size(None).unwrap_or(4) as u64;
    s.width as u64 * s.height as u64 * s.depth_or_array_layers as u64 * texel
}

impl Resident {
    fn holds(&self, t: &wgpu::Texture) -> bool {
        self.entries
            .iter()
            .any(|e| e.vols.iter().flatten().any(|r| r == t))
    }

    fn bytes(&self) -> u64 {
        self.entries
            .iter()
            .flat_map(|e| e.vols.iter().flatten())
            .map(texture_bytes)
            .sum()
    }

    /// Removes the entries of dropped subjects; returns their textures.
    pub fn purge(&mut self) -> Vec<wgpu::Texture> {
        let (dead, live): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| e.key.strong_count() == 0);
        self.entries = live;
        dead.into_iter()
            .flat_map(|e| e.vols.into_iter().flatten())
            .collect()
    }

    /// The resident texture of volume `vi` of `subject`, if kept.
    pub fn get(&mut self, subject: &Arc<Subject>, vi: usize) -> Option<wgpu::Texture> {
        self.clock += 1;
        let clock = self.clock;
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.key.as_ptr() == Arc::as_ptr(subject))?;
        e.used = clock;
        e.vols.get(vi).cloned().flatten()
    }

    /// The statistics cache of `subject`'s entry, if it has one.
    pub fn stats(&self, subject: &Arc<Subject>) -> Option<Arc<super::InputStats>> {
        self.entries
            .iter()
            .find(|e| e.key.as_ptr() == Arc::as_ptr(subject))
            .map(|e| e.stats.clone())
    }

    /// Keeps `tex` as volume `vi` of `subject` (of `n` volumes); returns the textures of other
    /// subjects evicted (least recently used first) to stay within the budget. When this subject's
    /// volumes alone would pass it, `tex` is not kept.
    pub fn keep(
        &mut self,
        subject: &Arc<Subject>,
        vi: usize,
        n: usize,
        tex: &wgpu::Texture,
    ) -> Vec<wgpu::Texture> {
        self.clock += 1;
        let me = Arc::as_ptr(subject);
        let at = match self.entries.iter().position(|e| e.key.as_ptr() == me) {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    key: Arc::downgrade(subject),
                    vols: vec![None; n],
                    stats: Arc::default(),
                    used: 0,
                });
                self.entries.len() - 1
            }
        };
        let mine: u64 = self.entries[at]
            .vols
            .iter()
            .flatten()
            .map(texture_bytes)
            .sum();
        if mine + texture_bytes(tex) > self.budget {
            if mine == 0 {
                self.entries.remove(at);
            }
            return Vec::new();
        }
        self.entries[at].vols[vi] = Some(tex.clone());
        self.entries[at].used = self.clock;
        self.evict(Some(me))
    }

    /// Evicts least recently used subjects until the rest fit the budget; returns their textures.
    pub fn shrink(&mut self) -> Vec<wgpu::Texture> {
        self.evict(None)
    }

    /// [`shrink`](Self::shrink) that never evicts the subject at `spare`.
    fn evict(&mut self, spare: Option<*const Subject>) -> Vec<wgpu::Texture> {
        let mut evicted = Vec::new();
        while self.bytes() > self.budget {
            let Some(old) = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| Some(e.key.as_ptr()) != spare)
                .min_by_key(|(_, e)| e.used)
                .map(|(i, _)| i)
            else {
                break;
            };
            evicted.extend(self.entries.remove(old).vols.into_iter().flatten());
        }
        evicted
    }

    /// Number of subjects with resident volumes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
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
        if self.resident.holds(&t) {
            return;
        }
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

    /// An upload staging buffer of `size` bytes (MAP_WRITE | COPY_SRC) and the submission to wait for
    /// before mapping it; a new one comes mapped (nothing to wait for).
    pub fn staging(
        &mut self,
        device: &wgpu::Device,
        size: u64,
    ) -> (wgpu::Buffer, Option<wgpu::SubmissionIndex>) {
        if let Some(i) = self.staging.iter().position(|(b, _)| b.size() == size) {
            let (b, idx) = self.staging.swap_remove(i);
            self.buffer_bytes -= b.size();
            return (b, Some(idx));
        }
        let b = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("voxaug upload"),
            size,
            usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        });
        (b, None)
    }

    /// Gives an upload staging buffer back, `last`: the submission that copies out of it.
    pub fn give_staging(&mut self, b: wgpu::Buffer, last: wgpu::SubmissionIndex) {
        if self.staging.len() < KEEP_BUFFERS && self.buffer_bytes + b.size() <= KEPT_BUFFER_BYTES {
            self.buffer_bytes += b.size();
            self.staging.push((b, last));
        }
    }

    /// Frees everything held, resident subjects included.
    pub fn clear(&mut self) {
        self.textures.clear();
        self.buffers.clear();
        self.staging.clear();
        self.buffer_bytes = 0;
        self.resident.entries.clear();
    }
}
