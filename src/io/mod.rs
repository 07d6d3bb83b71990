//! Reading and writing volumes. One module per format; [`read_volume`] / [`write_volume`] pick by content
//! and extension.

pub mod dicom;
pub mod gzip;
pub mod minc;
pub mod nifti;
pub mod nrrd;

use crate::error::{Error, Result};
use crate::volume::{DType, Kind, Volume};
use crate::voxels::Voxels;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File formats voxaug reads (and, for NIfTI-1 and NRRD, writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// NIfTI-1, NIfTI-2 and Analyze 7.5 (one reader).
    Nifti,
    /// NRRD (attached or detached header).
    Nrrd,
    /// A DICOM file or a folder holding a series.
    Dicom,
    /// MINC-1 (NetCDF classic), read only.
    Minc,
}

/// Detects the format by content (magic bytes), not by extension; names formats it recognises but
/// cannot read.
pub fn detect(path: &Path) -> Result<Format> {
    if path.is_dir() {
        return Ok(Format::Dicom);
    }
    let mut head = [0u8; 132];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut total = 0;
        while total < head.len() {
            match f.read(&mut head[total..]) {
                Ok(0) => break,
                Ok(k) => total += k,
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        total
    };
    let h = &head[..n];
    // Gzip-compressed DICOM: look at the decompressed start.
    if h.starts_with(&[0x1f, 0x8b]) {
        let mut inner = [0u8; 132];
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut dec = gzip::decoder(f);
        if std::io::Read::read_exact(&mut dec, &mut inner).is_ok() && &inner[128..132] == b"DICM" {
            return Ok(Format::Dicom);
        }
    }
    if h.starts_with(b"NRRD000") {
        return Ok(Format::Nrrd);
    }
    if n >= 132 && &h[128..132] == b"DICM" {
        return Ok(Format::Dicom);
    }
    if h.starts_with(b"CDF\x01") || h.starts_with(b"CDF\x02") {
        return Ok(Format::Minc);
    }
    if h.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Err(Error::Unsupported(format!(
            "{}: MINC-2 (HDF5) files are not supported; convert them to MINC-1 (`mincconvert`) or \
             NIfTI (nibabel, `mnc2nii`)",
            path.display()
        )));
    }
    Ok(Format::Nifti)
}

