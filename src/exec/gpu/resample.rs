//! The fused resampling pass on the GPU (`shaders/resample.wgsl`; CPU twin `exec/cpu/resample/`) and
//! its displacement fields (`shaders/field.wgsl`; CPU twin `exec/cpu/field.rs`).

use super::*;

impl GpuContext {
    pub(super) fn resample(
        &self,
        v: &GpuVolume,
        map: &SamplingMap,
        field: Option<&GpuField>,
        outside: GpuOutside,
        point: Option<&PointKernel>,
        dest: Dest,
    ) -> Result<Output> {
        let out_shape = map.grid.shape;
        self.check_shape(out_shape)?;
        let (m, post) = match field {
            None => (map.total(), crate::grid::IDENTITY),
            Some(_) => (map.matrix, map.post),
        };
        let m = [0, 1, 2].map(|r| m[r].map(|x| x as f32));
        let post = [0, 1, 2].map(|r| post[r].map(|x| x as f32));
        let dummy = match field {
            Some(_) => None,
            None => Some(self.pool.lock().unwrap().texture(
                &self.device,
                [1, 1, 1],
                wgpu::TextureFormat::R32Float,
            )),
        };
        let field_view = match (field, &dummy) {
            (Some(f), _) => f.tex.create_view(&Default::default()),
            (None, Some(d)) => d.create_view(&Default::default()),
            (None, None) => unreachable!(),
        };
        let (fshape, fstep, foffset, fscale) = match field {
            Some(f) => {
                let l = &f.layout;
                (
                    [l.shape[0] as u32, l.shape[1] as u32, l.shape[2] as u32, 1],
                    [l.step[0], l.step[1], l.step[2], 1.0],
                    [l.offset[0], l.offset[1], l.offset[2], 0.0],
                    [l.scale[0], l.scale[1], l.scale[2], 0.0],
                )
            }
            None => ([1, 1, 1, 0], [1.0; 4], [0.0; 4], [0.0; 4]),
        };
        let (fill, fill_bits, edge) = match outside {
            GpuOutside::Value(x) => (x, 0, 0),
            GpuOutside::Bits(b) => (0.0, b, 0),
            GpuOutside::Edge => (0.0, 0, 1),
        };
        let view = v.tex.create_view(&Default::default());
        let pipes = &self.pipes;
        // Label kernels write `pack` voxels (4 of 8 bits, 2 of 16, 1 of 32) into each output word.
        let size = texel_size(v.dtype);
        let pack = 4 / size;
        let argmax;
        let image;
        let (pipe, layout) = match (v.kind, field.is_some()) {
            (Kind::Image, f) => {
                // A map onto voxel centres (flip, crop, pad, permutations) is a copy: one texel
                // fetch instead of eight, as the CPU copies (`is_integer_map`).
                let entry = match (f, map.nearest_images) {
                    (true, _) => ImageEntry::Field,
                    (false, true) => ImageEntry::Nearest,
                    (false, false) if crate::exec::cpu::resample::is_integer_map(&m) => {
                        ImageEntry::Nearest
                    }
                    (false, false) => ImageEntry::Trilinear,
                };
                image = pipes.resample_image(&self.device, entry, point.map(PointParams::features));
                (&image, &pipes.resample_image_layout)
            }
            (Kind::Label, f) if map.label_interp == crate::transform::LabelInterp::LinearArgmax => {
                let signed = matches!(v.dtype, DType::I8 | DType::I16 | DType::I32);
                argmax =
                    pipes.label_argmax(&self.device, size.trailing_zeros() as usize, f, signed);
                (&*argmax, &pipes.resample_label_layout)
            }
            (Kind::Label, f) => (
                &pipes.resample_label[size.trailing_zeros() as usize][f as usize],
                &pipes.resample_label_layout,
            ),
        };
        // Images bind the point kernel's uniform (identity-free zeros when none is fused: unused).
        let point_buf = (v.kind == Kind::Image)
            .then(|| self.uniform(&point.map_or(PointParams::zeroed(), PointParams::of)));
        let p = pitch_bytes(out_shape[0], size) / 4;
        let out = self.slabs(out_shape, v.dtype, dest, |pass, buf, z0, slab| {
            let params = ResampleParams {
                m,
                in_shape: [
                    v.shape[0] as u32,
                    v.shape[1] as u32,
                    v.shape[2] as u32,
                    fill_bits,
                ],
                out_shape: [
                    out_shape[0] as u32,
                    out_shape[1] as u32,
                    out_shape[2] as u32,
                    z0,
                ],
                fill,
                edge,
                pitch: p as u32,
                slab,
                post,
                fshape,
                fstep,
                foffset,
                fscale,
            };
            let mut resources = vec![
                wgpu::BindingResource::TextureView(&view),
                buf.as_entire_binding(),
                wgpu::BindingResource::TextureView(&field_view),
            ];
            resources.extend(point_buf.as_ref().map(|b| b.binding()));
            self.dispatch_slab(
                pass,
                pipe,
                layout,
                &params,
                resources,
                [out_shape[0].div_ceil(pack), out_shape[1]],
                slab,
            );
        });
        if let Some(d) = dummy {
            self.pool.lock().unwrap().give_texture(d);
        }
        out
    }

