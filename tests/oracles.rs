//! Analytic oracles, run on the CPU reference and on the GPU: linear ramps, exact identities, constants,
//! z-score moments.

#[macro_use]
mod common;
use common::*;
use voxaug::grid::{mat_apply, Grid};
use voxaug::transform::{Fill, Margins, Transform, Vec3, ZMask};
use voxaug::{Executor, Subject};

fn run(ex: &Executor, s: &Subject, t: &[Transform]) -> Subject {
    ex.apply(s, t).unwrap()
}

fn ramp_subject(shape: [usize; 3], coef: [f32; 4]) -> Subject {
    let g = Grid::new(shape, oblique_affine()).unwrap();
    let img = image_from(&g, |i, j, k| {
        coef[0] * i as f32 + coef[1] * j as f32 + coef[2] * k as f32 + coef[3]
    });
    Subject::new(vec![img], vec![]).unwrap()
}

/// Small random affine pull-backs (rotation, scale, shear, offset) around the volume centre.
fn random_affines(n: usize, shape: [usize; 3]) -> Vec<[[f64; 4]; 4]> {
    let r = noise(n * 12, 7);
    (0..n)
        .map(|t| {
            let q = &r[t * 12..t * 12 + 12];
            let mut m = [[0.0; 4]; 4];
            for a in 0..3 {
                for b in 0..3 {
                    let base = if a == b {
                        0.8 + 0.4 * q[a * 3 + b] as f64
                    } else {
                        0.0
                    };
                    m[a][b] = base
                        + if a != b {
                            0.6 * (q[a * 3 + b] as f64 - 0.5)
                        } else {
                            0.0
                        };
                }
            }
            for a in 0..3 {
                let c = (shape[a] as f64 - 1.0) / 2.0;
                let lin: f64 = (0..3)
                    .map(|b| m[a][b] * (shape[b] as f64 - 1.0) / 2.0)
                    .sum();
                m[a][3] = c - lin + 4.0 * (q[9 + a] as f64 - 0.5);
            }
            m[3][3] = 1.0;
            m
        })
        .collect()
}

