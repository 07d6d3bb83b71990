//! `invert`: a prediction on an augmented grid mapped back onto the original grid.

#[macro_use]
mod common;
use common::*;
use voxaug::invert::invert;
use voxaug::{Executor, Fill, Grid, Kind, Pipeline, Subject};

fn plan(json: &str) -> Vec<voxaug::Transform> {
    Pipeline::from_json(json)
        .unwrap()
        .fixed_transforms()
        .unwrap()
}

/// Copy-only plans (flip, crop, pad, to_canonical) invert exactly; what the crop removed comes back as the
/// fill value.
fn copies_invert_exactly(ex: &Executor) {
    let g = Grid::new([20, 16, 12], oblique_affine()).unwrap();
    let s = Subject::new(
        vec![image_from(&g, |i, j, k| (i * 7 + j * 3 + k) as f32 + 0.5)],
        vec![label_from(&g, |i, j, _| ((i / 4 + j / 3) % 5) as f32)],
    )
    .unwrap();
    let p = plan(
        r#"[{"type": "flip", "axes": [0, 2]}, {"type": "crop", "start": [3, 2, 1], "size": [14, 12, 10]},
            {"type": "pad", "margins": [2, 0, 1]}, {"type": "to_canonical"}]"#,
    );
    let aug = ex.apply(&s, &p).unwrap();
    let back = invert(ex, &p, &g, &aug.images[0], Fill::Value(-1.0)).unwrap();
    let back_lab = invert(ex, &p, &g, &aug.labels[0], Fill::Value(0.0)).unwrap();
    assert!(back.grid.same_as(&g, 1e-9));
    assert_eq!(back_lab.data.dtype(), s.labels[0].data.dtype());
    for k in 0..12 {
        for j in 0..16 {
            for i in 0..20 {
                // After the flip the crop keeps flipped indices 3..17, 2..14, 1..11, and the pad, fused
                // with it, widens that to 1..19 and 0..12 (a fused pad shows the input, not the fill).
                let fi = 19 - i;
                let kept = (1..19).contains(&fi) && (2..14).contains(&j);
                if kept {
                    assert_eq!(back.at(i, j, k), s.images[0].at(i, j, k), "{i} {j} {k}");
                    assert_eq!(back_lab.at(i, j, k), s.labels[0].at(i, j, k));
                } else {
                    assert_eq!(back.at(i, j, k), -1.0, "cropped away at {i} {j} {k}");
                    assert_eq!(back_lab.at(i, j, k), 0.0);
                }
            }
        }
    }
}

/// Affine plans invert up to interpolation: a linear image (which trilinear sampling reproduces exactly)
/// comes back where the augmented grid saw it; label maps agree on the interior.
fn affine_plans_invert_on_the_interior(ex: &Executor) {
    let g = Grid::with_spacing([30, 28, 20], [1.0, 1.1, 1.5]).unwrap();
    let s = Subject::new(
        vec![image_from(&g, |i, j, k| {
            i as f32 * 2.0 + j as f32 - k as f32 * 0.5
        })],
        vec![label_from(&g, |i, j, _| ((i / 6 + j / 7) % 3) as f32)],
    )
    .unwrap();
    let p = plan(
        r#"[{"type": "rotate", "degrees": [5, -4, 17]}, {"type": "zoom", "factors": [1.1, 0.95, 1.05]},
            {"type": "shift", "mm": [1.5, -2, 0.5]}, {"type": "resize", "shape": [26, 30, 18]}]"#,
    );
    let aug = ex.apply(&s, &p).unwrap();
    let back = invert(ex, &p, &g, &aug.images[0], Fill::Value(-1e4)).unwrap();
    let back_lab = invert(ex, &p, &g, &aug.labels[0], Fill::Value(0.0)).unwrap();
    let (mut n, mut same_label, mut worst) = (0, 0, 0f32);
    for k in 4..16 {
        for j in 6..22 {
            for i in 6..24 {
                let (b, x) = (back.at(i, j, k), s.images[0].at(i, j, k));
                if b < -100.0 {
                    continue; // outside what the augmented grid saw
                }
                n += 1;
                worst = worst.max((b - x).abs());
                same_label += (back_lab.at(i, j, k) == s.labels[0].at(i, j, k)) as usize;
            }
        }
    }
    assert!(n > 2000, "the interior comes back ({n} voxels)");
    assert!(worst < 2e-3, "linear image back within {worst}");
    assert!(
        same_label as f64 > 0.9 * n as f64,
        "labels agree on {same_label} of {n}"
    );
}

