//! Writing NIfTI-1: the header with sform *and* qform carrying the volume's affine, label maps in their
//! own integer type, images in theirs while every value fits, optional gzip.

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

use crate::error::{Error, Result};
use crate::grid::Mat4;
use crate::volume::{DType, Volume};
use crate::voxels::Voxel;
use byteorder::{LittleEndian, WriteBytesExt};
use std::borrow::Cow;

fn dtype_code(d: DType) -> (i16, i16) {
    match d {
        DType::U8 => (2, 8),
        DType::I16 => (4, 16),
        DType::I32 => (8, 32),
        DType::F32 => (16, 32),
        DType::F64 => (64, 64),
        DType::I8 => (256, 8),
        DType::U16 => (512, 16),
        DType::U32 => (768, 32),
    }
}

/// Quaternion parameters (b, c, d), offsets, spacing and qfac for the qform of an affine (as
/// `nifti_mat44_to_quatern` does; shear is removed by polar decomposition).
pub fn affine_to_qform(m: &Mat4) -> ([f64; 3], [f64; 3], [f64; 3], f64) {
    let mut r = [[0.0; 3]; 3];
    let mut sp = [0.0; 3];
    for (j, s) in sp.iter_mut().enumerate() {
        *s = (0..3).map(|i| m[i][j] * m[i][j]).sum::<f64>().sqrt();
        for i in 0..3 {
            r[i][j] = m[i][j] / *s;
        }
    }
    let det = |r: &[[f64; 3]; 3]| {
        r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
            - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
            + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0])
    };
    let qfac = if det(&r) < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    // Polar decomposition by Newton iteration: R <- (R + R^-T) / 2 converges to the nearest rotation.
    for _ in 0..50 {
        let d = det(&r);
        let mut inv_t = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                let (i1, i2, j1, j2) = ((i + 1) % 3, (i + 2) % 3, (j + 1) % 3, (j + 2) % 3);
                inv_t[i][j] = (r[i1][j1] * r[i2][j2] - r[i1][j2] * r[i2][j1]) / d;
            }
        }
        let mut delta = 0.0f64;
        for i in 0..3 {
            for j in 0..3 {
                let v = 0.5 * (r[i][j] + inv_t[i][j]);
                delta = delta.max((v - r[i][j]).abs());
                r[i][j] = v;
            }
        }
        if delta < 1e-15 {
            break;
        }
    }
    let (r11, r12, r13) = (r[0][0], r[0][1], r[0][2]);
    let (r21, r22, r23) = (r[1][0], r[1][1], r[1][2]);
    let (r31, r32, r33) = (r[2][0], r[2][1], r[2][2]);
    let t = r11 + r22 + r33 + 1.0;
    let (mut a, mut b, mut c, mut d);
    if t > 0.5 {
        a = 0.5 * t.sqrt();
        b = 0.25 * (r32 - r23) / a;
        c = 0.25 * (r13 - r31) / a;
        d = 0.25 * (r21 - r12) / a;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            b = 0.5 * xd.sqrt();
            c = 0.25 * (r12 + r21) / b;
            d = 0.25 * (r13 + r31) / b;
            a = 0.25 * (r32 - r23) / b;
        } else if yd > 1.0 {
            c = 0.5 * yd.sqrt();
            b = 0.25 * (r12 + r21) / c;
            d = 0.25 * (r23 + r32) / c;
            a = 0.25 * (r13 - r31) / c;
        } else {
            d = 0.5 * zd.sqrt();
            b = 0.25 * (r13 + r31) / d;
            c = 0.25 * (r23 + r32) / d;
            a = 0.25 * (r21 - r12) / d;
        }
        if a < 0.0 {
            b = -b;
            c = -c;
            d = -d;
            a = -a;
        }
    }
    let _ = a;
    ([b, c, d], [m[0][3], m[1][3], m[2][3]], sp, qfac)
}

