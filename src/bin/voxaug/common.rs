//! What several commands share: the device arguments, number formatting, the progress line.

use clap::Args;
use std::path::PathBuf;
use voxaug::{Error, Executor, Result, Subject};

/// `--device` / `--adapter`, flattened into every command that runs a pipeline.
#[derive(Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Executor: auto, cpu or gpu (default: $VOXAUG_DEVICE or auto).
    #[arg(long)]
    pub device: Option<String>,
    /// GPU adapter name substring (e.g. llvmpipe).
    #[arg(long)]
    pub adapter: Option<String>,
}

impl DeviceArgs {
    /// The executor these arguments pick; prints `auto`'s note (why it runs on the CPU) to stderr.
    pub fn executor(&self) -> Result<Executor> {
        let device = self
            .device
            .clone()
            .or_else(|| std::env::var("VOXAUG_DEVICE").ok())
            .unwrap_or_else(|| "auto".into());
        let (exec, note) = voxaug::exec::select(&device, self.adapter.as_deref())?;
        if let Some(note) = note {
            eprintln!("{note}");
        }
        Ok(exec)
    }
}

/// `--image`, `--label` and `--out`, flattened into `apply` and `augment`.
#[derive(Args, Clone, Debug)]
pub struct InputArgs {
    /// Intensity image (repeatable); trilinear, intensity ops apply.
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// Label map (repeatable); nearest, never intensity ops.
    #[arg(long = "label")]
    pub labels: Vec<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

impl InputArgs {
    /// Errors when neither an image nor a label map was given.
    pub fn check(&self) -> Result<()> {
        if self.images.is_empty() && self.labels.is_empty() {
            return Err(Error::InvalidInput(
                "give at least one --image or --label".into(),
            ));
        }
        Ok(())
    }

    /// The input paths, images then label maps (the order of the subject's volumes).
    pub fn paths(&self) -> Vec<PathBuf> {
        self.images.iter().chain(&self.labels).cloned().collect()
    }

    /// Reads the subject.
    pub fn subject(&self) -> Result<Subject> {
        voxaug::augment::read_subject(&self.images, &self.labels)
    }
}

/// `[x, y, z]` with 4 decimals.
pub fn fmt3(v: [f64; 3]) -> String {
    format!("[{:.4}, {:.4}, {:.4}]", v[0], v[1], v[2])
}

/// One or three numbers as three.
pub fn three(v: &[usize], what: &str) -> Result<[usize; 3]> {
    match v {
        [a] => Ok([*a; 3]),
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(Error::InvalidInput(format!(
            "{what} takes 1 or 3 numbers, got {v:?}"
        ))),
    }
}

/// Progress on a terminal (a bar with samples/s), plain lines otherwise.
pub struct Progress {
    n: u64,
    tty: bool,
    t0: std::time::Instant,
}

impl Progress {
    pub fn new(n: u64) -> Progress {
        use std::io::IsTerminal;
        Progress {
            n,
            tty: std::io::stderr().is_terminal(),
            t0: std::time::Instant::now(),
        }
    }
    pub fn tick(&self, done: u64) {
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

/// The path of `--label LAB` in commands where `--label` used to be a switch: given without a value it
/// is an error naming `--as-label`.
pub fn label_path(arg: Option<Option<PathBuf>>, cmd: &str) -> Result<Option<PathBuf>> {
    match arg {
        Some(None) => Err(voxaug::Error::InvalidInput(format!(
            "--label takes a path (a label map on the same grid); to read the input itself as a label \
             map, use `voxaug {cmd} ... --as-label`"
        ))),
        Some(Some(p)) => Ok(Some(p)),
        None => Ok(None),
    }
}
