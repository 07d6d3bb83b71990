"""Pipelines: the JSON format of ``voxaug apply`` / ``voxaug augment``, sampled and applied from Python."""
import json
import os
import sys

import numpy as np

from . import _voxaug
from ._errors import VoxaugFileNotFoundError, VoxaugOSError, VoxaugValueError
from ._volume import Subject, Volume


def _as_subject(subject):
    if isinstance(subject, Subject):
        return subject
    if isinstance(subject, Volume):
        return Subject(image=subject) if subject.kind == "image" else Subject(label=subject)
    if isinstance(subject, dict):
        return Subject(subject)
    raise VoxaugValueError(f"expected a voxaug.Subject (or a dict of Volumes), got {type(subject).__name__}")


def _draw_index():
    """A sample number for a call: from torch's generator when torch is imported, else NumPy's."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.randint(0, 2**62, (1,)).item())
    return int(np.random.randint(0, 2**62, dtype=np.int64))


def _json_text(d):
    try:
        return json.dumps(d)
    except (TypeError, ValueError) as e:
        raise VoxaugValueError(f"pipeline: not JSON-serialisable ({e})") from None


class Pipeline:
    """A parsed pipeline (``{"seed": 0, "transforms": [...]}``). Errors name the transform and field.

    ``sample(subject, seed, index)`` draws sample ``index`` of seed ``seed`` (the same bytes as
    ``voxaug augment --seed seed`` writes for that sample) and returns ``(Subject, plan dict)``; the plan
    re-applies exactly with ``Pipeline.from_dict(plan).apply(subject)``.
    """

    def __init__(self, text, base=None):
        """``text``: the pipeline as JSON text, as a dict (``{"seed": 0, "transforms": [...]}``) or as a
        list of transforms (``[{"type": "rotate", "degrees": [0, 0, 15]}]``, TorchIO's ``Compose``)."""
        if isinstance(text, (dict, list, tuple)):
            text = _json_text(text)
        elif isinstance(text, os.PathLike):
            raise VoxaugValueError(f"pipeline: {os.fspath(text)!r} is a path; read it with Pipeline.from_file")
        elif not isinstance(text, str):
            raise VoxaugValueError(
                f"pipeline: expected JSON text, a dict or a list of transforms, got {type(text).__name__}")
        canonical, fixed = _voxaug.parse_pipeline(text, base)
        self._json = canonical
        self._dict = json.loads(canonical)
        self.is_random = not fixed

    @classmethod
    def from_json(cls, text):
        """Parses pipeline JSON text."""
        return cls(text)

    @classmethod
    def from_dict(cls, d):
        """From a dict (e.g. a plan returned by ``sample``) or a list of transforms."""
        return cls(_json_text(d))

    @classmethod
    def from_file(cls, path):
        """Reads a pipeline file."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise VoxaugFileNotFoundError(f"{path}: no such pipeline file") from None
        except OSError as e:
            raise VoxaugOSError(f"{path}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise VoxaugValueError(f"pipeline: {path}: not UTF-8 text ({e})") from None
        try:
            # File references in the pipeline are relative to its folder, as on the command line.
            return cls(text, os.path.dirname(os.path.abspath(path)))
        except VoxaugValueError as e:
            msg = str(e)
            raise VoxaugValueError(msg.replace("pipeline: ", f"pipeline: {path}: ", 1)) from None

    @property
    def seed(self):
        """The pipeline's seed."""
        return self._dict["seed"]

    def to_dict(self):
        """The pipeline as a dict (valid input for ``from_dict``)."""
        return json.loads(self._json)

    def to_json(self):
        """The pipeline as JSON text."""
        return self._json

    def _run(self, subject, seed, index, device):
        subject = _as_subject(subject)
        names_i, names_l = subject.images(), subject.labels()
        images = [subject[n]._to_native() for n in names_i]
        labels = [subject[n]._to_native() for n in names_l]
        out_i, out_l, plan = _voxaug.run(self._json, images, labels, seed, index, str(device),
                                         [str(n) for n in names_i + names_l])
        vols = {}
        for n, t in zip(names_i, out_i):
            vols[n] = Volume._from_native(t)
        for n, t in zip(names_l, out_l):
            vols[n] = Volume._from_native(t)
        ordered = Subject({n: vols[n] for n in subject})
        return ordered, json.loads(plan)

    def sample(self, subject, seed=None, index=0, device="cpu"):
        """Sample ``index`` of seed ``seed`` (default: the pipeline's): ``(Subject, plan dict)``."""
        return self._run(subject, None if seed is None else int(seed), int(index), device)

    def apply(self, subject, device="cpu"):
        """Applies the pipeline once (a random pipeline: its sample ``sample`` or 0, as ``voxaug apply``)."""
        return self._run(subject, None, None, device)[0]

    def __call__(self, x, device="cpu"):
        """Applies the pipeline the way a TorchIO transform is called: a random pipeline draws a new
        sample on every call, its number taken from PyTorch's random generator when torch is imported
        (so ``torch.manual_seed`` and the DataLoader's per-worker seeds make runs repeat) and from
        NumPy's global generator otherwise. Returns what it is given: Subject (or dict of Volumes) ->
        Subject, Volume -> Volume, a 3D or channels-first 4D NumPy array or torch tensor -> the same
        type and shape in float32 (an image; one plan for every channel). Samples by number, with their
        plans: ``sample(subject, seed, index)``."""
        index = _draw_index() if self.is_random else None
        if isinstance(x, Volume):
            out = self._run(x, None, index, device)[0]
            return next(iter(out.values()))
        if isinstance(x, (Subject, dict)):
            return self._run(x, None, index, device)[0]
        is_torch = type(x).__module__.split(".")[0] == "torch"
        a = x.detach().cpu().numpy() if is_torch else np.asarray(x)
        if a.ndim not in (3, 4):
            raise VoxaugValueError(
                f"a pipeline takes a Subject, a Volume, or a 3D or (C, X, Y, Z) array or tensor; got shape {a.shape}")
        channels = [a] if a.ndim == 3 else list(a)
        names = [f"c{c}" for c in range(len(channels))]
        out = self._run(Subject({n: Volume(c) for n, c in zip(names, channels)}), None, index, device)[0]
        r = out[names[0]].array if a.ndim == 3 else np.stack([out[n].array for n in names])
        if is_torch:
            import torch

            return torch.from_numpy(r).to(x.device)
        return r

    def invert(self, volume, reference, fill=0.0, device="cpu"):
        """Maps ``volume`` (a prediction on the grid this plan produced) back onto ``reference``'s grid
        (the original the sample was made from): test-time augmentation. Probabilities and images are
        sampled trilinearly, label maps (``kind="label"``) nearest; voxels the sample never saw get
        ``fill``. The plan must be deterministic (a sample's plan); elastic plans are refused."""
        if not isinstance(volume, Volume) or not isinstance(reference, Volume):
            raise VoxaugValueError("invert takes a voxaug.Volume to map and the reference voxaug.Volume")
        shape = [int(n) for n in reference.array.shape]
        out = _voxaug.invert(self._json, volume._to_native(), shape, reference.affine.tolist(),
                             float(fill), str(device))
        return Volume._from_native(out)

    def __repr__(self):
        kinds = [t.get("type") for t in self._dict["transforms"]]
        return f"Pipeline(seed={self.seed}, transforms={kinds})"