static MAPPED_READS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Lets readers map large uncompressed NIfTI/Analyze files (8 MiB of voxels or more, stored as they
/// are held: float32 images, integer label maps, native byte order) instead of copying them into new
/// memory: faster, and the memory is the page cache's. The price is in [`crate::voxels::Buf`]'s
/// notes: a file shrunk in place by another program while mapped ends the process (`SIGBUS`). Off
/// unless set; the `voxaug` command line sets it (`VOXAUG_MAP_READS=off` turns it off there).
pub fn set_mapped_reads(on: bool) {
    MAPPED_READS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether readers map files (see [`set_mapped_reads`]).
pub fn mapped_reads() -> bool {
    MAPPED_READS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Reads a volume from any supported file, detected by content: NIfTI-1 (`.nii`, `.nii.gz`, `.hdr`/
/// `.img` pairs), NIfTI-2, Analyze 7.5, NRRD (`.nrrd`, `.nhdr`), a DICOM series folder (one series) or
/// a single DICOM file.
pub fn read_volume(path: impl AsRef<Path>, kind: Kind) -> Result<Volume> {
    let path = path.as_ref();
    match detect(path)? {
        Format::Nifti => nifti::read(path, kind),
        Format::Nrrd => nrrd::read(path, kind),
        Format::Dicom => dicom::read(path, kind, None),
        Format::Minc => minc::read(path, kind),
    }
}

/// The volume a reader built from decoded voxels: label maps held as f32 (read from a float file, or
/// scaled) move into the narrowest integer type that holds them; `file_dtype` is kept for writing back
/// (float64 as float32). Bad label values are a format error naming the file.
pub(crate) fn finish_volume(
    path: &Path,
    data: Voxels,
    grid: crate::grid::Grid,
    kind: Kind,
    file_dtype: DType,
) -> Result<Volume> {
    let bad = |e: Error| Error::format(path, e.to_string());
    let data = match (kind, data) {
        (Kind::Label, Voxels::F32(v)) => Voxels::labels_from_f32(&v).map_err(bad)?,
        (_, d) => d,
    };
    let mut vol = Volume::from_voxels(data, grid, kind).map_err(bad)?;
    vol.dtype = match file_dtype {
        DType::F64 => DType::F32,
        d => d,
    };
    Ok(vol)
}

/// Voxels of an integer `dtype` from raw file bytes, in their own type (copied once; byte-swapped in
/// parallel when the file's endianness differs from the machine's).
pub(crate) fn typed_from_raw(raw: &[u8], dtype: DType, big: bool) -> Result<Voxels> {
    let n = raw.len() / dtype.size();
    let mut v = Voxels::output(dtype, n)?;
    v.as_bytes_mut().copy_from_slice(&raw[..n * dtype.size()]);
    swap_if_needed(&mut v, big);
    Ok(v)
}

/// Byte-swaps every voxel in place when the data's endianness (`big`) is not the machine's.
pub(crate) fn swap_if_needed(v: &mut Voxels, big: bool) {
    use rayon::prelude::*;
    let size = v.dtype().size();
    if size == 1 || big == cfg!(target_endian = "big") {
        return;
    }
    v.as_bytes_mut()
        .par_chunks_mut(size << 16)
        .for_each(|c| c.chunks_exact_mut(size).for_each(|x| x.reverse()));
}

/// [`read_volume`], reading series `series` when the path is a DICOM folder holding several (other
/// formats ignore it).
pub fn read_volume_series(
    path: impl AsRef<Path>,
    kind: Kind,
    series: Option<&str>,
) -> Result<Volume> {
    let path = path.as_ref();
    match (series, detect(path)?) {
        (Some(uid), Format::Dicom) => dicom::read(path, kind, Some(uid)),
        _ => read_volume(path, kind),
    }
}

pub use nifti::ChannelLayout;

/// Reads a member that may hold several channels: every channel of a multi-channel NIfTI file (image
/// channels along dim 4, or dim 5 with the vector intent; see [`ChannelLayout`]) as its own volume on
/// the file's grid, and its layout; any 3D file (any format) as one volume and `None`. Label maps must
/// be 3D.
pub fn read_channels(
    path: impl AsRef<Path>,
    kind: Kind,
    series: Option<&str>,
) -> Result<(Vec<Volume>, Option<ChannelLayout>)> {
    let path = path.as_ref();
    match (kind, detect(path)?) {
        (Kind::Image, Format::Nifti) => nifti::read_channels(path, kind),
        _ => Ok((vec![read_volume_series(path, kind, series)?], None)),
    }
}

/// An image to look at (`preview`, `histogram`, `stats`): a 3D file's volume, or the first channel of
/// a multi-channel NIfTI file (a note on stderr says so).
pub fn read_view_image(path: impl AsRef<Path>, series: Option<&str>) -> Result<Volume> {
    let path = path.as_ref();
    match read_volume_series(path, Kind::Image, series) {
        Err(Error::Unsupported(m)) if detect(path).ok() == Some(Format::Nifti) => {
            let (mut vols, _) =
                read_channels(path, Kind::Image, series).map_err(|_| Error::Unsupported(m))?;
            eprintln!(
                "voxaug: {}: showing channel 0 of {}",
                path.display(),
                vols.len()
            );
            Ok(vols.swap_remove(0))
        }
        r => r,
    }
}

/// Writes the channels of one member: a single volume without a layout as [`write_volume`] does,
/// several as one multi-channel NIfTI-1 file in `layout` (dim 4 when `None`); multi-channel output
/// must be NIfTI (`.nii`, `.nii.gz`).
pub fn write_channels(
    path: impl AsRef<Path>,
    channels: &[Volume],
    layout: Option<ChannelLayout>,
) -> Result<()> {
    stage_channels(path.as_ref(), channels, layout)?.commit()
}

/// [`write_channels`] up to the rename (see [`Staged`]).
pub fn stage_channels(
    path: &Path,
    channels: &[Volume],
    layout: Option<ChannelLayout>,
) -> Result<Staged> {
    if let ([v], None) = (channels, layout) {
        return stage_volume_as(path, v, None);
    }
    match output_format(path, None)? {
        (Format::Nifti, gz) => {
            let (header, data) =
                nifti::encode_channel_parts(channels, layout.unwrap_or(ChannelLayout::Time))?;
            let mut parts: Vec<&[u8]> = vec![&header];
            parts.extend(data.iter().map(|d| &d[..]));
            if gz {
                stage_parts(path, &[&gzip::compress(&parts)])
            } else {
                stage_parts(path, &parts)
            }
        }
        _ => Err(Error::Unsupported(format!(
            "{}: a multi-channel image is written as NIfTI (.nii or .nii.gz)",
            path.display()
        ))),
    }
}

/// The output format of a path, from its extension (or `format` when given: `nifti`, `nrrd`).
pub fn output_format(path: &Path, format: Option<&str>) -> Result<(Format, bool)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match format {
        Some("nifti") => return Ok((Format::Nifti, name.ends_with(".gz"))),
        Some("nrrd") => return Ok((Format::Nrrd, true)),
        Some(other) => {
            return Err(Error::Unsupported(format!(
                "output format `{other}` (writable: nifti, nrrd)"
            )))
        }
        None => {}
    }
    if name.ends_with(".nii") {
        Ok((Format::Nifti, false))
    } else if name.ends_with(".nii.gz") {
        Ok((Format::Nifti, true))
    } else if name.ends_with(".nrrd") {
        Ok((Format::Nrrd, true))
    } else {
        Err(Error::Unsupported(format!(
            "{}: can only write NIfTI (.nii, .nii.gz) or NRRD (.nrrd)",
            path.display()
        )))
    }
}

/// Writes a volume; the format follows the extension (`.nii` or `.nii.gz`). The write is atomic: data go
/// to a temporary file in the same folder which is renamed over `path` only once complete.
pub fn write_volume(path: impl AsRef<Path>, volume: &Volume) -> Result<()> {
    write_volume_as(path.as_ref(), volume, None)
}

/// Writes a volume in `format` (`nifti`, `nrrd`) or, when `None`, the format of the extension.
pub fn write_volume_as(path: &Path, volume: &Volume, format: Option<&str>) -> Result<()> {
    stage_volume_as(path, volume, format)?.commit()
}

/// [`write_volume_as`] up to the rename (see [`Staged`]).
pub fn stage_volume_as(path: &Path, volume: &Volume, format: Option<&str>) -> Result<Staged> {
    match output_format(path, format)? {
        (Format::Nifti, gz) => {
            // Header and voxel bytes are written (or compressed) from where they are: a float32
            // volume's voxels go to the file straight from its buffer.
            let (header, data) = nifti::encode_parts(volume)?;
            if gz {
                stage_parts(path, &[&gzip::compress(&[&header, &data])])
            } else {
                stage_parts(path, &[&header, &data])
            }
        }
        (Format::Nrrd, _) => stage_parts(path, &[&nrrd::encode(volume)?]),
        (Format::Dicom | Format::Minc, _) => unreachable!("not an output format"),
    }
}

/// Reads into `buf` from byte `at` of `file` until it is full or the file ends; returns the bytes read.
pub(crate) fn read_at_full(
    file: &std::fs::File,
    at: u64,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    #[cfg(unix)]
    use std::os::unix::fs::FileExt;
    #[cfg(windows)]
    use std::os::windows::fs::FileExt;
    let mut got = 0;
    while got < buf.len() {
        #[cfg(unix)]
        let r = file.read_at(&mut buf[got..], at + got as u64);
        #[cfg(windows)]
        let r = file.seek_read(&mut buf[got..], at + got as u64);
        match r {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// [`read_at_full`] in chunks of 4 MiB read by the rayon threads in parallel. Returns the bytes read
/// before the first short chunk (all of `buf` when the file holds them).
pub(crate) fn read_at_parallel(
    file: &std::fs::File,
    at: u64,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    use rayon::prelude::*;
    const CHUNK: usize = 4 << 20;
    let got: Vec<usize> = buf
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(i, c)| read_at_full(file, at + (i * CHUNK) as u64, c))
        .collect::<std::io::Result<_>>()?;
    let short = got.iter().position(|&g| g < CHUNK);
    Ok(short.map_or(buf.len(), |i| (i * CHUNK + got[i]).min(buf.len())))
}

/// Writes `bytes` to `path` through a temporary file + rename, so that no partial file is ever visible.
/// The temporary file has an unpredictable name and is created exclusively (`O_EXCL`, via the
/// `tempfile` crate), so a link planted in a shared output folder cannot redirect the write.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_parts(path, &[bytes])
}

/// [`write_atomic`] of the concatenation of `parts`, written one after the other (no joined copy).
/// The file is complete or absent even if the process is killed; like nibabel and SimpleITK, voxaug
/// does not `fsync` (a power loss may lose the newest files, never leave a partial one under its name
/// once the rename is on disk).
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> Result<()> {
    stage_parts(path, parts)?.commit()
}

/// A file written in full under a temporary name in its folder, put in place by
/// [`commit`](Self::commit); dropped uncommitted, it is removed and `path` is left as it was. Several
/// files staged before any is committed are written as a set: one that fails leaves none of them.
#[must_use = "a staged file is removed unless committed"]
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl Staged {
    /// Renames the file over its path (atomic: the old file or the new one, never a part).
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.tmp
            .persist(&path)
            .map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

/// Commits staged files in order (see [`Staged`]).
pub fn commit_all(staged: Vec<Staged>) -> Result<()> {
    staged.into_iter().try_for_each(Staged::commit)
}

/// [`write_atomic_parts`] up to the rename: the file written under its temporary name.
pub fn stage_parts(path: &Path, parts: &[&[u8]]) -> Result<Staged> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let mut tmp = usual_mode(&mut tempfile::Builder::new(), false)
        .prefix(&format!(".{name}."))
        .suffix(".voxaug-tmp")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(path, e))?;
    // A file replaced keeps its mode, as one rewritten in place would.
    if let Ok(old) = std::fs::metadata(path) {
        if old.is_file() {
            tmp.as_file()
                .set_permissions(old.permissions())
                .map_err(|e| Error::io(path, e))?;
        }
    }
    let total = parts.iter().map(|p| p.len() as u64).sum();
    let reserved = reserve(tmp.as_file(), total).map_err(|e| Error::io(path, e))?;
    // Replacing a file: ext4 (and other file systems with the same safeguard) allocates the blocks
    // of data written since the last writeback and starts writing them to disk inside the rename, on
    // this thread. Reserved blocks leave it nothing to allocate; otherwise that work is started
    // chunk by chunk while the rest is written, on whichever thread is free.
    if !reserved && std::fs::symlink_metadata(path).is_ok() {
        write_starting_writeback(tmp.as_file(), parts)
    } else {
        parts.iter().try_for_each(|p| tmp.write_all(p))
    }
    .map_err(|e| Error::io(path, e))?;
    Ok(Staged {
        tmp,
        path: path.to_path_buf(),
    })
}

/// Gives the files (or, with `dir`, folders) a `tempfile` builder makes the mode new ones usually have:
/// read and write (and, for folders, search) for everyone the umask allows, 0644 and 0755 under the
/// usual 022, as `File::create`, nibabel and SimpleITK make them. Outputs are written through such
/// temporary files and would otherwise keep `tempfile`'s owner-only 0600 and 0700. Unix only (other
/// systems have no such mode).
pub(crate) fn usual_mode<'b, 'p, 's>(
    b: &'b mut tempfile::Builder<'p, 's>,
    dir: bool,
) -> &'b mut tempfile::Builder<'p, 's> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(if dir {
            0o777
        } else {
            0o666
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        b
    }
}

