//! Augmentation of subjects: sample a plan per sample index, apply it with an executor; sample folders
//! (`voxaug augment`'s output) and output naming shared by the CLI and the Python package.

use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::io;
use crate::transform::{Pipeline, Plan, SampleInput, Transform};
use crate::volume::{Kind, Subject, Volume};
use std::path::{Path, PathBuf};

impl Pipeline {
    /// Sample `index` of this pipeline (seed `self.seed`): its plan and the augmented subject.
    pub fn sample(
        &self,
        exec: &Executor,
        subject: &Subject,
        index: u64,
    ) -> Result<(Subject, Plan)> {
        let input = input_of(subject)?;
        let plan = self.plan(&input, index)?;
        let out = exec.apply(subject, &plan.transforms)?;
        Ok((out, plan))
    }

    /// Lazily yields samples `0, 1, 2, ...` of seed `seed` (overriding the pipeline's).
    pub fn samples<'a>(
        &'a self,
        exec: &'a Executor,
        subject: &'a Subject,
        seed: u64,
    ) -> Result<Samples<'a>> {
        Ok(Samples {
            pipeline: Pipeline {
                seed,
                ..self.clone()
            },
            exec,
            subject,
            input: input_of(subject)?,
            next: 0,
        })
    }
}

fn input_of(subject: &Subject) -> Result<SampleInput<'_>> {
    subject.check_grids()?;
    Ok(SampleInput::new(
        subject.grid().expect("checked").clone(),
        subject.labels.first(),
    ))
}

/// Iterator over augmented samples (see [`Pipeline::samples`]).
pub struct Samples<'a> {
    pipeline: Pipeline,
    exec: &'a Executor,
    subject: &'a Subject,
    input: SampleInput<'a>,
    next: u64,
}

impl Samples<'_> {
    /// The plan of sample `index` (cheap: parameters only).
    pub fn plan(&self, index: u64) -> Result<Plan> {
        self.pipeline.plan(&self.input, index)
    }
}

impl Iterator for Samples<'_> {
    type Item = Result<(Subject, Plan)>;

    fn next(&mut self) -> Option<Self::Item> {
        let i = self.next;
        self.next += 1;
        Some(
            self.pipeline
                .plan(&self.input, i)
                .and_then(|plan| Ok((self.exec.apply(self.subject, &plan.transforms)?, plan))),
        )
    }
}

/// The output file name of an input: its own name when voxaug writes that format (`.nii`, `.nii.gz`,
/// `.nrrd`), else its stem with `.nii.gz` (DICOM folders and files, Analyze/NIfTI pairs, `.nhdr`).
pub fn output_name(input: &Path) -> Result<String> {
    let name = input
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a file or folder name", input.display())))?
        .to_string_lossy()
        .into_owned();
    if io::output_format(Path::new(&name), None).is_ok() {
        return Ok(name);
    }
    let lower = name.to_ascii_lowercase();
    let stem = [
        ".hdr.gz", ".img.gz", ".hdr", ".img", ".nhdr", ".dcm.gz", ".dcm", ".gz",
    ]
    .iter()
    .find(|e| lower.ends_with(*e))
    .map(|e| &name[..name.len() - e.len()])
    .unwrap_or(&name);
    Ok(format!("{stem}.nii.gz"))
}

/// Output file names of the inputs (images then labels), refusing two inputs that would share one.
pub fn output_names(inputs: &[PathBuf]) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for p in inputs {
        let n = output_name(p)?;
        if names.contains(&n) {
            return Err(Error::invalid(format!(
                "two inputs share the file name {n}; their outputs would collide"
            )));
        }
        names.push(n);
    }
    Ok(names)
}

/// Output paths of the inputs in folder `out`, refusing collisions with an input and with each other.
pub fn output_paths(inputs: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let input_set: Vec<PathBuf> = inputs.iter().map(|p| canon(p)).collect();
    let names = output_names(inputs)?;
    let mut outs = Vec::with_capacity(names.len());
    for name in names {
        let o = out.join(&name);
        if input_set.contains(&canon(&o)) {
            return Err(Error::invalid(format!(
                "output {} would overwrite an input; choose another --out folder",
                o.display()
            )));
        }
        outs.push(o);
    }
    Ok(outs)
}

