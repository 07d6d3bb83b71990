//! NRRD read and write: raw and gzip encodings, `space directions` / `space origin`, LPS or RAS spaces,
//! attached data (`.nrrd`) and detached headers (`.nhdr` + data file). Geometry is converted to RAS.

use crate::error::{Error, Result};
use crate::grid::{Grid, Mat4};
use crate::volume::{DType, Kind, Volume};
use crate::voxels::Voxels;
use std::io::Read;
use std::path::Path;

fn parse_vec(s: &str) -> Option<Vec<f64>> {
    let t = s.trim();
    let t = t.strip_prefix('(')?.strip_suffix(')')?;
    t.split(',').map(|x| x.trim().parse::<f64>().ok()).collect()
}

fn dtype_of(t: &str) -> Option<(DType, usize)> {
    Some(match t {
        "uchar" | "unsigned char" | "uint8" | "uint8_t" => (DType::U8, 1),
        "signed char" | "int8" | "int8_t" => (DType::I8, 1),
        "short" | "short int" | "signed short" | "signed short int" | "int16" | "int16_t" => {
            (DType::I16, 2)
        }
        "ushort" | "unsigned short" | "unsigned short int" | "uint16" | "uint16_t" => {
            (DType::U16, 2)
        }
        "int" | "signed int" | "int32" | "int32_t" => (DType::I32, 4),
        "uint" | "unsigned int" | "uint32" | "uint32_t" => (DType::U32, 4),
        "float" => (DType::F32, 4),
        "double" => (DType::F64, 8),
        _ => return None,
    })
}

/// The detached data file of a `.nhdr`: a relative path that stays inside the header's folder and names
/// a regular file (no absolute path, no `..`, no device such as `/dev/zero`).
fn detached_data_path(header: &Path, name: &str) -> Result<std::path::PathBuf> {
    use std::path::Component;
    let rel = Path::new(name);
    if !rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::format(
            header,
            format!(
                "data file `{name}` leaves the header's folder (absolute path or `..`); \
                 detached data must sit next to the .nhdr"
            ),
        ));
    }
    let p = header.parent().unwrap_or(Path::new(".")).join(rel);
    let meta = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?;
    if !meta.is_file() {
        return Err(Error::format(
            header,
            format!("data file `{name}` is not a regular file"),
        ));
    }
    Ok(p)
}

