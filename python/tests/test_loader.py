import numpy as np
import pytest

import voxaug
from conftest import PIPELINE, run_cli


def subjects(data, n=5):
    return [{"t1": data["t1"], "seg": data["seg"], "id": f"sub-{s}", "y": s % 2} for s in range(n)]


def epoch(loader, e):
    loader.set_epoch(e)
    return [b for b in loader]


def flat(batches):
    """(subject, sample index) -> (t1, seg) arrays over a list of batches."""
    out = {}
    for b in batches:
        for n, key in enumerate(b["index"]):
            assert key not in out
            out[key] = (b["t1"][n].copy(), b["seg"][n].copy())
    return out


def test_batches_shapes_types_and_fields(data):
    loader = voxaug.Loader(subjects(data), PIPELINE, labels=("seg",), batch_size=2, samples_per_volume=2,
                           shuffle=False, device="cpu")
    assert len(loader) == 5
    batches = epoch(loader, 0)
    assert len(batches) == 5
    b = batches[0]
    assert b["t1"].shape == (2, 1, 24, 32, 20) and b["t1"].dtype == np.float32
    assert b["seg"].shape == (2, 1, 24, 32, 20) and b["seg"].dtype == np.uint8
    assert b["t1"].flags["C_CONTIGUOUS"]
    assert b["index"] == [(0, 0), (0, 1)]
    assert b["id"] == ["sub-0", "sub-0"] and b["y"] == [0, 0]
    assert b["plan"][1]["sample"] == 1 and b["plan"][1]["seed"] == 0
    assert loader.cached_bytes > 0


def test_contract_sample_equals_pipeline_sample(data):
    loader = voxaug.Loader(subjects(data, 3), PIPELINE, batch_size=2, samples_per_volume=2, seed=10, device="cpu")
    got = flat(epoch(loader, 3))
    assert sorted(got) == [(s, 3 * 2 + j) for s in range(3) for j in range(2)]
    pipe = voxaug.Pipeline.from_dict(PIPELINE)
    sub = voxaug.Subject(t1=voxaug.read(data["t1"]), seg=voxaug.read(data["seg"], kind="label"))
    for (s, idx), (t1, seg) in got.items():
        want, _ = pipe.sample(sub, seed=10 + s, index=idx, device="cpu")
        np.testing.assert_array_equal(t1[0], want["t1"].array)
        np.testing.assert_array_equal(seg[0], want["seg"].array)


def test_batches_hold_every_voxel_type_in_c_order():
    """The batch transpose (i-fastest samples into C order) for a shape with whole and partial 16 x 16
    tiles along i and k: 4-byte voxels (the AVX2 8 x 8 blocks), 2-byte and 1-byte ones."""
    rng = np.random.default_rng(5)
    shape = (37, 6, 35)
    img = rng.normal(size=shape).astype(np.float32)
    for labels in (rng.integers(-5, 70000, shape).astype(np.int32), rng.integers(0, 300, shape).astype(np.uint16),
                   rng.integers(0, 9, shape).astype(np.uint8)):
        sub = voxaug.Subject(t1=voxaug.Volume(img), seg=voxaug.Volume(labels, kind="label"))
        pipe = {"transforms": [{"type": "flip", "axes": [0]}]}
        loader = voxaug.Loader([sub, sub], pipe, labels=("seg",), batch_size=2, shuffle=False, device="cpu")
        b = epoch(loader, 0)[0]
        assert b["t1"].flags["C_CONTIGUOUS"] and b["seg"].dtype == labels.dtype
        for n in range(2):
            np.testing.assert_array_equal(b["t1"][n, 0], img[::-1])
            np.testing.assert_array_equal(b["seg"][n, 0], labels[::-1])


def test_same_batches_for_any_threads_and_prefetch(data):
    runs = []
    for threads, prefetch in ((1, 1), (3, 2), (2, 8)):
        loader = voxaug.Loader(subjects(data), PIPELINE, batch_size=2, num_threads=threads, prefetch=prefetch,
                               seed=4, device="cpu")
        runs.append(epoch(loader, 1))
    for other in runs[1:]:
        assert [b["index"] for b in other] == [b["index"] for b in runs[0]]
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a["t1"], b["t1"])
            np.testing.assert_array_equal(a["seg"], b["seg"])


