//! Python <-> voxaug conversions: volumes as `(array, affine, kind, dtype)` tuples, errors as the
//! exception classes of `voxaug._errors`.
//!
//! Copies: a volume entering voxaug is copied once into voxaug's buffer (in i-fastest order; images
//! float32, label maps in their integer type); volumes leaving voxaug are handed to numpy without a copy
//! (Fortran-ordered arrays over voxaug's buffers, float32 images, label maps in their integer type).

use ndarray::{ArrayView, ArrayView3, ShapeBuilder};
use numpy::{PyArray3, PyReadonlyArray3};
use pyo3::prelude::*;
use pyo3::types::PyAnyMethods;
use voxaug::{DType, Error, Grid, Kind, Volume, Voxels};

/// A volume as Python sees it: `(array, affine 4x4, kind, dtype name)`. Arrays are float32 (images) or
/// the label map's integer type (the Python half converts).
pub type PyVolume = (Py<PyAny>, [[f64; 4]; 4], String, String);

/// The exception for a voxaug error: a class of `voxaug._errors` (all subclasses of `VoxaugError`;
/// I/O failures are `OSError`s, a missing file a `FileNotFoundError`, a refused allocation a
/// `MemoryError`, bad input `ValueError`s).
pub fn to_py_error(e: Error) -> PyErr {
    let class = match &e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "VoxaugFileNotFoundError"
        }
        Error::Io { .. } => "VoxaugOSError",
        Error::Gpu(_) => "VoxaugRuntimeError",
        Error::OutOfMemory(_) => "VoxaugMemoryError",
        _ => "VoxaugValueError",
    };
    let msg = e.to_string();
    Python::attach(|py| {
        match py
            .import("voxaug._errors")
            .and_then(|m| m.getattr(class))
            .and_then(|c| c.call1((msg.clone(),)))
        {
            Ok(obj) => PyErr::from_value(obj),
            Err(err) => err,
        }
    })
}

pub fn dtype_of(name: &str) -> Result<DType, Error> {
    Ok(match name {
        "uint8" => DType::U8,
        "int8" => DType::I8,
        "uint16" => DType::U16,
        "int16" => DType::I16,
        "uint32" => DType::U32,
        "int32" => DType::I32,
        "float32" => DType::F32,
        "float64" => DType::F64,
        other => {
            return Err(Error::Unsupported(format!(
                "voxel type {other} (voxaug stores uint8, int8, uint16, int16, uint32, int32, float32, float64)"
            )))
        }
    })
}

/// The voxels of a 3D view in i-fastest (Fortran) order: a parallel copy into a recycled buffer when the
/// view is Fortran contiguous (no fresh pages to fault in for repeated writes), a parallel tiled
/// transpose when it is C contiguous (numpy's and torch's default order), else a strided walk.
pub fn fortran_vec<T: voxaug::Voxel>(a: ArrayView3<'_, T>) -> Vec<T> {
    use rayon::prelude::*;
    let shape = [a.shape()[0], a.shape()[1], a.shape()[2]];
    let t = a.reversed_axes();
    if let Some(s) = t.as_slice() {
        if let Ok(mut out) = voxaug::exec::cpu::alloc::output::<T>(s.len()) {
            out.par_chunks_mut(1 << 16)
                .zip(s.par_chunks(1 << 16))
                .for_each(|(d, s)| d.copy_from_slice(s));
            return out;
        }
        return s.to_vec();
    }
    let a = t.reversed_axes();
    if let Some(s) = a.as_slice() {
        if let Ok(mut out) = voxaug::exec::cpu::alloc::output::<T>(s.len()) {
            crate::transpose::c_to_fortran(s, shape, &mut out);
            return out;
        }
    }
    a.reversed_axes().iter().copied().collect()
}

/// Owns the voxels under the numpy arrays voxaug hands out. When the last array over them is freed,
/// the buffer is dropped and so goes to voxaug's recycling pool (a large voxel buffer does when
/// dropped; `voxaug::exec::cpu::alloc`), so the next output of that size reuses pages already faulted
/// in instead of asking the kernel for fresh ones: a Python loop of `Pipeline.apply` or of loader
/// batches runs like voxaug's own sampling loops.
#[pyclass(module = "voxaug")]
pub struct Buffer {
    _data: Voxels,
}

