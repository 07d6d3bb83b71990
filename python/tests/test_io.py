import os
import sys

import nibabel as nib
import numpy as np
import pytest

import voxaug
from conftest import DATA, T1


@pytest.mark.parametrize("name", ["anatomical.nii", "anatomical_pair.hdr", "anatomical_analyze.hdr"])
def test_read_equals_nibabel(name):
    path = os.path.join(DATA, name)
    img = nib.load(path)
    want = img.get_fdata(dtype=np.float32)
    if want.ndim == 4:
        want = want[..., 0]
    v = voxaug.read(path)
    assert v.kind == "image"
    assert v.array.dtype == np.float32
    np.testing.assert_array_equal(v.array, want)
    np.testing.assert_allclose(v.affine, img.affine, atol=1e-5)
    np.testing.assert_allclose(v.spacing, img.header.get_zooms()[:3], rtol=1e-6)


def test_label_read_and_write_roundtrip(data, tmp_path):
    seg = voxaug.read(data["seg"], kind="label")
    assert seg.kind == "label" and seg.array.dtype == np.uint8 and seg.dtype == "uint8"
    np.testing.assert_array_equal(seg.array, np.asarray(nib.load(data["seg"]).dataobj))
    out = tmp_path / "seg_out.nii.gz"
    voxaug.write(out, seg)
    back = nib.load(out)
    assert back.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(back.dataobj), seg.array)
    np.testing.assert_allclose(back.affine, seg.affine, atol=1e-5)


def test_write_image_nibabel_reads_it_back(tmp_path):
    t1 = voxaug.read(T1)
    out = tmp_path / "t1.nii.gz"
    voxaug.write(out, t1)
    img = nib.load(out)
    np.testing.assert_array_equal(img.get_fdata(dtype=np.float32), t1.array)
    np.testing.assert_allclose(img.affine, t1.affine, atol=1e-5)


def test_volume_from_numpy_any_order(tmp_path):
    a = np.random.default_rng(0).normal(size=(7, 5, 3)).astype(np.float32)
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    for arr in (a, np.asfortranarray(a), a[::-1, :, ::2].copy(), a.astype(np.float64)):
        v = voxaug.Volume(arr, affine=aff)
        out = tmp_path / "v.nii"
        voxaug.write(out, v)
        np.testing.assert_array_equal(voxaug.read(out).array, arr.astype(np.float32))
    v = voxaug.Volume(a)
    np.testing.assert_array_equal(v.affine, np.eye(4))
    assert v.array is a  # float32 input is not copied
    # C-ordered arrays enter voxaug through a tiled transpose: whole and partial 16 x 16 tiles along i
    # and k, every voxel type; a flip's result shows each voxel landed where it belongs.
    rng = np.random.default_rng(1)
    big = rng.normal(size=(37, 6, 35)).astype(np.float32)
    flip = voxaug.Pipeline.from_dict({"transforms": [{"type": "flip", "axes": [1]}]})
    for dt in ("uint8", "int8", "uint16", "int16", "uint32", "int32"):
        lab = rng.integers(0, 100, big.shape).astype(dt)
        assert lab.flags["C_CONTIGUOUS"]
        out = flip.apply(voxaug.Subject(t1=voxaug.Volume(big), seg=voxaug.Volume(lab, kind="label")), device="cpu")
        np.testing.assert_array_equal(out["t1"].array, big[:, ::-1])
        np.testing.assert_array_equal(out["seg"].array, lab[:, ::-1])
        assert out["seg"].array.dtype == lab.dtype


def test_label_volume_from_numpy():
    v = voxaug.Volume(np.array([[[0.0, 1.0], [2.0, 300.0]]]), kind="label")
    assert v.dtype == "uint16" and v.array.dtype == np.uint16
    with pytest.raises(voxaug.VoxaugError, match="non-integer"):
        voxaug.Volume(np.full((2, 2, 2), 0.5), kind="label")


def test_errors_are_voxaug_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        voxaug.read(tmp_path / "missing.nii.gz")
    assert isinstance(e.value, voxaug.VoxaugError) and isinstance(e.value, OSError)
    assert "missing.nii.gz" in str(e.value)
    bad = tmp_path / "truncated.nii"
    bad.write_bytes(open(T1, "rb").read()[:400])
    with pytest.raises(voxaug.VoxaugError) as e:
        voxaug.read(bad)
    assert isinstance(e.value, ValueError) and "truncated.nii" in str(e.value)
    with pytest.raises(ValueError):
        voxaug.read(T1, kind="mask")
    with pytest.raises(voxaug.VoxaugError):
        voxaug.Volume(np.zeros((2, 2)))
    with pytest.raises(voxaug.VoxaugError, match="NaN"):
        voxaug.Pipeline.from_dict({"transforms": [{"type": "zscore"}]}).apply(
            voxaug.Subject(t1=voxaug.Volume(np.full((3, 3, 3), np.nan, np.float32))))


