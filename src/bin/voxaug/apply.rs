//! `voxaug apply`.

use crate::common::{fmt3, DeviceArgs};
use clap::Args;
use std::path::PathBuf;
use voxaug::{augment, io, Error, Pipeline, Result};

#[derive(Args)]
pub struct ApplyArgs {
    /// Pipeline JSON file: {"seed": 0, "transforms": [...]}.
    pipeline: PathBuf,
    /// Intensity image (repeatable); trilinear, intensity ops apply.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// Label map (repeatable); nearest, never intensity ops.
    #[arg(long = "label")]
    labels: Vec<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

impl ApplyArgs {
    pub fn run(self) -> Result<()> {
        let (images, labels, out) = (&self.images, &self.labels, &self.out);
        if images.is_empty() && labels.is_empty() {
            return Err(Error::InvalidInput(
                "give at least one --image or --label".into(),
            ));
        }
        let pipeline = Pipeline::from_file(&self.pipeline)?;
        let exec = self.device.executor()?;
        let inputs: Vec<PathBuf> = images.iter().chain(labels).cloned().collect();
        let outs = augment::output_paths(&inputs, out)?;
        let subject = augment::read_subject(images, labels)?;
        let index = pipeline.sample.unwrap_or(0);
        if !pipeline.is_fixed() {
            eprintln!(
                "voxaug: random pipeline, applying sample {index} of seed {}",
                pipeline.seed
            );
        }
        let t0 = std::time::Instant::now();
        let (result, _plan) = pipeline.sample(&exec, &subject, index)?;
        let secs = t0.elapsed().as_secs_f64();
        io::create_dir(out)?;
        for (v, o) in result.images.iter().chain(&result.labels).zip(&outs) {
            io::write_volume(o, v)?;
            println!("wrote {}", o.display());
        }
        let g = &result
            .images
            .first()
            .or(result.labels.first())
            .unwrap()
            .grid;
        println!(
            "{} transform(s) on {} volume(s) in {:.3} s on {}; output shape {:?}, spacing {}",
            pipeline.transforms.len(),
            inputs.len(),
            secs,
            exec.name(),
            g.shape,
            fmt3(g.spacing())
        );
        Ok(())
    }
}
