//! Small read-only parameters of a run's dispatches (uniform structs, blur weights), sub-allocated from
//! a few reused buffers instead of one new buffer per dispatch. `create_buffer_init` allocates a buffer
//! and a staging buffer and records a copy for every call; here the bytes of all slots taken since the
//! last submission are written with one `write_buffer` per arena buffer just before that submission.
//!
//! Slots stay valid until the next run starts ([`Uniforms::reset`], called when a run takes the
//! context's run lock): a slot taken before several submissions (a point kernel's parameters shared by
//! every slab) keeps its bytes. Reusing an offset in a later run is safe because `write_buffer` runs at
//! the start of the next submission, after every earlier submission on the queue.

/// One arena buffer: 256 KiB, enough for about a thousand dispatches.
const ARENA_BYTES: u64 = 256 << 10;

/// A slot: `size` bytes at `offset` of `buffer`.
pub(crate) struct Slot {
    buffer: wgpu::Buffer,
    offset: u64,
    size: std::num::NonZeroU64,
}

impl Slot {
    /// The slot as a bind group resource.
    pub(crate) fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: Some(self.size),
        })
    }
}

/// The arena buffers and the bytes waiting to be written into them.
#[derive(Default)]
pub(crate) struct Uniforms {
    buffers: Vec<wgpu::Buffer>,
    /// Arena buffer in use and the next free byte in it.
    current: usize,
    next: u64,
    /// Bytes taken since the last write: (buffer index, first offset, bytes from that offset).
    staged: Vec<(usize, u64, Vec<u8>)>,
}

impl Uniforms {
    /// A slot holding `bytes` (bound as uniform or read-only storage), at an offset aligned to `align`.
    pub(crate) fn slot(&mut self, device: &wgpu::Device, align: u64, bytes: &[u8]) -> Slot {
        let size = (bytes.len() as u64).max(16).next_multiple_of(16);
        let mut at = self.next.next_multiple_of(align);
        if self.buffers.is_empty() || at + size > self.buffers[self.current].size() {
            if !self.buffers.is_empty() {
                self.current += 1;
            }
            at = 0;
            if self.current == self.buffers.len() || self.buffers[self.current].size() < size {
                let b = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("voxaug parameters"),
                    size: size.max(ARENA_BYTES),
                    usage: wgpu::BufferUsages::UNIFORM
                        | wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                if self.current == self.buffers.len() {
                    self.buffers.push(b);
                } else {
                    self.buffers[self.current] = b;
                }
            }
        }
        let cur = self.current;
        match self.staged.last_mut() {
            Some((b, _, _)) if *b == cur => {}
            _ => self.staged.push((cur, at, Vec::new())),
        }
        let (_, first, staged) = self.staged.last_mut().expect("pushed above");
        staged.resize((at - *first) as usize, 0);
        staged.extend_from_slice(bytes);
        staged.resize((at + size - *first) as usize, 0);
        self.next = at + size;
        Slot {
            buffer: self.buffers[cur].clone(),
            offset: at,
            size: std::num::NonZeroU64::new(size).expect("at least 16 bytes"),
        }
    }

    /// Writes the bytes of the slots taken since the last call; call right before a submission.
    pub(crate) fn write(&mut self, queue: &wgpu::Queue) {
        for (b, offset, bytes) in self.staged.drain(..) {
            queue.write_buffer(&self.buffers[b], offset, &bytes);
        }
    }

    /// Starts over at the first buffer: every slot handed out before is no longer used.
    pub(crate) fn reset(&mut self) {
        self.staged.clear();
        self.current = 0;
        self.next = 0;
    }
}
