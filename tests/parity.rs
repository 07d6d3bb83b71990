//! One test body per op, run on both executors (as cubecl's testgen does). Each body compares the
//! executor under test with the CPU reference:
//! - images: |gpu - cpu| <= 1e-5 x (largest |value| of the input, at least 1). The GPU computes the same
//!   f32 coordinate expressions, but its compiler may fuse multiply-adds, moving a sample by ~1 ulp of
//!   the coordinate; times the steepest gradient of noise inputs this stays below 1e-5 of the range.
//! - label maps: exactly equal (nearest sampling copies a texel).
//! - percentile_clip: the GPU finds percentiles with a two-level histogram, exact to (max-min) / 2^33.
//!
//! GPU tests need an adapter: without one they fail (CI installs lavapipe), they never skip.

#[macro_use]
mod common;
use common::*;
use voxaug::{DType, Executor, Grid, Kind, Pipeline, Subject, Volume};

fn transforms(json: &str) -> Vec<voxaug::Transform> {
    Pipeline::from_json(&format!("{{\"transforms\": [{json}]}}"))
        .unwrap()
        .fixed_transforms()
        .unwrap()
}

/// Odd shapes, thin volumes, anisotropic oblique grids, integer-typed images.
fn subjects() -> Vec<(&'static str, Subject)> {
    let mut out = Vec::new();
    for (name, shape, affine, dtype) in [
        ("odd-oblique", [37, 41, 29], oblique_affine(), DType::F32),
        ("thin", [23, 17, 1], oblique_affine(), DType::I16),
        (
            "aniso-u8",
            [20, 16, 12],
            voxaug::grid::scaling([0.8, 0.8, 4.0]),
            DType::U8,
        ),
    ] {
        let g = Grid::new(shape, affine).unwrap();
        let n = noise(g.len(), shape[0] as u64);
        let mut img = image_from(&g, |i, j, k| {
            let v = n[g.index(i, j, k)];
            match dtype {
                DType::F32 => v * 100.0 - 30.0,
                DType::I16 => (v * 2000.0 - 1000.0).round(),
                _ => (v * 255.0).round(),
            }
        });
        img.dtype = dtype;
        let lab = label_from(&g, |i, j, k| ((i / 3 + j / 4 + k) % 4) as f32);
        out.push((name, Subject::new(vec![img], vec![lab]).unwrap()));
    }
    out
}

/// Output voxels whose source coordinate lies within `eps` voxels of a nearest-neighbour rounding
/// boundary (a fraction of .5 on any axis), for ops that compile to one resampling pass without a
/// displacement field; None otherwise. At such a tie either neighbour is a correct nearest sample, and
/// which one a backend picks depends on the rounding of its coordinate arithmetic (GPUs fuse multiply
/// and add, the CPU and lavapipe do not).
fn nearest_ties(op: &str, input: &Subject, eps: f64) -> Option<Vec<bool>> {
    let t = Pipeline::from_json(&format!("{{\"transforms\": [{op}]}}"))
        .ok()?
        .fixed_transforms()
        .ok()?;
    let stages = voxaug::transform::compile(&t, input.grid()?).ok()?;
    let [voxaug::transform::Stage::Spatial(map)] = stages.as_slice() else {
        return None;
    };
    if map.field.is_some() {
        return None;
    }
    let m = map.total();
    let g = &map.grid;
    let mut tie = vec![false; g.len()];
    for k in 0..g.shape[2] {
        for j in 0..g.shape[1] {
            for i in 0..g.shape[0] {
                let p = [i as f64, j as f64, k as f64];
                tie[g.index(i, j, k)] = (0..3).any(|a| {
                    let c = m[a][0] * p[0] + m[a][1] * p[1] + m[a][2] * p[2] + m[a][3];
                    ((c - c.floor()) - 0.5).abs() < eps
                });
            }
        }
    }
    Some(tie)
}

fn compare(name: &str, op: &str, got: &Subject, want: &Subject, input: &Subject, tol: f32) {
    let ties = nearest_ties(op, input, 1e-4);
    for (g, w) in got.labels.iter().zip(&want.labels) {
        assert_eq!(g.grid, w.grid, "{name} {op}: label grid");
        let (gv, wv) = (g.values(), w.values());
        let differ: Vec<usize> = (0..gv.len()).filter(|&i| gv[i] != wv[i]).collect();
        let bad = differ
            .iter()
            .filter(|&&i| !ties.as_ref().is_some_and(|t| t[i]))
            .count();
        assert_eq!(
            bad, 0,
            "{name} {op}: {bad} label voxels differ away from nearest-neighbour ties"
        );
        // A tie may pick either neighbour, never a value the input does not have.
        let have = input.labels[0].values();
        assert!(
            differ.iter().all(|&i| have.contains(&gv[i])),
            "{name} {op}: a new label value"
        );
    }
    for ((g, w), x) in got.images.iter().zip(&want.images).zip(&input.images) {
        assert_eq!(g.grid, w.grid, "{name} {op}: image grid");
        // Relative to the larger of the input's and the reference output's magnitude (an intensity op
        // maps +-3e38 to +-2: the output's scale is what its error is measured against).
        let range = x.values().iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let range = if op.contains("zscore") || op.contains("minmax") {
            w.values().iter().fold(1.0f32, |m, v| m.max(v.abs()))
        } else {
            range
        };
        let (worst, at) = g
            .values()
            .iter()
            .zip(w.values().iter())
            .enumerate()
            .map(|(i, (a, b))| ((a - b).abs(), i))
            .fold((0.0f32, 0), |m, x| if x.0 > m.0 { x } else { m });
        assert!(
            worst <= tol * range,
            "{name} {op}: image differs by {worst} at {at} ({} vs {})",
            g.values()[at],
            w.values()[at]
        );
    }
}

