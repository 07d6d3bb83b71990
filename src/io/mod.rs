//! Reading and writing volumes. One module per format; [`read_volume`] / [`write_volume`] pick by content
//! and extension.

pub mod nifti;

use crate::error::{Error, Result};
use crate::volume::{Kind, Volume};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Reads a volume from any supported file (NIfTI-1 `.nii`, `.nii.gz`, `.hdr`/`.img` pairs).
pub fn read_volume(path: impl AsRef<Path>, kind: Kind) -> Result<Volume> {
    nifti::read(path.as_ref(), kind)
}

/// Writes a volume; the format follows the extension (`.nii` or `.nii.gz`). The write is atomic: data go
/// to a temporary file in the same folder which is renamed over `path` only once complete.
pub fn write_volume(path: impl AsRef<Path>, volume: &Volume) -> Result<()> {
    let path = path.as_ref();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::invalid(format!("{}: not a file name", path.display())))?;
    let lower = name.to_ascii_lowercase();
    if !(lower.ends_with(".nii") || lower.ends_with(".nii.gz")) {
        return Err(Error::Unsupported(format!(
            "{}: can only write NIfTI (.nii or .nii.gz)",
            path.display()
        )));
    }
    let bytes = nifti::encode(volume, lower.ends_with(".gz"))?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file + rename, so that no partial file is ever visible.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.voxaug-tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}
