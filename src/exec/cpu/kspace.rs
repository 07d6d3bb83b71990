//! k-space artefacts on the CPU (twin of `shaders/fft.wgsl`): line filters with rustfft (any length:
//! mixed radix, Rader and Bluestein inside the crate), spike plane waves, motion copies. What to run comes
//! from `exec/kspace.rs`.

use super::alloc;
use crate::error::Result;
use crate::exec::kernel::Outside;
use crate::exec::kspace::{self, LineFilter, Work};
use crate::grid::Grid;
use crate::transform::kspace::KSpaceOp;
use rayon::prelude::*;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Applies a k-space artefact to one image.
pub fn apply(op: &KSpaceOp, data: &[f32], grid: &Grid) -> Result<Vec<f32>> {
    let shape = grid.shape;
    match kspace::work(op, grid)? {
        Work::Identity => Ok(data.to_vec()),
        Work::Filters(filters) => {
            let mut cur = filter(data, shape, &filters[0])?;
            for f in &filters[1..] {
                let next = filter(&cur, shape, f)?;
                // The intermediate volume serves the next output instead of going back to the OS.
                alloc::recycle(std::mem::replace(&mut cur, next));
            }
            Ok(cur)
        }
        Work::Spikes {
            frequencies,
            intensity,
        } => {
            let a = kspace::spike_amplitude(intensity, max_abs_spectrum(data, shape)?, shape);
            let mut out = data.to_vec();
            add_waves(&mut out, shape, &frequencies, a);
            Ok(out)
        }
        Work::Motion(copies) => {
            let min = crate::stats::min_max(data).0;
            let filters: Vec<&LineFilter> = copies.iter().map(|c| &c.filter).collect();
            filter_sum(shape, &filters, |i, add| {
                match &copies[i].map {
                    None => add(data),
                    Some(map) => {
                        let moved = super::resample::resample(
                            data,
                            grid,
                            &map.total(),
                            &map.grid,
                            Outside::Value(min),
                        )?;
                        add(&moved);
                        // The moved copy serves the next one instead of going back to the OS.
                        alloc::recycle(moved);
                    }
                }
                Ok(())
            })
        }
    }
}

/// Half-spectrum weights for real data: `real(ifft(w * fft(x))) = irfft(w_h * rfft(x))` with
/// `w_h[k] = (w[k] + conj(w[n - k])) / 2` (the Hermitian part of the weighted spectrum), divided by `n`.
fn half_weights(w: &[[f32; 2]]) -> Vec<Complex32> {
    let n = w.len();
    (0..n / 2 + 1)
        .map(|k| {
            let a = Complex32::new(w[k][0], w[k][1]);
            let b = Complex32::new(w[(n - k) % n][0], -w[(n - k) % n][1]);
            (a + b) * (0.5 / n as f32)
        })
        .collect()
}

/// Weighted half spectra of every line along one axis, summed over the volumes added: each task (a
/// z-plane for lines along x or y, a y for lines along z) owns its lines' spectra.
struct Spectra {
    shape: [usize; 3],
    axis: usize,
    fwd: Arc<dyn realfft::RealToComplex<f32>>,
    inv: Arc<dyn realfft::ComplexToReal<f32>>,
    tasks: Vec<Vec<Complex32>>,
}

impl Spectra {
    fn new(shape: [usize; 3], axis: usize) -> Result<Spectra> {
        let [nx, ny, nz] = shape;
        let n = shape[axis];
        let (tasks, lines) = match axis {
            0 => (nz, ny),
            1 => (nz, nx),
            _ => (ny, nx),
        };
        let mut p = realfft::RealFftPlanner::new();
        let bins = lines * (n / 2 + 1);
        let mut v = Vec::new();
        v.try_reserve_exact(tasks)
            .map_err(|_| too_big(nx * ny * nz))?;
        for _ in 0..tasks {
            let mut t = Vec::new();
            t.try_reserve_exact(bins)
                .map_err(|_| too_big(nx * ny * nz))?;
            t.resize(bins, Complex32::default());
            v.push(t);
        }
        Ok(Spectra {
            shape,
            axis,
            fwd: p.plan_fft_forward(n),
            inv: p.plan_fft_inverse(n),
            tasks: v,
        })
    }

