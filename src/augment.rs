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
        let input = sample_input(subject)?;
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
            input: sample_input(subject)?,
            next: 0,
        })
    }
}

/// What plan sampling looks at for `subject`: its grid (the first label map's when members are on
/// different grids), its first label map, and its members' names and grids.
pub fn sample_input(subject: &Subject) -> Result<SampleInput<'_>> {
    if subject.images.is_empty() && subject.labels.is_empty() {
        return Err(Error::invalid("subject has no image and no label map"));
    }
    // Members on different grids (a pipeline that starts with resample_to): plans are sampled on the
    // first label map's grid, whose voxels foreground crops look at.
    let grid = match subject.labels.first() {
        Some(l) if !subject.same_grid() => l.grid.clone(),
        _ => subject.grid().expect("non-empty").clone(),
    };
    let vols = subject.images.iter().chain(&subject.labels);
    let members = subject
        .names
        .iter()
        .zip(vols)
        .map(|(n, v)| (n.clone(), v.grid.clone()))
        .collect();
    Ok(SampleInput::new(grid, subject.labels.first())
        .with_image(subject.images.first())
        .with_members(members))
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
    read_subject_series(images, labels, None)
}

/// [`read_subject`] with `series` picking the series of DICOM folder inputs.
pub fn read_subject_series(
    images: &[PathBuf],
    labels: &[PathBuf],
    series: Option<&str>,
) -> Result<Subject> {
    if images.is_empty() && labels.is_empty() {
        return Err(Error::invalid("give at least one --image or --label"));
    }
    Ok(read_subject_files(images, labels, series)?.0)
}

