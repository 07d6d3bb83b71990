//! Label value maps on the CPU (twin of `shaders/labels.wgsl`): each label voxel looked up in the
//! map's table (a dense table for 8- and 16-bit labels, a binary search otherwise), images untouched.

use crate::error::Result;
use crate::transform::labels::LabelLut;
use crate::volume::{DType, Volume};
use crate::voxels::{Voxel, Voxels};
use rayon::prelude::*;

const CHUNK: usize = 1 << 16;

/// `v` with its label values mapped by `lut`, in type `target` (the plan's label type: see
/// [`crate::transform::labels::plan_dtype`]).
pub fn map_volume(v: &Volume, lut: &LabelLut, target: DType) -> Result<Volume> {
    let mut out = Voxels::output(target, v.data.len())?;
    crate::with_voxels!(&v.data, src => crate::with_voxels!(&mut out, dst => map_into(src, dst, lut)));
    Ok(Volume {
        data: out,
        grid: v.grid.clone(),
        kind: v.kind,
        dtype: v.dtype,
    })
}

/// `v` in label type `target` (values unchanged; `target` holds them).
pub fn widen(v: &Volume, target: DType) -> Result<Volume> {
    map_volume(v, &LabelLut::new([], None), target)
}

fn map_into<S: Voxel, D: Voxel>(src: &[S], dst: &mut [D], lut: &LabelLut) {
    match S::DTYPE {
        DType::U8 | DType::I8 | DType::U16 | DType::I16 => {
            let (lo, hi) = S::DTYPE.int_range().expect("integer type");
            let table: Vec<D> = (lo as i64..=hi as i64)
                .map(|x| D::from_f64(lut.get(x) as f64))
                .collect();
            let lo = lo as i64;
            dst.par_chunks_mut(CHUNK)
                .zip(src.par_chunks(CHUNK))
                .for_each(|(d, s)| {
                    for (o, x) in d.iter_mut().zip(s) {
                        *o = table[(x.to_f64() as i64 - lo) as usize];
                    }
                });
        }
        _ => dst
            .par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(d, s)| {
                for (o, x) in d.iter_mut().zip(s) {
                    *o = D::from_f64(lut.get(x.to_f64() as i64) as f64);
                }
            }),
    }
}