    /// The lines of task `t` of `src`, line after line.
    fn gather(shape: [usize; 3], axis: usize, src: &[f32], t: usize, lines: &mut Vec<f32>) {
        let [nx, ny, nz] = shape;
        lines.clear();
        match axis {
            0 => lines.extend_from_slice(&src[t * nx * ny..(t + 1) * nx * ny]),
            1 => {
                lines.resize(nx * ny, 0.0);
                let plane = &src[t * nx * ny..(t + 1) * nx * ny];
                for (y, row) in plane.chunks(nx).enumerate() {
                    for (x, v) in row.iter().enumerate() {
                        lines[x * ny + y] = *v;
                    }
                }
            }
            _ => {
                lines.resize(nx * nz, 0.0);
                for z in 0..nz {
                    let row = &src[nx * (t + ny * z)..nx * (t + ny * z) + nx];
                    for (x, v) in row.iter().enumerate() {
                        lines[x * nz + z] = *v;
                    }
                }
            }
        }
    }

    /// Adds `w_h * rfft(line)` for every line of `src`.
    fn add(&mut self, src: &[f32], w_h: &[Complex32]) {
        let (shape, axis) = (self.shape, self.axis);
        let n = shape[axis];
        let fwd = &self.fwd;
        self.tasks.par_iter_mut().enumerate().for_each(|(t, spec)| {
            let mut lines = Vec::new();
            Self::gather(shape, axis, src, t, &mut lines);
            let mut out = vec![Complex32::default(); n / 2 + 1];
            let mut scratch = fwd.make_scratch_vec();
            for (line, acc) in lines.chunks_mut(n).zip(spec.chunks_mut(n / 2 + 1)) {
                fwd.process_with_scratch(line, &mut out, &mut scratch)
                    .expect("lengths match the plan");
                for ((a, x), w) in acc.iter_mut().zip(&out).zip(w_h) {
                    *a += x * w;
                }
            }
        });
    }

    /// The inverse transforms of the summed spectra, written into `out`.
    fn finish(self, out: &mut [f32]) {
        let n = self.shape[self.axis];
        let inv = &self.inv;
        scatter(self.shape, self.axis, out, false, |t| {
            let spec = &self.tasks[t];
            let mut lines = vec![0.0f32; spec.len() / (n / 2 + 1) * n];
            let mut buf = inv.make_input_vec();
            let mut scratch = inv.make_scratch_vec();
            for (s, line) in spec.chunks(n / 2 + 1).zip(lines.chunks_mut(n)) {
                buf.copy_from_slice(s);
                inverse(inv.as_ref(), &mut buf, line, &mut scratch);
            }
            lines
        });
    }
}

/// irfft of one half spectrum whose first (and, for even n, last) bin are real by construction;
/// rounding must not leave an imaginary part there, which realfft rejects.
fn inverse(
    inv: &dyn realfft::ComplexToReal<f32>,
    spec: &mut [Complex32],
    line: &mut [f32],
    scratch: &mut [Complex32],
) {
    let n = line.len();
    spec[0].im = 0.0;
    if n.is_multiple_of(2) {
        spec[n / 2].im = 0.0;
    }
    inv.process_with_scratch(spec, line, scratch)
        .expect("lengths match the plan");
}

/// Writes (or adds) the lines each task returns into `out`: along x and y a task is a z-plane and
/// writes its own plane; along z a task is a y, and each plane then collects its rows.
fn scatter(
    shape: [usize; 3],
    axis: usize,
    out: &mut [f32],
    add: bool,
    lines_of: impl Fn(usize) -> Vec<f32> + Sync,
) {
    let [nx, ny, nz] = shape;
    match axis {
        0 | 1 => out.par_chunks_mut(nx * ny).enumerate().for_each(|(t, o)| {
            let lines = lines_of(t);
            if axis == 0 {
                o.iter_mut().zip(&lines).for_each(|(o, v)| put(o, *v, add));
            } else {
                for (y, row) in o.chunks_mut(nx).enumerate() {
                    for (x, o) in row.iter_mut().enumerate() {
                        put(o, lines[x * ny + y], add);
                    }
                }
            }
        }),
        _ => {
            let rows: Vec<Vec<f32>> = (0..ny).into_par_iter().map(&lines_of).collect();
            out.par_chunks_mut(nx * ny).enumerate().for_each(|(z, o)| {
                for (y, r) in rows.iter().enumerate() {
                    for (x, o) in o[y * nx..(y + 1) * nx].iter_mut().enumerate() {
                        put(o, r[x * nz + z], add);
                    }
                }
            });
        }
    }
}

