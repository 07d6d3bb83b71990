//! The command line end to end: `apply` writes the transformed inputs, `info` reports geometry.

mod common;
use common::*;
use std::process::Command;
use voxaug::{io, Kind};

fn voxaug(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .args(args)
        .env("VOXAUG_DEVICE", "cpu")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn apply_writes_each_input_under_its_name_with_updated_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = d.join("p.json");
    std::fs::write(
        &p,
        r#"{"seed": 0, "transforms": [{"type": "crop", "start": [2, 3, 4], "size": [20, 30, 15]},
            {"type": "rotate", "degrees": [0, 0, 10]}, {"type": "zscore"}]}"#,
    )
    .unwrap();
    let lab = d.join("seg.nii.gz");
    let img = io::read_volume(data("anatomical.nii"), Kind::Image).unwrap();
    let labv = voxaug::Volume::label(
        img.values()
            .iter()
            .map(|&v| {
                if v > 9000.0 {
                    2.0
                } else if v > 5000.0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect(),
        img.grid.clone(),
    )
    .unwrap();
    io::write_volume(&lab, &labv).unwrap();
    let out = d.join("out");
    let text = voxaug(&[
        "apply",
        p.to_str().unwrap(),
        "--image",
        data("anatomical.nii").to_str().unwrap(),
        "--label",
        lab.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("output shape [20, 30, 15]"), "{text}");
    let oi = io::read_volume(out.join("anatomical.nii"), Kind::Image).unwrap();
    let ol = io::read_volume(out.join("seg.nii.gz"), Kind::Label).unwrap();
    assert_eq!(oi.grid.shape, [20, 30, 15]);
    assert_eq!(ol.grid, oi.grid);
    assert_eq!(ol.dtype, voxaug::DType::U8);
    assert!(ol.values().iter().all(|v| [0.0, 1.0, 2.0].contains(v)));
    let want_origin = voxaug::grid::mat_apply(&img.grid.affine, [2.0, 3.0, 4.0]);
    assert_eq!(oi.grid.origin(), want_origin);
    let st = oi.stats();
    assert!(st.min < -1.0 && st.max > 1.0, "z-scored: {st:?}");
}

#[test]
fn info_reports_orientation_and_label_volumes() {
    let text = voxaug(&["info", data("anatomical.nii").to_str().unwrap()]);
    assert!(
        text.contains("orientation: LAS")
            && text.contains("[33, 41, 25]")
            && text.contains("int16"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let g = voxaug::Grid::with_spacing([10, 10, 10], [1.0, 1.0, 2.5]).unwrap();
    let lab = label_from(&g, |i, _, _| {
        if i < 3 {
            1.0
        } else if i < 4 {
            5.0
        } else {
            0.0
        }
    });
    let p = dir.path().join("l.nii");
    io::write_volume(&p, &lab).unwrap();
    let j: serde_json::Value = serde_json::from_str(&voxaug(&[
        "info",
        p.to_str().unwrap(),
        "--as-label",
        "--json",
    ]))
    .unwrap();
    let labels = j["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 3);
    assert_eq!(labels[1]["value"], 1.0);
    assert_eq!(labels[1]["voxels"], 300);
    assert_eq!(labels[1]["mm3"], 750.0);
    assert_eq!(labels[2]["ml"], 0.25);
    assert_eq!(j["orientation"], "RAS");
    // `--label LAB` describes a label map after the file; `--label` alone names `--as-label`.
    let j: serde_json::Value = serde_json::from_str(&voxaug(&[
        "info",
        p.to_str().unwrap(),
        "--label",
        p.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert!(j["file"].get("labels").is_none());
    assert_eq!(j["label"]["labels"].as_array().unwrap().len(), 3);
    let pt = dir.path().join("pt");
    let pt = pt.to_str().unwrap();
    for cmd in ["info", "patches"] {
        let o = Command::new(env!("CARGO_BIN_EXE_voxaug"))
            .args([cmd, p.to_str().unwrap(), "--label"])
            .args(if cmd == "patches" {
                vec!["--size", "4,4,4", "--out", pt]
            } else {
                vec![]
            })
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && e.contains("--as-label"),
            "{cmd}: {e}"
        );
    }
}

/// `patches IMG --label LAB` cuts the label map on the same patch grid into OUT/label; stitching each
/// folder gives each volume back exactly.
#[test]
fn patches_cut_a_label_map_alongside() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = voxaug::Grid::new([13, 10, 7], oblique_affine()).unwrap();
    let img = image_from(&g, |i, j, k| (i * 5 + j * 3 + k) as f32 * 0.5);
    let lab = label_from(&g, |i, j, _| ((i / 3 + j / 4) % 3) as f32);
    let (ip, lp) = (d.join("img.nii"), d.join("lab.nii"));
    io::write_volume(&ip, &img).unwrap();
    io::write_volume(&lp, &lab).unwrap();
    let out = d.join("p");
    let o = out.to_str().unwrap();
    voxaug(&[
        "patches",
        ip.to_str().unwrap(),
        "--label",
        lp.to_str().unwrap(),
        "--size",
        "6,6,4",
        "--overlap",
        "2,2,1",
        "--out",
        o,
    ]);
    for (folder, want, kind) in [
        (out.clone(), &img, Kind::Image),
        (out.join("label"), &lab, Kind::Label),
    ] {
        let back = d.join(format!(
            "back_{}.nii",
            folder.file_name().unwrap().to_str().unwrap()
        ));
        voxaug(&[
            "stitch",
            folder.to_str().unwrap(),
            "--out",
            back.to_str().unwrap(),
        ]);
        let v = io::read_volume(&back, kind).unwrap();
        assert_eq!(v.data, want.data, "{}", folder.display());
        assert_eq!(v.dtype, want.dtype);
    }
    // A rerun over the same folder needs --overwrite, and then replaces both cuts.
    voxaug(&[
        "patches",
        ip.to_str().unwrap(),
        "--label",
        lp.to_str().unwrap(),
        "--size",
        "6,6,4",
        "--out",
        o,
        "--overwrite",
    ]);
}

#[test]
fn inputs_in_unwritable_formats_get_nifti_output_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.json");
    std::fs::write(&p, r#"{"transforms": [{"type": "flip", "axes": [0]}]}"#).unwrap();
    let out = dir.path().join("out");
    voxaug(&[
        "apply",
        p.to_str().unwrap(),
        "--image",
        data("dicom/series_anatomical").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let v = io::read_volume(out.join("series_anatomical.nii.gz"), Kind::Image).unwrap();
    assert_eq!(v.grid.shape, [33, 41, 25]);
    let out2 = dir.path().join("out2");
    voxaug(&[
        "apply",
        p.to_str().unwrap(),
        "--image",
        data("anatomical_pair.hdr").to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(out2.join("anatomical_pair.nii.gz").exists());
}

/// `convert IN --out OUT` (the vocabulary of every other command) writes what `convert IN OUT` writes.
#[test]
fn convert_takes_out_like_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = voxaug::Grid::new([9, 8, 7], oblique_affine()).unwrap();
    let src = d.join("in.nii");
    io::write_volume(&src, &image_from(&g, |i, j, k| (i * j + k) as f32)).unwrap();
    let (a, b) = (d.join("a.nrrd"), d.join("b.nrrd"));
    voxaug(&["convert", src.to_str().unwrap(), a.to_str().unwrap()]);
    voxaug(&[
        "convert",
        src.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn apply_brings_members_on_different_grids_onto_a_named_members_grid() {
    // TorchIO's Resample("t1"): a label map at another resolution is resampled onto the image's grid
    // in the same pass as the transforms after it; the member is named by its file name.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = io::read_volume(data("anatomical.nii"), Kind::Image).unwrap();
    let coarse = voxaug::Grid::new(
        [10, 12, 8],
        voxaug::grid::mat_mul(&img.grid.affine, &voxaug::grid::scaling([3.0, 3.0, 3.0])),
    )
    .unwrap();
    let lab = voxaug::Volume::label(
        (0..coarse.len()).map(|i| (i % 3) as f32).collect(),
        coarse.clone(),
    )
    .unwrap();
    io::write_volume(d.join("seg.nii.gz"), &lab).unwrap();
    let p = d.join("p.json");
    std::fs::write(
        &p,
        r#"[{"type": "resample_to", "reference": "anatomical"}, {"type": "flip", "axes": [0]}]"#,
    )
    .unwrap();
    let out = d.join("out");
    let args = |p: &std::path::Path| {
        vec![
            "apply".to_string(),
            p.to_str().unwrap().to_string(),
            "--image".into(),
            data("anatomical.nii").to_str().unwrap().into(),
            "--label".into(),
            d.join("seg.nii.gz").to_str().unwrap().into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let a = args(&p);
    voxaug(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let ol = io::read_volume(out.join("seg.nii.gz"), Kind::Label).unwrap();
    let oi = io::read_volume(out.join("anatomical.nii"), Kind::Image).unwrap();
    assert_eq!(ol.grid.shape, img.grid.shape);
    assert!(ol.grid.same_as(&oi.grid, 1e-6));
    assert!(ol.values().iter().all(|v| [0.0, 1.0, 2.0].contains(v)));
    // Without resample_to the mismatch is an error that names the fix, and nothing is written.
    std::fs::write(&p, r#"[{"type": "flip", "axes": [0]}]"#).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .args(&a)
        .env("VOXAUG_DEVICE", "cpu")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("resample_to"), "{err}");
    assert!(!out.exists());
}

#[test]
fn multi_channel_images_are_one_member_written_back_in_their_layout() {
    // BraTS-style: modalities along NIfTI dim 4 in one file, transformed together (one spatial map),
    // intensity transforms per channel, written back as one 4D file; dim 5 + vector intent likewise.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = voxaug::Grid::new([21, 17, 9], oblique_affine()).unwrap();
    let chans: Vec<voxaug::Volume> = (0..3)
        .map(|c| {
            image_from(&g, move |i, j, k| {
                ((i * (c + 1) + j * 2 + k * (3 - c)) % 23) as f32
            })
        })
        .collect();
    let seg = label_from(&g, |i, j, _| ((i / 5 + j / 4) % 3) as f32);
    io::write_volume(d.join("seg.nii.gz"), &seg).unwrap();
    let p = d.join("p.json");
    let body = r#"{"type": "rotate", "degrees": [0, 0, 14]}, {"type": "crop", "start": [1, 1, 0], "size": [18, 15, 9]}, {"type": "zscore"}"#;
    std::fs::write(&p, format!("[{body}]")).unwrap();
    let plan = pipeline_transforms(body);
    for (name, layout) in [
        ("mods.nii.gz", io::ChannelLayout::Time),
        ("vec.nii", io::ChannelLayout::Vector),
    ] {
        io::write_channels(d.join(name), &chans, Some(layout)).unwrap();
        let out = d.join(format!("out-{name}"));
        voxaug(&[
            "apply",
            p.to_str().unwrap(),
            "--image",
            d.join(name).to_str().unwrap(),
            "--label",
            d.join("seg.nii.gz").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let (back, lay) = io::read_channels(out.join(name), Kind::Image, None).unwrap();
        assert_eq!(lay, Some(layout), "{name}: layout kept");
        assert_eq!(back.len(), 3);
        for (c, v) in back.iter().enumerate() {
            let alone = voxaug::Executor::Cpu
                .apply(
                    &voxaug::Subject::new(vec![chans[c].clone()], vec![]).unwrap(),
                    &plan,
                )
                .unwrap();
            assert_eq!(v.grid.shape, [18, 15, 9]);
            let diff = max_abs_diff(&v.values(), &alone.images[0].values());
            assert!(
                diff <= 1e-6,
                "{name} channel {c}: differs from the channel alone by {diff}"
            );
            let st = v.stats();
            // zscore over nonzero voxels: about 0 and 1 over all of them.
            assert!(
                st.mean.abs() < 0.1 && (st.std - 1.0).abs() < 0.1,
                "per-channel zscore: {st:?}"
            );
        }
        let l = io::read_volume(out.join("seg.nii.gz"), Kind::Label).unwrap();
        assert_eq!(l.grid, back[0].grid);
    }
    // A label map must be 3D.
    let e = io::read_channels(d.join("mods.nii.gz"), Kind::Label, None).unwrap_err();
    assert!(e.to_string().contains("4D"), "{e}");
}
