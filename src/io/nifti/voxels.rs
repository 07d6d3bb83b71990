//! Voxel data of NIfTI and Analyze files: read straight into the final buffer (positioned reads on
//! several threads for large uncompressed files), converted to f32 in parallel where the type is not
//! kept, and split into channels.

use crate::error::{Error, Result};
use crate::volume::DType;
use crate::voxels::{Voxel, Voxels};
use byteorder::ByteOrder;
use std::io::{BufRead, Read};
use std::path::Path;

/// Splits voxel data holding `count` consecutive 3D channels into one buffer per channel.
pub(super) fn split_channels(values: Voxels, count: usize) -> Vec<Voxels> {
    let n = values.len() / count.max(1);
    crate::with_voxels!(&values, v => v.chunks(n.max(1)).map(|c| Voxels::from(c.to_vec())).collect())
}

/// Voxel data from this many bytes on is read by [`crate::io::read_at_parallel`] when uncompressed.
const PARALLEL_READ: usize = 8 << 20;

/// Reads `n` voxels of `dtype` starting `start` bytes into the (possibly gzipped) file, straight into
/// the final buffer: one read for little-endian float32 and for integer voxels kept in their own type
/// (`typed`; byte-swapped in place if needed), else one read of the raw bytes and a parallel conversion
/// to f32. Nothing past the declared bytes is read or inflated. `kept`: the caller keeps the voxels as
/// read (no scaling in place), so a large uncompressed file may be mapped instead (see
/// [`crate::io::set_mapped_reads`]).
pub(super) fn read_voxels(
    path: &Path,
    start: usize,
    n: usize,
    dtype: DType,
    big: bool,
    typed: bool,
    kept: bool,
) -> Result<Voxels> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let bpp = dtype.size();
    let truncated = |got: usize| {
        Error::format(
            path,
            format!(
                "truncated: {got} bytes of voxel data, the header declares {} from byte {start}",
                n * bpp
            ),
        )
    };
    // Voxels kept in their type (integer labels, native float32) are read into the final buffer,
    // others as raw bytes converted to f32 in parallel.
    let direct = typed || (dtype == DType::F32 && big == cfg!(target_endian = "big"));
    let into = |read: &mut dyn FnMut(&mut [u8]) -> Result<usize>| -> Result<Voxels> {
        let mut out = if direct {
            Voxels::zeroed(dtype, n)?
        } else {
            Voxels::from(vec![0u8; n * bpp])
        };
        let got = read(out.as_bytes_mut())?;
        if got < n * bpp {
            return Err(truncated(got));
        }
        if direct {
            crate::io::swap_if_needed(&mut out, big);
            return Ok(out);
        }
        Ok(Voxels::from(convert(out.as_bytes_mut(), dtype, big)))
    };
    if n * bpp >= PARALLEL_READ && file.metadata().is_ok_and(|m| m.is_file()) {
        let mut magic = [0u8; 2];
        let head = crate::io::read_at_full(&file, 0, &mut magic).map_err(|e| Error::io(path, e))?;
        if head < 2 || magic != [0x1f, 0x8b] {
            // Voxels kept as they are on disk: the file's pages, where the process maps reads
            // (a file too short for them is read below, which reports it).
            let native = bpp == 1 || big == cfg!(target_endian = "big");
            if direct && native && kept && crate::io::mapped_reads() {
                let mapped = crate::with_dtype!(dtype, T => crate::voxels::Buf::<T>::map(&file, start as u64, n).map(T::wrap));
                if let Some(v) = mapped {
                    return Ok(v);
                }
            }
            // An uncompressed regular file: positioned reads from several threads straight into
            // the final buffer (one thread's copy out of the page cache ran at about 1.4 GB/s).
            return into(&mut |buf| {
                crate::io::read_at_parallel(&file, start as u64, buf)
                    .map_err(|e| Error::io(path, e))
            });
        }
    }
    let mut f = std::io::BufReader::with_capacity(1 << 20, file);
    let gz = f
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let mut r: Box<dyn Read> = if gz {
        Box::new(crate::io::gzip::decoder(f))
    } else {
        Box::new(f)
    };
    let corrupt = |e: std::io::Error| {
        if gz {
            let msg = format!(
                "gzip stream is corrupt or truncated ({e}); the file is not a complete .nii.gz"
            );
            Error::format_from(path, msg, e)
        } else {
            Error::io(path, e)
        }
    };
    let skipped =
        std::io::copy(&mut (&mut r).take(start as u64), &mut std::io::sink()).map_err(corrupt)?;
    if skipped < start as u64 {
        return Err(truncated(0));
    }
    into(&mut |buf| {
        let mut got = 0;
        while got < buf.len() {
            match r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(corrupt(e)),
            }
        }
        Ok(got)
    })
}

/// Voxels of `dtype` from raw bytes, converted in parallel.
pub(crate) fn convert(raw: &[u8], dtype: DType, big: bool) -> Vec<f32> {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    let size = dtype.size();
    let n = raw.len() / size;
    let mut out = vec![0f32; n];
    out.par_chunks_mut(CHUNK)
        .zip(raw[..n * size].par_chunks(CHUNK * size))
        .for_each(|(o, r)| convert_into(r, dtype, big, o));
    out
}

fn convert_into(raw: &[u8], dtype: DType, big: bool, out: &mut [f32]) {
    use byteorder::BigEndian as B;
    use byteorder::LittleEndian as L;
    macro_rules! conv {
        ($size:expr, $le:expr, $be:expr) => {
            for (o, c) in out.iter_mut().zip(raw.chunks_exact($size)) {
                *o = if big { $be(c) } else { $le(c) };
            }
        };
    }
    match dtype {
        DType::U8 => out.iter_mut().zip(raw).for_each(|(o, &b)| *o = b as f32),
        DType::I8 => out
            .iter_mut()
            .zip(raw)
            .for_each(|(o, &b)| *o = b as i8 as f32),
        DType::I16 => conv!(2, |c| L::read_i16(c) as f32, |c| B::read_i16(c) as f32),
        DType::U16 => conv!(2, |c| L::read_u16(c) as f32, |c| B::read_u16(c) as f32),
        DType::I32 => conv!(4, |c| L::read_i32(c) as f32, |c| B::read_i32(c) as f32),
        DType::U32 => conv!(4, |c| L::read_u32(c) as f32, |c| B::read_u32(c) as f32),
        DType::F32 => conv!(4, L::read_f32, B::read_f32),
        DType::F64 => conv!(8, |c| L::read_f64(c) as f32, |c| B::read_f64(c) as f32),
    }
}
