//! DICOM series -> volume (dicom-rs): files grouped by SeriesInstanceUID, slices sorted along the slice
//! normal (ImageOrientationPatient x ImagePositionPatient), slice spacing from the positions (not
//! SliceThickness), RescaleSlope/Intercept applied, LPS converted to RAS. What is not one volume
//! (missing slices or uneven spacing, mixed orientations or sizes) is refused with the reason.

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

use crate::error::{Error, Result};
use crate::grid::{cross, dot, Grid};
use crate::volume::{DType, Kind, Volume};
use crate::voxels::Voxels;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dicom_pixeldata::PixelDecoder;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One slice of a series (a file, or one frame of an enhanced multi-frame file), with what sorting and
/// stacking need.
struct Slice {
    path: PathBuf,
    obj: Arc<DefaultDicomObject>,
    frame: u32,
    series: String,
    position: [f64; 3],
    orientation: [f64; 6],
    spacing: [f64; 2],
    rows: usize,
    cols: usize,
}

fn floats(obj: &InMemDicomObject, tag: dicom_object::Tag) -> Option<Vec<f64>> {
    obj.element(tag).ok()?.to_multi_float64().ok()
}

fn text(obj: &InMemDicomObject, tag: dicom_object::Tag) -> String {
    obj.element(tag)
        .ok()
        .and_then(|e| {
            e.to_str()
                .ok()
                .map(|s| s.trim().trim_end_matches('\0').to_string())
        })
        .unwrap_or_default()
}

thread_local! {
    /// Set while a third-party decoder runs on this thread: its panics become errors, unprinted.
    static IN_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs dicom-rs code on a file and turns a panic inside it into a format error naming the file.
/// dicom-rs asserts on some header values (BitsStored 0, a codestream larger than Rows x Columns)
/// instead of returning an error; `tests/fuzz.rs` found such files. The panic hook installed here
/// stays silent for those panics and hands every other one to the previous hook.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_DECODER.with(|c| c.get()) {
                previous(info)
            }
        }));
    });
    let was = IN_DECODER.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_DECODER.with(|c| c.set(was));
    r.unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::format(
            path,
            format!("the DICOM decoder failed on this file ({why}): it is corrupt or malformed"),
        ))
    })
}

/// Checks the size header (SIZ marker) of every JPEG 2000 codestream in an encapsulated pixel data
/// element against Rows, Columns and SamplesPerPixel before anything is decoded: the decoder writes a
/// codestream's pixels into a buffer sized from the DICOM header and panics when they disagree (found
/// by `tests/fuzz.rs`).
fn check_codestreams(s: &Slice) -> Result<()> {
    let Ok(e) = s.obj.element(tags::PIXEL_DATA) else {
        return Ok(());
    };
    let Some(fragments) = e.value().fragments() else {
        return Ok(());
    };
    let spp = s
        .obj
        .element(tags::SAMPLES_PER_PIXEL)
        .ok()
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(1);
    for f in fragments {
        let f: &[u8] = f.as_ref();
        let Some(at) = f
            .windows(4)
            .take(4096)
            .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        else {
            continue;
        };
        let siz = &f[at + 4..];
        let be32 = |o: usize| -> Option<u32> {
            Some(u32::from_be_bytes(siz.get(o..o + 4)?.try_into().ok()?))
        };
        let be16 = |o: usize| -> Option<u16> {
            Some(u16::from_be_bytes(siz.get(o..o + 2)?.try_into().ok()?))
        };
        // Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz, YTOsiz, Csiz, then per component
        // Ssiz, XRsiz, YRsiz.
        let parsed = (|| {
            let (x, y, xo, yo) = (be32(4)?, be32(8)?, be32(12)?, be32(16)?);
            let c = be16(36)? as usize;
            let sub: Vec<(u8, u8)> = (0..c)
                .map(|i| Some((*siz.get(39 + 3 * i)?, *siz.get(40 + 3 * i)?)))
                .collect::<Option<_>>()?;
            Some((x.checked_sub(xo)?, y.checked_sub(yo)?, c, sub))
        })();
        let ok = match &parsed {
            Some((w, h, c, sub)) => {
                *w as usize == s.cols
                    && *h as usize == s.rows
                    && *c == spp as usize
                    && sub.iter().all(|&r| r == (1, 1))
            }
            None => false,
        };
        if !ok {
            let found = match parsed {
                Some((w, h, c, _)) => format!("{w} x {h} pixels with {c} component(s)"),
                None => "a truncated size header".into(),
            };
            return Err(Error::format(
                &s.path,
                format!(
                    "JPEG 2000 pixel data holds {found}, but the header says Columns {} x Rows {} \
                     with {spp} sample(s) per pixel",
                    s.cols, s.rows
                ),
            ));
        }
    }
    Ok(())
}