/// Allocates the disk blocks of a new, empty `file` of `len` bytes (`fallocate`, Linux) before it is
/// written; returns whether they were. The file system then has no block to find during the write,
/// at writeback or at a replacing rename: writing a 256^3 float volume that replaces another took
/// 22-25 ms instead of 27-29 on ext4 here (`docs/performance-log.md`, session 23), and a full disk is
/// an error before the first byte. A file system without the call (or elsewhere than Linux) is
/// written as before.
fn reserve(file: &std::fs::File, len: u64) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let Ok(len) = libc::off_t::try_from(len) else {
            return Ok(false);
        };
        if len == 0 {
            return Ok(false);
        }
        // SAFETY: a plain system call on a file descriptor `file` keeps open.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            // No room (or no quota, or past the largest file): the write would fail too.
            Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => Err(e),
            // Not supported by this file system, interrupted: write without.
            _ => Ok(false),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, len);
        Ok(false)
    }
}

/// Writes `parts` to `file` in chunks of 8 MiB and, on Linux, asks the kernel to start writing each
/// chunk back to disk (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: no waiting, no durability promise, the
/// same writeback the kernel does later or at a replacing rename) as a rayon task, which an idle
/// thread picks up while this one writes the next chunk. Elsewhere a plain write.
fn write_starting_writeback(mut file: &std::fs::File, parts: &[&[u8]]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        const CHUNK: usize = 8 << 20;
        let fd = file.as_raw_fd();
        rayon::scope(|s| {
            let mut at = 0i64;
            for c in parts.iter().flat_map(|p| p.chunks(CHUNK)) {
                file.write_all(c)?;
                let (off, len) = (at, c.len() as i64);
                at += len;
                // SAFETY: `fd` stays open until the scope, and so this task, has ended; the call
                // only reads the range's pages from the page cache. Its result is advisory (a
                // failure leaves the writeback to the kernel, as without it).
                s.spawn(move |_| unsafe {
                    libc::sync_file_range(fd, off, len, libc::SYNC_FILE_RANGE_WRITE);
                });
            }
            Ok(())
        })
    }
    #[cfg(not(target_os = "linux"))]
    parts.iter().try_for_each(|p| file.write_all(p))
}