fn ramp_through_random_affines_equals_ramp_at_mapped_coordinates(ex: &Executor) {
    let shape = [37, 41, 29];
    let coef = [0.7f32, -1.3, 2.1, 5.0];
    let s = ramp_subject(shape, coef);
    for m in random_affines(6, shape) {
        let out = run(
            ex,
            &s,
            &[Transform::Affine {
                label_interpolation: None,
                matrix: m,
                fill: None,
            }],
        );
        let o = &out.images[0];
        let mut checked = 0;
        for k in 0..shape[2] {
            for j in 0..shape[1] {
                for i in 0..shape[0] {
                    let p = mat_apply(&m, [i as f64, j as f64, k as f64]);
                    let inside = (0..3).all(|a| p[a] >= 0.0 && p[a] <= shape[a] as f64 - 1.0);
                    if !inside {
                        continue;
                    }
                    let want = coef[0] as f64 * p[0]
                        + coef[1] as f64 * p[1]
                        + coef[2] as f64 * p[2]
                        + coef[3] as f64;
                    let got = o.at(i, j, k) as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "at {i},{j},{k}: {got} vs {want}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "only {checked} interior voxels checked");
    }
}

fn identity_is_exact_for_images_and_labels(ex: &Executor) {
    let g = Grid::new([13, 8, 5], oblique_affine()).unwrap();
    let n = noise(g.len(), 1);
    let img = image_from(&g, |i, j, k| n[g.index(i, j, k)] * 100.0 - 20.0);
    let lab = label_from(&g, |i, j, k| ((i + 2 * j + k) % 4) as f32);
    let s = Subject::new(vec![img], vec![lab]).unwrap();
    for t in [
        Transform::Affine {
            label_interpolation: None,
            matrix: voxaug::grid::IDENTITY,
            fill: None,
        },
        Transform::Rotate {
            label_interpolation: None,
            degrees: Vec3([0.0; 3]),
            fill: None,
        },
        Transform::Zoom {
            label_interpolation: None,
            factors: Vec3([1.0; 3]),
            fill: None,
        },
    ] {
        let out = run(ex, &s, std::slice::from_ref(&t));
        assert_eq!(out, s, "{t:?}");
    }
}

fn flip_twice_and_quarter_turns_are_exact(ex: &Executor) {
    let g = Grid::with_spacing([12, 12, 12], [1.0; 3]).unwrap();
    let n = noise(g.len(), 2);
    let img = image_from(&g, |i, j, k| n[g.index(i, j, k)]);
    let lab = label_from(&g, |i, j, k| ((i * 3 + j + k * 7) % 5) as f32);
    let s = Subject::new(vec![img], vec![lab]).unwrap();
    let flip = Transform::Flip {
        label_interpolation: None,
        axes: vec![0, 2],
    };
    assert_eq!(run(ex, &s, &[flip.clone(), flip.clone()]), s);
    let once = run(ex, &s, std::slice::from_ref(&flip));
    assert_ne!(once, s);
    assert_eq!(once.images[0].at(0, 3, 0), s.images[0].at(11, 3, 11));
    assert_eq!(run(ex, &once, &[flip]), s);

    let quarter = Transform::Rotate {
        label_interpolation: None,
        degrees: Vec3([0.0, 0.0, 90.0]),
        fill: None,
    };
    let four = vec![quarter.clone(); 4];
    assert_eq!(run(ex, &s, &four), s);
    // Applied one at a time, each quarter turn is an exact permutation too.
    let mut cur = s.clone();
    for _ in 0..4 {
        cur = run(ex, &cur, std::slice::from_ref(&quarter));
    }
    assert_eq!(cur, s);
    // A quarter turn about z (RAS, counter-clockwise seen from above) maps (i, j) to (n-1-j, i).
    let one = run(ex, &s, &[quarter]);
    assert_eq!(one.images[0].at(2, 5, 4), s.images[0].at(5, 11 - 2, 4));
}

fn crop_then_pad_is_exact(ex: &Executor) {
    let g = Grid::new([20, 17, 9], oblique_affine()).unwrap();
    let n = noise(g.len(), 3);
    let s = Subject::new(
        vec![image_from(&g, |i, j, k| 1.0 + n[g.index(i, j, k)])],
        vec![label_from(&g, |i, _, _| (i % 3) as f32)],
    )
    .unwrap();
    let crop = Transform::Crop {
        label_interpolation: None,
        start: Some([3, 2, 1]),
        size: Some([10, 11, 6]),
        margins: None,
        percent: false,
    };
    let pad = Transform::Pad {
        label_interpolation: None,
        margins: Margins([[3.0, 7.0], [2.0, 4.0], [1.0, 2.0]]),
        fill: None,
    };
    // Fused: the map is the identity, so the original comes back (real anatomy, no fill).
    assert_eq!(run(ex, &s, &[crop.clone(), pad.clone()]), s);
    // One at a time: the crop window is exact and the padding is the fill.
    let c = run(ex, &s, &[crop]);
    assert_eq!(c.images[0].grid.shape, [10, 11, 6]);
    let p = run(ex, &c, &[pad]);
    assert_eq!(p.images[0].grid, s.images[0].grid);
    for k in 0..9 {
        for j in 0..17 {
            for i in 0..20 {
                let inside = (3..13).contains(&i) && (2..13).contains(&j) && (1..7).contains(&k);
                let want = if inside { s.images[0].at(i, j, k) } else { 0.0 };
                assert_eq!(p.images[0].at(i, j, k), want);
            }
        }
    }
}

fn resize_of_constant_is_constant(ex: &Executor) {
    for (shape, new) in [
        ([9, 11, 7], [5, 16, 10]),
        ([1, 13, 4], [3, 5, 9]),
        ([32, 32, 32], [17, 64, 33]),
    ] {
        let g = Grid::new(shape, oblique_affine()).unwrap();
        let s = Subject::new(
            vec![image_from(&g, |_, _, _| 42.5)],
            vec![label_from(&g, |_, _, _| 3.0)],
        )
        .unwrap();
        let out = run(
            ex,
            &s,
            &[Transform::Resize {
                label_interpolation: None,
                shape: new,
                fill: None,
            }],
        );
        assert!(
            out.images[0].values().iter().all(|&v| v == 42.5),
            "{shape:?} -> {new:?}"
        );
        assert!(out.labels[0].values().iter().all(|&v| v == 3.0));
    }
}

fn zscore_has_zero_mean_unit_std_over_the_mask(ex: &Executor) {
    let g = Grid::with_spacing([30, 20, 10], [1.0, 1.0, 2.5]).unwrap();
    let n = noise(g.len(), 4);
    let img = image_from(&g, |i, j, k| {
        if i < 5 {
            0.0
        } else {
            300.0 * n[g.index(i, j, k)] + 50.0
        }
    });
    let s = Subject::new(vec![img.clone()], vec![]).unwrap();
    let out = run(
        ex,
        &s,
        &[Transform::Zscore {
            mask: ZMask::Nonzero,
        }],
    );
    let o = &out.images[0];
    let sel: Vec<f64> = img
        .values()
        .iter()
        .zip(o.values().iter())
        .filter(|(a, _)| **a != 0.0)
        .map(|(_, b)| *b as f64)
        .collect();
    let mean = sel.iter().sum::<f64>() / sel.len() as f64;
    let std = (sel.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / sel.len() as f64).sqrt();
    assert!(
        mean.abs() < 1e-5 && (std - 1.0).abs() < 1e-5,
        "mean {mean} std {std}"
    );
    assert!(
        img.values()
            .iter()
            .zip(o.values().iter())
            .all(|(a, b)| *a != 0.0 || *b == 0.0),
        "masked-out voxels stay 0"
    );

    let all = run(ex, &s, &[Transform::Zscore { mask: ZMask::All }]).images[0].stats();
    assert!(all.mean.abs() < 1e-5 && (all.std - 1.0).abs() < 1e-5);

    let flat = Subject::new(vec![image_from(&g, |_, _, _| 7.0)], vec![]).unwrap();
    for mask in [ZMask::All, ZMask::Nonzero] {
        let z = run(ex, &flat, &[Transform::Zscore { mask }]);
        assert!(
            z.images[0].values().iter().all(|&v| v == 0.0),
            "constant image -> zeros, never NaN"
        );
    }
}

fn intensity_ops_leave_labels_untouched_and_clip_minmax_percentiles_work(ex: &Executor) {
    let g = Grid::with_spacing([10, 10, 10], [1.0; 3]).unwrap();
    let img = image_from(&g, |i, j, k| (i + 10 * j + 100 * k) as f32);
    let lab = label_from(&g, |i, _, _| (i % 2) as f32 * 7.0);
    let s = Subject::new(vec![img], vec![lab.clone()]).unwrap();
    let out = run(
        ex,
        &s,
        &[
            Transform::Clip {
                min: 100.0,
                max: 899.0,
            },
            Transform::Minmax {
                min: -1.0,
                max: 1.0,
                mask: None,
            },
        ],
    );
    assert_eq!(out.labels[0], lab);
    let st = out.images[0].stats();
    assert_eq!((st.min, st.max), (-1.0, 1.0));
    assert_eq!(out.images[0].at(0, 0, 0), -1.0);
    // numpy: np.percentile(np.arange(1000), [2.5, 97.3]) == [24.975, 972.027]
    let pc = run(
        ex,
        &s,
        &[Transform::PercentileClip {
            low: 2.5,
            high: 97.3,
        }],
    )
    .images[0]
        .stats();
    assert!(
        (pc.min - 24.975).abs() < 1e-3 && (pc.max - 972.027).abs() < 1e-3,
        "{pc:?}"
    );
}

/// The CPU reduction itself (the GPU percentiles are checked against it in `parity.rs`).
#[test]
fn percentiles_match_numpy_linear_definition() {
    use voxaug::exec::cpu::reduce::percentiles;
    // Values with ties and a heavy zero background, compared with a sort-based reference.
    let mut v: Vec<f32> = noise(200_003, 9)
        .iter()
        .map(|x| {
            if *x < 0.4 {
                0.0
            } else {
                (x * 1000.0).round() / 7.0
            }
        })
        .collect();
    v[17] = -3.5;
    let qs = [0.0, 0.5, 1.0, 25.0, 39.99, 50.0, 99.5, 100.0];
    let got = percentiles(&v, &qs);
    let mut sorted = v.clone();
    sorted.sort_by(f32::total_cmp);
    for (q, g) in qs.iter().zip(got) {
        let r = q / 100.0 * (sorted.len() - 1) as f64;
        let lo = r.floor() as usize;
        let hi = (lo + 1).min(sorted.len() - 1);
        let want = sorted[lo] as f64 + (sorted[hi] as f64 - sorted[lo] as f64) * (r - r.floor());
        assert!(
            (g - want).abs() <= 1e-9 * (1.0 + want.abs()),
            "q {q}: {g} vs {want}"
        );
    }
}

fn fill_modes_min_and_edge_and_value(ex: &Executor) {
    let g = Grid::with_spacing([8, 8, 8], [1.0; 3]).unwrap();
    let img = image_from(&g, |i, _, _| 10.0 + i as f32);
    let s = Subject::new(vec![img], vec![label_from(&g, |_, _, _| 2.0)]).unwrap();
    let shift = |fill| Transform::Shift {
        label_interpolation: None,
        mm: Vec3([3.0, 0.0, 0.0]),
        fill,
    };
    let v = run(ex, &s, &[shift(Some(Fill::Value(-5.0)))]);
    assert_eq!(v.images[0].at(0, 4, 4), -5.0);
    assert_eq!(v.images[0].at(5, 4, 4), 12.0);
    assert_eq!(
        v.labels[0].at(0, 4, 4),
        0.0,
        "labels get 0 for numeric fills"
    );
    let m = run(ex, &s, &[shift(Some(Fill::Min))]);
    assert_eq!(m.images[0].at(0, 4, 4), 10.0);
    let e = run(ex, &s, &[shift(Some(Fill::Edge))]);
    assert_eq!(e.images[0].at(1, 4, 4), 10.0);
    assert_eq!(e.labels[0].at(0, 4, 4), 2.0);
}

both_executors!(
    ramp_through_random_affines_equals_ramp_at_mapped_coordinates,
    identity_is_exact_for_images_and_labels,
    flip_twice_and_quarter_turns_are_exact,
    crop_then_pad_is_exact,
    resize_of_constant_is_constant,
    zscore_has_zero_mean_unit_std_over_the_mask,
    intensity_ops_leave_labels_untouched_and_clip_minmax_percentiles_work,
    fill_modes_min_and_edge_and_value
);

#[test]
fn zscore_and_minmax_masked_by_the_label_map() {
    // TorchIO's masking_method with a label map: statistics over the first label map's nonzero voxels,
    // the normalisation applied to every voxel.
    let g = Grid::with_spacing([12, 10, 6], [1.0; 3]).unwrap();
    let img = image_from(&g, |i, j, k| (i * 3 + j * 2 + k) as f32 + 1.0);
    let lab = label_from(&g, |i, j, _| (i >= 4 && j < 5) as u8 as f32);
    let s = Subject::new(vec![img.clone()], vec![lab.clone()]).unwrap();
    let inside: Vec<usize> = (0..g.len()).filter(|&n| lab.values()[n] != 0.0).collect();
    let pick =
        |v: &voxaug::Volume| -> Vec<f64> { inside.iter().map(|&n| v.values()[n] as f64).collect() };
    let t = pipeline_transforms;
    let out = Executor::Cpu
        .apply(&s, &t(r#"{"type": "zscore", "mask": "label"}"#))
        .unwrap();
    let m = pick(&out.images[0]);
    let mean = m.iter().sum::<f64>() / m.len() as f64;
    let std = (m.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / m.len() as f64).sqrt();
    assert!(
        mean.abs() < 1e-5 && (std - 1.0).abs() < 1e-5,
        "{mean} {std}"
    );
    // Outside the mask the same map applies (no voxel is left as it was).
    let raw = pick(&img);
    let (rm, rs) = (
        raw.iter().sum::<f64>() / raw.len() as f64,
        (raw.iter().map(|x| x * x).sum::<f64>() / raw.len() as f64
            - (raw.iter().sum::<f64>() / raw.len() as f64).powi(2))
        .sqrt(),
    );
    let want0 = (img.values()[0] as f64 - rm) / rs;
    assert!((out.images[0].values()[0] as f64 - want0).abs() < 1e-4);
    let mm = Executor::Cpu
        .apply(
            &s,
            &t(r#"{"type": "minmax", "mask": "label", "min": 0, "max": 1}"#),
        )
        .unwrap();
    let m = pick(&mm.images[0]);
    let (lo, hi) = m
        .iter()
        .fold((f64::MAX, f64::MIN), |a, &x| (a.0.min(x), a.1.max(x)));
    assert!(
        (lo - 0.0).abs() < 1e-6 && (hi - 1.0).abs() < 1e-6,
        "{lo} {hi}"
    );
    // Outside the mask the same line applies, clipped to [min, max] as minmax always is.
    let past = mm.images[0].values().iter().filter(|&&x| x == 1.0).count();
    assert!(
        past > inside.len() / 20,
        "voxels past the masked range clip at 1 ({past})"
    );
    // Without a label map the error says what is missing.
    let alone = Subject::new(vec![img], vec![]).unwrap();
    let e = Executor::Cpu
        .apply(&alone, &t(r#"{"type": "zscore", "mask": "label"}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("label map"), "{e}");
}
