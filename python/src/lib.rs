//! `voxaug._voxaug`: the native half of the Python package. Thin adapters from Python values to the
//! voxaug library; the Python half (`python/voxaug/`) holds the user-facing classes.
//!
//! Every call that does work releases the GIL (`Python::detach`) and runs on a rayon pool owned by the
//! current process: a process forked by a PyTorch `DataLoader` gets a fresh pool (and fresh GPU
//! executors) instead of inheriting threads that do not exist in the child.

mod convert;
mod loader;
mod transpose;

use convert::{to_py_error, volume_from_py, volume_to_py, PyVolume};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use voxaug::{io, Executor, Kind, Pipeline, Subject};

/// The rayon pool of this process (recreated after a fork).
pub(crate) fn pool() -> Arc<rayon::ThreadPool> {
    static POOL: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut g = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, pool)) = g.as_ref() {
        if *p == pid {
            return pool.clone();
        }
    }
    let threads = std::env::var("VOXAUG_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("voxaug-{i}"))
            .build()
            .expect("a rayon pool"),
    );
    // After a fork the parent's pool has no threads here: leak it rather than run its destructor.
    if let Some(old) = g.replace((pid, pool.clone())) {
        std::mem::forget(old);
    }
    pool
}

/// The executor for a device name (`auto`, `cpu`, `gpu`), opened once per process.
pub(crate) fn executor(device: &str) -> voxaug::Result<Executor> {
    type Cache = Option<(u32, HashMap<String, Executor>)>;
    static EXECS: Mutex<Cache> = Mutex::new(None);
    let pid = std::process::id();
    let mut g = EXECS.lock().unwrap_or_else(|e| e.into_inner());
    if g.as_ref().map(|(p, _)| *p) != Some(pid) {
        // Executors inherited through a fork (a GPU device whose driver threads stayed in the parent)
        // must not be dropped here: their destructors would wait on threads that do not exist.
        if let Some(old) = g.replace((pid, HashMap::new())) {
            std::mem::forget(old);
        }
    }
    let map = &mut g.as_mut().expect("set above").1;
    if let Some(e) = map.get(device) {
        return Ok(e.clone());
    }
    let (exec, note) = voxaug::exec::select(device, None)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    map.insert(device.to_string(), exec.clone());
    Ok(exec)
}

fn kind_of(kind: &str) -> PyResult<Kind> {
    match kind {
        "image" => Ok(Kind::Image),
        "label" => Ok(Kind::Label),
        other => Err(to_py_error(voxaug::Error::InvalidInput(format!(
            "kind must be \"image\" or \"label\", got {other:?}"
        )))),
    }
}

/// Reads a volume (any format voxaug reads, DICOM folders too): `(array, affine, kind, dtype)`.
#[pyfunction]
fn read(py: Python<'_>, path: PathBuf, kind: &str) -> PyResult<PyVolume> {
    let kind = kind_of(kind)?;
    let v = py
        .detach(|| pool().install(|| io::read_volume(&path, kind)))
        .map_err(to_py_error)?;
    volume_to_py(py, v)
}

/// Writes a volume (format from the extension: `.nii`, `.nii.gz`, `.nrrd`), atomically.
#[pyfunction]
fn write(py: Python<'_>, path: PathBuf, volume: PyVolume) -> PyResult<()> {
    let v = volume_from_py(volume)?;
    py.detach(|| {
        pool().install(|| {
            let r = io::write_volume(&path, &v);
            // The copy made for writing serves the next one.
            voxaug::exec::cpu::alloc::recycle(v.data);
            r
        })
    })
    .map_err(to_py_error)
}

