//! `voxaug info`, `voxaug devices` and `voxaug convert`.

use crate::common::fmt3;
use clap::Args;
use std::path::PathBuf;
use voxaug::{io, Error, Kind, Result};

#[derive(Args)]
pub struct InfoArgs {
    /// Volume file or DICOM folder.
    file: PathBuf,
    /// Read the file as a label map: voxel count and volume per label value.
    #[arg(long)]
    as_label: bool,
    /// A label map on the same grid, described after the file (voxel count and volume per label value).
    #[arg(long, num_args = 0..=1, value_name = "LAB")]
    label: Option<Option<PathBuf>>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// DICOM folder: the series to read (`voxaug info DIR` lists them).
    #[arg(long)]
    series: Option<String>,
}

impl InfoArgs {
    pub fn run(self) -> Result<()> {
        let lab = crate::common::label_path(self.label, "info")?;
        let (file, json, series) = (self.file.as_path(), self.json, self.series.as_deref());
        let first = describe(file, self.as_label, json, series)?;
        let Some(lab) = lab else {
            if let Some(j) = first {
                println!("{}", serde_json::to_string_pretty(&j).unwrap());
            }
            return Ok(());
        };
        if !json {
            println!();
        }
        let second = describe(&lab, true, json, series)?;
        if let (Some(a), Some(b)) = (first, second) {
            let j = serde_json::json!({"file": a, "label": b});
            println!("{}", serde_json::to_string_pretty(&j).unwrap());
        }
        Ok(())
    }
}

/// Prints the description of one volume (text), or returns it (JSON).
fn describe(
    file: &std::path::Path,
    label: bool,
    json: bool,
    series: Option<&str>,
) -> Result<Option<serde_json::Value>> {
    {
        let kind = if label { Kind::Label } else { Kind::Image };
        let chans = if io::detect(file)? == io::Format::Dicom {
            if file.is_dir() && !json {
                let list = io::dicom::list_series(file)?;
                println!("DICOM series in {}:", file.display());
                for (uid, n, desc) in &list {
                    println!("  {uid}  {n} file(s)  {desc}");
                }
                if list.len() > 1 && series.is_none() {
                    println!("choose one with --series UID");
                    return Ok(None);
                }
            }
            vec![io::dicom::read(file, kind, series)?]
        } else {
            io::read_channels(file, kind, None)?.0
        };
        // A multi-channel image: geometry from its grid, statistics per channel.
        let v = chans[0].clone();
        let channel_stats: Vec<voxaug::Stats> = chans.iter().map(|c| c.stats()).collect();
        let g = &v.grid;
        let s = v.stats();
        let non_finite = v
            .data
            .as_f32()
            .map_or(0, |d| d.iter().filter(|x| !x.is_finite()).count());
        let vox = g.voxel_volume();
        let labels: Vec<(f32, usize)> = if label { v.label_counts() } else { vec![] };
        if json {
            let labels_json: Vec<serde_json::Value> = labels
                .iter()
                .map(|(l, c)| {
                    serde_json::json!({"value": l, "voxels": c, "mm3": *c as f64 * vox, "ml": *c as f64 * vox / 1000.0})
                })
                .collect();
            let mut j = serde_json::json!({
                "file": file.display().to_string(),
                "shape": g.shape,
                "dtype": v.dtype.name(),
                "spacing": g.spacing(),
                "origin": g.origin(),
                "affine": g.affine,
                "orientation": g.orientation(),
                "voxel_volume_mm3": vox,
                "min": s.min, "max": s.max, "mean": s.mean, "std": s.std,
                "non_finite_voxels": non_finite,
            });
            if label {
                j["labels"] = serde_json::Value::Array(labels_json);
            }
            j["channels"] = chans.len().into();
            if chans.len() > 1 {
                j["channel_stats"] = channel_stats
                    .iter()
                    .map(|s| serde_json::json!({"min": s.min, "max": s.max, "mean": s.mean, "std": s.std}))
                    .collect();
            }
            return Ok(Some(j));
        }
        println!("file:        {}", file.display());
        println!("shape:       {:?}", g.shape);
        println!("dtype:       {}", v.dtype.name());
        println!("spacing:     {} mm", fmt3(g.spacing()));
        println!("origin:      {} mm", fmt3(g.origin()));
        println!("orientation: {}", g.orientation());
        println!("affine:");
        for row in &g.affine {
            println!(
                "  [{:>10.4} {:>10.4} {:>10.4} {:>10.4}]",
                row[0], row[1], row[2], row[3]
            );
        }
        if chans.len() > 1 {
            println!("channels:    {} (one member of apply/augment)", chans.len());
            for (c, s) in channel_stats.iter().enumerate() {
                println!(
                    "  channel {c}: min {:.4}  max {:.4}  mean {:.4}  std {:.4}",
                    s.min, s.max, s.mean, s.std
                );
            }
        } else {
            println!(
                "intensity:   min {:.4}  max {:.4}  mean {:.4}  std {:.4}",
                s.min, s.max, s.mean, s.std
            );
        }
        if non_finite > 0 {
            println!(
                "non-finite:  {non_finite} NaN or infinite voxel(s), left out of the statistics; \
                 `apply`/`augment` need {{\"type\": \"nan_to_num\"}} first in the pipeline"
            );
        }
        if label {
            println!("labels ({} distinct, voxel {:.4} mm^3):", labels.len(), vox);
            println!(
                "  {:>8} {:>12} {:>14} {:>10}",
                "value", "voxels", "mm^3", "ml"
            );
            for (l, c) in labels {
                let mm3 = c as f64 * vox;
                println!("  {:>8} {:>12} {:>14.2} {:>10.3}", l, c, mm3, mm3 / 1000.0);
            }
        }
        Ok(None)
    }
}

