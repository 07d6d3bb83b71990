//! The loader's native half: a decoded-subject cache bounded in bytes, and per-epoch streams that
//! compute samples on Rust threads ahead of the consumer (a bounded prefetch window) and assemble
//! batches as C-ordered `(B, 1, X, Y, Z)` arrays. Which samples an epoch holds, in which order, is
//! decided by the Python half (`voxaug/_loader.py`); a job is `(subject, seed, sample index)` and its
//! result depends on nothing else.

use crate::convert::{to_py_error, volume_from_py, PyVolume};
use crate::{executor, pool};
use ndarray::{ArrayD, IxDyn};
use numpy::PyArrayDyn;
use pyo3::prelude::*;
use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use voxaug::{Error, Executor, Pipeline, Plan, Result, Subject, Volume, Voxel};

/// Image and label paths of one subject (cache key: the same files are decoded once).
type Key = (Vec<PathBuf>, Vec<PathBuf>);

#[derive(Default)]
struct CacheState {
    slots: HashMap<Key, Arc<Mutex<Option<Arc<Checked>>>>>,
    order: VecDeque<(Key, usize)>,
    bytes: usize,
}

/// A decoded subject and its images' largest |value| (checked once, not once per sample).
struct Checked {
    /// Shared so that the GPU can keep its volumes resident between samples
    /// (`Executor::apply_shared`).
    subject: Arc<Subject>,
    /// `voxaug::exec::largest_abs`: finite when every image voxel is.
    largest: f32,
}

impl Checked {
    fn new(subject: Subject) -> Checked {
        // Sequential (`largest_abs` is): this runs outside the process's pool (the global rayon
        // pool may belong to the parent of a forked DataLoader worker), once per decoded subject.
        let largest = voxaug::exec::largest_abs(&subject);
        Checked {
            subject: Arc::new(subject),
            largest,
        }
    }
}

/// Decoded subjects, least recently inserted evicted first once over `budget` bytes. One thread
/// decodes a given subject while the others wanting it wait for it.
struct Cache {
    budget: usize,
    /// Member names (images then labels), the same for every subject.
    names: Vec<String>,
    state: Mutex<CacheState>,
}

fn subject_bytes(s: &Subject) -> usize {
    s.images
        .iter()
        .chain(&s.labels)
        .map(|v| v.data.as_bytes().len())
        .sum()
}

impl Cache {
    fn get(&self, key: &Key) -> Result<Arc<Checked>> {
        let slot = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.slots.entry(key.clone()).or_default().clone()
        };
        let mut value = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = value.as_ref() {
            return Ok(s.clone());
        }
        // Read on this process's pool: the files of a subject are read in parallel, and the global
        // rayon pool may belong to the parent of a forked DataLoader worker (its threads do not exist
        // here: a parallel read on it would wait forever).
        let read = pool().install(|| voxaug::augment::read_subject(&key.0, &key.1));
        let read = read.and_then(|s| {
            if self.names.is_empty() {
                return Ok(s);
            }
            // One name per member: repeated over the channels of a multi-channel file.
            let ranges = voxaug::augment::member_ranges(&s);
            if ranges.len() != self.names.len() {
                return Err(Error::InvalidInput(format!(
                    "{} member names for {} members",
                    self.names.len(),
                    ranges.len()
                )));
            }
            let names = ranges
                .iter()
                .zip(&self.names)
                .flat_map(|(r, n)| std::iter::repeat_n(n.clone(), r.len()))
                .collect();
            Subject::named(s.images, s.labels, names)
        });
        let subject = match read {
            Ok(s) => Arc::new(Checked::new(s)),
            Err(e) => {
                drop(value);
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .slots
                    .remove(key);
                return Err(e);
            }
        };
        let bytes = subject_bytes(&subject.subject);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if bytes > self.budget {
            st.slots.remove(key);
            return Ok(subject);
        }
        *value = Some(subject.clone());
        st.order.push_back((key.clone(), bytes));
        st.bytes += bytes;
        while st.bytes > self.budget {
            let Some((old, b)) = st.order.pop_front() else {
                break;
            };
            st.slots.remove(&old);
            st.bytes -= b;
        }
        Ok(subject)
    }

    fn bytes(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

/// Default cache budget: a quarter of the machine's memory (1 GiB where it cannot be read).
fn default_budget() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map(|kb| kb * 1024);
    total.map(|b| b / 4).unwrap_or(1 << 30)
}