/// Maps `volume` (on the grid `plan` produced from a volume on `shape`/`affine`) back onto that grid:
/// trilinear for images, nearest for label maps, `fill` where the plan saw nothing.
#[pyfunction]
#[pyo3(signature = (plan, volume, shape, affine, fill, device))]
fn invert(
    py: Python<'_>,
    plan: &str,
    volume: PyVolume,
    shape: [usize; 3],
    affine: [[f64; 4]; 4],
    fill: f64,
    device: &str,
) -> PyResult<PyVolume> {
    let plan = Pipeline::from_json(plan)
        .and_then(|p| p.fixed_transforms())
        .map_err(to_py_error)?;
    let v = volume_from_py(volume)?;
    let grid = voxaug::Grid::new(shape, affine).map_err(to_py_error)?;
    let exec = executor(device).map_err(to_py_error)?;
    let out = py
        .detach(|| {
            pool().install(|| {
                voxaug::invert::invert(&exec, &plan, &grid, &v, voxaug::Fill::Value(fill))
            })
        })
        .map_err(to_py_error)?;
    volume_to_py(py, out)
}

/// Registers `moving` to `fixed` (the library's `voxaug::register::register`); returns the result as
/// JSON (transform.json's contents) and the moving image resampled onto the fixed grid.
#[pyfunction]
#[pyo3(signature = (fixed, moving, kind, metric, levels, smooth, init, iterations, seed, fixed_mask, device))]
#[allow(clippy::too_many_arguments)]
fn register(
    py: Python<'_>,
    fixed: PyVolume,
    moving: PyVolume,
    kind: &str,
    metric: &str,
    levels: Vec<usize>,
    smooth: Vec<f64>,
    init: &str,
    iterations: usize,
    seed: u64,
    fixed_mask: Option<PyVolume>,
    device: &str,
) -> PyResult<(String, PyVolume)> {
    use voxaug::register::{Init, Metric, RegKind, RegisterOptions};
    let bad = |what: &str, v: &str, ok: &str| {
        to_py_error(voxaug::Error::InvalidInput(format!(
            "register: {what} {v:?} (expected {ok})"
        )))
    };
    let opts = RegisterOptions {
        kind: match kind {
            "rigid" => RegKind::Rigid,
            "affine" => RegKind::Affine,
            k => return Err(bad("type", k, "rigid or affine")),
        },
        metric: match metric {
            "mi" => Metric::Mi,
            "mse" => Metric::Mse,
            "ncc" => Metric::Ncc,
            m => return Err(bad("metric", m, "mi, mse or ncc")),
        },
        levels,
        smooth_mm: smooth,
        init: match init {
            "geometry" => Init::Geometry,
            "moments" => Init::Moments,
            "none" => Init::None,
            i => return Err(bad("init", i, "geometry, moments or none")),
        },
        iterations,
        seed,
        fixed_mask: fixed_mask.map(volume_from_py).transpose()?,
        ..Default::default()
    };
    let f = volume_from_py(fixed)?;
    let m = volume_from_py(moving)?;
    let exec = executor(device).map_err(to_py_error)?;
    let opts = RegisterOptions {
        executor: exec.clone(),
        ..opts
    };
    let (json, out) = py
        .detach(|| {
            pool().install(|| -> voxaug::Result<_> {
                let r = voxaug::register::register(&f, &m, &opts)?;
                let s = voxaug::Subject::new(vec![m], vec![])?;
                let mut out = exec.apply(&s, &[r.transform()])?;
                Ok((
                    serde_json::to_string(&r).expect("serialisable"),
                    out.images.remove(0),
                ))
            })
        })
        .map_err(to_py_error)?;
    Ok((json, volume_to_py(py, out)?))
}

/// Parses a pipeline; returns its canonical JSON (errors name the transform and field). File
/// references (`resample_to`, `transform`, `invert`) are relative to `base` (the pipeline file's
/// folder; the current directory when None).
#[pyfunction]
#[pyo3(signature = (text, base=None))]
fn parse_pipeline(text: &str, base: Option<PathBuf>) -> PyResult<(String, bool)> {
    let p = Pipeline::from_json_in(text, base.as_deref()).map_err(to_py_error)?;
    Ok((p.to_json(), p.is_fixed()))
}

