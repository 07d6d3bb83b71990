//! DICOM: series stacking (sorting, spacing from positions, rescale, LPS -> RAS), transfer syntaxes,
//! and what is not one volume.

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

mod common;
use common::*;
use voxaug::io;
use voxaug::Kind;

#[test]
fn shuffled_series_reads_exactly_to_the_expected_nifti() {
    let v = io::read_volume(data("dicom/series_anatomical"), Kind::Image).unwrap();
    let want =
        io::read_volume(data("dicom/series_anatomical.expected.nii.gz"), Kind::Image).unwrap();
    assert_eq!(v.grid.shape, want.grid.shape);
    assert_eq!(v.data, want.data, "rescaled values in slice-normal order");
    for r in 0..4 {
        for c in 0..4 {
            assert!(
                (v.grid.affine[r][c] - want.grid.affine[r][c]).abs() < 1e-4,
                "{:?} vs {:?}",
                v.grid.affine,
                want.grid.affine
            );
        }
    }
    assert_eq!(v.dtype, voxaug::DType::I16);
}

#[test]
fn single_files_decode_to_pydicoms_values() {
    // pydicom 3: pixel_array * RescaleSlope + RescaleIntercept -> (shape, min, max, mean).
    let cases = [
        (
            "CT_small.dcm",
            [128, 128, 1],
            -896.0,
            1167.0,
            -119.0738525390625,
        ),
        ("MR_small.dcm", [64, 64, 1], 127.0, 2145.0, 518.88134765625),
        (
            "MR_small_implicit.dcm",
            [64, 64, 1],
            127.0,
            2145.0,
            518.88134765625,
        ),
        (
            "MR_small_bigendian.dcm",
            [64, 64, 1],
            127.0,
            2145.0,
            518.88134765625,
        ),
        (
            "MR_small_RLE.dcm",
            [64, 64, 1],
            127.0,
            2145.0,
            518.88134765625,
        ),
        // pydicom needs a plugin for JPEG 2000; lossless must equal the uncompressed original.
        (
            "MR_small_jp2klossless.dcm",
            [64, 64, 1],
            127.0,
            2145.0,
            518.88134765625,
        ),
    ];
    let reference = io::read_volume(data("dicom/single/MR_small.dcm"), Kind::Image).unwrap();
    for (f, shape, min, max, mean) in cases {
        let v = io::read_volume(data(&format!("dicom/single/{f}")), Kind::Image).unwrap();
        let s = v.stats();
        assert_eq!(v.grid.shape, shape, "{f}");
        assert_eq!((s.min, s.max), (min, max), "{f}");
        assert!((s.mean - mean).abs() < 1e-6, "{f}: mean {}", s.mean);
        if shape == [64, 64, 1] {
            assert_eq!(v.data, reference.data, "{f}: same pixels as MR_small");
        }
    }
    // Lossy JPEG 2000 (512 x 512) decodes.
    let j = io::read_volume(data("dicom/single/693_J2KI.dcm"), Kind::Image).unwrap();
    assert_eq!(j.grid.shape, [512, 512, 1]);
}

#[test]
fn small_ct_series_stacks_along_the_normal() {
    let v = io::read_volume(data("dicom/series_ct5n"), Kind::Image).unwrap();
    assert_eq!(v.grid.shape, [16, 16, 5]);
    assert!(
        (v.grid.spacing()[2] - 2.5).abs() < 1e-6,
        "spacing from positions: {:?}",
        v.grid.spacing()
    );
    // Slices are sorted by position along the normal: the first voxel sits at the lowest z.
    assert!(
        (v.grid.origin()[2] - (-1.2375)).abs() < 1e-4,
        "{:?}",
        v.grid.origin()
    );
    let s = v.stats();
    assert_eq!((s.min, s.max), (-888.0, 85.0));
}

#[test]
fn what_is_not_one_volume_is_refused_clearly() {
    let e = io::read_volume(data("dicom/series_ct2"), Kind::Image)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a missing slice"), "{e}");
    let e = io::read_volume(data("dicom/single/MR_truncated.dcm"), Kind::Image)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("MR_truncated.dcm") && e.contains("truncated"),
        "{e}"
    );
    // A slice removed from a series.
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(data("dicom/series_anatomical")).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let v = io::read_volume(dir.path(), Kind::Image).unwrap();
    // Remove the file holding the middle slice (found by position).
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mid = files
        .iter()
        .find(|p| {
            let one = io::read_volume(p, Kind::Image).unwrap();
            (one.grid.origin()[2] - voxaug::grid::mat_apply(&v.grid.affine, [0.0, 0.0, 12.0])[2])
                .abs()
                < 1e-3
        })
        .unwrap()
        .clone();
    std::fs::remove_file(mid).unwrap();
    let e = io::read_volume(dir.path(), Kind::Image)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a missing slice"), "{e}");
    // Two series in one folder: the error lists them.
    std::fs::copy(data("dicom/series_ct5n/2062"), dir.path().join("other")).unwrap();
    let e = io::read_volume(dir.path(), Kind::Image)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 series") && e.contains("--series"), "{e}");
    // `--series` picks one, in the library and in every command that reads a DICOM folder.
    let uids = io::dicom::list_series(dir.path()).unwrap();
    let uid = &uids.iter().find(|u| u.1 == 1).unwrap().0;
    let one = io::read_volume_series(dir.path(), Kind::Image, Some(uid)).unwrap();
    assert_eq!(one.grid.shape[2], 1);
    let out = dir.path().join("out.nii");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .args([
            "convert",
            dir.path().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--series",
            uid,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .args([
            "patches",
            dir.path().to_str().unwrap(),
            "--size",
            "8,8,1",
            "--series",
            uid,
            "--out",
        ])
        .arg(dir.path().join("patches"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pipe = dir.path().join("p.json");
    std::fs::write(&pipe, r#"[{"type": "flip", "axes": [0]}]"#).unwrap();
    for series in [None, Some(uid.as_str())] {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_voxaug"));
        c.args([
            "apply",
            pipe.to_str().unwrap(),
            "--image",
            dir.path().to_str().unwrap(),
            "--device",
            "cpu",
        ])
        .arg("--out")
        .arg(dir.path().join(format!("a{}", series.is_some())));
        if let Some(s) = series {
            c.args(["--series", s]);
        }
        let o = c.output().unwrap();
        assert_eq!(
            o.status.success(),
            series.is_some(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn enhanced_multiframe_geometry_from_per_frame_groups() {
    // Gzip-compressed enhanced MR (176 frames of 256 x 256). Expected affine computed with pydicom from
    // PerFrameFunctionalGroupsSequence (positions sorted along the normal, LPS -> RAS).
    let v = io::read_volume(data("dicom/multiframe/philips_mprage.dcm.gz"), Kind::Image).unwrap();
    assert_eq!(v.grid.shape, [256, 256, 176]);
    let want = [
        [0.0022, 0.03379, 0.99943, -92.70904],
        [-0.99789, 0.065, -0.0, 125.12767],
        [-0.06496, -0.99731, 0.03387, 136.49526],
    ];
    for r in 0..3 {
        for c in 0..4 {
            assert!(
                (v.grid.affine[r][c] - want[r][c]).abs() < 1e-4,
                "{:?}",
                v.grid.affine
            );
        }
    }
    assert_eq!(v.grid.orientation(), "PIR");
}
