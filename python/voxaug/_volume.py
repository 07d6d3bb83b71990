"""Volumes (a 3D array on a grid in world millimetres) and subjects (named volumes on one grid)."""
import os
from collections.abc import Mapping

import numpy as np

from . import _voxaug
from ._errors import VoxaugValueError

_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
_KINDS = ("image", "label")


def _label_dtype(a):
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo < 0:
        if lo >= -128 and hi <= 127:
            return "int8"
        if lo >= -32768 and hi <= 32767:
            return "int16"
        return "int32"
    if hi <= 255:
        return "uint8"
    if hi <= 65535:
        return "uint16"
    return "uint32"


class Volume:
    """A 3D volume: ``array`` indexed ``[i, j, k]`` (like nibabel), ``affine`` (4x4 float64, voxel ->
    RAS+ mm), ``kind`` (``"image"``: intensities, interpolated; ``"label"``: a label map, nearest only)
    and ``dtype`` (the voxel type it is stored with on disk, a numpy dtype name).

    Images hold a float32 array; label maps their own integer dtype. Building a Volume copies only when
    the array must change type (an image that is not float32, a float label map); any memory order is
    accepted. A Volume entering a transform is copied once into voxaug's buffer; results are handed back
    without a copy (images: float32 arrays in Fortran order over voxaug's buffer); once freed, such a
    buffer serves voxaug's next output of its size.
    """

    __slots__ = ("array", "affine", "kind", "dtype")

    def __init__(self, array, affine=None, kind="image", dtype=None):
        if kind not in _KINDS:
            raise VoxaugValueError(f'kind must be "image" or "label", got {kind!r}')
        if type(array).__module__.split(".")[0] == "torch":
            array = array.detach().cpu().numpy()  # a tensor on any device, or one that requires grad
        a = np.asarray(array)
        if a.ndim != 3:
            raise VoxaugValueError(f"a volume is 3D; got an array of shape {a.shape} (take one frame or channel)")
        if 0 in a.shape:
            raise VoxaugValueError(f"a volume needs at least one voxel per axis; got shape {a.shape}")
        if a.dtype.kind not in "biuf":
            raise VoxaugValueError(f"voxel type {a.dtype} is not numeric")
        if affine is None:
            affine = np.eye(4)
        aff = np.array(affine, dtype=np.float64)
        if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
            raise VoxaugValueError(f"affine must be a finite 4x4 matrix, got shape {aff.shape}")
        if kind == "image":
            if dtype is None:
                dtype = a.dtype.name if a.dtype.name in _DTYPES and a.dtype.kind != "f" else "float32"
            if a.dtype.kind == "b":
                a = a.astype(np.uint8)
            a = a.astype(np.float32, copy=False)
        else:
            if a.dtype.kind == "f":
                if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                    raise VoxaugValueError("label map contains non-integer or non-finite values; label maps hold integer labels")
                dtype = dtype or _label_dtype(a)
                a = a.astype(dtype)
            else:
                if a.dtype.kind == "b":
                    a = a.astype(np.uint8)
                dtype = dtype or (a.dtype.name if a.dtype.name in _DTYPES else _label_dtype(a))
                if a.dtype.name != dtype:
                    a = a.astype(dtype)
        if dtype not in _DTYPES:
            raise VoxaugValueError(f"dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
        self.array = a
        self.affine = aff
        self.kind = kind
        self.dtype = dtype

    @classmethod
    def _from_native(cls, t):
        array, affine, kind, dtype = t
        v = cls.__new__(cls)
        v.array = array
        v.affine = np.array(affine, dtype=np.float64)
        v.kind = kind
        v.dtype = dtype
        return v

    def _to_native(self):
        a = self.array
        if self.kind == "image" or a.dtype.name not in _DTYPES[:6]:
            a = np.asarray(a, dtype=np.float32)
        return (a, self.affine.tolist(), self.kind, self.dtype)

    @property
    def shape(self):
        """Voxels per axis ``(i, j, k)``."""
        return tuple(self.array.shape)

    @property
    def spacing(self):
        """Voxel size in mm per axis (column norms of the affine)."""
        return tuple(float(x) for x in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def origin(self):
        """World position (RAS+ mm) of voxel (0, 0, 0)."""
        return tuple(float(x) for x in self.affine[:3, 3])

    def __repr__(self):
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        return f"Volume(kind={self.kind!r}, shape={self.shape}, spacing=({sp}) mm, dtype={self.dtype!r})"


def read(path, kind="image"):
    """Reads a volume from any format voxaug reads (NIfTI-1/2, Analyze, NRRD, a DICOM file or series
    folder), detected by content. ``kind="label"`` reads a label map (integer values)."""
    if kind not in _KINDS:
        raise VoxaugValueError(f'kind must be "image" or "label", got {kind!r}')
    return Volume._from_native(_voxaug.read(os.fspath(path), kind))


def write(path, volume):
    """Writes a volume as NIfTI (``.nii``, ``.nii.gz``) or NRRD (``.nrrd``), by extension, atomically
    (never a partial file). Label maps keep their integer type; images keep theirs while values fit."""
    if not isinstance(volume, Volume):
        raise VoxaugValueError(f"write takes a voxaug.Volume, got {type(volume).__name__}")
    _voxaug.write(os.fspath(path), volume._to_native())


class Subject(Mapping):
    """Named volumes: ``Subject(t1=t1, seg=seg)`` or ``Subject({"t1": t1})``. Names are kept; each
    volume's kind says whether it is an image or a label map. Members usually share one grid; members
    on different grids are accepted, and a pipeline applied to them must start its spatial transforms
    with ``{"type": "resample_to", "reference": "<member name>"}`` (TorchIO's ``Resample("t1")``)."""

    def __init__(self, volumes=None, **kwargs):
        items = dict(volumes or {})
        items.update(kwargs)
        if not items:
            raise VoxaugValueError("a subject needs at least one volume")
        for name, v in items.items():
            if not isinstance(v, Volume):
                raise VoxaugValueError(f"subject member {name!r} is a {type(v).__name__}, not a voxaug.Volume")
            if not isinstance(name, str) or not name:
                raise VoxaugValueError(f"subject member names must be non-empty strings, got {name!r}")
        self._volumes = items

    def _mismatch(self):
        """The first member not on the first member's grid, as (first name, its name, what differs)."""
        first_name, first = next(iter(self._volumes.items()))
        for name, v in self._volumes.items():
            if v.shape != first.shape:
                return first_name, name, f"shapes {first.shape} and {v.shape}"
            scale = max(1.0, float(np.abs(first.affine).max()))
            if not np.allclose(v.affine, first.affine, rtol=0, atol=1e-4 * scale):
                return first_name, name, "affines"
        return None

    def same_grid(self):
        """True when every member is on the first member's grid."""
        return self._mismatch() is None

    def _check_grid(self):
        m = self._mismatch()
        if m is not None:
            raise VoxaugValueError(
                f"subject members {m[0]!r} and {m[1]!r} have different {m[2]}; resample them onto one grid "
                f"first (a pipeline starting with {{\"type\": \"resample_to\", \"reference\": \"{m[0]}\"}})")

    def __getitem__(self, name):
        return self._volumes[name]

    def __getattr__(self, name):
        # Members by attribute, as in TorchIO (``subject.t1``); methods and properties come first.
        vols = self.__dict__.get("_volumes")
        if vols is not None and name in vols:
            return vols[name]
        raise AttributeError(f"Subject has no member or attribute {name!r} (members: {', '.join(vols or [])})")

    def __iter__(self):
        return iter(self._volumes)

    def __len__(self):
        return len(self._volumes)

    @property
    def shape(self):
        """The common grid's shape (an error when members are on different grids)."""
        self._check_grid()
        return next(iter(self._volumes.values())).shape

    @property
    def affine(self):
        """The common grid's affine (an error when members are on different grids)."""
        self._check_grid()
        return next(iter(self._volumes.values())).affine

    def images(self):
        """Names of the images, in order."""
        return [n for n, v in self._volumes.items() if v.kind == "image"]

    def labels(self):
        """Names of the label maps, in order."""
        return [n for n, v in self._volumes.items() if v.kind == "label"]

    def __repr__(self):
        inner = ", ".join(f"{n}={v!r}" for n, v in self._volumes.items())
        return f"Subject({inner})"
