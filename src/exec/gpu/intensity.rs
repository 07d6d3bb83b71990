//! Intensity stages on the GPU: point kernels and the separable blur (`shaders/intensity.wgsl`,
//! `shaders/blur.wgsl`; CPU twin `exec/cpu/intensity.rs`); k-space artefacts are in `kspace.rs`.

use super::pipelines::BLUR_RUN;
use super::reduce::StatMask;
use super::*;

impl GpuContext {
    pub(super) fn elementwise(&self, v: &GpuVolume, k: &PointKernel, dest: Dest) -> Result<Output> {
        let point = self.uniform(&PointParams::of(k));
        self.elementwise_with(v, PointParams::features(k), point.binding(), dest)
    }

    /// The elementwise pass of the point kernel bound by `point` (a `Point` uniform), with the
    /// `[gamma, noise, bias]` features it may use compiled in.
    fn elementwise_with(
        &self,
        v: &GpuVolume,
        features: [bool; 3],
        point: wgpu::BindingResource<'_>,
        dest: Dest,
    ) -> Result<Output> {
        let s = v.shape;
        let view = v.tex.create_view(&Default::default());
        let p = pitch(s[0]);
        let pipe = self.pipes.elementwise(&self.device, features);
        self.slabs(s, DType::F32, dest, |pass, buf, z0, slab| {
            let params = ElementParams {
                shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                pitch: p as u32,
                slab,
                pad: [0; 2],
            };
            self.dispatch_slab(
                pass,
                &pipe,
                &self.pipes.elementwise_layout,
                &params,
                vec![
                    wgpu::BindingResource::TextureView(&view),
                    buf.as_entire_binding(),
                    point.clone(),
                ],
                [s[0], s[1]],
                slab,
            );
        })
    }

    /// One separable Gaussian pass along `axis`.
    pub(super) fn blur_pass(
        &self,
        v: &GpuVolume,
        axis: usize,
        w: &[f32],
        dest: Dest,
    ) -> Result<Output> {
        let s = v.shape;
        let view = v.tex.create_view(&Default::default());
        let p = pitch(s[0]);
        let weights = self.storage_slot(w);
        self.slabs(s, DType::F32, dest, |pass, buf, z0, slab| {
            let params = BlurParams {
                shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                axis: axis as u32,
                radius: (w.len() / 2) as u32,
                pitch: p as u32,
                slab,
            };
            let resources = vec![
                wgpu::BindingResource::TextureView(&view),
                buf.as_entire_binding(),
                weights.binding(),
            ];
            // Each invocation computes BLUR_RUN outputs along the axis: the dispatch covers that
            // many fewer voxels along it.
            let mut n = [s[0], s[1], slab as usize];
            n[axis] = n[axis].div_ceil(BLUR_RUN as usize);
            self.dispatch_slab(
                pass,
                &self.pipes.blur[axis],
                &self.pipes.blur_layout,
                &params,
                resources,
                [n[0], n[1]],
                n[2] as u32,
            );
        })
    }

    /// Moments of `v` (all voxels or nonzero ones), from `input`'s cache when `v` is that subject's
    /// untouched volume `vi` (computed and kept there on the first call).
    fn moments(
        &self,
        v: &GpuVolume,
        nonzero: bool,
        input: Option<(&InputStats, usize)>,
    ) -> Result<crate::volume::Stats> {
        InputStats::moments_or(input, StatKey::Moments(nonzero), || {
            self.host_stats(v, nonzero)
        })
    }

    /// [`percentiles`](Self::percentiles) of `q`, cached as [`moments`](Self::moments) are.
    fn cached_percentiles(
        &self,
        v: &GpuVolume,
        q: [f64; 2],
        input: Option<(&InputStats, usize)>,
    ) -> Result<[f64; 2]> {
        match InputStats::get_or(input, StatKey::Percentiles(q.map(f64::to_bits)), || {
            let p = self.percentiles(v, &q)?;
            Ok(Cached::Percentiles([p[0], p[1]]))
        })? {
            Cached::Percentiles(p) => Ok(p),
            Cached::Moments(_) => unreachable!("keyed by kind"),
        }
    }

