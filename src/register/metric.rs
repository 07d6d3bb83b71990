//! The metric over fixed-image samples on the CPU: the twin of `shaders/metric.wgsl` (same sums, same
//! chunking), and the value computed from the sums by both executors.

use super::Metric;
use crate::error::Result;
use crate::grid::{mat_apply, mat_mul, Mat4};
use rayon::prelude::*;

/// Trilinear sample of `data` (shape `s`) at voxel coordinate `q`; None outside `[0, n - 1]`.
#[inline]
fn sample(data: &[f32], s: [usize; 3], q: [f64; 3]) -> Option<f64> {
    let mut i0 = [0usize; 3];
    let mut f = [0f64; 3];
    for a in 0..3 {
        let n = s[a] as f64;
        if !(q[a] >= 0.0 && q[a] <= n - 1.0) {
            return None;
        }
        let fl = q[a].floor().min((s[a].max(2) - 2) as f64).max(0.0);
        i0[a] = fl as usize;
        f[a] = q[a] - fl;
    }
    let at = |i: usize, j: usize, k: usize| -> f64 {
        let (i, j, k) = (i.min(s[0] - 1), j.min(s[1] - 1), k.min(s[2] - 1));
        data[i + s[0] * (j + s[1] * k)] as f64
    };
    let (i, j, k) = (i0[0], i0[1], i0[2]);
    let l = |a: f64, b: f64, t: f64| a + (b - a) * t;
    let c00 = l(at(i, j, k), at(i + 1, j, k), f[0]);
    let c10 = l(at(i, j + 1, k), at(i + 1, j + 1, k), f[0]);
    let c01 = l(at(i, j, k + 1), at(i + 1, j, k + 1), f[0]);
    let c11 = l(at(i, j + 1, k + 1), at(i + 1, j + 1, k + 1), f[0]);
    Some(l(l(c00, c10, f[1]), l(c01, c11, f[1]), f[2]))
}

/// Fixed samples of one level: world positions and values.
pub(super) struct Samples {
    pub(super) pos: Vec<[f64; 3]>,
    pub(super) val: Vec<f32>,
    pub(super) fmin: f64,
    pub(super) fmax: f64,
}

/// Samples per chunk of the metric's partial sums (summed in order: same result for every thread count).
const CHUNK: usize = 4096;

pub(super) struct Level<'a> {
    pub(super) samples: Samples,
    pub(super) moving: &'a [f32],
    pub(super) mshape: [usize; 3],
    pub(super) world_to_moving: Mat4,
    pub(super) mmin: f64,
    pub(super) mmax: f64,
    pub(super) metric: Metric,
    pub(super) bins: usize,
    pub(super) gpu: Option<(
        std::sync::Arc<crate::exec::gpu::GpuContext>,
        crate::exec::gpu::GpuMetric,
    )>,
}