/// Opens a DICOM file, gzip-compressed or not.
fn open(path: &Path) -> Result<DefaultDicomObject> {
    let bad = |e: String| {
        Error::format(
            path,
            format!("not a readable DICOM file (truncated or not DICOM): {e}"),
        )
    };
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut super::gzip::decoder(&raw[..]), &mut out)
            .map_err(|e| bad(format!("gzip: {e}")))?;
        out
    } else {
        raw
    };
    if bytes.len() < 132 || &bytes[128..132] != b"DICM" {
        return Err(bad("no DICM magic".into()));
    }
    guarded(path, || {
        dicom_object::from_reader(&bytes[128..]).map_err(|e| bad(e.to_string()))
    })
}

/// The first item of a sequence element.
fn item(obj: &InMemDicomObject, tag: dicom_object::Tag) -> Option<&InMemDicomObject> {
    obj.element(tag).ok()?.items()?.first()
}

/// Position, orientation and pixel spacing of frame `f` of an enhanced multi-frame object (per-frame
/// functional groups, falling back to the shared ones).
fn frame_geometry(obj: &InMemDicomObject, f: usize) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let per = obj
        .element(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .ok()?
        .items()?
        .get(f)?;
    let shared = item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let group = |seq, tag| {
        item(per, seq).and_then(|g| floats(g, tag)).or_else(|| {
            shared
                .and_then(|s| item(s, seq))
                .and_then(|g| floats(g, tag))
        })
    };
    Some((
        group(tags::PLANE_POSITION_SEQUENCE, tags::IMAGE_POSITION_PATIENT)?,
        group(
            tags::PLANE_ORIENTATION_SEQUENCE,
            tags::IMAGE_ORIENTATION_PATIENT,
        )?,
        group(tags::PIXEL_MEASURES_SEQUENCE, tags::PIXEL_SPACING)?,
    ))
}

/// The slices of one file: one, or one per frame of an enhanced multi-frame file.
fn slices_of(path: &Path) -> Result<Vec<Slice>> {
    let obj = Arc::new(open(path)?);
    let int = |tag| {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_int::<u32>().ok())
            .unwrap_or(0) as usize
    };
    let (rows, cols) = (int(tags::ROWS), int(tags::COLUMNS));
    if obj.element(tags::PIXEL_DATA).is_err() {
        // Not an image (a DICOMDIR, a structured report, ...): no slice.
        return Ok(Vec::new());
    }
    if rows == 0 || cols == 0 {
        return Err(Error::format(path, "DICOM file has no Rows/Columns"));
    }
    let series = text(&obj, tags::SERIES_INSTANCE_UID);
    let frames = int(tags::NUMBER_OF_FRAMES).max(1);
    // Sizes from the header are checked before anything is reserved for them.
    let voxels = (rows as u128) * (cols as u128) * (frames as u128);
    if voxels > crate::grid::max_voxels() as u128 {
        return Err(Error::Limits(format!(
            "{}: {rows} x {cols} x {frames} frames is {voxels} voxels, over the limit of {} \
             (set VOXAUG_MAX_VOXELS to raise it if this is a real series)",
            path.display(),
            crate::grid::max_voxels()
        )));
    }
    let mut geoms = Vec::new();
    if frames > 1 {
        for f in 0..frames {
            let g = frame_geometry(&obj, f).ok_or_else(|| {
                Error::format(
                    path,
                    format!("multi-frame DICOM without per-frame geometry for frame {f}"),
                )
            })?;
            geoms.push(g);
        }
    } else {
        let need = |tag, what: &str| {
            floats(&obj, tag)
                .ok_or_else(|| Error::format(path, format!("DICOM file has no {what}")))
        };
        geoms.push((
            need(tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient")?,
            need(tags::IMAGE_ORIENTATION_PATIENT, "ImageOrientationPatient")?,
            need(tags::PIXEL_SPACING, "PixelSpacing")?,
        ));
    }
    geoms
        .into_iter()
        .enumerate()
        .map(|(f, (pos, ori, sp))| {
            if pos.len() < 3 || ori.len() < 6 || sp.len() < 2 {
                return Err(Error::format(
                    path,
                    "malformed position, orientation or pixel spacing",
                ));
            }
            Ok(Slice {
                path: path.to_path_buf(),
                obj: obj.clone(),
                frame: f as u32,
                series: series.clone(),
                position: [pos[0], pos[1], pos[2]],
                orientation: [ori[0], ori[1], ori[2], ori[3], ori[4], ori[5]],
                spacing: [sp[0], sp[1]],
                rows,
                cols,
            })
        })
        .collect()
}