/// The type a volume is written with: its on-disk type when every value fits it exactly, else float32
/// (label maps: their in-memory type then, which always holds them).
pub fn output_dtype(v: &Volume) -> DType {
    let mem = v.data.dtype();
    if v.dtype == mem {
        return mem;
    }
    let fits = match v.dtype.int_range() {
        Some((lo, hi)) => match v.data.as_f32() {
            Some(d) => crate::stats::all_whole_within(d, lo, hi),
            None => {
                let (a, b) = v.data.range();
                a >= lo && b <= hi
            }
        },
        None => true,
    };
    match (fits, v.dtype) {
        (true, DType::F64) => DType::F32,
        (true, d) => d,
        (false, _) if v.kind == crate::Kind::Label => mem,
        (false, _) => DType::F32,
    }
}

/// Encodes a volume as a single-file NIfTI-1 (optionally gzipped), affine in both sform and qform.
pub fn encode(v: &Volume, gzip: bool) -> Result<Vec<u8>> {
    let (header, data) = encode_parts(v)?;
    if gzip {
        return Ok(crate::io::gzip::compress(&[&header, &data]));
    }
    let mut out = header;
    out.extend_from_slice(&data);
    Ok(out)
}

/// The 352 header bytes of a single-file NIfTI-1 and its voxel bytes (borrowed from the volume when
/// it is float32), for writing without joining them.
pub fn encode_parts(v: &Volume) -> Result<(Vec<u8>, Cow<'_, [u8]>)> {
    let dtype = output_dtype(v);
    let s = v.grid.shape;
    let dims = [3, s[0], s[1], s[2], 1, 1, 1, 1];
    Ok((header(&v.grid, dtype, dims, 0)?, encode_data(v, dtype)))
}

/// The voxel bytes of each channel (borrowed where no conversion is needed).
pub type ChannelBytes<'a> = Vec<Cow<'a, [u8]>>;

/// The header and the voxel bytes of each channel of a multi-channel NIfTI-1 file (channels on one
/// grid, written in `layout`; the type is the channels' common output type, else float32).
pub fn encode_channel_parts(
    vols: &[Volume],
    layout: super::ChannelLayout,
) -> Result<(Vec<u8>, ChannelBytes<'_>)> {
    let first = vols
        .first()
        .ok_or_else(|| Error::invalid("no channel to write"))?;
    if vols.iter().any(|v| v.grid != first.grid) {
        return Err(Error::invalid("the channels of one file must share a grid"));
    }
    let types: Vec<DType> = vols.iter().map(output_dtype).collect();
    let dtype = if types.iter().all(|&t| t == types[0]) {
        types[0]
    } else {
        DType::F32
    };
    let (s, c) = (first.grid.shape, vols.len());
    let (dims, intent) = match layout {
        super::ChannelLayout::Time => ([4, s[0], s[1], s[2], c, 1, 1, 1], 0),
        super::ChannelLayout::Vector => ([5, s[0], s[1], s[2], 1, c, 1, 1], 1007),
    };
    let h = header(&first.grid, dtype, dims, intent)?;
    Ok((h, vols.iter().map(|v| encode_data(v, dtype)).collect()))
}