/// An in-memory subject from Python: `(images, labels)`.
type MemorySubject = (Vec<PyVolume>, Vec<PyVolume>);

/// Where a subject's volumes come from: files (decoded through the cache) or memory.
enum Source {
    Files(Key),
    Memory(Arc<Checked>),
}

/// Subjects, pipeline and cache of one `voxaug.Loader` in one process.
#[pyclass(module = "voxaug._voxaug")]
pub struct NativeLoader {
    pipeline: Arc<Pipeline>,
    subjects: Arc<Vec<Source>>,
    cache: Arc<Cache>,
    device: String,
    threads: usize,
}

#[pymethods]
impl NativeLoader {
    #[new]
    #[pyo3(signature = (pipeline, subjects, device, num_threads, cache_bytes=None, memory=None, names=None))]
    fn new(
        pipeline: &str,
        subjects: Vec<(Vec<PathBuf>, Vec<PathBuf>)>,
        device: &str,
        num_threads: usize,
        cache_bytes: Option<usize>,
        memory: Option<Vec<Option<MemorySubject>>>,
        names: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let pipeline = Pipeline::from_json(pipeline).map_err(to_py_error)?;
        let mut memory = memory.unwrap_or_default();
        memory.resize_with(subjects.len(), || None);
        let mut sources = Vec::with_capacity(subjects.len());
        for (n, ((images, labels), mem)) in subjects.into_iter().zip(memory).enumerate() {
            if let Some((mi, ml)) = mem {
                let conv = |vs: Vec<PyVolume>| -> PyResult<Vec<Volume>> {
                    vs.into_iter().map(volume_from_py).collect()
                };
                let s = match &names {
                    Some(names) => Subject::named(conv(mi)?, conv(ml)?, names.clone()),
                    None => Subject::new(conv(mi)?, conv(ml)?),
                }
                .map_err(to_py_error)?;
                sources.push(Source::Memory(Arc::new(Checked::new(s))));
                continue;
            }
            if images.is_empty() && labels.is_empty() {
                return Err(to_py_error(Error::InvalidInput(format!(
                    "subject {n} has no volume"
                ))));
            }
            sources.push(Source::Files((images, labels)));
        }
        Ok(NativeLoader {
            pipeline: Arc::new(pipeline),
            subjects: Arc::new(sources),
            cache: Arc::new(Cache {
                budget: cache_bytes.unwrap_or_else(default_budget),
                names: names.clone().unwrap_or_default(),
                state: Mutex::new(CacheState::default()),
            }),
            device: device.to_string(),
            threads: num_threads.max(1),
        })
    }

    /// Bytes of decoded subjects held in the cache.
    fn cached_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// The executor's name (`cpu (N threads)` or the GPU adapter).
    fn executor_name(&self, py: Python<'_>) -> PyResult<String> {
        let device = self.device.clone();
        py.detach(|| executor(&device).map(|e| e.name()))
            .map_err(to_py_error)
    }

