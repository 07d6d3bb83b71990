//! Formats other than NIfTI-1: NRRD (read/write), NIfTI-2, Analyze 7.5, NIfTI pairs, detection by
//! content, and clear errors for what is recognised but not read.

// Index loops over the 3 axes and 4x4 matrices read better here than iterator chains.
#![allow(clippy::needless_range_loop)]

mod common;
use common::*;
use voxaug::io::{self, nifti::read_frame};
use voxaug::{DType, Grid, Kind};

fn anatomical() -> voxaug::Volume {
    io::read_volume(data("anatomical.nii"), Kind::Image).unwrap()
}

#[test]
fn nrrd_and_nifti_pair_match_the_nifti() {
    let want = anatomical();
    for f in ["anatomical.nrrd", "anatomical_pair.hdr"] {
        let v = io::read_volume(data(f), Kind::Image).unwrap();
        assert_eq!(v.data, want.data, "{f}: voxels");
        assert_eq!(v.dtype, DType::I16, "{f}");
        for r in 0..4 {
            for c in 0..4 {
                assert!(
                    (v.grid.affine[r][c] - want.grid.affine[r][c]).abs() < 1e-4,
                    "{f}: affine {:?}",
                    v.grid.affine
                );
            }
        }
    }
}

#[test]
fn analyze_reads_with_nibabels_geometry() {
    let v = io::read_volume(data("anatomical_analyze.hdr"), Kind::Image).unwrap();
    assert_eq!(v.data, anatomical().data);
    // nibabel: AnalyzeImage affine for 2 mm voxels without an SPM origin (LAS, centred).
    let want = [
        [-2.0, 0.0, 0.0, 32.0],
        [0.0, 2.0, 0.0, -40.0],
        [0.0, 0.0, 2.0, -24.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    assert_eq!(v.grid.affine, want);
}

#[test]
fn nifti2_reads_frames_as_nibabel_does() {
    let e = io::read_volume(data("example_nifti2.nii.gz"), Kind::Image)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 frames") && e.contains("--frame"), "{e}");
    let v = read_frame(&data("example_nifti2.nii.gz"), Kind::Image, Some(1)).unwrap();
    assert_eq!(v.grid.shape, [32, 20, 12]);
    // nibabel 5: img.affine and img.get_fdata()[..., 1] statistics.
    let want = [
        [-2.0, 0.0, 0.0, 117.8551],
        [0.0, 1.9737, -0.3555, -35.7229],
        [0.0, 0.3232, 2.1711, -7.2488],
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
    let s = v.stats();
    assert_eq!((s.min, s.max), (46.0, 757.0));
    assert!((s.mean - 451.17890625).abs() < 1e-6);
    assert!(
        read_frame(&data("example_nifti2.nii.gz"), Kind::Image, Some(2))
            .unwrap_err()
            .to_string()
            .contains("frame 2 does not exist")
    );
}

#[test]
fn nrrd_round_trip_keeps_values_types_and_oblique_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let g = Grid::new([7, 6, 5], oblique_affine()).unwrap();
    let img = image_from(&g, |i, j, k| i as f32 * 0.5 - j as f32 + k as f32 * 3.25);
    let lab = label_from(&g, |i, _, _| (i % 3) as f32);
    for (v, name) in [(&img, "i.nrrd"), (&lab, "l.nrrd")] {
        let p = dir.path().join(name);
        io::write_volume(&p, v).unwrap();
        let back = io::read_volume(&p, v.kind).unwrap();
        assert_eq!(back.data, v.data);
        assert_eq!(back.dtype, v.dtype);
        for r in 0..4 {
            for c in 0..4 {
                assert!((back.grid.affine[r][c] - v.grid.affine[r][c]).abs() < 1e-9);
            }
        }
    }
    // Detached header: the data file next to it.
    let text = "NRRD0004\ntype: float\ndimension: 3\nsizes: 2 2 1\nspace: right-anterior-superior\nspace directions: (1,0,0) (0,1,0) (0,0,2)\nspace origin: (1,2,3)\nendian: little\nencoding: raw\ndata file: d.raw\n\n";
    std::fs::write(dir.path().join("h.nhdr"), text).unwrap();
    let raw: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    std::fs::write(dir.path().join("d.raw"), raw).unwrap();
    let v = io::read_volume(dir.path().join("h.nhdr"), Kind::Image).unwrap();
    assert_eq!(v.values().to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(v.grid.origin(), [1.0, 2.0, 3.0]);
    assert_eq!(v.grid.spacing(), [1.0, 1.0, 2.0]);
}

#[test]
fn formats_are_detected_by_content_and_the_unreadable_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(data("anatomical.nrrd"), d.join("wrong.nii")).unwrap();
    std::fs::copy(data("anatomical.nii"), d.join("wrong.nrrd")).unwrap();
    let a = anatomical();
    assert_eq!(
        io::read_volume(d.join("wrong.nii"), Kind::Image)
            .unwrap()
            .data,
        a.data
    );
    assert_eq!(
        io::read_volume(d.join("wrong.nrrd"), Kind::Image)
            .unwrap()
            .data,
        a.data
    );
    // A DICOM file is found by its DICM magic whatever its name.
    std::fs::copy(data("dicom/single/CT_small.dcm"), d.join("ct.nii")).unwrap();
    assert_eq!(
        io::read_volume(d.join("ct.nii"), Kind::Image)
            .unwrap()
            .grid
            .shape,
        [128, 128, 1]
    );
    let e = io::read_volume(data("minc2_1_scale.mnc"), Kind::Image)
        .unwrap_err()
        .to_string();
    assert!(e.contains("MINC"), "{e}");
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not DICOM").unwrap();
    let e = io::read_volume(&empty, Kind::Image)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no readable DICOM image file"), "{e}");
    let mut bad = std::fs::read(data("anatomical.nrrd")).unwrap();
    bad.truncate(bad.len() / 2);
    std::fs::write(d.join("cut.nrrd"), bad).unwrap();
    let e = io::read_volume(d.join("cut.nrrd"), Kind::Image)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cut.nrrd") && (e.contains("gzip") || e.contains("truncated")),
        "{e}"
    );
}

#[test]
fn convert_cli_round_trips_and_refuses_unknown_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_voxaug"))
            .args(args)
            .output()
            .unwrap()
    };
    let nrrd = d.join("a.nrrd");
    let back = d.join("a.nii.gz");
    assert!(run(&[
        "convert",
        data("anatomical.nii").to_str().unwrap(),
        nrrd.to_str().unwrap()
    ])
    .status
    .success());
    assert!(
        run(&["convert", nrrd.to_str().unwrap(), back.to_str().unwrap()])
            .status
            .success()
    );
    let v = io::read_volume(&back, Kind::Image).unwrap();
    let a = anatomical();
    assert_eq!((v.data, v.dtype), (a.data, DType::I16));
    let o = run(&[
        "convert",
        nrrd.to_str().unwrap(),
        d.join("a.mha").to_str().unwrap(),
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("can only write"));
    let o = run(&["convert", nrrd.to_str().unwrap(), nrrd.to_str().unwrap()]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("overwrite the input")
    );
    let o = run(&[
        "convert",
        data("example_nifti2.nii.gz").to_str().unwrap(),
        d.join("f.nii").to_str().unwrap(),
        "--frame",
        "0",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// MINC-1 (NetCDF) reads as nibabel reads it: the same value at every voxel and the same world position
/// (voxaug's voxel axes are the file's dimensions fastest first, nibabel's slowest first), values mapped
/// from the valid range to image-min..image-max. A truncated file is a clear error.
#[test]
fn minc1_reads_like_nibabel() {
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data("minc1_1_scale.expected.json")).unwrap(),
    )
    .unwrap();
    let nshape: Vec<usize> = want["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let naff = mat4(&want["affine"]);
    let values: Vec<f64> = want["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let v = io::read_volume(data("minc1_1_scale.mnc"), Kind::Image).unwrap();
    assert_eq!(v.grid.shape, [nshape[2], nshape[1], nshape[0]]);
    for k in 0..nshape[0] {
        for j in 0..nshape[1] {
            for i in 0..nshape[2] {
                let nib = values[(k * nshape[1] + j) * nshape[2] + i];
                let got = v.at(i, j, k) as f64;
                assert!(
                    (got - nib).abs() <= 1e-6 * nib.abs().max(1.0),
                    "{i} {j} {k}: {got} vs {nib}"
                );
                let a = voxaug::grid::mat_apply(&v.grid.affine, [i as f64, j as f64, k as f64]);
                let b = voxaug::grid::mat_apply(&naff, [k as f64, j as f64, i as f64]);
                assert!(
                    (0..3).all(|r| (a[r] - b[r]).abs() < 1e-9),
                    "world position of {i} {j} {k}"
                );
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data("minc1_1_scale.mnc")).unwrap();
    let cut = dir.path().join("cut.mnc");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    let e = io::read_volume(&cut, Kind::Image).unwrap_err().to_string();
    assert!(e.contains("cut.mnc") && e.contains("truncated"), "{e}");
    std::fs::write(&cut, &bytes[..200]).unwrap();
    let e = io::read_volume(&cut, Kind::Image).unwrap_err().to_string();
    assert!(e.contains("cut.mnc"), "{e}");
}
