import json
import os
import threading
import time

import numpy as np
import pytest

import voxaug
from conftest import PIPELINE, T1, run_cli


def subject(data):
    return voxaug.Subject(t1=voxaug.read(data["t1"]), seg=voxaug.read(data["seg"], kind="label"))


def test_sample_matches_cli_augment_bytes(data, tmp_path):
    out = tmp_path / "cli"
    run_cli("augment", data["pipeline"], "--image", data["t1"], "--label", data["seg"], "--out", out,
            "-n", 3, "--seed", 5, "--device", "cpu")
    pipe = voxaug.Pipeline.from_file(data["pipeline"])
    sub = subject(data)
    for i in range(3):
        got, plan = pipe.sample(sub, seed=5, index=i, device="cpu")
        assert plan == json.load(open(out / f"{i:04d}" / "plan.json"))
        assert plan["seed"] == 5 and plan["sample"] == i
        assert got["t1"].array.shape == (24, 32, 20) and got["seg"].array.dtype == np.uint8
        mine = tmp_path / f"py{i}"
        mine.mkdir()
        voxaug.write(mine / "anatomical.nii", got["t1"])
        voxaug.write(mine / "anatomical_seg.nii.gz", got["seg"])
        for name in ("anatomical.nii", "anatomical_seg.nii.gz"):
            assert (mine / name).read_bytes() == (out / f"{i:04d}" / name).read_bytes(), (i, name)


def test_plan_reapplies_exactly_and_matches_cli_apply(data, tmp_path):
    pipe = voxaug.Pipeline.from_dict(PIPELINE)
    sub = subject(data)
    out, plan = pipe.sample(sub, seed=0, index=3)
    same = voxaug.Pipeline.from_dict(plan).apply(sub, device="cpu")
    for n in ("t1", "seg"):
        np.testing.assert_array_equal(same[n].array, out[n].array)
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan))
    run_cli("apply", p, "--image", data["t1"], "--label", data["seg"], "--out", tmp_path / "cli", "--device", "cpu")
    voxaug.write(tmp_path / "mine.nii.gz", same["seg"])
    assert (tmp_path / "mine.nii.gz").read_bytes() == (tmp_path / "cli" / "anatomical_seg.nii.gz").read_bytes()


def test_labels_keep_their_values(data):
    sub = subject(data)
    values = set(np.unique(sub["seg"].array))
    for i in range(4):
        out, _ = voxaug.Pipeline.from_dict(PIPELINE).sample(sub, seed=1, index=i)
        assert set(np.unique(out["seg"].array)) <= values


def test_pipeline_errors(data, tmp_path):
    with pytest.raises(voxaug.VoxaugError) as e:
        voxaug.Pipeline.from_dict({"transforms": [{"type": "rotatee", "degrees": 3}]})
    assert isinstance(e.value, ValueError) and "unknown transform type `rotatee`" in str(e.value)
    with pytest.raises(ValueError, match="unknown field"):
        voxaug.Pipeline.from_json('{"transforms": [{"type": "rotate", "degres": 3}]}')
    with pytest.raises(FileNotFoundError):
        voxaug.Pipeline.from_file(tmp_path / "nope.json")
    crop = voxaug.Pipeline.from_dict({"transforms": [{"type": "crop", "start": [0, 0, 0], "size": [100, 10, 10]}]})
    with pytest.raises(voxaug.VoxaugError, match="crop"):
        crop.apply(subject(data))


def test_the_constructor_takes_text_a_dict_or_a_list(tmp_path):
    steps = [{"type": "rotate", "degrees": [0, 0, 15]}, {"type": "zscore"}]
    want = voxaug.Pipeline.from_json(json.dumps({"seed": 0, "transforms": steps})).to_dict()
    for given in (steps, tuple(steps), {"seed": 0, "transforms": steps}, json.dumps(steps)):
        assert voxaug.Pipeline(given).to_dict() == want
    with pytest.raises(ValueError, match="Pipeline.from_file"):
        voxaug.Pipeline(tmp_path / "p.json")
    with pytest.raises(ValueError, match="got int"):
        voxaug.Pipeline(3)
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        voxaug.Pipeline([{"type": "rotate", "degrees": {1, 2}}])


