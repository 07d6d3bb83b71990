//! Registration metric sums on the GPU (`shaders/metric.wgsl`; CPU twin: the chunk sums of
//! `src/register/metric.rs`). The moving image and the fixed samples are uploaded once per pyramid
//! level; each evaluation sends up to 32 candidate transforms and reads back per-chunk moment sums
//! (summed on the host in chunk order, in f64) and, for mutual information, one joint histogram per
//! transform; a gradient pass reads back 12 sums per chunk.

use super::*;

/// Transforms per dispatch (the uniform holds 3 rows of each).
pub const MAX_TRANSFORMS: usize = 32;
const CHUNK: usize = 4096;
/// Fixed-point units of one sample's Parzen weight in the histogram (as in the shader).
const UNIT: f64 = 4096.0;

/// `Params` of `shaders/metric.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MetricParams {
    mshape: [u32; 4],
    k: u32,
    bins: u32,
    mode: u32,
    chunks: u32,
    fmin: f32,
    fscale: f32,
    mmin: f32,
    mscale: f32,
    coef: [f32; 4],
    rows: [[f32; 4]; 3 * MAX_TRANSFORMS],
}

/// A moving image and fixed samples resident on the device for one pyramid level.
pub struct GpuMetric {
    moving: GpuVolume,
    samples: wgpu::Buffer,
    n: usize,
    bins: usize,
    /// 0: moments (NCC), 1: moments + joint histogram (MI), 2: moments with (f - m)^2 (MSE).
    mode: u32,
    /// fmin, fscale, mmin, mscale of the histogram.
    scales: [f32; 4],
}

/// What one transform's evaluation gives: `[count, sum f, sum m, sum ff (or (f - m)^2), sum mm,
/// sum fm]` and, for mutual information, the joint histogram (fixed x moving, row-major) in samples.
pub struct MetricSums {
    /// Moment sums.
    pub moments: [f64; 6],
    /// Joint histogram (empty unless MI).
    pub hist: Vec<f64>,
}

impl GpuMetric {
    /// The uniform of `k` transforms over `chunks` chunks (rows and coefficients left to the caller).
    fn params(&self, k: usize, chunks: usize) -> MetricParams {
        MetricParams {
            mshape: [
                self.moving.shape[0] as u32,
                self.moving.shape[1] as u32,
                self.moving.shape[2] as u32,
                self.n as u32,
            ],
            k: k as u32,
            bins: self.bins as u32,
            mode: self.mode,
            chunks: chunks as u32,
            fmin: self.scales[0],
            fscale: self.scales[1],
            mmin: self.scales[2],
            mscale: self.scales[3],
            coef: [0.0; 4],
            rows: [[0.0; 4]; 3 * MAX_TRANSFORMS],
        }
    }
}

