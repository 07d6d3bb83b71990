//! `voxaug preview`, `voxaug histogram`, `voxaug mesh` and `voxaug stats`.

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use voxaug::{io, Error, Kind, Result};

/// What `preview` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PreviewMode {
    /// Sagittal, coronal and axial mid-slices.
    Planes,
    /// A grid of slices along one axis.
    Grid,
    /// One row of planes per sample of an `augment` output folder.
    Batch,
}

#[derive(Args)]
pub struct PreviewArgs {
    /// Volume (or, with --mode batch, an `augment` output folder).
    file: PathBuf,
    /// Label map drawn over the image.
    #[arg(long)]
    label: Option<PathBuf>,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// What to draw.
    #[arg(long, value_enum, default_value = "planes")]
    mode: PreviewMode,
    /// grid: voxel axis to slice along.
    #[arg(long, default_value_t = 2)]
    axis: usize,
    /// grid: every N-th slice.
    #[arg(long)]
    every: Option<usize>,
    /// grid: N evenly spread slices (default 16); batch: first N samples (default 16).
    #[arg(short = 'n', long, visible_alias = "num")]
    count: Option<usize>,
    /// grid: slices per row (default: about square).
    #[arg(long)]
    cols: Option<usize>,
    /// CENTER,WIDTH or a CT preset (brain, subdural, stroke, lung, mediastinum, abdomen, liver, bone);
    /// default: 0.5-99.5 percentile.
    #[arg(long)]
    window: Option<String>,
    /// Label overlay opacity.
    #[arg(long, default_value_t = 0.4)]
    alpha: f32,
    /// Radiological convention (patient's right on the left); default neurological.
    #[arg(long)]
    radiological: bool,
    /// DICOM folder input: the series to read (`voxaug info DIR` lists them).
    #[arg(long)]
    series: Option<String>,
}

impl PreviewArgs {
    pub fn run(self) -> Result<()> {
        let PreviewArgs {
            file,
            label,
            out,
            mode,
            axis,
            every,
            count,
            cols,
            window,
            alpha,
            radiological,
            series,
        } = self;
        use voxaug::view;
        if !(0.0..=1.0).contains(&alpha) {
            return Err(Error::InvalidInput(format!(
                "--alpha must be within 0..1, got {alpha}"
            )));
        }
        let opts = view::ViewOptions {
            window: window.as_deref().map(view::Window::parse).transpose()?,
            radiological,
            alpha,
            pixel_mm: None,
        };
        if mode == PreviewMode::Batch {
            let (samples, image_name, label_name) = view::batch_layout(&file)?;
            let take = count.unwrap_or(16);
            let mut rows = Vec::new();
            for dir in samples.iter().take(take) {
                let img = io::read_view_image(dir.join(&image_name), None)?;
                let lab = label_name
                    .as_ref()
                    .map(|l| io::read_volume(dir.join(l), Kind::Label))
                    .transpose()?;
                // Each row captioned with its sample folder and, when it holds a plan, its transforms.
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
                let mut caption = format!("sample {}", name.unwrap_or_default());
                let plan = dir.join("plan.json");
                if plan.exists() {
                    let t = voxaug::Pipeline::from_file(&plan)?.fixed_transforms()?;
                    caption = format!("{caption}: {}", view::plan_summary(&t));
                }
                rows.push(view::captioned(
                    &view::planes(&img, lab.as_ref(), &opts)?,
                    &caption,
                ));
            }
            let pic = view::stack(&rows, 8);
            pic.write_png(&out)?;
            println!(
                "wrote {} ({} samples, {} x {} px)",
                out.display(),
                rows.len(),
                pic.width,
                pic.height
            );
            return Ok(());
        }
        let series = series.as_deref();
        let img = io::read_view_image(&file, series)?;
        let lab = label
            .as_ref()
            .map(|l| io::read_volume_series(l, Kind::Label, series))
            .transpose()?;
        let pic = match mode {
            PreviewMode::Planes => view::planes(&img, lab.as_ref(), &opts)?,
            PreviewMode::Grid => {
                if axis > 2 {
                    return Err(Error::InvalidInput(format!(
                        "--axis {axis} is not 0, 1 or 2"
                    )));
                }
                let slices = view::pick_slices(img.grid.shape[axis], every, count)?;
                let cols = cols.unwrap_or_else(|| (slices.len() as f64).sqrt().ceil() as usize);
                view::grid(&img, lab.as_ref(), axis, &slices, cols, &opts)?
            }
            PreviewMode::Batch => unreachable!("handled above"),
        };
        pic.write_png(&out)?;
        println!(
            "wrote {} ({} x {} px)",
            out.display(),
            pic.width,
            pic.height
        );
        Ok(())
    }
}

/// Which voxels `histogram` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HistogramMask {
    /// Every voxel.
    All,
    /// Nonzero voxels only.
    Nonzero,
}

#[derive(Args)]
pub struct HistogramArgs {
    /// Volume.
    file: PathBuf,
    /// A second volume overlaid (e.g. after normalisation).
    #[arg(long)]
    overlay: Option<PathBuf>,
    /// Which voxels are counted.
    #[arg(long, value_enum, default_value = "all")]
    mask: HistogramMask,
    /// Number of bins.
    #[arg(long, default_value_t = 128)]
    bins: usize,
    /// Output PNG.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the bins as JSON.
    #[arg(long)]
    json: bool,
    /// DICOM folder input: the series to read (`voxaug info DIR` lists them).
    #[arg(long)]
    series: Option<String>,
}

