//! The CPU executor: the reference every other backend is tested against. Each module is the twin of a
//! shader in `shaders/` and takes the same parameters.

pub mod alloc;
pub mod field;
pub mod intensity;
pub mod reduce;
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
                cur = Some(resample::resample_subject(input, map));
            }
            Stage::Intensity(op) => {
                let mut owned = cur.take().unwrap_or_else(|| subject.clone());
                for img in owned.images.iter_mut() {
                    intensity::apply(op, &mut img.data, &img.grid);
                }
                cur = Some(owned);
            }
        }
    }
    Ok(cur.unwrap_or_else(|| subject.clone()))
}
