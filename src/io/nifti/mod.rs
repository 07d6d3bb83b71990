//! NIfTI-1 (`.nii`, `.nii.gz`, `.hdr`/`.img` pair), NIfTI-2 and Analyze 7.5. Reading is here: which
//! frames or channels, where the voxel data start, the checks against what the header declares.
//! Headers are parsed in `header.rs` (the `nifti` crate for NIfTI-1, NIfTI-2 and Analyze by hand; one
//! orientation path: sform > qform > fallback), voxel data read and converted in `voxels.rs` (all
//! integer and float types, either endianness), writing is in `write.rs`.

mod header;
mod voxels;
mod write;

pub use header::header_affine;
use header::{analyze_header, dtype_of, nifti1_header, nifti2_header, HEAD_BYTES};
pub(crate) use voxels::convert;
use voxels::{read_voxels, split_channels};

pub(crate) use write::encode_data;
pub use write::{
    affine_to_qform, encode, encode_channel_parts, encode_parts, output_dtype, ChannelBytes,
};

use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::volume::{DType, Kind, Volume};
use byteorder::{ByteOrder, LittleEndian};
use std::io::Read;
use std::path::{Path, PathBuf};

const HEADER_SIZE: usize = 348;

/// Reads the first `limit` bytes of the file, transparently un-gzipping it (detected by content, not
/// extension). The limit comes from the header, so a small file cannot inflate into gigabytes and a
/// device file cannot be read forever.
pub(crate) fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = Vec::with_capacity(2);
    let mut f = std::io::BufReader::new(file);
    (&mut f)
        .take(2)
        .read_to_end(&mut magic)
        .map_err(|e| Error::io(path, e))?;
    let rest = std::io::Read::chain(&magic[..], f);
    if magic == [0x1f, 0x8b] {
        let mut out = Vec::new();
        super::gzip::decoder(rest)
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| {
                let msg = format!(
                    "gzip stream is corrupt or truncated ({e}); the file is not a complete .nii.gz"
                );
                Error::format_from(path, msg, e)
            })?;
        Ok(out)
    } else {
        let mut out = Vec::new();
        rest.take(limit)
            .read_to_end(&mut out)
            .map_err(|e| Error::io(path, e))?;
        Ok(out)
    }
}

/// Reads a NIfTI-1, NIfTI-2 or Analyze 7.5 volume as an image or a label map; 4D files are refused
/// (see [`read_frame`]).
pub fn read(path: &Path, kind: Kind) -> Result<Volume> {
    read_frame(path, kind, None)
}

/// Reads frame `frame` of a 4D file (`None`: the file must be 3D).
pub fn read_frame(path: &Path, kind: Kind, frame: Option<usize>) -> Result<Volume> {
    let which = match frame {
        None => Frames::Only,
        Some(f) => Frames::One(f),
    };
    Ok(read_frames(path, kind, which)?
        .0
        .pop()
        .expect("one frame read"))
}

/// How the channels of a multi-channel NIfTI file are laid out (written back the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelLayout {
    /// Along dim 4 (`dim = [4, x, y, z, C]`), as BraTS-style stacks of modalities are stored.
    Time,
    /// Along dim 5 with dim 4 of size 1 and the vector intent (`dim = [5, x, y, z, 1, C]`,
    /// `intent_code` 1007), the NIfTI convention for vector-valued voxels.
    Vector,
}

/// Every channel of a NIfTI file as its own volume (one for a 3D file), read in one pass, and the
/// layout of a multi-channel file (`None` for a 3D file). Channels are along dim 4, or along dim 5
/// when dim 4 has size 1 (see [`ChannelLayout`]); more dimensions are refused.
pub fn read_channels(path: &Path, kind: Kind) -> Result<(Vec<Volume>, Option<ChannelLayout>)> {
    read_frames(path, kind, Frames::All)
}

#[derive(Clone, Copy)]
enum Frames {
    /// The file must be 3D.
    Only,
    /// Frame `f` of a 4D file.
    One(usize),
    /// Every frame (channel).
    All,
}