/// The 352 bytes of a single-file NIfTI-1 header (no extensions) for voxels of `dtype` with `dims`
/// (`dims[0]` dimensions) on `grid`'s affine.
fn header(grid: &crate::Grid, dtype: DType, dims: [usize; 8], intent: i16) -> Result<Vec<u8>> {
    let (code, bitpix) = dtype_code(dtype);
    if dims[1..].iter().any(|&n| n > i16::MAX as usize) {
        return Err(Error::Limits(format!(
            "shape {:?} exceeds NIfTI-1's 32767 voxels per axis",
            &dims[1..=dims[0]]
        )));
    }
    let v = grid;
    let mut h: Vec<u8> = Vec::with_capacity(352);
    let w = &mut h;
    let (quat, off, sp, qfac) = affine_to_qform(&v.affine);
    let wr = |w: &mut Vec<u8>, x: f32| w.write_f32::<LittleEndian>(x).unwrap();
    w.write_i32::<LittleEndian>(348).unwrap();
    w.extend_from_slice(&[0u8; 28]); // data_type, db_name
    w.write_i32::<LittleEndian>(0).unwrap(); // extents
    w.write_i16::<LittleEndian>(0).unwrap(); // session_error
    w.push(b'r'); // regular
    w.push(0); // dim_info
    for d in dims {
        w.write_i16::<LittleEndian>(d as i16).unwrap();
    }
    for _ in 0..3 {
        wr(w, 0.0); // intent_p1..3
    }
    w.write_i16::<LittleEndian>(intent).unwrap(); // intent_code
    w.write_i16::<LittleEndian>(code).unwrap();
    w.write_i16::<LittleEndian>(bitpix).unwrap();
    w.write_i16::<LittleEndian>(0).unwrap(); // slice_start
    for p in [qfac, sp[0], sp[1], sp[2], 1.0, 1.0, 1.0, 1.0] {
        wr(w, p as f32);
    }
    wr(w, 352.0); // vox_offset
    wr(w, 1.0); // scl_slope
    wr(w, 0.0); // scl_inter
    w.write_i16::<LittleEndian>(0).unwrap(); // slice_end
    w.push(0); // slice_code
    w.push(2 | 8); // xyzt_units: mm, s
    for _ in 0..4 {
        wr(w, 0.0); // cal_max, cal_min, slice_duration, toffset
    }
    w.write_i32::<LittleEndian>(0).unwrap(); // glmax
    w.write_i32::<LittleEndian>(0).unwrap(); // glmin
    let mut descrip = [0u8; 80];
    let text = b"voxaug";
    descrip[..text.len()].copy_from_slice(text);
    w.extend_from_slice(&descrip);
    w.extend_from_slice(&[0u8; 24]); // aux_file
    w.write_i16::<LittleEndian>(1).unwrap(); // qform_code: scanner
    w.write_i16::<LittleEndian>(1).unwrap(); // sform_code: scanner
    for q in quat.iter().chain(off.iter()) {
        wr(w, *q as f32);
    }
    for row in &v.affine[..3] {
        for x in row {
            wr(w, *x as f32);
        }
    }
    w.extend_from_slice(&[0u8; 16]); // intent_name
    w.extend_from_slice(b"n+1\0");
    debug_assert_eq!(w.len(), 348);
    w.extend_from_slice(&[0u8; 4]); // no extensions
    Ok(h)
}

/// Voxel data as little-endian bytes of `dtype` (values already checked to fit by `output_dtype`),
/// converted in parallel; when `dtype` is the in-memory type on a little-endian machine (float32 images,
/// label maps written in their own type) this is the volume's own buffer, not a copy.
pub(crate) fn encode_data(v: &Volume, dtype: DType) -> Cow<'_, [u8]> {
    if dtype == v.data.dtype() && cfg!(target_endian = "little") {
        return Cow::Borrowed(v.data.as_bytes());
    }
    Cow::Owned(crate::with_voxels!(&v.data, d => encode_as(d, dtype)))
}

fn encode_as<T: Voxel>(d: &[T], dtype: DType) -> Vec<u8> {
    use rayon::prelude::*;
    let size = dtype.size().min(4);
    let mut w = vec![0u8; d.len() * size];
    const CHUNK: usize = 1 << 16;
    w.par_chunks_mut(CHUNK * size)
        .zip(d.par_chunks(CHUNK))
        .for_each(|(o, x)| {
            macro_rules! put {
                ($t:ty) => {
                    o.chunks_exact_mut(size)
                        .zip(x)
                        .for_each(|(o, &x)| o.copy_from_slice(&(x.to_f64() as $t).to_le_bytes()))
                };
            }
            match dtype {
                DType::U8 => put!(u8),
                DType::I8 => put!(i8),
                DType::I16 => put!(i16),
                DType::U16 => put!(u16),
                DType::I32 => put!(i32),
                DType::U32 => put!(u32),
                DType::F32 | DType::F64 => put!(f32),
            }
        });
    w
}
