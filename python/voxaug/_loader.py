"""The streaming loader: augmented batches computed on Rust threads, sharded across DataLoader workers,
DDP ranks and Ray; the samples depend only on (seed, subject, epoch, sample), never on threads, workers
or world size."""
import json
import os
import sys

import numpy as np

from . import _voxaug
from ._errors import VoxaugFileNotFoundError, VoxaugValueError
from ._pipeline import Pipeline
from ._volume import Subject, Volume, read

_VOLUME_EXT = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".hdr", ".img", ".hdr.gz", ".img.gz", ".dcm", ".dcm.gz")
_RESERVED = ("index", "plan")
_MASK = (1 << 64) - 1


def _splitmix(x):
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return x, z ^ (z >> 31)


def permutation(n, seed, epoch):
    """The epoch's order of ``n`` items: Fisher-Yates driven by splitmix64 of (seed, epoch); the same on
    every platform and library version."""
    state = ((seed & _MASK) * 0x100000001B3 ^ (epoch & _MASK) * 0xC2B2AE3D27D4EB4F) & _MASK
    out = list(range(n))
    for i in range(n - 1, 0, -1):
        state, r = _splitmix(state)
        j = r % (i + 1)
        out[i], out[j] = out[j], out[i]
    return out


def _pipeline(p):
    if isinstance(p, Pipeline):
        return p
    if isinstance(p, dict):
        return Pipeline.from_dict(p)
    if isinstance(p, (str, os.PathLike)):
        return Pipeline.from_file(p)
    raise VoxaugValueError(f"pipeline must be a voxaug.Pipeline, a dict or a file path, got {type(p).__name__}")


