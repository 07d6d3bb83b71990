//! The `voxaug` command line: parses arguments, calls the library, prints. No processing lives here.

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use voxaug::{augment, io, Error, Executor, Kind, Pipeline, Result, Subject, Volume};

#[derive(Parser)]
#[command(
    name = "voxaug",
    version,
    about = "Augment and preprocess 3D medical volumes on the GPU or CPU"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Apply a pipeline to images and label maps; writes DIR/<same file name> for each input.
    Apply {
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
        /// Executor: auto, cpu or gpu (default: $VOXAUG_DEVICE or auto).
        #[arg(long)]
        device: Option<String>,
        /// GPU adapter name substring (e.g. llvmpipe).
        #[arg(long)]
        adapter: Option<String>,
    },
    /// Augment: N random samples of a pipeline; writes DIR/0000/<input names> + plan.json, ...
    Augment {
        /// Pipeline JSON file (random transforms allowed).
        pipeline: PathBuf,
        #[arg(long = "image")]
        images: Vec<PathBuf>,
        #[arg(long = "label")]
        labels: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Number of samples.
        #[arg(short = 'n', long = "num", default_value_t = 1)]
        n: u64,
        /// Seed (default: the pipeline's).
        #[arg(long)]
        seed: Option<u64>,
        /// Samples per executor call (GPU: one upload and shared submissions per batch).
        #[arg(long, default_value_t = 4)]
        batch: usize,
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        adapter: Option<String>,
    },
    /// Built-in demo: augments a synthetic head phantom with the nnU-Net-like default pipeline.
    Demo {
        /// Output folder.
        #[arg(long, default_value = "voxaug-demo")]
        out: PathBuf,
        /// Number of samples.
        #[arg(short = 'n', long = "num", default_value_t = 4)]
        n: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Phantom shape in voxels.
        #[arg(long, default_value = "128,128,64", value_delimiter = ',')]
        shape: Vec<usize>,
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        adapter: Option<String>,
    },
    /// Time ops on CPU and GPU: median, voxels/s and bandwidth next to this machine's memcpy.
    Bench {
        /// Cube edge lengths, comma separated.
        #[arg(long, default_value = "128,256", value_delimiter = ',')]
        size: Vec<usize>,
        /// Executors, comma separated (cpu, gpu).
        #[arg(long, default_value = "cpu,gpu", value_delimiter = ',')]
        device: Vec<String>,
        /// Ops, comma separated (default: all).
        #[arg(long, value_delimiter = ',')]
        ops: Vec<String>,
        /// Timed runs per op (default: 5 up to 128^3, 3 above).
        #[arg(long)]
        runs: Option<usize>,
        /// Write every number as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        adapter: Option<String>,
    },
    /// PNG view of a volume: three planes (sagittal, coronal, axial mid-slices), a slice grid, or (batch,
    /// FILE = an `augment` output folder) one row of planes per sample.
    Preview {
        file: PathBuf,
        /// Label map drawn over the image.
        #[arg(long)]
        label: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// planes, grid or batch.
        #[arg(long, default_value = "planes")]
        mode: String,
        /// grid: voxel axis to slice along.
        #[arg(long, default_value_t = 2)]
        axis: usize,
        /// grid: every N-th slice.
        #[arg(long)]
        every: Option<usize>,
        /// grid: N evenly spread slices (default 16); batch: first N samples (default 16).
        #[arg(long)]
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
    },
    /// Intensity histogram PNG (and numbers); a second file is drawn over the first (before/after).
    Histogram {
        file: PathBuf,
        /// A second volume overlaid (e.g. after normalisation).
        #[arg(long)]
        overlay: Option<PathBuf>,
        /// nonzero: count only nonzero voxels; all (default).
        #[arg(long, default_value = "all")]
        mask: String,
        #[arg(long, default_value_t = 128)]
        bins: usize,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the bins as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Surface mesh of a label (world mm) as STL, OBJ or PLY, optionally rendered to PNG.
    Mesh {
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
    },
    /// Per label value: voxels, mm^3, ml, centroid (world mm), bounding box, image intensities inside.
    Stats {
        /// Image (intensities are reported inside each label).
        file: PathBuf,
        #[arg(long)]
        label: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List GPU adapters (name, backend, type, driver, key limits) and the one `auto` picks.
    Devices {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Convert between formats (NIfTI-1/-2, Analyze, NRRD in; NIfTI-1, NRRD out), by extension or --format.
    Convert {
        input: PathBuf,
        output: PathBuf,
        /// nifti or nrrd (default: from the output extension).
        #[arg(long)]
        format: Option<String>,
        /// Frame of a 4D input to extract.
        #[arg(long)]
        frame: Option<usize>,
    },
    /// Cut a volume into patches (NIfTI with their own affines) plus index.json.
    Patches {
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
        #[arg(long)]
        out: PathBuf,
        /// The input is a label map (kept as integers).
        #[arg(long)]
        label: bool,
    },
    /// Stitch the patches of a `voxaug patches` folder (possibly modified) back into a volume.
    Stitch {
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// crop (keep each patch's centre), average or hann.
        #[arg(long, default_value = "crop")]
        mode: String,
    },
    /// Pooled statistics of a set of images (a folder or a `dir/*.nii.gz` glob), streamed.
    DatasetStats {
        images: String,
        /// Label maps (folder or glob) for label frequencies.
        #[arg(long)]
        label_glob: Option<String>,
        #[arg(long)]
        json: bool,
        /// Also learn histogram-standardisation landmarks and write them here (JSON).
        #[arg(long)]
        landmarks: Option<PathBuf>,
    },
    /// Print shape, type, geometry and statistics of a volume.
    Info {
        file: PathBuf,
        /// Treat the file as a label map: voxel count and volume per label value.
        #[arg(long)]
        label: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// DICOM folder: the series to read (`voxaug info DIR` lists them).
        #[arg(long)]
        series: Option<String>,
    },
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
    let result = match cli.cmd {
        Cmd::Apply {
            pipeline,
            images,
            labels,
            out,
            device,
            adapter,
        } => cmd_apply(&pipeline, &images, &labels, &out, device, adapter),
        Cmd::Info {
            file,
            label,
            json,
            series,
        } => cmd_info(&file, label, json, series.as_deref()),
        Cmd::Devices { json } => cmd_devices(json),
        Cmd::DatasetStats {
            images,
            label_glob,
            json,
            landmarks,
        } => (|| {
            let files = voxaug::dataset::list_files(&images)?;
            if let Some(out) = &landmarks {
                let l = voxaug::dataset::learn_landmarks(&files)?;
                let j = serde_json::json!({
                    "landmarks": l,
                    "percents": voxaug::exec::cpu::quantile::LANDMARK_PERCENTS,
                    "files": files.len(),
                });
                io::write_atomic(out, serde_json::to_string_pretty(&j).unwrap().as_bytes())?;
                eprintln!(
                    "wrote landmarks of {} images to {}",
                    files.len(),
                    out.display()
                );
            }
            let labels = match &label_glob {
                Some(g) => voxaug::dataset::list_files(g)?,
                None => Vec::new(),
            };
            let st = voxaug::dataset::dataset_stats(&files, &labels, &|done, total| {
                eprint!("\r{done}/{total} file reads");
                if done == total {
                    eprintln!();
                }
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st).unwrap());
                return Ok(());
            }
            println!("files: {}, voxels: {}", st.files, st.voxels);
            println!(
                "intensity: min {:.4} max {:.4} mean {:.4} std {:.4}",
                st.min, st.max, st.mean, st.std
            );
            let pcs: Vec<String> = st
                .percentiles
                .iter()
                .map(|(p, v)| format!("p{p}={v:.3}"))
                .collect();
            println!("percentiles: {}", pcs.join(" "));
            for (a, (sp, sh)) in st.spacing.iter().zip(&st.shape).enumerate() {
                println!(
                    "axis {a}: spacing median {:.3} [{:.3}, {:.3}] mm, shape median {} [{}, {}]",
                    sp.median, sp.min, sp.max, sh.median, sh.min, sh.max
                );
            }
            println!("suggested target spacing: {}", fmt3(st.suggested_spacing));
            for l in &st.labels {
                println!(
                    "label {:>4}: {:>12} voxels ({:.4}%), in {} file(s)",
                    l.value,
                    l.voxels,
                    l.fraction * 100.0,
                    l.files
                );
            }
            Ok(())
        })(),
        Cmd::Patches {
            input,
            size,
            stride,
            overlap,
            out,
            label,
        } => cmd_patches(&input, &size, &stride, &overlap, &out, label),
        Cmd::Stitch { dir, out, mode } => cmd_stitch(&dir, &out, &mode),
        Cmd::Convert {
            input,
            output,
            format,
            frame,
        } => (|| {
            io::output_format(&output, format.as_deref())?;
            let same = std::fs::canonicalize(&input).ok() == std::fs::canonicalize(&output).ok();
            if same {
                return Err(Error::InvalidInput(format!(
                    "output {} would overwrite the input",
                    output.display()
                )));
            }
            let v = match frame {
                None => io::read_volume(&input, Kind::Image)?,
                Some(f) => match io::detect(&input)? {
                    io::Format::Nifti => io::nifti::read_frame(&input, Kind::Image, Some(f))?,
                    io::Format::Nrrd | io::Format::Dicom => {
                        return Err(Error::Unsupported(
                            "--frame applies to 4D NIfTI input only".into(),
                        ));
                    }
                },
            };
            io::write_volume_as(&output, &v, format.as_deref())?;
            println!(
                "wrote {} ({:?}, {}, orientation {})",
                output.display(),
                v.grid.shape,
                voxaug::io::nifti::output_dtype(&v).name(),
                v.grid.orientation()
            );
            Ok(())
        })(),
        Cmd::Preview {
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
        } => (|| {
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
            if mode == "batch" {
                let (samples, image_name, label_name) = view::batch_layout(&file)?;
                let take = count.unwrap_or(16);
                let mut rows = Vec::new();
                for dir in samples.iter().take(take) {
                    let img = io::read_volume(dir.join(&image_name), Kind::Image)?;
                    let lab = label_name
                        .as_ref()
                        .map(|l| io::read_volume(dir.join(l), Kind::Label))
                        .transpose()?;
                    rows.push(view::planes(&img, lab.as_ref(), &opts)?);
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
            let img = io::read_volume(&file, Kind::Image)?;
            let lab = label
                .as_ref()
                .map(|l| io::read_volume(l, Kind::Label))
                .transpose()?;
            let pic = match mode.as_str() {
                "planes" => view::planes(&img, lab.as_ref(), &opts)?,
                "grid" => {
                    if axis > 2 {
                        return Err(Error::InvalidInput(format!(
                            "--axis {axis} is not 0, 1 or 2"
                        )));
                    }
                    let slices = view::pick_slices(img.grid.shape[axis], every, count)?;
                    let cols = cols.unwrap_or_else(|| (slices.len() as f64).sqrt().ceil() as usize);
                    view::grid(&img, lab.as_ref(), axis, &slices, cols, &opts)?
                }
                other => {
                    return Err(Error::InvalidInput(format!(
                        "unknown --mode `{other}` (expected planes, grid or batch)"
                    )))
                }
            };
            pic.write_png(&out)?;
            println!(
                "wrote {} ({} x {} px)",
                out.display(),
                pic.width,
                pic.height
            );
            Ok(())
        })(),
        Cmd::Histogram {
            file,
            overlay,
            mask,
            bins,
            out,
            json,
        } => (|| {
            use voxaug::view::histogram as h;
            let nonzero = match mask.as_str() {
                "nonzero" => true,
                "all" => false,
                other => {
                    return Err(Error::InvalidInput(format!(
                        "unknown --mask `{other}` (expected nonzero or all)"
                    )))
                }
            };
            if out.is_none() && !json {
                return Err(Error::InvalidInput("give --out PNG and/or --json".into()));
            }
            let mut hists = vec![h::histogram(
                &io::read_volume(&file, Kind::Image)?,
                bins,
                nonzero,
            )?];
            if let Some(o) = &overlay {
                hists.push(h::histogram(
                    &io::read_volume(o, Kind::Image)?,
                    bins,
                    nonzero,
                )?);
            }
            if let Some(o) = &out {
                let refs: Vec<&h::Histogram> = hists.iter().collect();
                h::plot(&refs, 512, 200).write_png(o)?;
                println!("wrote {}", o.display());
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&hists).unwrap());
            }
            Ok(())
        })(),
        Cmd::Mesh {
            label,
            out,
            label_value,
            smooth,
            raw,
            render,
            view,
        } => (|| {
            use voxaug::view::mesh;
            let dir = mesh::view_direction(&view)?;
            let lab = io::read_volume(&label, Kind::Label)?;
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
        })(),
        Cmd::Stats { file, label, json } => (|| {
            let img = io::read_volume(&file, Kind::Image)?;
            let lab = io::read_volume(&label, Kind::Label)?;
            let st = voxaug::view::stats::label_stats(&lab, &[&img])?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st).unwrap());
                return Ok(());
            }
            println!(
                "{:>6} {:>10} {:>14} {:>10} {:>28} {:>12} {:>12}",
                "label", "voxels", "mm^3", "ml", "centroid (mm, RAS)", "image mean", "image std"
            );
            for l in st {
                let c = l.centroid_mm;
                println!(
                    "{:>6} {:>10} {:>14.2} {:>10.3} {:>28} {:>12.3} {:>12.3}",
                    l.value,
                    l.voxels,
                    l.mm3,
                    l.ml,
                    format!("({:.1}, {:.1}, {:.1})", c[0], c[1], c[2]),
                    l.images[0].mean,
                    l.images[0].std
                );
            }
            Ok(())
        })(),
        Cmd::Bench {
            size,
            device,
            ops,
            runs,
            json,
            adapter,
        } => cmd_bench(&size, &device, &ops, runs, json.as_deref(), adapter),
        Cmd::Augment {
            pipeline,
            images,
            labels,
            out,
            n,
            seed,
            batch,
            device,
            adapter,
        } => (|| {
            let p = Pipeline::from_file(&pipeline)?;
            let seed = seed.unwrap_or(p.seed);
            let exec = executor(device, adapter)?;
            let subject = augment::read_subject(&images, &labels)?;
            let inputs: Vec<PathBuf> = images.iter().chain(&labels).cloned().collect();
            augment(&p, seed, &exec, &subject, &inputs, &out, n, batch)
        })(),
        Cmd::Demo {
            out,
            n,
            seed,
            shape,
            device,
            adapter,
        } => cmd_demo(&out, n, seed, &shape, device, adapter),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn executor(device: Option<String>, adapter: Option<String>) -> Result<Executor> {
    let device = device
        .or_else(|| std::env::var("VOXAUG_DEVICE").ok())
        .unwrap_or_else(|| "auto".into());
    let (exec, note) = voxaug::exec::select(&device, adapter.as_deref())?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    Ok(exec)
}

