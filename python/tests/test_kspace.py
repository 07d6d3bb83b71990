"""k-space artefacts against numpy.fft: TorchIO's formulas (fftshift(fftn(x)), edit, ifftn, real part)
written out with numpy on small volumes, on both executors."""
import numpy as np
import pytest

import voxaug


def image(shape, signed=False, seed=0):
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    a = 100 * np.exp(-np.sqrt((x - 5.0) ** 2 + (y - 4.0) ** 2 + (z - 3.5) ** 2) / 4) + rng.random(shape) * 5
    if signed:
        a -= 30
    aff = np.diag([1.0, 1.2, 0.9, 1.0])
    return voxaug.Subject(t1=voxaug.Volume(a.astype(np.float32), aff),
                          seg=voxaug.Volume((x + y) % 3, aff, kind="label"))


def apply(sub, step, device):
    return voxaug.Pipeline.from_dict({"transforms": [step]}).apply(sub, device=device)


def torchio_like(x, edit):
    sp = np.fft.fftshift(np.fft.fftn(x.astype(np.float64)))
    edit(sp)
    return np.real(np.fft.ifftn(np.fft.ifftshift(sp)))


def check(got, want):
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, atol=2e-5 * scale, rtol=0)


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("shape", [(12, 10, 9), (13, 16, 11)])
def test_artefacts_match_numpy_fft(device, shape):
    sub = image(shape, signed=True)
    x = sub["t1"].array
    for axis in range(3):
        out = apply(sub, {"type": "ghosting", "ghosts": 3, "axis": axis, "intensity": 0.75}, device)

        def ghost(sp, axis=axis):
            idx = [slice(None)] * 3
            idx[axis] = slice(None, None, 3)
            mid = [slice(None)] * 3
            mid[axis] = slice(shape[axis] // 2, shape[axis] // 2 + 1)
            keep = sp[tuple(mid)].copy()
            sp[tuple(idx)] *= 0.25
            sp[tuple(mid)] = keep

        check(out["t1"].array, torchio_like(x, ghost))
        np.testing.assert_array_equal(out["seg"].array, sub["seg"].array)

    pos = np.array([[0.3, 0.75, 0.1]])
    out = apply(sub, {"type": "spike", "positions": pos.tolist(), "intensity": 0.6}, device)

    def spike(sp):
        i, j, k = np.floor(pos[0] * np.array(shape)).astype(int)
        sp[i, j, k] += np.abs(sp).max() * 0.6

    check(out["t1"].array, torchio_like(x, spike))

    frac = (0.5, 0.8, 0.6)
    out = apply(sub, {"type": "gibbs", "fraction": list(frac)}, device)

    def gibbs(sp):
        grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
        keep = np.ones(shape, bool)
        for g, f, n in zip(grids, frac, shape):
            keep &= np.abs(g) <= np.floor(f * n / 2)
        sp[~keep] = 0

    check(out["t1"].array, torchio_like(x, gibbs))


def test_fft_round_trip_and_identities():
    sub = image((9, 8, 7))
    for step in ({"type": "gibbs", "fraction": 1},
                 {"type": "spike", "spikes": 3, "intensity": 0},
                 {"type": "ghosting", "ghosts": 0, "axis": 2, "intensity": 1},
                 {"type": "motion", "degrees": [[0, 0, 0]], "translation_mm": [[0, 0, 0]]}):
        out = apply(sub, step, "cpu")
        np.testing.assert_array_equal(out["t1"].array, sub["t1"].array)


def test_random_spike_plan_records_positions():
    sub = image((10, 9, 8))
    pipe = voxaug.Pipeline.from_dict({"transforms": [{"type": "random_spike", "num_spikes": [2, 2]},
                                                     {"type": "random_motion"}]})
    out, plan = pipe.sample(sub, seed=3, index=1)
    spike = plan["transforms"][0]
    assert spike["type"] == "spike" and len(spike["positions"]) == 2
    assert plan["transforms"][1]["type"] == "motion" and len(plan["transforms"][1]["degrees"]) == 2
    again = voxaug.Pipeline.from_dict(plan).apply(sub, device="cpu")
    np.testing.assert_array_equal(again["t1"].array, out["t1"].array)
