//! The CPU executor: the reference every other backend is tested against. Each module is the twin of a
//! shader in `shaders/` and takes the same parameters.

// The kernels below are public for the integration tests, benches and examples that check them one by
// one; they are not a stable API (use `Executor`), so they stay out of the documentation.
#[doc(hidden)]
pub mod alloc;
#[doc(hidden)]
pub mod field;
#[doc(hidden)]
pub mod intensity;
#[doc(hidden)]
pub mod kspace;
#[doc(hidden)]
pub mod labels;
#[doc(hidden)]
pub mod quantile;
#[doc(hidden)]
pub mod reduce;
#[doc(hidden)]
pub mod resample;

use crate::error::Result;
use crate::transform::Stage;
use crate::volume::Subject;
use std::borrow::Cow;

/// Runs compiled stages on the CPU (rayon over rows/slices).
pub fn run(subject: &Subject, stages: &[Stage]) -> Result<Subject> {
    run_with(subject, stages, None)
}

/// [`run`] with the first stage's point kernels already computed, one per image (from
/// [`intensity::scan_first`]).
pub fn run_with(
    subject: &Subject,
    stages: &[Stage],
    first: Option<&[crate::exec::kernel::PointKernel]>,
) -> Result<Subject> {
    Ok(run_from(Cow::Borrowed(subject), stages, first, false)?.0)
}

/// [`run_with`] on a subject the caller gives up: a leading intensity or label map stage runs in the
/// subject's own buffers, and the buffers a spatial stage no longer needs serve later outputs. The
/// same values as [`run_with`].
pub fn run_owned(
    subject: Subject,
    stages: &[Stage],
    first: Option<&[crate::exec::kernel::PointKernel]>,
) -> Result<Subject> {
    Ok(run_from(Cow::Owned(subject), stages, first, false)?.0)
}

/// [`run_with`] or [`run_owned`] (as `input` is borrowed or owned), and the output images' largest
/// |value| (NaN or +inf where one is not finite) when the last stage to write them was a copy that
/// took it on the way (`None`: not taken).
pub fn run_checked(
    input: Cow<'_, Subject>,
    stages: &[Stage],
    first: Option<&[crate::exec::kernel::PointKernel]>,
) -> Result<(Subject, Option<f32>)> {
    run_from(input, stages, first, true)
}

/// `cur`: the subject between stages; the caller's, read only, until a stage produces one of its own
/// (or from the start, when the caller gave it up). `check`: take the images' largest |value| in
/// copies (see [`run_checked`]).
fn run_from(
    mut cur: Cow<'_, Subject>,
    stages: &[Stage],
    first: Option<&[crate::exec::kernel::PointKernel]>,
    check: bool,
) -> Result<(Subject, Option<f32>)> {
    // The images' largest |value|, when a copy took it and nothing has written them since.
    let mut seen = None;
    // The label type each label map has after its first label map stage (both executors use it).
    let label_types = if stages.iter().any(|s| matches!(s, Stage::Labels(_))) {
        cur.labels
            .iter()
            .map(|l| crate::transform::labels::plan_dtype(l, stages))
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    for (i, stage) in stages.iter().enumerate() {
        let input: &Subject = &cur;
        // The first stage's kernels, when the caller computed them.
        let known = first.filter(|_| i == 0);
        match stage {
            Stage::Spatial(map) => {
                let (out, m) = match (cur, check) {
                    // Our own subject: flips and crops in its buffers, and its buffers serve the
                    // outputs as soon as they are read.
                    (Cow::Owned(owned), false) => {
                        (resample::resample_subject_owned(owned, map)?, None)
                    }
                    (Cow::Owned(owned), true) => {
                        resample::resample_subject_owned_checked(owned, map)?
                    }
                    (Cow::Borrowed(subject), false) => {
                        (resample::resample_subject(subject, map)?, None)
                    }
                    (Cow::Borrowed(subject), true) => {
                        resample::resample_subject_checked(subject, map)?
                    }
                };
                cur = Cow::Owned(out);
                seen = m;
            }
            Stage::Labels(lut) => {
                let labels = input
                    .labels
                    .iter()
                    .zip(&label_types)
                    .map(|(l, &t)| labels::map_volume(l, lut, t))
                    .collect::<Result<Vec<_>>>()?;
                cur = Cow::Owned(match cur {
                    Cow::Owned(mut owned) => {
                        for old in std::mem::replace(&mut owned.labels, labels) {
                            alloc::recycle(old.data);
                        }
                        owned
                    }
                    // The caller's subject: images are copied as they are.
                    Cow::Borrowed(subject) => Subject {
                        images: subject
                            .images
                            .iter()
                            .map(|i| Ok(i.with_voxels(alloc::copy_voxels(&i.data)?)))
                            .collect::<Result<_>>()?,
                        labels,
                        names: subject.names.clone(),
                    },
                });
            }
            Stage::Intensity(op) => {
                seen = None;
                cur = Cow::Owned(match cur {
                    // Our own subject: in place, except images mapped from files (writing there
                    // copies page by page): into fresh buffers, the mapping dropped.
                    Cow::Owned(mut owned) => {
                        let mask = owned.labels.first().map(|l| &l.data);
                        for (k, img) in owned.images.iter_mut().enumerate() {
                            let grid = img.grid.clone();
                            let known = known.map(|f| &f[k]);
                            if img.data.is_mapped() {
                                let out = intensity::apply_to_new_with(
                                    op,
                                    img.image_data()?,
                                    &grid,
                                    mask,
                                    known,
                                )?;
                                img.data = out.into();
                            } else {
                                intensity::apply_masked_with(
                                    op,
                                    img.image_data_mut()?,
                                    &grid,
                                    mask,
                                    known,
                                )?;
                            }
                        }
                        owned
                    }
                    // The caller's subject: images are computed out of place (one read, one
                    // write); label maps are copied as they are.
                    Cow::Borrowed(subject) => Subject {
                        images: subject
                            .images
                            .iter()
                            .enumerate()
                            .map(|(k, img)| {
                                Ok(img.with_data(intensity::apply_to_new_with(
                                    op,
                                    img.image_data()?,
                                    &img.grid,
                                    subject.labels.first().map(|l| &l.data),
                                    known.map(|f| &f[k]),
                                )?))
                            })
                            .collect::<Result<_>>()?,
                        labels: subject
                            .labels
                            .iter()
                            .map(|l| Ok(l.with_voxels(alloc::copy_voxels(&l.data)?)))
                            .collect::<Result<_>>()?,
                        names: subject.names.clone(),
                    },
                });
            }
        }
    }
    Ok((cur.into_owned(), seen))
}