    /// Starts computing `jobs` (`(subject, seed, sample index)`, in batch order) on this loader's
    /// threads, at most `prefetch` batches ahead of the consumer.
    fn epoch(
        &self,
        py: Python<'_>,
        jobs: Vec<(usize, u64, u64)>,
        batch_size: usize,
        prefetch: usize,
    ) -> PyResult<Stream> {
        if let Some((s, _, _)) = jobs.iter().find(|j| j.0 >= self.subjects.len()) {
            return Err(to_py_error(Error::InvalidInput(format!(
                "job for subject {s} of {}",
                self.subjects.len()
            ))));
        }
        let device = self.device.clone();
        let exec = py.detach(|| executor(&device)).map_err(to_py_error)?;
        let batch_size = batch_size.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(StreamState::default()),
            cv: Condvar::new(),
        });
        let ctx = Arc::new(Ctx {
            pipeline: self.pipeline.clone(),
            subjects: self.subjects.clone(),
            cache: self.cache.clone(),
            exec,
            jobs,
            batch_size,
            window: prefetch.max(1),
        });
        let workers = (0..self.threads.min(ctx.jobs.len().max(1)))
            .map(|n| {
                let (ctx, shared) = (ctx.clone(), shared.clone());
                std::thread::Builder::new()
                    .name(format!("voxaug-loader-{n}"))
                    .spawn(move || worker(&ctx, &shared))
                    .expect("a loader thread")
            })
            .collect();
        Ok(Stream {
            ctx,
            shared,
            workers,
            done: false,
            pid: std::process::id(),
        })
    }
}

struct Ctx {
    pipeline: Arc<Pipeline>,
    subjects: Arc<Vec<Source>>,
    cache: Arc<Cache>,
    exec: Executor,
    jobs: Vec<(usize, u64, u64)>,
    batch_size: usize,
    /// Batches that may be computed ahead of the one being consumed.
    window: usize,
}

type Sample = Result<(Subject, Plan)>;

#[derive(Default)]
struct StreamState {
    next_job: usize,
    consumed_batches: usize,
    results: HashMap<usize, Sample>,
    stop: bool,
}

struct Shared {
    state: Mutex<StreamState>,
    cv: Condvar,
}

fn compute(ctx: &Ctx, job: (usize, u64, u64)) -> Sample {
    let (s, seed, index) = job;
    let checked = match &ctx.subjects[s] {
        Source::Files(key) => ctx.cache.get(key)?,
        Source::Memory(subject) => subject.clone(),
    };
    let subject = &checked.subject;
    let mut pipe = (*ctx.pipeline).clone();
    pipe.seed = seed;
    let run = || {
        let plan = pipe.plan(&voxaug::augment::sample_input(subject)?, index)?;
        // A finite bound spares the per-sample scan; otherwise `apply` finds and names the voxels.
        let out = ctx
            .exec
            .apply_shared(subject, &plan.transforms, Some(checked.largest))?;
        Ok((out, plan))
    };
    match ctx.exec {
        // The GPU runs one sample at a time behind a lock: on the loader's own thread, so that a pool
        // worker waiting for it can never be handed another sample that waits for the same lock.
        Executor::Gpu(_) => run(),
        Executor::Cpu => pool().install(run),
    }
}

fn worker(ctx: &Ctx, shared: &Shared) {
    loop {
        let j = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if st.stop || st.next_job >= ctx.jobs.len() {
                    return;
                }
                let limit = (st.consumed_batches + ctx.window) * ctx.batch_size;
                if st.next_job < limit {
                    break;
                }
                st = shared.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.next_job += 1;
            st.next_job - 1
        };
        let r = compute(ctx, ctx.jobs[j]);
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.results.insert(j, r);
        shared.cv.notify_all();
    }
}

/// One epoch's samples, computed ahead on Rust threads; `next_batch` hands them out in order.
#[pyclass(module = "voxaug._voxaug")]
pub struct Stream {
    ctx: Arc<Ctx>,
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
    done: bool,
    /// The process that started the threads (a forked child must not join them).
    pid: u32,
}

impl Drop for Stream {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            std::mem::forget(std::mem::take(&mut self.workers));
            return;
        }
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.stop = true;
        }
        self.shared.cv.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// One assembled batch: per member a C-ordered `(B, 1, X, Y, Z)` array (as a boxed numpy maker).
struct Batch {
    images: Vec<Member>,
    labels: Vec<Member>,
    plans: Vec<String>,
}

