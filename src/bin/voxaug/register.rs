//! `voxaug register`.

use crate::common::DeviceArgs;
use clap::Args;
use std::path::PathBuf;
use voxaug::register::{Init, Metric, RegKind, RegisterOptions};
use voxaug::{augment, io, Error, Kind, Result, Subject};

#[derive(Args)]
pub struct RegisterArgs {
    /// Fixed image (the grid the result is on).
    fixed: PathBuf,
    /// Moving image (resampled onto the fixed grid).
    moving: PathBuf,
    /// Output folder: transform.json, transform.tfm and the resampled moving image (and labels).
    #[arg(long)]
    out: PathBuf,
    /// rigid or affine.
    #[arg(long = "type", default_value = "rigid", value_parser = ["rigid", "affine"])]
    kind: String,
    /// mi (mutual information, any modalities), mse or ncc (same modality).
    #[arg(long, default_value = "mi", value_parser = ["mi", "mse", "ncc"])]
    metric: String,
    /// Shrink factor per pyramid level, coarse to fine.
    #[arg(long, value_delimiter = ',', default_value = "4,2,1")]
    levels: Vec<usize>,
    /// Gaussian sigma in mm per level (one per level).
    #[arg(long, value_delimiter = ',', default_value = "2,1,0")]
    smooth: Vec<f64>,
    /// Initial transform: geometry (grid centres), moments (centres of mass and principal axes) or none.
    #[arg(long, default_value = "geometry", value_parser = ["geometry", "moments", "none"])]
    init: String,
    /// Only fixed voxels where this mask (on the fixed grid) is nonzero count.
    #[arg(long)]
    fixed_mask: Option<PathBuf>,
    /// Label map on the moving grid, resampled (nearest) with the same transform (repeatable).
    #[arg(long = "label")]
    labels: Vec<PathBuf>,
    /// Largest number of iterations per level.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Seed of the metric's sample selection.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

impl RegisterArgs {
    pub fn run(self) -> Result<()> {
        let fixed = io::read_volume(&self.fixed, Kind::Image)?;
        let moving = io::read_volume(&self.moving, Kind::Image)?;
        let labels = self
            .labels
            .iter()
            .map(|p| io::read_volume(p, Kind::Label))
            .collect::<Result<Vec<_>>>()?;
        for (p, l) in self.labels.iter().zip(&labels) {
            if !l.grid.same_as(&moving.grid, 1e-4) {
                return Err(Error::InvalidInput(format!(
                    "{}: a --label must be on the moving image's grid (shape {:?} and affine {:?}; \
                     it has shape {:?} and affine {:?}); resample it onto the moving image first \
                     (`voxaug apply` with {{\"type\": \"resample_to\", \"reference\": \"<moving file>\"}})",
                    p.display(),
                    moving.grid.shape,
                    moving.grid.affine,
                    l.grid.shape,
                    l.grid.affine
                )));
            }
        }
        let mut inputs = vec![self.moving.clone()];
        inputs.extend(self.labels.iter().cloned());
        let outs = augment::output_paths(&inputs, &self.out)?;
        let fixed_mask = self
            .fixed_mask
            .as_ref()
            .map(|p| io::read_volume(p, Kind::Label))
            .transpose()?;
        let opts = RegisterOptions {
            kind: if self.kind == "affine" {
                RegKind::Affine
            } else {
                RegKind::Rigid
            },
            metric: match self.metric.as_str() {
                "mse" => Metric::Mse,
                "ncc" => Metric::Ncc,
                _ => Metric::Mi,
            },
            levels: self.levels.clone(),
            smooth_mm: self.smooth.clone(),
            init: match self.init.as_str() {
                "moments" => Init::Moments,
                "none" => Init::None,
                _ => Init::Geometry,
            },
            iterations: self.iterations,
            seed: self.seed,
            fixed_mask,
            executor: self.device.executor()?,
            ..Default::default()
        };
        let exec = opts.executor.clone();
        let r = voxaug::register::register(&fixed, &moving, &opts)?;
        if !self.json {
            for l in &r.levels {
                println!(
                    "level shrink {} sigma {} mm: {} samples, {} iterations, {} {:.6}, {:.2} s",
                    l.shrink, l.sigma_mm, l.samples, l.iterations, self.metric, l.value, l.seconds
                );
            }
        }
        // Everything is computed before anything is written: a failure leaves no partial output.
        let subject = Subject::new(vec![moving], labels)?;
        let out = exec.apply(&subject, &[r.transform()])?;
        let json = serde_json::to_string_pretty(&r).expect("serialisable");
        let tfm = r.to_tfm();
        // Every file written before any is put in place (a failure leaves none of them); the last
        // renamed, transform.json, marks a complete result.
        io::write_in_dir(&self.out, || {
            let mut staged = out
                .images
                .iter()
                .chain(&out.labels)
                .zip(&outs)
                .map(|(v, p)| io::stage_volume_as(p, v, None))
                .collect::<Result<Vec<_>>>()?;
            staged.push(io::stage_parts(
                &self.out.join("transform.tfm"),
                &[tfm.as_bytes()],
            )?);
            staged.push(io::stage_parts(
                &self.out.join("transform.json"),
                &[json.as_bytes()],
            )?);
            io::commit_all(staged)
        })?;
        if self.json {
            println!("{json}");
        } else {
            let m = r.world_matrix;
            println!(
                "{} {} registration: final {} {:.6}; fixed -> moving translation [{:.3}, {:.3}, {:.3}] mm \
                 -> {} (transform.json, transform.tfm, {} resampled on {})",
                self.kind,
                self.metric,
                self.metric,
                r.final_value,
                m[0][3],
                m[1][3],
                m[2][3],
                self.out.display(),
                outs.len(),
                exec.name()
            );
        }
        Ok(())
    }
}