fn cmd_apply(
    pipeline: &Path,
    images: &[PathBuf],
    labels: &[PathBuf],
    out: &Path,
    device: Option<String>,
    adapter: Option<String>,
) -> Result<()> {
    if images.is_empty() && labels.is_empty() {
        return Err(Error::InvalidInput(
            "give at least one --image or --label".into(),
        ));
    }
    let pipeline = Pipeline::from_file(pipeline)?;
    let exec = executor(device, adapter)?;
    let inputs: Vec<PathBuf> = images.iter().chain(labels).cloned().collect();
    let outs = augment::output_paths(&inputs, out)?;
    let subject = augment::read_subject(images, labels)?;
    let input = voxaug::transform::SampleInput::new(
        subject.grid().unwrap().clone(),
        subject.labels.first(),
    );
    let index = pipeline.sample.unwrap_or(0);
    let plan = pipeline.plan(&input, index)?;
    if !pipeline.is_fixed() {
        eprintln!(
            "voxaug: random pipeline, applying sample {index} of seed {}",
            pipeline.seed
        );
    }
    let t0 = std::time::Instant::now();
    let result = exec.apply(&subject, &plan.transforms)?;
    let secs = t0.elapsed().as_secs_f64();
    std::fs::create_dir_all(out).map_err(|e| Error::Io {
        path: out.to_path_buf(),
        source: e,
    })?;
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

/// Progress on a terminal (a bar with samples/s), plain lines otherwise.
struct Progress {
    n: u64,
    tty: bool,
    t0: std::time::Instant,
}

impl Progress {
    fn new(n: u64) -> Progress {
        use std::io::IsTerminal;
        Progress {
            n,
            tty: std::io::stderr().is_terminal(),
            t0: std::time::Instant::now(),
        }
    }
    fn tick(&self, done: u64) {
        let secs = self.t0.elapsed().as_secs_f64().max(1e-9);
        let rate = done as f64 / secs;
        if self.tty {
            let w = 30usize;
            let filled = (w as u64 * done / self.n.max(1)) as usize;
            eprint!(
                "\r[{}{}] {done}/{} {rate:.2} samples/s",
                "#".repeat(filled),
                " ".repeat(w - filled),
                self.n
            );
            if done == self.n {
                eprintln!();
            }
        } else {
            eprintln!("sample {done}/{} ({rate:.2} samples/s)", self.n);
        }
    }
}

/// Samples and writes `n` augmented samples (the library's `augment_to_dir`) with a progress bar.
#[allow(clippy::too_many_arguments)]
fn augment(
    pipeline: &Pipeline,
    seed: u64,
    exec: &Executor,
    subject: &Subject,
    inputs: &[PathBuf],
    out: &Path,
    n: u64,
    batch: usize,
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
        &|done| progress.tick(done),
    )?;
    println!(
        "{n} samples in {:.2} s ({:.2} samples/s; augmentation alone {:.3} s/sample) on {} -> {}",
        report.seconds,
        n as f64 / report.seconds.max(1e-9),
        report.compute_seconds / n.max(1) as f64,
        exec.name(),
        out.display()
    );
    Ok(())
}

