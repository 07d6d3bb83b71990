//! The CPU executor: the reference every other backend is tested against. Each module is the twin of a
//! shader in `shaders/` and takes the same parameters.

pub mod intensity;
pub mod reduce;
pub mod resample;

use crate::error::Result;
use crate::transform::Stage;
use crate::volume::Subject;

/// Runs compiled stages on the CPU (rayon over rows/slices).
pub fn run(subject: &Subject, stages: &[Stage]) -> Result<Subject> {
    let mut cur = subject.clone();
    for stage in stages {
        match stage {
            Stage::Spatial(map) => {
                cur = resample::resample_subject(&cur, map);
            }
            Stage::Intensity(op) => {
                for img in cur.images.iter_mut() {
                    intensity::apply(op, &mut img.data);
                }
            }
        }
    }
    Ok(cur)
}