    /// The elementwise pass of a statistics op whose kernel (`point`) the device built: the template's
    /// features pick the pipeline; the kernel buffer goes back to the pool once recorded.
    fn device_point(
        &self,
        v: &GpuVolume,
        template: &PointKernel,
        point: wgpu::Buffer,
        dest: Dest,
    ) -> Result<Output> {
        let out = self.elementwise_with(
            v,
            PointParams::features(template),
            point.as_entire_binding(),
            dest,
        );
        self.pool.lock().unwrap().give_buffer(point);
        out
    }

    /// Applies an intensity op to an image on the GPU: statistics on the device, then one point kernel
    /// (or, for blur, up to three separable passes). `input`: the cache of the subject's statistics
    /// and the volume's index, when `v` is that volume untouched (a plan's leading zscore, minmax or
    /// percentile clip then takes its statistics from the first sample that computed them).
    pub(super) fn intensity(
        &self,
        v: GpuVolume,
        op: &IntensityOp,
        grid: &crate::grid::Grid,
        dest: Dest,
        label_stats: Option<LabelMask<'_>>,
        input: Option<(&InputStats, usize)>,
    ) -> Result<(GpuVolume, Option<Output>)> {
        let spacing = grid.spacing();
        let k = match kernel::needs(op) {
            Needs::None(k) => k,
            Needs::LabelStats => {
                // Statistics over the label map's voxels: taken by the caller on the host
                // (`label_masked`), or reduced here over the label map on the device.
                match label_stats.ok_or_else(|| {
                    Error::invalid(
                        "\"mask\": \"label\" takes its voxels from the subject's first label map, \
                         and this subject has none: add a label map (--label) or use \
                         \"nonzero\"/\"all\"",
                    )
                })? {
                    LabelMask::Stats(st) => kernel::kernel_from(op, &st, None),
                    LabelMask::Device(labels) => {
                        let template = kernel::kernel_from(op, &kernel::EMPTY_STATS, None);
                        let point =
                            self.device_kernel(&v, op, StatMask::Label(labels), &template)?;
                        let out = self.device_point(&v, &template, point, dest)?;
                        return Ok((v, Some(out)));
                    }
                }
            }
            Needs::Host => {
                // Quantile-based maps: read back, apply the host code, upload (same result as the CPU).
                let mut values = self.read_f32(&v)?.into();
                cpu_int::apply(op, &mut values, grid)?;
                let out = self.host_output(Voxels::from(values), v.shape, dest)?;
                return Ok((v, Some(out)));
            }
            Needs::Stats { .. } | Needs::MinMax if input.is_none() && self.device_statistics() => {
                // A changed volume: the kernel is built on the device from a device reduction, so
                // the device goes on without waiting for the host (an untouched input's statistics
                // come from the subject's cache instead, read back once).
                let mask = match kernel::needs(op) {
                    Needs::Stats { nonzero: true } => StatMask::Nonzero,
                    _ => StatMask::All,
                };
                let template = kernel::kernel_from(op, &kernel::EMPTY_STATS, None);
                let point = self.device_kernel(&v, op, mask, &template)?;
                let out = self.device_point(&v, &template, point, dest)?;
                return Ok((v, Some(out)));
            }
            Needs::Percentiles(q)
                if input.is_none()
                    && self.device_statistics()
                    && self.pipes.percentile.is_some() =>
            {
                // A changed volume: the percentiles and the clip kernel on the device, as above.
                let template = kernel::kernel_from(op, &kernel::EMPTY_STATS, Some([0.0; 2]));
                let point = self.device_percentile_kernel(&v, q, &template)?;
                let out = self.device_point(&v, &template, point, dest)?;
                return Ok((v, Some(out)));
            }
            Needs::Stats { nonzero } => {
                kernel::kernel_from(op, &self.moments(&v, nonzero, input)?, None)
            }
            Needs::MinMax => kernel::kernel_from(op, &self.moments(&v, false, input)?, None),
            Needs::Percentiles(q) => {
                let p = self.cached_percentiles(&v, q, input)?;
                // (A percentile clip's kernel needs nothing else.)
                kernel::kernel_from(op, &kernel::EMPTY_STATS, Some(p))
            }
            Needs::KSpace => {
                let IntensityOp::KSpace(k) = op else {
                    unreachable!()
                };
                let out = self.kspace(&v, k, grid, dest)?;
                return Ok((v, Some(out)));
            }
            Needs::LowResolution => {
                let IntensityOp::LowResolution { zoom } = op else {
                    unreachable!()
                };
                let g = grid.clone();
                let Some(down) = crate::transform::spatial::low_resolution(&g, *zoom)? else {
                    let out = self.elementwise(&v, &kernel::identity(), dest)?;
                    return Ok((v, Some(out)));
                };
                // Nearest onto the coarse grid, then trilinear back (CPU twin: low_resolution).
                let map = |matrix, grid, nearest_images| SamplingMap {
                    matrix,
                    post: crate::grid::IDENTITY,
                    field: None,
                    grid,
                    fill: Fill::Edge,
                    nearest_images,
                    label_interp: crate::transform::LabelInterp::Nearest,
                };
                let up =
                    crate::grid::mat_inv(&down.pull).expect("a resize pull-back is invertible");
                let Output::Texture(tex) = self.resample(
                    &v,
                    &map(down.pull, down.grid.clone(), true),
                    None,
                    super::resample::GpuOutside::Edge,
                    None,
                    Dest::Texture,
                )?
                else {
                    unreachable!("a texture was asked for")
                };
                let low = GpuVolume {
                    tex,
                    shape: down.grid.shape,
                    kind: Kind::Image,
                    dtype: DType::F32,
                };
                let out = self.resample(
                    &low,
                    &map(up, g, false),
                    None,
                    super::resample::GpuOutside::Edge,
                    None,
                    dest,
                );
                self.pool.lock().unwrap().give_texture(low.tex);
                return Ok((v, Some(out?)));
            }
            Needs::Blur => {
                let IntensityOp::Blur { sigma_mm } = op else {
                    unreachable!()
                };
                let axes: Vec<usize> = (0..3)
                    .filter(|&a| sigma_mm[a] / spacing[a] > 0.0 && v.shape[a] > 1)
                    .collect();
                if axes.is_empty() {
                    let out = self.elementwise(&v, &kernel::identity(), dest)?;
                    return Ok((v, Some(out)));
                }
                let mut cur = v;
                for (n, &a) in axes.iter().enumerate() {
                    let w = kernel::gaussian_weights(sigma_mm[a] / spacing[a]);
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
}

/// A label-masked statistic's input (`"mask": "label"`): statistics taken on the host, or the label
/// map on the device to reduce over.
pub(super) enum LabelMask<'a> {
    Stats(crate::volume::Stats),
    Device(&'a GpuVolume),
}

/// What [`InputStats`] keeps: moments (all voxels or nonzero ones) or a pair of percentiles.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum StatKey {
    Moments(bool),
    /// Over the first label map's nonzero voxels (valid while that label map is as uploaded too).
    LabelMasked,
    Percentiles([u64; 2]),
}

#[derive(Clone, Copy)]
pub(super) enum Cached {
    Moments(crate::volume::Stats),
    Percentiles([f64; 2]),
}

/// Statistics of a subject's volumes as uploaded, by volume index: every sample of a pipeline that
/// starts with zscore, minmax or a percentile clip needs the same ones, and reading them back is a
/// wait for the device. Lives as long as the upload it describes (an [`Uploaded`] subject, a resident
/// one), whose voxels cannot change meanwhile.
#[derive(Default)]
pub(crate) struct InputStats(std::sync::Mutex<std::collections::HashMap<(usize, StatKey), Cached>>);

impl InputStats {
    /// [`get_or`](Self::get_or) of a statistic kept as moments (`key`: `Moments` or `LabelMasked`).
    pub(super) fn moments_or(
        input: Option<(&InputStats, usize)>,
        key: StatKey,
        compute: impl FnOnce() -> Result<crate::volume::Stats>,
    ) -> Result<crate::volume::Stats> {
        match Self::get_or(input, key, || Ok(Cached::Moments(compute()?)))? {
            Cached::Moments(s) => Ok(s),
            Cached::Percentiles(_) => unreachable!("keyed by kind"),
        }
    }

    /// The statistic `key` of volume `input.1` from the cache `input.0`, computed by `compute` and
    /// kept on the first call; computed every time without a cache.
    fn get_or(
        input: Option<(&InputStats, usize)>,
        key: StatKey,
        compute: impl FnOnce() -> Result<Cached>,
    ) -> Result<Cached> {
        let Some((cache, vi)) = input else {
            return compute();
        };
        if let Some(c) = cache.0.lock().unwrap().get(&(vi, key)) {
            return Ok(*c);
        }
        let c = compute()?;
        cache.0.lock().unwrap().insert((vi, key), c);
        Ok(c)
    }
}