both_executors!(
    copies_invert_exactly,
    affine_plans_invert_on_the_interior,
    invert_as_a_pipeline_step
);

#[test]
fn elastic_plans_and_wrong_shapes_are_refused() {
    let g = Grid::with_spacing([12, 12, 8], [1.0; 3]).unwrap();
    let v = image_from(&g, |i, _, _| i as f32);
    let e = invert(
        &Executor::Cpu,
        &plan(r#"[{"type": "elastic", "sigma": [3, 3, 3], "alpha": [2, 2, 2], "seed": 1}]"#),
        &g,
        &v,
        Fill::Value(0.0),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("elastic") && e.contains("no exact inverse"),
        "{e}"
    );
    let e = invert(
        &Executor::Cpu,
        &plan(r#"[{"type": "pad", "margins": [1, 1, 1]}]"#),
        &g,
        &v,
        Fill::Value(0.0),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("[12, 12, 8]") && e.contains("[14, 14, 10]"),
        "{e}"
    );
}

/// The CLI: a sample of `augment`, inverted with its plan onto the original's grid.
#[test]
fn invert_cli_maps_a_sample_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = Grid::with_spacing([24, 20, 10], [1.0, 1.0, 2.0]).unwrap();
    let img = image_from(&g, |i, j, k| (i + 2 * j + 3 * k) as f32);
    let lab = label_from(&g, |i, _, _| (i / 8) as f32);
    let (ip, lp) = (d.join("img.nii"), d.join("seg.nii"));
    voxaug::io::write_volume(&ip, &img).unwrap();
    voxaug::io::write_volume(&lp, &lab).unwrap();
    let pipe = d.join("p.json");
    std::fs::write(&pipe, r#"{"transforms": [{"type": "random_affine", "degrees": 10, "p": 1}, {"type": "random_crop", "size": [20, 16, 8]}]}"#).unwrap();
    let bin = env!("CARGO_BIN_EXE_voxaug");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let aug = d.join("aug");
    run(&[
        "augment",
        pipe.to_str().unwrap(),
        "--image",
        ip.to_str().unwrap(),
        "--label",
        lp.to_str().unwrap(),
        "--out",
        aug.to_str().unwrap(),
        "-n",
        "1",
        "--device",
        "cpu",
    ]);
    let inv = d.join("inv");
    let s0 = aug.join("0000");
    run(&[
        "invert",
        s0.join("plan.json").to_str().unwrap(),
        "--image",
        s0.join("seg.nii").to_str().unwrap(),
        "--reference",
        ip.to_str().unwrap(),
        "--out",
        inv.to_str().unwrap(),
        "--label",
        "--device",
        "cpu",
    ]);
    let back = voxaug::io::read_volume(inv.join("seg.nii"), Kind::Label).unwrap();
    assert!(back.grid.same_as(&g, 1e-5));
    assert_eq!(back.data.dtype(), lab.data.dtype());
    let agree = back
        .values()
        .iter()
        .zip(lab.values().iter())
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        agree as f64 > 0.6 * g.len() as f64,
        "{agree} of {}",
        g.len()
    );
}

/// `{"type": "invert", "plan": ..., "reference": ...}` in a pipeline gives what `invert` gives (a plan
/// file relative to the pipeline's folder, or the plan inline), fuses with transforms after it, records
/// what it read so the plan re-applies without the files, and refuses a wrong input shape, a missing
/// reference, an elastic plan and a plan that inverts itself.
fn invert_as_a_pipeline_step(ex: &Executor) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = Grid::with_spacing([24, 20, 10], [1.0, 1.1, 2.0]).unwrap();
    let s = Subject::new(
        vec![image_from(&g, |i, j, k| (i + 2 * j + 3 * k) as f32)],
        vec![label_from(&g, |i, j, _| ((i / 5 + j / 4) % 3) as f32)],
    )
    .unwrap();
    voxaug::io::write_volume(d.join("orig.nii"), &s.images[0]).unwrap();
    let plan_json = r#"{"transforms": [{"type": "rotate", "degrees": [0, 0, 12]}, {"type": "crop", "start": [2, 1, 0], "size": [20, 18, 10]}, {"type": "zscore"}]}"#;
    std::fs::create_dir(d.join("s0")).unwrap();
    std::fs::write(d.join("s0/plan.json"), plan_json).unwrap();
    let p = plan(plan_json);
    let aug = ex.apply(&s, &p).unwrap();
    let want = invert(ex, &p, &g, &aug.labels[0], Fill::Value(0.0)).unwrap();
    let want_img = invert(ex, &p, &g, &aug.images[0], Fill::Value(-3.0)).unwrap();
    let pf = d.join("inv.json");
    std::fs::write(
        &pf,
        r#"[{"type": "invert", "plan": "s0/plan.json", "reference": "orig.nii", "fill": -3}]"#,
    )
    .unwrap();
    let pipe = Pipeline::from_file(&pf).unwrap();
    let t = pipe.fixed_transforms().unwrap();
    let back = ex.apply(&aug, &t).unwrap();
    assert_eq!(back.labels[0].data, want.data);
    // The same map (snapped to exact where it is a copy, as every compiled pass is).
    let diff = max_abs_diff(&back.images[0].values(), &want_img.values());
    assert!(diff <= 1e-5, "image differs from invert() by {diff}");
    assert!(back.images[0].grid.same_as(&g, 1e-6));
    // The inline plan, and a flip after it (fused: still one pass per volume).
    let inline = format!(
        r#"[{{"type": "invert", "plan": {plan_json}, "reference": "orig.nii"}}, {{"type": "flip", "axes": [1]}}]"#
    );
    let pi = Pipeline::from_json_in(&inline, Some(d)).unwrap();
    let ti = pi.fixed_transforms().unwrap();
    let stages = voxaug::transform::compile(&ti, &aug.grid().unwrap().clone()).unwrap();
    assert_eq!(stages.len(), 1, "invert and flip fuse into one pass");
    let flipped = ex.apply(&aug, &ti).unwrap();
    assert_eq!(flipped.labels[0].at(3, 0, 4), want.at(3, 19, 4));
    // Recorded: re-applies without the files.
    let text = pipe.to_json();
    std::fs::remove_dir_all(d.join("s0")).unwrap();
    std::fs::remove_file(d.join("orig.nii")).unwrap();
    let again = Pipeline::from_json(&text)
        .unwrap()
        .fixed_transforms()
        .unwrap();
    assert_eq!(ex.apply(&aug, &again).unwrap().labels[0].data, want.data);
    // Refusals.
    let e = ex.apply(&s, &again).unwrap_err().to_string();
    assert!(
        e.contains("shape [24, 20, 10]") && e.contains("[20, 18, 10]"),
        "{e}"
    );
    let e = Pipeline::from_json(r#"[{"type": "invert", "plan": {"transforms": []}}]"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("reference"), "{e}");
    voxaug::io::write_volume(d.join("orig.nii"), &s.images[0]).unwrap();
    let e = Pipeline::from_json_in(
        r#"[{"type": "invert", "plan": {"transforms": [{"type": "elastic", "sigma": 3, "alpha": 2, "seed": 1}]}, "reference": "orig.nii"}]"#,
        Some(d),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("elastic"), "{e}");
    std::fs::write(
        &pf,
        r#"[{"type": "invert", "plan": "inv.json", "reference": "orig.nii"}]"#,
    )
    .unwrap();
    let e = Pipeline::from_file(&pf).unwrap_err().to_string();
    assert!(e.contains("nest"), "{e}");
}
