//! The metric and its gradient over fixed-image samples on the CPU: the twin of `shaders/metric.wgsl`
//! (same sums, same chunking), and what both executors compute from the sums.
//!
//! Mutual information is Mattes' form (as ITK's `MattesMutualInformationImageToImageMetricv4`): the joint
//! histogram takes each sample once in the fixed image's bin (zero-order window) and spreads it over four
//! moving-image bins with cubic B-spline weights, two bins of padding on each side; the gradient is
//! `sum dp(i, k) ln(p(i, k) / p_m(k))`. Every metric's gradient is written as `sum_s w_s dm_s/dM`: a
//! weight per sample (from the sums of the value pass) times the derivative of the trilinearly
//! interpolated moving value with respect to the 3x4 fixed world -> moving world matrix, so the gradient
//! is one more pass over the samples whatever the number of parameters.

use super::Metric;
use crate::error::Result;
use crate::grid::{mat_apply, mat_mul, Mat4};
use rayon::prelude::*;

/// Histogram bins of padding on each side of the Mattes histogram (the cubic window's support).
pub(super) const PAD: usize = 2;

/// Trilinear sample of `data` (shape `s`) at voxel coordinate `q` and its derivative along each voxel
/// axis; None outside `[0, n - 1]`.
#[inline]
pub(super) fn sample(data: &[f32], s: [usize; 3], q: [f64; 3]) -> Option<(f64, [f64; 3])> {
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
    let c = [
        at(i, j, k),
        at(i + 1, j, k),
        at(i, j + 1, k),
        at(i + 1, j + 1, k),
        at(i, j, k + 1),
        at(i + 1, j, k + 1),
        at(i, j + 1, k + 1),
        at(i + 1, j + 1, k + 1),
    ];
    let l = |a: f64, b: f64, t: f64| a + (b - a) * t;
    let (fx, fy, fz) = (f[0], f[1], f[2]);
    let c00 = l(c[0], c[1], fx);
    let c10 = l(c[2], c[3], fx);
    let c01 = l(c[4], c[5], fx);
    let c11 = l(c[6], c[7], fx);
    let v = l(l(c00, c10, fy), l(c01, c11, fy), fz);
    let dx = l(
        l(c[1] - c[0], c[3] - c[2], fy),
        l(c[5] - c[4], c[7] - c[6], fy),
        fz,
    );
    let dy = l(c10 - c00, c11 - c01, fz);
    let dz = l(c01, c11, fy) - l(c00, c10, fy);
    Some((v, [dx, dy, dz]))
}