/// Reads a subject from image and label files (at least one of them).
pub fn read_subject(images: &[PathBuf], labels: &[PathBuf]) -> Result<Subject> {
    if images.is_empty() && labels.is_empty() {
        return Err(Error::invalid("give at least one --image or --label"));
    }
    let read = |ps: &[PathBuf], kind| -> Result<Vec<Volume>> {
        ps.iter().map(|p| io::read_volume(p, kind)).collect()
    };
    Subject::new(read(images, Kind::Image)?, read(labels, Kind::Label)?)
}

/// Writes one augmented sample into `dir` (created): each volume under its name, then `plan.json`.
pub fn write_sample(dir: &Path, sample: &Subject, names: &[String], plan: &Plan) -> Result<()> {
    io::create_dir(dir)?;
    for (v, name) in sample.images.iter().chain(&sample.labels).zip(names) {
        io::write_volume(dir.join(name), v)?;
    }
    io::write_atomic(&dir.join("plan.json"), plan.to_json().as_bytes())
}

/// What [`augment_to_dir`] did: sample folders written, wall time and time spent augmenting.
#[derive(Clone, Debug)]
pub struct AugmentReport {
    /// `out/0000`, `out/0001`, ... in sample order.
    pub dirs: Vec<PathBuf>,
    /// Wall-clock seconds, reading excluded.
    pub seconds: f64,
    /// Seconds spent in the executor.
    pub compute_seconds: f64,
}

/// What `augment_to_dir` does with an output folder that already holds samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputMode {
    /// Refuse a folder that holds samples or the record of an earlier run (the default).
    #[default]
    New,
    /// Delete the earlier run's samples and record first.
    Overwrite,
    /// Keep the earlier run's complete samples and compute the missing ones; the folder's record must
    /// name the same seed, pipeline and inputs.
    Resume,
}

/// Name of the record of a run (seed, pipeline, inputs, sample count) in an augment output folder.
pub const RUN_RECORD: &str = "voxaug-run.json";
/// Name of the lock file held while a run writes into an output folder.
pub const LOCK_FILE: &str = ".voxaug.lock";

/// An exclusive lock on an output folder: a file created with `O_EXCL`, removed when dropped.
struct FolderLock(PathBuf);

