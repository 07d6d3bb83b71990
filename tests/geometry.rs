//! Geometry: grid-changing transforms update the affine; world-space transforms respect anisotropy.

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

#[macro_use]
mod common;
use common::*;
use voxaug::grid::{mat_apply, Grid};
use voxaug::transform::{Margins, Transform, Vec3};
use voxaug::{Executor, Fill, Subject};

fn apply(ex: &Executor, s: &Subject, t: Transform) -> Subject {
    ex.apply(s, &[t]).unwrap()
}

fn subject(g: &Grid) -> Subject {
    Subject::new(vec![image_from(g, |i, j, k| (i + j + k) as f32)], vec![]).unwrap()
}

fn crop_moves_origin_by_affine_times_start(ex: &Executor) {
    let g = Grid::new([20, 30, 10], oblique_affine()).unwrap();
    let start = [4, 7, 2];
    let out = apply(
        ex,
        &subject(&g),
        Transform::Crop {
            label_interpolation: None,
            start: Some(start),
            size: Some([5, 6, 7]),
            margins: None,
            percent: false,
        },
    );
    let o = &out.images[0].grid;
    let want = mat_apply(&g.affine, start.map(|s| s as f64));
    for a in 0..3 {
        assert!((o.origin()[a] - want[a]).abs() < 1e-9);
        for b in 0..3 {
            assert_eq!(
                o.affine[a][b], g.affine[a][b],
                "direction and spacing unchanged"
            );
        }
    }
    // Percent margins: 10% of 20 = 2 voxels, 20% of 30 = 6, 0 of 10.
    let pc = apply(
        ex,
        &subject(&g),
        Transform::Crop {
            label_interpolation: None,
            start: None,
            size: None,
            margins: Some(Margins([[0.1, 0.1], [0.2, 0.0], [0.0, 0.0]])),
            percent: true,
        },
    );
    assert_eq!(pc.images[0].grid.shape, [16, 24, 10]);
    let want = mat_apply(&g.affine, [2.0, 6.0, 0.0]);
    assert!((0..3).all(|a| (pc.images[0].grid.origin()[a] - want[a]).abs() < 1e-9));
    // center_crop
    let cc = apply(
        ex,
        &subject(&g),
        Transform::CenterCrop {
            label_interpolation: None,
            size: [10, 10, 10],
        },
    );
    let want = mat_apply(&g.affine, [5.0, 10.0, 0.0]);
    assert!((0..3).all(|a| (cc.images[0].grid.origin()[a] - want[a]).abs() < 1e-9));
    // crop_or_pad (TorchIO's CropOrPad): 20 -> 15 crops 3 before and 2 after (the extra voxel first),
    // 30 -> 30 keeps, 10 -> 13 pads 2 before and 1 after; the same voxels as crop + pad.
    let s = Subject::new(
        vec![image_from(&g, |i, j, k| (i + 2 * j + 3 * k) as f32)],
        vec![label_from(&g, |i, j, k| ((i + j + k) % 3) as f32)],
    )
    .unwrap();
    let cp = apply(
        ex,
        &s,
        Transform::CropOrPad {
            label_interpolation: None,
            size: [15, 30, 13],
            fill: Some(Fill::Value(-4.0)),
        },
    );
    assert_eq!(cp.images[0].grid.shape, [15, 30, 13]);
    let crop = apply(
        ex,
        &s,
        Transform::Crop {
            label_interpolation: None,
            start: None,
            size: None,
            margins: Some(Margins([[3.0, 2.0], [0.0, 0.0], [0.0, 0.0]])),
            percent: false,
        },
    );
    let want = apply(
        ex,
        &crop,
        Transform::Pad {
            label_interpolation: None,
            margins: Margins([[0.0, 0.0], [0.0, 0.0], [2.0, 1.0]]),
            fill: Some(Fill::Value(-4.0)),
        },
    );
    assert_eq!(cp.images[0].data, want.images[0].data);
    assert_eq!(cp.labels[0].data, want.labels[0].data);
    assert!(cp.images[0].grid.same_as(&want.images[0].grid, 1e-12));
}

/// World positions of the outer corners of the grid's extent (voxel -0.5 and n - 0.5).
fn extent_corners(g: &Grid) -> Vec<[f64; 3]> {
    let mut v = Vec::new();
    for c in 0..8 {
        let p = [0, 1, 2].map(|a| {
            if c >> a & 1 == 1 {
                g.shape[a] as f64 - 0.5
            } else {
                -0.5
            }
        });
        v.push(mat_apply(&g.affine, p));
    }
    v
}

