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
    // The input is borrowed until the first stage produces a new subject: no up-front copy.
    let mut cur: Option<Subject> = None;
    // The label type each label map has after its first label map stage (both executors use it).
    let label_types = if stages.iter().any(|s| matches!(s, Stage::Labels(_))) {
        subject
            .labels
            .iter()
            .map(|l| crate::transform::labels::plan_dtype(l, stages))
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    for stage in stages {
        let input = cur.as_ref().unwrap_or(subject);
        match stage {
            Stage::Spatial(map) => {
                let next = resample::resample_subject(input, map)?;
                // The previous intermediate result's buffers serve the next outputs.
                if let Some(old) = cur.replace(next) {
                    alloc::recycle_subject(old);
                }
            }
            Stage::Labels(lut) => {
                let labels = input
                    .labels
                    .iter()
                    .zip(&label_types)
                    .map(|(l, &t)| labels::map_volume(l, lut, t))
                    .collect::<Result<Vec<_>>>()?;
                cur = Some(match cur.take() {
                    Some(mut owned) => {
                        owned.labels = labels;
                        owned
                    }
                    // First stage: images are copied as they are.
                    None => Subject {
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
                cur = Some(match cur.take() {
                    // Later stages own their data: in place.
                    Some(mut owned) => {
                        let mask = owned.labels.first().map(|l| &l.data);
                        for img in owned.images.iter_mut() {
                            let grid = img.grid.clone();
                            intensity::apply_masked(op, img.image_data_mut()?, &grid, mask)?;
                        }
                        owned
                    }
                    // First stage: images are computed out of place (one read, one write); label maps
                    // are copied as they are.
                    None => Subject {
                        images: subject
                            .images
                            .iter()
                            .enumerate()
                            .map(|(i, img)| {
                                Ok(img.with_data(intensity::apply_to_new_with(
                                    op,
                                    img.image_data()?,
                                    &img.grid,
                                    subject.labels.first().map(|l| &l.data),
                                    first.map(|k| &k[i]),
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
    Ok(cur.unwrap_or_else(|| subject.clone()))
}
