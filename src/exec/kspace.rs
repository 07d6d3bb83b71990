//! k-space artefacts as both executors run them (the CPU with rustfft in `exec/cpu/kspace.rs`, the GPU
//! with `shaders/fft.wgsl` in `exec/gpu/kspace.rs`); both build their work from these functions, so they
//! apply the same numbers.
//!
//! Every artefact's k-space mask is a product of one-axis factors, so it runs as *line filters*: an FFT
//! along one axis, a weight per frequency, the inverse FFT, the real part. This equals TorchIO's
//! `real(ifftn(mask * fftn(x)))` exactly in exact arithmetic: the transforms along the other axes cancel.
//! `ghosting` and `motion` mask one axis (one filter; motion sums one filter per moved copy), `gibbs`
//! masks up to three with real symmetric weights (each pass maps real to real), and a `spike` adds a
//! known plane wave whose size needs the spectrum's largest magnitude: the sum of the voxels when
//! none is negative (the zero frequency is then the largest), else a full 3D FFT.

use crate::error::Result;
use crate::grid::Grid;
use crate::transform::kspace::KSpaceOp;
use crate::transform::{compile, Fill, SamplingMap, Stage, Transform, Vec3};

/// Weights per frequency along one axis: `x -> real(ifft(w * fft(x)))` on every line along `axis`.
#[derive(Clone, Debug, PartialEq)]
pub struct LineFilter {
    /// Voxel axis of the lines.
    pub axis: usize,
    /// Weight (re, im) of each unshifted frequency index `0..n`.
    pub weights: Vec<[f32; 2]>,
}

impl LineFilter {
    fn from_shifted(axis: usize, n: usize, w: impl Fn(usize) -> f32) -> LineFilter {
        LineFilter {
            axis,
            weights: (0..n).map(|u| [w(shifted(u, n)), 0.0]).collect(),
        }
    }

    /// True when every weight is 1 (the filter is the identity).
    pub fn is_identity(&self) -> bool {
        self.weights.iter().all(|w| *w == [1.0, 0.0])
    }
}

/// Shifted index (TorchIO's `fftshift` position) of unshifted frequency `u` on an axis of `n`.
pub fn shifted(u: usize, n: usize) -> usize {
    (u + n / 2) % n
}

/// Unshifted frequency index of shifted position `s`.
pub fn unshifted(s: usize, n: usize) -> usize {
    (s + n - n / 2) % n
}

/// One moved copy of the image for `motion` and the frequencies along the last axis it supplies.
#[derive(Clone, Debug)]
pub struct MotionCopy {
    /// The resampling that moves the image (`None`: the unmoved image).
    pub map: Option<SamplingMap>,
    /// Its k-space segments along axis 2 (weights 0 or 1).
    pub filter: LineFilter,
}

/// What the executors run for one artefact on one image.
#[derive(Clone, Debug)]
pub enum Work {
    /// Nothing to do (identity parameters).
    Identity,
    /// Line filters applied one after the other.
    Filters(Vec<LineFilter>),
    /// Plane waves `amplitude * cos(2 pi sum_d u_d x_d / n_d)` added, one per spike; the amplitude is
    /// `intensity * max |FFT(x)| / voxels`.
    Spikes {
        /// Unshifted frequency of each spike.
        frequencies: Vec<[usize; 3]>,
        /// Spike size relative to the spectrum's largest magnitude.
        intensity: f64,
    },
    /// Sum over copies of `filter(copy)`.
    Motion(Vec<MotionCopy>),
}

/// The work of an op on a grid.
pub fn work(op: &KSpaceOp, grid: &Grid) -> Result<Work> {
    let shape = grid.shape;
    Ok(match op {
        KSpaceOp::Gibbs { fraction } => {
            let filters: Vec<LineFilter> = (0..3)
                .map(|a| {
                    let n = shape[a];
                    let keep = (fraction[a] * n as f64 / 2.0).floor() as usize;
                    LineFilter::from_shifted(a, n, |s| {
                        let k = unshifted(s, n);
                        let signed = if k <= n / 2 { k } else { n - k };
                        (signed <= keep) as u8 as f32
                    })
                })
                .filter(|f| !f.is_identity())
                .collect();
            if filters.is_empty() {
                Work::Identity
            } else {
                Work::Filters(filters)
            }
        }
        KSpaceOp::Ghosting {
            ghosts,
            axis,
            intensity,
            restore,
        } => {
            if *ghosts == 0 || *intensity == 0.0 {
                return Ok(Work::Identity);
            }
            let n = shape[*axis];
            let mid = n / 2;
            let kept = match restore {
                None => mid..mid + 1,
                Some(r) => {
                    let size = (r * n as f64).round_ties_even() as usize;
                    mid - (size / 2).min(mid)..mid + size / 2
                }
            };
            let g = *ghosts as usize;
            let scale = (1.0 - intensity) as f32;
            let f = LineFilter::from_shifted(*axis, n, |s| {
                if s % g == 0 && !kept.contains(&s) {
                    scale
                } else {
                    1.0
                }
            });
            if f.is_identity() {
                Work::Identity
            } else {
                Work::Filters(vec![f])
            }
        }
        KSpaceOp::Spike {
            positions,
            intensity,
        } => {
            if positions.is_empty() || *intensity == 0.0 {
                return Ok(Work::Identity);
            }
            let frequencies = positions
                .iter()
                .map(|p| {
                    [0, 1, 2].map(|a| {
                        let s = ((p[a] * shape[a] as f64).floor() as usize).min(shape[a] - 1);
                        unshifted(s, shape[a])
                    })
                })
                .collect();
            Work::Spikes {
                frequencies,
                intensity: *intensity,
            }
        }
        KSpaceOp::Motion { moves, times } => motion(moves, times, grid)?,
    })
}

