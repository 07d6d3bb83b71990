import csv
import os

import pytest
import ray

import voxaug
import voxaug.ray
from conftest import run_cli


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_ray_output_is_byte_identical_to_cli(cluster, data, tmp_path):
    manifest = [{"name": "a", "t1": data["t1"], "seg": data["seg"]},
                {"name": "b", "t1": data["t1"], "seg": data["seg"]}]
    dirs = voxaug.ray.augment(manifest, data["pipeline"], tmp_path / "ray", samples_per_subject=2, seed=11,
                              labels=("seg",), device="cpu")
    assert [os.path.relpath(d, tmp_path / "ray") for d in dirs] == ["a/0000", "a/0001", "b/0000", "b/0001"]
    for r, row in enumerate(manifest):
        cli_out = tmp_path / "cli" / row["name"]
        run_cli("augment", data["pipeline"], "--image", row["t1"], "--label", row["seg"], "--out", cli_out,
                "-n", 2, "--seed", 11 + r, "--device", "cpu")
        for i in range(2):
            for f in ("anatomical.nii", "anatomical_seg.nii.gz", "plan.json"):
                got = (tmp_path / "ray" / row["name"] / f"{i:04d}" / f).read_bytes()
                assert got == (cli_out / f"{i:04d}" / f).read_bytes(), (row["name"], i, f)


def test_ray_csv_manifest_and_errors(cluster, data, tmp_path):
    csv_path = tmp_path / "manifest.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["name", "t1", "seg"])
        w.writeheader()
        w.writerow({"name": "only", "t1": data["t1"], "seg": data["seg"]})
    dirs = voxaug.ray.augment(csv_path, data["pipeline"], tmp_path / "out", samples_per_subject=1, device="cpu")
    assert len(dirs) == 1 and os.path.exists(os.path.join(dirs[0], "plan.json"))
    with pytest.raises(FileNotFoundError):
        voxaug.ray.augment([{"name": "x", "t1": str(tmp_path / "missing.nii")}], data["pipeline"], tmp_path / "o")
    with pytest.raises(voxaug.VoxaugError, match="twice"):
        voxaug.ray.augment([{"name": "x", "t1": data["t1"]}] * 2, data["pipeline"], tmp_path / "o")