impl HistogramArgs {
    pub fn run(self) -> Result<()> {
        let HistogramArgs {
            file,
            overlay,
            mask,
            bins,
            out,
            json,
            series,
        } = self;
        let nonzero = mask == HistogramMask::Nonzero;
        use voxaug::view::histogram as h;
        if out.is_none() && !json {
            return Err(Error::InvalidInput("give --out PNG and/or --json".into()));
        }
        let mut hists = vec![h::histogram(
            &io::read_view_image(&file, series.as_deref())?,
            bins,
            nonzero,
        )?];
        if let Some(o) = &overlay {
            hists.push(h::histogram(
                &io::read_view_image(o, series.as_deref())?,
                bins,
                nonzero,
            )?);
        }
        if let Some(o) = &out {
            let refs: Vec<&h::Histogram> = hists.iter().collect();
            let name = |p: &std::path::Path| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let mut names = vec![name(&file)];
            names.extend(overlay.as_deref().map(name));
            let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            h::plot(&refs, &names, 640, 260).write_png(o)?;
            println!("wrote {}", o.display());
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&hists).unwrap());
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct MeshArgs {
    /// Label map.
    label: PathBuf,
    /// Output mesh (.stl, .obj or .ply).
    #[arg(long)]
    out: PathBuf,
    /// Label value to mesh (default: every nonzero label).
    #[arg(long)]
    label_value: Option<i64>,
    /// Smoother surface (mask blurred by 2 voxels instead of 1).
    #[arg(long)]
    smooth: bool,
    /// Raw voxel boundary (no blur; staircase surface).
    #[arg(long, conflicts_with = "smooth")]
    raw: bool,
    /// Shaded rendering to this PNG.
    #[arg(long)]
    render: Option<PathBuf>,
    /// View of the rendering: anterior, posterior, left, right, superior, inferior.
    #[arg(long, default_value = "anterior")]
    view: String,
    /// DICOM folder input: the series to read (`voxaug info DIR` lists them).
    #[arg(long)]
    series: Option<String>,
}

impl MeshArgs {
    pub fn run(self) -> Result<()> {
        let MeshArgs {
            label,
            out,
            label_value,
            smooth,
            raw,
            render,
            view,
            series,
        } = self;
        use voxaug::view::mesh;
        let dir = mesh::view_direction(&view)?;
        let lab = io::read_volume_series(&label, Kind::Label, series.as_deref())?;
        let sigma = if raw {
            0.0
        } else if smooth {
            2.0 * mesh::DEFAULT_SMOOTH_VOXELS
        } else {
            mesh::DEFAULT_SMOOTH_VOXELS
        };
        let m = mesh::surface(&lab, label_value, sigma)?;
        m.write(&out)?;
        println!(
            "wrote {}: {} vertices, {} triangles, area {:.1} mm^2, volume {:.1} mm^3, {}",
            out.display(),
            m.vertices.len(),
            m.triangles.len(),
            m.area(),
            m.volume(),
            if m.is_closed() { "closed" } else { "open" }
        );
        if let Some(r) = render {
            m.render(dir, 512).write_png(&r)?;
            println!("wrote {}", r.display());
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct StatsArgs {
    /// Image (intensities are reported inside each label).
    file: PathBuf,
    /// Label map.
    #[arg(long)]
    label: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// DICOM folder input: the series to read (`voxaug info DIR` lists them).
    #[arg(long)]
    series: Option<String>,
}

impl StatsArgs {
    pub fn run(self) -> Result<()> {
        let StatsArgs {
            file,
            label,
            json,
            series,
        } = self;
        let img = io::read_view_image(&file, series.as_deref())?;
        let lab = io::read_volume_series(&label, Kind::Label, series.as_deref())?;
        let st = voxaug::view::stats::label_stats(&lab, &[&img])?;
        if json {
            println!("{}", serde_json::to_string_pretty(&st).unwrap());
            return Ok(());
        }
        println!(
            "{:>6} {:>10} {:>14} {:>10} {:>26} {:>24} {:>11} {:>11} {:>11} {:>11}",
            "label",
            "voxels",
            "mm^3",
            "ml",
            "centroid (mm, RAS)",
            "bbox (voxels, i j k)",
            "image mean",
            "image std",
            "image min",
            "image max"
        );
        for l in st {
            let (c, b) = (l.centroid_mm, l.bbox_voxels);
            let im = &l.images[0];
            println!(
                "{:>6} {:>10} {:>14.2} {:>10.3} {:>26} {:>24} {:>11.3} {:>11.3} {:>11.3} {:>11.3}",
                l.value,
                l.voxels,
                l.mm3,
                l.ml,
                format!("({:.1}, {:.1}, {:.1})", c[0], c[1], c[2]),
                format!(
                    "{}-{} {}-{} {}-{}",
                    b[0][0], b[0][1], b[1][0], b[1][1], b[2][0], b[2][1]
                ),
                im.mean,
                im.std,
                im.min,
                im.max
            );
        }
        Ok(())
    }
}
