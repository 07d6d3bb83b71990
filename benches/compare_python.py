#!/usr/bin/env python3
"""Times the operations of `voxaug bench` with the Python tools, on the same inputs, so the ratios in the
README can be reproduced. Optional: not part of the tests. Uses whichever of numpy/scipy, SimpleITK,
TorchIO and MONAI are installed (`pip install numpy scipy SimpleITK torchio monai`).

    python3 benches/compare_python.py --size 256 [--runs 3] [--json py.json] [--ops rotate,low_resolution]

The phantom is the same as `voxaug::phantom::head([n; 3], [1.0, 1.0, 1.2])` (head-like ellipsoids, f32
image, 5 labels in a uint8 label map), rebuilt here with the same formulas. TorchIO and MONAI get the
label map as float32, the type their pipelines compute in.
"""
import argparse
import json
import math
import statistics
import time


def phantom(np, n, spacing=(1.0, 1.0, 1.2)):
    ext = [n * s for s in spacing]
    c = [e / 2 for e in ext]
    ax = [(np.arange(n) + 0.5) * s for s in spacing]
    x, y, z = np.meshgrid(ax[0], ax[1], ax[2], indexing="ij")
    def inside(ctr, r):
        return ((x - ctr[0]) / r[0]) ** 2 + ((y - ctr[1]) / r[1]) ** 2 + ((z - ctr[2]) / r[2]) ** 2 <= 1
    head = [0.42 * ext[0], 0.46 * ext[1], 0.44 * ext[2]]
    brain = [0.36 * ext[0], 0.40 * ext[1], 0.37 * ext[2]]
    vent = [0.07 * ext[0], 0.14 * ext[1], 0.09 * ext[2]]
    lc = [c[0] + 0.15 * ext[0], c[1] - 0.1 * ext[1], c[2] + 0.08 * ext[2]]
    lr = 0.06 * min(ext[0], ext[1])
    lab = np.zeros((n, n, n), np.float32)
    lab[inside(c, head)] = 1
    lab[inside(c, brain)] = 2
    lab[inside([c[0] - 0.08 * ext[0], c[1], c[2]], vent) | inside([c[0] + 0.08 * ext[0], c[1], c[2]], vent)] = 3
    lab[(x - lc[0]) ** 2 + (y - lc[1]) ** 2 + (z - lc[2]) ** 2 <= lr * lr] = 4
    base = np.array([0, 450, 800, 300, 1250], np.float32)[lab.astype(int)]
    tex = 60 * (np.sin(x * 0.21) * np.cos(y * 0.17) + 0.5 * np.sin(z * 0.13))
    img = np.round(base + np.where(lab > 0, tex, 0)).astype(np.float32)
    # Label maps as uint8, as voxaug holds them (and as a segmentation file stores them).
    return img, lab.astype(np.uint8)


def timeit(fn, runs):
    fn()  # warm-up
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts), max(ts)


def timeit_given(setup, fn, runs):
    """Times `fn` on inputs it is given up (`setup()`'s, made before the clock): they and the
    output are freed inside the clock, as voxaug bench's `owned` rows free theirs."""
    ts = []
    for _ in range(runs + 1):
        box = [setup()]
        t = time.perf_counter()
        fn(box)
        ts.append(time.perf_counter() - t)
    ts = ts[1:]  # the first is a warm-up
    return statistics.median(ts), min(ts), max(ts)


