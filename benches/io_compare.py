#!/usr/bin/env python3
"""File I/O and file-to-file timings of voxaug next to nibabel and SimpleITK, in one run, same files.

    python3 benches/io_compare.py [--size 256] [--runs 5] [--ops read,write,apply]
                                  [--voxaug target/release/voxaug] [--json out.json]

Needs the voxaug Python package (`pip install ./python`), numpy, nibabel and SimpleITK. Reports medians:
- read / write of a float32 image and a uint8 label map, `.nii` and `.nii.gz`, through each library's
  own API (voxaug.read / voxaug.write, nibabel load + dataobj / save, SimpleITK ReadImage / WriteImage);
- `apply` rotate end to end (image trilinear + label nearest, `.nii` in and out): the voxaug CLI as a
  user runs it (default `--device auto`) timed from process start to exit, against SimpleITK doing the same read + resample + write inside Python
  (interpreter start and import excluded, which favours SimpleITK); once replacing the previous run's
  output files, once writing into a new folder per run ("new").
The phantom is `benches/compare_python.py`'s.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from compare_python import phantom, rotation  # noqa: E402


def timeit(fn, runs):
    fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--voxaug", default="target/release/voxaug")
    ap.add_argument("--ops", default="read,write,apply", help="comma separated: read, write, apply")
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="voxaug-io-") as d:
        run(args, d)


def run(args, d):
    import numpy as np
    import nibabel as nib
    import SimpleITK as sitk
    import voxaug

    n = args.size
    img, lab = phantom(np, n)
    lab = lab.astype(np.uint8)
    sp = (1.0, 1.0, 1.2)
    aff = np.diag([*sp, 1.0])
    paths = {}
    for name, arr in [("image", img), ("label", lab)]:
        for ext in (".nii", ".nii.gz"):
            p = os.path.join(d, name + ext)
            nib.save(nib.Nifti1Image(arr, aff), p)
            paths[name + ext] = p
    rows = []

    def add(tool, op, what, fn):
        ms = timeit(fn, args.runs) * 1e3
        rows.append({"tool": tool, "op": op, "file": what, "median_ms": ms})
        print(f"{tool:<10} {op:<6} {what:<14} {ms:9.1f} ms", flush=True)

    ops = args.ops.split(",")
    for what, p in paths.items():
        if "read" not in ops:
            break
        kind = "label" if what.startswith("label") else "image"
        add("voxaug", "read", what, lambda: voxaug.read(p, kind=kind).array)
        # np.array forces the read (dataobj alone is a lazy memory map).
        add("nibabel", "read", what, lambda: np.array(nib.load(p).dataobj))
        add("SimpleITK", "read", what, lambda: sitk.GetArrayViewFromImage(sitk.ReadImage(p)))
    for what, p in paths.items():
        if "write" not in ops:
            break
        kind = "label" if what.startswith("label") else "image"
        v = voxaug.read(p, kind=kind)
        ni = nib.load(p)
        ni = nib.Nifti1Image(np.asanyarray(ni.dataobj), ni.affine, ni.header)
        si = sitk.ReadImage(p)
        out = os.path.join(d, "out_" + what)
        add("voxaug", "write", what, lambda: voxaug.write(out, v))
        add("nibabel", "write", what, lambda: nib.save(ni, out))
        add("SimpleITK", "write", what, lambda: sitk.WriteImage(si, out))

    # End to end: rotate image + label, .nii in and out.
    pipe = os.path.join(d, "rotate.json")
    with open(pipe, "w") as f:
        json.dump({"transforms": [{"type": "rotate", "degrees": [10, -5, 15]}]}, f)
    # Two regimes: outputs replacing the previous run's files (ext4 then starts writing the new data
    # back at the rename or at close after the truncation, in the writer's time: both tools pay it)
    # and outputs into a new folder per run.
    cmd = [args.voxaug, "apply", pipe, "--image", paths["image.nii"], "--label", paths["label.nii"],
           "--out"]
    r = rotation([10, -5, 15])
    fresh = iter(range(10**6))

    def outdir(new):
        o = os.path.join(d, f"apply{next(fresh)}" if new else "apply")
        os.makedirs(o, exist_ok=True)
        return o

    def sitk_apply(o):
        si, sl = sitk.ReadImage(paths["image.nii"]), sitk.ReadImage(paths["label.nii"])
        t = sitk.Euler3DTransform()
        t.SetCenter(tuple(np.array(si.TransformContinuousIndexToPhysicalPoint(((n - 1) / 2,) * 3))))
        t.SetMatrix(tuple(r.T.flatten()))
        sitk.WriteImage(sitk.Resample(si, si, t, sitk.sitkLinear, 0.0), os.path.join(o, "image.nii"))
        sitk.WriteImage(sitk.Resample(sl, sl, t, sitk.sitkNearestNeighbor, 0.0), os.path.join(o, "label.nii"))

    for new, what in [] if "apply" not in ops else [(False, "rotate .nii"), (True, "rotate .nii new")]:
        add("voxaug", "apply", what,
            lambda: subprocess.run(cmd + [outdir(new)], check=True, capture_output=True))
        add("SimpleITK", "apply", what, lambda: sitk_apply(outdir(new)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": n, "runs": args.runs, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