def _field(s, name, value, what):
    """A pass-through field of subject ``s``, checked to be JSON-able (``what``: the volume it is not)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise VoxaugValueError(f"subject {s}: field {name!r} is neither {what} nor JSON-able") from None
    return value


def _is_volume_path(name, value, labels):
    if not isinstance(value, (str, os.PathLike)):
        return False
    if name in labels:
        return True
    p = os.fspath(value)
    return os.path.exists(p) or p.lower().endswith(_VOLUME_EXT)


def _resolve_world(rank, world_size):
    if rank is not None and world_size is not None:
        return int(rank), int(world_size)
    r = w = None
    torch = sys.modules.get("torch")
    if torch is not None:
        dist = getattr(torch, "distributed", None)
        try:
            if dist is not None and dist.is_available() and dist.is_initialized():
                r, w = dist.get_rank(), dist.get_world_size()
        except Exception:  # noqa: BLE001 - a half-initialised process group: fall back to the environment
            r = w = None
    if r is None and "WORLD_SIZE" in os.environ:
        r, w = int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"])
    if r is None:
        r, w = 0, 1
    return int(rank if rank is not None else r), int(world_size if world_size is not None else w)


class Loader:
    """Streams augmented batches: ``for batch in Loader(subjects, pipe, labels=("seg",), batch_size=2)``.

    ``subjects``: a list of dicts ``name -> path`` (or ``name -> Volume`` for data in memory), or of
    :class:`Subject`; string values that are not volume paths (no such file, no volume extension) and
    other JSON-able values (class targets, ids) are passed through into the batch as lists. Each batch is a dict ``name -> numpy array (B, C, X, Y, Z)`` (C order; C = 1,
    or the channels of a multi-channel NIfTI file; images float32, label maps their integer dtype), ``"index"``: list of (subject index, sample index),
    ``"plan"``: list of plan dicts, plus the pass-through fields.

    Sample ``j`` of subject ``s`` in epoch ``e`` is exactly ``pipe.sample(subject_s, seed=seed + s,
    index=e * samples_per_volume + j)``, whatever ``num_threads``, ``prefetch`` or world size.
    Sharding follows PyTorch's ``DistributedSampler``: with ``drop_last=False`` the epoch's sample list
    is padded by repeating its start until it divides by ``world_size`` (ranks get equally many
    samples; the union over ranks covers every sample), with ``drop_last=True`` its tail is dropped
    instead, and a last incomplete batch is dropped too. ``shuffle`` permutes by (seed, epoch).
    The epoch advances by one after each full pass; ``set_epoch(e)`` sets it (call it each epoch in DDP).

    Decoded volumes are cached within ``cache_bytes`` (default: a quarter of RAM), so a ``.nii.gz`` is
    decompressed once, not once per sample. With ``device="gpu"`` a cached subject's volumes also stay
    on the device after their first upload (up to ``VOXAUG_GPU_RESIDENT_MB`` MiB, default 2048, least
    recently used subjects evicted first), so its later samples skip the upload.

    ``one_hot=True`` returns each label map as float32 ``(B, n_classes, X, Y, Z)``: channel ``c`` is 1
    where the label equals ``classes[c]``; ``classes`` defaults to the sorted label values of the first
    subject's label map (read once), and a voxel whose value is not in ``classes`` is 0 in every channel.
    """

    def __init__(self, subjects, pipeline, labels=("seg",), batch_size=2, samples_per_volume=1, shuffle=True,
                 seed=0, rank=None, world_size=None, num_threads=2, prefetch=4, device="auto", cache_bytes=None,
                 drop_last=False, one_hot=False, classes=None):
        self.pipeline = _pipeline(pipeline)
        self.one_hot = bool(one_hot)
        if classes is not None and not self.one_hot:
            raise VoxaugValueError("classes applies with one_hot=True")
        if classes is not None:
            classes = [int(c) for c in classes]
            if not classes or len(set(classes)) != len(classes):
                raise VoxaugValueError(f"classes must be distinct label values, got {classes}")
        self.classes = classes
        if isinstance(labels, str):
            labels = (labels,)
        self.labels = tuple(labels)
        if batch_size < 1 or samples_per_volume < 1 or num_threads < 1 or prefetch < 1:
            raise VoxaugValueError("batch_size, samples_per_volume, num_threads and prefetch must be >= 1")
        self.batch_size = int(batch_size)
        self.samples_per_volume = int(samples_per_volume)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.rank, self.world_size = _resolve_world(rank, world_size)
        if not 0 <= self.rank < self.world_size:
            raise VoxaugValueError(f"rank {self.rank} is outside world_size {self.world_size}")
        self.num_threads = int(num_threads)
        self.prefetch = int(prefetch)
        self.device = str(device)
        self.cache_bytes = cache_bytes
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self._native = None
        self._native_pid = None
        self._parse(list(subjects))

    def _parse(self, subjects):
        if not subjects:
            raise VoxaugValueError("no subjects given")
        self._sources = []
        self._extras = []
        members = None
        for s, sub in enumerate(subjects):
            if isinstance(sub, Subject):
                images, labels, extras = sub.images(), sub.labels(), {}
                src = ("volumes", [sub[n]._to_native() for n in images], [sub[n]._to_native() for n in labels])
            elif isinstance(sub, dict):
                for name in sub:
                    if name in _RESERVED:
                        raise VoxaugValueError(f"subject {s}: {name!r} is a reserved batch key; rename that member")
                images, labels, extras = [], [], {}
                if any(isinstance(v, Volume) for v in sub.values()):
                    # In-memory volumes (each Volume's kind says image or label map) with pass-through fields.
                    vols = {}
                    for name, value in sub.items():
                        if isinstance(value, Volume):
                            if name in self.labels and value.kind != "label":
                                raise VoxaugValueError(
                                    f"subject {s}: {name!r} is in labels= but its Volume is an image; build it "
                                    f"with kind=\"label\"")
                            vols[name] = value
                        elif _is_volume_path(name, value, self.labels):
                            raise VoxaugValueError(
                                f"subject {s}: {name!r} is a path beside in-memory Volumes; read it "
                                f"(voxaug.read) or give every member as a path")
                        else:
                            extras[name] = _field(s, name, value, "a Volume")
                    vs = Subject(vols)
                    images, labels = vs.images(), vs.labels()
                    src = ("volumes", [vs[n]._to_native() for n in images], [vs[n]._to_native() for n in labels])
                else:
                    ipaths, lpaths = [], []
                    for name, value in sub.items():
                        if _is_volume_path(name, value, self.labels):
                            p = os.path.abspath(os.fspath(value))
                            if not os.path.exists(p):
                                raise VoxaugFileNotFoundError(f"subject {s}: {name}: {p}: no such file or folder")
                            (lpaths if name in self.labels else ipaths).append(p)
                            (labels if name in self.labels else images).append(name)
                        else:
                            extras[name] = _field(s, name, value, "a volume path")
                    src = ("paths", ipaths, lpaths)
            else:
                raise VoxaugValueError(f"subject {s} is a {type(sub).__name__}; expected a dict of paths or a voxaug.Subject")
            if not images and not labels:
                raise VoxaugValueError(f"subject {s} has no volume (values that are not volume paths pass through)")
            these = (tuple(images), tuple(labels), tuple(sorted(extras)))
            if members is None:
                members = these
            elif these != members:
                raise VoxaugValueError(
                    f"subject {s} has members {these[0] + these[1]} and fields {these[2]}, subject 0 has "
                    f"{members[0] + members[1]} and {members[2]}; every subject needs the same ones")
            self._sources.append(src)
            self._extras.append(extras)
        self._images, self._labels, self._fields = members

    def _loader(self):
        pid = os.getpid()
        if self._native is None or self._native_pid != pid:
            paths = [(s[1], s[2]) if s[0] == "paths" else ([], []) for s in self._sources]
            self._native = _voxaug.NativeLoader(self.pipeline.to_json(), paths, self.device, self.num_threads,
                                                self.cache_bytes, [s[1:] if s[0] == "volumes" else None
                                                                    for s in self._sources],
                                                list(self._images) + list(self._labels))
            self._native_pid = pid
        return self._native

    def _classes_of(self, name):
        """The one-hot classes of label member ``name``: given, or the first subject's sorted values."""
        if self.classes is not None:
            return self.classes
        cache = self.__dict__.setdefault("_class_cache", {})
        if name not in cache:
            src = self._sources[0]
            if src[0] == "paths":
                vol = read(src[2][self._labels.index(name)], kind="label")
            else:
                vol = Volume._from_native(src[2][self._labels.index(name)])
            cache[name] = [int(v) for v in np.unique(vol.array)]
        return cache[name]

    def _one_hot(self, name, arr):
        classes = self._classes_of(name)
        lab = arr[:, 0]
        out = np.empty((lab.shape[0], len(classes)) + lab.shape[1:], np.float32)
        for c, value in enumerate(classes):
            np.equal(lab, value, out=out[:, c], casting="unsafe")
        return out

    def set_epoch(self, epoch):
        """Sets the epoch of the next pass (as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def samples(self, epoch=None):
        """This rank's ``(subject, sample index)`` list of an epoch, in order."""
        e = self.epoch if epoch is None else int(epoch)
        spv = self.samples_per_volume
        n = len(self._sources) * spv
        order = permutation(n, self.seed, e) if self.shuffle else list(range(n))
        w = self.world_size
        if w > 1:
            if self.drop_last and n % w:
                per = n // w
            else:
                per = -(-n // w)
            total = per * w
            while len(order) < total:
                order = order + order[: total - len(order)]
            order = order[:total][self.rank::w]
        return [(i // spv, e * spv + i % spv) for i in order]

    def batches(self, epoch=None):
        """This rank's batches of an epoch: lists of ``(subject, sample index)``."""
        ids = self.samples(epoch)
        b = self.batch_size
        out = [ids[i:i + b] for i in range(0, len(ids), b)]
        if self.drop_last and out and len(out[-1]) < b:
            out.pop()
        return out

    def __len__(self):
        return len(self.batches())

    def _iterate(self, epoch, select=None):
        batches = self.batches(epoch)
        if select is not None:
            batches = [b for n, b in enumerate(batches) if select(n)]
        jobs = [(s, self.seed + s, idx) for batch in batches for (s, idx) in batch]
        # The stream cuts batches of batch_size in order; only the last one can be shorter.
        native = self._loader()
        stream = native.epoch(jobs, self.batch_size, self.prefetch)
        for batch in batches:
            got = stream.next_batch()
            if got is None:
                raise AssertionError("internal: the stream ended early")
            images, labels, plans = got
            out = {}
            for name, arr in zip(self._images, images):
                out[name] = arr
            for name, arr in zip(self._labels, labels):
                out[name] = self._one_hot(name, arr) if self.one_hot else arr
            for f in self._fields:
                out[f] = [self._extras[s][f] for (s, _) in batch]
            out["index"] = [tuple(x) for x in batch]
            out["plan"] = [json.loads(p) for p in plans]
            yield out

    def __iter__(self):
        e = self.epoch
        yield from self._iterate(e)
        if self.epoch == e:
            self.epoch = e + 1

    @property
    def executor(self):
        """The executor that runs the samples (``cpu (N threads)`` or a GPU adapter)."""
        return self._loader().executor_name()

    @property
    def cached_bytes(self):
        """Bytes of decoded volumes held in this process's cache."""
        return self._loader().cached_bytes()