def test_shuffle_depends_on_seed_and_epoch_only(data):
    loader = voxaug.Loader(subjects(data, 8), PIPELINE, batch_size=1, seed=3, device="cpu")
    e0 = [s for s, _ in loader.samples(0)]
    e1 = [s for s, _ in loader.samples(1)]
    assert sorted(e0) == list(range(8)) and e0 != e1
    assert e0 == [s for s, _ in voxaug.Loader(subjects(data, 8), PIPELINE, seed=3).samples(0)]
    # The epoch advances after a full pass.
    first = [b["index"] for b in loader]
    second = [b["index"] for b in loader]
    assert first[0][0][1] == 0 and second[0][0][1] == 1


@pytest.mark.parametrize("world", [2, 3])
def test_rank_union_is_the_single_rank_epoch(data, world):
    subs = subjects(data, 6)
    single = flat(epoch(voxaug.Loader(subs, PIPELINE, batch_size=2, seed=1, device="cpu"), 2))
    union = {}
    counts = []
    for rank in range(world):
        part = flat(epoch(voxaug.Loader(subs, PIPELINE, batch_size=2, seed=1, rank=rank, world_size=world,
                                        device="cpu"), 2))
        assert not set(part) & set(union)
        union.update(part)
        counts.append(len(part))
    assert sorted(union) == sorted(single) and len(set(counts)) == 1
    for k, (t1, seg) in single.items():
        np.testing.assert_array_equal(union[k][0], t1)
        np.testing.assert_array_equal(union[k][1], seg)


def test_padding_and_drop_last_like_distributed_sampler(data):
    subs = subjects(data, 5)
    pad = [voxaug.Loader(subs, PIPELINE, batch_size=1, shuffle=False, rank=r, world_size=2).samples(0) for r in (0, 1)]
    assert [len(p) for p in pad] == [3, 3] and {s for p in pad for s, _ in p} == set(range(5))
    drop = [voxaug.Loader(subs, PIPELINE, batch_size=2, shuffle=False, rank=r, world_size=2, drop_last=True)
            for r in (0, 1)]
    assert [len(d.samples(0)) for d in drop] == [2, 2] and [len(d) for d in drop] == [1, 1]


