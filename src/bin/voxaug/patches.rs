//! `voxaug patches` and `voxaug stitch`.

use crate::common::three;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use voxaug::patches::{self, Blend};
use voxaug::{io, Error, Kind, Result};

#[derive(Args)]
pub struct PatchesArgs {
    /// Volume to cut.
    input: PathBuf,
    /// Patch size in voxels.
    #[arg(long, value_delimiter = ',')]
    size: Vec<usize>,
    /// Stride in voxels (default: the size, no overlap).
    #[arg(long, value_delimiter = ',')]
    stride: Vec<usize>,
    /// Overlap in voxels instead of a stride (stride = size - overlap).
    #[arg(long, value_delimiter = ',', conflicts_with = "stride")]
    overlap: Vec<usize>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// The input is a label map (kept as integers).
    #[arg(long)]
    as_label: bool,
    /// A label map on the same grid, cut with the same grid of patches into `OUT/label/` (stitch that
    /// folder to get it back).
    #[arg(long, num_args = 0..=1, value_name = "LAB")]
    label: Option<Option<PathBuf>>,
    /// Replace the patches of an earlier cut in --out (default: refuse a folder that holds patches).
    #[arg(long)]
    overwrite: bool,
    /// DICOM folder input: the series to read (`voxaug info DIR` lists them).
    #[arg(long)]
    series: Option<String>,
}

impl PatchesArgs {
    pub fn run(self) -> Result<()> {
        let size = three(&self.size, "--size")?;
        let stride = if !self.overlap.is_empty() {
            let o = three(&self.overlap, "--overlap")?;
            if (0..3).any(|a| o[a] >= size[a]) {
                return Err(Error::InvalidInput(format!(
                    "--overlap {o:?} must be smaller than --size {size:?}"
                )));
            }
            [0, 1, 2].map(|a| size[a] - o[a])
        } else if self.stride.is_empty() {
            size
        } else {
            three(&self.stride, "--stride")?
        };
        let lab = crate::common::label_path(self.label.clone(), "patches")?;
        let kind = if self.as_label {
            Kind::Label
        } else {
            Kind::Image
        };
        let series = self.series.as_deref();
        let v = io::read_volume_series(&self.input, kind, series)?;
        let lab = match lab {
            Some(p) => {
                let l = io::read_volume_series(&p, Kind::Label, series)?;
                if !l.grid.same_as(&v.grid, 1e-4) {
                    return Err(Error::InvalidInput(format!(
                        "{}: the label map is not on the grid of {} (shape {:?} vs {:?})",
                        p.display(),
                        self.input.display(),
                        l.grid.shape,
                        v.grid.shape
                    )));
                }
                Some((p, l))
            }
            None => None,
        };
        // The image's cut and the label map's are written as a pair: a failure in the second removes
        // the first (and the folder, when this run made it).
        let (index, labels) = io::write_in_dir(&self.out, || {
            let index = patches::write_folder(
                &v,
                &self.input.display().to_string(),
                size,
                stride,
                &self.out,
                self.overwrite,
            )?;
            let labels = match &lab {
                Some((p, l)) => {
                    let dir = self.out.join("label");
                    let cut = patches::write_folder(
                        l,
                        &p.display().to_string(),
                        size,
                        stride,
                        &dir,
                        self.overwrite,
                    )
                    .inspect_err(|_| patches::remove_cut(&self.out, &index))?;
                    Some((dir, cut))
                }
                None => None,
            };
            Ok((index, labels))
        })?;
        println!(
            "wrote {} patches of {size:?} (stride {stride:?}) and index.json to {}",
            index.patches.len(),
            self.out.display()
        );
        if let Some((dir, cut)) = labels {
            println!(
                "wrote {} label patches and index.json to {}",
                cut.patches.len(),
                dir.display()
            );
        }
        Ok(())
    }
}

/// How `stitch` combines overlapping patches.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StitchMode {
    /// Each voxel from the patch whose centre is nearest.
    Crop,
    /// Mean of the overlapping patches.
    Average,
    /// Hann-window weights (smooth seams).
    Hann,
}

#[derive(Args)]
pub struct StitchArgs {
    /// Folder written by `voxaug patches`.
    dir: PathBuf,
    /// Output volume.
    #[arg(long)]
    out: PathBuf,
    /// How overlapping patches are combined.
    #[arg(long, value_enum, default_value = "crop")]
    mode: StitchMode,
}

impl StitchArgs {
    pub fn run(self) -> Result<()> {
        let blend = match self.mode {
            StitchMode::Crop => Blend::Crop,
            StitchMode::Average => Blend::Average,
            StitchMode::Hann => Blend::Hann,
        };
        io::output_format(&self.out, None)?;
        let (v, index) = patches::stitch_folder(&self.dir, blend)?;
        io::write_volume(&self.out, &v)?;
        println!(
            "wrote {} ({:?}) from {} patches ({})",
            self.out.display(),
            index.shape,
            index.patches.len(),
            self.mode
                .to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        );
        Ok(())
    }
}
