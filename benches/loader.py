"""Training-loader throughput: samples/s through a PyTorch DataLoader for the same augmentation with voxaug,
TorchIO and MONAI, on the same machine in the same run, plus peak memory (RSS and PSS summed over the process and
its DataLoader workers, sampled every 20 ms, measured the same way for all three).

Pipelines (on the 197x233x189 MNI T1 + tissue labels, 32 subjects = the same files repeated, batch 2):
  heavy: random affine (10 deg, 0.1 scale, 5 mm) + elastic (B-spline, 7 control points, 7.5 mm) + flip +
         gamma + noise, 128^3 centre crop (benches/pipelines/loader_heavy.json; ../shared/tools/peer_loaders.py)
  light: random affine + flip + gamma, 48^3 centre crop (benches/pipelines/loader_light.json)
Peers use DataLoader(num_workers=2); voxaug uses voxaug.torch.Dataset in a DataLoader with num_workers=0
(its Rust threads do the work, 2 of them).

Usage: python benches/loader.py [--data DIR] [--only voxaug,torchio,monai] [--pipelines heavy,light]
                                 [--batches N] [--warmup N] [--device cpu|gpu] [--threads N] [--json out.json]
--device and --threads set voxaug's executor and thread count (default cpu, 2: the peers' two workers).
Each tool runs in its own child process so that memory is measured from a clean start.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "mni")
N_SUBJECTS = 32
BATCH = 2


def tree_rss(pid, with_pss=True):
    """(RSS, PSS) in bytes summed over a process and all its descendants. RSS counts pages shared by
    forked workers once per process; PSS splits them between the processes sharing them (0 unless
    `with_pss`: reading it walks every page table, see PeakRss)."""
    total, pss, stack = 0, 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            if with_pss:
                with open(f"/proc/{p}/smaps_rollup") as f:
                    pss += sum(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return total, pss


class PeakRss:
    """Peak RSS (every 20 ms: `statm` is a counter read) and peak PSS (every 0.5 s) of this process and
    its children, from a thread of this process. `smaps_rollup` walks the page tables of the whole
    process: for voxaug's 750 MB that was 13% of the loader's CPU time when read every 20 ms (perf,
    2 cores), and it grows with the memory a tool holds."""

    def __init__(self):
        self.peak, self.peak_pss, self._stop = 0, 0, False
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        last_pss = 0.0
        while not self._stop:
            now = time.monotonic()
            with_pss = now - last_pss >= 0.5
            rss, pss = tree_rss(os.getpid(), with_pss)
            if with_pss:
                last_pss = now
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            time.sleep(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop = True
        self._t.join()


def loader_for(tool, kind, t1, lab, device="cpu", threads=2):
    import torch

    crop = 128 if kind == "heavy" else 48
    if tool == "voxaug":
        import voxaug.torch

        subs = [{"t1": t1, "seg": lab} for _ in range(N_SUBJECTS)]
        ds = voxaug.torch.Dataset(subs, os.path.join(HERE, "pipelines", f"loader_{kind}.json"), labels=("seg",),
                                  batch_size=BATCH, num_threads=threads, device=device)
        return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)
    if tool == "torchio":
        import torchio as tio

        subs = [tio.Subject(t1=tio.ScalarImage(t1), seg=tio.LabelMap(lab)) for _ in range(N_SUBJECTS)]
        tfs = [tio.RandomAffine(degrees=10, scales=0.1, translation=5)]
        if kind == "heavy":
            tfs.append(tio.RandomElasticDeformation())
        tfs += [tio.RandomFlip(axes=("LR",)), tio.RandomGamma(log_gamma=0.3)]
        if kind == "heavy":
            tfs.append(tio.RandomNoise(std=(0, 10)))
        tfs.append(tio.CropOrPad(crop))
        ds = tio.SubjectsDataset(subs, transform=tio.Compose(tfs))
        return torch.utils.data.DataLoader(ds, batch_size=BATCH, num_workers=2, collate_fn=lambda x: x,
                                           persistent_workers=True)
    if tool == "monai":
        from monai import transforms as mt
        from monai.data import DataLoader, Dataset

        keys = ["t1", "seg"]
        files = [{"t1": t1, "seg": lab} for _ in range(N_SUBJECTS)]
        tfs = [mt.LoadImaged(keys=keys, image_only=True), mt.EnsureChannelFirstd(keys=keys),
               mt.RandAffined(keys=keys, prob=1.0, rotate_range=[0.1745] * 3, scale_range=[0.1] * 3,
                              translate_range=[5] * 3, mode=("bilinear", "nearest"))]
        if kind == "heavy":
            tfs.append(mt.Rand3DElasticd(keys=keys, sigma_range=(5, 8), magnitude_range=(50, 150), prob=1.0,
                                         mode=("bilinear", "nearest")))
        tfs += [mt.RandFlipd(keys=keys, spatial_axis=0, prob=0.5),
                mt.RandAdjustContrastd(keys=["t1"], gamma=(0.74, 1.35), prob=1.0)]
        if kind == "heavy":
            tfs.append(mt.RandGaussianNoised(keys=["t1"], std=10, prob=1.0))
        tfs.append(mt.ResizeWithPadOrCropd(keys=keys, spatial_size=(crop,) * 3))
        return DataLoader(Dataset(files, mt.Compose(tfs)), batch_size=BATCH, num_workers=2, persistent_workers=True)
    raise ValueError(tool)


def endless(loader):
    """Batches across epochs (voxaug's dataset gets its epoch set, as a training loop does)."""
    epoch = 0
    while True:
        ds = getattr(loader, "dataset", None)
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(epoch)
        yield from loader
        epoch += 1


def child(tool, kind, data, batches, warmup, device, threads):
    if tool != "voxaug":
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    t1 = os.path.join(data, "mni152_t1_1mm.nii.gz")
    lab = os.path.join(data, "mni152_tissue_labels_1mm.nii.gz")
    with PeakRss() as mem:
        it = endless(loader_for(tool, kind, t1, lab, device, threads))
        for _ in range(warmup):
            next(it)
        t = time.perf_counter()
        for _ in range(batches):
            next(it)
        dt = time.perf_counter() - t
    n = batches * BATCH
    print(json.dumps({"tool": tool, "pipeline": kind, "device": device if tool == "voxaug" else "cpu",
                      "threads": threads, "samples_per_s": n / dt, "s_per_sample": dt / n,
                      "peak_rss_mb": mem.peak / 2**20,
                      "peak_pss_mb": mem.peak_pss / 2**20, "samples": n}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--only", default="voxaug,torchio,monai")
    ap.add_argument("--pipelines", default="heavy,light")
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        tool, kind = a.child.split(":")
        child(tool, kind, a.data, a.batches, a.warmup, a.device, a.threads)
        return
    rows = []
    for kind in a.pipelines.split(","):
        for tool in a.only.split(","):
            batches = a.batches if tool != "voxaug" else max(a.batches, 20)
            r = subprocess.run([sys.executable, __file__, "--child", f"{tool}:{kind}", "--data", a.data,
                                "--batches", str(batches), "--warmup", str(a.warmup),
                                "--device", a.device, "--threads", str(a.threads)],
                               capture_output=True, text=True)
            line = [x for x in r.stdout.splitlines() if x.startswith("{")]
            if r.returncode != 0 or not line:
                print(f"{tool} {kind}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(line[-1])
            rows.append(row)
            print(f"{kind:5} {tool:8} {row['samples_per_s']:8.2f} samples/s ({row['s_per_sample']:.3f} s/sample), "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB, PSS {row['peak_pss_mb']:.0f} MB", flush=True)
    print()
    print("| pipeline | tool | samples/s | s/sample | peak RSS, summed (MB) | peak PSS, summed (MB) | voxaug speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        vx = [x for x in rows if x["tool"] == "voxaug" and x["pipeline"] == r["pipeline"]]
        ratio = f"{vx[0]['samples_per_s'] / r['samples_per_s']:.1f}x" if vx and r["tool"] != "voxaug" else ""
        print(f"| {r['pipeline']} | {r['tool']} | {r['samples_per_s']:.2f} | {r['s_per_sample']:.3f} | "
              f"{r['peak_rss_mb']:.0f} | {r['peak_pss_mb']:.0f} | {ratio} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
