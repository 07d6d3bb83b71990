//! NIfTI-1, NIfTI-2 and Analyze 7.5 headers: what the three flavours have in common ([`Header`]), each
//! flavour's parser (NIfTI-1 through the `nifti` crate, NIfTI-2 and Analyze by hand) and the one
//! orientation rule (sform > qform > fallback).

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

use crate::error::{Error, Result};
use crate::grid::Mat4;
use crate::volume::DType;
use byteorder::ByteOrder;
use std::io::Cursor;
use std::path::Path;

/// Bytes of header read before the header says how much data follows (a NIfTI-2 header).
pub(super) const HEAD_BYTES: u64 = 540;

pub(super) fn dtype_of(code: i16) -> Option<(DType, usize)> {
    Some(match code {
        2 => (DType::U8, 1),
        4 => (DType::I16, 2),
        8 => (DType::I32, 4),
        16 => (DType::F32, 4),
        64 => (DType::F64, 8),
        256 => (DType::I8, 1),
        512 => (DType::U16, 2),
        768 => (DType::U32, 4),
        _ => return None,
    })
}

/// What the three header flavours (NIfTI-1, NIfTI-2, Analyze 7.5) have in common.
pub(super) struct Header {
    /// Up to 7 dimension sizes (missing ones are 1).
    pub(super) dims: [usize; 7],
    pub(super) ndim: usize,
    pub(super) datatype: i16,
    pub(super) vox_offset: usize,
    pub(super) slope: f64,
    pub(super) inter: f64,
    pub(super) affine: std::result::Result<Mat4, String>,
    pub(super) big: bool,
    /// Data live in a separate `.img` file.
    pub(super) pair: bool,
    /// `intent_code` (1007: vector; 0 for Analyze).
    pub(super) intent: i32,
}

pub(super) fn nifti1_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let h = nifti::NiftiHeader::from_reader(Cursor::new(bytes))
        .map_err(|e| Error::format(path, format!("invalid NIfTI-1 header: {e}")))?;
    let ndim = h.dim[0] as usize;
    let mut dims = [1usize; 7];
    for d in 0..ndim.min(7) {
        dims[d] = h.dim[d + 1] as usize;
    }
    Ok(Header {
        dims,
        ndim,
        datatype: h.datatype,
        vox_offset: h.vox_offset as usize,
        slope: h.scl_slope as f64,
        inter: h.scl_inter as f64,
        affine: header_affine(&h),
        big: matches!(h.endianness, nifti::Endianness::Big),
        pair: &bytes[344..348] == b"ni1\0",
        intent: h.intent_code as i32,
    })
}

/// Fields of a header read at byte offsets in its byte order.
struct Fields<'a> {
    b: &'a [u8],
    big: bool,
}

macro_rules! field_readers {
    ($($name:ident: $t:ty = $read:ident),*) => {
        impl Fields<'_> {
            $(
                /// The value at byte offset `o`.
                fn $name(&self, o: usize) -> $t {
                    if self.big {
                        byteorder::BigEndian::$read(&self.b[o..])
                    } else {
                        byteorder::LittleEndian::$read(&self.b[o..])
                    }
                }
            )*
        }
    };
}

field_readers!(i16: i16 = read_i16, i32: i32 = read_i32, i64: i64 = read_i64, f32: f32 = read_f32, f64: f64 = read_f64);

pub(super) fn nifti2_header(path: &Path, b: &[u8], big: bool) -> Result<Header> {
    if b.len() < 540 {
        return Err(Error::format(
            path,
            "truncated NIfTI-2 header (540 bytes expected)",
        ));
    }
    let r = Fields { b, big };
    if &b[4..7] != b"n+2" && &b[4..7] != b"ni2" {
        return Err(Error::format(
            path,
            "540-byte header without the NIfTI-2 magic",
        ));
    }
    let ndim = r.i64(16).clamp(0, 7) as usize;
    let mut dims = [1usize; 7];
    for d in 0..ndim {
        dims[d] = r.i64(24 + 8 * d).max(0) as usize;
    }
    let pix = [r.f64(112), r.f64(120), r.f64(128)];
    let (qcode, scode) = (r.i32(344), r.i32(348));
    let affine = if scode > 0 {
        let row = |o: usize| [r.f64(o), r.f64(o + 8), r.f64(o + 16), r.f64(o + 24)];
        Ok([row(400), row(432), row(464), [0.0, 0.0, 0.0, 1.0]])
    } else {
        // Reuse the NIfTI-1 qform / fallback logic through an equivalent NIfTI-1 header.
        let mut h = nifti::NiftiHeader::default();
        h.dim[0] = ndim as u16;
        for d in 0..3 {
            h.dim[d + 1] = dims[d].min(u16::MAX as usize) as u16;
        }
        h.pixdim = [
            r.f64(104) as f32,
            pix[0] as f32,
            pix[1] as f32,
            pix[2] as f32,
            1.0,
            1.0,
            1.0,
            1.0,
        ];
        h.qform_code = qcode as i16;
        h.sform_code = 0;
        h.quatern_b = r.f64(352) as f32;
        h.quatern_c = r.f64(360) as f32;
        h.quatern_d = r.f64(368) as f32;
        h.quatern_x = r.f64(376) as f32;
        h.quatern_y = r.f64(384) as f32;
        h.quatern_z = r.f64(392) as f32;
        header_affine(&h)
    };
    Ok(Header {
        dims,
        ndim,
        datatype: r.i16(12),
        vox_offset: r.i64(168).max(0) as usize,
        slope: r.f64(176),
        inter: r.f64(184),
        affine,
        big,
        pair: &b[4..7] == b"ni2",
        intent: r.i32(504),
    })
}

