//! `label_interpolation: "linear_argmax"`: nearest on integer maps, ties to the lower label value (signed
//! too), never a new label, closer to the true shape than nearest under zoom and rotation, the last value
//! in a fused run wins, random transforms pass it on, and the GPU returns the CPU's labels.

mod common;

use common::*;
use voxaug::grid::Grid;
use voxaug::transform::{compile, LabelInterp, Stage};
use voxaug::volume::{Kind, Subject, Volume};
use voxaug::voxels::Voxels;
use voxaug::Executor;

fn labels_of(v: &Volume) -> Vec<f64> {
    v.values().iter().map(|&x| x as f64).collect()
}

fn run(e: &Executor, s: &Subject, json: &str) -> Subject {
    e.apply(s, &pipeline_transforms(json))
        .unwrap_or_else(|err| panic!("{json}: {err}"))
}

/// A ball of `radius` voxels about `c`, label `value`, on an axis-aligned 1 mm grid.
fn ball(shape: [usize; 3], c: [f64; 3], radius: f64) -> impl Fn(usize, usize, usize) -> f32 {
    move |i, j, k| {
        let d = [i as f64 - c[0], j as f64 - c[1], k as f64 - c[2]];
        let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        let _ = shape;
        if r <= radius {
            2.0
        } else if r <= radius + 2.5 {
            1.0
        } else {
            0.0
        }
    }
}

fn map_interp(json: &str) -> LabelInterp {
    let g = Grid::with_spacing([10, 10, 10], [1.0; 3]).unwrap();
    match compile(&pipeline_transforms(json), &g).unwrap().as_slice() {
        [Stage::Spatial(m)] => m.label_interp,
        other => panic!("{json}: one pass expected, got {other:?}"),
    }
}

