//! Random pipelines: reproducibility, probabilities, ranges, label/image consistency, plans, errors.

use std::process::Command;
use voxaug::transform::{SampleInput, Transform};
use voxaug::{Executor, Pipeline, Subject};

fn phantom() -> Subject {
    voxaug::phantom::head([40, 44, 20], [1.2, 1.2, 2.5])
}

const PIPE: &str = r#"{"seed": 7, "transforms": [
    {"type": "random_affine", "degrees": 15, "scales": [0.9, 1.2], "translation_mm": 3, "shear_degrees": 2, "p": 0.9},
    {"type": "random_flip", "axes": ["LR", 1], "p": 0.5},
    {"type": "random_noise", "std": [0, 20], "p": 0.5},
    {"type": "random_gamma", "log_gamma": 0.3},
    {"type": "random_blur", "sigma": [0.2, 1.0], "p": 0.3},
    {"type": "random_bias_field", "coefficients": 0.2, "order": 2, "p": 0.3},
    {"type": "zscore"}]}"#;

fn plans(p: &Pipeline, s: &Subject, n: u64) -> Vec<voxaug::Plan> {
    let input = SampleInput::new(s.grid().unwrap().clone(), s.labels.first());
    (0..n).map(|i| p.plan(&input, i).unwrap()).collect()
}

#[test]
fn same_seed_same_plan_and_different_indices_differ() {
    let s = phantom();
    let p = Pipeline::from_json(PIPE).unwrap();
    let a = plans(&p, &s, 20);
    let b = plans(&p, &s, 20);
    assert_eq!(a, b);
    let distinct: std::collections::HashSet<String> = a
        .iter()
        .map(|x| serde_json::to_string(&x.transforms).unwrap())
        .collect();
    assert_eq!(
        distinct.len(),
        20,
        "every sample index gets its own parameters"
    );
    let (o1, _) = p.sample(&Executor::Cpu, &s, 3).unwrap();
    let (o2, _) = p.sample(&Executor::Cpu, &s, 3).unwrap();
    assert_eq!(o1, o2);
    let (o3, _) = p.sample(&Executor::Cpu, &s, 4).unwrap();
    assert_ne!(o1, o3);
}

