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
        let out = self.inputs.out()?;
        let mut pipeline = Pipeline::from_file(&self.pipeline)?;
        if let Some(s) = self.seed {
            pipeline.seed = s;
        }
        let exec = self.device.executor()?;
        let inputs = self.inputs.paths();
        let outs = augment::output_paths(&inputs, out)?;
        let (subject, layouts) = self.inputs.subject_files()?;
        let index = self.sample.or(pipeline.sample).unwrap_or(0);
        if !pipeline.is_fixed() {
            eprintln!(
                "voxaug: random pipeline, applying sample {index} of seed {}",
                pipeline.seed
            );
        }
        let t0 = std::time::Instant::now();
        let (result, _plan) = pipeline.sample_owned(&exec, subject, index)?;
        let secs = t0.elapsed().as_secs_f64();
        io::write_in_dir(out, || augment::write_outputs(&outs, &result, &layouts))?;
        for o in &outs {
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

#[derive(Args)]
pub struct InvertArgs {
    /// The sample's plan (`plan.json` written by `augment`, or any pipeline without random transforms).
    plan: PathBuf,
    /// The prediction on the augmented grid (probabilities, logits or, with --label, a label map).
    #[arg(long)]
    image: PathBuf,
    /// The original volume the sample was made from (its grid is the output grid).
    #[arg(long)]
    reference: PathBuf,
    /// Output folder: DIR/<the --image file name>.
    #[arg(long)]
    out: PathBuf,
    /// The prediction is a label map: nearest sampling, integer labels kept (default: trilinear).
    #[arg(long)]
    label: bool,
    /// Value where the plan saw nothing of the original (cropped away, moved out of view).
    #[arg(long, default_value_t = 0.0)]
    fill: f64,
    /// DICOM folder input: the series to read (`voxaug info DIR` lists them).
    #[arg(long)]
    series: Option<String>,
    #[command(flatten)]
    device: DeviceArgs,
}

impl InvertArgs {
    pub fn run(self) -> Result<()> {
        let plan = Pipeline::from_file(&self.plan)?.fixed_transforms()?;
        let kind = if self.label {
            voxaug::Kind::Label
        } else {
            voxaug::Kind::Image
        };
        let name = self.image.file_name().ok_or_else(|| {
            voxaug::Error::InvalidInput(format!("{} has no file name", self.image.display()))
        })?;
        let outs = augment::output_paths(std::slice::from_ref(&self.image), &self.out)?;
        let series = self.series.as_deref();
        let reference = io::read_volume_series(&self.reference, voxaug::Kind::Image, series)?;
        let pred = io::read_volume_series(&self.image, kind, series)?;
        let exec = self.device.executor()?;
        let back = voxaug::invert::invert(
            &exec,
            &plan,
            &reference.grid,
            &pred,
            voxaug::Fill::Value(self.fill),
        )?;
        io::create_dir(&self.out)?;
        io::write_volume(&outs[0], &back)?;
        println!(
            "wrote {} ({} on the grid of {}, shape {:?})",
            outs[0].display(),
            name.to_string_lossy(),
            self.reference.display(),
            back.grid.shape
        );
        Ok(())
    }
}