#[test]
fn the_last_label_interpolation_of_a_fused_run_wins() {
    let r = |li: &str| format!(r#"{{"type": "rotate", "degrees": [0, 0, 10]{li}}}"#);
    let arg = r#", "label_interpolation": "linear_argmax""#;
    let near = r#", "label_interpolation": "nearest""#;
    assert_eq!(map_interp(&r("")), LabelInterp::Nearest);
    assert_eq!(map_interp(&r(arg)), LabelInterp::LinearArgmax);
    let flip = |li: &str| format!(r#"{{"type": "flip", "axes": [0]{li}}}"#);
    assert_eq!(
        map_interp(&format!("{}, {}", r(arg), flip(""))),
        LabelInterp::LinearArgmax
    );
    assert_eq!(
        map_interp(&format!("{}, {}", r(arg), flip(near))),
        LabelInterp::Nearest
    );
    assert_eq!(
        map_interp(&format!(
            r#"{}, {{"type": "elastic", "sigma": 3, "alpha": 2, "seed": 1, "label_interpolation": "linear_argmax"}}"#,
            r(near)
        )),
        LabelInterp::LinearArgmax
    );
    let e = refused(r#"{"type": "rotate", "degrees": 3, "label_interpolation": "cubic"}"#);
    assert!(
        e.contains("label_interpolation") || e.contains("cubic"),
        "{e}"
    );
}

#[test]
fn random_transforms_pass_it_to_what_they_emit() {
    let g = Grid::with_spacing([12, 12, 12], [1.0; 3]).unwrap();
    let s = Subject::new(vec![], vec![label_from(&g, ball([12; 3], [6.0; 3], 3.0))]).unwrap();
    let p = voxaug::Pipeline::from_json(
        r#"[{"type": "random_affine", "degrees": 20, "label_interpolation": "linear_argmax"}, {"type": "random_flip", "p": 1}]"#,
    )
    .unwrap();
    let (_, plan) = p.sample(&cpu(), &s, 0).unwrap();
    let t = &plan.transforms;
    assert!(
        t.iter()
            .any(|t| t.label_interpolation() == Some(LabelInterp::LinearArgmax)),
        "{}",
        plan.to_json()
    );
    assert!(t
        .iter()
        .filter(|t| t.type_name() == "flip")
        .all(|t| t.label_interpolation().is_none()));
}

fn equal_to_nearest(e: &Executor) {
    let g = Grid::with_spacing([14, 11, 9], [1.0, 1.0, 1.0]).unwrap();
    let s = Subject::new(
        vec![],
        vec![label_from(&g, |i, j, k| {
            ((i * 3 + j * 5 + k * 7) % 6) as f32
        })],
    )
    .unwrap();
    for t in [
        r#"{"type": "shift", "mm": [2, -1, 3]}"#,
        r#"{"type": "flip", "axes": [0, 2]}, {"type": "crop", "start": [1, 2, 0], "size": [9, 8, 7]}"#,
        r#"{"type": "pad", "margins": 2}, {"type": "shift", "mm": [0, 3, 0]}"#,
    ] {
        let near = run(e, &s, t);
        let arg = run(
            e,
            &s,
            &t.replace('}', r#", "label_interpolation": "linear_argmax"}"#),
        );
        assert_eq!(near.labels[0].data, arg.labels[0].data, "{t}");
    }
}

fn ties_go_to_the_lower_label(e: &Executor) {
    // Two voxels along x; sampled half way between them, each takes half the weight.
    let g = Grid::with_spacing([2, 1, 1], [1.0; 3]).unwrap();
    for (a, b, want) in [
        (3i16, 1i16, [1.0, 0.0]),
        (-2, 3, [-2.0, 0.0]),
        (5, -7, [-7.0, -7.0]),
    ] {
        let v = Volume::from_voxels(Voxels::from(vec![a, b]), g.clone(), Kind::Label).unwrap();
        let s = Subject::new(vec![], vec![v]).unwrap();
        // Output voxel i reads x = i + 0.5: (a, b) then (b, outside). With fill "min" the outside label
        // is the smallest of the map.
        let fill = if want[1] == -7.0 { r#""min""# } else { "0" };
        let out = run(
            e,
            &s,
            &format!(
                r#"{{"type": "affine", "matrix": [[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "fill": {fill}, "label_interpolation": "linear_argmax"}}"#
            ),
        );
        assert_eq!(labels_of(&out.labels[0]), want, "labels ({a}, {b})");
    }
}

/// Voxels whose label differs from `truth`.
fn mismatches(v: &Volume, truth: &dyn Fn(usize, usize, usize) -> f32) -> usize {
    let [nx, ny, nz] = v.grid.shape;
    let vals = v.values();
    let mut n = 0;
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                if vals[i + nx * (j + ny * k)] != truth(i, j, k) {
                    n += 1;
                }
            }
        }
    }
    n
}

fn closer_to_the_true_shape_than_nearest(e: &Executor) {
    // A ball zoomed 2.6x about the volume centre: nearest repeats whole input voxels (staircases),
    // linear_argmax follows the interpolated boundary.
    let shape = [40, 40, 40];
    let g = Grid::with_spacing(shape, [1.0; 3]).unwrap();
    let c = 19.5;
    let s = Subject::new(vec![], vec![label_from(&g, ball(shape, [c; 3], 4.0))]).unwrap();
    let zoom = 2.6;
    let truth = |i: usize, j: usize, k: usize| {
        let d = [i, j, k].map(|x| (x as f64 - c) / zoom);
        let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        if r <= 4.0 {
            2.0
        } else if r <= 6.5 {
            1.0
        } else {
            0.0
        }
    };
    let z = format!(r#"{{"type": "zoom", "factors": {zoom}"#);
    let near = run(e, &s, &format!("{z}}}"));
    let arg = run(
        e,
        &s,
        &format!(r#"{z}, "label_interpolation": "linear_argmax"}}"#),
    );
    let (mn, ma) = (
        mismatches(&near.labels[0], &truth),
        mismatches(&arg.labels[0], &truth),
    );
    assert!(
        (ma as f64) < 0.8 * mn as f64,
        "linear_argmax {ma} vs nearest {mn} voxels off the true shape"
    );
    // Rotated (off-centre ball): never a new label, and at least as close as nearest.
    let s = Subject::new(
        vec![],
        vec![label_from(&g, ball(shape, [24.0, 17.0, 20.0], 6.0))],
    )
    .unwrap();
    let r = r#"{"type": "rotate", "degrees": [20, -15, 35]"#;
    let near = run(e, &s, &format!("{r}}}"));
    let arg = run(
        e,
        &s,
        &format!(r#"{r}, "label_interpolation": "linear_argmax"}}"#),
    );
    let vals: std::collections::BTreeSet<i64> = labels_of(&arg.labels[0])
        .iter()
        .map(|&v| v as i64)
        .collect();
    assert!(vals.iter().all(|v| [0, 1, 2].contains(v)), "{vals:?}");
    // Count voxels on a label boundary (a 6-neighbour has another label): smoother is fewer.
    let boundary = |v: &Volume| {
        let [nx, ny, nz] = shape;
        let x = v.values();
        let at = |i: usize, j: usize, k: usize| x[i + nx * (j + ny * k)];
        let mut n = 0;
        for k in 1..nz - 1 {
            for j in 1..ny - 1 {
                for i in 1..nx - 1 {
                    let l = at(i, j, k);
                    if [
                        at(i - 1, j, k),
                        at(i + 1, j, k),
                        at(i, j - 1, k),
                        at(i, j + 1, k),
                        at(i, j, k - 1),
                        at(i, j, k + 1),
                    ]
                    .iter()
                    .any(|&o| o != l)
                    {
                        n += 1;
                    }
                }
            }
        }
        n
    };
    let (bn, ba) = (boundary(&near.labels[0]), boundary(&arg.labels[0]));
    assert!(
        ba <= bn,
        "boundary voxels: linear_argmax {ba} vs nearest {bn}"
    );
}

both_executors!(
    equal_to_nearest,
    ties_go_to_the_lower_label,
    closer_to_the_true_shape_than_nearest
);

#[test]
fn gpu_labels_equal_cpu_labels() {
    let g = Grid::new([23, 19, 17], oblique_affine()).unwrap();
    let base = label_from(&g, |i, j, k| ((i / 3 + j / 4 + k / 2) % 5) as f32);
    let typed = |v: &Volume, which: usize| {
        let vals = v.values();
        let data = match which {
            0 => Voxels::U8(vals.iter().map(|&x| x as u8).collect()),
            1 => Voxels::I16(vals.iter().map(|&x| x as i16 - 2).collect()),
            _ => Voxels::U32(vals.iter().map(|&x| x as u32 * 70_000).collect()),
        };
        Volume::from_voxels(data, g.clone(), Kind::Label).unwrap()
    };
    for which in 0..3 {
        let s = Subject::new(
            vec![image_from(&g, |i, j, k| (i + j + k) as f32)],
            vec![typed(&base, which)],
        )
        .unwrap();
        for t in [
            r#"{"type": "rotate", "degrees": [10, -20, 33], "label_interpolation": "linear_argmax"}"#,
            r#"{"type": "zoom", "factors": 1.7, "fill": "min", "label_interpolation": "linear_argmax"}"#,
            r#"{"type": "rotate", "degrees": [0, 0, 12]}, {"type": "elastic", "sigma": 3, "alpha": 4, "seed": 2, "fill": "edge", "label_interpolation": "linear_argmax"}"#,
        ] {
            let c = run(&cpu(), &s, t);
            let gp = run(&gpu(), &s, t);
            let (a, b) = (labels_of(&c.labels[0]), labels_of(&gp.labels[0]));
            let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
            assert_eq!(
                differ, 0,
                "{t} ({:?}): {differ} labels differ",
                c.labels[0].dtype
            );
        }
    }
}