/// Creates a folder and its parents (like `mkdir -p`); errors name the folder.
pub fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))
}

/// Runs `write` (which writes a set of outputs into `dir`, all or none: see [`Staged`]) in `dir`,
/// created first if missing; a folder made here is removed again when `write` fails and left it
/// empty, so a failed run leaves nothing behind.
pub fn write_in_dir<T>(dir: &Path, write: impl FnOnce() -> Result<T>) -> Result<T> {
    let made = !dir.exists();
    create_dir(dir)?;
    write().inspect_err(|_| {
        if made {
            let _ = std::fs::remove_dir(dir);
        }
    })
}

/// Reads a text file; errors name the file.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replacing a file goes through reserved blocks (or, where the file system has none to reserve,
    /// the chunked write with early writeback): the bytes must be the parts in order across chunk and
    /// part boundaries, and a new file the same.
    #[test]
    fn atomic_writes_replace_files_with_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.nii");
        let body = |seed: u32, n: usize| -> Vec<u8> {
            (0..n as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
                .collect()
        };
        let (head, a) = (body(1, 352), body(2, (8 << 20) + 12_345));
        let tail = body(3, (8 << 20) - 7);
        write_atomic_parts(&path, &[&head, &a, &tail]).unwrap();
        let first = std::fs::read(&path).unwrap();
        assert_eq!(first, [&head[..], &a[..], &tail[..]].concat());
        let (b, c) = (body(4, 3 << 20), body(5, 17 << 20));
        write_atomic_parts(&path, &[&b, &c]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), [&b[..], &c[..]].concat());
        write_atomic_parts(&path, &[&head]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), head);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }

    /// The fallback for file systems without reserved blocks: chunks written in order whatever their
    /// split across parts, and the file exactly their length.
    #[test]
    fn chunked_writes_with_early_writeback_keep_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw");
        let parts: Vec<Vec<u8>> = [352usize, (8 << 20) + 5, 3, (8 << 20) - 1]
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n).map(|i| (i * 31 + k * 7) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let file = std::fs::File::create(&path).unwrap();
        write_starting_writeback(&file, &refs).unwrap();
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), parts.concat());
    }

    /// Outputs get the mode `File::create` gives under the same umask (not `tempfile`'s 0600); a
    /// replaced file keeps its own.
    #[cfg(unix)]
    #[test]
    fn outputs_have_the_usual_mode_and_replaced_files_keep_theirs() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let ours = dir.path().join("ours");
        write_atomic(&ours, b"new").unwrap();
        assert_eq!(mode(&ours), mode(&plain));
        assert_ne!(
            mode(&ours),
            0o600,
            "umask 0177 would make this test vacuous"
        );
        std::fs::set_permissions(&ours, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&ours, b"again").unwrap();
        assert_eq!(
            (mode(&ours), std::fs::read(&ours).unwrap()),
            (0o640, b"again".to_vec())
        );
    }

    /// Reserving gives the file its final length (its bytes are then all written over), and nothing
    /// for an empty file.
    #[test]
    fn reserving_sizes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let file = std::fs::File::create(&path).unwrap();
        assert!(!reserve(&file, 0).unwrap());
        if reserve(&file, 12_345).unwrap() {
            assert_eq!(file.metadata().unwrap().len(), 12_345);
        } else {
            assert_eq!(file.metadata().unwrap().len(), 0);
        }
    }
}
