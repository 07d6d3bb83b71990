//! The shared convention test vectors (computed with scipy.ndimage): if these fail, our conventions and
//! the design's differ.

#[macro_use]
mod common;
use common::*;
use voxaug::{Executor, Grid, Kind, Pipeline, Subject, Volume};

fn conventions_test_vectors(ex: &Executor) {
    let text = std::fs::read_to_string(data("conventions.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let affine = mat4(&v["input_affine"]);
    let (shape, img) = nested_to_volume(&v["input_image"]);
    let (_, lab) = nested_to_volume(&v["input_label"]);
    let grid = Grid::new(shape, affine).unwrap();
    let subject = Subject::new(
        vec![Volume::new(img, grid.clone(), Kind::Image).unwrap()],
        vec![Volume::label(lab, grid.clone()).unwrap()],
    )
    .unwrap();
    for case in v["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let pipeline =
            Pipeline::from_json(&serde_json::json!({"transforms": case["transforms"]}).to_string())
                .unwrap();
        let out = ex
            .apply(&subject, &pipeline.fixed_transforms().unwrap())
            .unwrap();
        let (eshape, eimg) = nested_to_volume(&case["expected_image"]);
        let (_, elab) = nested_to_volume(&case["expected_label"]);
        let eaff = mat4(&case["expected_affine"]);
        let got = &out.images[0];
        assert_eq!(got.grid.shape, eshape, "{name}: shape");
        let worst = max_abs_diff(&got.values(), &eimg);
        assert!(worst < 1e-4, "{name}: image differs by up to {worst}");
        let lab_diff = out.labels[0]
            .values()
            .iter()
            .zip(&elab)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(lab_diff, 0, "{name}: {lab_diff} label voxels differ");
        for r in 0..4 {
            for c in 0..4 {
                assert!(
                    (got.grid.affine[r][c] - eaff[r][c]).abs() < 1e-6,
                    "{name}: affine {:?} vs {:?}",
                    got.grid.affine,
                    eaff
                );
            }
        }
    }
}

both_executors!(conventions_test_vectors);
