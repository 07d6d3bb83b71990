//! Runs over many samples of one subject: in memory (`voxaug augment --no-write`) or into an output
//! folder (its lock, its run record for `--resume`, complete sample folders only), batch after batch
//! with the next batch submitted before the last one is read back.

use super::*;

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
                let tmp = crate::io::usual_mode(&mut tempfile::Builder::new(), true)
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
