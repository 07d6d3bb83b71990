//! MINC-1 (NetCDF classic, CDF-1 and CDF-2) reader: the `image` variable with its `xspace`, `yspace`,
//! `zspace` dimension variables (`step`, `start`, `direction_cosines`) turned into the RAS affine, and
//! voxel values mapped from `valid_range` to `image-min`..`image-max` (scalar or per slice), as nibabel
//! reads them. Voxel axis 0 is the file's fastest dimension (usually `xspace`): the world position of
//! every voxel is nibabel's, with the axes in the opposite order. MINC-2 (HDF5) is refused by detection.

use crate::error::{Error, Result};
use crate::grid::{Grid, Mat4};
use crate::volume::{DType, Kind, Volume};
use crate::voxels::Voxels;
use std::collections::HashMap;
use std::path::Path;

/// A NetCDF attribute value.
#[derive(Clone, Debug)]
enum Value {
    Text(String),
    Numbers(Vec<f64>),
}

struct Var {
    dims: Vec<usize>,
    attrs: HashMap<String, Value>,
    nc_type: u32,
    begin: u64,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    wide: bool,
    path: &'a Path,
}

impl Reader<'_> {
    fn bad(&self, what: &str) -> Error {
        Error::format(
            self.path,
            format!("MINC-1 (NetCDF) header: {what} at byte {}", self.at),
        )
    }
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| self.bad("truncated"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn count(&mut self, max: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(self.bad(&format!("a count of {n}")));
        }
        Ok(n)
    }
    fn name(&mut self) -> Result<String> {
        let n = self.count(1 << 16)?;
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.take((4 - n % 4) % 4)?;
        Ok(s)
    }
    fn values(&mut self, nc_type: u32, n: usize) -> Result<Value> {
        let size = type_size(nc_type).ok_or_else(|| self.bad(&format!("type {nc_type}")))?;
        let bytes = n.checked_mul(size).ok_or_else(|| self.bad("size"))?;
        let raw = self.take(bytes)?.to_vec();
        self.take((4 - bytes % 4) % 4)?;
        Ok(match nc_type {
            2 => Value::Text(
                String::from_utf8_lossy(&raw)
                    .trim_end_matches('\0')
                    .to_string(),
            ),
            t => Value::Numbers(raw.chunks_exact(size).map(|c| number(t, c)).collect()),
        })
    }
    fn attrs(&mut self) -> Result<HashMap<String, Value>> {
        let tag = self.u32()?;
        let n = self.count(1 << 16)?;
        if tag == 0 && n == 0 {
            return Ok(HashMap::new());
        }
        if tag != 0x0C {
            return Err(self.bad("an attribute list"));
        }
        let mut out = HashMap::new();
        for _ in 0..n {
            let name = self.name()?;
            let t = self.u32()?;
            let k = self.count(1 << 24)?;
            out.insert(name, self.values(t, k)?);
        }
        Ok(out)
    }
}

fn type_size(t: u32) -> Option<usize> {
    match t {
        1 | 2 => Some(1),
        3 => Some(2),
        4 | 5 => Some(4),
        6 => Some(8),
        _ => None,
    }
}

fn number(t: u32, c: &[u8]) -> f64 {
    match t {
        1 => c[0] as i8 as f64,
        3 => i16::from_be_bytes([c[0], c[1]]) as f64,
        4 => i32::from_be_bytes(c.try_into().unwrap()) as f64,
        5 => f32::from_be_bytes(c.try_into().unwrap()) as f64,
        _ => f64::from_be_bytes(c.try_into().unwrap()),
    }
}

fn nums(attrs: &HashMap<String, Value>, key: &str) -> Option<Vec<f64>> {
    match attrs.get(key) {
        Some(Value::Numbers(v)) => Some(v.clone()),
        _ => None,
    }
}

