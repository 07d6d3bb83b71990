"""Rigid/affine registration (the same library call as ``voxaug register``)."""
import json

from . import _voxaug
from ._errors import VoxaugValueError
from ._volume import Volume


def register(fixed, moving, type="rigid", metric="mi", levels=(4, 2, 1), smooth=(2.0, 1.0, 0.0),
             init="geometry", iterations=200, seed=0, fixed_mask=None, device="cpu"):
    """Registers ``moving`` to ``fixed`` (voxaug.Volume images). Returns ``(result, resampled)``:
    ``result`` is the dict ``voxaug register`` writes as transform.json (``world_matrix`` maps a point of
    the fixed image's world, RAS mm, to the moving image's world; ``final_value``; per-level ``levels``;
    ``fixed_grid``), ``resampled`` the moving image on the fixed grid. ``type``: rigid or affine;
    ``metric``: mi, mse or ncc; ``levels``: shrink factors, coarse to fine, with one Gaussian sigma in mm
    each in ``smooth``; ``init``: geometry, moments or none. ``device`` computes the metric (and resamples
    the result) on the CPU or the GPU."""
    for name, v in (("fixed", fixed), ("moving", moving)):
        if not isinstance(v, Volume):
            raise VoxaugValueError(f"register: {name} must be a voxaug.Volume, got {v.__class__.__name__}")
    if fixed_mask is not None and not isinstance(fixed_mask, Volume):
        raise VoxaugValueError("register: fixed_mask must be a voxaug.Volume or None")
    text, out = _voxaug.register(fixed._to_native(), moving._to_native(), str(type), str(metric),
                                 [int(x) for x in levels], [float(x) for x in smooth], str(init),
                                 int(iterations), int(seed),
                                 None if fixed_mask is None else fixed_mask._to_native(), str(device))
    return json.loads(text), Volume._from_native(out)

