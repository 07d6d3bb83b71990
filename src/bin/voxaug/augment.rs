//! `voxaug augment` and `voxaug demo`.

use crate::common::{fmt3, DeviceArgs, InputArgs, Progress};
use clap::Args;
use std::path::{Path, PathBuf};
use voxaug::augment::OutputMode;
use voxaug::{augment, io, Error, Executor, Kind, Pipeline, Result, Subject};

#[derive(Args)]
pub struct AugmentArgs {
    /// Pipeline JSON file (random transforms allowed).
    pipeline: PathBuf,
    #[command(flatten)]
    inputs: InputArgs,
    /// Number of samples.
    #[arg(
        short = 'n',
        long = "count",
        visible_alias = "num",
        default_value_t = 1
    )]
    n: u64,
    /// Seed (default: the pipeline's).
    #[arg(long)]
    seed: Option<u64>,
    /// Samples per executor call (GPU: one upload and shared submissions per batch).
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Replace the samples of an earlier run in --out (default: refuse a folder that holds samples).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Complete an earlier run in --out: keep its samples, compute the missing ones (same seed,
    /// pipeline and inputs required).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

impl AugmentArgs {
    pub fn run(self) -> Result<()> {
        let p = Pipeline::from_file(&self.pipeline)?;
        let seed = self.seed.unwrap_or(p.seed);
        let exec = self.device.executor()?;
        let subject = self.inputs.subject()?;
        let inputs = self.inputs.paths();
        let mode = if self.overwrite {
            OutputMode::Overwrite
        } else if self.resume {
            OutputMode::Resume
        } else {
            OutputMode::New
        };
        write_samples(
            &p,
            seed,
            &exec,
            &subject,
            &inputs,
            &self.inputs.out,
            self.n,
            self.batch,
            mode,
        )
    }
}

#[derive(Args)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, default_value = "voxaug-demo")]
    out: PathBuf,
    /// Number of samples.
    #[arg(
        short = 'n',
        long = "count",
        visible_alias = "num",
        default_value_t = 4
    )]
    n: u64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Phantom shape in voxels.
    #[arg(long, default_value = "128,128,64", value_delimiter = ',')]
    shape: Vec<usize>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Samples and writes `n` augmented samples (the library's `augment_to_dir`) with a progress bar.
#[allow(clippy::too_many_arguments)]
fn write_samples(
    pipeline: &Pipeline,
    seed: u64,
    exec: &Executor,
    subject: &Subject,
    inputs: &[PathBuf],
    out: &Path,
    n: u64,
    batch: usize,
    mode: OutputMode,
) -> Result<()> {
    let progress = Progress::new(n);
    let report = augment::augment_to_dir(
        pipeline,
        seed,
        exec,
        subject,
        inputs,
        out,
        n,
        batch,
        mode,
        &|done| progress.tick(done),
    )?;
    let done = report.computed;
    let kept = report.samples - done;
    println!(
        "{done} samples in {:.2} s ({:.2} samples/s; augmentation alone {:.3} s/sample) on {} -> {}{}",
        report.seconds,
        done as f64 / report.seconds.max(1e-9),
        report.compute_seconds / done.max(1) as f64,
        exec.name(),
        out.display(),
        if kept > 0 {
            format!(" ({kept} kept from the earlier run)")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// The demo's pipeline: nnU-Net-like spatial and intensity augmentation.
const DEMO_PIPELINE: &str = include_str!("../../../examples/pipelines/nnunet_default.json");

impl DemoArgs {
    pub fn run(self) -> Result<()> {
        let (out, n, seed, shape) = (&self.out, self.n, self.seed, &self.shape[..]);
        let shape: [usize; 3] = match shape {
            [a, b, c] if [*a, *b, *c].iter().all(|&x| (4..=1024).contains(&x)) => [*a, *b, *c],
            _ => {
                return Err(Error::InvalidInput(format!(
                    "--shape takes three sizes within 4..=1024, got {shape:?}"
                )))
            }
        };
        let exec = self.device.executor()?;
        let pipeline = Pipeline::from_json(DEMO_PIPELINE)?;
        // The same 192 x 192 x 192 mm field of view whatever the shape (default 1.5 x 1.5 x 3 mm voxels).
        let spacing = [0, 1, 2].map(|a| 192.0 / shape[a] as f64);
        let subject = voxaug::phantom::head(shape, spacing);
        let input_dir = out.join("input");
        io::create_dir(&input_dir)?;
        let names = ["image.nii.gz".to_string(), "label.nii.gz".to_string()];
        io::write_volume(input_dir.join(&names[0]), &subject.images[0])?;
        io::write_volume(input_dir.join(&names[1]), &subject.labels[0])?;
        io::write_atomic(&out.join("pipeline.json"), DEMO_PIPELINE.as_bytes())?;
        let g = subject.grid().unwrap();
        println!(
            "phantom {:?} voxels at {} mm (labels: background, scalp, brain, ventricles, lesion) -> {}",
            g.shape,
            fmt3(g.spacing()),
            input_dir.display()
        );
        let inputs: Vec<PathBuf> = names.iter().map(|n| input_dir.join(n)).collect();
        // The demo owns its folder: a rerun replaces the samples of the previous one.
        write_samples(
            &pipeline,
            seed,
            &exec,
            &subject,
            &inputs,
            out,
            n,
            4,
            OutputMode::Overwrite,
        )?;
        // Before/after pictures: the input and the first sample, three planes with the labels over them.
        let opts = voxaug::view::ViewOptions::default();
        let before = voxaug::view::planes(&subject.images[0], Some(&subject.labels[0]), &opts)?;
        before.write_png(out.join("preview_input.png"))?;
        if n > 0 {
            let s0 = out.join("0000");
            let img = io::read_volume(s0.join(&names[0]), Kind::Image)?;
            let lab = io::read_volume(s0.join(&names[1]), Kind::Label)?;
            voxaug::view::planes(&img, Some(&lab), &opts)?.write_png(s0.join("preview.png"))?;
        }
        println!(
            "previews: {} (input), {} (sample 0)",
            out.join("preview_input.png").display(),
            out.join("0000/preview.png").display()
        );
        println!(
            "samples: {}/0000 .. {}/{:04} (image.nii.gz, label.nii.gz, plan.json); pipeline: {}",
            out.display(),
            out.display(),
            n.saturating_sub(1),
            out.join("pipeline.json").display()
        );
        println!(
            "re-apply a sample exactly: voxaug apply {}/0000/plan.json --image {} --label {} --out OUT",
            out.display(),
            inputs[0].display(),
            inputs[1].display()
        );
        Ok(())
    }
}
