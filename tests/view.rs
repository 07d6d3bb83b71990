//! Pictures and label measurements.

mod common;
use common::*;
use voxaug::grid::{mat_apply, Grid};
use voxaug::view::{self, stats::label_stats, ViewOptions, Window};

fn opts(window: Window, alpha: f32) -> ViewOptions {
    ViewOptions {
        window: Some(window),
        radiological: false,
        alpha,
        pixel_mm: Some(1.0),
    }
}

#[test]
fn planes_follow_physical_proportions() {
    // 30 x 20 x 10 voxels of 1 x 1 x 3 mm: 30 x 20 x 30 mm.
    let g = Grid::with_spacing([30, 20, 10], [1.0, 1.0, 3.0]).unwrap();
    let img = image_from(&g, |i, _, _| i as f32);
    let pic = view::planes(&img, None, &opts(Window { lo: 0.0, hi: 29.0 }, 0.4)).unwrap();
    // sagittal 20 x 30, coronal 30 x 30, axial 30 x 20, 16 px apart.
    assert_eq!((pic.width, pic.height), (20 + 30 + 30 + 32, 30));
    // Coronal: patient's right (i grows towards R in this RAS grid) is on the right (neurological).
    // (Row 28: below the orientation letters drawn at mid-height.)
    let left = pic.get(36 + 3, 28)[0];
    let right = pic.get(36 + 26, 28)[0];
    assert!(
        left < right,
        "neurological: R on the right ({left} vs {right})"
    );
    let mut o = opts(Window { lo: 0.0, hi: 29.0 }, 0.4);
    o.radiological = true;
    let rad = view::planes(&img, None, &o).unwrap();
    assert!(
        rad.get(36 + 3, 28)[0] > rad.get(36 + 26, 28)[0],
        "radiological: R on the left"
    );
}

#[test]
fn label_overlay_pixel_has_the_label_colour() {
    let g = Grid::with_spacing([40, 40, 40], [1.0; 3]).unwrap();
    let img = image_from(&g, |_, _, _| 0.0);
    let lab = label_from(&g, |i, _, _| if i < 20 { 2.0 } else { 0.0 });
    let pic = view::planes(&img, Some(&lab), &opts(Window { lo: 0.0, hi: 1.0 }, 1.0)).unwrap();
    // Axial tile starts at 40 + 16 + 40 + 16 = 112; its left half is i < 20 (neurological: L on the
    // left). Row 35 is below the letters.
    assert_eq!(pic.get(112 + 15, 35), view::label_colour(2));
    assert_eq!(pic.get(112 + 30, 35), [0, 0, 0]);
    assert_ne!(view::label_colour(1), view::label_colour(2));
}

#[test]
fn grid_picks_the_right_slices() {
    // Value = k index; window 0..9 maps slice k to gray round(k / 9 * 255).
    let g = Grid::with_spacing([8, 6, 10], [1.0; 3]).unwrap();
    let img = image_from(&g, |_, _, k| k as f32);
    let pic = view::grid(
        &img,
        None,
        2,
        &[0, 5, 9],
        3,
        &opts(Window { lo: 0.0, hi: 9.0 }, 0.4),
    )
    .unwrap();
    assert_eq!((pic.width, pic.height), (3 * 8 + 2 * 2, 6));
    for (t, k) in [0usize, 5, 9].iter().enumerate() {
        let want = (*k as f64 / 9.0 * 255.0).round() as u8;
        assert_eq!(pic.get(t * 10 + 3, 3), [want; 3], "slice {k}");
    }
    assert_eq!(view::pick_slices(10, Some(4), None).unwrap(), vec![0, 4, 8]);
    assert_eq!(view::pick_slices(10, None, Some(2)).unwrap(), vec![2, 7]);
    assert!(view::grid(&img, None, 2, &[10], 1, &ViewOptions::default())
        .unwrap_err()
        .to_string()
        .contains("slice 10"));
}

#[test]
fn windows_parse_presets_and_reject_nonsense() {
    assert_eq!(
        Window::parse("40,80").unwrap(),
        Window { lo: 0.0, hi: 80.0 }
    );
    assert_eq!(
        Window::parse("lung").unwrap(),
        Window::center_width(-600.0, 1500.0)
    );
    assert!(Window::parse("40")
        .unwrap_err()
        .to_string()
        .contains("CENTER,WIDTH"));
    assert!(Window::parse("bones")
        .unwrap_err()
        .to_string()
        .contains("preset"));
}

