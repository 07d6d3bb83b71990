//! The `voxaug` command line: parses arguments, calls the library, prints. No processing lives here.

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use voxaug::{io, Error, Executor, Kind, Pipeline, Result, Subject, Volume};

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
    /// List GPU adapters (name, backend, type, driver, key limits) and the one `auto` picks.
    Devices {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
        Cmd::Info { file, label, json } => cmd_info(&file, label, json),
        Cmd::Devices { json } => cmd_devices(json),
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

/// Output paths for the inputs, refusing collisions with inputs and with each other.
fn output_paths(inputs: &[&PathBuf], out: &Path) -> Result<Vec<PathBuf>> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let input_set: Vec<PathBuf> = inputs.iter().map(|p| canon(p)).collect();
    let mut outs: Vec<PathBuf> = Vec::new();
    for p in inputs {
        let name = p
            .file_name()
            .ok_or_else(|| Error::InvalidInput(format!("{}: not a file", p.display())))?;
        let o = out.join(name);
        let oc = canon(&o);
        if input_set.contains(&oc) {
            return Err(Error::InvalidInput(format!(
                "output {} would overwrite an input; choose another --out folder",
                o.display()
            )));
        }
        if outs.contains(&o) {
            return Err(Error::InvalidInput(format!(
                "two inputs share the file name {}; their outputs would collide",
                name.to_string_lossy()
            )));
        }
        outs.push(o);
    }
    Ok(outs)
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
    let inputs: Vec<&PathBuf> = images.iter().chain(labels).collect();
    let outs = output_paths(&inputs, out)?;
    let read = |ps: &[PathBuf], kind| -> Result<Vec<Volume>> {
        ps.iter().map(|p| io::read_volume(p, kind)).collect()
    };
    let subject = Subject::new(read(images, Kind::Image)?, read(labels, Kind::Label)?)?;
    let t0 = std::time::Instant::now();
    let result = exec.apply(&subject, &pipeline.transforms)?;
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

fn fmt3(v: [f64; 3]) -> String {
    format!("[{:.4}, {:.4}, {:.4}]", v[0], v[1], v[2])
}

fn cmd_info(file: &Path, label: bool, json: bool) -> Result<()> {
    let kind = if label { Kind::Label } else { Kind::Image };
    let v = io::read_volume(file, kind)?;
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
    println!("auto picks: [0] {}", list[0].name);
    Ok(())
}
