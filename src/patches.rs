//! Patches: a grid sampler that covers a volume with sub-volumes of a size and stride, and an aggregator
//! that stitches per-patch outputs back (`crop`: each voxel from the patch whose centre is nearest,
//! `average`, or `hann`-weighted blending).
//!
//! Border policy: when the stride does not divide the volume, the last patch along an axis is shifted
//! inwards to end at the border (so every patch lies inside the volume and nothing is padded); a patch
//! larger than the volume is an error (pad the volume first with the `pad` transform).

use crate::error::{Error, Result};
use crate::grid::{mat_mul, translation, Grid};
use crate::volume::{DType, Volume};
use serde::{Deserialize, Serialize};

/// Start positions along one axis: `0, stride, 2 stride, ...` and a last one ending at the border.
pub fn axis_starts(n: usize, size: usize, stride: usize) -> Result<Vec<usize>> {
    if size == 0 || stride == 0 {
        return Err(Error::invalid("patch size and stride must be >= 1"));
    }
    if size > n {
        return Err(Error::invalid(format!(
            "patch size {size} is larger than the volume ({n} voxels); pad the volume first"
        )));
    }
    if stride > size {
        return Err(Error::invalid(format!(
            "stride {stride} is larger than the patch size {size}: voxels would be skipped"
        )));
    }
    let mut s: Vec<usize> = (0..=n - size).step_by(stride).collect();
    if *s.last().unwrap() != n - size {
        s.push(n - size);
    }
    Ok(s)
}

/// Every patch start of a volume, i fastest.
pub fn grid_starts(
    shape: [usize; 3],
    size: [usize; 3],
    stride: [usize; 3],
) -> Result<Vec<[usize; 3]>> {
    let a: Vec<Vec<usize>> = (0..3)
        .map(|d| axis_starts(shape[d], size[d], stride[d]))
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(a[0].len() * a[1].len() * a[2].len());
    for &k in &a[2] {
        for &j in &a[1] {
            for &i in &a[0] {
                out.push([i, j, k]);
            }
        }
    }
    Ok(out)
}

/// The patch of `v` at `start` (its affine places it in the world: `A * T(start)`).
pub fn extract(v: &Volume, start: [usize; 3], size: [usize; 3]) -> Result<Volume> {
    let s = v.grid.shape;
    if (0..3).any(|a| start[a] + size[a] > s[a]) {
        return Err(Error::invalid(format!(
            "patch at {start:?} of size {size:?} does not fit in {s:?}"
        )));
    }
    let data = crate::with_voxels!(&v.data, d => {
        let mut out = Vec::with_capacity(size.iter().product());
        for k in 0..size[2] {
            for j in 0..size[1] {
                let row = v.grid.index(start[0], start[1] + j, start[2] + k);
                out.extend_from_slice(&d[row..row + size[0]]);
            }
        }
        crate::voxels::Voxels::from(out)
    });
    let grid = Grid::new(
        size,
        mat_mul(&v.grid.affine, &translation(start.map(|x| x as f64))),
    )?;
    Ok(Volume {
        data,
        grid,
        kind: v.kind,
        dtype: v.dtype,
    })
}

/// How overlapping patches are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blend {
    /// Each voxel from the patch whose centre is nearest (ties: the first patch).
    Crop,
    /// Mean of the overlapping patches.
    Average,
    /// Weighted by a Hann window (never zero: `sin^2(pi (x + 0.5) / size)`), smooth seams.
    Hann,
}

/// Stitches patches back into a volume of `shape`.
pub struct Aggregator {
    shape: [usize; 3],
    size: [usize; 3],
    blend: Blend,
    sum: Vec<f64>,
    weight: Vec<f64>,
    /// Crop: per axis, the patch start that owns each coordinate.
    owner: [Vec<usize>; 3],
}