def test_subject_checks_grids(data):
    t1 = voxaug.read(T1)
    seg = voxaug.read(data["seg"], kind="label")
    s = voxaug.Subject(t1=t1, seg=seg)
    assert list(s) == ["t1", "seg"] and s.images() == ["t1"] and s.labels() == ["seg"]
    small = voxaug.Volume(np.zeros((3, 3, 3), np.float32))
    # Members on different grids are accepted; anything that needs one grid says how to get there.
    mixed = voxaug.Subject(t1=t1, small=small)
    assert not mixed.same_grid() and s.same_grid()
    with pytest.raises(ValueError, match="different shapes.*resample_to"):
        mixed.shape
    with pytest.raises(ValueError, match="different grid.*resample_to"):
        voxaug.Pipeline.from_dict({"transforms": [{"type": "flip", "axes": [0]}]}).apply(mixed)


def test_parallel_gzip_is_one_gzip_file_to_nibabel_and_gzip(tmp_path):
    # 8 MiB of voxels: written as several independent gzip members, compressed in parallel. nibabel and
    # Python's gzip module read it as one file, and the bytes do not depend on the thread count.
    rng = np.random.default_rng(3)
    arr = np.round(rng.normal(100, 30, (128, 128, 128))).astype(np.float32)
    v = voxaug.Volume(arr, affine=np.diag([0.9, 1.1, 1.3, 1.0]))
    out = tmp_path / "big.nii.gz"
    voxaug.write(out, v)
    raw = out.read_bytes()
    assert raw.count(b"\x1f\x8b\x08") >= 4, "several gzip members"
    import gzip

    assert len(gzip.decompress(raw)) == 352 + arr.nbytes
    back = nib.load(str(out))
    np.testing.assert_array_equal(np.asarray(back.dataobj), arr)
    np.testing.assert_allclose(back.affine, v.affine, atol=1e-6)


@pytest.mark.parametrize("perm,signs", [((0, 1, 2), (-1, 1, 1)), ((2, 0, 1), (1, -1, 1)), ((1, 2, 0), (-1, -1, -1))])
def test_to_canonical_equals_nibabel(perm, signs):
    # A permuted, flipped, anisotropic grid; voxaug's to_canonical must give nibabel's as_closest_canonical.
    rng = np.random.default_rng(3)
    a = rng.random((6, 7, 8)).astype(np.float32)
    aff = np.zeros((4, 4))
    for vox_axis, world_axis in enumerate(perm):
        aff[world_axis, vox_axis] = signs[vox_axis] * (1.0 + 0.5 * vox_axis)
    aff[:3, 3] = [4.0, -2.0, 7.5]
    aff[3, 3] = 1.0
    want = nib.as_closest_canonical(nib.Nifti1Image(a, aff))
    out, _ = voxaug.Pipeline.from_dict({"transforms": [{"type": "to_canonical"}]}).sample(
        voxaug.Volume(a, aff), device="cpu")
    got = out if isinstance(out, voxaug.Volume) else list(out.values())[0]
    assert np.allclose(got.affine, want.affine, atol=1e-6)
    assert np.array_equal(np.asarray(got.array), np.asarray(want.dataobj))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux")
def test_a_refused_allocation_is_a_memory_error_in_apply_and_in_the_loader():
    import subprocess

    # In a child limited to 3 GiB of address space: a 1024^3 float32 output (4 GiB) cannot exist.
    code = """
import resource, numpy as np, voxaug
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
sub = voxaug.Subject(t1=voxaug.Volume(np.ones((8, 8, 8), np.float32)))
big = [{"type": "resize", "shape": [1024, 1024, 1024]}]
for run in (lambda: voxaug.Pipeline(big).apply(sub),
            lambda: next(iter(voxaug.Loader([sub], {"transforms": big}, batch_size=1, device="cpu")))):
    try:
        run()
        print("no error")
    except voxaug.VoxaugMemoryError as e:
        print(isinstance(e, MemoryError) and "out of memory" in str(e))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["True", "True"], (r.stdout, r.stderr)