/// Image slices of the DICOM files of a folder. Files that are not DICOM (no `DICM` marker: notes,
/// thumbnails) and DICOM objects without pixel data (DICOMDIR, reports) are skipped; a DICOM file that
/// cannot be read (truncated, no geometry, undecodable) is an error naming it, never silently dropped
/// (the series would come out a slice short).
fn series_files(dir: &Path) -> Result<Vec<Slice>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.is_file() {
            paths.push(p);
        }
    }
    paths.sort();
    let mut slices: Vec<Slice> = Vec::new();
    for p in &paths {
        if !matches!(super::detect(p), Ok(super::Format::Dicom)) {
            continue;
        }
        let found = slices_of(p).map_err(|e| {
            Error::format(
                p,
                format!(
                    "{}; this file of the series cannot be read, so the volume would be incomplete \
                     (remove or repair the file)",
                    match e {
                        Error::Format { msg, .. } => msg,
                        other => other.to_string(),
                    }
                ),
            )
        })?;
        slices.extend(found);
    }
    if slices.is_empty() {
        return Err(Error::format(
            dir,
            "no readable DICOM image file in this folder",
        ));
    }
    Ok(slices)
}

/// Series UIDs of a folder with their file counts and descriptions (for `voxaug info`).
pub fn list_series(dir: &Path) -> Result<Vec<(String, usize, String)>> {
    let slices = series_files(dir)?;
    let mut out: Vec<(String, usize, String)> = Vec::new();
    for s in slices.iter().filter(|s| s.frame == 0) {
        match out.iter_mut().find(|(u, _, _)| *u == s.series) {
            Some(e) => e.1 += 1,
            None => out.push((
                s.series.clone(),
                1,
                format!(
                    "{} | patient {} | study {} {} | series {} #{}",
                    text(&s.obj, tags::MODALITY),
                    text(&s.obj, tags::PATIENT_NAME),
                    text(&s.obj, tags::STUDY_DATE),
                    text(&s.obj, tags::STUDY_DESCRIPTION),
                    text(&s.obj, tags::SERIES_DESCRIPTION),
                    text(&s.obj, tags::SERIES_NUMBER)
                ),
            )),
        }
    }
    Ok(out)
}