fn read_frames(
    path: &Path,
    kind: Kind,
    which: Frames,
) -> Result<(Vec<Volume>, Option<ChannelLayout>)> {
    let bytes = read_bytes(path, HEAD_BYTES)?;
    if bytes.len() < HEADER_SIZE {
        return Err(Error::format(
            path,
            format!(
                "file is {} bytes long, too short for a NIfTI-1 header (348 bytes): truncated or not NIfTI",
                bytes.len()
            ),
        ));
    }
    let sizeof_le = LittleEndian::read_i32(&bytes[0..4]);
    let sizeof_be = byteorder::BigEndian::read_i32(&bytes[0..4]);
    let magic = &bytes[344..348];
    let h = if sizeof_le == 540 || sizeof_be == 540 {
        nifti2_header(path, &bytes, sizeof_le != 540)?
    } else if sizeof_le == 348 || sizeof_be == 348 {
        if magic == b"n+1\0" || magic == b"ni1\0" {
            nifti1_header(path, &bytes)?
        } else {
            analyze_header(&bytes, sizeof_le != 348)
        }
    } else {
        return Err(Error::format(
            path,
            "not a NIfTI-1 file (no 348-byte header with magic 'n+1' or 'ni1', nor NIfTI-2 or Analyze)",
        ));
    };
    if !(1..=7).contains(&h.ndim) {
        return Err(Error::format(path, format!("invalid dim[0] = {}", h.ndim)));
    }
    if h.dims.iter().take(h.ndim).any(|&d| d == 0) {
        return Err(Error::format(
            path,
            format!(
                "header has an empty dimension: dims = {:?}",
                &h.dims[..h.ndim]
            ),
        ));
    }
    let frames: usize = h.dims[3..].iter().product();
    let layout = match (frames, h.dims[3], h.dims[5..].iter().all(|&d| d == 1)) {
        (1, ..) => None,
        (_, f, true) if f == frames => Some(ChannelLayout::Time),
        (_, 1, true) if h.intent == 1007 => Some(ChannelLayout::Vector),
        _ => None,
    };
    let (frame, count) = match which {
        Frames::All if frames > 1 && layout.is_none() => {
            return Err(Error::Unsupported(format!(
                "{}: {}D volume (dims = {:?}); channels are read along dim 4, or along dim 5 when \
                 dim 4 is 1 and the intent is vector (1007); `voxaug convert --frame N` extracts \
                 one 3D frame",
                path.display(),
                h.ndim,
                &h.dims[..h.ndim]
            )))
        }
        Frames::All => (Some(0), frames),
        Frames::Only => (None, 1),
        Frames::One(f) => (Some(f), 1),
    };
    let frame = match frame {
        None if frames > 1 => {
            return Err(Error::Unsupported(format!(
                "{}: {}D volume with {frames} frames where a 3D volume is needed (dims = {:?}); a multi-channel image is one member of `apply`/`augment --image` and of the Python loader, and `preview`/`histogram`/`stats` show its first channel; `info` lists its channels and `convert --frame N` extracts one",
                path.display(),
                h.ndim,
                &h.dims[..h.ndim]
            )))
        }
        None => 0,
        Some(f) if f >= frames => {
            return Err(Error::invalid(format!(
                "{}: frame {f} does not exist ({frames} frames)",
                path.display()
            )))
        }
        Some(f) => f,
    };
    let shape = [h.dims[0], h.dims[1], h.dims[2]];
    let (dtype, bpp) = dtype_of(h.datatype).ok_or_else(|| {
        Error::Unsupported(format!(
            "{}: NIfTI datatype code {} (only int8/16/32, uint8/16/32, float32/64)",
            path.display(),
            h.datatype
        ))
    })?;
    // Sizes with checked arithmetic, the voxel count within the limit, before anything is read.
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= crate::grid::max_voxels())
        .ok_or_else(|| {
            Error::Limits(format!(
                "{}: shape {shape:?} is over the limit of {} voxels (set VOXAUG_MAX_VOXELS to raise it)",
                path.display(),
                crate::grid::max_voxels()
            ))
        })?;
    if count > 1
        && n.checked_mul(count)
            .is_none_or(|t| t > crate::grid::max_voxels())
    {
        return Err(Error::Limits(format!(
            "{}: {count} channels of {shape:?} are over the limit of {} voxels (set \
             VOXAUG_MAX_VOXELS to raise it)",
            path.display(),
            crate::grid::max_voxels()
        )));
    }
    let need = n * bpp;
    let skip = frame
        .checked_mul(need)
        .and_then(|s| s.checked_add(need))
        .and_then(|s| s.checked_add(h.vox_offset))
        .map(|end| end - need - h.vox_offset)
        .ok_or_else(|| Error::format(path, "frame offset overflows"))?;
    // Voxel data: after vox_offset in a single file, or in the sibling .img of a pair.
    let (data_path, start) = if h.pair {
        (pair_image_path(path), h.vox_offset + skip)
    } else {
        if h.vox_offset < HEADER_SIZE {
            return Err(Error::format(
                path,
                format!(
                    "data offset {} lies inside the 348-byte header",
                    h.vox_offset
                ),
            ));
        }
        (path.to_path_buf(), h.vox_offset + skip)
    };
    let (slope, inter) = (h.slope, h.inter);
    let scaled =
        slope != 0.0 && slope.is_finite() && inter.is_finite() && (slope != 1.0 || inter != 0.0);
    // Label maps of an integer type are read in that type (one copy, no conversion).
    let typed = kind == Kind::Label && !scaled && dtype.int_range().is_some();
    let mut values = read_voxels(&data_path, start, n * count, dtype, h.big, typed, !scaled)
        .map_err(|e| match e {
            Error::Format { msg, .. } if msg.starts_with("truncated") => Error::format(
                path,
                format!(
                    "{msg} ({shape:?} x {bpp} bytes{})",
                    if frames > 1 {
                        format!(", frame {frame} of {frames}")
                    } else {
                        String::new()
                    }
                ),
            ),
            e => e,
        })?;
    if scaled {
        if let Some(v) = values.as_f32_mut() {
            v.iter_mut()
                .for_each(|x| *x = (*x as f64 * slope + inter) as f32);
        }
    }
    let affine = h.affine.map_err(|m| Error::format(path, m))?;
    let grid = Grid::new(shape, affine).map_err(|e| Error::format(path, e.to_string()))?;
    let file_dtype = if scaled { DType::F32 } else { dtype };
    if count == 1 {
        let v = super::finish_volume(path, values, grid, kind, file_dtype)?;
        let layout = if matches!(which, Frames::All) {
            layout
        } else {
            None
        };
        return Ok((vec![v], layout.filter(|_| frames > 1)));
    }
    let vols = split_channels(values, count)
        .into_iter()
        .map(|d| super::finish_volume(path, d, grid.clone(), kind, file_dtype))
        .collect::<Result<Vec<_>>>()?;
    Ok((vols, layout))
}

fn pair_image_path(hdr: &Path) -> PathBuf {
    let s = hdr.to_string_lossy();
    for (from, to) in [(".hdr.gz", ".img.gz"), (".hdr", ".img"), (".HDR", ".IMG")] {
        if let Some(stem) = s.strip_suffix(from) {
            return PathBuf::from(format!("{stem}{to}"));
        }
    }
    hdr.with_extension("img")
}
