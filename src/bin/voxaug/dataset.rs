//! `voxaug dataset-stats`.

use crate::common::fmt3;
use clap::Args;
use std::path::PathBuf;
use voxaug::{io, Result};

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
}

impl DatasetStatsArgs {
    pub fn run(self) -> Result<()> {
        let (images, label_glob, json, landmarks) =
            (&self.images, &self.label_glob, self.json, &self.landmarks);
        let files = voxaug::dataset::list_files(images)?;
        if let Some(out) = &landmarks {
            let l = voxaug::dataset::learn_landmarks(&files)?;
            let j = serde_json::json!({
                "landmarks": l,
                "percents": voxaug::exec::cpu::quantile::LANDMARK_PERCENTS,
                "files": files.len(),
            });
            io::write_atomic(out, serde_json::to_string_pretty(&j).unwrap().as_bytes())?;
            eprintln!(
                "wrote landmarks of {} images to {}",
                files.len(),
                out.display()
            );
        }
        let labels = match &label_glob {
            Some(g) => voxaug::dataset::list_files(g)?,
            None => Vec::new(),
        };
        let st = voxaug::dataset::dataset_stats(&files, &labels, &|done, total| {
            eprint!("\r{done}/{total} file reads");
            if done == total {
                eprintln!();
            }
        })?;
        if json {
            println!("{}", serde_json::to_string_pretty(&st).unwrap());
            return Ok(());
        }
        println!("files: {}, voxels: {}", st.files, st.voxels);
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