/// The demo's pipeline: nnU-Net-like spatial and intensity augmentation.
const DEMO_PIPELINE: &str = include_str!("../../examples/pipelines/nnunet_default.json");

fn cmd_demo(
    out: &Path,
    n: u64,
    seed: u64,
    shape: &[usize],
    device: Option<String>,
    adapter: Option<String>,
) -> Result<()> {
    let shape: [usize; 3] = match shape {
        [a, b, c] if [*a, *b, *c].iter().all(|&x| (4..=1024).contains(&x)) => [*a, *b, *c],
        _ => {
            return Err(Error::InvalidInput(format!(
                "--shape takes three sizes within 4..=1024, got {shape:?}"
            )))
        }
    };
    let exec = executor(device, adapter)?;
    let pipeline = Pipeline::from_json(DEMO_PIPELINE)?;
    // The same 192 x 192 x 192 mm field of view whatever the shape (default 1.5 x 1.5 x 3 mm voxels).
    let spacing = [0, 1, 2].map(|a| 192.0 / shape[a] as f64);
    let subject = voxaug::phantom::head(shape, spacing);
    let input_dir = out.join("input");
    std::fs::create_dir_all(&input_dir).map_err(|e| Error::Io {
        path: input_dir.clone(),
        source: e,
    })?;
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
    augment(&pipeline, seed, &exec, &subject, &inputs, out, n, 4)?;
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

fn fmt3(v: [f64; 3]) -> String {
    format!("[{:.4}, {:.4}, {:.4}]", v[0], v[1], v[2])
}

fn cmd_info(file: &Path, label: bool, json: bool, series: Option<&str>) -> Result<()> {
    let kind = if label { Kind::Label } else { Kind::Image };
    let v = if io::detect(file)? == io::Format::Dicom {
        if file.is_dir() && !json {
            let list = io::dicom::list_series(file)?;
            println!("DICOM series in {}:", file.display());
            for (uid, n, desc) in &list {
                println!("  {uid}  {n} file(s)  {desc}");
            }
            if list.len() > 1 && series.is_none() {
                println!("choose one with --series UID");
                return Ok(());
            }
        }
        io::dicom::read(file, kind, series)?
    } else {
        io::read_volume(file, kind)?
    };
    let g = &v.grid;
    let s = v.stats();
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
        });
        if label {
            j["labels"] = serde_json::Value::Array(labels_json);
        }
        println!("{}", serde_json::to_string_pretty(&j).unwrap());
        return Ok(());
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
    println!(
        "intensity:   min {:.4}  max {:.4}  mean {:.4}  std {:.4}",
        s.min, s.max, s.mean, s.std
    );
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
    Ok(())
}

