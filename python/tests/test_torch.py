import numpy as np
import torch
from torch.utils.data import DataLoader

import voxaug
import voxaug.torch
from conftest import PIPELINE


def run(data, workers):
    subs = [{"t1": data["t1"], "seg": data["seg"], "id": s} for s in range(6)]
    ds = voxaug.torch.Dataset(subs, PIPELINE, labels=("seg",), batch_size=2, seed=7, num_threads=1, device="cpu")
    ds.set_epoch(1)
    # A worker that never delivers (e.g. one waiting on a thread pool inherited through the fork)
    # fails the test after two minutes instead of hanging the run.
    dl = DataLoader(ds, batch_size=None, num_workers=workers, timeout=120 if workers else 0)
    return [b for b in dl]


def test_dataloader_workers_give_identical_batches(data):
    base = run(data, 0)
    two = run(data, 2)
    assert len(base) == len(two) == 3
    assert isinstance(base[0]["t1"], torch.Tensor) and base[0]["t1"].shape == (2, 1, 24, 32, 20)
    assert base[0]["seg"].dtype == torch.uint8
    for a, b in zip(base, two):
        assert a["index"] == b["index"] and a["id"] == b["id"]
        assert torch.equal(a["t1"], b["t1"]) and torch.equal(a["seg"], b["seg"])
    seen = [tuple(k) for b in two for k in b["index"]]
    assert len(seen) == len(set(seen)) == 6


def test_training_step_runs(data):
    batches = run(data, 0)
    net = torch.nn.Conv3d(1, 4, 3, padding=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    for b in batches:
        loss = torch.nn.functional.cross_entropy(net(b["t1"]), b["seg"][:, 0].long())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.isfinite(loss.item())


def test_voxaug_import_does_not_need_torch():
    import subprocess
    import sys

    code = "import sys; sys.modules['torch'] = None; import voxaug; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"


def test_readme_training_example_runs(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT, run_cli

    run_cli("demo", "--out", tmp_path / "demo", "-n", 1, "--shape", "64,64,40", "--device", "cpu")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", "train.py"),
                        tmp_path / "demo" / "input" / "image.nii.gz", tmp_path / "demo" / "input" / "label.nii.gz"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("epoch") == 3, r.stdout


def test_a_volume_takes_a_tensor_that_requires_grad():
    t = torch.rand(6, 5, 4, requires_grad=True)
    v = voxaug.Volume(t)
    assert v.array.dtype == np.float32 and v.shape == (6, 5, 4)
    np.testing.assert_array_equal(v.array, t.detach().numpy())
