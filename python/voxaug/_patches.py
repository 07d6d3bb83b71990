"""Sliding-window inference: patches on a grid and their stitching (TorchIO's GridSampler and
GridAggregator, over voxaug's ``patches`` layout)."""
import numpy as np

from . import _voxaug
from ._errors import VoxaugValueError
from ._volume import Subject, Volume


def _three(v, what):
    t = (int(v),) * 3 if np.isscalar(v) else tuple(int(x) for x in v)
    if len(t) != 3:
        raise VoxaugValueError(f"{what} takes 1 or 3 integers, got {v!r}")
    return t


def _patch_volume(v, start, size):
    i, j, k = start
    a = v.array[i:i + size[0], j:j + size[1], k:k + size[2]]
    aff = v.affine.copy()
    aff[:3, 3] = v.affine[:3, :3] @ np.array(start, dtype=np.float64) + v.affine[:3, 3]
    out = Volume.__new__(Volume)
    out.array, out.affine, out.kind, out.dtype = a, aff, v.kind, v.dtype
    return out


class GridSampler:
    """Patches of ``patch_size`` covering a volume or subject, ``overlap`` voxels apart per axis (the
    last patch along an axis is shifted to end at the border). Iterating yields ``(patch, location)``:
    a Volume (or Subject) whose arrays are views of the input's and whose affine places it in the
    world, and ``location = [i0, j0, k0, i1, j1, k1]`` (TorchIO's convention)."""

    def __init__(self, volume_or_subject, patch_size, overlap=0):
        if isinstance(volume_or_subject, (Volume, Subject)):
            self.source = volume_or_subject
        elif isinstance(volume_or_subject, dict):
            self.source = Subject(volume_or_subject)
        else:
            raise VoxaugValueError(f"GridSampler takes a Volume or Subject, got {type(volume_or_subject).__name__}")
        self.shape = tuple(self.source.shape)
        self.patch_size = _three(patch_size, "patch_size")
        self.overlap = _three(overlap, "overlap")
        for a in range(3):
            if not 0 < self.patch_size[a] <= self.shape[a]:
                raise VoxaugValueError(
                    f"patch_size {self.patch_size} does not fit the volume's shape {self.shape}; pad the volume or "
                    "use a smaller patch")
            if not 0 <= self.overlap[a] < self.patch_size[a]:
                raise VoxaugValueError(f"overlap {self.overlap} must be >= 0 and smaller than patch_size {self.patch_size}")
        self.stride = tuple(p - o for p, o in zip(self.patch_size, self.overlap))
        self.starts = [tuple(s) for s in _voxaug.grid_starts(self.shape, self.patch_size, self.stride)]

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, n):
        start = self.starts[n]
        loc = np.array(list(start) + [s + p for s, p in zip(start, self.patch_size)], dtype=np.int64)
        if isinstance(self.source, Volume):
            return _patch_volume(self.source, start, self.patch_size), loc
        sub = Subject({name: _patch_volume(v, start, self.patch_size) for name, v in self.source.items()})
        return sub, loc

    def __iter__(self):
        for n in range(len(self)):
            yield self[n]


class GridAggregator:
    """Stitches model outputs of a :class:`GridSampler`'s patches back onto the input grid:
    ``overlap_mode`` ``"crop"`` (each voxel from the patch whose centre is nearest), ``"average"`` or
    ``"hann"`` (Hann-window weights, smooth seams). ``add_batch(outputs, locations)`` takes arrays (or
    torch tensors) of shape ``(B, C, x, y, z)`` or ``(B, x, y, z)``; ``get_output()`` returns float32
    ``(C, X, Y, Z)`` (or ``(X, Y, Z)``)."""

    def __init__(self, sampler, overlap_mode="crop"):
        if not isinstance(sampler, GridSampler):
            raise VoxaugValueError("GridAggregator takes the GridSampler that made the patches")
        if overlap_mode not in ("crop", "average", "hann"):
            raise VoxaugValueError(f"unknown overlap_mode {overlap_mode!r} (expected crop, average or hann)")
        self.sampler = sampler
        self.mode = overlap_mode
        self._channels = None
        self._aggs = None

    def add_batch(self, outputs, locations):
        """Adds a batch of patch outputs at their locations."""
        if hasattr(outputs, "detach"):
            outputs = outputs.detach().cpu().numpy()
        if hasattr(locations, "detach"):
            locations = locations.detach().cpu().numpy()
        out = np.asarray(outputs, dtype=np.float32)
        locs = np.asarray(locations).reshape(-1, 6)
        channels = out.ndim == 5
        if out.ndim == 4:
            out = out[:, None]
        if out.ndim != 5 or out.shape[0] != len(locs):
            raise VoxaugValueError(
                f"outputs of shape {np.shape(outputs)} for {len(locs)} locations; expected (B, C, x, y, z) or (B, x, y, z)")
        if self._aggs is None:
            self._channels = channels
            s = self.sampler
            self._aggs = [_voxaug.Aggregator(s.shape, s.patch_size, s.stride, self.mode) for _ in range(out.shape[1])]
        if out.shape[1] != len(self._aggs):
            raise VoxaugValueError(f"{out.shape[1]} channels, earlier batches had {len(self._aggs)}")
        for b, loc in enumerate(locs):
            start = [int(x) for x in loc[:3]]
            for c, agg in enumerate(self._aggs):
                agg.add(start, out[b, c])

    def get_output(self):
        """The stitched output (float32)."""
        if self._aggs is None:
            raise VoxaugValueError("no batch was added")
        chans = [agg.finish(self.sampler.shape) for agg in self._aggs]
        self._aggs = None
        return np.stack(chans) if self._channels else chans[0]

    def get_output_tensor(self):
        """The stitched output as a torch tensor (TorchIO's name)."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.get_output()))
