//! The `voxaug` command line: one file per command, each a thin adapter from clap arguments to a
//! library call and its printing. No processing lives here.

mod apply;
mod augment;
mod bench;
mod common;
mod dataset;
mod info;
mod patches;
mod register;
mod view;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "voxaug",
    version,
    about = "Augment and preprocess 3D medical volumes on the GPU or CPU"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Largest number of voxels a volume may have (default 2^31, or $VOXAUG_MAX_VOXELS); sizes are
    /// checked against it before anything is allocated.
    #[arg(long, global = true)]
    max_voxels: Option<u64>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Apply a pipeline to images and label maps; writes DIR/<same file name> for each input.
    Apply(apply::ApplyArgs),
    /// Augment: N random samples of a pipeline; writes DIR/0000/<input names> + plan.json, ...
    Augment(augment::AugmentArgs),
    /// Built-in demo: augments the MNI brain (or, with --shape, a synthetic phantom) and shows the samples.
    Demo(augment::DemoArgs),
    /// Map a prediction made on an augmented sample back onto the original grid (test-time augmentation).
    Invert(apply::InvertArgs),
    /// Rigid or affine registration of a moving image to a fixed one (MI, MSE or NCC, multi-resolution):
    /// transform.json, an ITK transform.tfm and the moving image (and labels) on the fixed grid.
    Register(register::RegisterArgs),
    /// Time ops on CPU and GPU: median, voxels/s and bandwidth next to this machine's memcpy.
    Bench(bench::BenchArgs),
    /// PNG view of a volume: three planes (sagittal, coronal, axial mid-slices), a slice grid, or (batch,
    /// FILE = an `augment` output folder) one row of planes per sample.
    Preview(view::PreviewArgs),
    /// Intensity histogram PNG (and numbers); a second file is drawn over the first (before/after).
    Histogram(view::HistogramArgs),
    /// Surface mesh of a label (world mm) as STL, OBJ or PLY, optionally rendered to PNG.
    Mesh(view::MeshArgs),
    /// Per label value: voxels, mm^3, ml, centroid (world mm), bounding box, image intensities inside.
    Stats(view::StatsArgs),
    /// List GPU adapters (name, backend, type, driver, key limits) and the one `auto` picks.
    Devices(info::DevicesArgs),
    /// Convert between formats (NIfTI-1/-2, Analyze, NRRD in; NIfTI-1, NRRD out), by extension or --format.
    Convert(info::ConvertArgs),
    /// Cut a volume into patches (NIfTI with their own affines) plus index.json.
    Patches(patches::PatchesArgs),
    /// Stitch the patches of a `voxaug patches` folder (possibly modified) back into a volume.
    Stitch(patches::StitchArgs),
    /// Pooled statistics of a set of images (a folder or a `dir/*.nii.gz` glob), streamed.
    DatasetStats(dataset::DatasetStatsArgs),
    /// Print shape, type, geometry and statistics of a volume.
    Info(info::InfoArgs),
}

fn main() -> ExitCode {
    // Behave like other Unix tools when the reader of our output goes away (`voxaug info f | head`).
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Mesa's Vulkan drivers print an error line per process when this is unset (headless machines).
    #[cfg(target_os = "linux")]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: single-threaded at this point; only this process's environment changes.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let cli = Cli::parse();
    if let Some(n) = cli.max_voxels {
        // SAFETY: still single-threaded; read once by voxaug::grid::max_voxels.
        unsafe { std::env::set_var("VOXAUG_MAX_VOXELS", n.to_string()) };
    }
    // Inputs are read, used and dropped within one run: large uncompressed files are mapped rather
    // than copied (see `voxaug::io::set_mapped_reads` for the one risk), unless turned off.
    voxaug::io::set_mapped_reads(voxaug::settings::env_switch("VOXAUG_MAP_READS") != Some(false));
    let result = match cli.cmd {
        Cmd::Apply(a) => a.run(),
        Cmd::Augment(a) => a.run(),
        Cmd::Demo(a) => a.run(),
        Cmd::Invert(a) => a.run(),
        Cmd::Register(a) => a.run(),
        Cmd::Bench(a) => a.run(),
        Cmd::Preview(a) => a.run(),
        Cmd::Histogram(a) => a.run(),
        Cmd::Mesh(a) => a.run(),
        Cmd::Stats(a) => a.run(),
        Cmd::Devices(a) => a.run(),
        Cmd::Convert(a) => a.run(),
        Cmd::Patches(a) => a.run(),
        Cmd::Stitch(a) => a.run(),
        Cmd::DatasetStats(a) => a.run(),
        Cmd::Info(a) => a.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
