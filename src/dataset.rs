//! Statistics over a whole dataset, streamed: files are read one at a time per worker thread, merged with
//! Chan et al.'s pairwise formulas (never all volumes in memory); percentiles come from a histogram over
//! the pooled range (second pass).

use crate::error::{Error, Result};
use crate::io;
use crate::volume::Kind;
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Volume files of a folder, or those matching a `dir/pattern*` glob (`*` and `?` in the file name).
pub fn list_files(spec: &str) -> Result<Vec<PathBuf>> {
    let p = Path::new(spec);
    let (dir, pattern) = if p.is_dir() {
        (p.to_path_buf(), None)
    } else {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        (dir, Some(name))
    };
    let volume_ext = |n: &str| {
        [".nii", ".nii.gz", ".nrrd", ".nhdr", ".hdr"]
            .iter()
            .any(|e| n.ends_with(e))
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| match &pattern {
            Some(pat) => wildcard(pat, n),
            None => volume_ext(n),
        })
        .map(|n| dir.join(n))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Error::invalid(format!("{spec}: no volume file matches")));
    }
    Ok(out)
}

fn wildcard(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    // Dynamic programming over (pattern, text) prefixes.
    let mut dp = vec![vec![false; t.len() + 1]; p.len() + 1];
    dp[0][0] = true;
    for i in 1..=p.len() {
        dp[i][0] = dp[i - 1][0] && p[i - 1] == '*';
        for j in 1..=t.len() {
            dp[i][j] = match p[i - 1] {
                '*' => dp[i - 1][j] || dp[i][j - 1],
                '?' => dp[i - 1][j - 1],
                c => dp[i - 1][j - 1] && c == t[j - 1],
            };
        }
    }
    dp[p.len()][t.len()]
}

use crate::stats::Moments;

/// Moments of one volume's voxels.
fn moments_of(data: &[f32]) -> Moments {
    let s = crate::stats::stats(data, None);
    Moments {
        n: s.count as f64,
        mean: s.mean,
        m2: s.std * s.std * s.count as f64,
        min: s.min,
        max: s.max,
    }
}

/// Median, min and max of a list.
#[derive(Clone, Debug, Serialize)]
pub struct Spread {
    /// Median over the files.
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

fn spread(mut v: Vec<f64>) -> Spread {
    v.sort_by(f64::total_cmp);
    let m = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Spread {
        median: m,
        min: v[0],
        max: v[v.len() - 1],
    }
}

/// Voxel count of one label value over the dataset.
#[derive(Clone, Debug, Serialize)]
pub struct LabelFrequency {
    /// Label value.
    pub value: i64,
    /// Voxels with this label over all files.
    pub voxels: u64,
    /// `voxels` over all label-map voxels.
    pub fraction: f64,
    /// Files in which the label occurs.
    pub files: usize,
}

/// Pooled statistics of a set of volumes.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetStats {
    /// Images read.
    pub files: usize,
    /// Voxels pooled.
    pub voxels: u64,
    /// Smallest intensity.
    pub min: f64,
    /// Largest intensity.
    pub max: f64,
    /// Pooled mean.
    pub mean: f64,
    /// Pooled population std.
    pub std: f64,
    /// (percent, value) from a 4096-bin histogram over [min, max] (error below one bin width).
    pub percentiles: Vec<(f64, f64)>,
    /// Spread of the voxel spacing per axis (mm).
    pub spacing: [Spread; 3],
    /// Spread of the shape per axis.
    pub shape: [Spread; 3],
    /// nnU-Net-style target spacing: the median spacing; for an axis more than 3x coarser than the
    /// finest one, its 10th percentile instead.
    pub suggested_spacing: [f64; 3],
    /// Label frequencies (when label maps were given).
    pub labels: Vec<LabelFrequency>,
    /// Files left out, with the reason (unreadable, truncated, 4D, ...): the statistics cover the others.
    pub skipped: Vec<Skipped>,
    /// The images the statistics cover (in the order given).
    #[serde(skip)]
    pub used: Vec<PathBuf>,
}

/// A file `dataset_stats` could not use.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// The file.
    pub file: PathBuf,
    /// Why (the reader's error; a 4D file is named as such, with the `convert --frame` fix).
    pub reason: String,
}

const BINS: usize = 4096;
const PERCENTS: [f64; 7] = [0.5, 1.0, 5.0, 50.0, 95.0, 99.0, 99.5];