/// Reads a NRRD file (attached or detached data).
pub fn read(path: &Path, kind: Kind) -> Result<Volume> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !bytes.starts_with(b"NRRD000") {
        return Err(Error::format(path, "not a NRRD file (no NRRD000x magic)"));
    }
    // Header: lines up to the first empty line.
    let mut pos = 0usize;
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut first = true;
    loop {
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|e| pos + e)
            .ok_or_else(|| {
                Error::format(
                    path,
                    "truncated NRRD header (no blank line before the data)",
                )
            })?;
        let line = String::from_utf8_lossy(&bytes[pos..end])
            .trim_end_matches('\r')
            .to_string();
        pos = end + 1;
        if first {
            first = false;
            continue;
        }
        if line.is_empty() {
            break;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(": ").or_else(|| line.split_once(":=")) {
            fields.push((k.trim().to_lowercase(), v.trim().to_string()));
        }
        if pos >= bytes.len() {
            break;
        }
    }
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    let need = |k: &str| {
        get(k).ok_or_else(|| Error::format(path, format!("NRRD header has no `{k}` field")))
    };
    let (dtype, bpp) = dtype_of(need("type")?).ok_or_else(|| {
        Error::Unsupported(format!(
            "{}: NRRD type `{}`",
            path.display(),
            get("type").unwrap_or("")
        ))
    })?;
    let sizes: Vec<usize> = need("sizes")?
        .split_whitespace()
        .map(|x| x.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::format(path, "NRRD `sizes` are not integers"))?;
    if sizes.is_empty() || sizes.len() > 3 && sizes[3..].iter().any(|&s| s > 1) {
        return Err(Error::Unsupported(format!(
            "{}: NRRD with sizes {sizes:?}; voxaug reads single 3D volumes",
            path.display()
        )));
    }
    let shape = [0, 1, 2].map(|a| sizes.get(a).copied().unwrap_or(1));
    // Geometry: space directions (one vector per axis) and origin, in the declared space.
    let space = get("space")
        .unwrap_or("right-anterior-superior")
        .to_lowercase();
    let flip = match space.as_str() {
        "left-posterior-superior" | "lps" | "scanner-xyz" => [-1.0, -1.0, 1.0],
        "right-anterior-superior" | "ras" => [1.0, 1.0, 1.0],
        "left-anterior-superior" | "las" => [-1.0, 1.0, 1.0],
        other => {
            return Err(Error::Unsupported(format!(
                "{}: NRRD space `{other}`",
                path.display()
            )));
        }
    };
    let mut affine: Mat4 = crate::grid::IDENTITY;
    if let Some(dirs) = get("space directions") {
        let vecs: Vec<&str> = dirs
            .split(')')
            .filter(|s| s.contains('('))
            .map(|s| s.trim())
            .collect();
        if vecs.len() < 3.min(sizes.len()) {
            return Err(Error::format(
                path,
                "NRRD `space directions` has fewer vectors than axes",
            ));
        }
        for (a, v) in vecs.iter().take(3).enumerate() {
            let v = parse_vec(&format!("{v})"))
                .ok_or_else(|| Error::format(path, format!("bad direction `{v})`")))?;
            for r in 0..3 {
                affine[r][a] = flip[r] * v.get(r).copied().unwrap_or(0.0);
            }
        }
    } else if let Some(sp) = get("spacings") {
        let s: Vec<f64> = sp
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        for a in 0..3.min(s.len()) {
            affine[a][a] = s[a];
        }
    }
    if let Some(o) = get("space origin") {
        let v =
            parse_vec(o).ok_or_else(|| Error::format(path, format!("bad space origin `{o}`")))?;
        for r in 0..3 {
            affine[r][3] = flip[r] * v.get(r).copied().unwrap_or(0.0);
        }
    }
    // The grid (and so the voxel count, within the limit) is checked before any data is read.
    let grid = Grid::new(shape, affine).map_err(|e| Error::format(path, e.to_string()))?;
    let n = grid.len();
    // Data: attached after the header, or in a detached file inside the header's folder.
    let raw: Vec<u8> = match get("data file").or(get("datafile")) {
        Some(f) => {
            let p = detached_data_path(path, f)?;
            std::fs::read(&p).map_err(|e| Error::io(&p, e))?
        }
        None => bytes[pos..].to_vec(),
    };
    let encoding = get("encoding").unwrap_or("raw").to_lowercase();
    let data = match encoding.as_str() {
        "raw" => raw,
        "gzip" | "gz" => {
            // Inflate no more than the header declares (plus a margin): a small file cannot expand
            // into gigabytes.
            let mut out = Vec::new();
            super::gzip::decoder(&raw[..])
                .take((n * bpp) as u64 + 4096)
                .read_to_end(&mut out)
                .map_err(|e| {
                    let msg = format!("NRRD gzip data are corrupt or truncated ({e})");
                    Error::format_from(path, msg, e)
                })?;
            out
        }
        other => {
            return Err(Error::Unsupported(format!(
                "{}: NRRD encoding `{other}`",
                path.display()
            )))
        }
    };
    if data.len() < n * bpp {
        return Err(Error::format(
            path,
            format!(
                "truncated: {} bytes of voxel data, the header declares {}",
                data.len(),
                n * bpp
            ),
        ));
    }
    let big = get("endian") == Some("big");
    let raw = &data[..n * bpp];
    let values = if kind == Kind::Label && dtype.int_range().is_some() {
        super::typed_from_raw(raw, dtype, big)?
    } else {
        Voxels::from(super::nifti::convert(raw, dtype, big))
    };
    super::finish_volume(path, values, grid, kind, dtype)
}

/// Encodes a volume as NRRD (attached, gzip), LPS space like most NRRD producers.
pub fn encode(v: &Volume) -> Result<Vec<u8>> {
    let dtype = super::nifti::output_dtype(v);
    // NRRD shares numpy's integer names; its float32 is "float".
    let t = match dtype {
        DType::F32 | DType::F64 => "float",
        d => d.name(),
    };
    let a = &v.grid.affine;
    let lps = |r: usize, x: f64| if r < 2 { -x } else { x };
    let dirs: Vec<String> = (0..3)
        .map(|c| {
            format!(
                "({},{},{})",
                lps(0, a[0][c]),
                lps(1, a[1][c]),
                lps(2, a[2][c])
            )
        })
        .collect();
    let s = v.grid.shape;
    let header = format!(
        "NRRD0004\n# written by voxaug\ntype: {t}\ndimension: 3\nspace: left-posterior-superior\nsizes: {} {} {}\nspace directions: {}\nkinds: domain domain domain\nendian: little\nencoding: gzip\nspace origin: ({},{},{})\n\n",
        s[0],
        s[1],
        s[2],
        dirs.join(" "),
        lps(0, a[0][3]),
        lps(1, a[1][3]),
        lps(2, a[2][3])
    );
    let raw = super::nifti::encode_data(v, dtype);
    let mut out = header.into_bytes();
    out.extend(super::gzip::compress(&[&raw]));
    Ok(out)
}