fn cmd_devices(json: bool) -> Result<()> {
    let list = voxaug::exec::gpu::list_adapters();
    if json {
        println!("{}", serde_json::to_string_pretty(&list).unwrap());
        return Ok(());
    }
    if list.is_empty() {
        println!("{}", voxaug::exec::gpu::NO_ADAPTER);
        println!("auto picks: cpu ({} threads)", rayon::current_num_threads());
        return Ok(());
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
    if list[0].device_type == "Cpu" {
        println!(
            "auto picks: cpu ({} threads): [0] is a software renderer, slower than the CPU executor; \
             --device gpu uses it",
            rayon::current_num_threads()
        );
    } else {
        println!("auto picks: [0] {}", list[0].name);
    }
    Ok(())
}

fn cmd_bench(
    sizes: &[usize],
    devices: &[String],
    ops: &[String],
    runs: Option<usize>,
    json: Option<&Path>,
    adapter: Option<String>,
) -> Result<()> {
    use voxaug::bench;
    let ops: Vec<String> = if ops.is_empty() {
        bench::OPS.iter().map(|s| s.to_string()).collect()
    } else {
        ops.to_vec()
    };
    for op in &ops {
        bench::op_transforms(op, 8)?;
    }
    let mut execs = Vec::new();
    for d in devices {
        match d.as_str() {
            "cpu" => execs.push(Executor::Cpu),
            "gpu" => execs.push(voxaug::exec::gpu(adapter.as_deref())?),
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown device `{other}` (expected cpu or gpu)"
                )))
            }
        }
    }
    let memcpy = bench::memcpy_bandwidth();
    let threads = rayon::current_num_threads();
    println!(
        "memcpy bandwidth: {:.1} GB/s (read + write, {threads} threads); sizes {sizes:?}",
        memcpy / 1e9
    );
    println!(
        "{:<16} {:>5} {:<40} {:<10} {:>10} {:>19} {:>9} {:>7} {:>6} {:>8}",
        "op",
        "size",
        "device",
        "mode",
        "median ms",
        "min..max ms",
        "Mvox/s",
        "GB/s",
        "%mcpy",
        "vs cpu"
    );
    let mut all: Vec<bench::Row> = Vec::new();
    for &n in sizes {
        for op in &ops {
            let mut cpu_median = None;
            for e in &execs {
                let r = runs.unwrap_or(if n <= 128 { 5 } else { 3 });
                for mut row in bench::measure(e, op, n, r, memcpy)? {
                    if matches!(e, Executor::Cpu) {
                        cpu_median = Some(row.median_ms);
                    } else if let Some(c) = cpu_median {
                        row.speedup_vs_cpu = Some(c / row.median_ms);
                    }
                    println!(
                        "{:<16} {:>5} {:<40} {:<10} {:>10.2} {:>9.2}..{:<9.2} {:>9.1} {:>7.2} {:>5.0}% {:>8}",
                        row.op,
                        row.size,
                        row.device.chars().take(40).collect::<String>(),
                        row.mode,
                        row.median_ms,
                        row.min_ms,
                        row.max_ms,
                        row.voxels_per_s / 1e6,
                        row.gb_per_s,
                        row.fraction_of_memcpy * 100.0,
                        row.speedup_vs_cpu.map(|x| format!("{x:.2}x")).unwrap_or_default()
                    );
                    all.push(row);
                }
            }
        }
    }
    if let Some(path) = json {
        let adapters: Vec<String> = execs.iter().map(|e| e.name()).collect();
        let j = serde_json::json!({
            "date_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "cpu_threads": threads,
            "memcpy_bytes_per_s": memcpy,
            "executors": adapters,
            "rows": all,
        });
        io::write_atomic(path, serde_json::to_string_pretty(&j).unwrap().as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn three(v: &[usize], what: &str) -> Result<[usize; 3]> {
    match v {
        [a] => Ok([*a; 3]),
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(Error::InvalidInput(format!(
            "{what} takes 1 or 3 numbers, got {v:?}"
        ))),
    }
}

fn cmd_patches(
    input: &Path,
    size: &[usize],
    stride: &[usize],
    overlap: &[usize],
    out: &Path,
    label: bool,
) -> Result<()> {
    use voxaug::patches;
    let size = three(size, "--size")?;
    let stride = if !overlap.is_empty() {
        let o = three(overlap, "--overlap")?;
        if (0..3).any(|a| o[a] >= size[a]) {
            return Err(Error::InvalidInput(format!(
                "--overlap {o:?} must be smaller than --size {size:?}"
            )));
        }
        [0, 1, 2].map(|a| size[a] - o[a])
    } else if stride.is_empty() {
        size
    } else {
        three(stride, "--stride")?
    };
    let kind = if label { Kind::Label } else { Kind::Image };
    let v = io::read_volume(input, kind)?;
    let starts = patches::grid_starts(v.grid.shape, size, stride)?;
    std::fs::create_dir_all(out).map_err(|e| Error::Io {
        path: out.to_path_buf(),
        source: e,
    })?;
    let mut entries = Vec::with_capacity(starts.len());
    for (n, st) in starts.iter().enumerate() {
        let p = patches::extract(&v, *st, size)?;
        let file = format!("patch_{n:05}.nii.gz");
        io::write_volume(out.join(&file), &p)?;
        entries.push(patches::PatchEntry { file, start: *st });
    }
    let index = patches::Index {
        source: input.display().to_string(),
        shape: v.grid.shape,
        affine: v.grid.affine,
        size,
        stride,
        kind,
        patches: entries,
    };
    io::write_atomic(
        &out.join("index.json"),
        serde_json::to_string_pretty(&index).unwrap().as_bytes(),
    )?;
    println!(
        "wrote {} patches of {size:?} (stride {stride:?}) and index.json to {}",
        starts.len(),
        out.display()
    );
    Ok(())
}

fn cmd_stitch(dir: &Path, out: &Path, mode: &str) -> Result<()> {
    use voxaug::patches::{Aggregator, Blend, Index};
    let blend = match mode {
        "crop" => Blend::Crop,
        "average" => Blend::Average,
        "hann" => Blend::Hann,
        other => {
            return Err(Error::InvalidInput(format!(
                "unknown --mode `{other}` (expected crop, average or hann)"
            )))
        }
    };
    io::output_format(out, None)?;
    let ip = dir.join("index.json");
    let text = std::fs::read_to_string(&ip).map_err(|e| Error::Io {
        path: ip.clone(),
        source: e,
    })?;
    let index: Index = serde_json::from_str(&text)
        .map_err(|e| Error::InvalidInput(format!("{}: not a patch index ({e})", ip.display())))?;
    let mut agg = Aggregator::new(index.shape, index.size, index.stride, blend)?;
    let mut dtype = None;
    for e in &index.patches {
        let p = io::read_volume(dir.join(&e.file), index.kind)?;
        if p.grid.shape != index.size {
            return Err(Error::InvalidInput(format!(
                "{}: shape {:?}, the index says {:?}",
                e.file, p.grid.shape, index.size
            )));
        }
        dtype.get_or_insert(p.dtype);
        agg.add(e.start, &p.data)?;
    }
    let grid = voxaug::Grid::new(index.shape, index.affine)?;
    let mut v = Volume::new(agg.finish()?, grid, index.kind)?;
    v.dtype = dtype.unwrap_or(voxaug::DType::F32);
    io::write_volume(out, &v)?;
    println!(
        "wrote {} ({:?}) from {} patches ({mode})",
        out.display(),
        index.shape,
        index.patches.len()
    );
    Ok(())
}
