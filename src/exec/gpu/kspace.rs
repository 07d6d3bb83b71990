//! k-space artefacts on the GPU (`shaders/fft.wgsl`, `shaders/spike.wgsl`; CPU twin
//! `exec/cpu/kspace.rs`). Line filters run one workgroup per line in workgroup memory: lengths up to
//! [`MAX_FFT`] (powers of two up to twice that), Bluestein for the rest. Each pass reads 3D textures and
//! writes z-slabs like every other stage, so no binding holds more than a slab and a 256^3 complex
//! spectrum (exactly lavapipe's 128 MiB binding limit) is never bound whole: its real and imaginary
//! parts are two R32Float textures. An axis longer than the workgroup memory allows runs that pass on
//! the host (a documented fallback, `exec/cpu/kspace.rs`).

use super::*;
use crate::exec::kspace::{self, LineFilter, Work};
use crate::grid::Grid;
use crate::transform::kspace::KSpaceOp;

/// Longest non-power-of-two axis the shader transforms (Bluestein needs `m >= 2n - 1 <= 2048`).
pub const MAX_FFT: usize = 1024;
const MAX_M: usize = 2048;
const COMPLEX_IN: u32 = 1;
const ACCUMULATE: u32 = 2;
const FILTER: u32 = 4;
const IMAG: u32 = 8;
const MAGNITUDE: u32 = 16;
const BLUESTEIN: u32 = 32;

/// Transform size `m` for a line of `n` (`None`: too long for workgroup memory).
fn fft_size(n: usize) -> Option<(usize, bool)> {
    if n.is_power_of_two() {
        (n <= MAX_M).then_some((n.max(2), false))
    } else {
        (n <= MAX_FFT).then(|| ((2 * n - 1).next_power_of_two(), true))
    }
}

/// Tables for a pass: twiddles, chirp, Bluestein kernel (bit-reversed), weights; returns offsets.
fn tables(
    n: usize,
    m: usize,
    blue: bool,
    weights: Option<&[[f32; 2]]>,
) -> (Vec<[f32; 2]>, [u32; 4]) {
    use rustfft::num_complex::Complex64;
    use std::f64::consts::PI;
    let mut t: Vec<[f32; 2]> = (0..m / 2)
        .map(|j| {
            let a = -2.0 * PI * j as f64 / m as f64;
            [a.cos() as f32, a.sin() as f32]
        })
        .collect();
    let mut offs = [0u32; 4];
    let chirp = |k: usize| {
        let a = -PI * ((k as u64 * k as u64) % (2 * n as u64)) as f64 / n as f64;
        Complex64::new(a.cos(), a.sin())
    };
    if blue {
        offs[1] = t.len() as u32;
        t.extend((0..n).map(|k| {
            let c = chirp(k);
            [c.re as f32, c.im as f32]
        }));
        let mut b = vec![Complex64::default(); m];
        for k in 0..n {
            b[k] = chirp(k).conj();
            if k > 0 {
                b[m - k] = b[k];
            }
        }
        rustfft::FftPlanner::new()
            .plan_fft_forward(m)
            .process(&mut b);
        let bits = m.trailing_zeros();
        offs[2] = t.len() as u32;
        t.extend((0..m).map(|q| {
            let k = b[(q.reverse_bits() >> (usize::BITS - bits)) % m];
            [k.re as f32, k.im as f32]
        }));
    }
    if let Some(w) = weights {
        offs[3] = t.len() as u32;
        t.extend_from_slice(w);
    }
    if t.is_empty() {
        t.push([0.0; 2]);
    }
    (t, offs)
}