/// Samples (or applies) a pipeline on one subject. `seed` None: the pipeline's; `index` None: the
/// pipeline's `sample` field or 0 (what `voxaug apply` does). Returns `(images, labels, plan JSON)`.
#[pyfunction]
#[pyo3(signature = (pipeline, images, labels, seed, index, device, names=None))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    pipeline: &str,
    images: Vec<PyVolume>,
    labels: Vec<PyVolume>,
    seed: Option<u64>,
    index: Option<u64>,
    device: &str,
    names: Option<Vec<String>>,
) -> PyResult<(Vec<PyVolume>, Vec<PyVolume>, String)> {
    let mut pipe = Pipeline::from_json(pipeline).map_err(to_py_error)?;
    if let Some(s) = seed {
        pipe.seed = s;
    }
    let index = index.or(pipe.sample).unwrap_or(0);
    let images = images
        .into_iter()
        .map(volume_from_py)
        .collect::<PyResult<Vec<_>>>()?;
    let labels = labels
        .into_iter()
        .map(volume_from_py)
        .collect::<PyResult<Vec<_>>>()?;
    let device = device.to_string();
    let (out, plan) = py
        .detach(|| {
            let subject = match names {
                Some(names) => Subject::named(images, labels, names)?,
                None => Subject::new(images, labels)?,
            };
            let exec = executor(&device)?;
            // The subject holds copies of the caller's arrays: the run may reuse them.
            pool().install(|| pipe.sample_owned(&exec, subject, index))
        })
        .map_err(to_py_error)?;
    let to_py = |vs: Vec<voxaug::Volume>| -> PyResult<Vec<PyVolume>> {
        vs.into_iter().map(|v| volume_to_py(py, v)).collect()
    };
    Ok((to_py(out.images)?, to_py(out.labels)?, plan.to_json()))
}

/// `voxaug augment` from Python (the Ray workers' job): writes `out/0000/...` exactly as the CLI does
/// and returns the sample folders.
#[pyfunction]
#[pyo3(signature = (pipeline, images, labels, out, n, seed, device, batch=4, mode="new"))]
#[allow(clippy::too_many_arguments)]
fn augment_files(
    py: Python<'_>,
    pipeline: &str,
    images: Vec<PathBuf>,
    labels: Vec<PathBuf>,
    out: PathBuf,
    n: u64,
    seed: Option<u64>,
    device: &str,
    batch: usize,
    mode: &str,
) -> PyResult<Vec<String>> {
    use voxaug::augment::OutputMode;
    let mode = match mode {
        "new" => OutputMode::New,
        "overwrite" => OutputMode::Overwrite,
        "resume" => OutputMode::Resume,
        other => {
            return Err(to_py_error(voxaug::Error::InvalidInput(format!(
                "mode must be \"new\", \"overwrite\" or \"resume\", got {other:?}"
            ))))
        }
    };
    let pipe = Pipeline::from_json(pipeline).map_err(to_py_error)?;
    let seed = seed.unwrap_or(pipe.seed);
    let device = device.to_string();
    let report = py
        .detach(|| {
            let exec = executor(&device)?;
            pool().install(|| {
                let (subject, layouts) =
                    voxaug::augment::read_subject_files(&images, &labels, None)?;
                let inputs: Vec<PathBuf> = images.iter().chain(&labels).cloned().collect();
                voxaug::augment::augment_to_dir(
                    &pipe,
                    seed,
                    &exec,
                    &subject,
                    &inputs,
                    &layouts,
                    &out,
                    n,
                    batch,
                    mode,
                    &|_| {},
                )
            })
        })
        .map_err(to_py_error)?;
    Ok((0..report.samples)
        .map(|i| voxaug::augment::sample_dir(&out, i).display().to_string())
        .collect())
}