def test_sample_releases_the_gil():
    rng = np.random.default_rng(0)
    big = voxaug.Subject(t1=voxaug.Volume(rng.normal(size=(128, 128, 128)).astype(np.float32)))
    pipe = voxaug.Pipeline.from_dict({"transforms": [
        {"type": "elastic_bspline", "max_displacement_mm": 5},
        {"type": "blur", "sigma": [2, 2, 2]},
        {"type": "random_affine", "degrees": 10}]})
    done = {}

    def work():
        t = time.perf_counter()
        for i in range(8):
            pipe.sample(big, seed=0, index=i)
        done["secs"] = time.perf_counter() - t

    th = threading.Thread(target=work)
    ticks = 0
    th.start()
    while th.is_alive():
        ticks += 1
        time.sleep(0.001)
    th.join()
    # With the GIL held the main thread would not run at all until the work ended.
    assert done["secs"] > 0.05
    assert ticks >= 0.2 * done["secs"] / 0.0011, (ticks, done)


def test_plan_invert_maps_a_prediction_back(tmp_path):
    # Test-time augmentation: a label map augmented with a copy-only plan comes back exactly where the
    # sample saw it, and as the fill elsewhere; probabilities come back trilinearly.
    rng = np.random.default_rng(0)
    lab = (rng.random((20, 18, 10)) * 4).astype(np.uint8)
    aff = np.diag([1.2, 1.0, 2.0, 1.0])
    ref = voxaug.Volume(lab, aff, kind="label")
    plan = voxaug.Pipeline.from_dict({"transforms": [
        {"type": "flip", "axes": [1]}, {"type": "crop", "start": [2, 0, 1], "size": [16, 18, 8]}]})
    out = plan.apply(voxaug.Subject(seg=ref))["seg"]
    back = plan.invert(out, ref, fill=0)
    assert back.array.shape == lab.shape and back.array.dtype == np.uint8
    assert np.array_equal(back.array[2:18, :, 1:9], lab[2:18, :, 1:9])
    assert (back.array[:2] == 0).all() and (back.array[18:] == 0).all()
    assert np.allclose(back.affine, aff)
    prob = voxaug.Volume(lab.astype(np.float32) / 3.0, aff)
    pout = plan.apply(voxaug.Subject(p=prob))["p"]
    pback = plan.invert(pout, prob, fill=-1)
    assert np.allclose(pback.array[2:18, :, 1:9], prob.array[2:18, :, 1:9], atol=1e-6)
    assert (pback.array[:2] == -1).all()
    with pytest.raises(voxaug.VoxaugValueError, match="no exact inverse"):
        voxaug.Pipeline.from_dict({"transforms": [
            {"type": "elastic", "sigma": [3, 3, 3], "alpha": [2, 2, 2], "seed": 1}]}).invert(out, ref)

    # The same as a pipeline step, with paths relative to the pipeline file (as on the command line).
    d = tmp_path / "tta"
    (d / "s0").mkdir(parents=True)
    (d / "s0" / "plan.json").write_text(plan.to_json())
    voxaug.write(d / "orig.nii.gz", ref)
    (d / "inv.json").write_text(json.dumps({"transforms": [
        {"type": "invert", "plan": "s0/plan.json", "reference": "orig.nii.gz"}]}))
    step = voxaug.Pipeline.from_file(d / "inv.json")
    assert step.to_dict()["transforms"][0]["input_shape"] == [16, 18, 8]
    assert np.array_equal(step.apply(voxaug.Subject(seg=out))["seg"].array, back.array)