impl GpuContext {
    /// Applies a k-space artefact to an image texture.
    pub(super) fn kspace(
        &self,
        v: &GpuVolume,
        op: &KSpaceOp,
        grid: &Grid,
        dest: Dest,
    ) -> Result<Output> {
        match kspace::work(op, grid)? {
            Work::Identity => self.elementwise(v, &kernel::identity(), dest),
            Work::Filters(filters) => {
                let mut cur: Option<GpuVolume> = None;
                for (i, f) in filters.iter().enumerate() {
                    let last = i + 1 == filters.len();
                    let d = if last { dest } else { Dest::Texture };
                    let out = self.line_pass(
                        cur.as_ref().unwrap_or(v),
                        None,
                        f.axis,
                        Some(f),
                        0,
                        None,
                        d,
                    )?;
                    if let Some(old) = cur.take() {
                        self.pool.lock().unwrap().give_texture(old.tex);
                    }
                    if last {
                        return Ok(out);
                    }
                    cur = Some(self.image_of(out, v.shape));
                }
                unreachable!("the last filter returns")
            }
            Work::Spikes {
                frequencies,
                intensity,
            } => {
                let st = self.host_stats(v, false)?;
                let max_abs = if st.min >= 0.0 {
                    st.mean * st.count as f64
                } else {
                    self.max_abs_spectrum(v)?
                };
                let a = kspace::spike_amplitude(intensity, max_abs, v.shape);
                self.spike_waves(v, &frequencies, a as f32, dest)
            }
            Work::Motion(copies) => {
                let min = self.host_stats(v, false)?.min as f32;
                let mut acc: Option<GpuVolume> = None;
                for (i, c) in copies.iter().enumerate() {
                    let last = i + 1 == copies.len();
                    let d = if last { dest } else { Dest::Texture };
                    let moved = match &c.map {
                        None => None,
                        Some(map) => {
                            let out = self.resample(
                                v,
                                map,
                                None,
                                super::resample::GpuOutside::Value(min),
                                None,
                                Dest::Texture,
                            )?;
                            Some(self.image_of(out, v.shape))
                        }
                    };
                    let flags = if acc.is_some() { ACCUMULATE } else { 0 };
                    let src = moved.as_ref().unwrap_or(v);
                    let out = self.line_pass(
                        src,
                        None,
                        c.filter.axis,
                        Some(&c.filter),
                        flags,
                        acc.as_ref(),
                        d,
                    )?;
                    let mut pool = self.pool.lock().unwrap();
                    if let Some(m) = moved {
                        pool.give_texture(m.tex);
                    }
                    if let Some(old) = acc.take() {
                        pool.give_texture(old.tex);
                    }
                    drop(pool);
                    if last {
                        return Ok(out);
                    }
                    acc = Some(self.image_of(out, v.shape));
                }
                unreachable!("motion has at least one copy")
            }
        }
    }

    fn image_of(&self, out: Output, shape: [usize; 3]) -> GpuVolume {
        let Output::Texture(tex) = out else {
            unreachable!("a texture was asked for")
        };
        GpuVolume {
            tex,
            shape,
            kind: Kind::Image,
            dtype: DType::F32,
        }
    }

    /// One FFT pass along `axis`: the filter's `real(ifft(w * fft(x)))` (plus `acc` with ACCUMULATE),
    /// or without a filter the forward transform's part chosen by `flags` (IMAG, MAGNITUDE).
    #[allow(clippy::too_many_arguments)]
    fn line_pass(
        &self,
        re: &GpuVolume,
        im: Option<&GpuVolume>,
        axis: usize,
        filter: Option<&LineFilter>,
        mut flags: u32,
        acc: Option<&GpuVolume>,
        dest: Dest,
    ) -> Result<Output> {
        let s = re.shape;
        let n = s[axis];
        let Some((m, blue)) = fft_size(n)
            .filter(|_| self.limits.max_compute_workgroup_storage_size as usize >= 2 * 4 * MAX_M)
        else {
            return self.line_pass_host(re, im, filter, flags, acc, dest, axis);
        };
        if filter.is_some() {
            flags |= FILTER;
        }
        if blue {
            flags |= BLUESTEIN;
        }
        if im.is_some() {
            flags |= COMPLEX_IN;
        }
        let (t, offs) = tables(n, m, blue, filter.map(|f| f.weights.as_slice()));
        let table = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("fft tables"),
                contents: bytemuck::cast_slice(&t),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let view = |v: &GpuVolume| v.tex.create_view(&Default::default());
        let (vre, vim, vacc) = (view(re), view(im.unwrap_or(re)), view(acc.unwrap_or(re)));
        let pipes = self
            .pipes
            .fft(&self.device, self.adapter.device_type == "Cpu");
        let p = pitch(s[0]);
        self.slabs(s, DType::F32, dest, |pass, buf, z0, slab| {
            let lines = match axis {
                0 => s[1] * slab as usize,
                1 => s[0] * slab as usize,
                _ => s[0] * s[1],
            } as u32;
            let gx = lines.min(65535);
            let params = FftParams {
                shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                n: n as u32,
                m: m as u32,
                log2m: m.trailing_zeros(),
                axis: axis as u32,
                pitch: p as u32,
                slab,
                groups_x: gx,
                flags,
                tw_off: offs[0],
                chirp_off: offs[1],
                kern_off: offs[2],
                w_off: offs[3],
            };
            let bg = self.bind(
                &pipes.lines_layout,
                &params,
                vec![
                    wgpu::BindingResource::TextureView(&vre),
                    wgpu::BindingResource::TextureView(&vim),
                    wgpu::BindingResource::TextureView(&vacc),
                    buf.as_entire_binding(),
                    table.as_entire_binding(),
                ],
            );
            pass.set_pipeline(&pipes.lines);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(gx, lines.div_ceil(gx), 1);
        })
    }

