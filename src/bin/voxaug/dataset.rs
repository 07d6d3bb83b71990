//! `voxaug dataset-stats`.

use crate::common::fmt3;
use clap::Args;
use std::path::PathBuf;
use voxaug::{io, Error, Result};

#[derive(Args)]
pub struct DatasetStatsArgs {
    /// Images: a folder or a `dir/*.nii.gz` glob.
    images: String,
    /// Label maps (folder or glob) for label frequencies.
    #[arg(long)]
    label_glob: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also learn histogram-standardisation landmarks and write them here (JSON).
    #[arg(long)]
    landmarks: Option<PathBuf>,
    /// Fail (non-zero exit, no output) when any file cannot be used; by default such files (unreadable,
    /// truncated, 4D) are listed on stderr and left out.
    #[arg(long)]
    strict: bool,
}

impl DatasetStatsArgs {
    pub fn run(self) -> Result<()> {
        let (images, label_glob, json, landmarks) =
            (&self.images, &self.label_glob, self.json, &self.landmarks);
        let files = voxaug::dataset::list_files(images)?;
        let labels = match &label_glob {
            Some(g) => voxaug::dataset::list_files(g)?,
            None => Vec::new(),
        };
        let progress =
            crate::common::Progress::of((2 * files.len() + labels.len()) as u64, "file reads");
        let st =
            voxaug::dataset::dataset_stats(&files, &labels, &|done, _| progress.tick(done as u64))?;
        for s in &st.skipped {
            eprintln!("voxaug: skipped {}: {}", s.file.display(), s.reason);
        }
        if self.strict && !st.skipped.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{} of {} file(s) could not be used (listed above); without --strict they are \
                 skipped and the statistics cover the others",
                st.skipped.len(),
                files.len() + labels.len()
            )));
        }
        if let Some(out) = &landmarks {
            let l = voxaug::dataset::learn_landmarks(&st.used)?;
            let j = serde_json::json!({
                "landmarks": l,
                "percents": voxaug::exec::cpu::quantile::LANDMARK_PERCENTS,
                "files": st.used.len(),
            });
            io::write_atomic(out, serde_json::to_string_pretty(&j).unwrap().as_bytes())?;
            eprintln!(
                "wrote landmarks of {} images to {}",
                st.used.len(),
                out.display()
            );
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&st).unwrap());
            return Ok(());
        }
        println!(
            "files: {}, voxels: {}{}",
            st.files,
            st.voxels,
            if st.skipped.is_empty() {
                String::new()
            } else {
                format!(" ({} file(s) skipped, listed on stderr)", st.skipped.len())
            }
        );
        println!(
            "intensity: min {:.4} max {:.4} mean {:.4} std {:.4}",
            st.min, st.max, st.mean, st.std
        );
        let pcs: Vec<String> = st
            .percentiles
            .iter()
            .map(|(p, v)| format!("p{p}={v:.3}"))
            .collect();
        println!("percentiles: {}", pcs.join(" "));
        for (a, (sp, sh)) in st.spacing.iter().zip(&st.shape).enumerate() {
            println!(
                "axis {a}: spacing median {:.3} [{:.3}, {:.3}] mm, shape median {} [{}, {}]",
                sp.median, sp.min, sp.max, sh.median, sh.min, sh.max
            );
        }
        println!("suggested target spacing: {}", fmt3(st.suggested_spacing));
        for l in &st.labels {
            println!(
                "label {:>4}: {:>12} voxels ({:.4}%), in {} file(s)",
                l.value,
                l.voxels,
                l.fraction * 100.0,
                l.files
            );
        }
        Ok(())
    }
}
