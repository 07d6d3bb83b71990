#!/bin/bash
# One prepared run on a machine with a hardware GPU (issue #16): adapter list, `voxaug bench` on CPU and
# GPU, augmentation throughput without writing (nnU-Net-like pipeline, 128^3), the GPU parity test
# binaries, and the Python loader on both executors. Everything is built beforehand on the development
# machine (that machine has no Rust toolchain and no network) and carried:
#   .dev/bins.txz  stripped `voxaug` and the test binaries that run on the GPU (tar, xz); optionally
#                  `voxaug_old`, a build of an earlier commit: then the GPU rows of `voxaug bench` and
#                  `augment --no-write` are measured for both, alternated (same machine, same minutes)
#   .dev/*.whl     the Python wheel (abi3)
#   .gl/*.deb      the Vulkan loader (the image has the NVIDIA driver's ICD but no libvulkan)
# `bash benches/device_check.sh quick` skips the full bench (A/B, tests, throughput, loader only).
# Results go to $OUT (devices.txt, bench.json/.txt, ab.txt, augment.txt, tests.txt, loader.txt), each written as
# soon as its step ends so a run cut short still returns what it measured.
set -u
OUT=${OUT:-/tmp/voxaug-device}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
mkdir -p /tmp/vx && tar xJf .dev/bins.txz -C /tmp/vx
# The test binaries were compiled in /work/main (their data paths are absolute).
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
# ... and the CLI tests run the binary from target/release.
mkdir -p target/release && ln -sf /tmp/vx/voxaug target/release/voxaug
V=/tmp/vx/voxaug
OLD=/tmp/vx/voxaug_old
log() { echo "== $* ($(date +%T))"; }

log devices
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee "$OUT/devices.txt"
nproc | tee -a "$OUT/devices.txt"
$V devices 2>&1 | tee -a "$OUT/devices.txt"

$V demo --out /tmp/demo128 -n 1 --shape 128,128,128 --device cpu >/dev/null 2>&1
in="--image /tmp/demo128/input/image.nii.gz --label /tmp/demo128/input/label.nii.gz"
if [ -x "$OLD" ]; then
  log "A/B: old and new binary alternated"
  {
    for round in 1 2; do
      for b in old new; do
        bin=$V; [ $b = old ] && bin=$OLD
        echo "-- $b, round $round"
        $bin bench --size 128,256 --device gpu --ops rotate,elastic,zscore,nnunet -n 5 2>&1 \
          | grep -E "resident|kernel|steady|owned|end_to_end"
        for bs in 1 8 32; do
          echo "augment $b batch $bs: $($bin augment examples/pipelines/nnunet_default.json $in \
            --no-write -n 128 --batch $bs --device gpu 2>/dev/null)"
        done
        # Statistics after a spatial stage (percentiles, label-masked zscore, gamma's range): built
        # on the device since session 15, read back before.
        echo "augment $b stats after spatial, batch 8: $($bin augment \
          benches/pipelines/stats_after_spatial.json $in --no-write -n 64 --batch 8 --device gpu \
          2>/dev/null)"
      done
    done
  } 2>&1 | tee "$OUT/ab.txt"
fi

log parity tests
{
  for t in parity labels elastic conventions geometry invert oracles augment errors kspace label_interp register; do
    echo "-- $t"
    [ -x /tmp/vx/$t ] || { echo "not carried"; continue; }
    /tmp/vx/$t --test-threads 8 2>&1 | grep -E "^test result|FAILED|panicked" -A2 | grep -v "^stack backtrace\|^note:" | head -30
  done
} 2>&1 | tee "$OUT/tests.txt"

if [ "${1:-full}" != quick ]; then
  log bench
  $V bench --size 128,256 --device cpu,gpu -n 5 --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"
fi

log augment throughput
{
  for dev in cpu gpu; do
    for b in 1 8 32; do
      echo "device $dev batch $b:"
      $V augment examples/pipelines/nnunet_default.json $in --no-write -n 64 --batch $b --device $dev 2>/dev/null
    done
  done
} 2>&1 | tee "$OUT/augment.txt"
[ -x /tmp/vx/gpu_plan_probe ] && /tmp/vx/gpu_plan_probe examples/pipelines/nnunet_default.json \
  /tmp/demo128/input/image.nii.gz /tmp/demo128/input/label.nii.gz 8 2>&1 | tee "$OUT/plan_probe.txt"

log python loader
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .dev/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
{
  for dev in gpu cpu; do
    timeout 60 python3 benches/loader.py --only voxaug --data data/mni --device $dev --threads 16 \
      --batches 20 --warmup 3 || echo "loader on $dev: failed or timed out (rc $?)"
  done
} 2>&1 | tee "$OUT/loader.txt"
log done
