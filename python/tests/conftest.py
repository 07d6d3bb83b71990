import os
import subprocess

import nibabel as nib
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
T1 = os.path.join(DATA, "anatomical.nii")

PIPELINE = {
    "seed": 0,
    "transforms": [
        {"type": "random_affine", "degrees": 10, "scales": 0.1, "translation_mm": 3},
        {"type": "elastic_bspline", "control_points": [5, 5, 5], "max_displacement_mm": [0, 3]},
        {"type": "random_flip", "axes": ["LR"], "p": 0.5},
        {"type": "center_crop", "size": [24, 32, 20]},
        {"type": "random_gamma", "log_gamma": 0.3},
        {"type": "random_noise", "std": [0, 5]},
    ],
}


def cli():
    exe = os.environ.get("VOXAUG_BIN", os.path.join(ROOT, "target", "release", "voxaug"))
    if not os.path.exists(exe):
        raise RuntimeError(f"{exe} is missing: run `cargo build --release` first (or set VOXAUG_BIN)")
    return exe


def run_cli(*args):
    r = subprocess.run([cli(), *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"voxaug {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r.stdout


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """anatomical.nii plus a label map made from it by nibabel (4 tissue classes by intensity)."""
    d = tmp_path_factory.mktemp("data")
    img = nib.load(T1)
    a = img.get_fdata()
    lab = np.digitize(a, np.percentile(a, [50, 75, 90])).astype(np.uint8)
    seg = os.path.join(d, "anatomical_seg.nii.gz")
    nib.save(nib.Nifti1Image(lab, img.affine), seg)
    pipe = os.path.join(d, "pipe.json")
    import json

    with open(pipe, "w") as f:
        json.dump(PIPELINE, f)
    return {"t1": T1, "seg": seg, "pipeline": pipe, "dir": str(d)}