    /// [`Self::line_pass`] on the host, for axes too long for workgroup memory.
    #[allow(clippy::too_many_arguments)]
    fn line_pass_host(
        &self,
        re: &GpuVolume,
        im: Option<&GpuVolume>,
        filter: Option<&LineFilter>,
        flags: u32,
        acc: Option<&GpuVolume>,
        dest: Dest,
        axis: usize,
    ) -> Result<Output> {
        let s = re.shape;
        let host = |v: &GpuVolume| self.read_f32(v);
        let x = host(re)?;
        let out = match filter {
            Some(f) => {
                let mut out = match acc {
                    Some(a) => host(a)?,
                    None => crate::exec::cpu::alloc::zeroed(x.len())?,
                };
                crate::exec::cpu::kspace::filter_into(&x, s, f, &mut out)?;
                out
            }
            None => {
                let y = im.map(host).transpose()?;
                crate::exec::cpu::kspace::forward_axis(&x, y.as_deref(), s, axis, |c| {
                    if flags & IMAG != 0 {
                        c.im
                    } else if flags & MAGNITUDE != 0 {
                        c.norm()
                    } else {
                        c.re
                    }
                })?
            }
        };
        self.host_output(Voxels::from(out), s, dest)
    }

    /// Largest magnitude of the image's 3D spectrum: FFTs along z (real and imaginary parts), then y,
    /// then x (magnitude), and the maximum of that.
    fn max_abs_spectrum(&self, v: &GpuVolume) -> Result<f64> {
        let z_re = self.line_pass(v, None, 2, None, 0, None, Dest::Texture)?;
        let z_im = self.line_pass(v, None, 2, None, IMAG, None, Dest::Texture)?;
        let (z_re, z_im) = (self.image_of(z_re, v.shape), self.image_of(z_im, v.shape));
        let y_re = self.line_pass(&z_re, Some(&z_im), 1, None, 0, None, Dest::Texture)?;
        let y_im = self.line_pass(&z_re, Some(&z_im), 1, None, IMAG, None, Dest::Texture)?;
        let (y_re, y_im) = (self.image_of(y_re, v.shape), self.image_of(y_im, v.shape));
        let mag = self.line_pass(&y_re, Some(&y_im), 0, None, MAGNITUDE, None, Dest::Texture)?;
        let mag = self.image_of(mag, v.shape);
        let max = self.host_stats(&mag, false)?.max;
        let mut pool = self.pool.lock().unwrap();
        for t in [z_re, z_im, y_re, y_im, mag] {
            pool.give_texture(t.tex);
        }
        Ok(max)
    }

    /// Adds the spike plane waves.
    fn spike_waves(
        &self,
        v: &GpuVolume,
        frequencies: &[[usize; 3]],
        amplitude: f32,
        dest: Dest,
    ) -> Result<Output> {
        let s = v.shape;
        if s.iter().any(|&n| n > 1 << 16) {
            // (u * p) mod n would overflow 32 bits in the shader: add the waves on the host.
            let mut x = self.read_f32(v)?;
            crate::exec::cpu::kspace::add_waves(&mut x, s, frequencies, amplitude as f64);
            return self.host_output(Voxels::from(x), s, dest);
        }
        let freqs: Vec<[u32; 4]> = frequencies
            .iter()
            .map(|u| [u[0] as u32, u[1] as u32, u[2] as u32, 0])
            .collect();
        let fb = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("spike frequencies"),
                contents: bytemuck::cast_slice(&freqs),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let view = v.tex.create_view(&Default::default());
        let pipes = self
            .pipes
            .fft(&self.device, self.adapter.device_type == "Cpu");
        let p = pitch(s[0]);
        self.slabs(s, DType::F32, dest, |pass, buf, z0, slab| {
            let params = WaveParams {
                shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                pitch: p as u32,
                slab,
                count: freqs.len() as u32,
                amplitude,
            };
            self.dispatch_slab(
                pass,
                &pipes.waves,
                &pipes.waves_layout,
                &params,
                vec![
                    wgpu::BindingResource::TextureView(&view),
                    buf.as_entire_binding(),
                    fb.as_entire_binding(),
                ],
                [s[0], s[1]],
                slab,
            );
        })
    }
}