/// Analyze 7.5 (.hdr/.img, no orientation): nibabel's convention, LAS centred on the volume (or on the
/// SPM origin when the header has one), with SPM's scale factor (`funused1`) when set.
pub(super) fn analyze_header(b: &[u8], big: bool) -> Header {
    let r = Fields { b, big };
    let ndim = r.i16(40).clamp(0, 7) as usize;
    let mut dims = [1usize; 7];
    for d in 0..ndim {
        dims[d] = r.i16(42 + 2 * d).max(0) as usize;
    }
    let pix = [r.f32(80) as f64, r.f32(84) as f64, r.f32(88) as f64].map(f64::abs);
    let origin = [r.i16(253), r.i16(255), r.i16(257)];
    let affine = if pix.iter().any(|p| !p.is_finite() || *p == 0.0) {
        Err(format!(
            "voxel spacing (pixdim) {pix:?} has a zero or NaN entry"
        ))
    } else {
        let c: [f64; 3] = if origin.iter().any(|&o| o != 0) {
            origin.map(|o| o as f64 - 1.0)
        } else {
            [0, 1, 2].map(|a| (dims[a] as f64 - 1.0) / 2.0)
        };
        Ok([
            [-pix[0], 0.0, 0.0, c[0] * pix[0]],
            [0.0, pix[1], 0.0, -c[1] * pix[1]],
            [0.0, 0.0, pix[2], -c[2] * pix[2]],
            [0.0, 0.0, 0.0, 1.0],
        ])
    };
    let scale = r.f32(112) as f64;
    Header {
        dims,
        ndim,
        datatype: r.i16(70),
        vox_offset: r.f32(108).max(0.0) as usize,
        slope: if scale != 0.0 { scale } else { 1.0 },
        inter: 0.0,
        affine,
        big,
        pair: true,
        intent: 0,
    }
}

/// The voxel -> world affine a NIfTI reader should use: sform when `sform_code > 0`, else qform when
/// `qform_code > 0`, else nibabel's fallback for files without either (LAS, centred).
pub fn header_affine(h: &nifti::NiftiHeader) -> std::result::Result<Mat4, String> {
    let pix = [h.pixdim[1] as f64, h.pixdim[2] as f64, h.pixdim[3] as f64];
    if h.sform_code > 0 {
        let r = |row: [f32; 4]| row.map(|v| v as f64);
        return Ok([r(h.srow_x), r(h.srow_y), r(h.srow_z), [0.0, 0.0, 0.0, 1.0]]);
    }
    if pix.iter().any(|p| !p.is_finite() || *p == 0.0) {
        return Err(format!(
            "voxel spacing (pixdim) {pix:?} has a zero or NaN entry; the volume has no valid geometry"
        ));
    }
    let pix = pix.map(f64::abs);
    if h.qform_code > 0 {
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let mut a = 1.0 - (b * b + c * c + d * d);
        let (b, c, d) = if a < 1e-7 {
            let n = (b * b + c * c + d * d).sqrt();
            a = 0.0;
            (b / n, c / n, d / n)
        } else {
            a = a.sqrt();
            (b, c, d)
        };
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let s = [pix[0], pix[1], pix[2] * qfac];
        let off = [h.quatern_x as f64, h.quatern_y as f64, h.quatern_z as f64];
        let mut m = [[0.0; 4]; 4];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] = r[i][j] * s[j];
            }
            m[i][3] = off[i];
        }
        m[3][3] = 1.0;
        return Ok(m);
    }
    let dims = [h.dim[1] as f64, h.dim[2] as f64, h.dim[3].max(1) as f64];
    let c = dims.map(|n| (n - 1.0) / 2.0);
    Ok([
        [-pix[0], 0.0, 0.0, c[0] * pix[0]],
        [0.0, pix[1], 0.0, -c[1] * pix[1]],
        [0.0, 0.0, pix[2], -c[2] * pix[2]],
        [0.0, 0.0, 0.0, 1.0],
    ])
}