/// [`read_subject_series`] that also returns each input's channel layout: a multi-channel image file
/// (see [`io::read_channels`]) is one member of several image channels sharing its name, written
/// back in the same layout by [`write_outputs`].
pub fn read_subject_files(
    images: &[PathBuf],
    labels: &[PathBuf],
    series: Option<&str>,
) -> Result<(Subject, Vec<Option<io::ChannelLayout>>)> {
    if images.is_empty() && labels.is_empty() {
        return Err(Error::invalid("give at least one --image or --label"));
    }
    use rayon::prelude::*;
    let files: Vec<(&PathBuf, Kind)> = (images.iter().map(|p| (p, Kind::Image)))
        .chain(labels.iter().map(|p| (p, Kind::Label)))
        .collect();
    // The files are read in parallel (each also splits its own uncompressed read); the first error
    // in argument order is reported.
    let read: Vec<Result<_>> = files
        .par_iter()
        .map(|&(p, kind)| Ok((io::read_channels(p, kind, series)?, member_name(p)?)))
        .collect();
    let (mut imgs, mut labs, mut names, mut layouts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (r, (_, kind)) in read.into_iter().zip(&files) {
        let ((vols, layout), name) = r?;
        names.extend(std::iter::repeat_n(name, vols.len()));
        layouts.push(layout);
        match kind {
            Kind::Image => imgs.extend(vols),
            Kind::Label => labs.extend(vols),
        }
    }
    Ok((Subject::named(imgs, labs, names)?, layouts))
}

/// The volumes of each member of a subject, as index ranges over images then labels: the channels of
/// a multi-channel member (consecutive images sharing a name) together, every other volume alone.
pub fn member_ranges(subject: &Subject) -> Vec<std::ops::Range<usize>> {
    let n = subject.images.len() + subject.labels.len();
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for i in 0..n {
        let joins = i < subject.images.len()
            && i > 0
            && subject.names.len() == n
            && subject.names[i] == subject.names[i - 1];
        match out.last_mut() {
            Some(r) if joins => r.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// Writes each member of `sample` to its path (one path per member, in order): a multi-channel member
/// as one file in its input's layout (`layouts[i]`; dim 4 when absent).
pub fn write_outputs(
    paths: &[PathBuf],
    sample: &Subject,
    layouts: &[Option<io::ChannelLayout>],
) -> Result<()> {
    let vols: Vec<&Volume> = sample.images.iter().chain(&sample.labels).collect();
    let ranges = member_ranges(sample);
    if ranges.len() != paths.len() {
        return Err(Error::invalid(format!(
            "{} output paths for {} members",
            paths.len(),
            ranges.len()
        )));
    }
    // Each file on its own thread (a buffered write is one thread's copy into the page cache); the
    // first error in member order is reported, each file is complete or absent.
    use rayon::prelude::*;
    let jobs: Vec<_> = ranges.into_iter().zip(paths).enumerate().collect();
    let done: Vec<Result<()>> = jobs
        .into_par_iter()
        .map(|(i, (r, p))| {
            let layout = layouts.get(i).copied().flatten();
            if r.len() == 1 && layout.is_none() {
                io::write_volume(p, vols[r.start])
            } else {
                let group: Vec<Volume> = vols[r].iter().map(|v| (*v).clone()).collect();
                io::write_channels(p, &group, layout)
            }
        })
        .collect();
    done.into_iter().collect()
}

/// The member name of an input file: its output file name without the extension (`t1.nii.gz` ->
/// `t1`, a DICOM folder `ct/` -> `ct`); a pipeline's `resample_to` may name it as its reference.
pub fn member_name(input: &Path) -> Result<String> {
    let name = output_name(input)?;
    let lower = name.to_ascii_lowercase();
    Ok([".nii.gz", ".nii", ".nrrd"]
        .iter()
        .find(|e| lower.ends_with(*e))
        .map(|e| name[..name.len() - e.len()].to_string())
        .unwrap_or(name))
}

/// Writes one augmented sample into `dir` (created): each volume under its name, then `plan.json`.
/// Multi-channel members are written as one file each, in their input's layout (`layouts`, one per
/// member; empty: dim 4).
pub fn write_sample(
    dir: &Path,
    sample: &Subject,
    names: &[String],
    layouts: &[Option<io::ChannelLayout>],
    plan: &Plan,
) -> Result<()> {
    io::create_dir(dir)?;
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    write_outputs(&paths, sample, layouts)?;
    io::write_atomic(&dir.join("plan.json"), plan.to_json().as_bytes())
}

/// The folder of sample `index` in an augment output folder: `out/0000`, `out/0001`, ...
pub fn sample_dir(out: &Path, index: u64) -> PathBuf {
    out.join(format!("{index:04}"))
}

/// What [`augment_to_dir`] did: sample folders written, wall time and time spent augmenting.
#[derive(Clone, Debug)]
pub struct AugmentReport {
    /// Samples in the folder (`sample_dir(out, 0..samples)`), computed now or by an earlier run that
    /// this one resumed.
    pub samples: u64,
    /// Samples computed by this run.
    pub computed: u64,
    /// Wall-clock seconds, reading excluded.
    pub seconds: f64,
    /// Seconds spent in the executor.
    pub compute_seconds: f64,
}

/// Computes samples `0 .. n` of `seed` in batches of `batch` executor calls and discards them (their
/// buffers serve the next samples): the throughput a training loop that consumes samples in memory
/// sees (`voxaug augment --no-write`). Nothing is read or written; `seconds` is planning and compute.
pub fn augment_in_memory(
    pipeline: &Pipeline,
    seed: u64,
    exec: &Executor,
    subject: &Subject,
    n: u64,
    batch: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<AugmentReport> {
    let samples = pipeline.samples(exec, subject, seed)?;
    // Checked once and, on the GPU, uploaded once for every batch.
    let mut batches = exec.batches(subject);
    let t0 = std::time::Instant::now();
    let mut compute = 0.0f64;
    let mut planned = 0u64;
    let batch = batch.max(1) as u64;
    // Double-buffered: batch k + 1 is submitted before batch k is read back, so on the GPU the
    // device computes one while the host copies the other out (on the CPU a batch runs when it is
    // finished, one at a time).
    let mut in_flight: Option<(u64, crate::exec::Submitted)> = None;
    loop {
        let next = if planned < n {
            let chunk = planned..(planned + batch).min(n);
            let ts = chunk
                .clone()
                .map(|i| {
                    samples
                        .plan(i)
                        .map(|p| p.transforms)
                        .map_err(|e| e.context(&format!("sample {i}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let c0 = std::time::Instant::now();
            let submitted = batches.submit(&ts)?;
            compute += c0.elapsed().as_secs_f64();
            planned = chunk.end;
            Some((chunk.end, submitted))
        } else {
            None
        };
        if let Some((end, submitted)) = in_flight.take() {
            let c0 = std::time::Instant::now();
            let outs = batches.finish(submitted)?;
            compute += c0.elapsed().as_secs_f64();
            for o in outs {
                crate::exec::cpu::alloc::recycle_subject(o);
            }
            progress(end);
        }
        match next {
            Some(x) => in_flight = Some(x),
            None => break,
        }
    }
    Ok(AugmentReport {
        samples: n,
        computed: n,
        seconds: t0.elapsed().as_secs_f64(),
        compute_seconds: compute,
    })
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
        for attempt in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(FolderLock(p));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if attempt == 0 && stale_lock(&p) {
                        // Left by a run that was killed: its process is gone.
                        let _ = std::fs::remove_file(&p);
                        continue;
                    }
                    return Err(Error::invalid(format!(
                        "another voxaug run is writing into {} (lock file {}); wait for it, or \
                         delete the lock file if no run is active",
                        out.display(),
                        p.display()
                    )));
                }
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
        unreachable!("the second attempt returns")
    }
}

/// True when a lock file names a process that no longer runs (Linux: no `/proc/<pid>`). A lock whose
/// process cannot be checked (another system, an unreadable or empty file) is not stale.
fn stale_lock(p: &Path) -> bool {
    let pid = match std::fs::read_to_string(p)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
    {
        Some(pid) => pid,
        None => return false,
    };
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
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
/// `plan.json`, ... The pipeline is checked once against the input grid (sample 0's plan and the
/// output paths) before anything is written; after that plans are sampled as the run goes (`-n` of a
/// million starts writing at once and holds one batch of plans), each checked as it is sampled. A
/// failure at sample k stops the run with an error naming k; the folders of the samples before it stay
/// complete. Samples go to the executor `batch` at a time while a second thread compresses and writes
/// the previous ones. Each sample folder is written under a temporary name and renamed when complete,
/// so a folder `0003` is always a whole sample; the output folder is locked for the run and records the
/// run in [`RUN_RECORD`]; `mode` says what happens to samples of an earlier run. `progress(done)` is
/// called after each written sample.
#[allow(clippy::too_many_arguments)]
pub fn augment_to_dir(
    pipeline: &Pipeline,
    seed: u64,
    exec: &Executor,
    subject: &Subject,
    inputs: &[PathBuf],
    layouts: &[Option<io::ChannelLayout>],
    out: &Path,
    n: u64,
    batch: usize,
    mode: OutputMode,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<AugmentReport> {
    let names = output_names(inputs)?;
    let members = member_ranges(subject).len();
    if names.len() != members {
        return Err(Error::invalid(format!(
            "{} input paths for {members} members",
            names.len(),
        )));
    }
    let samples = pipeline.samples(exec, subject, seed)?;
    if n > 0 {
        samples.plan(0).map_err(|e| e.context("sample 0"))?;
        output_paths(inputs, &sample_dir(out, 0))?;
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
    let t0 = std::time::Instant::now();
    let mut compute = 0.0f64;
    let already = if mode == OutputMode::Resume {
        (0..n).filter(|&i| sample_dir(out, i).is_dir()).count() as u64
    } else {
        0
    };
    let mut todo = (0..n).filter(|&i| !sample_dir(out, i).is_dir());
    let batch = batch.max(1);
    let computed = std::thread::scope(|scope| -> Result<u64> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Subject, Plan)>(1);
        let names = &names;
        let writer = scope.spawn(move || -> Result<u64> {
            let mut written = already;
            for (i, s, plan) in rx {
                let dir = sample_dir(out, i);
                let tmp = tempfile::Builder::new()
                    .prefix(&format!(".{i:04}."))
                    .suffix(".voxaug-tmp")
                    .tempdir_in(out)
                    .map_err(|e| Error::io(out, e))?;
                write_sample(tmp.path(), &s, names, layouts, &plan)?;
                // Written: its buffers serve the next samples' outputs (no fresh pages per sample).
                crate::exec::cpu::alloc::recycle_subject(s);
                let tmp = tmp.keep();
                std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
                written += 1;
                progress(written);
            }
            Ok(written - already)
        });
        // Checked once and, on the GPU, uploaded once for every batch.
        let mut batches = exec.batches(subject);
        // A batch submitted and not yet read back: its sample indices, plans and transforms.
        type InFlight = (
            Vec<u64>,
            Vec<Plan>,
            Vec<Vec<Transform>>,
            crate::exec::Submitted,
        );
        // Names a failed batch's failing sample: one at a time finds it (only on failure).
        let name_failing = |chunk: &[u64], ts: &[Vec<Transform>], e: Error| {
            let k = chunk
                .iter()
                .zip(ts)
                .find(|(_, t)| exec.apply(subject, t).is_err())
                .map(|(&i, _)| i)
                .or(chunk.first().copied());
            match k {
                Some(k) => e.context(&format!("sample {k}")),
                None => e,
            }
        };
        // Reads a batch back and hands its samples to the writer: false when the writer stopped (its
        // error is reported below).
        let send = |batches: &mut crate::exec::Batches<'_>,
                    (chunk, plans, ts, sub): InFlight,
                    compute: &mut f64|
         -> Result<bool> {
            let c0 = std::time::Instant::now();
            let results = batches
                .finish(sub)
                .map_err(|e| name_failing(&chunk, &ts, e));
            *compute += c0.elapsed().as_secs_f64();
            for ((&i, result), plan) in chunk.iter().zip(results?).zip(plans) {
                if tx.send((i, result, plan)).is_err() {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        let failed = (|| -> Result<()> {
            let mut in_flight: Option<(InFlight, Option<Error>)> = None;
            loop {
                // The next batch is submitted before the one in flight is read back
                // (double-buffered on the GPU), unless that one ends at a failed plan.
                let stop = in_flight.as_ref().is_some_and(|(_, e)| e.is_some());
                let chunk: Vec<u64> = if stop {
                    Vec::new()
                } else {
                    todo.by_ref().take(batch).collect()
                };
                let next = if chunk.is_empty() {
                    None
                } else {
                    // Plans up to the first that fails: the samples before it are still computed.
                    let mut plans = Vec::with_capacity(chunk.len());
                    let mut plan_error = None;
                    for &i in &chunk {
                        match samples.plan(i) {
                            Ok(p) => plans.push(p),
                            Err(e) => {
                                plan_error = Some(e.context(&format!("sample {i}")));
                                break;
                            }
                        }
                    }
                    let chunk = chunk[..plans.len()].to_vec();
                    let ts: Vec<Vec<Transform>> =
                        plans.iter().map(|p| p.transforms.clone()).collect();
                    let c0 = std::time::Instant::now();
                    let submitted = batches.submit(&ts);
                    compute += c0.elapsed().as_secs_f64();
                    match submitted {
                        Ok(sub) => Some(((chunk, plans, ts, sub), plan_error)),
                        Err(e) => {
                            // The batch in flight comes first; then this batch's failing sample.
                            if let Some((prev, _)) = in_flight.take() {
                                if !send(&mut batches, prev, &mut compute)? {
                                    return Ok(());
                                }
                            }
                            return Err(name_failing(&chunk, &ts, e));
                        }
                    }
                };
                if let Some((prev, plan_error)) = in_flight.take() {
                    if !send(&mut batches, prev, &mut compute)? {
                        return Ok(());
                    }
                    if let Some(e) = plan_error {
                        return Err(e);
                    }
                }
                match next {
                    Some(x) => in_flight = Some(x),
                    None => return Ok(()),
                }
            }
        })();
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| Error::invalid("the writer thread panicked"))?;
        // A writer error comes first: it is why the computation stopped sending.
        let written = written?;
        failed.map(|()| written)
    })?;
    Ok(AugmentReport {
        samples: already + computed,
        computed,
        seconds: t0.elapsed().as_secs_f64(),
        compute_seconds: compute,
    })
}