/// Reads a MINC-1 file (3 spatial dimensions, regular spacing).
pub fn read(path: &Path, kind: Kind) -> Result<Volume> {
    // The whole file (gzipped or not), at most what the voxel limit allows in doubles plus headers.
    let limit = (crate::grid::max_voxels() as u64).saturating_mul(8) + (64 << 20);
    let bytes = crate::io::nifti::read_bytes(path, limit)?;
    let b = &bytes[..];
    if b.len() < 4 || &b[..3] != b"CDF" || !matches!(b[3], 1 | 2) {
        return Err(Error::format(path, "not a NetCDF classic (MINC-1) file"));
    }
    let mut r = Reader {
        b,
        at: 4,
        wide: b[3] == 2,
        path,
    };
    r.u32()?; // numrecs
              // Dimensions.
    let tag = r.u32()?;
    let n = r.count(1024)?;
    let mut dims: Vec<(String, usize)> = Vec::new();
    if !(tag == 0 && n == 0) {
        if tag != 0x0A {
            return Err(r.bad("a dimension list"));
        }
        for _ in 0..n {
            let name = r.name()?;
            let len = r.u32()? as usize;
            dims.push((name, len));
        }
    }
    let global = r.attrs()?;
    drop(global);
    // Variables.
    let tag = r.u32()?;
    let n = r.count(4096)?;
    let mut vars: HashMap<String, Var> = HashMap::new();
    if !(tag == 0 && n == 0) {
        if tag != 0x0B {
            return Err(r.bad("a variable list"));
        }
        for _ in 0..n {
            let name = r.name()?;
            let nd = r.count(64)?;
            let mut ids = Vec::with_capacity(nd);
            for _ in 0..nd {
                let id = r.u32()? as usize;
                if id >= dims.len() {
                    return Err(r.bad(&format!("dimension id {id}")));
                }
                ids.push(id);
            }
            let attrs = r.attrs()?;
            let nc_type = r.u32()?;
            r.u32()?; // vsize
            let begin = if r.wide {
                u64::from_be_bytes(r.take(8)?.try_into().unwrap())
            } else {
                r.u32()? as u64
            };
            vars.insert(
                name,
                Var {
                    dims: ids,
                    attrs,
                    nc_type,
                    begin,
                },
            );
        }
    }
    let image = vars
        .get("image")
        .ok_or_else(|| Error::format(path, "MINC-1 file without an `image` variable"))?;
    let names: Vec<&str> = image.dims.iter().map(|&d| dims[d].0.as_str()).collect();
    if names.len() != 3 || !names.iter().all(|n| n.ends_with("space")) {
        return Err(Error::Unsupported(format!(
            "{}: MINC image with dimensions {names:?} (voxaug reads 3 spatial dimensions; take one \
             frame with mincreshape)",
            path.display()
        )));
    }
    // Voxel axis a is the file's dimension 2 - a (the fastest first).
    let shape = [0, 1, 2].map(|a| dims[image.dims[2 - a]].1);
    let mut affine: Mat4 = crate::grid::IDENTITY;
    let mut origin = [0.0f64; 3];
    for a in 0..3 {
        let name = names[2 - a];
        let v = vars.get(name);
        let attr = |k: &str| v.and_then(|v| nums(&v.attrs, k));
        let step = attr("step").and_then(|x| x.first().copied()).unwrap_or(1.0);
        let start = attr("start")
            .and_then(|x| x.first().copied())
            .unwrap_or(0.0);
        let cos = attr("direction_cosines")
            .filter(|c| c.len() == 3)
            .unwrap_or_else(|| {
                let mut c = vec![0.0; 3];
                c[match name {
                    "xspace" => 0,
                    "yspace" => 1,
                    _ => 2,
                }] = 1.0;
                c
            });
        if let Some(Value::Text(s)) = v.and_then(|v| v.attrs.get("spacing")) {
            if s.starts_with("irregular") {
                return Err(Error::Unsupported(format!(
                    "{}: MINC dimension {name} with irregular spacing",
                    path.display()
                )));
            }
        }
        for r in 0..3 {
            affine[r][a] = cos[r] * step;
            origin[r] += cos[r] * start;
        }
    }
    for r in 0..3 {
        affine[r][3] = origin[r];
    }
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let n = n
        .filter(|&n| n > 0 && n <= crate::grid::max_voxels())
        .ok_or_else(|| Error::Limits(format!("{}: MINC shape {shape:?}", path.display())))?;
    let size = type_size(image.nc_type)
        .filter(|_| image.nc_type != 2)
        .ok_or_else(|| Error::format(path, format!("image of NetCDF type {}", image.nc_type)))?;
    let start = image.begin as usize;
    let raw = start
        .checked_add(n * size)
        .filter(|&e| e <= b.len())
        .map(|e| &b[start..e])
        .ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "truncated: the image needs {} bytes from byte {start}, the file has {}",
                    n * size,
                    b.len()
                ),
            )
        })?;
    let unsigned =
        matches!(image.attrs.get("signtype"), Some(Value::Text(s)) if s.starts_with("unsigned"));
    let value = |c: &[u8]| -> f64 {
        match (image.nc_type, unsigned) {
            (1, true) => c[0] as f64,
            (3, true) => u16::from_be_bytes([c[0], c[1]]) as f64,
            (4, true) => u32::from_be_bytes(c.try_into().unwrap()) as f64,
            (t, _) => number(t, c),
        }
    };
    let float = matches!(image.nc_type, 5 | 6);
    let (tmin, tmax) = match (image.nc_type, unsigned) {
        (1, true) => (0.0, 255.0),
        (1, false) => (-128.0, 127.0),
        (3, true) => (0.0, 65535.0),
        (3, false) => (-32768.0, 32767.0),
        (4, true) => (0.0, u32::MAX as f64),
        _ => (i32::MIN as f64, i32::MAX as f64),
    };
    let range = nums(&image.attrs, "valid_range")
        .filter(|v| v.len() == 2)
        .map(|v| (v[0], v[1]))
        .or_else(|| {
            Some((
                nums(&image.attrs, "valid_min")?.first().copied()?,
                nums(&image.attrs, "valid_max")?.first().copied()?,
            ))
        })
        .unwrap_or((tmin, tmax));
    if !(range.0.is_finite() && range.1.is_finite() && range.0 <= range.1) {
        return Err(Error::format(
            path,
            format!(
                "valid_range [{}, {}] is not an increasing pair of finite numbers",
                range.0, range.1
            ),
        ));
    }
    // image-min / image-max: scalars, or one per slice of the slowest dimension.
    let scale_of = |key: &str| -> Result<Vec<f64>> {
        let Some(v) = vars.get(key) else {
            return Ok(Vec::new());
        };
        let count: usize = v.dims.iter().map(|&d| dims[d].1).product();
        if v.dims.len() > 1 || (v.dims.len() == 1 && v.dims[0] != image.dims[0]) {
            return Err(Error::Unsupported(format!(
                "{}: MINC {key} over dimensions other than the slowest one",
                path.display()
            )));
        }
        let sz = type_size(v.nc_type)
            .filter(|_| v.nc_type != 2)
            .ok_or_else(|| Error::format(path, format!("{key} of NetCDF type {}", v.nc_type)))?;
        let s = v.begin as usize;
        let raw = s
            .checked_add(count * sz)
            .filter(|&e| e <= b.len())
            .map(|e| &b[s..e])
            .ok_or_else(|| Error::format(path, format!("truncated {key}")))?;
        Ok(raw.chunks_exact(sz).map(|c| number(v.nc_type, c)).collect())
    };
    let (imin, imax) = (scale_of("image-min")?, scale_of("image-max")?);
    let slice = shape[0] * shape[1];
    let mut data = crate::exec::cpu::alloc::zeroed::<f32>(n)?;
    for (l, (o, c)) in data.iter_mut().zip(raw.chunks_exact(size)).enumerate() {
        let x = value(c);
        let z = l / slice;
        *o = if float || imin.is_empty() || imax.is_empty() {
            x as f32
        } else {
            let (lo, hi) = (imin[z.min(imin.len() - 1)], imax[z.min(imax.len() - 1)]);
            let (dmin, dmax) = range;
            let sc = if dmax > dmin {
                (hi - lo) / (dmax - dmin)
            } else {
                0.0
            };
            (x.clamp(dmin, dmax) * sc + (lo - dmin * sc)) as f32
        };
    }
    let grid = Grid::new(shape, affine).map_err(|e| Error::format(path, e.to_string()))?;
    crate::io::finish_volume(path, Voxels::from(data), grid, kind, DType::F32)
}