def rotation(deg):
    a, b, c = [math.radians(d) for d in deg]
    import numpy as np
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--ops", help="comma-separated ops to time (default: all)")
    args = ap.parse_args()
    import numpy as np
    n = args.size
    img, lab = phantom(np, n)
    sp = np.array([1.0, 1.0, 1.2])
    rows = []

    only = set(args.ops.split(",")) if args.ops else None

    def add(tool, op, fn, setup=None):
        if only is not None and op not in only:
            return
        med, lo, hi = timeit(fn, args.runs) if setup is None else timeit_given(setup, fn, args.runs)
        rows.append({"tool": tool, "op": op, "size": n, "median_ms": med * 1e3, "min_ms": lo * 1e3, "max_ms": hi * 1e3})
        print(f"{tool:<12} {op:<18} {n:>4}  median {med * 1e3:9.1f} ms  ({lo * 1e3:.1f}..{hi * 1e3:.1f})", flush=True)

    add("numpy", "flip", lambda: (np.ascontiguousarray(img[::-1, ::-1]), np.ascontiguousarray(lab[::-1, ::-1])))
    m = n // 8
    add("numpy", "crop", lambda: (img[m:-m, m:-m, m:-m].copy(), lab[m:-m, m:-m, m:-m].copy()))

    # The same on inputs given up (copies made before the clock, freed inside it with the output):
    # the accounting of `voxaug bench`'s owned rows.
    def given(op):
        def run(box):
            a, b = box.pop()
            if op == "flip":
                out = (np.ascontiguousarray(a[::-1, ::-1]), np.ascontiguousarray(b[::-1, ::-1]))
            else:
                out = (a[m:-m, m:-m, m:-m].copy(), b[m:-m, m:-m, m:-m].copy())
            del a, b, out
        return run
    for op in ("flip", "crop"):
        add("numpy-owned", op, given(op), setup=lambda: (img.copy(), lab.copy()))
    def zscore():
        mask = img != 0
        v = img[mask]
        out = np.zeros_like(img)
        out[mask] = (v - v.mean()) / v.std()
        return out
    add("numpy", "zscore", zscore)
    add("numpy", "minmax", lambda: (img - img.min()) / (img.max() - img.min()))
    add("numpy", "percentile_clip", lambda: np.clip(img, *np.percentile(img, [0.5, 99.5])))

    # voxaug's gamma: the range mapped to [0, 1], the power, mapped back.
    def gamma():
        lo, hi = img.min(), img.max()
        return np.power((img - lo) / (hi - lo), np.float32(1.2)) * (hi - lo) + lo
    add("numpy", "gamma", gamma)
    rng = np.random.default_rng(4)
    add("numpy", "noise", lambda: img + np.float32(0.05) * rng.standard_normal(img.shape, dtype=np.float32))

    # Rotation about the world centre in world axes, as a voxel pull-back (same as voxaug's rotate).
    r = rotation([10, -5, 15])
    m3 = np.diag(1 / sp) @ r.T @ np.diag(sp)
    ctr = (np.array([n, n, n]) - 1) / 2
    off = ctr - m3 @ ctr
    try:
        import scipy.ndimage as ndi
        add("scipy", "rotate", lambda: (ndi.affine_transform(img, m3, off, order=1, mode="grid-constant"),
                                         ndi.affine_transform(lab, m3, off, order=0, mode="grid-constant")))
        def elastic(sigma, alpha, rz_deg):
            rng = np.random.default_rng(0)
            d = [ndi.gaussian_filter(rng.random(img.shape, dtype=np.float32) * 2 - 1, sigma, mode="constant") * alpha for _ in range(3)]
            g = np.meshgrid(*[np.arange(n, dtype=np.float32)] * 3, indexing="ij")
            rr = rotation([0, 0, rz_deg])
            mm = np.diag(1 / sp) @ rr.T @ np.diag(sp)
            q = [g[a] + d[a] - ctr[a] for a in range(3)]
            coords = [sum(mm[a, b] * q[b] for b in range(3)) + ctr[a] for a in range(3)]
            return ndi.map_coordinates(img, coords, order=1), ndi.map_coordinates(lab, coords, order=0)
        add("scipy", "elastic", lambda: elastic(35, 4, 10))
        add("scipy", "elastic_nnunet", lambda: elastic(11, 150, 10))
    except ImportError:
        print("scipy not installed: skipped")
    try:
        import SimpleITK as sitk
        si, sl = sitk.GetImageFromArray(img.transpose(2, 1, 0)), sitk.GetImageFromArray(lab.transpose(2, 1, 0))
        for im in (si, sl):
            im.SetSpacing(tuple(sp))
        t = sitk.Euler3DTransform()
        t.SetCenter(tuple(ctr * sp))
        t.SetMatrix(tuple(r.T.flatten()))
        add("SimpleITK", "rotate", lambda: (sitk.Resample(si, si, t, sitk.sitkLinear, 0.0),
                                           sitk.Resample(sl, sl, t, sitk.sitkNearestNeighbor, 0.0)))
    except ImportError:
        print("SimpleITK not installed: skipped")
    try:
        import torch
        import torchio as tio
        subj = tio.Subject(image=tio.ScalarImage(tensor=torch.from_numpy(img[None])), label=tio.LabelMap(tensor=torch.from_numpy(lab[None].astype(np.float32))))
        add("torchio", "rotate", lambda: tio.Affine(scales=1, degrees=(10, -5, 15), translation=0)(subj))
        add("torchio", "elastic_bspline", lambda: tio.RandomElasticDeformation()(subj))
        # voxaug's low_resolution: nearest down to half the voxels along x, back up linear.
        add("torchio", "low_resolution", lambda: tio.RandomAnisotropy(axes=(0,), downsampling=(2, 2))(subj))
        # k-space artefacts with voxaug bench's parameters (the work does not depend on the values).
        add("torchio", "motion", lambda: tio.RandomMotion(num_transforms=2)(subj))
        add("torchio", "ghosting", lambda: tio.RandomGhosting(num_ghosts=(6, 6), axes=(2,), intensity=(0.8, 0.8))(subj))
        add("torchio", "spike", lambda: tio.RandomSpike(num_spikes=(1, 1), intensity=(2, 2))(subj))
        add("torchio", "gamma", lambda: tio.RandomGamma(log_gamma=(0.18, 0.18))(subj))
        add("torchio", "noise", lambda: tio.RandomNoise(std=(0.05, 0.05))(subj))
        add("torchio", "bias_field", lambda: tio.RandomBiasField(coefficients=0.5, order=3)(subj))
    except ImportError:
        print("torchio not installed: skipped")
    try:
        import monai.transforms as mt
        d = {"image": img[None], "label": lab[None].astype(np.float32)}
        # voxaug's low_resolution_iso: every axis at half the voxels (MONAI zooms all axes alike).
        add("monai", "low_resolution_iso", lambda: mt.RandSimulateLowResolutiond(keys=["image", "label"], prob=1.0, zoom_range=(0.5, 0.5))(d))
        # MONAI keeps a sphere of k-space (alpha 0.5), voxaug a box (fraction 0.5): the same FFT work.
        add("monai", "gibbs", lambda: mt.GibbsNoise(alpha=0.5)(img[None]))
        add("monai", "elastic_nnunet", lambda: mt.Rand3DElasticd(keys=["image", "label"], sigma_range=(11, 11), magnitude_range=(150, 150), prob=1.0, mode=("bilinear", "nearest"))(d))
    except ImportError:
        print("monai not installed: skipped")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": n, "runs": args.runs, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