fn resize_and_resample_change_spacing_and_keep_world_extent(ex: &Executor) {
    let g = Grid::new([9, 11, 7], oblique_affine()).unwrap();
    let r = apply(
        ex,
        &subject(&g),
        Transform::Resize {
            label_interpolation: None,
            shape: [5, 16, 10],
            fill: None,
        },
    );
    let rg = &r.images[0].grid;
    let sp = g.spacing();
    let want = [sp[0] * 9.0 / 5.0, sp[1] * 11.0 / 16.0, sp[2] * 7.0 / 10.0];
    for a in 0..3 {
        assert!((rg.spacing()[a] - want[a]).abs() < 1e-9);
    }
    for (p, q) in extent_corners(&g).iter().zip(extent_corners(rg)) {
        assert!(
            (0..3).all(|a| (p[a] - q[a]).abs() < 1e-9),
            "extent moved: {p:?} vs {q:?}"
        );
    }
    // Resample 1.5 x 0.75 x 3 mm -> 0.5 x 1.5 x 1 mm: shapes 27 x 5.5->6 x 21.
    let s = apply(
        ex,
        &subject(&g),
        Transform::Resample {
            label_interpolation: None,
            spacing: Vec3([0.5, 1.5, 1.0]),
            fill: None,
        },
    );
    let sg = &s.images[0].grid;
    assert_eq!(sg.shape, [27, 6, 21]);
    assert!((sg.spacing()[0] - 0.5).abs() < 1e-9 && (sg.spacing()[2] - 1.0).abs() < 1e-9);
    assert!(
        (sg.spacing()[1] - 0.75 * 11.0 / 6.0).abs() < 1e-9,
        "spacing adjusted to keep the extent"
    );
    for (p, q) in extent_corners(&g).iter().zip(extent_corners(sg)) {
        assert!((0..3).all(|a| (p[a] - q[a]).abs() < 1e-9));
    }
}