enum Member {
    F32(ArrayD<f32>),
    U8(ArrayD<u8>),
    I8(ArrayD<i8>),
    U16(ArrayD<u16>),
    I16(ArrayD<i16>),
    U32(ArrayD<u32>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
}

impl Member {
    fn into_py(self, py: Python<'_>) -> Py<PyAny> {
        /// Over the batch's buffer, which goes back to voxaug's pool when the array is freed.
        fn recycled<T: Voxel + numpy::Element>(py: Python<'_>, a: ArrayD<T>) -> Py<PyAny> {
            let shape = IxDyn(a.shape());
            let (v, _) = a.into_raw_vec_and_offset();
            crate::convert::owned_array(py, shape, v)
                .into_any()
                .unbind()
        }
        match self {
            Member::F32(a) => recycled(py, a),
            Member::U8(a) => recycled(py, a),
            Member::I8(a) => recycled(py, a),
            Member::U16(a) => recycled(py, a),
            Member::I16(a) => recycled(py, a),
            Member::U32(a) => recycled(py, a),
            Member::I32(a) => recycled(py, a),
            Member::I64(a) => PyArrayDyn::from_owned_array(py, a).into_any().unbind(),
        }
    }
}

/// Stacks the volumes of one member (sample-major, `channels` per sample) into a C-ordered
/// `(B, C, X, Y, Z)` buffer: each volume transposed from voxaug's i-fastest order
/// ([`crate::transpose::fortran_to_c`]), volumes in parallel. `out` holds `srcs.len()` volumes of
/// `shape` (old values allowed: every voxel is written).
fn stack<T: Copy + Send + Sync + Default + 'static>(
    srcs: &[&[T]],
    channels: usize,
    shape: [usize; 3],
    mut out: Vec<T>,
) -> ArrayD<T> {
    let [nx, ny, nz] = shape;
    let n = nx * ny * nz;
    assert_eq!(out.len(), srcs.len() * n, "the batch buffer's size");
    out.par_chunks_mut(n.max(1))
        .zip(srcs.par_iter())
        .for_each(|(dst, src)| crate::transpose::fortran_to_c(src, shape, dst));
    let b = srcs.len() / channels;
    ArrayD::from_shape_vec(IxDyn(&[b, channels, nx, ny, nz]), out).expect("sizes match")
}

/// The typed voxels of every volume when they all hold `S`.
fn all_of<'a, S: Voxel>(vols: &[&'a Volume]) -> Option<Vec<&'a [S]>> {
    vols.iter().map(|v| S::slice(&v.data)).collect()
}

/// A member's batch in its voxels' own type: f32 images, label maps in their integer type (no
/// conversion, only the transpose). `vols` holds the `channels` volumes of each sample in turn.
fn member(vols: &[&Volume], channels: usize) -> Result<Member> {
    let shape = vols[0].grid.shape;
    let len = vols.len() * shape.iter().product::<usize>();
    macro_rules! typed {
        ($t:ty, $variant:ident) => {
            if let Some(s) = all_of::<$t>(vols) {
                // A buffer a freed batch gave back, if one of this size is in the pool.
                let out = voxaug::exec::cpu::alloc::output::<$t>(len)?;
                return Ok(Member::$variant(stack(&s, channels, shape, out)));
            }
        };
    }
    typed!(f32, F32);
    typed!(u8, U8);
    typed!(i8, I8);
    typed!(u16, U16);
    typed!(i16, I16);
    typed!(u32, U32);
    typed!(i32, I32);
    // Label maps of different integer types in one batch: int64 holds them all.
    let wide: Vec<Vec<i64>> = vols
        .iter()
        .map(|v| voxaug::with_voxels!(&v.data, d => d.iter().map(|x| x.to_f64() as i64).collect()))
        .collect();
    let refs: Vec<&[i64]> = wide.iter().map(|w| &w[..]).collect();
    Ok(Member::I64(stack(&refs, channels, shape, vec![0; len])))
}