def test_resample_to_a_member_brings_members_on_different_grids_together(data, tmp_path):
    # TorchIO's Resample("t1"): a label map at a third of the resolution meets the image's grid in the
    # pass fused with the transforms after it; the same in Pipeline.sample, the CLI and the Loader.
    t1 = voxaug.read(data["t1"])
    aff = t1.affine @ np.diag([3.0, 3.0, 3.0, 1.0])
    coarse = voxaug.Volume((np.indices((10, 12, 8)).sum(0) % 3).astype(np.uint8), affine=aff, kind="label")
    sub = voxaug.Subject(t1=t1, seg=coarse)
    pipe = voxaug.Pipeline.from_dict({"transforms": [
        {"type": "resample_to", "reference": "t1"}, {"type": "random_flip", "axes": ["LR"], "p": 1}]})
    out, plan = pipe.sample(sub, seed=0, index=0)
    assert out["seg"].array.shape == t1.array.shape and out.same_grid()
    assert set(np.unique(out["seg"].array)) <= {0, 1, 2}
    assert plan["transforms"][0]["grid"]["shape"] == list(t1.array.shape)
    # The plan holds t1's grid: it re-applies to the label map alone.
    alone = voxaug.Pipeline.from_dict(plan).apply(voxaug.Subject(seg=coarse))
    assert np.array_equal(alone["seg"].array, out["seg"].array)
    # The CLI names members by file name and gives the same bytes.
    voxaug.write(tmp_path / "seg.nii.gz", coarse)
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps({"transforms": [{"type": "resample_to", "reference": "anatomical"},
                                             {"type": "flip", "axes": [0]}]}))
    run_cli("apply", pf, "--image", data["t1"], "--label", tmp_path / "seg.nii.gz", "--out", tmp_path / "o",
            "--device", "cpu")
    assert np.array_equal(voxaug.read(tmp_path / "o" / "seg.nii.gz", kind="label").array, out["seg"].array)
    # The loader resolves the member per subject from its dict keys.
    loader = voxaug.Loader([{"t1": data["t1"], "seg": tmp_path / "seg.nii.gz"}], pipe, labels=("seg",),
                           batch_size=1, seed=0, device="cpu")
    batch = next(iter(loader))
    assert batch["seg"].shape == (1, 1) + t1.array.shape
    with pytest.raises(ValueError, match='"t2" is not a member.*t1, seg'):
        voxaug.Pipeline.from_dict({"transforms": [{"type": "resample_to", "reference": "t2"}]}).apply(sub)


def test_apply_leaves_the_callers_arrays_alone(data):
    # The run works in place on its own copies (a leading intensity or label stage, nan_to_num):
    # the caller's arrays keep their values, and the result does not share memory with them.
    sub = subject(data)
    t1, seg = sub["t1"].array.copy(), sub["seg"].array.copy()
    t1_nan = sub["t1"].array.copy()
    t1_nan[1, 2, 3] = np.nan
    pipe = voxaug.Pipeline.from_dict({"transforms": [
        {"type": "nan_to_num", "value": "min"}, {"type": "zscore", "mask": "nonzero"},
        {"type": "remap_labels", "mapping": {"1": 5}}]})
    nan_sub = voxaug.Subject(t1=voxaug.Volume(t1_nan, sub["t1"].affine), seg=sub["seg"])
    out = pipe.apply(nan_sub, device="cpu")
    assert np.isnan(t1_nan[1, 2, 3]) and np.array_equal(t1_nan[~np.isnan(t1_nan)], t1[~np.isnan(t1_nan)])
    assert np.array_equal(sub["seg"].array, seg)
    assert not np.shares_memory(out["t1"].array, t1_nan)
    assert abs(float(out["t1"].array[out["t1"].array != 0].mean())) < 1e-3
    assert 5 in np.unique(out["seg"].array) and 1 not in np.unique(out["seg"].array)
    # A flip runs in the run's copies too: the caller's arrays are untouched, the result is the mirror.
    flipped = voxaug.Pipeline.from_dict({"transforms": [{"type": "flip", "axes": [0, 2]}]}).apply(sub, device="cpu")
    assert np.array_equal(sub["t1"].array, t1) and np.array_equal(sub["seg"].array, seg)
    assert np.array_equal(flipped["t1"].array, t1[::-1, :, ::-1])
    assert np.array_equal(flipped["seg"].array, seg[::-1, :, ::-1])
    assert not np.shares_memory(flipped["t1"].array, sub["t1"].array)