/// Cubic B-spline.
#[inline]
pub(super) fn bspline3(u: f64) -> f64 {
    let a = u.abs();
    if a < 1.0 {
        (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0
    } else if a < 2.0 {
        (2.0 - a).powi(3) / 6.0
    } else {
        0.0
    }
}

/// Derivative of [`bspline3`].
#[inline]
pub(super) fn bspline3_d(u: f64) -> f64 {
    let a = u.abs();
    if a < 1.0 {
        -2.0 * u + 1.5 * u * a
    } else if a < 2.0 {
        -0.5 * u.signum() * (2.0 - a) * (2.0 - a)
    } else {
        0.0
    }
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

/// One evaluation: the value (lower is better), the moment sums `[count, sum f, sum m, sum ff (MSE:
/// sum (f - m)^2), sum mm, sum fm]` and, for MI, the joint histogram (fixed x moving, row-major).
pub(super) struct Eval {
    pub(super) value: f64,
    sums: [f64; 6],
    hist: Vec<f64>,
}

/// Per-sample weights of the gradient pass: `coef[0] + coef[1] m + coef[2] f` (MSE, NCC), or for MI
/// `sum_k B3'(k - y) table[i][k]` with `i` the fixed bin and `y` the moving bin coordinate.
pub(super) struct Weights {
    pub(super) coef: [f64; 3],
    pub(super) table: Vec<f64>,
}

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

/// Fixed bin of a value's bin coordinate `x` (zero-order window).
#[inline]
fn fixed_bin(x: f64, bins: usize) -> usize {
    (x.floor().max(PAD as f64) as usize).min(bins - PAD - 1)
}

/// First of the four moving bins a bin coordinate `y` spreads over.
#[inline]
fn moving_bin(y: f64, bins: usize) -> usize {
    (y.floor().max(PAD as f64) as usize).min(bins - PAD - 1) - 1
}

impl Level<'_> {
    /// Fixed bins per intensity unit of the Mattes histogram.
    pub(super) fn fscale(&self) -> f64 {
        (self.bins - 2 * PAD) as f64 / (self.samples.fmax - self.samples.fmin).max(1e-12)
    }

    /// Moving bins per intensity unit of the Mattes histogram.
    pub(super) fn mscale(&self) -> f64 {
        (self.bins - 2 * PAD) as f64 / (self.mmax - self.mmin).max(1e-12)
    }

    /// Uploads the moving image (`moving`, whose voxels are `self.moving`) and the samples: the metric
    /// and its gradient run on the GPU from then on.
    pub(super) fn upload(
        &mut self,
        ctx: &std::sync::Arc<crate::exec::gpu::GpuContext>,
        moving: &crate::volume::Volume,
    ) -> Result<()> {
        let packed: Vec<[f32; 4]> = self
            .samples
            .pos
            .iter()
            .zip(&self.samples.val)
            .map(|(p, &v)| [p[0] as f32, p[1] as f32, p[2] as f32, v])
            .collect();
        let mode = match self.metric {
            Metric::Ncc => 0,
            Metric::Mi => 1,
            Metric::Mse => 2,
        };
        let scales = [
            self.samples.fmin as f32,
            self.fscale() as f32,
            self.mmin as f32,
            self.mscale() as f32,
        ];
        let gm = ctx.metric_setup(moving, &packed, mode, self.bins, scales)?;
        self.gpu = Some((ctx.clone(), gm));
        Ok(())
    }

    /// The Mattes histogram coordinates of a fixed value `f` and a moving value `m`: the fixed bin, the
    /// moving bin coordinate `y` and the first of the four moving bins its window covers.
    #[inline]
    fn bin_of(&self, f: f64, m: f64) -> (usize, f64, usize) {
        let x = fixed_bin(
            (f - self.samples.fmin) * self.fscale() + PAD as f64,
            self.bins,
        );
        let y = (m - self.mmin) * self.mscale() + PAD as f64;
        (x, y, moving_bin(y, self.bins))
    }

    /// Fixed world -> moving voxel of the fixed world -> moving world matrix `m`.
    fn to_vox(&self, m: &Mat4) -> Mat4 {
        mat_mul(&self.world_to_moving, m)
    }

    /// Metric values (lower is better) of world matrices `ms`, on the CPU or the GPU.
    pub(super) fn values(&self, ms: &[Mat4]) -> Result<Vec<f64>> {
        Ok(self.evals(ms)?.into_iter().map(|e| e.value).collect())
    }

    /// Evaluations of world matrices `ms`, on the CPU or the GPU.
    pub(super) fn evals(&self, ms: &[Mat4]) -> Result<Vec<Eval>> {
        let n = self.samples.pos.len();
        let done = |sums: [f64; 6], hist: Vec<f64>| Eval {
            value: finish(self.metric, n, self.bins, &sums, &hist),
            sums,
            hist,
        };
        match &self.gpu {
            None => Ok(ms
                .iter()
                .map(|m| {
                    let (sums, hist) = self.sums(m);
                    done(sums, hist)
                })
                .collect()),
            Some((ctx, gm)) => {
                let mut out = Vec::with_capacity(ms.len());
                for group in ms.chunks(crate::exec::gpu::MAX_TRANSFORMS) {
                    let rows: Vec<[[f32; 4]; 3]> = group.iter().map(|m| self.rows(m)).collect();
                    for s in ctx.metric_eval(gm, &rows)? {
                        out.push(done(s.moments, s.hist));
                    }
                }
                Ok(out)
            }
        }
    }

    fn rows(&self, m: &Mat4) -> [[f32; 4]; 3] {
        let v = self.to_vox(m);
        [0, 1, 2].map(|r| [0, 1, 2, 3].map(|c| v[r][c] as f32))
    }

    /// The gradient of the value with respect to the entries of the 3x4 fixed world -> moving world
    /// matrix `m`, given `m`'s evaluation `e` (zero where the value is not finite or flat).
    pub(super) fn gradient(&self, m: &Mat4, e: &Eval) -> Result<[[f64; 4]; 3]> {
        let Some(w) = self.weights(e) else {
            return Ok([[0.0; 4]; 3]);
        };
        // Sums over samples of w * (d moving / d voxel coordinate a) * [x, y, z, 1]_c.
        let s: [f64; 12] = match &self.gpu {
            None => self.grad_sums(m, &w),
            Some((ctx, gm)) => {
                let table: Vec<f32> = w.table.iter().map(|&x| x as f32).collect();
                let c = w.coef.map(|x| x as f32);
                ctx.metric_grad(gm, &self.rows(m), [c[0], c[1], c[2], 0.0], &table)?
            }
        };
        // q = W y, y = M x: d/dM_rc = sum_a W_ar S_ac.
        let wl = &self.world_to_moving;
        let mut g = [[0.0; 4]; 3];
        for (r, row) in g.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|a| wl[a][r] * s[4 * a + c]).sum();
            }
        }
        Ok(g)
    }

    /// Per-sample weights of the gradient at evaluation `e`; None where the gradient is zero.
    fn weights(&self, e: &Eval) -> Option<Weights> {
        if !e.value.is_finite() {
            return None;
        }
        let s = &e.sums;
        let n = s[0];
        let coef = match self.metric {
            // d/dm of sum (f - m)^2 / n.
            Metric::Mse => [0.0, 2.0 / n, -2.0 / n],
            Metric::Ncc => {
                let cov = s[5] - s[1] * s[2] / n;
                let vf = s[3] - s[1] * s[1] / n;
                let vm = s[4] - s[2] * s[2] / n;
                if vf <= 0.0 || vm <= 0.0 {
                    return None;
                }
                // d(-cov / sqrt(vf vm)) = sum [-(f - fbar) / D + cov (m - mbar) / (vm D)] dm.
                let d = (vf * vm).sqrt();
                let (fbar, mbar) = (s[1] / n, s[2] / n);
                let b = cov / (vm * d);
                [fbar / d - b * mbar, b, -1.0 / d]
            }
            Metric::Mi => {
                let bins = self.bins;
                let total: f64 = e.hist.iter().sum();
                let mut pm = vec![0.0; bins];
                for row in e.hist.chunks(bins) {
                    for (q, h) in pm.iter_mut().zip(row) {
                        *q += h;
                    }
                }
                // d(-MI) = -sum dp ln(p / p_m), dp = sum_s -B3'(k - y_s) mscale dm_s / total.
                let k = self.mscale() / total;
                let table = (0..bins * bins)
                    .map(|xy| {
                        let (p, q) = (e.hist[xy], pm[xy % bins]);
                        if p > 0.0 && q > 0.0 {
                            k * (p / q).ln()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                return Some(Weights {
                    coef: [0.0; 3],
                    table,
                });
            }
        };
        Some(Weights {
            coef,
            table: Vec::new(),
        })
    }

    /// CPU sums of world matrix `m` (the twin of `shaders/metric.wgsl`'s `metric`), in chunks of 4096
    /// samples summed in order.
    fn sums(&self, m: &Mat4) -> ([f64; 6], Vec<f64>) {
        let to_vox = self.to_vox(m);
        let n = self.samples.pos.len();
        let bins = self.bins;
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
                    let q = mat_apply(&to_vox, self.samples.pos[i]);
                    let Some((mv, _)) = sample(self.moving, self.mshape, q) else {
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
                        let (x, y, k0) = self.bin_of(fv, mv);
                        let row = &mut hist[x * bins..(x + 1) * bins];
                        for (k, h) in row[k0..k0 + 4].iter_mut().enumerate() {
                            *h += bspline3((k0 + k) as f64 - y);
                        }
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

    /// CPU gradient sums of world matrix `m` (the twin of `shaders/metric.wgsl`'s `metric_grad`):
    /// `S[a][c] = sum_s w_s dm_s/dq_a [x, y, z, 1]_c`, row-major, in chunks summed in order.
    fn grad_sums(&self, m: &Mat4, w: &Weights) -> [f64; 12] {
        let to_vox = self.to_vox(m);
        let n = self.samples.pos.len();
        let bins = self.bins;
        let mi = self.metric == Metric::Mi;
        let chunks: Vec<[f64; 12]> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut s = [0.0f64; 12];
                for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                    let x = self.samples.pos[i];
                    let Some((mv, d)) = sample(self.moving, self.mshape, mat_apply(&to_vox, x))
                    else {
                        continue;
                    };
                    let fv = self.samples.val[i] as f64;
                    let wt = if mi {
                        let (xb, y, k0) = self.bin_of(fv, mv);
                        let row = &w.table[xb * bins..(xb + 1) * bins];
                        (0..4)
                            .map(|k| bspline3_d((k0 + k) as f64 - y) * row[k0 + k])
                            .sum::<f64>()
                    } else {
                        w.coef[0] + w.coef[1] * mv + w.coef[2] * fv
                    };
                    for a in 0..3 {
                        let wd = wt * d[a];
                        s[4 * a] += wd * x[0];
                        s[4 * a + 1] += wd * x[1];
                        s[4 * a + 2] += wd * x[2];
                        s[4 * a + 3] += wd;
                    }
                }
                s
            })
            .collect();
        let mut s = [0.0f64; 12];
        for p in &chunks {
            for k in 0..12 {
                s[k] += p[k];
            }
        }
        s
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{mat_inv, Grid};
    use crate::volume::{Kind, Volume};

    /// A smooth moving image (two Gaussian blobs on a slope), 1.5 mm voxels.
    fn moving() -> Volume {
        let s = [24, 20, 18];
        let mut d = Vec::with_capacity(s[0] * s[1] * s[2]);
        for k in 0..s[2] {
            for j in 0..s[1] {
                for i in 0..s[0] {
                    let (x, y, z) = (i as f64, j as f64, k as f64);
                    let b1 =
                        (-((x - 9.0).powi(2) + (y - 8.0).powi(2) + (z - 9.0).powi(2)) / 30.0).exp();
                    let b2 = (-((x - 16.0).powi(2) + (y - 12.0).powi(2) + (z - 7.0).powi(2))
                        / 12.0)
                        .exp();
                    d.push((80.0 * b1 + 50.0 * b2 + 0.5 * x + 10.0) as f32);
                }
            }
        }
        Volume::new(
            d,
            Grid::with_spacing(s, [1.5, 1.5, 1.5]).unwrap(),
            Kind::Image,
        )
        .unwrap()
    }

    /// A level whose fixed samples are the moving image itself (MI: inverted) at jittered points.
    fn level<'a>(mv: &'a Volume, vals: &'a [f32], metric: Metric) -> Level<'a> {
        let w2m = mat_inv(&mv.grid.affine).unwrap();
        let (mut pos, mut val) = (Vec::new(), Vec::new());
        let mut t = 0.37f64;
        for k in 2..16 {
            for j in 2..18 {
                for i in 2..22 {
                    t = (t * 3.7 + 0.13).fract();
                    let q = [i as f64 + t - 0.5, j as f64 + 0.3 * t, k as f64 - 0.2 * t];
                    let v = sample(vals, mv.grid.shape, q).unwrap().0;
                    pos.push(mat_apply(&mv.grid.affine, q));
                    val.push(if metric == Metric::Mi { 200.0 - v } else { v } as f32);
                }
            }
        }
        let (fmin, fmax) = val.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| {
            (a.min(v as f64), b.max(v as f64))
        });
        let (mmin, mmax) = vals.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| {
            (a.min(v as f64), b.max(v as f64))
        });
        Level {
            samples: Samples {
                pos,
                val,
                fmin,
                fmax,
            },
            moving: vals,
            mshape: mv.grid.shape,
            world_to_moving: w2m,
            mmin,
            mmax,
            metric,
            bins: 32,
            gpu: None,
        }
    }

    /// A small rigid motion about the image centre, as a world matrix.
    fn motion() -> Mat4 {
        let (s, c) = 0.06f64.sin_cos();
        let mut m = crate::grid::IDENTITY;
        m[0] = [c, -s, 0.0, 1.1];
        m[1] = [s, c, 0.0, -0.7];
        m[2][3] = 0.4;
        m
    }

    fn rel(a: &[f64], b: &[f64]) -> f64 {
        let d: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        d / b.iter().map(|y| y * y).sum::<f64>().sqrt()
    }

    fn flat(g: &[[f64; 4]; 3]) -> Vec<f64> {
        g.iter().flatten().copied().collect()
    }

    /// The analytic gradient of every metric equals central differences of its value (entry by entry
    /// of the 3x4 matrix): 7e-6 relative seen, 1e-3 asserted.
    #[test]
    fn analytic_gradients_match_finite_differences() {
        let mv = moving();
        let vals = mv.values();
        for metric in [Metric::Mse, Metric::Ncc, Metric::Mi] {
            let l = level(&mv, &vals, metric);
            let m = motion();
            let e = l.evals(&[m]).unwrap().remove(0);
            assert!(e.value.is_finite());
            let g = flat(&l.gradient(&m, &e).unwrap());
            let num: Vec<f64> = (0..12)
                .map(|rc| {
                    let h = if rc % 4 == 3 { 1e-3 } else { 3e-5 };
                    let (mut a, mut b) = (m, m);
                    a[rc / 4][rc % 4] += h;
                    b[rc / 4][rc % 4] -= h;
                    let v = l.values(&[a, b]).unwrap();
                    (v[0] - v[1]) / (2.0 * h)
                })
                .collect();
            let r = rel(&g, &num);
            assert!(
                r < 1e-3,
                "{metric:?}: analytic {g:?} vs numeric {num:?} ({r})"
            );
        }
    }

    /// The GPU's values and gradients (f32 sums per chunk, fixed-point histogram) agree with the CPU's
    /// (seen: values 3e-6, gradients 5e-5 relative).
    #[test]
    fn gpu_values_and_gradients_match_the_cpu() {
        let ctx = std::sync::Arc::new(
            crate::exec::gpu::GpuContext::open(None)
                .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}")),
        );
        let mv = moving();
        let vals = mv.values();
        for metric in [Metric::Ncc, Metric::Mi, Metric::Mse] {
            let cpu = level(&mv, &vals, metric);
            let mut gpu = level(&mv, &vals, metric);
            gpu.upload(&ctx, &mv).unwrap();
            let m = motion();
            let (ec, eg) = (
                cpu.evals(&[m]).unwrap().remove(0),
                gpu.evals(&[m]).unwrap().remove(0),
            );
            let dv = (ec.value - eg.value).abs() / ec.value.abs();
            assert!(dv < 1e-4, "{metric:?}: value {} vs {}", ec.value, eg.value);
            let (gc, gg) = (
                flat(&cpu.gradient(&m, &ec).unwrap()),
                flat(&gpu.gradient(&m, &eg).unwrap()),
            );
            let r = rel(&gg, &gc);
            assert!(
                r < 1e-3,
                "{metric:?}: GPU gradient {gg:?} vs CPU {gc:?} ({r})"
            );
            let (c, g) = gpu.gpu.take().unwrap();
            c.metric_release(g);
        }
    }

    #[test]
    fn bspline_is_a_partition_of_unity_and_its_derivative_sums_to_zero() {
        for y in [2.0, 2.3, 7.5, 17.99, 29.0, 30.0] {
            let k0 = moving_bin(y, 32);
            let w: f64 = (0..4).map(|k| bspline3((k0 + k) as f64 - y)).sum();
            let d: f64 = (0..4).map(|k| bspline3_d((k0 + k) as f64 - y)).sum();
            assert!((w - 1.0).abs() < 1e-12 && d.abs() < 1e-12, "y {y}: {w} {d}");
        }
        let h = 1e-6;
        for u in [-1.7, -0.4, 0.0, 0.6, 1.2] {
            let num = (bspline3(u + h) - bspline3(u - h)) / (2.0 * h);
            assert!((num - bspline3_d(u)).abs() < 1e-6, "u {u}");
        }
    }
}