/// Computes pooled statistics of `images` (and label frequencies of `labels`), files in parallel,
/// `progress(done, total)` after each file of each pass.
pub fn dataset_stats(
    images: &[PathBuf],
    labels: &[PathBuf],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<DatasetStats> {
    if images.is_empty() {
        return Err(Error::invalid("no image file"));
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = 2 * images.len() + labels.len();
    let tick = || {
        progress(
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            total,
        )
    };
    // Pass 1: moments, geometry; a file that cannot be read is reported and left out.
    let mut skipped = Vec::new();
    type Geometry = (Moments, [f64; 3], [usize; 3]);
    let first: Vec<std::result::Result<Geometry, Skipped>> = images
        .par_iter()
        .map(|p| {
            let r = io::read_volume(p, Kind::Image)
                .and_then(|v| Ok((moments_of(v.image_data()?), v.grid.spacing(), v.grid.shape)));
            tick();
            r.map_err(|e| Skipped {
                file: p.clone(),
                reason: e.to_string(),
            })
        })
        .collect();
    let mut per = Vec::new();
    let mut used = Vec::new();
    for (p, r) in images.iter().zip(first) {
        match r {
            Ok(x) => {
                per.push(x);
                used.push(p.clone());
            }
            Err(s) => skipped.push(s),
        }
    }
    if used.is_empty() {
        return Err(Error::invalid(format!(
            "no readable image among {} file(s); the first: {}: {}",
            images.len(),
            skipped[0].file.display(),
            skipped[0].reason
        )));
    }
    let images = &used[..];
    let m = per
        .iter()
        .fold(Moments::EMPTY, |a, b| Moments::merge(a, b.0));
    // Pass 2: histogram over the pooled range.
    let scale = if m.max > m.min {
        BINS as f64 / (m.max - m.min)
    } else {
        0.0
    };
    let hist = images
        .par_iter()
        .map(|p| {
            let v = io::read_volume(p, Kind::Image)?;
            let mut h = vec![0u64; BINS];
            for &x in v.image_data()? {
                h[(((x as f64 - m.min) * scale) as usize).min(BINS - 1)] += 1;
            }
            tick();
            Ok(h)
        })
        .try_reduce(
            || vec![0u64; BINS],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                Ok(a)
            },
        )?;
    let n = m.n as u64;
    let mut cum = 0u64;
    let mut percentiles = Vec::new();
    let mut pi = 0;
    for (b, &c) in hist.iter().enumerate() {
        cum += c;
        while pi < PERCENTS.len() && cum as f64 >= PERCENTS[pi] / 100.0 * n as f64 {
            // Within the bin, place the rank linearly.
            let before = (cum - c) as f64;
            let frac = if c > 0 {
                ((PERCENTS[pi] / 100.0 * n as f64 - before) / c as f64).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let v = if scale > 0.0 {
                m.min + (b as f64 + frac) / scale
            } else {
                m.min
            };
            percentiles.push((PERCENTS[pi], v));
            pi += 1;
        }
    }
    let spacing = [0, 1, 2].map(|a| spread(per.iter().map(|p| p.1[a]).collect()));
    let shape = [0, 1, 2].map(|a| spread(per.iter().map(|p| p.2[a] as f64).collect()));
    let finest = spacing
        .iter()
        .map(|s| s.median)
        .fold(f64::INFINITY, f64::min);
    let suggested_spacing = [0, 1, 2].map(|a| {
        if spacing[a].median > 3.0 * finest {
            let mut v: Vec<f64> = per.iter().map(|p| p.1[a]).collect();
            v.sort_by(f64::total_cmp);
            v[(v.len() - 1) / 10]
        } else {
            spacing[a].median
        }
    });
    // Labels: voxel counts per value, and in how many files each occurs (unreadable ones left out).
    let counts: Vec<std::result::Result<std::collections::BTreeMap<i64, u64>, Skipped>> = labels
        .par_iter()
        .map(|p| {
            let r = io::read_volume(p, Kind::Label).map(|v| {
                v.label_counts()
                    .into_iter()
                    .map(|(x, n)| (x as i64, n as u64))
                    .collect()
            });
            tick();
            r.map_err(|e| Skipped {
                file: p.clone(),
                reason: e.to_string(),
            })
        })
        .collect();
    let counts: Vec<_> = counts
        .into_iter()
        .filter_map(|r| r.map_err(|s| skipped.push(s)).ok())
        .collect();
    let mut merged: std::collections::BTreeMap<i64, (u64, usize)> = Default::default();
    for c in &counts {
        for (&k, &v) in c {
            let e = merged.entry(k).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    let all: u64 = merged.values().map(|v| v.0).sum();
    Ok(DatasetStats {
        files: images.len(),
        skipped,
        used: images.to_vec(),
        voxels: n,
        min: m.min,
        max: m.max,
        mean: m.mean,
        std: (m.m2 / m.n).max(0.0).sqrt(),
        percentiles,
        spacing,
        shape,
        suggested_spacing,
        labels: merged
            .into_iter()
            .map(|(value, (voxels, files))| LabelFrequency {
                value,
                voxels,
                fraction: voxels as f64 / all.max(1) as f64,
                files,
            })
            .collect(),
    })
}

/// Learns histogram-standardisation landmarks: each image's landmarks mapped so that the first is 0 and
/// the last 100, averaged over the images (files read in parallel, one at a time per thread).
pub fn learn_landmarks(images: &[PathBuf]) -> Result<Vec<f64>> {
    if images.is_empty() {
        return Err(Error::invalid("no image to learn landmarks from"));
    }
    let per: Vec<Vec<f64>> = images
        .par_iter()
        .map(|p| {
            Ok(crate::exec::cpu::quantile::normalised_landmarks(
                io::read_volume(p, Kind::Image)?.image_data()?,
            ))
        })
        .collect::<Result<_>>()?;
    let n = per.len() as f64;
    Ok((0..per[0].len())
        .map(|i| per.iter().map(|l| l[i]).sum::<f64>() / n)
        .collect())
}
