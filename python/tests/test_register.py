"""voxaug.register from Python: a known rigid motion of the test image is recovered, the result dict has
transform.json's fields, and bad options are refused with a clear error."""
import numpy as np
import pytest

import voxaug
from conftest import T1


def test_register_recovers_a_shift():
    fixed = voxaug.read(T1)
    pipe = voxaug.Pipeline.from_dict({"transforms": [{"type": "shift", "mm": [3, -2, 1]}]})
    moved, _ = pipe.sample(voxaug.Subject(t1=fixed), device="cpu")
    result, back = voxaug.register(fixed, moved["t1"], metric="mse", levels=(2, 1), smooth=(1.0, 0.0))
    assert result["type"] == "rigid" and result["metric"] == "mse" and len(result["levels"]) == 2
    m = np.array(result["world_matrix"])
    # moving(W x) = fixed(x): the content moved by +shift, so W adds it (a quarter of a voxel on this
    # 33x41x25, 2 mm image).
    np.testing.assert_allclose(m[:3, 3], [3, -2, 1], atol=0.5)
    np.testing.assert_allclose(m[:3, :3], np.eye(3), atol=0.01)
    assert back.array.shape == fixed.array.shape
    inner = (slice(4, -4),) * 3  # away from the voxels the shift moved out of view (filled)
    before = np.abs(moved["t1"].array[inner] - fixed.array[inner]).mean()
    after = np.abs(back.array[inner] - fixed.array[inner]).mean()
    assert after < 0.5 * before


def test_register_refuses_bad_options():
    fixed = voxaug.read(T1)
    with pytest.raises(voxaug.VoxaugValueError, match="metric"):
        voxaug.register(fixed, fixed, metric="cc")
    with pytest.raises(voxaug.VoxaugValueError, match="sigma"):
        voxaug.register(fixed, fixed, levels=(2, 1), smooth=(1.0,))


def test_register_on_the_gpu_agrees_with_the_cpu():
    fixed = voxaug.read(T1)
    pipe = voxaug.Pipeline.from_dict({"transforms": [{"type": "rotate", "degrees": [0, 0, 5]}]})
    moved, _ = pipe.sample(voxaug.Subject(t1=fixed), device="cpu")
    c, _ = voxaug.register(fixed, moved["t1"], metric="ncc", levels=(2, 1), smooth=(1.0, 0.0), device="cpu")
    g, _ = voxaug.register(fixed, moved["t1"], metric="ncc", levels=(2, 1), smooth=(1.0, 0.0), device="gpu")
    np.testing.assert_allclose(np.array(g["world_matrix"]), np.array(c["world_matrix"]), atol=0.05)