/// TorchIO's `Motion.add_artifact`: copy 0 is the unmoved image, copy `i` the image under movement `i`;
/// k-space along the last axis is cut at `floor(n * times)`, segment `j` taken from copy `order[j]`,
/// where `order` swaps the unmoved copy with the first movement after half the acquisition (TorchIO's
/// `sort_spectra`), so the unmoved image supplies the k-space centre.
fn motion(moves: &[([f64; 3], [f64; 3])], times: &[f64], grid: &Grid) -> Result<Work> {
    let n = grid.shape[2];
    let copies = moves.len() + 1;
    let mut order: Vec<usize> = (0..copies).collect();
    let swap = times.iter().position(|t| *t > 0.5).unwrap_or(copies - 1);
    order.swap(0, swap);
    let mut bounds = vec![0usize];
    bounds.extend(times.iter().map(|t| ((n as f64 * t) as usize).min(n)));
    bounds.push(n);
    // Copies moved by nothing are the unmoved image: their segments join copy 0's.
    let source = |c: usize| -> usize {
        if c == 0 || moves[c - 1] == ([0.0; 3], [0.0; 3]) {
            0
        } else {
            c
        }
    };
    let mut out = Vec::new();
    for c in 0..copies {
        if source(c) != c {
            continue;
        }
        let supplies = |s: usize| {
            (0..copies).any(|j| source(order[j]) == c && bounds[j] <= s && s < bounds[j + 1])
        };
        let filter = LineFilter::from_shifted(2, n, |s| supplies(s) as u8 as f32);
        if filter.weights.iter().all(|w| w[0] == 0.0) {
            continue;
        }
        if c == 0 && filter.is_identity() {
            return Ok(Work::Identity);
        }
        let map = if c == 0 {
            None
        } else {
            Some(moved(moves[c - 1], grid)?)
        };
        out.push(MotionCopy { map, filter });
    }
    Ok(Work::Motion(out))
}

/// The resampling of one movement: `rotate` then `shift`, the image minimum outside.
fn moved((degrees, mm): ([f64; 3], [f64; 3]), grid: &Grid) -> Result<SamplingMap> {
    let stages = compile(
        &[
            Transform::Rotate {
                label_interpolation: None,
                degrees: Vec3(degrees),
                fill: Some(Fill::Min),
            },
            Transform::Shift {
                label_interpolation: None,
                mm: Vec3(mm),
                fill: Some(Fill::Min),
            },
        ],
        grid,
    )?;
    match stages.into_iter().next() {
        Some(Stage::Spatial(map)) => Ok(map),
        _ => unreachable!("rotate and shift compile to one resampling pass"),
    }
}

/// Phase fraction in [0, 1) of the plane wave of frequency `u` at voxel `p`: `sum_d (u_d p_d mod n_d) / n_d`
/// reduced mod 1 (integer arithmetic first, so large indices keep their precision).
pub fn wave_phase(u: [usize; 3], p: [usize; 3], shape: [usize; 3]) -> f64 {
    let f: f64 = (0..3)
        .map(|a| ((u[a] as u64 * p[a] as u64) % shape[a] as u64) as f64 / shape[a] as f64)
        .sum();
    f.fract()
}

/// Amplitude of each spike's plane wave in image space: `intensity * max_abs / voxels` (the inverse
/// FFT's normalisation).
pub fn spike_amplitude(intensity: f64, max_abs: f64, shape: [usize; 3]) -> f64 {
    intensity * max_abs / (shape[0] * shape[1] * shape[2]) as f64
}