fn rotation_on_anisotropic_voxels_keeps_a_sphere_a_sphere(ex: &Executor) {
    // 1 x 1 x 4 mm voxels, a sphere of radius 14 mm around the volume centre.
    let g = Grid::new(
        [48, 48, 12],
        [
            [1.0, 0.0, 0.0, 3.0],
            [0.0, 1.0, 0.0, -7.0],
            [0.0, 0.0, 4.0, 11.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
    )
    .unwrap();
    let c = g.world_center();
    let r = 14.0;
    let dist = |i: usize, j: usize, k: usize| {
        let w = mat_apply(&g.affine, [i as f64, j as f64, k as f64]);
        ((w[0] - c[0]).powi(2) + (w[1] - c[1]).powi(2) + (w[2] - c[2]).powi(2)).sqrt()
    };
    let lab = label_from(&g, |i, j, k| if dist(i, j, k) <= r { 1.0 } else { 0.0 });
    let s = Subject::new(vec![], vec![lab]).unwrap();
    let out = apply(
        ex,
        &s,
        Transform::Rotate {
            label_interpolation: None,
            degrees: Vec3([50.0, 0.0, 0.0]),
            fill: None,
        },
    );
    let o = &out.labels[0];
    // Nearest sampling on 4 mm slices moves a boundary by at most half a voxel diagonal (~2.1 mm);
    // an ellipsoid (rotation in voxel space) would put labelled voxels up to ~40 mm from the centre.
    let mut worst = 0.0f64;
    for k in 0..12 {
        for j in 0..48 {
            for i in 0..48 {
                let d = dist(i, j, k);
                let inside = o.at(i, j, k) == 1.0;
                if inside && d > r {
                    worst = worst.max(d - r);
                }
                if !inside && d < r {
                    worst = worst.max(r - d);
                }
            }
        }
    }
    assert!(worst < 2.2, "sphere boundary moved by {worst} mm");
    assert!(o.values().contains(&1.0));
}

fn rotation_after_crop_turns_about_the_cropped_centre_and_shows_real_anatomy(ex: &Executor) {
    let g = Grid::with_spacing([20, 20, 5], [1.0; 3]).unwrap();
    // A linear ramp: trilinear reproduces it exactly, so the sampled coordinate can be read back.
    let s = Subject::new(
        vec![image_from(&g, |i, j, _| 1.0 + i as f32 * 20.0 + j as f32)],
        vec![],
    )
    .unwrap();
    let crop = Transform::Crop {
        label_interpolation: None,
        start: Some([5, 5, 0]),
        size: Some([10, 10, 5]),
        margins: None,
        percent: false,
    };
    let rot = Transform::Rotate {
        label_interpolation: None,
        degrees: Vec3([0.0, 0.0, 45.0]),
        fill: None,
    };
    let fused = ex.apply(&s, &[crop.clone(), rot.clone()]).unwrap();
    let stepwise = apply(ex, &apply(ex, &s, crop), rot);
    let (c, h) = (9.5f64, std::f64::consts::FRAC_1_SQRT_2);
    for (i, j) in [(0usize, 0usize), (9, 0), (3, 7), (9, 9)] {
        // Pull-back about the cropped grid's centre (9.5, 9.5 in input voxels): rotate by -45 degrees.
        let (x, y) = ((i + 5) as f64 - c, (j + 5) as f64 - c);
        let (xi, yi) = (h * x + h * y + c, -h * x + h * y + c);
        let want = 1.0 + xi * 20.0 + yi;
        let got = fused.images[0].at(i, j, 2) as f64;
        assert!((got - want).abs() < 1e-3, "({i},{j}): {got} vs {want}");
    }
    assert!(
        fused.images[0].values().iter().all(|&v| v >= 1.0),
        "fused samples real anatomy outside the crop"
    );
    assert!(
        stepwise.images[0].at(0, 0, 2) == 0.0,
        "step by step shows fill in the corners"
    );
}

fn fused_spatial_run_interpolates_once(ex: &Executor) {
    // Two affine steps fused equal one affine of the product (one interpolation), not two.
    let g = Grid::with_spacing([16, 16, 16], [1.0; 3]).unwrap();
    let n = noise(g.len(), 11);
    let s = Subject::new(vec![image_from(&g, |i, j, k| n[g.index(i, j, k)])], vec![]).unwrap();
    let a = [
        [1.0, 0.1, 0.0, 0.3],
        [0.0, 1.0, 0.0, -0.2],
        [0.05, 0.0, 0.9, 0.7],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let b = [
        [0.95, 0.0, 0.0, 0.4],
        [0.0, 1.05, -0.1, 0.1],
        [0.0, 0.0, 1.0, 0.35],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let ab = voxaug::grid::mat_mul(&a, &b);
    let two = ex
        .apply(
            &s,
            &[
                Transform::Affine {
                    label_interpolation: None,
                    matrix: a,
                    fill: None,
                },
                Transform::Affine {
                    label_interpolation: None,
                    matrix: b,
                    fill: None,
                },
            ],
        )
        .unwrap();
    let one = apply(
        ex,
        &s,
        Transform::Affine {
            label_interpolation: None,
            matrix: ab,
            fill: None,
        },
    );
    let diff = two.images[0]
        .values()
        .iter()
        .zip(one.images[0].values().iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-5, "fused differs from single product by {diff}");
    let stepwise = apply(
        ex,
        &apply(
            ex,
            &s,
            Transform::Affine {
                label_interpolation: None,
                matrix: a,
                fill: None,
            },
        ),
        Transform::Affine {
            label_interpolation: None,
            matrix: b,
            fill: None,
        },
    );
    let sdiff = stepwise.images[0]
        .values()
        .iter()
        .zip(one.images[0].values().iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(
        sdiff > 1e-3,
        "step-by-step interpolates twice and must differ"
    );
}

both_executors!(
    crop_moves_origin_by_affine_times_start,
    resize_and_resample_change_spacing_and_keep_world_extent,
    rotation_on_anisotropic_voxels_keeps_a_sphere_a_sphere,
    rotation_after_crop_turns_about_the_cropped_centre_and_shows_real_anatomy,
    fused_spatial_run_interpolates_once,
    to_canonical_keeps_every_voxel_in_place
);

/// `to_canonical` reorders and flips voxel axes to RAS: every voxel keeps its value and its world
/// position (an exact copy), on a permuted, flipped, anisotropic grid and on both executors.
fn to_canonical_keeps_every_voxel_in_place(ex: &Executor) {
    // Voxel axis 0 points superior, axis 1 left, axis 2 anterior (orientation "SLA").
    let affine = [
        [0.0, -1.5, 0.0, 10.0],
        [0.0, 0.0, 2.0, -5.0],
        [1.2, 0.0, 0.0, 3.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let g = Grid::new([7, 9, 5], affine).unwrap();
    assert_eq!(g.orientation(), "SLA");
    let s = Subject::new(
        vec![image_from(&g, |i, j, k| (i * 100 + j * 10 + k) as f32)],
        vec![label_from(&g, |i, j, _| ((i + j) % 4) as f32)],
    )
    .unwrap();
    let out = apply(
        ex,
        &s,
        Transform::ToCanonical {
            label_interpolation: None,
        },
    );
    let o = &out.images[0];
    assert_eq!(o.grid.orientation(), "RAS");
    assert_eq!(o.grid.shape, [9, 5, 7]);
    // Each output voxel holds the input voxel at the same world position.
    let inv = voxaug::grid::mat_inv(&g.affine).unwrap();
    for k in 0..7 {
        for j in 0..5 {
            for i in 0..9 {
                let w = mat_apply(&o.grid.affine, [i as f64, j as f64, k as f64]);
                let p = mat_apply(&inv, w).map(|x| x.round() as usize);
                assert_eq!(o.at(i, j, k), s.images[0].at(p[0], p[1], p[2]));
                assert_eq!(out.labels[0].at(i, j, k), s.labels[0].at(p[0], p[1], p[2]));
            }
        }
    }
    // Already canonical: nothing moves.
    let again = apply(
        ex,
        &out,
        Transform::ToCanonical {
            label_interpolation: None,
        },
    );
    assert_eq!(again.images[0].data, out.images[0].data);
    assert!(again.images[0].grid.same_as(&o.grid, 1e-12));
}

/// `resample_to` puts the input on a reference file's grid (read when the pipeline is parsed, a relative
/// path from the pipeline file's folder): equal to the affine pull-back inv(A_in) * A_ref, and the plan
/// carries the grid so it re-applies after the file is gone.
#[test]
fn resample_to_takes_the_reference_grid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = Grid::new([20, 18, 12], oblique_affine()).unwrap();
    let s = Subject::new(
        vec![image_from(&g, |i, j, k| (i * 3 + j * 2 + k) as f32)],
        vec![label_from(&g, |i, _, _| (i / 5) as f32)],
    )
    .unwrap();
    let rg = Grid::with_spacing([15, 14, 9], [1.7, 1.9, 2.6]).unwrap();
    std::fs::create_dir(d.join("refs")).unwrap();
    voxaug::io::write_volume(d.join("refs/ref.nii"), &image_from(&rg, |_, _, _| 0.0)).unwrap();
    let pf = d.join("p.json");
    std::fs::write(
        &pf,
        r#"[{"type": "resample_to", "reference": "refs/ref.nii"}]"#,
    )
    .unwrap();
    let p = voxaug::Pipeline::from_file(&pf).unwrap();
    let t = p.fixed_transforms().unwrap();
    let out = Executor::Cpu.apply(&s, &t).unwrap();
    // The written reference holds f32 affine fields: compare with what was read back.
    let back = voxaug::io::read_volume(d.join("refs/ref.nii"), voxaug::Kind::Image).unwrap();
    assert!(out.images[0].grid.same_as(&back.grid, 1e-9));
    let m = voxaug::grid::mat_mul(
        &voxaug::grid::mat_inv(&g.affine).unwrap(),
        &back.grid.affine,
    );
    let direct = voxaug::exec::cpu::resample::resample(
        s.images[0].image_data().unwrap(),
        &g,
        &m,
        &back.grid,
        voxaug::exec::cpu::resample::Outside::Value(0.0),
    )
    .unwrap();
    assert_eq!(*out.images[0].values(), direct[..]);
    // The plan re-applies without the reference file.
    let plan = p.to_json();
    std::fs::remove_dir_all(d.join("refs")).unwrap();
    let again = voxaug::Pipeline::from_json(&plan).unwrap();
    let out2 = Executor::Cpu
        .apply(&s, &again.fixed_transforms().unwrap())
        .unwrap();
    assert_eq!(out2.images[0].data, out.images[0].data);
    assert_eq!(out2.labels[0].data, out.labels[0].data);
    // A missing reference names the file.
    std::fs::write(&pf, r#"[{"type": "resample_to", "reference": "nope.nii"}]"#).unwrap();
    let e = voxaug::Pipeline::from_file(&pf).unwrap_err().to_string();
    assert!(e.contains("nope.nii"), "{e}");
}

#[test]
fn crop_foreground_takes_the_nonzero_box_with_a_margin() {
    // MONAI's CropForeground: the box of the first image's (or label map's) nonzero voxels, grown by
    // `margin` and clipped; the plan records the crop; an empty foreground keeps everything.
    let g = Grid::new([20, 16, 10], oblique_affine()).unwrap();
    let inside = |i: usize, j: usize, k: usize| {
        (5..=12).contains(&i) && (3..=8).contains(&j) && (2..=5).contains(&k)
    };
    let img = image_from(
        &g,
        |i, j, k| if inside(i, j, k) { 1.0 + i as f32 } else { 0.0 },
    );
    let lab = label_from(&g, |i, j, k| (i >= 10 && j <= 4 && k >= 7) as u8 as f32);
    let s = Subject::new(vec![img], vec![lab]).unwrap();
    let sample = |json: &str| {
        voxaug::Pipeline::from_json(json)
            .unwrap()
            .sample(&Executor::Cpu, &s, 0)
            .unwrap()
    };
    let (out, plan) = sample(r#"[{"type": "crop_foreground", "margin": 1}]"#);
    assert_eq!(out.images[0].grid.shape, [10, 8, 6]);
    assert_eq!(
        out.images[0].grid.origin(),
        mat_apply(&g.affine, [4.0, 2.0, 1.0])
    );
    assert!(plan.to_json().contains("\"crop\""), "{}", plan.to_json());
    // Per-axis margins, clipped at the border; the label map's box.
    let (out, _) =
        sample(r#"[{"type": "crop_foreground", "source": "label", "margin": [0, 3, 5]}]"#);
    assert_eq!(out.labels[0].grid.shape, [10, 8, 8]);
    assert_eq!(
        out.labels[0].grid.origin(),
        mat_apply(&g.affine, [10.0, 0.0, 2.0])
    );
    // After a flip of axis 0 the box is the mirrored one.
    let (out, _) = sample(r#"[{"type": "flip", "axes": [0]}, {"type": "crop_foreground"}]"#);
    assert_eq!(out.images[0].grid.shape, [8, 6, 4]);
    assert_eq!(out.images[0].at(0, 0, 0), 13.0);
    // No foreground: nothing cropped.
    let empty = Subject::new(vec![image_from(&g, |_, _, _| 0.0)], vec![]).unwrap();
    let (out, plan) = voxaug::Pipeline::from_json(r#"[{"type": "crop_foreground"}]"#)
        .unwrap()
        .sample(&Executor::Cpu, &empty, 0)
        .unwrap();
    assert_eq!(out.images[0].grid.shape, g.shape);
    assert!(plan.transforms.is_empty());
    for bad in [
        r#"{"type": "crop_foreground", "source": "mask"}"#,
        r#"{"type": "crop_foreground", "margin": -1}"#,
        r#"{"type": "crop_foreground", "margin": 1.5}"#,
    ] {
        let e = refused(bad);
        assert!(e.contains("crop_foreground"), "{bad}: {e}");
    }
}

#[test]
fn simulate_low_resolution_samples_nearest_down_and_linear_up() {
    // Along x at zoom 0.5, low voxel l takes input voxel 2l + 1 (nearest of 2l + 0.5); back on the
    // input grid voxel i reads low coordinate i / 2 - 0.25: a ramp x = i comes back as i + 0.5 inside,
    // the edge replicated; y and z (zoom 1) are untouched; the grid is the input's.
    let g = Grid::new([20, 6, 3], oblique_affine()).unwrap();
    let s = Subject::new(
        vec![image_from(&g, |i, j, k| {
            i as f32 + 100.0 * (j + 10 * k) as f32
        })],
        vec![label_from(&g, |i, j, _| ((i / 3 + j) % 4) as f32)],
    )
    .unwrap();
    let t = pipeline_transforms;
    let out = Executor::Cpu
        .apply(
            &s,
            &t(r#"{"type": "simulate_low_resolution", "zoom": [0.5, 1, 1]}"#),
        )
        .unwrap();
    assert_eq!(out.images[0].grid, g);
    for k in 0..3 {
        for j in 0..6 {
            let base = 100.0 * (j + 10 * k) as f32;
            for i in 1..19 {
                let got = out.images[0].at(i, j, k) - base;
                assert!(
                    (got - (i as f32 + 0.5)).abs() < 1e-3,
                    "({i}, {j}, {k}): {got}"
                );
            }
            assert!((out.images[0].at(0, j, k) - base - 1.0).abs() < 1e-3);
            assert!((out.images[0].at(19, j, k) - base - 19.0).abs() < 1e-3);
        }
    }
    // Label maps are untouched (as nnU-Net and TorchIO's scalars_only leave them).
    assert_eq!(out.labels[0].data, s.labels[0].data);
    // An image-only op (its own two passes), then one fused pass for what follows.
    let stages = voxaug::transform::compile(
        &t(r#"{"type": "simulate_low_resolution", "zoom": [0.5, 1, 1]}, {"type": "rotate", "degrees": [0, 0, 10]}, {"type": "crop", "start": [1, 1, 0], "size": [10, 4, 3]}"#),
        &g,
    )
    .unwrap();
    assert_eq!(stages.len(), 2);
    // Zoom 1 everywhere is the identity, exactly.
    let same = Executor::Cpu
        .apply(&s, &t(r#"{"type": "simulate_low_resolution", "zoom": 1}"#))
        .unwrap();
    assert_eq!(same.images[0].data, s.images[0].data);
    // The random form: p_per_axis 0 draws nothing, 1 with a fixed range draws that factor per axis.
    let plan = |json: &str| {
        voxaug::Pipeline::from_json(json)
            .unwrap()
            .sample(&Executor::Cpu, &s, 3)
            .unwrap()
            .1
    };
    assert!(
        plan(r#"[{"type": "random_low_resolution", "p_per_axis": 0}]"#)
            .transforms
            .is_empty()
    );
    let p =
        plan(r#"[{"type": "random_low_resolution", "p_per_axis": 1, "zoom_range": [0.5, 0.5]}]"#);
    assert!(
        p.to_json().contains("simulate_low_resolution"),
        "{}",
        p.to_json()
    );
    for bad in [
        r#"{"type": "simulate_low_resolution", "zoom": [0, 1, 1]}"#,
        r#"{"type": "simulate_low_resolution", "zoom": 1.5}"#,
        r#"{"type": "random_low_resolution", "zoom_range": [0.8, 0.5]}"#,
    ] {
        let e = refused(bad);
        assert!(e.contains("low_resolution"), "{bad}: {e}");
    }
}

#[test]
fn large_crops_are_the_box_voxel_for_voxel() {
    // Crops of 8 MiB or more are copied past the cache (non-temporal stores): odd offsets and row
    // lengths give unaligned heads and tails, and the label map's rows are one byte per voxel. Every
    // entry point (the input checked in the copy, a known bound, an owned input) gives the box.
    let g = Grid::with_spacing([227, 210, 190], [1.0; 3]).unwrap();
    let f = |i: usize, j: usize, k: usize| (i * 7 + j * 131 + k * 1031) as f32 * 0.5 - 9000.0;
    let l = |i: usize, j: usize, k: usize| ((i + 2 * j + 3 * k) % 200) as f32;
    let s = Subject::new(vec![image_from(&g, f)], vec![label_from(&g, l)]).unwrap();
    assert_eq!(s.labels[0].dtype, voxaug::DType::U8);
    let (off, size) = ([3usize, 1, 2], [221usize, 207, 185]);
    // Past the threshold in both types (the label map's bytes too).
    assert!(size.iter().product::<usize>() >= 8 << 20);
    let crop = |start: [usize; 3]| Transform::Crop {
        start: Some(start),
        size: Some(size),
        margins: None,
        percent: false,
        label_interpolation: None,
    };
    let t = [crop(off)];
    let cpu = Executor::Cpu;
    let largest = voxaug::exec::largest_abs(&s);
    for out in [
        cpu.apply(&s, &t).unwrap(),
        cpu.apply_known(&s, &t, largest).unwrap(),
        cpu.apply_owned(s.clone(), &t).unwrap(),
    ] {
        assert_eq!(out.images[0].grid.shape, size);
        let (img, lab) = (out.images[0].values(), out.labels[0].values());
        for k in 0..size[2] {
            for j in 0..size[1] {
                for i in 0..size[0] {
                    let n = i + size[0] * (j + size[1] * k);
                    let (a, b, c) = (i + off[0], j + off[1], k + off[2]);
                    assert_eq!((img[n], lab[n]), (f(a, b, c), l(a, b, c)), "{i} {j} {k}");
                }
            }
        }
    }
    // A NaN inside the box is found by the check inside the copy; one outside is cut away.
    let mut bad = s.clone();
    let d = bad.images[0].image_data_mut().unwrap();
    d[(off[0] + 220) + 227 * ((off[1] + 206) + 210 * (off[2] + 184))] = f32::NAN;
    let e = cpu.apply(&bad, &t).unwrap_err().to_string();
    assert!(e.contains("1 NaN or infinite"), "{e}");
    assert!(cpu.apply(&bad, &[crop([2, 1, 2])]).is_ok());
}
