//! Label value maps on the GPU (`shaders/labels.wgsl`; CPU twin `exec/cpu/labels.rs`).

use super::*;
use crate::transform::labels::LabelLut;

/// The raw texel bits of label value `x` in `dtype` (as R8/R16/R32Uint hold it), or None when the type
/// cannot hold `x` (such a key cannot occur in the data).
fn raw_bits(x: i64, dtype: DType) -> Option<u32> {
    let (lo, hi) = dtype.int_range()?;
    if (x as f64) < lo || (x as f64) > hi {
        return None;
    }
    let bits = 8 * dtype.size() as u32;
    Some((x as u32) & (u32::MAX >> (32 - bits)))
}

impl GpuContext {
    /// Maps the values of a label map on the device (its type already holds the new values).
    pub(super) fn label_lut(&self, v: &GpuVolume, lut: &LabelLut, dest: Dest) -> Result<Output> {
        let s = v.shape;
        let size = texel_size(v.dtype);
        let pack = 4 / size;
        // The table over raw bits, sorted as the shader compares them (unsigned).
        let mut table: Vec<(u32, u32)> = lut
            .keys
            .iter()
            .zip(&lut.values)
            .filter_map(|(&k, &val)| Some((raw_bits(k, v.dtype)?, raw_bits(val, v.dtype)?)))
            .collect();
        if table.len()
            != lut
                .keys
                .iter()
                .filter(|&&k| raw_bits(k, v.dtype).is_some())
                .count()
        {
            return Err(Error::invalid(format!(
                "internal: a new label value does not fit the label map's {} (not widened)",
                v.dtype.name()
            )));
        }
        table.sort_unstable();
        let others = match lut.others {
            Some(c) => raw_bits(c, v.dtype).ok_or_else(|| {
                Error::invalid("internal: the label fill does not fit the label map's type")
            })?,
            None => 0,
        };
        let count = table.len() as u32;
        // Storage bindings may not be empty: one unused entry when there are no keys.
        let keys: Vec<u32> = table.iter().map(|t| t.0).chain([0]).collect();
        let vals: Vec<u32> = table.iter().map(|t| t.1).chain([0]).collect();
        let buffer = |label: &str, data: &[u32]| {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(data),
                    usage: wgpu::BufferUsages::STORAGE,
                })
        };
        let (kb, vb) = (buffer("label keys", &keys), buffer("label values", &vals));
        let view = v.tex.create_view(&Default::default());
        let p = pitch_bytes(s[0], size) / 4;
        let pipe = &self.pipes.labels[size.trailing_zeros() as usize];
        self.slabs(s, v.dtype, dest, |pass, buf, z0, slab| {
            let params = LabelParams {
                shape: [s[0] as u32, s[1] as u32, s[2] as u32, z0],
                pitch: p as u32,
                slab,
                count,
                identity: lut.others.is_none() as u32,
                others,
                pad: [0; 3],
            };
            self.dispatch_slab(
                pass,
                pipe,
                &self.pipes.labels_layout,
                &params,
                vec![
                    wgpu::BindingResource::TextureView(&view),
                    buf.as_entire_binding(),
                    kb.as_entire_binding(),
                    vb.as_entire_binding(),
                ],
                [s[0].div_ceil(pack), s[1]],
                slab,
            );
        })
    }
}