    /// Builds a displacement field on the device, its three components packed into one RGBA32Float
    /// texture (one load per coarse node in the resampler). Gaussian fields are generated
    /// (counter-based noise), smoothed (separable passes of blur.wgsl) and packed (field.wgsl `pack`)
    /// on the GPU; B-spline fields are evaluated on the host (a small coarse grid) and uploaded.
    pub(super) fn build_field(&self, d: &crate::transform::fuse::Displacement) -> Result<GpuField> {
        use crate::exec::cpu::field;
        use crate::transform::fuse::FieldSpec;
        let lay = kernel::layout(&d.spec, d.grid.shape);
        self.check_shape(lay.shape)?;
        let s = lay.shape;
        let tex = match &d.spec {
            FieldSpec::Gaussian {
                sigma_vox, seed, ..
            } => {
                let mut out = Vec::with_capacity(3);
                for axis in 0..3u32 {
                    let p = pitch(s[0]);
                    let noise =
                        self.slabs(s, DType::F32, Dest::Texture, |pass, buf, z0, slab| {
                            let params = NoiseParams {
                                shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                                seed: [*seed as u32, (*seed >> 32) as u32],
                                stream: 2 + axis,
                                pitch: p as u32,
                                slab,
                                pad: [0; 3],
                            };
                            self.dispatch_slab(
                                pass,
                                &self.pipes.noise,
                                &self.pipes.noise_layout,
                                &params,
                                vec![buf.as_entire_binding()],
                                [s[0], s[1]],
                                slab,
                            );
                        })?;
                    let Output::Texture(tex) = noise else {
                        unreachable!()
                    };
                    let mut cur = GpuVolume {
                        tex,
                        shape: s,
                        kind: Kind::Image,
                        dtype: DType::F32,
                    };
                    for a in 0..3 {
                        if s[a] > 1 {
                            let w = kernel::gaussian_weights_truncated(
                                sigma_vox[a] / lay.step[a] as f64,
                                kernel::FIELD_TRUNCATE,
                            );
                            let Output::Texture(t) = self.blur_pass(&cur, a, &w, Dest::Texture)?
                            else {
                                unreachable!()
                            };
                            let old = std::mem::replace(&mut cur.tex, t);
                            self.pool.lock().unwrap().give_texture(old);
                        }
                    }
                    out.push(cur.tex);
                }
                let views: Vec<wgpu::TextureView> = out
                    .iter()
                    .map(|t| t.create_view(&Default::default()))
                    .collect();
                let p = pitch_bytes(s[0], 16) / 16;
                let packed = self.slabs_to_texture(
                    s,
                    16,
                    wgpu::TextureFormat::Rgba32Float,
                    |pass, buf, z0, slab| {
                        let params = NoiseParams {
                            shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                            seed: [0; 2],
                            stream: 0,
                            pitch: p as u32,
                            slab,
                            pad: [0; 3],
                        };
                        self.dispatch_slab(
                            pass,
                            &self.pipes.field_pack,
                            &self.pipes.field_pack_layout,
                            &params,
                            vec![
                                buf.as_entire_binding(),
                                wgpu::BindingResource::TextureView(&views[0]),
                                wgpu::BindingResource::TextureView(&views[1]),
                                wgpu::BindingResource::TextureView(&views[2]),
                            ],
                            [s[0], s[1]],
                            slab,
                        );
                    },
                )?;
                let mut pool = self.pool.lock().unwrap();
                for t in out {
                    pool.give_texture(t);
                }
                packed
            }
            FieldSpec::Bspline { .. } => {
                let f = field::build(&d.spec, d.grid.shape, d.grid.spacing())?;
                let texels: Vec<f32> = (0..f.comp[0].len())
                    .flat_map(|l| [f.comp[0][l], f.comp[1][l], f.comp[2][l], 0.0])
                    .collect();
                self.upload_texels(
                    s,
                    16,
                    wgpu::TextureFormat::Rgba32Float,
                    bytemuck::cast_slice(&texels),
                )?
            }
        };
        Ok(GpuField { tex, layout: lay })
    }

    /// Fill of a map for a volume on the GPU (same rules as the CPU's `outside_for` and `label_fill`).
    pub(super) fn outside(
        &self,
        fill: Fill,
        v: &GpuVolume,
        host: Option<&Volume>,
    ) -> Result<GpuOutside> {
        Ok(match (fill, v.kind) {
            (Fill::Edge, _) => GpuOutside::Edge,
            (Fill::Value(x), Kind::Image) => GpuOutside::Value(x as f32),
            (Fill::Min, Kind::Image) => GpuOutside::Value(self.stats(v, false)?.min),
            (fill, Kind::Label) => {
                // Label textures are integer: the minimum is taken on the host (read back if needed).
                let read;
                let data = match host {
                    Some(h) => &h.data,
                    None if fill == Fill::Min => {
                        read = self.read_texture(v)?;
                        &read
                    }
                    None => &Voxels::U8(Default::default()),
                };
                let value = crate::exec::cpu::resample::label_fill(fill, data).unwrap_or(0.0);
                GpuOutside::Bits(label_bits(value, v.dtype))
            }
        })
    }
}

/// What a resampling kernel takes outside the input.
#[derive(Clone, Copy, Debug)]
pub(super) enum GpuOutside {
    /// An image fill value.
    Value(f32),
    /// A label fill: the raw bits of the label in its type, zero-extended to 32 bits.
    Bits(u32),
    /// Replicate the edge.
    Edge,
}

/// The texel bits of a label value of a host type (as written into R8/R16/R32Uint textures).
fn label_bits(value: f64, dtype: DType) -> u32 {
    match dtype {
        DType::U8 => value as u8 as u32,
        DType::I8 => value as i8 as u8 as u32,
        DType::U16 => value as u16 as u32,
        DType::I16 => value as i16 as u16 as u32,
        DType::U32 => value as u32,
        DType::I32 => value as i32 as u32,
        DType::F32 | DType::F64 => (value as f32).to_bits(),
    }
}