/// A numpy array of `shape` over `data` (no copy), owned by a [`Buffer`] that recycles `data` when
/// the array is freed.
pub fn owned_array<'py, T, D, Sh>(
    py: Python<'py>,
    shape: Sh,
    data: impl Into<voxaug::voxels::Buf<T>>,
) -> Bound<'py, numpy::PyArray<T, D>>
where
    T: voxaug::Voxel + numpy::Element,
    D: ndarray::Dimension,
    Sh: Into<ndarray::StrideShape<D>> + Clone,
{
    let data: voxaug::voxels::Buf<T> = data.into();
    ArrayView::from_shape(shape.clone(), &data[..]).expect("length matches the shape");
    let ptr = data.as_ptr();
    let owner = Bound::new(
        py,
        Buffer {
            _data: T::wrap(data),
        },
    )
    .expect("a Buffer object");
    // SAFETY: the shape was checked against `data` above; `data`'s buffer (heap or mapping) moved
    // into `owner` without its elements moving, and `owner`, the array's base from here on, leaves it alone until
    // numpy drops it after the array is gone.
    let view = unsafe { ArrayView::from_shape_ptr(shape, ptr) };
    unsafe { numpy::PyArray::borrow_from_array(&view, owner.into_any()) }
}

/// A Fortran-ordered numpy array over `data` (no copy; the buffer is recycled when the array is freed).
pub fn fortran_array<T: voxaug::Voxel + numpy::Element>(
    py: Python<'_>,
    shape: [usize; 3],
    data: impl Into<voxaug::voxels::Buf<T>>,
) -> Bound<'_, PyArray3<T>> {
    owned_array(py, (shape[0], shape[1], shape[2]).f(), data)
}

/// A Python volume tuple to a voxaug volume (checks shape, affine, values). The copy and the checks
/// run without the GIL on this process's pool ([`crate::pool`]): never on rayon's global pool, whose
/// threads a forked child (a DataLoader worker) does not have.
pub fn volume_from_py(v: PyVolume) -> PyResult<Volume> {
    let (array, affine, kind, dtype) = v;
    let kind = match kind.as_str() {
        "image" => Kind::Image,
        "label" => Kind::Label,
        other => {
            return Err(to_py_error(Error::InvalidInput(format!(
                "kind must be \"image\" or \"label\", got {other:?}"
            ))))
        }
    };
    let dtype = dtype_of(&dtype).map_err(to_py_error)?;
    let build = |data: Voxels, shape: [usize; 3]| -> voxaug::Result<Volume> {
        let grid = Grid::new(shape, affine)?;
        let mut v = match data {
            Voxels::F32(d) => Volume::new(d.into_owned_vec(), grid, kind),
            d => Volume::from_voxels(d, grid, kind),
        }?;
        v.dtype = dtype;
        Ok(v)
    };
    Python::attach(|py| -> PyResult<Volume> {
        let array = array.bind(py);
        macro_rules! typed {
            ($t:ty) => {
                if let Ok(arr) = array.extract::<PyReadonlyArray3<'_, $t>>() {
                    let view = arr.as_array();
                    let shape = [view.shape()[0], view.shape()[1], view.shape()[2]];
                    return py
                        .detach(|| {
                            crate::pool().install(|| build(Voxels::from(fortran_vec(view)), shape))
                        })
                        .map_err(to_py_error);
                }
            };
        }
        typed!(f32);
        typed!(u8);
        typed!(i8);
        typed!(u16);
        typed!(i16);
        typed!(u32);
        typed!(i32);
        Err(to_py_error(Error::InvalidInput(
            "volume arrays must be 3D float32 or, for label maps, 3D integer arrays of at most 32 \
             bits (voxaug.Volume converts)"
                .into(),
        )))
    })
}

/// The voxels of a volume as a numpy array, without a copy: float32 for images, the label's integer
/// type in memory for label maps.
pub fn volume_array(py: Python<'_>, v: Volume) -> Bound<'_, PyAny> {
    let shape = v.grid.shape;
    voxaug::with_voxels!(v.data, d => fortran_array(py, shape, d).into_any())
}

/// A voxaug volume to the Python tuple.
pub fn volume_to_py(py: Python<'_>, v: Volume) -> PyResult<PyVolume> {
    let affine = v.grid.affine;
    let kind = match v.kind {
        Kind::Image => "image",
        Kind::Label => "label",
    }
    .to_string();
    let dtype = v.dtype.name().to_string();
    let arr = volume_array(py, v).unbind();
    Ok((arr, affine, kind, dtype))
}