fn check(exec: &Executor, op: &str, tol: f32) {
    let t = transforms(op);
    for (name, s) in subjects() {
        let want = Executor::Cpu.apply(&s, &t).unwrap();
        let got = exec.apply(&s, &t).unwrap();
        compare(name, op, &got, &want, &s, tol);
    }
}

const T: f32 = 1e-5;

both! {
    rotate: |e: &Executor| check(e, r#"{"type": "rotate", "degrees": [12, -7, 25]}"#, T);
    affine: |e: &Executor| check(e, r#"{"type": "affine", "matrix": [[0.9, 0.1, 0.05, 1.3], [-0.1, 1.1, 0.0, -0.7], [0.02, 0.0, 0.95, 0.4], [0, 0, 0, 1]]}"#, T);
    zoom: |e: &Executor| check(e, r#"{"type": "zoom", "factors": [1.3, 0.8, 1.1], "fill": -5}"#, T);
    shift: |e: &Executor| check(e, r#"{"type": "shift", "mm": [3.5, -2.25, 1.0]}"#, T);
    shear: |e: &Executor| check(e, r#"{"type": "shear", "degrees": [8, -4, 3]}"#, T);
    flip: |e: &Executor| check(e, r#"{"type": "flip", "axes": [0, 2]}"#, 0.0);
    crop: |e: &Executor| check(e, r#"{"type": "crop", "margins": [[2, 3], [1, 0], [0, 0]]}"#, 0.0);
    center_crop: |e: &Executor| check(e, r#"{"type": "center_crop", "size": [11, 9, 1]}"#, 0.0);
    pad: |e: &Executor| check(e, r#"{"type": "pad", "margins": [2, 1, 3], "fill": 7}"#, 0.0);
    resample_to: |e: &Executor| check(e, r#"{"type": "resample_to", "reference": "inline", "grid": {"shape": [17, 21, 9], "affine": [[1.3, 0.2, 0, -3], [-0.1, 1.1, 0, 2], [0, 0, 2.5, 1], [0, 0, 0, 1]]}}"#, T);
    crop_or_pad: |e: &Executor| check(e, r#"{"type": "crop_or_pad", "size": [30, 45, 12], "fill": 3}"#, 0.0);
    resize: |e: &Executor| check(e, r#"{"type": "resize", "shape": [19, 50, 5]}"#, T);
    resample: |e: &Executor| check(e, r#"{"type": "resample", "spacing": [1.1, 0.9, 2.0]}"#, T);
    fill_min_and_edge: |e: &Executor| {
        check(e, r#"{"type": "rotate", "degrees": [0, 0, 30], "fill": "min"}"#, T);
        check(e, r#"{"type": "rotate", "degrees": [0, 0, 30], "fill": "edge"}"#, T);
    };
    fused_chain: |e: &Executor| check(e, r#"{"type": "crop", "start": [2, 2, 0], "size": [15, 12, 1]}, {"type": "rotate", "degrees": [0, 0, 33]}, {"type": "zscore"}, {"type": "resize", "shape": [10, 10, 3]}, {"type": "minmax"}"#, T);
    // A statistics-free intensity op right after a resampling pass runs inside it on the GPU (each
    // entry point of the image resampler and each compiled-in feature of the point kernel).
    resample_then_point_kernel: |e: &Executor| {
        check(e, r#"{"type": "rotate", "degrees": [12, -7, 25]}, {"type": "noise", "std": 5.0, "mean": 1.0, "seed": 77}"#, T);
        check(e, r#"{"type": "resize", "shape": [19, 50, 5]}, {"type": "clip", "min": 10, "max": 60}"#, T);
        check(e, r#"{"type": "zoom", "factors": [1.3, 0.8, 1.1], "fill": -5}, {"type": "bias_field", "order": 2, "coefficients": [0.1, -0.2, 0.05, 0.3, 0.0, -0.1, 0.2, 0.1, -0.05, 0.15]}"#, T);
        check(e, r#"{"type": "elastic", "sigma": 4, "alpha": 60, "seed": 5}, {"type": "brightness", "factor": 0.8}, {"type": "gamma", "gamma": 1.7}"#, T);
        check(e, r#"{"type": "flip", "axes": [1]}, {"type": "intensity_shift", "offset": -4.5}, {"type": "noise", "std": 2.0, "seed": 3}"#, T);
        check(e, r#"{"type": "simulate_low_resolution", "zoom": 0.5}, {"type": "rotate", "degrees": [0, 0, 20]}, {"type": "noise", "std": 1.0, "seed": 9}"#, T);
    };
    clip: |e: &Executor| check(e, r#"{"type": "clip", "min": 10, "max": 60}"#, 0.0);
    percentile_clip: |e: &Executor| check(e, r#"{"type": "percentile_clip", "low": 1.5, "high": 98}"#, 1e-6);
    zscore_nonzero: |e: &Executor| check(e, r#"{"type": "zscore", "mask": "nonzero"}"#, T);
    zscore_all: |e: &Executor| check(e, r#"{"type": "zscore", "mask": "all"}"#, T);
    minmax: |e: &Executor| check(e, r#"{"type": "minmax", "min": -1, "max": 1}"#, T);
    gamma: |e: &Executor| check(e, r#"{"type": "gamma", "gamma": 1.7}"#, T);
    noise: |e: &Executor| check(e, r#"{"type": "noise", "std": 5.0, "mean": 1.0, "seed": 1234567890123}"#, T);
    blur: |e: &Executor| check(e, r#"{"type": "blur", "sigma": [1.5, 0.0, 2.0]}"#, T);
    bias_field: |e: &Executor| check(e, r#"{"type": "bias_field", "order": 2, "coefficients": [0.1, -0.2, 0.05, 0.3, 0.0, -0.1, 0.2, 0.1, -0.05, 0.15]}"#, T);
    contrast_brightness_shift: |e: &Executor| check(e, r#"{"type": "contrast", "factor": 1.3}, {"type": "brightness", "factor": 0.8}, {"type": "intensity_shift", "offset": -4.5}"#, T);
    hist_scale: |e: &Executor| check(e, r#"{"type": "hist_scale", "bins": 50}"#, T);
    histogram_standardize: |e: &Executor| check(e, r#"{"type": "histogram_standardize", "landmarks": [0, 8, 17, 26, 35, 46, 55, 64, 75, 86, 100]}"#, T);
    constant_image: |e: &Executor| {
        let g = Grid::with_spacing([9, 8, 7], [1.0; 3]).unwrap();
        let s = Subject::new(vec![image_from(&g, |_, _, _| 4.0)], vec![]).unwrap();
        for op in [r#"{"type": "zscore"}"#, r#"{"type": "minmax"}"#, r#"{"type": "percentile_clip", "low": 1, "high": 99}"#] {
            let out = e.apply(&s, &transforms(op)).unwrap();
            assert!(out.images[0].values().iter().all(|v| v.is_finite()), "{op}: NaN");
            compare("constant", op, &out, &Executor::Cpu.apply(&s, &transforms(op)).unwrap(), &s, 0.0);
        }
    };
    values_near_the_f32_limit: |e: &Executor| {
        // Voxels spread over +-3e38: moments, percentiles and the min-max map stay finite and agree
        // with the CPU (f64) reference; results past f32 are refused, never saturated silently.
        let g = Grid::with_spacing([20, 21, 22], [1.0; 3]).unwrap();
        let n = common::noise(g.len(), 7);
        let img = Volume::new(n.iter().map(|v| (v * 2.0 - 1.0) * 3e38).collect(), g, Kind::Image).unwrap();
        let s = Subject::new(vec![img], vec![]).unwrap();
        for (op, tol) in [
            (r#"{"type": "zscore"}"#, T),
            (r#"{"type": "zscore", "mask": "nonzero"}"#, T),
            (r#"{"type": "minmax", "min": 0, "max": 1}"#, T),
            (r#"{"type": "percentile_clip", "low": 1, "high": 99}"#, 1e-6),
        ] {
            let want = Executor::Cpu.apply(&s, &transforms(op)).unwrap();
            let got = e.apply(&s, &transforms(op)).unwrap();
            assert!(got.images[0].values().iter().all(|v| v.is_finite()), "{op}: non-finite");
            compare("f32-limit", op, &got, &want, &s, tol);
        }
        // Copies (flip, crop, pad, permutations) move such values unchanged: the GPU fetches one texel
        // per voxel for maps onto voxel centres, as the CPU copies (blending eight with weights 0
        // and 1 gave NaN where neighbours differ by more than f32 holds).
        for (op, tol) in [
            (r#"{"type": "flip", "axes": [0, 2]}"#, 0.0),
            (r#"{"type": "crop", "margins": [[2, 3], [1, 0], [0, 4]]}"#, 0.0),
            (r#"{"type": "pad", "margins": [2, 1, 3], "fill": 7}"#, 0.0),
            (r#"{"type": "flip", "axes": [1]}, {"type": "zscore"}"#, T),
        ] {
            let want = Executor::Cpu.apply(&s, &transforms(op)).unwrap();
            let got = e.apply(&s, &transforms(op)).unwrap_or_else(|err| panic!("{op}: {err}"));
            compare("f32-limit", op, &got, &want, &s, tol);
        }
        let z = e.apply(&s, &transforms(r#"{"type": "zscore"}"#)).unwrap();
        let st = voxaug::stats::stats(&z.images[0].values(), None);
        assert!(st.mean.abs() < 1e-3 && (st.std - 1.0).abs() < 1e-3, "zscore: {st:?}");
        for op in [r#"{"type": "contrast", "factor": 2}"#, r#"{"type": "gamma", "gamma": 2}"#, r#"{"type": "brightness", "factor": 10}"#] {
            let err = e.apply(&s, &transforms(op)).unwrap_err().to_string();
            assert!(err.contains("NaN or infinite") && err.contains("f32 range"), "{op}: {err}");
        }
    };
    negative_labels: |e: &Executor| {
        let g = Grid::with_spacing([10, 9, 8], [1.0; 3]).unwrap();
        let lab = Volume::new((0..720).map(|i| (i % 5) as f32 - 2.0).collect(), g, Kind::Label).unwrap();
        let s = Subject::new(vec![], vec![lab]).unwrap();
        let t = transforms(r#"{"type": "rotate", "degrees": [0, 20, 0]}"#);
        compare("signed", "rotate", &e.apply(&s, &t).unwrap(), &Executor::Cpu.apply(&s, &t).unwrap(), &s, 0.0);
    };
    members_on_different_grids: |e: &Executor| mixed_grids(e);
    simulate_low_resolution: |e: &Executor| check(e, r#"{"type": "simulate_low_resolution", "zoom": [0.5, 0.7, 1]}"#, T);
    low_resolution_fused: |e: &Executor| check(e, r#"{"type": "rotate", "degrees": [0, 0, 12]}, {"type": "simulate_low_resolution", "zoom": [0.6, 0.6, 0.5]}, {"type": "rotate", "degrees": [0, 0, -12]}, {"type": "crop", "start": [1, 1, 0], "size": [15, 12, 1]}"#, T);
    zscore_label_mask: |e: &Executor| check(e, r#"{"type": "rotate", "degrees": [0, 0, 15]}, {"type": "zscore", "mask": "label"}"#, T);
    minmax_label_mask: |e: &Executor| check(e, r#"{"type": "minmax", "mask": "label", "min": -1, "max": 1}, {"type": "flip", "axes": [1]}"#, T);
    minmax_nonzero_mask: |e: &Executor| check(e, r#"{"type": "minmax", "mask": "nonzero"}"#, T);
    label_maps: |e: &Executor| check(e, r#"{"type": "remap_labels", "mapping": {"1": 7, "3": 0}}, {"type": "rotate", "degrees": [0, 0, 20]}, {"type": "keep_labels", "labels": [7, 2]}"#, 0.0);
}

/// TorchIO's `Resample("t1")`: members on different grids meet on one member's grid in the pass fused
/// with the transforms after `resample_to`; each member's output equals that member run alone through
/// `resample_to` its grid (the CPU exactly, the GPU within T).
fn mixed_grids(e: &Executor) {
    let ga = Grid::new([23, 19, 11], oblique_affine()).unwrap();
    let gb = Grid::with_spacing([15, 14, 9], [1.7, 1.9, 2.6]).unwrap();
    let t1 = image_from(&ga, |i, j, k| (i * 3 + j * 2 + k) as f32);
    let flair = image_from(&gb, |i, j, k| (i * i + j + 5 * k) as f32 * 0.5);
    let seg = label_from(&gb, |i, j, _| ((i / 4 + j / 5) % 3) as f32);
    let names = ["t1", "flair", "seg"].map(String::from).to_vec();
    let s = Subject::named(vec![t1.clone(), flair.clone()], vec![seg.clone()], names).unwrap();
    let body = r#"{"type": "zscore"}, {"type": "resample_to", "reference": "t1"}, {"type": "rotate", "degrees": [0, 0, 20]}, {"type": "crop", "start": [1, 2, 0], "size": [20, 15, 10]}"#;
    let pipe = Pipeline::from_json(&format!("{{\"transforms\": [{body}]}}")).unwrap();
    let (out, plan) = pipe.sample(e, &s, 0).unwrap();
    assert_eq!(out.names, s.names);
    for v in out.images.iter().chain(&out.labels) {
        assert_eq!(v.grid.shape, [20, 15, 10]);
    }
    // The plan records t1's grid: it re-applies to the members alone, without names.
    let plan_t = plan.transforms.clone();
    let json = plan.to_json();
    assert!(json.contains("\"grid\""), "{json}");
    let alone = |v: &Volume| {
        let s1 = match v.kind {
            Kind::Image => Subject::new(vec![v.clone()], vec![]),
            Kind::Label => Subject::new(vec![], vec![v.clone()]),
        }
        .unwrap();
        let r = Executor::Cpu.apply(&s1, &plan_t).unwrap();
        r.images.into_iter().chain(r.labels).next().unwrap()
    };
    let got: Vec<&Volume> = out.images.iter().chain(&out.labels).collect();
    for (g, v) in got.iter().zip([&t1, &flair, &seg]) {
        let want = alone(v);
        assert_eq!(g.grid, want.grid);
        let d = max_abs_diff(&g.values(), &want.values());
        let tol = if matches!(e, Executor::Cpu) || v.kind == Kind::Label {
            0.0
        } else {
            T * 4.0
        };
        assert!(d <= tol, "member differs from its own run by {d}");
    }
    // t1's own voxels pass through resample_to unchanged (same grid): the rotation is the only blend.
    let direct = Executor::Cpu
        .apply(&Subject::new(vec![t1.clone()], vec![]).unwrap(), &transforms(r#"{"type": "zscore"}, {"type": "rotate", "degrees": [0, 0, 20]}, {"type": "crop", "start": [1, 2, 0], "size": [20, 15, 10]}"#))
        .unwrap();
    assert!(max_abs_diff(&out.images[0].values(), &direct.images[0].values()) <= 1e-5);
    // After the members meet, the rest runs on them together: a label-masked z-score sees the label
    // map (t1 alone would have none), and equals it applied to the joined result.
    let more = Pipeline::from_json(&format!(
        "{{\"transforms\": [{body}, {{\"type\": \"zscore\", \"mask\": \"label\"}}]}}"
    ))
    .unwrap();
    let (joined, _) = more.sample(e, &s, 0).unwrap();
    let want = Executor::Cpu
        .apply(&out, &transforms(r#"{"type": "zscore", "mask": "label"}"#))
        .unwrap();
    for (g, w) in joined.images.iter().zip(&want.images) {
        assert!(max_abs_diff(&g.values(), &w.values()) <= 1e-4);
    }
    // Without resample_to first, the error names the members and the fix.
    let err = e
        .apply(&s, &transforms(r#"{"type": "flip", "axes": [0]}"#))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"flair\"") && err.contains("resample_to"),
        "{err}"
    );
    // An unknown member is named with the members there are.
    let bad = Pipeline::from_json(r#"[{"type": "resample_to", "reference": "t2"}]"#).unwrap();
    let err = bad.sample(e, &s, 0).unwrap_err().to_string();
    assert!(
        err.contains("\"t2\"") && err.contains("t1, flair, seg"),
        "{err}"
    );
}

/// 512^3 f32 (512 MiB): more than lavapipe's 128 MiB storage binding, so the GPU path must slab.
#[test]
fn gpu_handles_a_512_cubed_volume() {
    let n = 512;
    let g = Grid::with_spacing([n; 3], [1.0; 3]).unwrap();
    // A smooth ramp, different along each axis: a slab written to the wrong place or in the wrong
    // order shows at once, while the rounding of coordinates near 512 (GPUs fuse multiply and add)
    // moves a sample by a few 1e-5 voxel, well inside the tolerance (a sawtooth made that a jump).
    let data: Vec<f32> = (0..n * n * n)
        .map(|l| {
            let (i, j, k) = (l % n, (l / n) % n, l / (n * n));
            i as f32 * 0.5 + j as f32 * 0.7 + k as f32 * 1.1
        })
        .collect();
    let s = Subject::new(vec![Volume::image(data, g).unwrap()], vec![]).unwrap();
    let t =
        transforms(r#"{"type": "rotate", "degrees": [0, 0, 3]}, {"type": "flip", "axes": [2]}"#);
    let got = gpu().apply(&s, &t).unwrap();
    let want = Executor::Cpu.apply(&s, &t).unwrap();
    let range = 511.0 * (0.5 + 0.7 + 1.1);
    // The backends agree within the tolerance, except where a source coordinate lands on the last
    // voxel of an axis (z = 511 after the flip, y = 511 at the rotated top edge), whose upper neighbour
    // is the fill (0): a GPU that fuses multiply and add gets that coordinate an ulp or two off the
    // integer (CPU and lavapipe: exactly on it) and blends in ~6e-5 of the jump to the fill. There, and
    // only there, the error is bounded by 2e-4 of the value.
    let stages = voxaug::transform::compile(&t, s.grid().unwrap()).unwrap();
    let [voxaug::transform::Stage::Spatial(map)] = stages.as_slice() else {
        panic!("one resampling pass expected");
    };
    let m = map.total();
    let at_edge = |l: usize| {
        let p = [(l % n) as f64, ((l / n) % n) as f64, (l / (n * n)) as f64];
        (0..3).any(|a| {
            let c = m[a][0] * p[0] + m[a][1] * p[1] + m[a][2] * p[2] + m[a][3];
            (c - (n - 1) as f64).abs() < 1e-3
        })
    };
    let (gv, wv) = (got.images[0].values(), want.images[0].values());
    let (mut worst, mut at) = (0.0f32, 0usize);
    for (l, (&a, &b)) in gv.iter().zip(wv.iter()).enumerate() {
        let d = (a - b).abs();
        if d > 1e-5 * range && d <= 2e-4 * b.abs() && at_edge(l) {
            continue;
        }
        if d > worst {
            (worst, at) = (d, l);
        }
    }
    assert!(
        worst <= 1e-5 * range,
        "512^3 differs by {worst} at voxel {:?} ({} vs {})",
        [at % n, (at / n) % n, at / (n * n)],
        gv[at],
        wv[at]
    );
}

/// A blur along z whose output is written in slabs (1000 x 500 x 70 f32, 140 MB: 65 slices fit
/// lavapipe's 128 MiB storage binding, so slabs of 65 and 5 slices, neither a multiple of the shader's
/// four outputs per invocation) reads its taps across the slab boundary and matches the CPU.
#[test]
fn gpu_blur_across_slabs() {
    let shape = [1000, 500, 70];
    let g = Grid::with_spacing(shape, [1.0; 3]).unwrap();
    let n = noise(g.len(), 5);
    let data: Vec<f32> = (0..g.len())
        .map(|l| (l / (1000 * 500)) as f32 * 3.0 + n[l] * 10.0)
        .collect();
    let s = Subject::new(vec![Volume::image(data, g).unwrap()], vec![]).unwrap();
    let t = transforms(r#"{"type": "blur", "sigma": [0, 0, 1.5]}"#);
    let got = gpu().apply(&s, &t).unwrap();
    let want = Executor::Cpu.apply(&s, &t).unwrap();
    let (gv, wv) = (got.images[0].values(), want.images[0].values());
    let worst = gv
        .iter()
        .zip(wv.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    // Largest |input| is about 217: the parity tolerance of 1e-5 of it.
    assert!(
        worst <= 1e-5 * 217.0,
        "blur across slabs differs by {worst}"
    );
}

/// The fusion is real: a statistics-free intensity op after a resampling pass adds no pass on the
/// GPU (timestamp queries count the compute passes; lavapipe and hardware adapters have them), while
/// one that needs statistics (gamma: the image's range) does.
#[test]
fn gpu_fuses_a_point_kernel_into_the_resampling_pass() {
    let g = Grid::with_spacing([24, 20, 16], [1.0; 3]).unwrap();
    let n = noise(g.len(), 2);
    let s = Subject::new(vec![Volume::image(n, g.clone()).unwrap()], vec![]).unwrap();
    let Executor::Gpu(ctx) = gpu() else {
        panic!("no GPU executor")
    };
    assert!(
        ctx.has_timestamps(),
        "the adapter has no timestamp queries to count passes with"
    );
    let passes = |json: &str| {
        let stages = voxaug::transform::compile(&transforms(json), &g).unwrap();
        let t = ctx.kernel_times(&s, &stages, 1).unwrap();
        t.last_passes.expect("timestamps").len()
    };
    let rotate = passes(r#"{"type": "rotate", "degrees": [0, 0, 20]}"#);
    let fused = passes(
        r#"{"type": "rotate", "degrees": [0, 0, 20]}, {"type": "noise", "std": 1.0, "seed": 1}"#,
    );
    let gamma =
        passes(r#"{"type": "rotate", "degrees": [0, 0, 20]}, {"type": "gamma", "gamma": 1.5}"#);
    assert_eq!(
        fused, rotate,
        "noise after a rotation should run inside the resampling pass"
    );
    assert!(
        gamma > rotate,
        "gamma needs the range first: {gamma} passes vs {rotate}"
    );
}

/// Several samples in shared submissions (one upload) give exactly what one-at-a-time runs give.
#[test]
fn gpu_batch_equals_single_runs() {
    let (_, s) = subjects().remove(0);
    // Leading statistic ops take their statistics from the upload's cache after the first sample;
    // the same op after a resampling must not (plans 0 and 3 both zscore, on different voxels).
    let plans: Vec<Vec<voxaug::Transform>> = [
        r#"{"type": "zscore", "mask": "nonzero"}, {"type": "rotate", "degrees": [5, 0, 20]}"#,
        r#"{"type": "percentile_clip", "low": 1, "high": 99}, {"type": "zscore"}"#,
        r#"{"type": "minmax"}, {"type": "flip", "axes": [2]}"#,
        r#"{"type": "rotate", "degrees": [5, 0, 20]}, {"type": "zscore", "mask": "nonzero"}"#,
        r#"{"type": "elastic", "sigma": 4, "alpha": 200, "seed": 3}, {"type": "flip", "axes": [1]}, {"type": "gamma", "gamma": 1.3}"#,
        r#"{"type": "crop", "margins": 3}, {"type": "percentile_clip", "low": 2, "high": 97}, {"type": "resize", "shape": [20, 20, 20]}"#,
        r#"{"type": "noise", "std": 3, "seed": 9}"#,
    ]
    .iter()
    .map(|j| transforms(j))
    .collect();
    let g = gpu();
    let batch = g.apply_batch(&s, &plans).unwrap();
    assert_eq!(batch.len(), plans.len());
    for (t, b) in plans.iter().zip(&batch) {
        assert_eq!(&g.apply(&s, t).unwrap(), b);
    }
    // Batches of one session share one upload (augment): the same outputs, batch after batch,
    // with other runs going through the texture pool in between.
    let mut session = g.batches(&s);
    for round in 0..2 {
        for (k, chunk) in plans.chunks(2).enumerate() {
            let outs = session.apply(chunk).unwrap();
            for (o, want) in outs.iter().zip(&batch[2 * k..]) {
                assert!(o == want, "round {round}, batch {k}");
            }
            g.apply(&s, plans.last().unwrap()).unwrap();
        }
    }
    drop(session);
    let cpu_batch = Executor::Cpu.apply_batch(&s, &plans).unwrap();
    for ((b, c), t) in batch.iter().zip(&cpu_batch).zip(&plans) {
        compare("batch", &format!("{t:?}"), b, c, &s, 1e-5);
    }
}

/// Readback overlaps recording: batches submitted ahead and finished later, in any order (augment's
/// double buffering), and runs of several threads whose readbacks wait outside the run lock (the
/// Python loader's workers) give exactly the outputs of one-at-a-time runs.
#[test]
fn gpu_overlapped_readbacks_give_the_same_outputs() {
    use std::sync::Arc;
    let (_, s) = subjects().remove(0);
    let plans: Vec<Vec<voxaug::Transform>> = [
        r#"{"type": "rotate", "degrees": [5, 0, 20]}, {"type": "zscore", "mask": "nonzero"}"#,
        r#"{"type": "percentile_clip", "low": 1, "high": 99}, {"type": "flip", "axes": [2]}"#,
        r#"{"type": "elastic", "sigma": 4, "alpha": 200, "seed": 3}, {"type": "gamma", "gamma": 1.3}"#,
        r#"{"type": "crop", "margins": 3}, {"type": "noise", "std": 3, "seed": 9}"#,
        r#"{"type": "rotate", "degrees": [0, 0, 15]}, {"type": "zscore", "mask": "label"}"#,
        r#"{"type": "remap_labels", "mapping": {"1": 2}}, {"type": "zoom", "factors": [1.1, 1.1, 1.1]}"#,
    ]
    .iter()
    .map(|j| transforms(j))
    .collect();
    let g = gpu();
    let want: Vec<Subject> = plans.iter().map(|t| g.apply(&s, t).unwrap()).collect();
    let mut session = g.batches(&s);
    let first = session.submit(&plans[..3]).unwrap();
    let second = session.submit(&plans[3..]).unwrap();
    // Another run between submission and readback.
    assert!(g.apply(&s, &plans[0]).unwrap() == want[0]);
    let late = session.finish(second).unwrap();
    let early = session.finish(first).unwrap();
    for (i, o) in early.iter().chain(&late).enumerate() {
        assert!(o == &want[i], "double-buffered batch, plan {i}");
    }
    drop(session);
    // Four threads, two shared subjects, every plan several times.
    let a = Arc::new(s.clone());
    let mut b = s.clone();
    for v in b.images.iter_mut() {
        let d = v.data.as_f32_mut().expect("f32 image");
        d.iter_mut().for_each(|x| *x = 2.0 - *x);
    }
    let want_b: Vec<Subject> = plans.iter().map(|t| g.apply(&b, t).unwrap()).collect();
    let b = Arc::new(b);
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let (g, a, b, plans, want, want_b) = (&g, &a, &b, &plans, &want, &want_b);
            scope.spawn(move || {
                for round in 0..3 {
                    for k in 0..plans.len() {
                        let i = (k + thread + round) % plans.len();
                        let (subject, expect) = if (thread + k) % 2 == 0 {
                            (a, &want[i])
                        } else {
                            (b, &want_b[i])
                        };
                        let got = g.apply_shared(subject, &plans[i], None).unwrap();
                        assert!(&got == expect, "thread {thread}, round {round}, plan {i}");
                    }
                }
            });
        }
    });
}

/// Statistics ops on a volume an earlier stage changed (zscore, minmax, gamma's range, contrast's
/// mean) build their kernel on the device (stat_kernel.wgsl, f64): the same outputs as reading the
/// statistics back, bit for bit (the same f64 expressions), without the host waiting for the device in
/// between; values near the f32 limit take the device's rescaled retry of the moments.
#[test]
fn gpu_statistics_after_a_stage_stay_on_the_device() {
    use std::sync::Arc;
    // Its own context: the wait count and the switch are per context, and tests run in parallel.
    let ctx = Arc::new(
        voxaug::exec::gpu::GpuContext::open(None)
            .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}")),
    );
    let g = Executor::Gpu(ctx.clone());
    let (_, s) = subjects().remove(0);
    let big = {
        let grid = Grid::with_spacing([20, 21, 22], [1.0; 3]).unwrap();
        let n = common::noise(grid.len(), 7);
        let img = Volume::new(
            n.iter().map(|v| (v * 2.0 - 1.0) * 3e38).collect(),
            grid,
            Kind::Image,
        )
        .unwrap();
        Subject::new(vec![img], vec![]).unwrap()
    };
    let constant = {
        let grid = Grid::with_spacing([9, 8, 7], [1.0; 3]).unwrap();
        let img = Volume::new(vec![2.5; grid.len()], grid, Kind::Image).unwrap();
        Subject::new(vec![img], vec![]).unwrap()
    };
    let cases = [
        (
            &s,
            r#"{"type": "rotate", "degrees": [5, 0, 20]}, {"type": "zscore", "mask": "nonzero"}"#,
        ),
        (
            &s,
            r#"{"type": "rotate", "degrees": [5, 0, 20]}, {"type": "zscore"}"#,
        ),
        (
            &s,
            r#"{"type": "flip", "axes": [0]}, {"type": "minmax", "min": -1, "max": 3}"#,
        ),
        (
            &s,
            r#"{"type": "zoom", "factors": [1.2, 1.2, 1.2]}, {"type": "minmax", "mask": "nonzero"}"#,
        ),
        (
            &s,
            r#"{"type": "rotate", "degrees": [0, 0, 30]}, {"type": "gamma", "gamma": 1.3}"#,
        ),
        (
            &s,
            r#"{"type": "noise", "std": 2, "seed": 4}, {"type": "contrast", "factor": 1.2}, {"type": "gamma", "gamma": 0.7}"#,
        ),
        (
            &s,
            r#"{"type": "rotate", "degrees": [5, 0, 20]}, {"type": "percentile_clip", "low": 1, "high": 99}"#,
        ),
        (
            &s,
            r#"{"type": "flip", "axes": [1]}, {"type": "percentile_clip", "low": 0, "high": 100}"#,
        ),
        (
            &s,
            r#"{"type": "noise", "std": 2, "seed": 4}, {"type": "percentile_clip", "low": 37.3, "high": 62.9}"#,
        ),
        (
            &constant,
            r#"{"type": "flip", "axes": [0]}, {"type": "percentile_clip", "low": 5, "high": 95}"#,
        ),
        (
            &big,
            r#"{"type": "brightness", "factor": 0.9}, {"type": "percentile_clip", "low": 2, "high": 98}"#,
        ),
        (
            &big,
            r#"{"type": "brightness", "factor": 0.9}, {"type": "zscore"}"#,
        ),
        (
            &big,
            r#"{"type": "brightness", "factor": 0.9}, {"type": "minmax", "min": 0, "max": 1}"#,
        ),
    ];
    // A plan run with device statistics and reading them back: both outputs, the waits of each.
    let both_paths = |subject: &Subject, json: &str| {
        let t = transforms(json);
        ctx.set_device_statistics(true);
        let w0 = ctx.host_waits();
        let on_device = g
            .apply(subject, &t)
            .unwrap_or_else(|e| panic!("{json}: {e}"));
        let device_waits = ctx.host_waits() - w0;
        ctx.set_device_statistics(false);
        let w0 = ctx.host_waits();
        let read_back = g.apply(subject, &t).unwrap();
        let host_waits = ctx.host_waits() - w0;
        (t, on_device, read_back, device_waits, host_waits)
    };
    for (subject, json) in cases {
        let (t, on_device, read_back, device_waits, host_waits) = both_paths(subject, json);
        assert!(
            on_device == read_back,
            "{json}: the device's kernel differs from the host's"
        );
        assert!(
            device_waits < host_waits,
            "{json}: {device_waits} waits with device statistics, {host_waits} reading them back"
        );
        compare(
            "device statistics",
            json,
            &on_device,
            &Executor::Cpu.apply(subject, &t).unwrap(),
            subject,
            1e-5,
        );
    }
    // A leading `"mask": "label"` statistic takes the host's voxels of the image and label map as
    // uploaded (no read-back of either): as many waits as a plan without a statistic.
    let waits = |json: &str| {
        let w0 = ctx.host_waits();
        let out = g.apply(&s, &transforms(json)).unwrap();
        (ctx.host_waits() - w0, out)
    };
    for json in [
        r#"{"type": "zscore", "mask": "label"}, {"type": "rotate", "degrees": [5, 0, 20]}"#,
        r#"{"type": "minmax", "mask": "label", "min": -1, "max": 1}, {"type": "flip", "axes": [1]}"#,
    ] {
        let (label_waits, out) = waits(json);
        let (plain_waits, _) = waits(
            r#"{"type": "brightness", "factor": 0.9}, {"type": "rotate", "degrees": [5, 0, 20]}"#,
        );
        assert_eq!(label_waits, plain_waits, "{json}");
        compare(
            "label mask",
            json,
            &out,
            &Executor::Cpu.apply(&s, &transforms(json)).unwrap(),
            &s,
            1e-5,
        );
    }
    // A label-masked statistic after a stage that changed the image or the label map reduces over
    // the label map on the device (kept there up to the last such statistic, or uploaded when no
    // stage touches it): fewer waits than reading both back, within 1e-5 of the CPU (the device's
    // f32 moments against the host's f64 ones), and a batch of such plans equals its single runs.
    let label_plans = [
        r#"{"type": "rotate", "degrees": [5, 0, 20]}, {"type": "zscore", "mask": "label"}"#,
        r#"{"type": "noise", "std": 2, "seed": 4}, {"type": "minmax", "mask": "label", "min": -1, "max": 1}"#,
        r#"{"type": "zscore", "mask": "label"}, {"type": "flip", "axes": [2]}, {"type": "zscore", "mask": "label"}"#,
        r#"{"type": "zoom", "factors": [1.2, 1.2, 1.2]}, {"type": "zscore", "mask": "label"}, {"type": "rotate", "degrees": [0, 0, 30]}"#,
        r#"{"type": "flip", "axes": [0]}, {"type": "zscore", "mask": "label"}, {"type": "gamma", "gamma": 1.3}, {"type": "minmax", "mask": "label", "min": 0, "max": 1}"#,
    ];
    for json in label_plans {
        let (t, on_device, _, device_waits, host_waits) = both_paths(&s, json);
        assert!(
            device_waits < host_waits,
            "{json}: {device_waits} waits with device statistics, {host_waits} reading them back"
        );
        compare(
            "label mask on the device",
            json,
            &on_device,
            &Executor::Cpu.apply(&s, &t).unwrap(),
            &s,
            1e-5,
        );
    }
    ctx.set_device_statistics(true);
    let plans: Vec<_> = label_plans.iter().map(|j| transforms(j)).collect();
    let batch = g.apply_batch(&s, &plans).unwrap();
    for (t, b) in plans.iter().zip(&batch) {
        assert!(&g.apply(&s, t).unwrap() == b, "label-masked batch: {t:?}");
    }
    // Samples of a batch: no wait until the outputs are read back.
    ctx.set_device_statistics(true);
    let plans: Vec<_> = cases[..6].iter().map(|(_, j)| transforms(j)).collect();
    let w0 = ctx.host_waits();
    let batch = g.apply_batch(&s, &plans).unwrap();
    let batch_waits = ctx.host_waits() - w0;
    ctx.set_device_statistics(false);
    let w0 = ctx.host_waits();
    assert_eq!(g.apply_batch(&s, &plans).unwrap(), batch);
    let read_back_waits = ctx.host_waits() - w0;
    assert!(
        batch_waits + 6 <= read_back_waits,
        "batch: {batch_waits} waits with device statistics, {read_back_waits} reading them back"
    );
}

/// Shared subjects stay on the device between runs (`Executor::apply_shared`) and give exactly what a
/// fresh upload gives: also after other subjects of the same shape went through the texture pool (a
/// resident texture handed out as an output would change the next sample), after eviction by the
/// budget, and the volumes of a dropped subject are freed at the next run.
#[test]
fn gpu_shared_subjects_stay_resident_and_give_the_same_outputs() {
    use std::sync::Arc;
    // Its own context: the resident count is per context, and tests run in parallel.
    let ctx = Arc::new(
        voxaug::exec::gpu::GpuContext::open(None)
            .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}")),
    );
    let g = Executor::Gpu(ctx.clone());
    let mut all = subjects();
    let (_, a) = all.remove(0);
    let a = Arc::new(a);
    // Another subject of the same shape and types, different voxels.
    let mut b = (*a).clone();
    for v in b.images.iter_mut() {
        let d = v.data.as_f32_mut().expect("f32 image");
        d.iter_mut().for_each(|x| *x = 3.0 - *x);
    }
    let b = Arc::new(b);
    // Leading statistic ops use the resident subject's statistics: per subject (a and b differ).
    let plans: Vec<Vec<voxaug::Transform>> = [
        r#"{"type": "rotate", "degrees": [5, 0, 20]}, {"type": "zscore"}"#,
        r#"{"type": "blur", "sigma": 1.5}, {"type": "elastic", "sigma": 4, "alpha": 200, "seed": 3}"#,
        r#"{"type": "flip", "axes": [0]}, {"type": "gamma", "gamma": 1.3}"#,
        r#"{"type": "zscore"}, {"type": "rotate", "degrees": [5, 0, 20]}"#,
        r#"{"type": "percentile_clip", "low": 1, "high": 99}, {"type": "flip", "axes": [1]}"#,
    ]
    .iter()
    .map(|j| transforms(j))
    .collect();
    let fresh: Vec<Subject> = plans.iter().map(|t| g.apply(&a, t).unwrap()).collect();
    let fresh_b: Vec<Subject> = plans.iter().map(|t| g.apply(&b, t).unwrap()).collect();
    for round in 0..2 {
        for (i, t) in plans.iter().enumerate() {
            let got = g.apply_shared(&a, t, None).unwrap();
            assert!(got == fresh[i], "round {round}, plan {i}");
            // Another subject through the pool between two samples of the resident one.
            assert!(
                g.apply(&b, t).unwrap() == fresh_b[i],
                "other subject, plan {i}"
            );
        }
    }
    assert_eq!(ctx.resident_subjects(), 1);
    assert!(
        g.apply_shared(&b, &plans[0], Some(voxaug::exec::largest_abs(&b)))
            .unwrap()
            == fresh_b[0]
    );
    assert_eq!(ctx.resident_subjects(), 2);
    // Room for one subject only: the least recently used one goes.
    let one = (a.images[0].data.as_bytes().len() + a.labels[0].data.as_bytes().len()) as u64;
    ctx.set_resident_budget(one);
    assert_eq!(ctx.resident_subjects(), 1);
    assert!(g.apply_shared(&a, &plans[2], None).unwrap() == fresh[2]);
    assert!(g.apply_shared(&b, &plans[1], None).unwrap() == fresh_b[1]);
    assert_eq!(ctx.resident_subjects(), 1);
    assert!(g.apply_shared(&a, &plans[1], None).unwrap() == fresh[1]);
    // A dropped subject's volumes go at the next run.
    drop(a);
    g.apply(&b, &plans[0]).unwrap();
    assert_eq!(ctx.resident_subjects(), 0);
    // Nothing kept with a budget of 0.
    ctx.set_resident_budget(0);
    assert!(g.apply_shared(&b, &plans[0], None).unwrap() == fresh_b[0]);
    assert_eq!(ctx.resident_subjects(), 0);
    // The CPU ignores sharing: the same results as apply.
    let cpu = Executor::Cpu;
    assert!(cpu.apply_shared(&b, &plans[2], None).unwrap() == cpu.apply(&b, &plans[2]).unwrap());
}