#[test]
fn probability_rate_is_binomial() {
    let s = phantom();
    let p =
        Pipeline::from_json(r#"{"seed": 1, "transforms": [{"type": "random_gamma", "p": 0.3}]}"#)
            .unwrap();
    let hits = plans(&p, &s, 500)
        .iter()
        .filter(|pl| !pl.transforms.is_empty())
        .count() as f64;
    // mean 150, sd sqrt(500 * 0.3 * 0.7) = 10.2; 4 sd.
    assert!((hits - 150.0).abs() < 41.0, "{hits} of 500");
    let per_axis = Pipeline::from_json(
        r#"{"seed": 2, "transforms": [{"type": "random_flip", "axes": [0, 1, 2], "p": 0.3}]}"#,
    )
    .unwrap();
    let mut flips = 0usize;
    for pl in plans(&per_axis, &s, 500) {
        if let Some(Transform::Flip {
            axes,
            label_interpolation: _,
        }) = pl.transforms.first()
        {
            flips += axes.len();
        }
    }
    assert!(
        (flips as f64 - 450.0).abs() < 4.0 * (1500.0f64 * 0.21).sqrt(),
        "{flips} of 1500 axis draws"
    );
}

#[test]
fn sampled_parameters_stay_in_their_ranges() {
    let s = phantom();
    let p = Pipeline::from_json(PIPE).unwrap();
    for pl in plans(&p, &s, 300) {
        for t in &pl.transforms {
            match t {
                Transform::Rotate { degrees, .. } => {
                    assert!(degrees.0.iter().all(|d| d.abs() <= 15.0))
                }
                Transform::Zoom { factors, .. } => {
                    assert!(factors.0.iter().all(|f| (0.9..=1.2).contains(f)))
                }
                Transform::Shift { mm, .. } => assert!(mm.0.iter().all(|d| d.abs() <= 3.0)),
                Transform::Shear { degrees, .. } => {
                    assert!(degrees.0.iter().all(|d| d.abs() <= 2.0))
                }
                Transform::Noise { std, .. } => assert!((0.0..=20.0).contains(std)),
                Transform::Gamma { gamma } => {
                    assert!(((-0.3f64).exp()..=0.3f64.exp()).contains(gamma))
                }
                Transform::Blur { sigma } => {
                    assert!(sigma.0.iter().all(|x| (0.2..=1.0).contains(x)))
                }
                Transform::BiasField {
                    coefficients,
                    order,
                } => {
                    assert_eq!((*order, coefficients.len()), (2, 10));
                    assert!(coefficients.iter().all(|c| c.abs() <= 0.2));
                }
                Transform::Flip {
                    axes,
                    label_interpolation: _,
                } => assert!(axes.iter().all(|a| *a <= 1)),
                Transform::Zscore { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn image_equal_to_its_labels_agrees_with_nearest_labels_away_from_borders() {
    let s0 = phantom();
    let lab = s0.labels[0].clone();
    let img = voxaug::Volume::image(lab.values().into_owned(), lab.grid.clone()).unwrap();
    let s = Subject::new(vec![img], vec![lab]).unwrap();
    let p = Pipeline::from_json(r#"{"seed": 3, "transforms": [{"type": "random_affine", "degrees": 20, "scales": 0.2}, {"type": "random_flip", "axes": [0]}]}"#).unwrap();
    for i in 0..5 {
        let (o, _) = p.sample(&Executor::Cpu, &s, i).unwrap();
        let (im, lb) = (&o.images[0], &o.labels[0]);
        let [nx, ny, nz] = im.grid.shape;
        let mut checked = 0;
        for k in 1..nz - 1 {
            for j in 1..ny - 1 {
                for x in 1..nx - 1 {
                    let v = im.at(x, j, k);
                    if v.fract() != 0.0 {
                        continue;
                    }
                    let uniform = (0..27)
                        .all(|q| lb.at(x + q % 3 - 1, j + q / 3 % 3 - 1, k + q / 9 - 1) == v);
                    if uniform {
                        assert_eq!(lb.at(x, j, k), v);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
        let allowed: Vec<f32> = vec![0.0, 1.0, 2.0, 3.0, 4.0];
        assert!(
            lb.values().iter().all(|v| allowed.contains(v)),
            "labels never get new values"
        );
    }
}

#[test]
fn plan_json_reapplies_exactly_and_gpu_matches_cpu() {
    let s = phantom();
    let p = Pipeline::from_json(PIPE).unwrap();
    for i in [0u64, 5, 9] {
        let (out, plan) = p.sample(&Executor::Cpu, &s, i).unwrap();
        let back = Pipeline::from_json(&plan.to_json()).unwrap();
        assert!(back.is_fixed());
        let again = Executor::Cpu
            .apply(&s, &back.fixed_transforms().unwrap())
            .unwrap();
        assert_eq!(again, out, "sample {i}");
    }
    let gpu = voxaug::exec::gpu(None).expect("GPU tests need an adapter (CI installs lavapipe)");
    for i in 0..4 {
        let (c, pc) = p.sample(&Executor::Cpu, &s, i).unwrap();
        let (g, pg) = p.sample(&gpu, &s, i).unwrap();
        assert_eq!(pc, pg, "same parameters on both executors");
        assert_eq!(c.labels, g.labels);
        let worst = c.images[0]
            .values()
            .iter()
            .zip(g.images[0].values().iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-4,
            "sample {i}: z-scored images differ by {worst}"
        );
    }
}

#[test]
fn label_crop_centres_on_foreground() {
    let s = phantom();
    let p = Pipeline::from_json(r#"{"transforms": [{"type": "random_affine", "degrees": 10}, {"type": "label_crop", "size": [8, 8, 4], "foreground_p": 1.0}]}"#).unwrap();
    let mut with_fg = 0;
    for i in 0..20 {
        let (o, _) = p.sample(&Executor::Cpu, &s, i).unwrap();
        assert_eq!(o.labels[0].grid.shape, [8, 8, 4]);
        if o.labels[0].values().iter().any(|&v| v > 0.0) {
            with_fg += 1;
        }
    }
    assert_eq!(with_fg, 20);
}

fn voxaug_cli(args: &[&str], threads: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .args(args)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .unwrap()
}

#[test]
fn augment_cli_is_byte_identical_across_runs_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = phantom();
    let (img, lab) = (d.join("img.nii.gz"), d.join("lab.nii.gz"));
    voxaug::io::write_volume(&img, &s.images[0]).unwrap();
    voxaug::io::write_volume(&lab, &s.labels[0]).unwrap();
    let pj = d.join("p.json");
    std::fs::write(&pj, PIPE).unwrap();
    let mut outs = Vec::new();
    for (run, threads) in [("a", "1"), ("b", "2"), ("c", "2")] {
        let out = d.join(run);
        let o = voxaug_cli(
            &[
                "augment",
                pj.to_str().unwrap(),
                "--image",
                img.to_str().unwrap(),
                "--label",
                lab.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-n",
                "3",
                "--device",
                "cpu",
            ],
            threads,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("3 samples in") && text.contains("samples/s"),
            "{text}"
        );
        outs.push(out);
    }
    for i in 0..3 {
        for f in ["img.nii.gz", "lab.nii.gz", "plan.json"] {
            let a = std::fs::read(outs[0].join(format!("{i:04}")).join(f)).unwrap();
            for o in &outs[1..] {
                assert_eq!(
                    a,
                    std::fs::read(o.join(format!("{i:04}")).join(f)).unwrap(),
                    "{i} {f}"
                );
            }
        }
    }
    assert_ne!(
        std::fs::read(outs[0].join("0000/img.nii.gz")).unwrap(),
        std::fs::read(outs[0].join("0001/img.nii.gz")).unwrap()
    );
    // Sample folders and files have the modes `create_dir` and `File::create` give here (written
    // through temporary ones, they kept tempfile's owner-only 0700 and 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let (plain_dir, plain_file) = (d.join("plain"), d.join("plain.txt"));
        std::fs::create_dir(&plain_dir).unwrap();
        std::fs::File::create(&plain_file).unwrap();
        assert_eq!(mode(&outs[0].join("0001")), mode(&plain_dir));
        for f in ["img.nii.gz", "lab.nii.gz", "plan.json"] {
            assert_eq!(
                mode(&outs[0].join("0001").join(f)),
                mode(&plain_file),
                "{f}"
            );
        }
    }
    // `apply --seed S --sample k` writes what `augment --seed S` put in folder k (the pipeline's own
    // seed is 7; augment ran with it, apply is told it explicitly over a pipeline saying 0).
    let p0 = d.join("p0.json");
    std::fs::write(&p0, PIPE.replace("\"seed\": 7", "\"seed\": 0")).unwrap();
    let single = d.join("single");
    let o = voxaug_cli(
        &[
            "apply",
            p0.to_str().unwrap(),
            "--image",
            img.to_str().unwrap(),
            "--label",
            lab.to_str().unwrap(),
            "--out",
            single.to_str().unwrap(),
            "--seed",
            "7",
            "--sample",
            "2",
            "--device",
            "cpu",
        ],
        "2",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["img.nii.gz", "lab.nii.gz"] {
        assert_eq!(
            std::fs::read(single.join(f)).unwrap(),
            std::fs::read(outs[0].join("0002").join(f)).unwrap(),
            "apply --sample 2: {f}"
        );
    }
}

#[test]
fn bad_pipelines_fail_before_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = phantom();
    let img = d.join("img.nii");
    voxaug::io::write_volume(&img, &s.images[0]).unwrap();
    let cases = [
        (
            r#"{"transforms": [{"type": "random_gamma", "log_gamma": [0.5, -0.5]}]}"#,
            "range min 0.5 > max -0.5",
        ),
        (
            r#"{"transforms": [{"type": "random_noise", "p": -0.1}]}"#,
            "probability p must be within [0, 1]",
        ),
        (
            r#"{"transforms": [{"type": "random_crop", "size": [41, 8, 8]}]}"#,
            "larger than the volume",
        ),
        (
            r#"{"transforms": [{"type": "random_twist"}]}"#,
            "unknown transform type `random_twist`",
        ),
        (
            r#"{"transforms": [{"type": "one_of", "transforms": [{"type": "random_gamma"}], "weights": [1, 2]}]}"#,
            "2 weights for 1 transforms",
        ),
        (
            r#"{"transforms": [{"type": "some_of", "n": [1, 3], "transforms": [{"type": "random_gamma"}]}]}"#,
            "some_of",
        ),
        (
            r#"{"transforms": [[{"type": "random_flip", "axes": ["XY"]}]]}"#,
            "unknown axis name `XY`",
        ),
    ];
    for (k, (text, want)) in cases.iter().enumerate() {
        let pj = d.join(format!("p{k}.json"));
        std::fs::write(&pj, text).unwrap();
        let out = d.join(format!("out{k}"));
        let o = voxaug_cli(
            &[
                "augment",
                pj.to_str().unwrap(),
                "--image",
                img.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-n",
                "2",
                "--device",
                "cpu",
            ],
            "2",
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{text}: {err}");
        assert!(!out.exists(), "{text}: output written");
    }
}

#[test]
fn combinators_choose_as_specified() {
    let s = phantom();
    let one = Pipeline::from_json(r#"{"transforms": [{"type": "one_of", "weights": [3, 1], "transforms": [{"type": "brightness", "factor": 2}, {"type": "intensity_shift", "offset": 1}]}]}"#).unwrap();
    let firsts = plans(&one, &s, 400)
        .iter()
        .filter(|p| matches!(p.transforms[0], Transform::Brightness { .. }))
        .count() as f64;
    assert!(
        (firsts - 300.0).abs() < 4.0 * (400.0f64 * 0.75 * 0.25).sqrt(),
        "{firsts}"
    );
    let some = Pipeline::from_json(r#"{"transforms": [{"type": "some_of", "n": [1, 2], "transforms": [{"type": "brightness", "factor": 2}, {"type": "intensity_shift", "offset": 1}, {"type": "contrast", "factor": 1.5}]}, [{"type": "gamma", "gamma": 2}]]}"#).unwrap();
    for pl in plans(&some, &s, 100) {
        let n = pl.transforms.len() - 1;
        assert!((1..=2).contains(&n));
        assert_eq!(pl.transforms.last(), Some(&Transform::Gamma { gamma: 2.0 }));
    }
}

#[test]
fn label_crop_balances_label_values_by_probability() {
    let s = phantom();
    // The lesion (4) is tiny; with probability 1 every crop centre is a lesion voxel.
    let p = Pipeline::from_json(r#"{"transforms": [{"type": "label_crop", "size": [6, 6, 4], "label_probabilities": {"4": 1.0}}]}"#).unwrap();
    for i in 0..10 {
        let (o, _) = p.sample(&Executor::Cpu, &s, i).unwrap();
        assert!(
            o.labels[0].values().contains(&4.0),
            "sample {i} misses the lesion"
        );
    }
    // 50/50 between background and brain: the centre voxel's label follows the probabilities.
    let p = Pipeline::from_json(r#"{"transforms": [{"type": "label_crop", "size": [5, 5, 3], "label_probabilities": {"0": 1, "2": 1}}]}"#).unwrap();
    let mut brain = 0;
    for i in 0..200 {
        let (o, _) = p.sample(&Executor::Cpu, &s, i).unwrap();
        if o.labels[0].at(2, 2, 1) == 2.0 {
            brain += 1;
        }
    }
    assert!(
        (brain as f64 - 100.0).abs() < 4.0 * 50f64.sqrt() + 10.0,
        "{brain} of 200 centred on the brain"
    );
    let e = Pipeline::from_json(r#"{"transforms": [{"type": "label_crop", "size": [5, 5, 3], "label_probabilities": {"x": 1}}]}"#).unwrap_err().to_string();
    assert!(e.contains("key `x`"), "{e}");
}

#[test]
fn recycled_buffers_never_leak_into_results() {
    // Output buffers are recycled between samples (no fresh pages per output); one handed out with
    // old values must be overwritten everywhere. Results computed from an empty pool are compared, bit
    // for bit, with results computed from a pool primed with NaN-filled buffers of every size the
    // pipeline makes. (Other tests of this binary use volumes too small to be pooled.)
    let g = voxaug::Grid::with_spacing([128, 128, 64], [1.0, 1.1, 1.9]).unwrap();
    let at = |l: usize| [l % 128, (l / 128) % 128, l / (128 * 128)];
    let img: Vec<f32> = (0..g.len())
        .map(|l| {
            let [i, j, k] = at(l);
            ((i * 7 + j * 3 + k) % 97) as f32 - 20.0
        })
        .collect();
    let lab: Vec<f32> = (0..g.len())
        .map(|l| {
            let [i, j, k] = at(l);
            ((i / 16 + j / 16 + k / 8) % 4) as f32
        })
        .collect();
    let img = voxaug::Volume::image(img, g.clone()).unwrap();
    let lab = voxaug::Volume::label(lab, g).unwrap();
    let s = Subject::new(vec![img], vec![lab]).unwrap();
    for json in [
        r#"{"type": "rotate", "degrees": [7, -4, 11]}, {"type": "zscore"}"#,
        r#"{"type": "flip", "axes": [0, 2]}"#,
        r#"{"type": "blur", "sigma": 2}, {"type": "minmax"}"#,
        r#"{"type": "elastic", "sigma": 6, "alpha": 20, "seed": 4}, {"type": "gamma", "gamma": 1.3}"#,
        r#"{"type": "zoom", "factors": [1.1, 1.1, 1]}, {"type": "rotate", "degrees": [0, 0, 20], "fill": "edge"}"#,
    ] {
        let t = Pipeline::from_json(&format!(r#"{{"transforms": [{json}]}}"#))
            .unwrap()
            .fixed_transforms()
            .unwrap();
        voxaug::exec::cpu::alloc::release_pool();
        let want = Executor::Cpu.apply(&s, &t).unwrap();
        for v in want
            .images
            .iter()
            .chain(&want.labels)
            .chain(s.images.iter())
        {
            for _ in 0..3 {
                // All-ones bytes: NaN for f32, the largest label for integers.
                let mut junk = v.data.clone();
                junk.as_bytes_mut().fill(0xff);
                voxaug::exec::cpu::alloc::recycle(junk);
            }
        }
        let got = Executor::Cpu.apply(&s, &t).unwrap();
        for (a, b) in got
            .images
            .iter()
            .chain(&got.labels)
            .zip(want.images.iter().chain(&want.labels))
        {
            assert!(
                a.values()
                    .iter()
                    .zip(b.values().iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{json}: a recycled buffer's old values leaked into the result"
            );
        }
    }
}

/// Every example pipeline samples on volumes smaller than its crops (crop_or_pad pads them first) and on
/// an anisotropic grid, and its samples keep the label values.
#[test]
fn example_pipelines_run_on_small_volumes() {
    let g = voxaug::Grid::with_spacing([40, 36, 9], [1.1, 1.1, 3.0]).unwrap();
    let n = g.len();
    let img: Vec<f32> = (0..n).map(|l| (l % 97) as f32 * 3.0 - 100.0).collect();
    let lab: Vec<f32> = (0..n)
        .map(|l| {
            if (12..25).contains(&(l % 40)) {
                2.0
            } else {
                0.0
            }
        })
        .collect();
    let s = Subject::new(
        vec![voxaug::Volume::image(img, g.clone()).unwrap()],
        vec![voxaug::Volume::label(lab, g).unwrap()],
    )
    .unwrap();
    for (name, json) in [
        (
            "abdomen_ct",
            include_str!("../examples/pipelines/abdomen_ct.json"),
        ),
        (
            "brain_mri",
            include_str!("../examples/pipelines/brain_mri.json"),
        ),
        (
            "nnunet_default",
            include_str!("../examples/pipelines/nnunet_default.json"),
        ),
        (
            "preprocess",
            include_str!("../examples/pipelines/preprocess.json"),
        ),
        (
            "mri_artifacts",
            include_str!("../examples/pipelines/mri_artifacts.json"),
        ),
    ] {
        let p = Pipeline::from_json(json).unwrap();
        for i in 0..3 {
            let (out, _) = p
                .sample(&Executor::Cpu, &s, i)
                .unwrap_or_else(|e| panic!("{name} sample {i}: {e}"));
            let values: std::collections::BTreeSet<i64> =
                out.labels[0].values().iter().map(|&v| v as i64).collect();
            assert!(
                values.iter().all(|v| [0, 2].contains(v)),
                "{name}: {values:?}"
            );
        }
    }
}

/// `sample_owned` (what `voxaug apply` and Python's `Pipeline.apply` run: leading intensity, label map
/// and `nan_to_num` stages in the subject's own buffers, a spatial stage's input recycled) gives what
/// `sample` gives, bit for bit, and leaves nothing of the input behind in the result.
#[test]
fn owned_subjects_give_the_same_samples_as_borrowed_ones() {
    let exec = Executor::Cpu;
    let same = |s: &Subject, json: &str| {
        let p = Pipeline::from_json(json).unwrap();
        for i in 0..3 {
            let (a, pa) = p.sample(&exec, s, i).unwrap();
            let (b, pb) = p.sample_owned(&exec, s.clone(), i).unwrap();
            assert_eq!(pa, pb, "{json}");
            assert_eq!(a, b, "{json}: sample {i}");
        }
    };
    let s = phantom();
    for json in [
        r#"[{"type": "zscore", "mask": "nonzero"}, {"type": "rotate", "degrees": [0, 0, 10]}]"#,
        r#"[{"type": "percentile_clip", "low": 1, "high": 99}, {"type": "gamma", "gamma": 1.3}]"#,
        r#"[{"type": "zscore", "mask": "label"}, {"type": "clip", "min": -1, "max": 1}]"#,
        r#"[{"type": "minmax"}, {"type": "minmax"}]"#,
        r#"[{"type": "noise", "std": 5, "seed": 3}, {"type": "flip", "axes": [0]}]"#,
        r#"[{"type": "blur", "sigma": 1.5}, {"type": "zscore"}]"#,
        r#"[{"type": "remap_labels", "mapping": {"1": 7}}, {"type": "minmax"}]"#,
        r#"[{"type": "rotate", "degrees": [5, 0, 0]}, {"type": "zscore"}, {"type": "flip", "axes": [1]}]"#,
        r#"[]"#,
        // Flips (and a flip undone: the identity) run in the owned subject's buffers.
        r#"[{"type": "flip", "axes": [0, 1, 2]}]"#,
        r#"[{"type": "flip", "axes": [2]}, {"type": "zscore"}, {"type": "flip", "axes": [0, 1]}]"#,
        r#"[{"type": "flip", "axes": [1], "label_interpolation": "linear_argmax"}]"#,
        r#"[{"type": "flip", "axes": [1]}, {"type": "flip", "axes": [1]}, {"type": "minmax"}]"#,
        r#"[{"type": "random_flip", "axes": [0, 1, 2], "p": 0.5}, {"type": "gamma", "gamma": 0.8}]"#,
        // Crops inside the volume move rows within the owned buffers.
        r#"[{"type": "crop", "margins": [[3, 1], [2, 0], [4, 5]]}, {"type": "zscore"}]"#,
        r#"[{"type": "minmax"}, {"type": "random_crop", "size": [20, 17, 9]}]"#,
        // Pads with a constant fill grow the owned buffers; an edge fill takes the copy path.
        r#"[{"type": "pad", "margins": [[2, 3], [1, 0], [0, 4]], "fill": 7.5}, {"type": "zscore"}]"#,
        r#"[{"type": "pad", "margins": 3, "fill": "min"}]"#,
        r#"[{"type": "pad", "margins": [1, 2, 3], "fill": "edge"}]"#,
        r#"[{"type": "crop_or_pad", "size": [48, 50, 20], "label_interpolation": "linear_argmax"}]"#,
        PIPE,
    ] {
        same(&s, json);
    }
    // Two images and a label map: each volume's input buffer serves the next one's output.
    let mut second = s.images[0].clone();
    if let voxaug::voxels::Voxels::F32(v) = &mut second.data {
        v.iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = *x * 0.5 + (i % 13) as f32);
    }
    let two = Subject::new(vec![s.images[0].clone(), second], s.labels.clone()).unwrap();
    for json in [
        r#"[{"type": "rotate", "degrees": [3, 0, 7]}, {"type": "zscore"}]"#,
        r#"[{"type": "zscore"}, {"type": "zoom", "factors": [1.1, 0.9, 1]}, {"type": "rotate", "degrees": [0, 5, 0]}]"#,
        r#"[{"type": "resize", "shape": [30, 31, 17]}, {"type": "rotate", "degrees": [0, 0, 20]}]"#,
        PIPE,
    ] {
        same(&two, json);
    }
    // A leading nan_to_num: replaced in place in an owned subject, on a copy of a borrowed one.
    let mut nan = phantom();
    if let voxaug::voxels::Voxels::F32(v) = &mut nan.images[0].data {
        v[17] = f32::NAN;
        v[1000] = f32::INFINITY;
    }
    for json in [
        r#"[{"type": "nan_to_num", "value": "min"}, {"type": "zscore"}]"#,
        r#"[{"type": "nan_to_num"}, {"type": "rotate", "degrees": [0, 4, 0]}]"#,
    ] {
        same(&nan, json);
    }
    // Members on different grids: the groups and the shared rest run on subjects the run owns.
    let label = Executor::Cpu
        .apply(
            &Subject::new(vec![], vec![s.labels[0].clone()]).unwrap(),
            &Pipeline::from_json(r#"[{"type": "resample", "spacing": [1.3, 1.3, 2.1]}]"#)
                .unwrap()
                .fixed_transforms()
                .unwrap(),
        )
        .unwrap()
        .labels
        .remove(0);
    let multi = Subject::named(
        vec![s.images[0].clone()],
        vec![label],
        vec!["t1".into(), "seg".into()],
    )
    .unwrap();
    assert!(!multi.same_grid());
    same(
        &multi,
        r#"[{"type": "resample_to", "reference": "t1"}, {"type": "zscore", "mask": "label"}]"#,
    );
}
