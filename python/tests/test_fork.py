"""A process forked after voxaug ran (a PyTorch DataLoader worker under the default start method on
Linux, a multiprocessing pool) must be able to run voxaug: no call may wait on a thread pool whose
threads stayed in the parent."""
import os
import signal
import time

import numpy as np
import pytest

import voxaug

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def work(folder):
    """Every entry point that converts arrays or computes, on volumes large enough (> 2^16 voxels) for
    the parallel paths; returns a fingerprint of the results."""
    rng = np.random.default_rng(0)
    f = np.asfortranarray(rng.random((48, 40, 36), dtype=np.float32))
    c = np.ascontiguousarray(f)
    lab = np.asfortranarray((f > 0.5).astype(np.uint8))
    rot = voxaug.Pipeline.from_dict([{"type": "rotate", "degrees": [0, 0, 10]}])
    out = rot.apply(voxaug.Subject(t1=voxaug.Volume(f), seg=voxaug.Volume(lab, kind="label")))
    flipped = voxaug.Pipeline.from_dict([{"type": "flip", "axes": [0]}]).apply(voxaug.Volume(c))["image"]
    path = os.path.join(folder, f"v{os.getpid()}.nii")
    voxaug.write(path, out["t1"])
    back = voxaug.read(path)
    inv = rot.invert(out["t1"], voxaug.Volume(f))
    sampler = voxaug.GridSampler(voxaug.Volume(f), 32)
    agg = voxaug.GridAggregator(sampler)
    for patch, loc in sampler:
        agg.add_batch(np.asarray(patch.array)[None], np.asarray(loc)[None])
    stitched = agg.get_output()
    parts = [out["t1"].array, out["seg"].array, flipped.array, back.array, inv.array, stitched]
    return [float(np.asarray(p, dtype=np.float64).sum()) for p in parts]


def test_a_forked_child_runs_everything_the_parent_ran(tmp_path):
    expected = work(tmp_path)  # the parent's thread pools exist from here on
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when every call returned the parent's results
        code = 1
        try:
            signal.alarm(60)
            code = 0 if work(tmp_path) == expected else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung (a call waited on the parent's threads)")
    assert os.WIFEXITED(status), f"the forked child died: status {status} (SIGALRM = 14: it hung)"
    assert os.WEXITSTATUS(status) == 0, "the forked child's results differ from the parent's"
