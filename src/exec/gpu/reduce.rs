//! Reductions on the GPU: moments, min/max, histograms and percentiles (`shaders/reduce.wgsl`; CPU twin
//! `exec/cpu/reduce.rs`).

use super::*;

impl GpuContext {
    /// Workgroup grid for `n` voxels in chunks of 4096, as (x, y) under the 65535 per-dimension limit.
    pub(super) fn reduce_groups(n: usize) -> (u32, u32, u32) {
        let groups = n.div_ceil(4096) as u32;
        let gx = groups.min(65535);
        (groups, gx, groups.div_ceil(gx))
    }

    /// Parameters of the moment passes over `v` (all voxels or the nonzero ones, the values times
    /// `vscale`) and the workgroups of the partial pass (`reduce_groups`).
    fn moment_params(v: &GpuVolume, nonzero: bool, vscale: f32) -> (ReduceParams, (u32, u32, u32)) {
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
            vscale,
            pad: [0; 3],
        };
        (params, (groups, gx, gy))
    }

    /// The bind group of reduce.wgsl's passes (`labels`: the label map of the *_label passes).
    pub(super) fn reduce_bind_group(
        &self,
        params: &ReduceParams,
        view: &wgpu::TextureView,
        partials: &wgpu::Buffer,
        result: &wgpu::Buffer,
        hist: &wgpu::Buffer,
        labels: Option<&wgpu::TextureView>,
    ) -> wgpu::BindGroup {
        self.bind(
            &self.pipes.reduce_layout,
            params,
            vec![
                wgpu::BindingResource::TextureView(view),
                partials.as_entire_binding(),
                result.as_entire_binding(),
                hist.as_entire_binding(),
                wgpu::BindingResource::TextureView(labels.unwrap_or(&self.pipes.no_labels)),
            ],
        )
    }

    pub(super) fn scratch(&self, bytes: u64, read: bool) -> wgpu::Buffer {
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
    /// final merge pass, both on the GPU, in f32. When the moments overflow (values near the f32 limit)
    /// the pass is rerun on the values times a power of two that brings them near 2^20 and the moments
    /// are scaled back in f64, so the GPU agrees with the CPU (f64) over the whole f32 range.
    pub(super) fn stats(&self, v: &GpuVolume, nonzero: bool) -> Result<GpuMoments> {
        let p = self.stats_scaled(v, nonzero, 1.0)?;
        let mut m = GpuMoments::from_partial(&p, 1.0);
        if p.count > 0 && !(p.mean.is_finite() && p.m2.is_finite()) {
            let big = (p.min.abs().max(p.max.abs()) as f64).max(1.0);
            let vscale = 2f32.powi(20 - big.log2().ceil() as i32);
            m = GpuMoments::from_partial(&self.stats_scaled(v, nonzero, vscale)?, vscale);
        }
        Ok(m)
    }

    fn stats_scaled(&self, v: &GpuVolume, nonzero: bool, vscale: f32) -> Result<Partial> {
        let (params, (groups, gx, gy)) = Self::moment_params(v, nonzero, vscale);
        let view = v.tex.create_view(&Default::default());
        let partials = self.scratch(groups as u64 * 32, false);
        let result = self.scratch(32, false);
        let hist = self.scratch(4, false);
        let staging = self.scratch(32, true);
        let bg = self.reduce_bind_group(&params, &view, &partials, &result, &hist, None);
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = self.compute_pass(&mut enc);
            pass.set_bind_group(0, &bg, &[]);
            pass.set_pipeline(&self.pipes.stats_partial);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_pipeline(&self.pipes.stats_final);
            pass.dispatch_workgroups(1, 1, 1);
        }
        enc.copy_buffer_to_buffer(&result, 0, &staging, 0, 32);
        let idx = Some(self.queue_submit(Some(enc.finish())));
        let words = self.map_read(&staging, 32, idx)?;
        let mut pool = self.pool.lock().unwrap();
        for b in [partials, result, hist, staging] {
            pool.give_buffer(b);
        }
        Ok(*bytemuck::from_bytes::<Partial>(bytemuck::cast_slice(
            &words[..8],
        )))
    }

    /// The point kernel of statistics op `op` over `v`, built on the device (`shaders/stat_kernel.wgsl`)
    /// from a moment reduction over all voxels or the nonzero ones, the overflow retry included:
    /// recorded, not waited for. Returns a buffer holding the kernel (`Point`), to bind as the
    /// elementwise pass's uniform and give back to the pool after recording it. Needs
    /// `pipes.stat_kernel` (f64 shaders).
    pub(super) fn device_kernel(
        &self,
        v: &GpuVolume,
        op: &IntensityOp,
        mask: StatMask<'_>,
        template: &PointKernel,
    ) -> Result<wgpu::Buffer> {
        let (pipe, layout) = self
            .pipes
            .stat_kernel
            .as_ref()
            .expect("device statistics need f64 shaders");
        let (kind, a, b) = match *op {
            IntensityOp::Zscore { .. } => (0, 0.0, 0.0),
            IntensityOp::Minmax { min, max, .. } => (1, min, max),
            IntensityOp::Gamma { .. } => (2, 0.0, 0.0),
            IntensityOp::Contrast { .. } => (3, 0.0, 0.0),
            _ => unreachable!("only moment-based ops are built on the device"),
        };
        let nonzero = matches!(mask, StatMask::Nonzero);
        let labels = match mask {
            StatMask::Label(l) => Some(l.tex.create_view(&Default::default())),
            _ => None,
        };
        let (partial_pass, rescue_pass) = if labels.is_some() {
            (
                &self.pipes.stats_partial_label,
                &self.pipes.stats_partial_label_rescue,
            )
        } else {
            (&self.pipes.stats_partial, &self.pipes.stats_partial_rescue)
        };
        let (params, (groups, gx, gy)) = Self::moment_params(v, nonzero, 1.0);
        let view = v.tex.create_view(&Default::default());
        let partials = self.scratch(groups as u64 * 32, false);
        let result = self.scratch(64, false);
        // The retry's indirect dispatch arguments (stats_final_device writes them).
        let args = self.pool.lock().unwrap().buffer(
            &self.device,
            32,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::INDIRECT,
        );
        let point = self.pool.lock().unwrap().buffer(
            &self.device,
            std::mem::size_of::<PointParams>() as u64,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
        );
        let reduce =
            self.reduce_bind_group(&params, &view, &partials, &result, &args, labels.as_ref());
        // The retry reads its arguments: `args` may not be bound as storage while it does.
        let hist = self.scratch(4, false);
        let rescue =
            self.reduce_bind_group(&params, &view, &partials, &result, &hist, labels.as_ref());
        let build = self.bind(
            layout,
            &StatOpParams {
                point: PointParams::of(template),
                kind,
                pad: [0; 3],
                a,
                b,
            },
            vec![result.as_entire_binding(), point.as_entire_binding()],
        );
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = self.compute_pass(&mut enc);
            pass.set_bind_group(0, &reduce, &[]);
            pass.set_pipeline(partial_pass);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_pipeline(&self.pipes.stats_final_device);
            pass.dispatch_workgroups(1, 1, 1);
            pass.set_bind_group(0, &rescue, &[]);
            pass.set_pipeline(rescue_pass);
            pass.dispatch_workgroups_indirect(&args, 0);
            pass.set_pipeline(&self.pipes.stats_final_rescue);
            pass.dispatch_workgroups_indirect(&args, 12);
            pass.set_bind_group(0, &build, &[]);
            pass.set_pipeline(pipe);
            pass.dispatch_workgroups(1, 1, 1);
        }
        self.submit(enc.finish());
        let mut pool = self.pool.lock().unwrap();
        for b in [partials, result, args, hist] {
            pool.give_buffer(b);
        }
        Ok(point)
    }

    /// The kernel of a percentile clip of `v` at percentiles `q`, built on the device
    /// (`shaders/percentile.wgsl`: [`percentiles`](Self::percentiles)' two-level search, pass by
    /// pass, and `clip_params`): recorded, not waited for. Returns a buffer holding the kernel
    /// (`Point`), to bind as the elementwise pass's uniform and give back to the pool after
    /// recording it. Needs `pipes.percentile` (f64 shaders).
    pub(super) fn device_percentile_kernel(
        &self,
        v: &GpuVolume,
        q: [f64; 2],
        template: &PointKernel,
    ) -> Result<wgpu::Buffer> {
        const BINS: u64 = kernel::PERCENTILE_BINS as u64;
        let pipes = self
            .pipes
            .percentile
            .as_ref()
            .expect("device percentiles need f64 shaders");
        let (params, (groups, gx, gy)) = Self::moment_params(v, false, 1.0);
        let n = params.shape[3] as usize;
        // The host's ranks (GpuContext::percentiles): floor(r) and the next, at most n - 1.
        let mut ranks = [0u32; 4];
        let mut frac = [0f64; 2];
        for (j, &q) in q.iter().enumerate() {
            let r = q / 100.0 * (n - 1) as f64;
            let lo = r.floor() as usize;
            ranks[2 * j] = lo.min(n - 1) as u32;
            ranks[2 * j + 1] = (lo + 1).min(n - 1) as u32;
            frac[j] = r - r.floor();
        }
        let view = v.tex.create_view(&Default::default());
        let partials = self.scratch(groups as u64 * 32, false);
        let result = self.scratch(32, false);
        let unused = self.scratch(4, false);
        let hist = self.scratch(5 * BINS * 4, false);
        let search = self.scratch(128, false);
        let point = self.pool.lock().unwrap().buffer(
            &self.device,
            std::mem::size_of::<PointParams>() as u64,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
        );
        let reduce = self.reduce_bind_group(&params, &view, &partials, &result, &unused, None);
        let search_bg = self.bind(
            &pipes.layout,
            &PercentileParams {
                shape: params.shape,
                groups_x: gx,
                pad: [0; 3],
                ranks,
                frac,
                point: PointParams::of(template),
            },
            vec![
                wgpu::BindingResource::TextureView(&view),
                result.as_entire_binding(),
                hist.as_entire_binding(),
                search.as_entire_binding(),
                point.as_entire_binding(),
            ],
        );
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&hist, 0, None);
        {
            let mut pass = self.compute_pass(&mut enc);
            pass.set_bind_group(0, &reduce, &[]);
            pass.set_pipeline(&self.pipes.stats_partial);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_pipeline(&self.pipes.stats_final);
            pass.dispatch_workgroups(1, 1, 1);
            pass.set_bind_group(0, &search_bg, &[]);
            pass.set_pipeline(&pipes.setup);
            pass.dispatch_workgroups(1, 1, 1);
            pass.set_pipeline(&pipes.level1);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_pipeline(&pipes.select);
            pass.dispatch_workgroups(1, 1, 1);
            pass.set_pipeline(&pipes.level2);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_pipeline(&pipes.finish);
            pass.dispatch_workgroups(1, 1, 1);
        }
        self.submit(enc.finish());
        let mut pool = self.pool.lock().unwrap();
        for b in [partials, result, unused, hist, search] {
            pool.give_buffer(b);
        }
        Ok(point)
    }

    /// Histogram of 65536 bins of the values times `vscale` (`filter`: restrict to one level-1 bin,
    /// counted in sub-bins of it).
    pub(super) fn histogram(
        &self,
        v: &GpuVolume,
        vscale: f32,
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
            vscale,
            pad: [0; 3],
        };
        let view = v.tex.create_view(&Default::default());
        let dummy = self.scratch(32, false);
        let dummy2 = self.scratch(32, false);
        let hist = self.scratch(BINS * 4, false);
        let staging = self.scratch(BINS * 4, true);
        let bg = self.reduce_bind_group(&params, &view, &dummy, &dummy2, &hist, None);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&hist, 0, None);
        {
            let mut pass = self.compute_pass(&mut enc);
            pass.set_bind_group(0, &bg, &[]);
            pass.set_pipeline(&self.pipes.histogram);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        enc.copy_buffer_to_buffer(&hist, 0, &staging, 0, BINS * 4);
        let idx = Some(self.queue_submit(Some(enc.finish())));
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
    /// (max - min) / 2^33, reported as the GPU tolerance. Values whose range exceeds f32 are binned
    /// at a quarter of their size (exact: a power of two).
    pub(super) fn percentiles(&self, v: &GpuVolume, qs: &[f64]) -> Result<Vec<f64>> {
        let st = self.stats(v, false)?;
        let (rmin, rmax) = (st.min, st.max);
        let n = st.count;
        if n == 0 || rmin == rmax {
            return Ok(vec![rmin as f64; qs.len()]);
        }
        let vscale: f32 = if (rmax - rmin).is_finite() { 1.0 } else { 0.25 };
        let (min, max) = (rmin * vscale, rmax * vscale);
        let bins = kernel::PERCENTILE_BINS;
        let scale = bins as f32 / (max - min);
        let h1 = self.histogram(v, vscale, min, scale, None)?;
        let cum1 = cumulative(&h1);
        let mut level2: std::collections::HashMap<usize, (f32, f32, Vec<u64>)> = Default::default();
        let mut value_at = |rank: usize| -> Result<f64> {
            let b = cum1.partition_point(|&c| c <= rank as u64) - 1;
            if let std::collections::hash_map::Entry::Vacant(e) = level2.entry(b) {
                let edge = min + b as f32 / scale;
                let sub_scale = scale * bins as f32;
                let h2 =
                    self.histogram(v, vscale, edge, sub_scale, Some((b as u32, min, scale)))?;
                e.insert((edge, sub_scale, cumulative(&h2)));
            }
            let (edge, sub_scale, cum2) = &level2[&b];
            let within = (rank as u64 - cum1[b]).min(cum2[cum2.len() - 1].saturating_sub(1));
            let s = cum2.partition_point(|&c| c <= within) - 1;
            Ok((*edge as f64 + (s as f64 + 0.5) / *sub_scale as f64) / vscale as f64)
        };
        let mut out = Vec::with_capacity(qs.len());
        for &q in qs {
            let r = q / 100.0 * (n - 1) as f64;
            let lo = r.floor() as usize;
            let a = value_at(lo.min(n - 1))?;
            let b = value_at((lo + 1).min(n - 1))?;
            out.push((a + (b - a) * (r - r.floor())).clamp(rmin as f64, rmax as f64));
        }
        Ok(out)
    }

    /// Statistics in the CPU's form.
    pub(super) fn host_stats(&self, v: &GpuVolume, nonzero: bool) -> Result<crate::volume::Stats> {
        let s = self.stats(v, nonzero)?;
        let std = if s.count > 0 {
            (s.m2 / s.count as f64).max(0.0).sqrt()
        } else {
            0.0
        };
        Ok(crate::volume::Stats {
            count: s.count,
            min: s.min as f64,
            max: s.max as f64,
            mean: s.mean,
            std,
        })
    }
}

/// The voxels a device-built statistic reduces over.
#[derive(Clone, Copy)]
pub(super) enum StatMask<'a> {
    All,
    Nonzero,
    /// Those whose label in this label map (on the image's grid) is nonzero.
    Label(&'a GpuVolume),
}

/// Moments of an image computed on the GPU, unscaled on the host.
pub(super) struct GpuMoments {
    pub(super) count: usize,
    pub(super) mean: f64,
    pub(super) m2: f64,
    pub(super) min: f32,
    pub(super) max: f32,
}

impl GpuMoments {
    fn from_partial(p: &Partial, vscale: f32) -> GpuMoments {
        let k = vscale as f64;
        GpuMoments {
            count: p.count as usize,
            mean: p.mean as f64 / k,
            m2: p.m2 as f64 / (k * k),
            min: p.min,
            max: p.max,
        }
    }
}
