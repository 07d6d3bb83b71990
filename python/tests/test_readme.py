"""The README's Python blocks run as written, in a folder holding the files they name (t1.nii.gz and
seg.nii.gz from the test data, examples/, data/sub-01_*, voxaug-demo/input from `voxaug demo`). The first
two blocks share one interpreter (the second continues the first, as in a notebook); the training loop
and the Ray block run on their own."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np

import voxaug
from conftest import ROOT, T1, run_cli


def python_blocks():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def run(code, cwd):
    r = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"README block failed:\n{code}\n--- stderr:\n{r.stderr[-4000:]}"
    return r.stdout


def test_readme_python_blocks_run(tmp_path):
    blocks = python_blocks()
    assert len(blocks) == 4, f"{len(blocks)} python blocks: update this test with the README"
    t1 = voxaug.read(T1)
    seg = voxaug.Volume((t1.array > 5000).astype(np.uint8) + (t1.array > 9000), t1.affine, kind="label")
    voxaug.write(tmp_path / "t1.nii.gz", t1)
    voxaug.write(tmp_path / "seg.nii.gz", seg)
    (tmp_path / "data").mkdir()
    shutil.copy(tmp_path / "t1.nii.gz", tmp_path / "data" / "sub-01_t1.nii.gz")
    shutil.copy(tmp_path / "seg.nii.gz", tmp_path / "data" / "sub-01_seg.nii.gz")
    shutil.copytree(os.path.join(ROOT, "examples"), tmp_path / "examples")
    run_cli("demo", "--shape", "64,64,40", "-n", "1", "--out", tmp_path / "voxaug-demo", "--device", "cpu")
    # Usage, then the loader (continuing in the same interpreter).
    run(blocks[0] + "\n" + blocks[1], tmp_path)
    assert (tmp_path / "t1_aug.nii.gz").is_file()
    # The training loop prints a loss per epoch.
    out = run(blocks[2], tmp_path)
    assert out.count("epoch ") == 3, out
    # Ray: one subject, 10 samples.
    run(blocks[3], tmp_path)
    assert (tmp_path / "aug").is_dir() and any((tmp_path / "aug").rglob("plan.json"))
