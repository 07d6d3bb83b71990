//! `voxaug augment` and `voxaug demo`.

use crate::common::{fmt3, DeviceArgs, InputArgs, Progress};
use clap::Args;
use std::path::{Path, PathBuf};
use voxaug::augment::OutputMode;
use voxaug::{augment, io, Error, Executor, Pipeline, Result, Subject};

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
    /// Compute the samples and discard them (no --out): throughput of the augmentation alone, as a
    /// training loop that consumes samples in memory sees it.
    #[arg(long, conflicts_with_all = ["overwrite", "resume"])]
    no_write: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

impl AugmentArgs {
    pub fn run(self) -> Result<()> {
        let p = Pipeline::from_file(&self.pipeline)?;
        let seed = self.seed.unwrap_or(p.seed);
        let exec = self.device.executor()?;
        self.inputs.check()?;
        if self.no_write {
            let subject = self.inputs.subject()?;
            let progress = Progress::new(self.n);
            let r = augment::augment_in_memory(
                &p,
                seed,
                &exec,
                &subject,
                self.n,
                self.batch,
                &|done| progress.tick(done),
            )?;
            println!(
                "{} samples in {:.2} s ({:.2} samples/s; batch {}) on {}, not written",
                r.computed,
                r.seconds,
                r.computed as f64 / r.seconds.max(1e-9),
                self.batch.max(1),
                exec.name()
            );
            return Ok(());
        }
        let out = self.inputs.out()?;
        let (subject, layouts) = self.inputs.subject_files()?;
        let inputs = self.inputs.paths();
        let mode = if self.overwrite {
            OutputMode::Overwrite
        } else if self.resume {
            OutputMode::Resume
        } else {
            OutputMode::New
        };
        write_samples(
            &p, seed, &exec, &subject, &inputs, &layouts, out, self.n, self.batch, mode,
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
    /// Run on the synthetic head phantom of this shape (e.g. 128,128,64) instead of the real MNI brain.
    #[arg(long, value_delimiter = ',')]
    shape: Option<Vec<usize>>,
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
    layouts: &[Option<voxaug::io::ChannelLayout>],
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
        layouts,
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

/// The phantom demo's pipeline: nnU-Net-like spatial and intensity augmentation.
const DEMO_PIPELINE: &str = include_str!("../../../examples/pipelines/nnunet_default.json");
/// The brain demo's pipeline: every sample moves (affine) and most deform and change contrast, so the
/// pictures show what augmentation does.
const BRAIN_PIPELINE: &str = include_str!("../../../examples/pipelines/demo_brain.json");
/// The MNI152 T1 brain and its tissue labels (data/mni/README.md: what they are, their licence).
const BRAIN_T1: &[u8] = include_bytes!("../../../data/mni/mni152_t1_1mm.nii.gz");
const BRAIN_LABELS: &[u8] = include_bytes!("../../../data/mni/mni152_tissue_labels_1mm.nii.gz");

impl DemoArgs {
    pub fn run(self) -> Result<()> {
        let (out, n, seed) = (&self.out, self.n, self.seed);
        // Arguments are checked before anything is written.
        let shape: Option<[usize; 3]> = match self.shape.as_deref() {
            None => None,
            Some(&[a, b, c]) if [a, b, c].iter().all(|&x| (4..=1024).contains(&x)) => {
                Some([a, b, c])
            }
            Some(other) => {
                return Err(Error::InvalidInput(format!(
                    "--shape takes three sizes within 4..=1024, got {other:?}"
                )))
            }
        };
        let exec = self.device.executor()?;
        let input_dir = out.join("input");
        io::create_dir(&input_dir)?;
        let (subject, names, pipeline_text, what) = match shape {
            Some(shape) => {
                // The same 192 x 192 x 192 mm field of view whatever the shape.
                let spacing = [0, 1, 2].map(|a| 192.0 / shape[a] as f64);
                let subject = voxaug::phantom::head(shape, spacing);
                let names = ["image.nii.gz".to_string(), "label.nii.gz".to_string()];
                io::write_volume(input_dir.join(&names[0]), &subject.images[0])?;
                io::write_volume(input_dir.join(&names[1]), &subject.labels[0])?;
                let what = "phantom (labels: background, scalp, brain, ventricles, lesion)";
                (subject, names, DEMO_PIPELINE, what)
            }
            None => {
                let names = ["t1.nii.gz".to_string(), "tissue.nii.gz".to_string()];
                io::write_atomic(&input_dir.join(&names[0]), BRAIN_T1)?;
                io::write_atomic(&input_dir.join(&names[1]), BRAIN_LABELS)?;
                let subject = augment::read_subject(
                    &[input_dir.join(&names[0])],
                    &[input_dir.join(&names[1])],
                )?;
                let what = "MNI152 T1 brain (labels: 1 grey matter, 2 white matter)";
                (subject, names, BRAIN_PIPELINE, what)
            }
        };
        let pipeline = Pipeline::from_json(pipeline_text)?;
        io::write_atomic(&out.join("pipeline.json"), pipeline_text.as_bytes())?;
        let g = subject.grid().unwrap();
        println!(
            "{what}: {:?} voxels at {} mm -> {}",
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
            &[],
            out,
            n,
            4,
            OutputMode::Overwrite,
        )?;
        // Before/after: the input and the first samples, three planes with the labels over them, each
        // captioned with what was done to it (from its plan).
        let opts = voxaug::view::ViewOptions::default();
        let view = |s: &Subject| voxaug::view::planes(&s.images[0], Some(&s.labels[0]), &opts);
        let before = view(&subject)?;
        before.write_png(out.join("preview_input.png"))?;
        let mut rows = vec![voxaug::view::captioned(&before, "input")];
        for i in 0..n.min(4) {
            let s_dir = out.join(format!("{i:04}"));
            let s = augment::read_subject(&[s_dir.join(&names[0])], &[s_dir.join(&names[1])])?;
            let plan = Pipeline::from_file(s_dir.join("plan.json"))?;
            let pic = view(&s)?;
            if i == 0 {
                pic.write_png(s_dir.join("preview.png"))?;
            }
            let caption = format!(
                "sample {i}: {}",
                voxaug::view::plan_summary(&plan.fixed_transforms()?)
            );
            rows.push(voxaug::view::captioned(&pic, &caption));
        }
        voxaug::view::stack(&rows, 6).write_png(out.join("before_after.png"))?;
        println!(
            "pictures: {} (input and samples 0..{}, captioned with their transforms), {} (input), {} (sample 0)",
            out.join("before_after.png").display(),
            n.min(4).saturating_sub(1),
            out.join("preview_input.png").display(),
            out.join("0000/preview.png").display()
        );
        println!(
            "samples: {}/0000 .. {}/{:04} ({}, {}, plan.json); pipeline: {}",
            out.display(),
            out.display(),
            n.saturating_sub(1),
            names[0],
            names[1],
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