fn assemble(samples: Vec<(Subject, Plan)>, first_job: usize, ctx: &Ctx) -> Result<Batch> {
    let shape = samples[0].0.grid().map(|g| g.shape);
    for (n, (s, _)) in samples.iter().enumerate() {
        if s.grid().map(|g| g.shape) != shape {
            let (subj, _, index) = ctx.jobs[first_job + n];
            return Err(Error::InvalidInput(format!(
                "the samples of one batch have different shapes: {:?} (first sample) and {:?} \
                 (subject {subj}, sample {index}); add a crop or pad to a fixed size to the \
                 pipeline (e.g. {{\"type\": \"center_crop\", \"size\": [128, 128, 128]}}) or use batch_size=1",
                shape.unwrap_or_default(),
                s.grid().map(|g| g.shape).unwrap_or_default()
            )));
        }
    }
    // Members: the channels of a multi-channel image together, every other volume alone.
    let ranges = voxaug::augment::member_ranges(&samples[0].0);
    for (n, (s, _)) in samples.iter().enumerate() {
        if voxaug::augment::member_ranges(s) != ranges {
            let (subj, _, _) = ctx.jobs[first_job + n];
            return Err(Error::InvalidInput(format!(
                "subject {subj} has another number of channels per member than the first subject \
                 of its batch; every subject needs the same channels"
            )));
        }
    }
    let n_img = samples[0].0.images.len();
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for r in ranges {
        let vols: Vec<&Volume> = samples
            .iter()
            .flat_map(|(s, _)| {
                let all: Vec<&Volume> = s.images.iter().chain(&s.labels).collect();
                all[r.clone()].to_vec()
            })
            .collect();
        let m = member(&vols, r.len())?;
        if r.start < n_img {
            images.push(m);
        } else {
            labels.push(m);
        }
    }
    let plans = samples.iter().map(|(_, p)| p.to_json()).collect();
    // Copied into the batch: the samples' buffers serve the next outputs.
    for (s, _) in samples {
        voxaug::exec::cpu::alloc::recycle_subject(s);
    }
    Ok(Batch {
        images,
        labels,
        plans,
    })
}

/// `(image arrays, label arrays, plan JSON texts)` of one batch.
type PyBatch = (Vec<Py<PyAny>>, Vec<Py<PyAny>>, Vec<String>);

#[pymethods]
impl Stream {
    /// The next batch, or None at the end of the epoch. Blocks (without the GIL) until its samples are
    /// computed.
    fn next_batch(&mut self, py: Python<'_>) -> PyResult<Option<PyBatch>> {
        if self.done {
            return Ok(None);
        }
        let ctx = self.ctx.clone();
        let shared = self.shared.clone();
        let batch = py.detach(|| -> Option<Result<Batch>> {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            let b = st.consumed_batches;
            let lo = b * ctx.batch_size;
            if lo >= ctx.jobs.len() {
                return None;
            }
            let hi = (lo + ctx.batch_size).min(ctx.jobs.len());
            while !(lo..hi).all(|j| st.results.contains_key(&j)) {
                st = shared.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            let samples: Result<Vec<(Subject, Plan)>> = (lo..hi)
                .map(|j| st.results.remove(&j).expect("present"))
                .collect();
            st.consumed_batches += 1;
            drop(st);
            shared.cv.notify_all();
            Some(samples.and_then(|s| pool().install(|| assemble(s, lo, &ctx))))
        });
        match batch {
            None => {
                self.done = true;
                Ok(None)
            }
            Some(Err(e)) => {
                self.done = true;
                Err(to_py_error(e))
            }
            Some(Ok(b)) => {
                let images = b.images.into_iter().map(|m| m.into_py(py)).collect();
                let labels = b.labels.into_iter().map(|m| m.into_py(py)).collect();
                Ok(Some((images, labels, b.plans)))
            }
        }
    }
}