impl Aggregator {
    /// An aggregator for a volume of `shape` covered by patches of `size` every `stride`.
    pub fn new(
        shape: [usize; 3],
        size: [usize; 3],
        stride: [usize; 3],
        blend: Blend,
    ) -> Result<Aggregator> {
        // The shape may come from a patch index file: bound it before allocating the sums.
        Grid::with_spacing(shape, [1.0; 3])?;
        let mut owner: [Vec<usize>; 3] = Default::default();
        for a in 0..3 {
            let starts = axis_starts(shape[a], size[a], stride[a])?;
            owner[a] = (0..shape[a])
                .map(|x| {
                    *starts
                        .iter()
                        .filter(|&&s| x >= s && x < s + size[a])
                        .min_by(|&&p, &&q| {
                            let dp = (x as f64 - (p as f64 + (size[a] as f64 - 1.0) / 2.0)).abs();
                            let dq = (x as f64 - (q as f64 + (size[a] as f64 - 1.0) / 2.0)).abs();
                            dp.total_cmp(&dq)
                        })
                        .expect("patches cover the volume")
                })
                .collect();
        }
        let n = shape.iter().product();
        Ok(Aggregator {
            shape,
            size,
            blend,
            sum: vec![0.0; n],
            weight: vec![0.0; n],
            owner,
        })
    }

    fn hann(x: usize, n: usize) -> f64 {
        let s = (std::f64::consts::PI * (x as f64 + 0.5) / n as f64).sin();
        s * s
    }

    /// Adds the output of the patch at `start` (i-fastest, `size` voxels).
    pub fn add(&mut self, start: [usize; 3], data: &[f32]) -> Result<()> {
        let size = self.size;
        if data.len() != size.iter().product::<usize>()
            || (0..3).any(|a| start[a] + size[a] > self.shape[a])
        {
            return Err(Error::invalid(format!(
                "patch at {start:?} does not match the grid of patches"
            )));
        }
        let [nx, ny, _] = self.shape;
        for k in 0..size[2] {
            for j in 0..size[1] {
                for i in 0..size[0] {
                    let v = data[i + size[0] * (j + size[1] * k)] as f64;
                    let (x, y, z) = (start[0] + i, start[1] + j, start[2] + k);
                    let l = x + nx * (y + ny * z);
                    let w = match self.blend {
                        Blend::Crop => {
                            let own = self.owner[0][x] == start[0]
                                && self.owner[1][y] == start[1]
                                && self.owner[2][z] == start[2];
                            if own {
                                1.0
                            } else {
                                0.0
                            }
                        }
                        Blend::Average => 1.0,
                        Blend::Hann => {
                            Self::hann(i, size[0]) * Self::hann(j, size[1]) * Self::hann(k, size[2])
                        }
                    };
                    if w > 0.0 {
                        self.sum[l] += w * v;
                        self.weight[l] += w;
                    }
                }
            }
        }
        Ok(())
    }

    /// The stitched voxels; errors if some voxel was covered by no patch.
    pub fn finish(self) -> Result<Vec<f32>> {
        if let Some(l) = self.weight.iter().position(|&w| w == 0.0) {
            return Err(Error::invalid(format!(
                "voxel {l} was covered by no patch (missing patches?)"
            )));
        }
        Ok(self
            .sum
            .iter()
            .zip(&self.weight)
            .map(|(s, w)| (s / w) as f32)
            .collect())
    }
}

/// `index.json` written next to the patches of `voxaug patches`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Index {
    /// The file the patches were cut from.
    pub source: String,
    /// Its shape.
    pub shape: [usize; 3],
    /// Its affine.
    pub affine: crate::grid::Mat4,
    /// Patch size.
    pub size: [usize; 3],
    /// Patch stride.
    pub stride: [usize; 3],
    /// Image or label map.
    pub kind: crate::volume::Kind,
    /// The patches.
    pub patches: Vec<PatchEntry>,
}

/// One patch of a patch folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PatchEntry {
    /// File name in the folder.
    pub file: String,
    /// First voxel in the source volume.
    pub start: [usize; 3],
}

