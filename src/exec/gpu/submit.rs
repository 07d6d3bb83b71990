//! Recording and submitting work: bind groups and dispatches of slab kernels, the run's parameter
//! arena (`uniforms.rs`), command buffers pending until a readback or wait submits them, the run
//! lock and what a failed run discards.

use super::*;

impl GpuContext {
    /// Binds `params` (binding 0) and `resources` (bindings 1, 2, ...) and dispatches an (8, 8, 4)
    /// workgroup kernel over `nx x ny x slab` voxels: the shape every slab kernel shares.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dispatch_slab<T: Pod>(
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
    pub(super) fn bind<T: Pod>(
        &self,
        layout: &wgpu::BindGroupLayout,
        params: &T,
        resources: Vec<wgpu::BindingResource<'_>>,
    ) -> wgpu::BindGroup {
        let ub = self.uniform(params);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: ub.binding(),
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

    /// Records a command buffer: submitted with the next submission (see [`flush`](Self::flush)).
    pub(super) fn submit(&self, cb: wgpu::CommandBuffer) {
        self.pending.lock().unwrap().push(cb);
    }

    /// Submits the recorded command buffers followed by `extra`, in one submission, after writing the
    /// parameters their dispatches use. Every submission goes through here, so work runs in the order
    /// it was recorded.
    pub(super) fn queue_submit(&self, extra: Option<wgpu::CommandBuffer>) -> wgpu::SubmissionIndex {
        let mut cmds: Vec<wgpu::CommandBuffer> = std::mem::take(&mut *self.pending.lock().unwrap());
        cmds.extend(extra);
        self.uniforms.lock().unwrap().write(&self.queue);
        self.queue.submit(cmds)
    }

    /// Submits everything recorded so far.
    pub(super) fn flush(&self) {
        if !self.pending.lock().unwrap().is_empty() {
            self.queue_submit(None);
        }
    }

    /// Takes the run lock (one run at a time: error scopes are per thread and the pool is shared),
    /// submits what an earlier run left recorded and lets this run's parameters reuse the arena.
    pub(super) fn one_at_a_time(&self) -> std::sync::MutexGuard<'_, ()> {
        let guard = self.run_lock.lock().unwrap();
        self.flush();
        self.uniforms.lock().unwrap().reset();
        guard
    }

    /// Drops recorded work after a failed run (its resources are not reused either).
    pub(super) fn discard(&self) {
        self.pending.lock().unwrap().clear();
        self.uniforms.lock().unwrap().reset();
        self.pool.lock().unwrap().clear();
    }

    pub(super) fn batching(&self) -> bool {
        self.batch.lock().unwrap().is_some()
    }

    /// A slot of the run's parameter arena holding `v` (bound as a uniform).
    pub(super) fn uniform<T: Pod>(&self, v: &T) -> super::uniforms::Slot {
        self.param_slot(
            self.limits.min_uniform_buffer_offset_alignment as u64,
            bytemuck::bytes_of(v),
        )
    }

    /// A slot of the run's parameter arena holding `v` (bound as read-only storage).
    pub(super) fn storage_slot(&self, v: &[f32]) -> super::uniforms::Slot {
        self.param_slot(
            self.limits.min_storage_buffer_offset_alignment as u64,
            bytemuck::cast_slice(v),
        )
    }

    fn param_slot(&self, align: u64, bytes: &[u8]) -> super::uniforms::Slot {
        self.uniforms
            .lock()
            .unwrap()
            .slot(&self.device, align.max(16), bytes)
    }
}