#[derive(Args)]
pub struct DevicesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl DevicesArgs {
    pub fn run(self) -> Result<()> {
        let json = self.json;
        let list = voxaug::exec::gpu::list_adapters();
        if json {
            println!("{}", serde_json::to_string_pretty(&list).unwrap());
            return Ok(());
        }
        if list.is_empty() {
            println!("{}", voxaug::exec::gpu::NO_ADAPTER);
        }
        for (i, a) in list.iter().enumerate() {
            println!(
                "[{i}] {} ({}, {}) driver {} {}",
                a.name, a.backend, a.device_type, a.driver, a.driver_info
            );
            println!(
                "    max 3D texture {} voxels/axis, max storage binding {} MiB, max buffer {} MiB",
                a.max_texture_dimension_3d,
                a.max_storage_buffer_binding_size >> 20,
                a.max_buffer_size >> 20
            );
        }
        match voxaug::exec::auto_cpu_reason(voxaug::exec::gpu::hardware_possible(), || list.clone())
        {
            Some(why) => println!(
                "auto picks: cpu ({} threads): {why}",
                rayon::current_num_threads()
            ),
            None => println!("auto picks: [0] {}", list[0].name),
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct ConvertArgs {
    /// Input volume (any format voxaug reads).
    input: PathBuf,
    /// Output file (.nii, .nii.gz or .nrrd); also given as --out.
    #[arg(required_unless_present = "out")]
    output: Option<PathBuf>,
    /// Output file, as every other command names it (same as the positional OUTPUT).
    #[arg(long, conflicts_with = "output")]
    out: Option<PathBuf>,
    /// nifti or nrrd (default: from the output extension).
    #[arg(long)]
    format: Option<String>,
    /// Frame of a 4D input to extract.
    #[arg(long)]
    frame: Option<usize>,
    /// DICOM folder input: the series to read (`voxaug info DIR` lists them).
    #[arg(long)]
    series: Option<String>,
}

impl ConvertArgs {
    pub fn run(self) -> Result<()> {
        let output = self
            .out
            .as_ref()
            .or(self.output.as_ref())
            .expect("clap requires OUTPUT or --out");
        let (input, format, frame) = (&self.input, &self.format, self.frame);
        io::output_format(output, format.as_deref())?;
        // Compared only when both exist: a missing input is reported by the reader.
        let same = matches!(
            (std::fs::canonicalize(input), std::fs::canonicalize(output)),
            (Ok(a), Ok(b)) if a == b
        );
        if same {
            return Err(Error::InvalidInput(format!(
                "output {} would overwrite the input",
                output.display()
            )));
        }
        let v = match frame {
            None => io::read_volume_series(input, Kind::Image, self.series.as_deref())?,
            Some(f) => match io::detect(input)? {
                io::Format::Nifti => io::nifti::read_frame(input, Kind::Image, Some(f))?,
                io::Format::Nrrd | io::Format::Dicom | io::Format::Minc => {
                    return Err(Error::Unsupported(
                        "--frame applies to 4D NIfTI input only".into(),
                    ));
                }
            },
        };
        io::write_volume_as(output, &v, format.as_deref())?;
        println!(
            "wrote {} ({:?}, {}, orientation {})",
            output.display(),
            v.grid.shape,
            voxaug::io::nifti::output_dtype(&v).name(),
            v.grid.orientation()
        );
        Ok(())
    }
}