#[test]
fn label_volumes_and_centroids() {
    let g = Grid::new([40, 36, 20], oblique_affine()).unwrap();
    let c = [19.5, 17.5, 9.5];
    let lab = label_from(&g, |i, j, k| {
        let d: f64 = [i, j, k]
            .iter()
            .zip(c)
            .map(|(&x, c)| (x as f64 - c).powi(2))
            .sum();
        if d <= 36.0 {
            3.0
        } else {
            0.0
        }
    });
    let img = image_from(&g, |i, _, _| i as f32);
    let st = label_stats(&lab, &[&img]).unwrap();
    let s3 = st.iter().find(|s| s.value == 3).unwrap();
    assert!((s3.mm3 - s3.voxels as f64 * g.voxel_volume()).abs() < 1e-9);
    assert!((s3.ml - s3.mm3 / 1000.0).abs() < 1e-12);
    let want = mat_apply(&g.affine, c);
    for a in 0..3 {
        assert!(
            (s3.centroid_mm[a] - want[a]).abs() < 1e-9,
            "{:?} vs {want:?}",
            s3.centroid_mm
        );
    }
    assert_eq!(s3.bbox_voxels, [[14, 25], [12, 23], [4, 15]]);
    assert!((s3.images[0].mean - 19.5).abs() < 1e-9);
    let total: usize = st.iter().map(|s| s.voxels).sum();
    assert_eq!(total, g.len());
}

#[test]
fn histogram_counts_every_selected_voxel() {
    use voxaug::view::histogram::{histogram, plot};
    let g = Grid::with_spacing([10, 10, 10], [1.0; 3]).unwrap();
    let img = image_from(&g, |i, _, _| if i < 4 { 0.0 } else { i as f32 });
    let all = histogram(&img, 6, false).unwrap();
    assert_eq!(all.total, 1000);
    assert_eq!(all.counts.iter().sum::<u64>(), 1000);
    assert_eq!((all.lo, all.hi), (0.0, 9.0));
    assert_eq!(all.counts[0], 400, "zeros land in the first bin");
    let nz = histogram(&img, 6, true).unwrap();
    assert_eq!(nz.total, 600);
    assert_eq!((nz.lo, nz.hi), (4.0, 9.0));
    assert_eq!(nz.counts, vec![100; 6]);
    let pic = plot(&[&all, &nz], &["all", "nonzero"], 120, 80);
    assert_eq!((pic.width, pic.height), (120, 80));
    let empty = image_from(&g, |_, _, _| 0.0);
    assert!(histogram(&empty, 4, true)
        .unwrap_err()
        .to_string()
        .contains("mask is empty"));
}

#[test]
fn batch_preview_of_an_augment_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = voxaug::phantom::head([24, 24, 12], [2.0, 2.0, 4.0]);
    for i in 0..3 {
        let sd = d.join(format!("{i:04}"));
        std::fs::create_dir_all(&sd).unwrap();
        voxaug::io::write_volume(sd.join("t1.nii.gz"), &s.images[0]).unwrap();
        voxaug::io::write_volume(sd.join("seg.nii.gz"), &s.labels[0]).unwrap();
    }
    let (samples, image, label) = view::batch_layout(d).unwrap();
    assert_eq!(
        (samples.len(), image.as_str(), label.as_deref()),
        (3, "t1.nii.gz", Some("seg.nii.gz"))
    );
    let out = d.join("batch.png");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .args([
            "preview",
            d.to_str().unwrap(),
            "--mode",
            "batch",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let single = view::planes(&s.images[0], Some(&s.labels[0]), &ViewOptions::default()).unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!(
            "3 samples, {} x {} px",
            single.width,
            3 * (single.height + 15) + 16
        )),
        "{text}"
    );
    let err = view::batch_layout(&d.join("0000")).unwrap_err().to_string();
    assert!(err.contains("no sample folders"), "{err}");
    // NRRD outputs (augment keeps the inputs' format) are found the same way.
    let nd = d.join("nrrd");
    for i in 0..2 {
        let sd = nd.join(format!("{i:04}"));
        std::fs::create_dir_all(&sd).unwrap();
        voxaug::io::write_volume(sd.join("ct.nrrd"), &s.images[0]).unwrap();
        voxaug::io::write_volume(sd.join("ct_label.nrrd"), &s.labels[0]).unwrap();
    }
    let (samples, image, label) = view::batch_layout(&nd).unwrap();
    assert_eq!(
        (samples.len(), image.as_str(), label.as_deref()),
        (2, "ct.nrrd", Some("ct_label.nrrd"))
    );
}