def test_freed_outputs_go_back_to_the_pool_and_live_ones_stay():
    # Arrays voxaug returns own their buffer through a voxaug object: freeing the last array hands the
    # buffer to voxaug's pool for the next output of its size, and a live array's buffer is never
    # handed out. 112^3 float32 (5.6 MB) is above the pool's 4 MiB floor.
    import gc
    rng = np.random.default_rng(3)
    a = rng.random((112, 112, 112), dtype=np.float32)
    rot = voxaug.Pipeline.from_dict({"transforms": [{"type": "rotate", "degrees": [0, 0, 7]}]})
    out1 = rot.apply(voxaug.Subject(t1=voxaug.Volume(a)), device="cpu")
    keep = out1["t1"].array.copy()
    assert type(out1["t1"].array.base).__name__ == "Buffer"
    for scale in (2.0, 3.0):
        again = rot.apply(voxaug.Subject(t1=voxaug.Volume(a * scale)), device="cpu")
        np.testing.assert_allclose(again["t1"].array, keep * scale, rtol=1e-6, atol=1e-6)
        del again
        assert np.array_equal(out1["t1"].array, keep), "a live output kept its values"
    gc.collect()
    before = voxaug._voxaug._pool_bytes()
    nbytes = out1["t1"].array.nbytes
    del out1
    gc.collect()
    assert voxaug._voxaug._pool_bytes() == before + nbytes
    # The next output of that size comes out of the pool and is whole (every voxel written).
    out3 = rot.apply(voxaug.Subject(t1=voxaug.Volume(a)), device="cpu")
    assert np.array_equal(out3["t1"].array, keep)


def test_calling_a_pipeline_works_like_a_torchio_transform():
    import torch

    rng = np.random.default_rng(3)
    x = rng.random((20, 18, 16), dtype=np.float32)
    lab = voxaug.Volume((x > 0.5).astype(np.uint8), kind="label")
    rand = voxaug.Pipeline([{"type": "random_affine", "degrees": 20}])
    fixed = voxaug.Pipeline([{"type": "flip", "axes": [0]}])
    # Same types out as in; a fixed pipeline equals apply.
    assert isinstance(fixed(voxaug.Volume(x)), voxaug.Volume)
    np.testing.assert_array_equal(fixed(x), x[::-1])
    out = fixed(lab)
    assert out.kind == "label" and out.array.dtype == np.uint8
    np.testing.assert_array_equal(out.array, lab.array[::-1])
    sub = fixed(voxaug.Subject(t1=voxaug.Volume(x), seg=lab))
    assert isinstance(sub, voxaug.Subject) and sub.seg is sub["seg"]
    with pytest.raises(AttributeError, match="members: t1, seg"):
        sub.t2
    # A random pipeline draws from torch's generator: seeded calls repeat, the next call differs.
    torch.manual_seed(0)
    a = rand(x)
    torch.manual_seed(0)
    np.testing.assert_array_equal(rand(x), a)
    assert not np.array_equal(rand(x), a)
    # Channels share one plan (trilinear is linear: 2x in, exactly 2x out); tensors come back as tensors.
    two = torch.from_numpy(np.stack([x, 2 * x]))
    torch.manual_seed(1)
    t = rand(two)
    assert isinstance(t, torch.Tensor) and t.shape == (2, 20, 18, 16) and t.dtype == torch.float32
    torch.testing.assert_close(t[1], 2 * t[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="got shape"):
        rand(x[0])


def test_without_torch_calls_draw_from_numpys_generator():
    import subprocess
    import sys

    code = """
import sys; sys.modules['torch'] = None
import numpy as np, voxaug
x = np.random.default_rng(0).random((12, 10, 8), dtype=np.float32)
p = voxaug.Pipeline([{"type": "random_affine", "degrees": 20}])
np.random.seed(5); a = p(x)
np.random.seed(5); b = p(x)
print(np.array_equal(a, b), np.array_equal(p(x), a))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.split() == ["True", "False"], r.stderr