/// `voxaug patches`: writes the patches of `v` (`size`, `stride`) as `out/patch_00000.nii.gz`, ... with
/// their own affines, plus `out/index.json` (which names `source`). Returns the index. A folder that
/// already holds patches (an `index.json` or `patch_*` files) is refused unless `overwrite`, which
/// removes them first (so no stale patch of an earlier cut stays behind). A failure part-way removes
/// the patches already written (and the folder, when it was made for them): a folder holds a whole
/// cut or none.
pub fn write_folder(
    v: &Volume,
    source: &str,
    size: [usize; 3],
    stride: [usize; 3],
    out: &std::path::Path,
    overwrite: bool,
) -> Result<Index> {
    let starts = grid_starts(v.grid.shape, size, stride)?;
    crate::io::write_in_dir(out, || {
        // The files written so far, removed again if a later one fails.
        let mut written = Vec::new();
        let mut cut = || -> Result<Index> {
            let mut old = Vec::new();
            for e in std::fs::read_dir(out).map_err(|e| Error::io(out, e))? {
                let p = e.map_err(|e| Error::io(out, e))?.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name == "index.json" || (name.starts_with("patch_") && p.is_file()) {
                    old.push(p);
                }
            }
            if !old.is_empty() {
                if !overwrite {
                    return Err(Error::invalid(format!(
                        "{} already holds patches ({} files); pass --overwrite to replace them or choose \
                         another --out",
                        out.display(),
                        old.len()
                    )));
                }
                for p in &old {
                    std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
                }
            }
            let mut entries = Vec::with_capacity(starts.len());
            for (n, st) in starts.iter().enumerate() {
                let p = extract(v, *st, size)?;
                let file = format!("patch_{n:05}.nii.gz");
                crate::io::write_volume(out.join(&file), &p)?;
                written.push(out.join(&file));
                entries.push(PatchEntry { file, start: *st });
            }
            let index = Index {
                source: source.to_string(),
                shape: v.grid.shape,
                affine: v.grid.affine,
                size,
                stride,
                kind: v.kind,
                patches: entries,
            };
            let text = serde_json::to_string_pretty(&index).expect("serialisable");
            crate::io::write_atomic(&out.join("index.json"), text.as_bytes())?;
            Ok(index)
        };
        cut().inspect_err(|_| {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
        })
    })
}

/// Removes the cut [`write_folder`] wrote into `dir` (its `index.json` and the patches it lists), when
/// a run writing more beside it fails.
pub fn remove_cut(dir: &std::path::Path, index: &Index) {
    for e in &index.patches {
        let _ = std::fs::remove_file(dir.join(&e.file));
    }
    let _ = std::fs::remove_file(dir.join("index.json"));
}

/// `voxaug stitch`: reads a patch folder (`index.json` + patches, possibly modified) and stitches it
/// back onto the original grid. Unmodified patches give the input back exactly.
pub fn stitch_folder(dir: &std::path::Path, blend: Blend) -> Result<(Volume, Index)> {
    let ip = dir.join("index.json");
    let text = crate::io::read_text(&ip)?;
    let index: Index = serde_json::from_str(&text)
        .map_err(|e| Error::invalid(format!("{}: not a patch index ({e})", ip.display())))?;
    let mut agg = Aggregator::new(index.shape, index.size, index.stride, blend)?;
    let mut dtype = None;
    for e in &index.patches {
        if std::path::Path::new(&e.file).components().count() != 1 {
            return Err(Error::invalid(format!(
                "{}: patch file {:?} is not a plain file name in the folder",
                ip.display(),
                e.file
            )));
        }
        let p = crate::io::read_volume(dir.join(&e.file), index.kind)?;
        if p.grid.shape != index.size {
            return Err(Error::invalid(format!(
                "{}: shape {:?}, the index says {:?}",
                e.file, p.grid.shape, index.size
            )));
        }
        dtype.get_or_insert(p.dtype);
        agg.add(e.start, &p.values())?;
    }
    let grid = Grid::new(index.shape, index.affine)?;
    let mut v = Volume::new(agg.finish()?, grid, index.kind)?;
    v.dtype = dtype.unwrap_or(DType::F32);
    Ok((v, index))
}