/// One filter on every line, each task in cache: gather, rfft, weights, irfft, scatter.
fn run_filter(src: &[f32], shape: [usize; 3], f: &LineFilter, out: &mut [f32], add: bool) {
    let n = shape[f.axis];
    let w_h = half_weights(&f.weights);
    let mut p = realfft::RealFftPlanner::new();
    let (fwd, inv) = (p.plan_fft_forward(n), p.plan_fft_inverse(n));
    scatter(shape, f.axis, out, add, |t| {
        let mut lines = Vec::new();
        Spectra::gather(shape, f.axis, src, t, &mut lines);
        let mut spec = fwd.make_output_vec();
        let mut s1 = fwd.make_scratch_vec();
        let mut s2 = inv.make_scratch_vec();
        for line in lines.chunks_mut(n) {
            fwd.process_with_scratch(line, &mut spec, &mut s1)
                .expect("lengths match the plan");
            spec.iter_mut().zip(&w_h).for_each(|(x, w)| *x *= w);
            inverse(inv.as_ref(), &mut spec, line, &mut s2);
        }
        lines
    });
}

fn too_big(voxels: usize) -> crate::error::Error {
    crate::error::Error::Limits(format!(
        "cannot allocate the {} MiB spectrum of this volume",
        (voxels * 8) >> 20
    ))
}

/// `real(ifft(w * fft(line)))` on every line of `src` along the filter's axis, into a new volume.
pub fn filter(src: &[f32], shape: [usize; 3], f: &LineFilter) -> Result<Vec<f32>> {
    let mut out = alloc::output(src.len())?;
    run_filter(src, shape, f, &mut out, false);
    Ok(out)
}

/// [`filter`] added onto `acc`.
pub fn filter_into(src: &[f32], shape: [usize; 3], f: &LineFilter, acc: &mut [f32]) -> Result<()> {
    run_filter(src, shape, f, acc, true);
    Ok(())
}

/// The sum of `filter(volume)` over volumes whose filters share one axis (motion's copies): one
/// inverse transform for all of them. `volume(i, add)` hands volume `i` to `add`.
pub fn filter_sum(
    shape: [usize; 3],
    filters: &[&LineFilter],
    mut volume: impl FnMut(usize, &mut dyn FnMut(&[f32])) -> Result<()>,
) -> Result<Vec<f32>> {
    let axis = filters.first().map_or(2, |f| f.axis);
    let mut spec = Spectra::new(shape, axis)?;
    for (i, f) in filters.iter().enumerate() {
        let w_h = half_weights(&f.weights);
        volume(i, &mut |src| spec.add(src, &w_h))?;
    }
    let mut out = alloc::output(shape.iter().product())?;
    spec.finish(&mut out);
    Ok(out)
}

fn put(o: &mut f32, v: f32, add: bool) {
    if add {
        *o += v
    } else {
        *o = v
    }
}

/// Applies the forward FFT along `axis` to `buf` in place (one task per z-plane for x and y, per y for z).
fn fft_axis(buf: &mut [Complex32], shape: [usize; 3], axis: usize) {
    let [nx, ny, nz] = shape;
    let f = FftPlanner::new().plan_fft_forward(shape[axis]);
    let scratch = || vec![Complex32::default(); f.get_inplace_scratch_len()];
    match axis {
        0 => buf
            .par_chunks_mut(nx * ny)
            .for_each(|plane| f.process_with_scratch(plane, &mut scratch())),
        1 => buf.par_chunks_mut(nx * ny).for_each(|plane| {
            let mut cols: Vec<Complex32> = (0..nx * ny)
                .map(|i| plane[(i % ny) * nx + i / ny])
                .collect();
            f.process_with_scratch(&mut cols, &mut scratch());
            for (i, c) in cols.into_iter().enumerate() {
                plane[(i % ny) * nx + i / ny] = c;
            }
        }),
        _ => {
            let rows: Vec<Vec<Complex32>> = (0..ny)
                .into_par_iter()
                .map(|y| z_lines(buf, shape, y, f.as_ref()))
                .collect();
            buf.par_chunks_mut(nx * ny).enumerate().for_each(|(z, o)| {
                for (y, r) in rows.iter().enumerate() {
                    for x in 0..nx {
                        o[y * nx + x] = r[x * nz + z];
                    }
                }
            });
        }
    }
}

/// The z-lines of `buf` for one y (x-major: line x holds z = 0..nz), transformed along z.
fn z_lines(buf: &[Complex32], shape: [usize; 3], y: usize, fz: &dyn Fft<f32>) -> Vec<Complex32> {
    let [nx, ny, nz] = shape;
    let mut lines: Vec<Complex32> = (0..nx * nz)
        .map(|i| buf[i / nz + nx * (y + ny * (i % nz))])
        .collect();
    let mut scratch = vec![Complex32::default(); fz.get_inplace_scratch_len()];
    fz.process_with_scratch(&mut lines, &mut scratch);
    lines
}