/// Reads a DICOM series (a folder, optionally one series of it) or a single DICOM file as a volume.
pub fn read(path: &Path, kind: Kind, series: Option<&str>) -> Result<Volume> {
    let mut slices = if path.is_dir() {
        series_files(path)?
    } else {
        slices_of(path)?
    };
    if slices.is_empty() {
        return Err(Error::format(
            path,
            "this DICOM object holds no image (no pixel data)",
        ));
    }
    let uids: Vec<String> = {
        let mut u: Vec<String> = slices.iter().map(|s| s.series.clone()).collect();
        u.sort();
        u.dedup();
        u
    };
    match series {
        Some(uid) => {
            slices.retain(|s| s.series == uid);
            if slices.is_empty() {
                return Err(Error::invalid(format!(
                    "{}: no series {uid} (found: {})",
                    path.display(),
                    uids.join(", ")
                )));
            }
        }
        None if uids.len() > 1 => {
            return Err(Error::invalid(format!(
                "{}: {} series in this folder ({}); pick one with `--series UID` (every command that \
                 reads a DICOM folder takes it; `voxaug info DIR` lists them; `io::read_volume_series` \
                 in the library)",
                path.display(),
                uids.len(),
                uids.join(", ")
            )))
        }
        None => {}
    }
    let first = &slices[0];
    let row = [
        first.orientation[0],
        first.orientation[1],
        first.orientation[2],
    ];
    let col = [
        first.orientation[3],
        first.orientation[4],
        first.orientation[5],
    ];
    let normal = cross(row, col);
    for s in &slices {
        if s.orientation
            .iter()
            .zip(&first.orientation)
            .any(|(a, b)| (a - b).abs() > 1e-4)
        {
            return Err(Error::format(
                &s.path,
                "mixed slice orientations in one series: not one volume",
            ));
        }
        if (s.rows, s.cols) != (first.rows, first.cols)
            || (0..2).any(|a| (s.spacing[a] - first.spacing[a]).abs() > 1e-4)
        {
            return Err(Error::format(
                &s.path,
                "mixed slice sizes or pixel spacings in one series: not one volume",
            ));
        }
    }
    let (spacing, (nx, ny)) = (first.spacing, (first.cols, first.rows));
    slices.sort_by(|a, b| dot(a.position, normal).total_cmp(&dot(b.position, normal)));
    let n = slices.len();
    let d: Vec<f64> = slices
        .windows(2)
        .map(|w| dot(w[1].position, normal) - dot(w[0].position, normal))
        .collect();
    let step = if n > 1 {
        let mut sorted = d.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        if median <= 1e-6 {
            return Err(Error::format(
                path,
                "several slices at the same position: not one volume",
            ));
        }
        if let Some((i, gap)) = d
            .iter()
            .enumerate()
            .find(|(_, g)| (**g - median).abs() > 0.01 * median + 1e-3)
        {
            let what = if *gap > 1.5 * median {
                "a missing slice"
            } else {
                "uneven slice spacing"
            };
            return Err(Error::format(
                path,
                format!(
                    "{what} between {} and {}: gap {gap:.4} mm where the series has {median:.4} mm",
                    slices[i].path.display(),
                    slices[i + 1].path.display()
                ),
            ));
        }
        let span = [0, 1, 2].map(|a| slices[n - 1].position[a] - slices[0].position[a]);
        span.map(|x| x / (n - 1) as f64)
    } else {
        let thick = floats(&slices[0].obj, tags::SLICE_THICKNESS)
            .and_then(|v| v.first().copied())
            .unwrap_or(1.0);
        normal.map(|x| x * thick)
    };
    // Voxel (i, j, k) = (column, row, slice) in LPS; then to RAS by negating x and y.
    let (cs, rs) = (spacing[1], spacing[0]);
    let o = slices[0].position;
    let lps = [
        [row[0] * cs, col[0] * rs, step[0], o[0]],
        [row[1] * cs, col[1] * rs, step[1], o[1]],
        [row[2] * cs, col[2] * rs, step[2], o[2]],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let mut affine = lps;
    for c in 0..4 {
        affine[0][c] = -affine[0][c];
        affine[1][c] = -affine[1][c];
    }
    // The grid (voxel count within the limit) is checked before the voxel buffer is reserved.
    let grid = Grid::new([nx, ny, n], affine).map_err(|e| Error::format(path, e.to_string()))?;
    let mut data = Vec::with_capacity(grid.len());
    let mut integral = true;
    for s in &slices {
        check_codestreams(s)?;
        let pix = guarded(&s.path, || {
            s.obj.decode_pixel_data_frame(s.frame).map_err(|e| {
                let msg = format!("cannot decode the pixel data: {e}");
                Error::format_from(&s.path, msg, e)
            })
        })?;
        if pix.samples_per_pixel() != 1 {
            return Err(Error::Unsupported(format!(
                "{}: colour DICOM images",
                s.path.display()
            )));
        }
        let v: Vec<f32> = guarded(&s.path, || {
            pix.to_vec().map_err(|e| {
                let msg = format!("cannot convert the pixel data: {e}");
                Error::format_from(&s.path, msg, e)
            })
        })?;
        if v.len() != nx * ny {
            return Err(Error::format(
                &s.path,
                format!("{} pixels, Rows x Columns is {}", v.len(), nx * ny),
            ));
        }
        integral &= v.iter().all(|x| x.fract() == 0.0);
        data.extend(v);
    }
    let dtype = match integral.then(|| crate::stats::min_max(&data)) {
        Some((lo, hi)) if lo >= -32768.0 && hi <= 32767.0 => DType::I16,
        Some(_) => DType::I32,
        None => DType::F32,
    };
    super::finish_volume(path, Voxels::from(data), grid, kind, dtype)
}
