"""Dataset-scale augmentation on a Ray cluster with Ray Data.

``voxaug.ray.augment(manifest, pipeline, out_dir, samples_per_subject=N, seed=S, labels=("seg",))`` writes,
for row ``r`` of the manifest, ``out_dir/<name>/0000 ..`` exactly as
``voxaug augment PIPELINE --image/--label <row's paths> --out out_dir/<name> -n N --seed <S + r>`` does
(members in ``labels`` as ``--label``, the others as ``--image``, in manifest order). Paths travel through
Ray, never voxel arrays; each actor holds one executor (``device``; ``num_gpus`` per actor for a GPU).
Without a running cluster Ray starts a local one; ``ray.init(address="auto")`` (or ``RAY_ADDRESS``) before
the call uses a real one, whose workers must see the same paths (a shared file system).
"""
import csv
import json
import os

import ray
import ray.data

from . import _voxaug
from ._errors import VoxaugFileNotFoundError, VoxaugValueError
from ._pipeline import Pipeline


def _manifest(manifest):
    if isinstance(manifest, (str, os.PathLike)):
        path = os.fspath(manifest)
        if not os.path.exists(path):
            raise VoxaugFileNotFoundError(f"{path}: no such manifest")
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        base = os.path.dirname(os.path.abspath(path))
    else:
        rows = [dict(r) for r in manifest]
        base = os.getcwd()
    if not rows:
        raise VoxaugValueError("the manifest has no rows")
    names = set()
    for i, r in enumerate(rows):
        name = r.get("name")
        if not name or not isinstance(name, str):
            raise VoxaugValueError(f"manifest row {i} has no \"name\"")
        if name in names:
            raise VoxaugValueError(f"manifest row {i}: name {name!r} appears twice; outputs would collide")
        if os.sep in name or name in (".", "..") or (os.altsep and os.altsep in name):
            raise VoxaugValueError(f"manifest row {i}: name {name!r} must be a plain folder name")
        names.add(name)
        if len(r) < 2:
            raise VoxaugValueError(f"manifest row {i} ({name}) has no volume")
    return rows, base


class _Augmenter:
    """A Ray actor: one executor, many rows."""

    def __init__(self, pipeline, out_dir, n, seed, labels, device, mode):
        self.pipeline, self.out_dir, self.n, self.seed = pipeline, out_dir, n, seed
        self.labels, self.device, self.mode = labels, device, mode

    def __call__(self, batch):
        dirs = []
        for row_json, index in zip(batch["row"], batch["index"]):
            row = json.loads(row_json)
            images = [p for k, p in row.items() if k != "name" and k not in self.labels]
            labels = [p for k, p in row.items() if k != "name" and k in self.labels]
            out = os.path.join(self.out_dir, row["name"])
            written = _voxaug.augment_files(self.pipeline, images, labels, out, self.n,
                                            self.seed + int(index), self.device, mode=self.mode)
            dirs.append(json.dumps(written))
        return {"index": list(batch["index"]), "dirs": dirs}


def augment(manifest, pipeline, out_dir, samples_per_subject=1, seed=0, labels=("seg",), device="auto",
            num_gpus=0, concurrency=None, overwrite=False, resume=False):
    """Augments every manifest row on the Ray cluster; returns the written sample folders (row order,
    then sample order). ``manifest``: list of dicts ``{"name": ..., member: path, ...}`` or a CSV file
    with those columns (relative paths: from the CSV's folder; for a list, from the current folder).
    A subject folder that holds an earlier run's samples is refused unless ``overwrite`` (replace them)
    or ``resume`` (keep them, compute the missing ones), like ``voxaug augment --overwrite/--resume``."""
    if overwrite and resume:
        raise VoxaugValueError("overwrite and resume exclude each other")
    mode = "overwrite" if overwrite else ("resume" if resume else "new")
    rows, base = _manifest(manifest)
    if isinstance(labels, str):
        labels = (labels,)
    pipe = pipeline if isinstance(pipeline, Pipeline) else (
        Pipeline.from_dict(pipeline) if isinstance(pipeline, dict) else Pipeline.from_file(pipeline))
    out_dir = os.path.abspath(os.fspath(out_dir))
    items = []
    for i, r in enumerate(rows):
        row = {"name": r["name"]}
        for k, v in r.items():
            if k == "name":
                continue
            p = v if os.path.isabs(os.fspath(v)) else os.path.join(base, os.fspath(v))
            if not os.path.exists(p):
                raise VoxaugFileNotFoundError(f"manifest row {i} ({r['name']}): {k}: {p}: no such file or folder")
            row[k] = p
        items.append({"row": json.dumps(row), "index": i})
    ds = ray.data.from_items(items)
    kwargs = {}
    if num_gpus:
        kwargs["num_gpus"] = num_gpus
    ds = ds.map_batches(
        _Augmenter,
        fn_constructor_kwargs=dict(pipeline=pipe.to_json(), out_dir=out_dir, n=int(samples_per_subject),
                                   seed=int(seed), labels=tuple(labels), device=device, mode=mode),
        batch_size=1,
        concurrency=concurrency or max(1, min(len(items), int(ray.available_resources().get("CPU", 1)) if ray.is_initialized() else 1)),
        **kwargs,
    )
    results = sorted(ds.take_all(), key=lambda r: int(r["index"]))
    return [d for r in results for d in json.loads(r["dirs"])]