/// Captions summarise a plan (type and main parameter of each transform) and wrap under the picture's
/// width; the strip above the picture holds every line.
#[test]
fn plans_are_summarised_in_captions() {
    let plan = voxaug::Pipeline::from_json(
        r#"[{"type": "rotate", "degrees": [1, 2, 3.5]}, {"type": "gamma", "gamma": 0.8},
            {"type": "flip", "axes": [0]}, {"type": "zscore"}]"#,
    )
    .unwrap()
    .fixed_transforms()
    .unwrap();
    let s = view::plan_summary(&plan);
    assert_eq!(s, "rotate [1,2,3.50], gamma 0.80, flip [0], zscore");
    assert_eq!(view::plan_summary(&[]), "identity");
    let pic = view::Rgb::new(80, 20, [10, 10, 10]);
    let one = view::captioned(&pic, "short");
    let wrapped = view::captioned(&pic, &s);
    assert_eq!((one.width, one.height), (80, 20 + 15));
    assert_eq!(
        wrapped.height,
        20 + 4 + 11 * 3,
        "three lines of at most 9 characters"
    );
    // The text is drawn: the strip is not all black, the picture below is unchanged.
    assert!(one.data[..80 * 3 * 15].iter().any(|&b| b > 100));
    assert_eq!(one.get(5, 15 + 5), [10, 10, 10]);
}

/// `voxaug demo` runs on the real MNI brain by default: inputs written from the binary, samples that
/// differ from the input, a captioned before/after picture; a rerun with fewer samples replaces the
/// earlier ones.
#[test]
fn demo_runs_on_the_real_brain() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let run = |n: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_voxaug"))
            .args([
                "demo",
                "--out",
                out.to_str().unwrap(),
                "-n",
                n,
                "--device",
                "cpu",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let text = run("2");
    assert!(
        text.contains("MNI152 T1 brain") && text.contains("before_after.png"),
        "{text}"
    );
    let input = voxaug::io::read_volume(out.join("input/t1.nii.gz"), voxaug::Kind::Image).unwrap();
    assert_eq!(input.grid.shape, [197, 233, 189]);
    let labels =
        voxaug::io::read_volume(out.join("input/tissue.nii.gz"), voxaug::Kind::Label).unwrap();
    assert_eq!(labels.data.dtype(), voxaug::DType::U8);
    for i in 0..2 {
        let s = voxaug::io::read_volume(out.join(format!("{i:04}/t1.nii.gz")), voxaug::Kind::Image)
            .unwrap();
        assert_ne!(s.data, input.data, "sample {i} differs from the input");
        let l = voxaug::io::read_volume(
            out.join(format!("{i:04}/tissue.nii.gz")),
            voxaug::Kind::Label,
        )
        .unwrap();
        assert!(l
            .label_counts()
            .iter()
            .all(|(v, _)| [0.0, 1.0, 2.0].contains(v)));
    }
    assert!(out.join("before_after.png").exists() && out.join("0000/preview.png").exists());
    run("1");
    assert!(
        out.join("0000").exists() && !out.join("0001").exists(),
        "the rerun replaced sample 1"
    );
}

/// Pictures with a label map carry a legend strip: a swatch of each label's colour.
#[test]
fn label_pictures_have_a_legend() {
    let g = Grid::with_spacing([20, 20, 20], [1.0; 3]).unwrap();
    let img = image_from(&g, |i, _, _| i as f32);
    let lab = label_from(&g, |i, j, _| {
        if i < 5 {
            1.0
        } else if j < 5 {
            3.0
        } else {
            0.0
        }
    });
    let bare = view::planes(&img, None, &ViewOptions::default()).unwrap();
    let pic = view::planes(&img, Some(&lab), &ViewOptions::default()).unwrap();
    assert_eq!(pic.height, bare.height + 14);
    let strip: Vec<[u8; 3]> = (bare.height..pic.height)
        .flat_map(|y| (0..pic.width).map(move |x| (x, y)))
        .map(|(x, y)| pic.get(x, y))
        .collect();
    for v in [1, 3] {
        assert!(
            strip.contains(&view::label_colour(v)),
            "swatch of label {v}"
        );
    }
    assert!(
        !strip.contains(&view::label_colour(2)),
        "no swatch for an absent label"
    );
}
