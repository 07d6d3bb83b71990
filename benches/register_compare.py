"""Registration speed and accuracy against SimpleITK on the MNI T1 pair (issue #17's benchmark).

The moving image is the MNI T1 (197x233x189, 1 mm) resampled through a known affine T (rotation, scaling,
shear, translation) by SimpleITK, optionally with an inverted contrast, noise and a bias field
(--contrast t2). Both tools register it back with the same setup: affine, Mattes-style MI with 32 bins on
a 20% (voxaug: 25%, at most 100k) random sample, shrink 4/2/1, smoothing 2/1/0 mm, geometry
initialisation, regular-step gradient descent (SimpleITK: learning rate 1, min step 1e-4, 200
iterations, scales from physical shift), 2 threads. TRE: mean distance between the true and the
recovered mapping of brain voxel centres (every 7th voxel above a tenth of the maximum).

ANTsPy (`pip install antspyx`), when installed, registers the same pair with its own `AffineFast` and
`Affine` presets (Mattes MI; its defaults for levels and iterations), timed the same way; its forward
transform is an ITK file, read by SimpleITK for the TRE.

Usage: python benches/register_compare.py [--data DIR] [--contrast same|t2] [--threads 2] [--voxaug BIN]
"""
import argparse
import atexit
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
import SimpleITK as sitk

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def tre(fixed, a, b):
    arr = sitk.GetArrayFromImage(fixed)  # z, y, x
    zz, yy, xx = np.nonzero(arr > 0.1 * arr.max())
    idx = np.stack([xx, yy, zz], 1)[::7]
    d = []
    for i in idx:
        p = fixed.TransformIndexToPhysicalPoint([int(v) for v in i])
        d.append(np.linalg.norm(np.array(a.TransformPoint(p)) - np.array(b.TransformPoint(p))))
    return float(np.mean(d))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "mni"))
    ap.add_argument("--contrast", default="same", choices=["same", "t2"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--voxaug", default=os.path.join(ROOT, "target", "release", "voxaug"))
    a = ap.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(a.threads)
    fixed = sitk.ReadImage(os.path.join(a.data, "mni152_t1_1mm.nii.gz"), sitk.sitkFloat32)
    # T maps a moving-grid point to the fixed point it shows: moving(y) = fixed(T y); truth W = T^-1.
    c = fixed.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in fixed.GetSize()])
    t = sitk.AffineTransform(3)
    t.SetCenter(c)
    r = sitk.Euler3DTransform(c, np.radians(8), np.radians(-6), np.radians(10))
    m = np.array(r.GetMatrix()).reshape(3, 3) @ np.diag([1.08, 0.93, 1.04])
    m = m @ np.array([[1, np.tan(np.radians(4)), 0], [0, 1, 0], [0, 0, 1]])
    t.SetMatrix(m.ravel().tolist())
    t.SetTranslation([12.0, -15.0, 9.0])
    moving = sitk.Resample(fixed, fixed, t, sitk.sitkLinear, 0.0)
    if a.contrast == "t2":
        arr = sitk.GetArrayFromImage(moving)
        z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in arr.shape], indexing="ij")
        rng = np.random.default_rng(5)
        arr = (arr.max() - arr) * np.exp(0.15 * x - 0.1 * y + 0.1 * z) + rng.normal(0, 3, arr.shape)
        arr = arr.astype(np.float32)
        mv = sitk.GetImageFromArray(arr)
        mv.CopyInformation(moving)
        moving = mv
    truth = t.GetInverse()
    tmp = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    mpath = os.path.join(tmp, "moving.nii.gz")
    sitk.WriteImage(moving, mpath)

    t0 = time.perf_counter()
    R = sitk.ImageRegistrationMethod()
    R.SetMetricAsMattesMutualInformation(32)
    R.SetMetricSamplingStrategy(R.RANDOM)
    R.SetMetricSamplingPercentage(0.2, 1)
    R.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=200)
    R.SetOptimizerScalesFromPhysicalShift()
    R.SetShrinkFactorsPerLevel([4, 2, 1])
    R.SetSmoothingSigmasPerLevel([2, 1, 0])
    R.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    init = sitk.CenteredTransformInitializer(fixed, moving, sitk.AffineTransform(3),
                                             sitk.CenteredTransformInitializerFilter.GEOMETRY)
    R.SetInitialTransform(init, inPlace=False)
    R.SetInterpolator(sitk.sitkLinear)
    st = R.Execute(fixed, moving)
    t_sitk = time.perf_counter() - t0
    e_sitk = tre(fixed, st, truth)

    out = os.path.join(tmp, "vx")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    t0 = time.perf_counter()
    subprocess.run([a.voxaug, "register", os.path.join(a.data, "mni152_t1_1mm.nii.gz"), mpath, "--out", out,
                    "--type", "affine", "--metric", "mi", "--device", "cpu"], check=True, env=env,
                   capture_output=True)
    t_vx = time.perf_counter() - t0
    vt = sitk.ReadTransform(os.path.join(out, "transform.tfm"))
    e_vx = tre(fixed, vt, truth)
    print(f"affine MI, MNI 197x233x189, contrast {a.contrast}, {a.threads} threads:")
    print(f"| tool | time (s) | TRE (mm) |\n|---|---|---|")
    print(f"| SimpleITK (registration only) | {t_sitk:.2f} | {e_sitk:.3f} |")
    print(f"| voxaug register (process: read, register, resample, write) | {t_vx:.2f} | {e_vx:.3f} |")
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(a.threads)
    try:
        import ants
        af, am = ants.image_read(os.path.join(a.data, "mni152_t1_1mm.nii.gz")), ants.image_read(mpath)
        for preset in ("AffineFast", "Affine"):
            t0 = time.perf_counter()
            reg = ants.registration(fixed=af, moving=am, type_of_transform=preset)
            t_ants = time.perf_counter() - t0
            e_ants = tre(fixed, sitk.ReadTransform(reg["fwdtransforms"][0]), truth)
            print(f"| ANTsPy {ants.__version__} `{preset}` (registration only) | {t_ants:.2f} | {e_ants:.3f} |")
    except ImportError:
        print("ANTsPy not installed: skipped")
    print(f"speed-up {t_sitk / t_vx:.2f}x; identity TRE {tre(fixed, sitk.Transform(3, sitk.sitkIdentity), truth):.1f} mm")


if __name__ == "__main__":
    main()
