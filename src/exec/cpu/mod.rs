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
    // The input is borrowed until the first stage produces a new subject: no up-front copy.
    let mut cur: Option<Subject> = None;
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
            Stage::Intensity(op) => {
                cur = Some(match cur.take() {
                    // Later stages own their data: in place.
                    Some(mut owned) => {
                        for img in owned.images.iter_mut() {
                            let grid = img.grid.clone();
                            intensity::apply(op, img.image_data_mut()?, &grid)?;
                        }
                        owned
                    }
                    // First stage: images are computed out of place (one read, one write); label maps
                    // are copied as they are.
                    None => Subject {
                        images: subject
                            .images
                            .iter()
                            .map(|img| {
                                Ok(img.with_data(intensity::apply_to_new(
                                    op,
                                    img.image_data()?,
                                    &img.grid,
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