/// The unnormalised 3D DFT of a real volume (numpy's `fftn`), x fastest like the volume.
pub fn fft3(src: &[f32], shape: [usize; 3]) -> Result<Vec<Complex32>> {
    let mut buf = complex(src, None)?;
    for axis in 0..3 {
        fft_axis(&mut buf, shape, axis);
    }
    Ok(buf)
}

/// One part (`part` of each value: real, imaginary, magnitude) of the forward FFT along `axis` of the
/// complex volume `re + i im` (the GPU's fallback for axes too long for its workgroup memory).
pub fn forward_axis(
    re: &[f32],
    im: Option<&[f32]>,
    shape: [usize; 3],
    axis: usize,
    part: impl Fn(Complex32) -> f32 + Sync,
) -> Result<Vec<f32>> {
    let mut buf = complex(re, im)?;
    fft_axis(&mut buf, shape, axis);
    Ok(buf.par_iter().map(|&c| part(c)).collect())
}

fn complex(src: &[f32], im: Option<&[f32]>) -> Result<Vec<Complex32>> {
    let mut buf: Vec<Complex32> = Vec::new();
    buf.try_reserve_exact(src.len())
        .map_err(|_| too_big(src.len()))?;
    match im {
        Some(im) => buf.extend(src.iter().zip(im).map(|(&a, &b)| Complex32::new(a, b))),
        None => buf.extend(src.iter().map(|&v| Complex32::new(v, 0.0))),
    }
    Ok(buf)
}

/// Largest magnitude of the volume's spectrum: the sum of the voxels when none is negative (the zero
/// frequency, `|sum x e^..| <= sum |x|`), else from a full 3D FFT.
pub fn max_abs_spectrum(src: &[f32], shape: [usize; 3]) -> Result<f64> {
    let (lo, _) = crate::stats::min_max(src);
    if lo >= 0.0 {
        return Ok(src.par_iter().map(|&v| v as f64).sum());
    }
    // A real volume's spectrum is Hermitian (|F(-k)| = |F(k)|): the half along x from a real FFT holds
    // every magnitude, for half the work of a complex 3D FFT.
    let [nx, ny, nz] = shape;
    let hx = nx / 2 + 1;
    let half = [hx, ny, nz];
    let mut buf: Vec<Complex32> = Vec::new();
    buf.try_reserve_exact(hx * ny * nz)
        .map_err(|_| too_big(hx * ny * nz))?;
    buf.resize(hx * ny * nz, Complex32::default());
    let fx = realfft::RealFftPlanner::new().plan_fft_forward(nx);
    buf.par_chunks_mut(hx * ny)
        .zip(src.par_chunks(nx * ny))
        .for_each(|(o, s)| {
            let mut line = vec![0.0f32; nx];
            let mut scratch = fx.make_scratch_vec();
            for (o, s) in o.chunks_mut(hx).zip(s.chunks(nx)) {
                line.copy_from_slice(s);
                fx.process_with_scratch(&mut line, o, &mut scratch)
                    .expect("lengths match the plan");
            }
        });
    fft_axis(&mut buf, half, 1);
    let fz = FftPlanner::new().plan_fft_forward(nz);
    Ok((0..ny)
        .into_par_iter()
        .map(|y| {
            z_lines(&buf, half, y, fz.as_ref())
                .iter()
                .map(|c| c.norm() as f64)
                .fold(0.0, f64::max)
        })
        .reduce(|| 0.0, f64::max))
}

/// Adds `amplitude * cos(2 pi phase)` for each frequency (separable: per-axis complex exponentials).
pub fn add_waves(data: &mut [f32], shape: [usize; 3], frequencies: &[[usize; 3]], amplitude: f64) {
    let [nx, ny, _] = shape;
    let tables: Vec<[Vec<(f64, f64)>; 3]> = frequencies
        .iter()
        .map(|u| {
            [0, 1, 2].map(|a| {
                (0..shape[a])
                    .map(|p| {
                        let t = ((u[a] as u64 * p as u64) % shape[a] as u64) as f64
                            / shape[a] as f64
                            * std::f64::consts::TAU;
                        (t.cos(), t.sin())
                    })
                    .collect()
            })
        })
        .collect();
    data.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(z, plane)| {
            for t in &tables {
                let (cz, sz) = t[2][z];
                for y in 0..ny {
                    let (cy, sy) = t[1][y];
                    let (c, s) = (cy * cz - sy * sz, cy * sz + sy * cz);
                    for (x, v) in plane[y * nx..(y + 1) * nx].iter_mut().enumerate() {
                        let (cx, sx) = t[0][x];
                        *v += (amplitude * (cx * c - sx * s)) as f32;
                    }
                }
            }
        });
}