impl FolderLock {
    fn take(out: &Path) -> Result<FolderLock> {
        io::create_dir(out)?;
        let p = out.join(LOCK_FILE);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(mut f) => {
                use std::io::Write;
                let _ = writeln!(f, "{}", std::process::id());
                Ok(FolderLock(p))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::invalid(format!(
                "another voxaug run is writing into {} (lock file {}); wait for it, or delete the \
                 lock file if no run is active (a run that was killed leaves it behind)",
                out.display(),
                p.display()
            )))
            }
            Err(e) => Err(Error::io(&p, e)),
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Sample folders (`0000`, `0001`, ...) and unfinished temporary sample folders of an output folder.
fn existing_samples(out: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut done, mut partial) = (Vec::new(), Vec::new());
    let entries = match std::fs::read_dir(out) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((done, partial)),
        Err(e) => return Err(Error::io(out, e)),
    };
    for e in entries {
        let e = e.map_err(|e| Error::io(out, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.path().is_dir() {
            continue;
        }
        if name.len() >= 4 && name.bytes().all(|b| b.is_ascii_digit()) {
            done.push(e.path());
        } else if name.starts_with('.') && name.ends_with(".voxaug-tmp") {
            partial.push(e.path());
        }
    }
    done.sort();
    Ok((done, partial))
}

/// `voxaug augment`: `n` samples of `pipeline` with seed `seed` written as `out/0000/<input names>` +
/// `plan.json`, ... Every plan is sampled (and checked) and every output path checked before anything
/// is written; samples go to the executor `batch` at a time while a second thread compresses and
/// writes the previous ones. Each sample folder is written under a temporary name and renamed when
/// complete, so a folder `0003` is always a whole sample; the output folder is locked for the run and
/// records the run in [`RUN_RECORD`]; `mode` says what happens to samples of an earlier run.
/// `progress(done)` is called after each written sample.
#[allow(clippy::too_many_arguments)]
pub fn augment_to_dir(
    pipeline: &Pipeline,
    seed: u64,
    exec: &Executor,
    subject: &Subject,
    inputs: &[PathBuf],
    out: &Path,
    n: u64,
    batch: usize,
    mode: OutputMode,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<AugmentReport> {
    let names = output_names(inputs)?;
    if names.len() != subject.images.len() + subject.labels.len() {
        return Err(Error::invalid(format!(
            "{} input paths for {} volumes",
            names.len(),
            subject.images.len() + subject.labels.len()
        )));
    }
    let samples = pipeline.samples(exec, subject, seed)?;
    let plans: Vec<Plan> = (0..n).map(|i| samples.plan(i)).collect::<Result<_>>()?;
    let dirs: Vec<PathBuf> = (0..n).map(|i| out.join(format!("{i:04}"))).collect();
    for d in &dirs {
        output_paths(inputs, d)?;
    }
    let _lock = FolderLock::take(out)?;
    let record = serde_json::json!({
        "seed": seed,
        "pipeline": serde_json::from_str::<serde_json::Value>(&pipeline.to_json()).expect("valid JSON"),
        "inputs": names,
    });
    let record_path = out.join(RUN_RECORD);
    let (existing, partial) = existing_samples(out)?;
    for p in &partial {
        std::fs::remove_dir_all(p).map_err(|e| Error::io(p, e))?;
    }
    match mode {
        OutputMode::New => {
            if !existing.is_empty() || record_path.exists() {
                return Err(Error::invalid(format!(
                    "{} already holds samples of an earlier run; pass --overwrite to replace them or \
                     --resume to complete that run (or choose another --out)",
                    out.display()
                )));
            }
        }
        OutputMode::Overwrite => {
            for d in &existing {
                std::fs::remove_dir_all(d).map_err(|e| Error::io(d, e))?;
            }
        }
        OutputMode::Resume => {
            let old: Option<serde_json::Value> = match std::fs::read_to_string(&record_path) {
                Ok(t) => serde_json::from_str(&t).ok(),
                Err(_) => None,
            };
            match old {
                Some(o) if o == record => {}
                Some(_) => {
                    return Err(Error::invalid(format!(
                        "{}: --resume needs the same seed, pipeline and inputs as the earlier run \
                         ({RUN_RECORD} differs); use --overwrite to start again",
                        out.display()
                    )))
                }
                None if existing.is_empty() => {}
                None => {
                    return Err(Error::invalid(format!(
                        "{}: holds samples but no {RUN_RECORD}, so --resume cannot check them; use \
                         --overwrite",
                        out.display()
                    )))
                }
            }
        }
    }
    let text = serde_json::to_string_pretty(&record).expect("serialisable");
    io::write_atomic(&record_path, text.as_bytes())?;
    let todo: Vec<usize> = (0..dirs.len()).filter(|&i| !dirs[i].is_dir()).collect();
    let t0 = std::time::Instant::now();
    let mut compute = 0.0f64;
    let already = (dirs.len() - todo.len()) as u64;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Subject)>(1);
        let (names, dirs, plans) = (&names, &dirs, &plans);
        let writer = scope.spawn(move || -> Result<()> {
            let mut written = already;
            for (i, s) in rx {
                let tmp = tempfile::Builder::new()
                    .prefix(&format!(".{i:04}."))
                    .suffix(".voxaug-tmp")
                    .tempdir_in(out)
                    .map_err(|e| Error::io(out, e))?;
                write_sample(tmp.path(), &s, names, &plans[i])?;
                let tmp = tmp.keep();
                std::fs::rename(&tmp, &dirs[i]).map_err(|e| Error::io(&dirs[i], e))?;
                written += 1;
                progress(written);
            }
            Ok(())
        });
        let mut failed = None;
        'batches: for chunk in todo.chunks(batch.max(1)) {
            let c0 = std::time::Instant::now();
            let ts: Vec<Vec<Transform>> =
                chunk.iter().map(|&i| plans[i].transforms.clone()).collect();
            let results = exec.apply_batch(subject, &ts);
            compute += c0.elapsed().as_secs_f64();
            match results {
                Ok(r) => {
                    for (&i, result) in chunk.iter().zip(r) {
                        if tx.send((i, result)).is_err() {
                            break 'batches;
                        }
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| Error::invalid("the writer thread panicked"))?;
        match failed {
            Some(e) => Err(e),
            None => written,
        }
    })?;
    Ok(AugmentReport {
        dirs,
        seconds: t0.elapsed().as_secs_f64(),
        compute_seconds: compute,
    })
}