/// Patch starts of a grid sampler: per axis, starts every `stride`, the last one shifted to end at the
/// border (the `voxaug patches` layout).
#[pyfunction]
fn grid_starts(
    shape: [usize; 3],
    size: [usize; 3],
    stride: [usize; 3],
) -> PyResult<Vec<[usize; 3]>> {
    voxaug::patches::grid_starts(shape, size, stride).map_err(to_py_error)
}

/// Stitches patch outputs back onto a grid (`crop`, `average`, `hann`), one channel.
#[pyclass(module = "voxaug._voxaug")]
struct Aggregator {
    inner: Option<voxaug::patches::Aggregator>,
    size: [usize; 3],
}

#[pymethods]
impl Aggregator {
    #[new]
    fn new(shape: [usize; 3], size: [usize; 3], stride: [usize; 3], mode: &str) -> PyResult<Self> {
        use voxaug::patches::Blend;
        let blend = match mode {
            "crop" => Blend::Crop,
            "average" => Blend::Average,
            "hann" => Blend::Hann,
            other => {
                return Err(to_py_error(voxaug::Error::InvalidInput(format!(
                    "unknown overlap mode `{other}` (expected crop, average or hann)"
                ))))
            }
        };
        let inner =
            voxaug::patches::Aggregator::new(shape, size, stride, blend).map_err(to_py_error)?;
        Ok(Aggregator {
            inner: Some(inner),
            size,
        })
    }

    /// Adds one patch output (float32, shape `size`, any memory order) at `start`.
    fn add(
        &mut self,
        py: Python<'_>,
        start: [usize; 3],
        data: numpy::PyReadonlyArray3<'_, f32>,
    ) -> PyResult<()> {
        let a = data.as_array();
        if a.shape() != self.size {
            return Err(to_py_error(voxaug::Error::InvalidInput(format!(
                "patch output of shape {:?}, the sampler's patches are {:?}",
                a.shape(),
                self.size
            ))));
        }
        let inner = self.inner.as_mut().ok_or_else(|| {
            to_py_error(voxaug::Error::InvalidInput(
                "this aggregator was already finished".into(),
            ))
        })?;
        py.detach(|| pool().install(|| inner.add(start, &convert::fortran_vec(a))))
            .map_err(to_py_error)
    }

    /// The stitched volume (float32, Fortran order, indexed `[i, j, k]`).
    fn finish<'py>(
        &mut self,
        py: Python<'py>,
        shape: [usize; 3],
    ) -> PyResult<Bound<'py, numpy::PyArray3<f32>>> {
        let inner = self.inner.take().ok_or_else(|| {
            to_py_error(voxaug::Error::InvalidInput(
                "this aggregator was already finished".into(),
            ))
        })?;
        let data = py
            .detach(|| pool().install(|| inner.finish()))
            .map_err(to_py_error)?;
        Ok(convert::fortran_array(py, shape, data))
    }
}

/// Number of worker threads of this process's pool.
#[pyfunction]
fn num_threads() -> usize {
    pool().current_num_threads()
}

/// Bytes voxaug's buffer pool holds now: buffers of freed outputs and batches kept for the next ones
/// of their size (at most 256 MiB; a diagnostic).
#[pyfunction]
fn _pool_bytes() -> usize {
    voxaug::exec::cpu::alloc::pool_bytes()
}

#[pymodule]
fn _voxaug(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(write, m)?)?;
    m.add_function(wrap_pyfunction!(parse_pipeline, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(invert, m)?)?;
    m.add_function(wrap_pyfunction!(register, m)?)?;
    m.add_function(wrap_pyfunction!(augment_files, m)?)?;
    m.add_function(wrap_pyfunction!(grid_starts, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_pool_bytes, m)?)?;
    m.add_class::<Aggregator>()?;
    m.add_class::<loader::NativeLoader>()?;
    m.add_class::<loader::Stream>()?;
    Ok(())
}
