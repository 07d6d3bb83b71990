//! How a run learns that its images are finite: the scans (largest |value| over the magnitude bits),
//! what `apply` checks where (the input, a caller's bound, or the output of a pipeline of copies),
//! the errors for NaN and infinite voxels, and the leading `nan_to_num` transforms that replace them.

use super::cpu;
use crate::error::{Error, Result};
use crate::transform::{NanValue, Stage, Transform};
use crate::volume::Subject;
use std::borrow::Cow;

/// Largest |value| over every image (+inf or NaN when some voxel is not finite): one vectorised max over
/// the magnitude bits.
pub(super) fn max_abs(subject: &Subject) -> f32 {
    images_max_abs(&subject.images)
}

/// Whether every stage moves voxels without arithmetic: maps onto voxel centres without a field
/// (flip, crop, pad with a constant or the edge, axis permutations, integer shifts: copies on both
/// executors) and label map remaps. Images then hold input values and the fill only.
pub(super) fn copies_only(stages: &[Stage]) -> bool {
    stages.iter().all(|s| match s {
        Stage::Spatial(m) => {
            let t = m.total();
            m.field.is_none()
                && cpu::resample::is_integer_map(&[0, 1, 2].map(|r| t[r].map(|x| x as f32)))
        }
        Stage::Labels(_) => true,
        Stage::Intensity(_) => false,
    })
}

/// How an `apply` learns that the images are finite.
#[derive(Clone, Copy, Debug)]
pub(super) enum Check {
    /// Scanned here.
    Scan,
    /// Checked by the caller; largest |value| not known.
    Finite,
    /// Checked by the caller, with the largest |value| (finite).
    Bound(f32),
}

impl Check {
    /// A caller's largest |value|: a bound when finite, else the images are scanned (and the
    /// non-finite voxels named).
    pub(super) fn known(largest: f32) -> Check {
        if largest.is_finite() {
            Check::Bound(largest)
        } else {
            Check::Scan
        }
    }
}

/// Largest |value| over a subject's images, `+inf` or NaN when some voxel is not finite: what
/// [`Executor::apply_shared`](super::Executor::apply_shared) takes to skip its per-sample scan. Sequential on purpose (it may run
/// in a forked process whose global thread pool has no threads).
pub fn largest_abs(subject: &Subject) -> f32 {
    max_abs_by(&subject.images, crate::stats::max_abs_bits_sequential)
}

/// [`max_abs`] of some images.
pub(super) fn images_max_abs(images: &[crate::Volume]) -> f32 {
    max_abs_by(images, crate::stats::max_abs_bits)
}

/// Largest |value| over the images, each volume's magnitude bits taken by `bits` (parallel or not).
pub(super) fn max_abs_by(images: &[crate::Volume], bits: fn(&[f32]) -> u32) -> f32 {
    let m = images
        .iter()
        .filter_map(|v| v.data.as_f32())
        .map(bits)
        .max()
        .unwrap_or(0);
    // Magnitude bits past +inf's are NaN payloads: report them as NaN.
    f32::from_bits(m)
}

/// The first image with non-finite voxels: (image index, count).
pub(super) fn non_finite(subject: &Subject) -> Option<(usize, usize)> {
    use rayon::prelude::*;
    subject.images.iter().enumerate().find_map(|(i, v)| {
        // One parallel pass (memory-bound); counted only when something is found.
        let d = v.data.as_f32()?;
        if !d.par_iter().any(|x| !x.is_finite()) {
            return None;
        }
        Some((i, d.iter().filter(|x| !x.is_finite()).count()))
    })
}

/// The error for non-finite input voxels, naming the transform that replaces them.
pub(super) fn nan_error(i: usize, n: usize) -> Error {
    Error::InvalidInput(format!(
        "image {i} has {n} NaN or infinite voxel(s); add {{\"type\": \"nan_to_num\", \"value\": 0}} \
         (or \"value\": \"min\") first in the pipeline to replace them"
    ))
}

/// Refuses a result with non-finite image values (the input was finite: a parameter overflowed).
pub(super) fn check_output(out: &Subject) -> Result<()> {
    // The vectorised magnitude scan (a per-voxel `is_finite` with early exit did not vectorise).
    if !images_max_abs(&out.images).is_finite() {
        return Err(Error::InvalidInput(
            "the result holds NaN or infinite values (past the f32 range of +-3.4e38): an intensity \
             parameter (minmax bounds, a brightness factor, an offset, a gamma) takes the values past \
             it, or the image's values span more than it; use smaller parameters, or rescale the \
             image first (minmax to a smaller range)"
                .into(),
        ));
    }
    Ok(())
}

/// Runs the leading `nan_to_num` transforms on the host (they come before anything else): on a copy
/// of a borrowed subject, in place in an owned one. Returns the subject to run the rest on, whether
/// any ran, and the rest.
pub(super) fn replace_non_finite<'s, 't>(
    input: Cow<'s, Subject>,
    transforms: &'t [Transform],
) -> Result<(Cow<'s, Subject>, bool, &'t [Transform])> {
    let lead = transforms
        .iter()
        .take_while(|t| matches!(t, Transform::NanToNum { .. }))
        .count();
    if transforms[lead..]
        .iter()
        .any(|t| matches!(t, Transform::NanToNum { .. }))
    {
        return Err(Error::pipeline(
            "nan_to_num must come first in the pipeline: it replaces NaN and infinite voxels before \
             anything else runs",
        ));
    }
    if lead == 0 {
        return Ok((input, false, transforms));
    }
    let mut out = input.into_owned();
    for t in &transforms[..lead] {
        if let Transform::NanToNum { value } = t {
            for v in &mut out.images {
                let v = v.image_data_mut()?;
                let fill = match value {
                    NanValue::Value(x) => *x as f32,
                    NanValue::Min => {
                        let m = v
                            .iter()
                            .filter(|x| x.is_finite())
                            .fold(f32::INFINITY, |m, &x| m.min(x));
                        if m.is_finite() {
                            m
                        } else {
                            0.0
                        }
                    }
                };
                for x in v.iter_mut().filter(|x| !x.is_finite()) {
                    *x = fill;
                }
            }
        }
    }
    Ok((Cow::Owned(out), true, &transforms[lead..]))
}