def test_rank_from_environment(data, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = voxaug.Loader(subjects(data, 4), PIPELINE)
    assert (loader.rank, loader.world_size) == (1, 2)


def test_in_memory_subjects(data):
    sub = voxaug.Subject(t1=voxaug.read(data["t1"]), seg=voxaug.read(data["seg"], kind="label"))
    mem = flat(epoch(voxaug.Loader([sub, sub], PIPELINE, batch_size=2, seed=2, device="cpu"), 0))
    files = flat(epoch(voxaug.Loader(subjects(data, 2), PIPELINE, batch_size=2, seed=2, device="cpu"), 0))
    for k in files:
        np.testing.assert_array_equal(mem[k][0], files[k][0])


def test_in_memory_dicts_carry_fields_like_path_dicts(data):
    t1, seg = voxaug.read(data["t1"]), voxaug.read(data["seg"], kind="label")
    mem = [{"t1": t1, "seg": seg, "id": f"sub-{s}", "y": s % 2} for s in range(3)]
    a = epoch(voxaug.Loader(mem, PIPELINE, labels=("seg",), batch_size=3, seed=2, device="cpu"), 0)[0]
    b = epoch(voxaug.Loader(subjects(data, 3), PIPELINE, labels=("seg",), batch_size=3, seed=2, device="cpu"), 0)[0]
    assert a["id"] == b["id"] == ["sub-0", "sub-1", "sub-2"] and a["y"] == b["y"] == [0, 1, 0]
    np.testing.assert_array_equal(a["t1"], b["t1"])
    np.testing.assert_array_equal(a["seg"], b["seg"])
    assert a["seg"].dtype == b["seg"].dtype
    with pytest.raises(voxaug.VoxaugError, match="beside in-memory Volumes"):
        voxaug.Loader([{"t1": t1, "seg": data["seg"]}], PIPELINE, labels=("seg",))
    with pytest.raises(voxaug.VoxaugError, match='kind="label"'):
        voxaug.Loader([{"t1": t1, "seg": voxaug.read(data["seg"])}], PIPELINE, labels=("seg",))
    with pytest.raises(voxaug.VoxaugError, match="'y' is neither a Volume nor JSON-able"):
        voxaug.Loader([{"t1": t1, "y": {1, 2}}], PIPELINE)
    with pytest.raises(voxaug.VoxaugError, match="'y' is neither a volume path nor JSON-able"):
        voxaug.Loader([{"t1": data["t1"], "y": {1, 2}}], PIPELINE)
    with pytest.raises(voxaug.VoxaugError, match="reserved"):
        voxaug.Loader([{"t1": t1, "plan": 1}], PIPELINE)


def test_loader_errors(data, tmp_path):
    no_crop = {"transforms": [{"type": "random_affine", "degrees": 5}]}
    other = tmp_path / "small.nii.gz"
    voxaug.write(other, voxaug.Volume(np.zeros((10, 10, 10), np.float32)))
    loader = voxaug.Loader([{"t1": data["t1"]}, {"t1": str(other)}], no_crop, labels=(), batch_size=2,
                           shuffle=False, device="cpu")
    with pytest.raises(voxaug.VoxaugError, match="different shapes.*crop.*batch_size=1") as e:
        list(loader)
    assert isinstance(e.value, ValueError)
    with pytest.raises(FileNotFoundError):
        voxaug.Loader([{"t1": str(tmp_path / "missing.nii.gz")}], no_crop)
    with pytest.raises(voxaug.VoxaugError, match="reserved"):
        voxaug.Loader([{"t1": data["t1"], "index": 3}], no_crop)
    with pytest.raises(voxaug.VoxaugError, match="unknown transform"):
        voxaug.Loader([{"t1": data["t1"]}], {"transforms": [{"type": "nope"}]})
    broken = tmp_path / "broken.nii"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(voxaug.VoxaugError, match="broken.nii"):
        list(voxaug.Loader([{"t1": str(broken)}], no_crop, device="cpu"))


def test_patches_roundtrip():
    rng = np.random.default_rng(1)
    v = voxaug.Volume(rng.normal(size=(20, 17, 9)).astype(np.float32), affine=np.diag([2.0, 2, 3, 1]))
    sampler = voxaug.GridSampler(v, patch_size=(8, 8, 6), overlap=(2, 3, 2))
    assert len(sampler) > 1
    for mode in ("crop", "average", "hann"):
        agg = voxaug.GridAggregator(sampler, overlap_mode=mode)
        patches, locs = zip(*sampler)
        p0, l0 = patches[0], locs[0]
        assert p0.shape == (8, 8, 6) and list(l0) == [0, 0, 0, 8, 8, 6]
        for start in range(0, len(patches), 3):
            batch = np.stack([p.array for p in patches[start:start + 3]])[:, None]
            agg.add_batch(batch, np.stack(locs[start:start + 3]))
        np.testing.assert_allclose(agg.get_output()[0], v.array, rtol=1e-6, atol=1e-6)
    last, loc = sampler[len(sampler) - 1]
    np.testing.assert_allclose(last.affine[:3, 3], v.affine[:3, :3] @ loc[:3] + v.affine[:3, 3])
    with pytest.raises(voxaug.VoxaugError, match="patch_size"):
        voxaug.GridSampler(v, patch_size=30)


def test_multi_channel_member_batches_as_channels(tmp_path):
    # A BraTS-style 4D file (modalities along dim 4) is one member: the CLI writes it back as 4D
    # (nibabel reads it), the loader batches it as (B, C, X, Y, Z), each channel z-scored on its own.
    import nibabel as nib
    rng = np.random.default_rng(0)
    aff = np.diag([1.2, 1.0, 1.5, 1.0])
    mods = (rng.random((16, 14, 10, 4)) * [1, 10, 100, 1000] + 1).astype(np.float32)
    nib.save(nib.Nifti1Image(mods, aff), tmp_path / "mods.nii.gz")
    seg = (rng.random((16, 14, 10)) * 3).astype(np.uint8)
    nib.save(nib.Nifti1Image(seg, aff), tmp_path / "seg.nii.gz")
    pipe = voxaug.Pipeline.from_dict({"transforms": [{"type": "flip", "axes": [0]}, {"type": "zscore"}]})
    (tmp_path / "p.json").write_text(pipe.to_json())
    run_cli("apply", tmp_path / "p.json", "--image", tmp_path / "mods.nii.gz", "--label", tmp_path / "seg.nii.gz",
            "--out", tmp_path / "o", "--device", "cpu")
    out = nib.load(tmp_path / "o" / "mods.nii.gz")
    assert out.shape == (16, 14, 10, 4)
    got = np.asarray(out.dataobj, dtype=np.float32)
    for c in range(4):
        ch = mods[::-1, :, :, c]
        assert np.allclose(got[..., c], (ch - ch.mean()) / ch.std(), atol=1e-4)
    loader = voxaug.Loader([{"mods": tmp_path / "mods.nii.gz", "seg": tmp_path / "seg.nii.gz"}] * 2, pipe,
                           labels=("seg",), batch_size=2, seed=0, device="cpu")
    batch = next(iter(loader))
    assert batch["mods"].shape == (2, 4, 16, 14, 10) and batch["seg"].shape == (2, 1, 16, 14, 10)
    assert np.allclose(batch["mods"][1], np.moveaxis(got, 3, 0), atol=1e-6)
    # dim 5 with the vector intent: written back the same way.
    vec = nib.Nifti1Image(mods[:, :, :, None, :], aff)
    vec.header.set_intent("vector")
    nib.save(vec, tmp_path / "vec.nii")
    run_cli("apply", tmp_path / "p.json", "--image", tmp_path / "vec.nii", "--out", tmp_path / "v", "--device", "cpu")
    back = nib.load(tmp_path / "v" / "vec.nii")
    assert back.shape == (16, 14, 10, 1, 4) and back.header.get_intent()[0] == "vector"
    assert np.allclose(np.asarray(back.dataobj)[:, :, :, 0, :], got, atol=1e-6)


def test_one_hot_label_maps(data):
    # one_hot=True: label maps as float32 (B, n_classes, X, Y, Z) over the first subject's sorted values,
    # or over `classes`; a value outside `classes` is 0 in every channel.
    pipe = voxaug.Pipeline.from_dict({"transforms": [{"type": "center_crop", "size": [24, 32, 20]}]})
    plain = next(iter(voxaug.Loader(subjects(data, 2), pipe, labels=("seg",), batch_size=2, seed=0, device="cpu")))
    seg = plain["seg"][:, 0]
    values = np.unique(voxaug.read(data["seg"], kind="label").array)
    hot = next(iter(voxaug.Loader(subjects(data, 2), pipe, labels=("seg",), batch_size=2, seed=0, device="cpu",
                                  one_hot=True)))
    assert hot["seg"].dtype == np.float32 and hot["seg"].shape == (2, len(values), 24, 32, 20)
    assert np.array_equal(hot["seg"].argmax(1), np.searchsorted(values, seg))
    assert np.array_equal(hot["seg"].sum(1), np.ones_like(seg, np.float32))
    assert np.array_equal(hot["t1"], plain["t1"])
    some = next(iter(voxaug.Loader(subjects(data, 2), pipe, labels=("seg",), batch_size=2, seed=0, device="cpu",
                                   one_hot=True, classes=[int(values[-1]), 0])))
    assert some["seg"].shape == (2, 2, 24, 32, 20)
    assert np.array_equal(some["seg"][:, 0], (seg == values[-1]).astype(np.float32))
    assert np.array_equal(some["seg"][:, 1], (seg == 0).astype(np.float32))
    with pytest.raises(ValueError, match="one_hot"):
        voxaug.Loader(subjects(data, 2), pipe, classes=[0, 1])


def test_freed_batches_are_recycled_whole():
    # A batch's arrays give their buffers back to voxaug's pool when freed; later batches written into
    # them hold exactly what fresh buffers would (every voxel of the transposed batch is written).
    import gc
    rng = np.random.default_rng(8)
    shape = (112, 112, 112)  # 2 x 5.6 MB of float32 per batch: above the pool's 4 MiB floor
    subs = [voxaug.Subject(t1=voxaug.Volume(rng.normal(size=shape).astype(np.float32)),
                           seg=voxaug.Volume(rng.integers(0, 9, shape).astype(np.uint8), kind="label"))
            for _ in range(4)]
    pipe = {"transforms": [{"type": "flip", "axes": [1]}]}
    loader = voxaug.Loader(subs, pipe, labels=("seg",), batch_size=2, shuffle=False, device="cpu")
    gc.collect()
    before = voxaug._voxaug._pool_bytes()
    seen = 0
    loader.set_epoch(0)
    for b in loader:  # one batch alive at a time
        assert type(b["t1"].base).__name__ == "Buffer"
        for n in range(2):
            s = subs[seen + n]
            np.testing.assert_array_equal(b["t1"][n, 0], s["t1"].array[:, ::-1])
            np.testing.assert_array_equal(b["seg"][n, 0], s["seg"].array[:, ::-1])
        seen += 2
        nbytes = b["t1"].nbytes  # the uint8 batch (2.8 MB) is under the floor
        del b
        gc.collect()
    assert seen == 4
    assert voxaug._voxaug._pool_bytes() >= before + nbytes
