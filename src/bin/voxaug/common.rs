//! What several commands share: the device arguments, number formatting, the progress line.

use clap::Args;
use std::path::{Path, PathBuf};
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
            notice_once(&note);
        }
        Ok(exec)
    }
}

/// Prints a notice to stderr the first time this user sees it on this machine (a marker per notice in
/// `$XDG_CACHE_HOME/voxaug` or `~/.cache/voxaug`); later runs stay quiet. `voxaug devices` always says
/// what `auto` picks. Without a writable cache folder the notice is printed every time.
fn notice_once(note: &str) {
    let dir = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("voxaug"));
    // The notice's first words name it (the adapter name in it may vary).
    let key: String = note
        .split_whitespace()
        .take(6)
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let marker = dir.as_ref().map(|d| d.join(format!("notice-{key}")));
    if marker.as_ref().is_some_and(|m| m.exists()) {
        return;
    }
    eprintln!("{note} (shown once)");
    if let (Some(d), Some(m)) = (dir, marker) {
        let _ = std::fs::create_dir_all(&d).and_then(|_| std::fs::write(&m, note));
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
    out: Option<PathBuf>,
    /// DICOM folder input: the series to read (`voxaug info DIR` lists them).
    #[arg(long)]
    series: Option<String>,
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

    /// The output folder (`--out`), required by every command that writes.
    pub fn out(&self) -> Result<&Path> {
        self.out.as_deref().ok_or_else(|| {
            Error::InvalidInput("give --out DIR, the folder the outputs are written to".into())
        })
    }

    /// The input paths, images then label maps (the order of the subject's volumes).
    pub fn paths(&self) -> Vec<PathBuf> {
        self.images.iter().chain(&self.labels).cloned().collect()
    }

    /// Reads the subject.
    pub fn subject(&self) -> Result<Subject> {
        Ok(self.subject_files()?.0)
    }

    /// Reads the subject and each input's channel layout (multi-channel images are written back in
    /// theirs).
    pub fn subject_files(&self) -> Result<(Subject, Vec<Option<voxaug::io::ChannelLayout>>)> {
        voxaug::augment::read_subject_files(&self.images, &self.labels, self.series.as_deref())
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

/// Progress of `n` steps: on a terminal an indicatif bar with rate and ETA; otherwise (a log file, a
/// pipe) a plain line every tenth of the work or every 10 s, and at the end, each with rate and ETA.
pub struct Progress {
    n: u64,
    unit: &'static str,
    bar: Option<indicatif::ProgressBar>,
    t0: std::time::Instant,
    /// Steps and time of the last plain line.
    last: std::sync::Mutex<(u64, std::time::Instant)>,
}

impl Progress {
    /// Progress of `n` samples.
    pub fn new(n: u64) -> Progress {
        Progress::of(n, "samples")
    }

    /// Progress of `n` steps counted in `unit` (plural).
    pub fn of(n: u64, unit: &'static str) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(n);
            b.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "[{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}})"
                ))
                .expect("valid template")
                .progress_chars("#> "),
            );
            b
        });
        let t0 = std::time::Instant::now();
        Progress {
            n,
            unit,
            bar,
            t0,
            last: std::sync::Mutex::new((0, t0)),
        }
    }

    /// `done` steps of `n` are complete (callable from several threads).
    pub fn tick(&self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
            if done >= self.n {
                b.finish();
            }
            return;
        }
        let now = std::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let step = (self.n / 10).max(1);
        let due = done >= self.n
            || done >= last.0 + step
            || now.duration_since(last.1).as_secs_f64() >= 10.0;
        if !due || done <= last.0 {
            return;
        }
        *last = (done, now);
        let secs = now.duration_since(self.t0).as_secs_f64().max(1e-9);
        let rate = done as f64 / secs;
        let eta = if done >= self.n {
            String::new()
        } else {
            format!(", ETA {:.0} s", (self.n - done) as f64 / rate.max(1e-9))
        };
        eprintln!("{done}/{} {} ({rate:.2}/s{eta})", self.n, self.unit);
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