impl GpuContext {
    /// Uploads the moving image and the samples (`[x, y, z, fixed value]`, world mm). `mode`: 0 NCC,
    /// 1 MI, 2 MSE; `scales`: `[fmin, fscale, mmin, mscale]` of the MI histogram.
    pub fn metric_setup(
        &self,
        moving: &Volume,
        samples: &[[f32; 4]],
        mode: u32,
        bins: usize,
        scales: [f32; 4],
    ) -> Result<GpuMetric> {
        let _one_at_a_time = self.one_at_a_time();
        self.scoped("GPU metric setup", || {
            let moving = self.upload(moving)?;
            let samples_buf = self
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("voxaug metric samples"),
                    contents: bytemuck::cast_slice(samples),
                    usage: wgpu::BufferUsages::STORAGE,
                });
            Ok(GpuMetric {
                moving,
                samples: samples_buf,
                n: samples.len(),
                bins,
                mode,
                scales,
            })
        })
    }

    /// Sums for each transform (`rows`: fixed world -> moving voxel, the first three rows; at most
    /// [`MAX_TRANSFORMS`]).
    pub fn metric_eval(&self, m: &GpuMetric, rows: &[[[f32; 4]; 3]]) -> Result<Vec<MetricSums>> {
        if rows.is_empty() || rows.len() > MAX_TRANSFORMS {
            return Err(Error::invalid(format!(
                "metric_eval takes 1 to {MAX_TRANSFORMS} transforms, got {}",
                rows.len()
            )));
        }
        let _one_at_a_time = self.one_at_a_time();
        self.scoped("GPU metric", || {
            let k = rows.len();
            let chunks = m.n.div_ceil(CHUNK).max(1);
            let mut params = m.params(k, chunks);
            for (t, r) in rows.iter().enumerate() {
                params.rows[3 * t..3 * t + 3].copy_from_slice(r);
            }
            let sums_bytes = (k * chunks * 6 * 4) as u64;
            let hist_len = if m.mode == 1 { k * m.bins * m.bins } else { 1 };
            let hist_bytes = (hist_len * 4) as u64;
            // Pooled: an optimisation evaluates the same sizes hundreds of times.
            let sums = self.scratch(sums_bytes, false);
            let hist = self.scratch(hist_bytes, false);
            let staging = self.scratch(sums_bytes + hist_bytes, true);
            let view = m.moving.tex.create_view(&Default::default());
            let bg = self.bind(
                &self.pipes.metric_layout,
                &params,
                vec![
                    wgpu::BindingResource::TextureView(&view),
                    m.samples.as_entire_binding(),
                    sums.as_entire_binding(),
                    hist.as_entire_binding(),
                ],
            );
            let mut enc = self.device.create_command_encoder(&Default::default());
            enc.clear_buffer(&hist, 0, None);
            {
                let mut pass = self.compute_pass(&mut enc);
                pass.set_pipeline(&self.pipes.metric);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(chunks as u32, k as u32, 1);
            }
            enc.copy_buffer_to_buffer(&sums, 0, &staging, 0, sums_bytes);
            enc.copy_buffer_to_buffer(&hist, 0, &staging, sums_bytes, hist_bytes);
            let idx = Some(self.queue_submit(Some(enc.finish())));
            let words = self.map_read(&staging, sums_bytes + hist_bytes, idx)?;
            {
                let mut pool = self.pool.lock().unwrap();
                for b in [sums, hist, staging] {
                    pool.give_buffer(b);
                }
            }
            let f: &[f32] = bytemuck::cast_slice(&words[..k * chunks * 6]);
            let h = &words[k * chunks * 6..];
            Ok((0..k)
                .map(|t| {
                    let mut moments = [0.0f64; 6];
                    for c in 0..chunks {
                        for (j, v) in moments.iter_mut().enumerate() {
                            *v += f[(t * chunks + c) * 6 + j] as f64;
                        }
                    }
                    let hist = if m.mode == 1 {
                        let b2 = m.bins * m.bins;
                        h[t * b2..(t + 1) * b2]
                            .iter()
                            .map(|&u| u as f64 / UNIT)
                            .collect()
                    } else {
                        Vec::new()
                    };
                    MetricSums { moments, hist }
                })
                .collect())
        })
    }

    /// Gradient sums of one transform (`metric_grad` in `shaders/metric.wgsl`): `S[a][c] = sum_s w_s
    /// dm_s/dq_a [x, y, z, 1]_c`, row-major, f32 per 4096-sample chunk summed in f64 in chunk order.
    /// Weights: `coef[0] + coef[1] m + coef[2] f` (NCC, MSE) or, for MI, `sum_k B3'(k - y)
    /// table[fixed bin][k]` (`table`: bins x bins).
    pub fn metric_grad(
        &self,
        m: &GpuMetric,
        rows: &[[f32; 4]; 3],
        coef: [f32; 4],
        table: &[f32],
    ) -> Result<[f64; 12]> {
        if m.mode == 1 && table.len() != m.bins * m.bins {
            return Err(Error::invalid(format!(
                "metric_grad: the MI table has {} entries, not bins^2 = {}",
                table.len(),
                m.bins * m.bins
            )));
        }
        let _one_at_a_time = self.one_at_a_time();
        self.scoped("GPU metric gradient", || {
            let chunks = m.n.div_ceil(CHUNK).max(1);
            let mut params = m.params(1, chunks);
            params.coef = coef;
            params.rows[..3].copy_from_slice(rows);
            let sums_bytes = (chunks * 12 * 4) as u64;
            let table_buf = self.scratch((table.len().max(1) * 4) as u64, false);
            if !table.is_empty() {
                self.queue
                    .write_buffer(&table_buf, 0, bytemuck::cast_slice(table));
            }
            let sums = self.scratch(sums_bytes, false);
            let staging = self.scratch(sums_bytes, true);
            let view = m.moving.tex.create_view(&Default::default());
            let bg = self.bind(
                &self.pipes.metric_grad_layout,
                &params,
                vec![
                    wgpu::BindingResource::TextureView(&view),
                    m.samples.as_entire_binding(),
                    sums.as_entire_binding(),
                    table_buf.as_entire_binding(),
                ],
            );
            let mut enc = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = self.compute_pass(&mut enc);
                pass.set_pipeline(&self.pipes.metric_grad);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(chunks as u32, 1, 1);
            }
            enc.copy_buffer_to_buffer(&sums, 0, &staging, 0, sums_bytes);
            let idx = Some(self.queue_submit(Some(enc.finish())));
            let words = self.map_read(&staging, sums_bytes, idx)?;
            {
                let mut pool = self.pool.lock().unwrap();
                for b in [sums, table_buf, staging] {
                    pool.give_buffer(b);
                }
            }
            let f: &[f32] = bytemuck::cast_slice(&words[..chunks * 12]);
            let mut out = [0.0f64; 12];
            for c in 0..chunks {
                for (j, v) in out.iter_mut().enumerate() {
                    *v += f[c * 12 + j] as f64;
                }
            }
            Ok(out)
        })
    }

    /// Returns a level's textures to the pool.
    pub fn metric_release(&self, m: GpuMetric) {
        self.pool.lock().unwrap().give_texture(m.moving.tex);
    }
}