impl Level<'_> {
    pub(super) fn fscale(&self) -> f64 {
        (self.bins as f64 - 1.0) / (self.samples.fmax - self.samples.fmin).max(1e-12)
    }

    pub(super) fn mscale(&self) -> f64 {
        (self.bins as f64 - 1.0) / (self.mmax - self.mmin).max(1e-12)
    }

    /// Metric values (lower is better) of world matrices `ms`, on the CPU or the GPU.
    pub(super) fn values(&self, ms: &[Mat4]) -> Result<Vec<f64>> {
        let n = self.samples.pos.len();
        match &self.gpu {
            None => Ok(ms
                .iter()
                .map(|m| {
                    let (moments, hist) = self.sums(m);
                    finish(self.metric, n, self.bins, &moments, &hist)
                })
                .collect()),
            Some((ctx, gm)) => {
                let mut out = Vec::with_capacity(ms.len());
                for group in ms.chunks(crate::exec::gpu::MAX_TRANSFORMS) {
                    let rows: Vec<[[f32; 4]; 3]> = group
                        .iter()
                        .map(|m| {
                            let v = mat_mul(&self.world_to_moving, m);
                            [0, 1, 2].map(|r| [0, 1, 2, 3].map(|c| v[r][c] as f32))
                        })
                        .collect();
                    for s in ctx.metric_eval(gm, &rows)? {
                        out.push(finish(self.metric, n, self.bins, &s.moments, &s.hist));
                    }
                }
                Ok(out)
            }
        }
    }

    /// CPU sums of world matrix `m` (the twin of `shaders/metric.wgsl`): `[count, sum f, sum m, sum ff
    /// (MSE: sum (f - m)^2), sum mm, sum fm]` and, for MI, the joint histogram, in chunks of 4096
    /// samples summed in order.
    fn sums(&self, m: &Mat4) -> ([f64; 6], Vec<f64>) {
        let to_vox = mat_mul(&self.world_to_moving, m);
        let n = self.samples.pos.len();
        let bins = self.bins;
        let (fscale, mscale) = (self.fscale(), self.mscale());
        let mi = self.metric == Metric::Mi;
        let chunks: Vec<(Vec<f64>, [f64; 6])> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut hist = if mi {
                    vec![0.0; bins * bins]
                } else {
                    Vec::new()
                };
                let mut s = [0.0f64; 6];
                for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                    let Some(mv) = sample(
                        self.moving,
                        self.mshape,
                        mat_apply(&to_vox, self.samples.pos[i]),
                    ) else {
                        continue;
                    };
                    let fv = self.samples.val[i] as f64;
                    s[0] += 1.0;
                    s[1] += fv;
                    s[2] += mv;
                    s[3] += if self.metric == Metric::Mse {
                        (fv - mv) * (fv - mv)
                    } else {
                        fv * fv
                    };
                    s[4] += mv * mv;
                    s[5] += fv * mv;
                    if mi {
                        // Linear Parzen windows on both axes: the histogram, and so the metric,
                        // change smoothly with the transform.
                        let x = ((fv - self.samples.fmin) * fscale).clamp(0.0, bins as f64 - 1.0);
                        let y = ((mv - self.mmin) * mscale).clamp(0.0, bins as f64 - 1.0);
                        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
                        let (x1, y1) = ((x0 + 1).min(bins - 1), (y0 + 1).min(bins - 1));
                        let (tx, ty) = (x - x0 as f64, y - y0 as f64);
                        hist[x0 * bins + y0] += (1.0 - tx) * (1.0 - ty);
                        hist[x1 * bins + y0] += tx * (1.0 - ty);
                        hist[x0 * bins + y1] += (1.0 - tx) * ty;
                        hist[x1 * bins + y1] += tx * ty;
                    }
                }
                (hist, s)
            })
            .collect();
        let mut s = [0.0f64; 6];
        let mut hist = vec![0.0; if mi { bins * bins } else { 0 }];
        for (h, p) in &chunks {
            for k in 0..6 {
                s[k] += p[k];
            }
            for (a, b) in hist.iter_mut().zip(h) {
                *a += b;
            }
        }
        (s, hist)
    }
}

/// The metric (lower is better: MI and NCC negated) from the sums of `n` samples; +inf when under 10%
/// of them landed inside the moving image.
fn finish(metric: Metric, n: usize, bins: usize, s: &[f64; 6], hist: &[f64]) -> f64 {
    let count = s[0];
    if count < 0.1 * n as f64 || count < 16.0 {
        return f64::INFINITY;
    }
    match metric {
        Metric::Mse => s[3] / count,
        Metric::Ncc => {
            let cov = s[5] - s[1] * s[2] / count;
            let vf = s[3] - s[1] * s[1] / count;
            let vm = s[4] - s[2] * s[2] / count;
            if vf <= 0.0 || vm <= 0.0 {
                0.0
            } else {
                -cov / (vf * vm).sqrt()
            }
        }
        Metric::Mi => {
            let total: f64 = hist.iter().sum();
            if total <= 0.0 {
                return f64::INFINITY;
            }
            let mut pf = vec![0.0; bins];
            let mut pm = vec![0.0; bins];
            for x in 0..bins {
                for y in 0..bins {
                    let p = hist[x * bins + y] / total;
                    pf[x] += p;
                    pm[y] += p;
                }
            }
            let mut mi = 0.0;
            for x in 0..bins {
                for y in 0..bins {
                    let p = hist[x * bins + y] / total;
                    if p > 0.0 {
                        mi += p * (p / (pf[x] * pm[y])).ln();
                    }
                }
            }
            -mi
        }
    }
}
