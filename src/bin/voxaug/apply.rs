//! `voxaug apply`.

use crate::common::{fmt3, DeviceArgs, InputArgs};
use clap::Args;
use std::path::PathBuf;
use voxaug::{augment, io, Pipeline, Result};

#[derive(Args)]
pub struct ApplyArgs {
    /// Pipeline JSON file: {"seed": 0, "transforms": [...]}.
    pipeline: PathBuf,
    #[command(flatten)]
    inputs: InputArgs,
    /// Seed of a random pipeline (default: the pipeline's "seed").
    #[arg(long)]
    seed: Option<u64>,
    /// Which sample of the seed to apply (default: the pipeline's "sample", else 0); sample k is
    /// folder k of `voxaug augment --seed S`.
    #[arg(long)]
    sample: Option<u64>,
    #[command(flatten)]
    device: DeviceArgs,
}

impl ApplyArgs {
    pub fn run(self) -> Result<()> {
        self.inputs.check()?;
        let out = &self.inputs.out;
        let mut pipeline = Pipeline::from_file(&self.pipeline)?;
        if let Some(s) = self.seed {
            pipeline.seed = s;
        }
        let exec = self.device.executor()?;
        let inputs = self.inputs.paths();
        let outs = augment::output_paths(&inputs, out)?;
        let subject = self.inputs.subject()?;
        let index = self.sample.or(pipeline.sample).unwrap_or(0);
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
