//! Registration: a known rigid motion of the MNI T1 (2 mm copy) is recovered with every metric; the ITK
//! text form round-trips; `{"type": "transform"}` applies a saved result; bad options are refused.

use voxaug::grid::{mat_apply, Mat4};
use voxaug::register::{self, Init, Metric, RegKind, RegisterOptions};

mod common;
use voxaug::{io, Executor, Kind, Pipeline, Subject, Volume};

const MNI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mni/mni152_t1_1mm.nii.gz");

/// The MNI T1 at 2 mm (fast enough for every metric in CI).
fn fixed() -> Volume {
    let v = io::read_volume(MNI, Kind::Image).unwrap();
    let s = Subject::new(vec![v], vec![]).unwrap();
    let mut out = Executor::Cpu
        .apply(
            &s,
            &common::pipeline_transforms(r#"{"type": "resample", "spacing": [2, 2, 2]}"#),
        )
        .unwrap();
    out.images.remove(0)
}

const MOTION: &str =
    r#"{"type": "rotate", "degrees": [4, -3, 8]}, {"type": "shift", "mm": [6, -4, 3]}"#;

/// The moving image (the fixed one moved by MOTION) and the fixed -> moving world matrix that undoes it.
fn moving(f: &Volume) -> (Volume, Mat4) {
    common::moved_by(f, MOTION, "")
}

/// Largest distance in mm between where two matrices send the corners of a 120 mm box at the centre.
fn worst_mm(a: &Mat4, b: &Mat4, c: [f64; 3]) -> f64 {
    let mut w = 0.0f64;
    for k in 0..8 {
        let p = [0, 1, 2].map(|i| c[i] + if k >> i & 1 == 1 { 60.0 } else { -60.0 });
        let (x, y) = (mat_apply(a, p), mat_apply(b, p));
        w = w.max(((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt());
    }
    w
}

/// Every metric recovers the motion on the CPU, and the metric on the GPU (lavapipe in CI) lands where
/// the CPU's does (each CPU registration serves both checks).
#[test]
fn every_metric_recovers_a_rigid_motion_on_both_executors() {
    let f = fixed();
    let (m, want) = moving(&f);
    let c = mat_apply(&f.grid.affine, f.grid.shape.map(|n| (n as f64 - 1.0) / 2.0));
    // Identity is far worse: the test would notice a registration that did nothing.
    assert!(worst_mm(&voxaug::grid::IDENTITY, &want, c) > 10.0);
    for metric in [Metric::Mse, Metric::Ncc, Metric::Mi] {
        let opts = RegisterOptions {
            metric,
            levels: vec![2, 1],
            smooth_mm: vec![2.0, 0.0],
            max_samples: 30_000,
            ..Default::default()
        };
        let cpu = register::register(&f, &m, &opts).unwrap();
        let err = worst_mm(&cpu.world_matrix, &want, c);
        assert!(
            err < 1.0,
            "{metric:?}: {err} mm off (levels {:?})",
            cpu.levels
        );
        assert_eq!(cpu.levels.len(), 2);
        let gpu_opts = RegisterOptions {
            executor: common::gpu(),
            ..opts
        };
        let gpu = register::register(&f, &m, &gpu_opts).unwrap();
        let d = worst_mm(&cpu.world_matrix, &gpu.world_matrix, c);
        assert!(d < 0.2, "{metric:?}: GPU {d} mm from the CPU");
        assert!(worst_mm(&gpu.world_matrix, &want, c) < 1.0, "{metric:?}");
        let rel = (cpu.final_value - gpu.final_value).abs() / cpu.final_value.abs().max(1e-9);
        assert!(
            rel < 1e-2,
            "{metric:?}: final value {} vs {}",
            cpu.final_value,
            gpu.final_value
        );
    }
}

#[test]
fn affine_and_moments_recover_it_too() {
    let f = fixed();
    let (m, want) = moving(&f);
    let c = mat_apply(&f.grid.affine, f.grid.shape.map(|n| (n as f64 - 1.0) / 2.0));
    let opts = RegisterOptions {
        kind: RegKind::Affine,
        metric: Metric::Ncc,
        init: Init::Moments,
        levels: vec![2, 1],
        smooth_mm: vec![2.0, 0.0],
        max_samples: 30_000,
        ..Default::default()
    };
    let r = register::register(&f, &m, &opts).unwrap();
    let err = worst_mm(&r.world_matrix, &want, c);
    assert!(err < 1.5, "affine: {err} mm off");
}

/// A rotation far beyond what gradient descent from the grid centres recovers: the principal axes of
/// `--init moments` start it close enough.
#[test]
fn moments_init_recovers_a_large_rotation() {
    let f = fixed();
    let (m, want) = common::moved_by(
        &f,
        r#"{"type": "rotate", "degrees": [0, 0, 65]}, {"type": "shift", "mm": [8, -5, 4]}"#,
        "",
    );
    let c = mat_apply(&f.grid.affine, f.grid.shape.map(|n| (n as f64 - 1.0) / 2.0));
    let opts = |init, iterations| RegisterOptions {
        metric: Metric::Mse,
        init,
        levels: vec![2, 1],
        smooth_mm: vec![2.0, 0.0],
        max_samples: 30_000,
        iterations,
        ..Default::default()
    };
    // The start alone: the principal axes are within a few degrees, the centres of mass of each other.
    let start = register::register(&f, &m, &opts(Init::Moments, 0)).unwrap();
    let (s, g) = (
        worst_mm(&start.world_matrix, &want, c),
        worst_mm(&voxaug::grid::IDENTITY, &want, c),
    );
    // (Measured: 0.02 mm from the truth before any iteration; from the grid centres gradient descent
    // ends 95 mm off.)
    assert!(
        s < 2.0 && g > 50.0,
        "moments start {s} mm off, identity {g} mm"
    );
    let r = register::register(&f, &m, &opts(Init::Moments, 200)).unwrap();
    let err = worst_mm(&r.world_matrix, &want, c);
    assert!(err < 1.0, "moments: {err} mm off ({:?})", r.levels);
}

#[test]
fn the_same_seed_gives_the_same_result() {
    let f = fixed();
    let (m, _) = moving(&f);
    let opts = RegisterOptions {
        levels: vec![2],
        smooth_mm: vec![1.0],
        iterations: 20,
        max_samples: 5_000,
        seed: 7,
        ..Default::default()
    };
    let a = register::register(&f, &m, &opts).unwrap();
    let b = register::register(&f, &m, &opts).unwrap();
    assert_eq!(a.world_matrix, b.world_matrix);
}

#[test]
fn tfm_round_trips_and_transform_type_applies_a_saved_result() {
    let f = fixed();
    let (m, want) = moving(&f);
    let text = register::to_tfm(&want);
    assert!(text.starts_with("#Insight Transform File V1.0"));
    let back = register::from_tfm(&text).unwrap();
    for r in 0..4 {
        for c in 0..4 {
            assert!((back[r][c] - want[r][c]).abs() < 1e-12, "{r}{c}");
        }
    }
    // A saved transform.json, referenced relative to the pipeline file's folder.
    let dir = tempfile::tempdir().unwrap();
    let saved = serde_json::json!({
        "type": "rigid",
        "world_matrix": want,
        "fixed_grid": {"shape": f.grid.shape, "affine": f.grid.affine},
    });
    std::fs::write(dir.path().join("transform.json"), saved.to_string()).unwrap();
    std::fs::write(dir.path().join("transform.tfm"), &text).unwrap();
    let s = Subject::new(vec![m], vec![]).unwrap();
    let fv = f.values();
    let range = fv.iter().fold(0f32, |a, v| a.max(v.abs()));
    for file in ["transform.json", "transform.tfm"] {
        let pipe = dir.path().join("p.json");
        std::fs::write(
            &pipe,
            format!(r#"{{"transforms": [{{"type": "transform", "file": "{file}"}}]}}"#),
        )
        .unwrap();
        let p = Pipeline::from_file(&pipe).unwrap();
        let t = p.fixed_transforms().unwrap();
        // The plan records the matrix: it re-applies without the file.
        assert!(serde_json::to_string(&t).unwrap().contains("world_matrix"));
        let out = Executor::Cpu.apply(&s, &t).unwrap();
        let g = out.images[0].values();
        assert_eq!(out.images[0].grid.shape, f.grid.shape);
        // Back on the fixed grid: the voxels the motion kept in view match the fixed image (two
        // interpolations apart), the rest were filled.
        let close = g
            .iter()
            .zip(fv.iter())
            .filter(|(a, b)| (*a - *b).abs() <= 0.1 * range)
            .count();
        assert!(
            close as f64 > 0.95 * fv.len() as f64,
            "{file}: {close} of {}",
            fv.len()
        );
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"transforms": [{"type": "transform", "file": "missing.json"}]}"#,
    )
    .unwrap();
    let e = Pipeline::from_file(&bad).unwrap_err().to_string();
    assert!(e.contains("missing.json"), "{e}");
}

#[test]
fn bad_inputs_are_refused() {
    let f = fixed();
    let mut nan = f.clone();
    nan.image_data_mut().unwrap()[5] = f32::NAN;
    let e = register::register(&f, &nan, &RegisterOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nan_to_num"), "{e}");
    let opts = RegisterOptions {
        levels: vec![4, 2, 1],
        smooth_mm: vec![1.0],
        ..Default::default()
    };
    let e = register::register(&f, &f, &opts).unwrap_err().to_string();
    assert!(e.contains("levels") && e.contains("sigma"), "{e}");
    // Histogram sizes outside 8..=256 (the cubic Parzen window needs 2 padding bins a side).
    for bins in [4, 300] {
        let opts = RegisterOptions {
            bins,
            ..Default::default()
        };
        let e = register::register(&f, &f, &opts).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{bins} bins")) && e.contains("8 to 256 bins"),
            "{e}"
        );
    }
    assert!(
        register::from_tfm("Transform: BSplineTransform_double_3_3\n")
            .unwrap_err()
            .to_string()
            .contains("not supported")
    );
    // A fixed mask of the right shape on another grid (shifted origin) is refused.
    let mut g = f.grid.clone();
    g.affine[1][3] += 4.0;
    let mask = Volume::label(vec![1.0; g.len()], g).unwrap();
    let opts = RegisterOptions {
        fixed_mask: Some(mask),
        ..Default::default()
    };
    let e = register::register(&f, &f, &opts).unwrap_err().to_string();
    assert!(e.contains("fixed mask") && e.contains("grid"), "{e}");
}

#[test]
fn register_cli_refuses_a_label_off_the_moving_grid_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = io::read_volume(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/anatomical.nii"),
        Kind::Image,
    )
    .unwrap();
    io::write_volume(d.join("fixed.nii"), &img).unwrap();
    io::write_volume(d.join("moving.nii"), &img).unwrap();
    // Same shape, shifted origin: only the affine differs.
    let mut g = img.grid.clone();
    g.affine[0][3] += 5.0;
    let lab = Volume::label(vec![1.0; g.len()], g).unwrap();
    io::write_volume(d.join("seg.nii.gz"), &lab).unwrap();
    let out = d.join("reg");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .current_dir(d)
        .args([
            "register",
            "fixed.nii",
            "moving.nii",
            "--label",
            "seg.nii.gz",
            "--out",
            "reg",
            "--device",
            "cpu",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a label on another grid was accepted");
    assert!(
        err.contains("seg.nii.gz")
            && err.contains("moving image's grid")
            && err.contains("resample_to"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written on failure");
}
