//! Grid patches and stitching; pooled dataset statistics.

mod common;
use common::*;
use voxaug::grid::{mat_apply, Grid};
use voxaug::patches::{axis_starts, extract, grid_starts, Aggregator, Blend};

fn stitch(v: &voxaug::Volume, size: [usize; 3], stride: [usize; 3], blend: Blend) -> Vec<f32> {
    let mut agg = Aggregator::new(v.grid.shape, size, stride, blend).unwrap();
    for st in grid_starts(v.grid.shape, size, stride).unwrap() {
        agg.add(st, &extract(v, st, size).unwrap().values())
            .unwrap();
    }
    agg.finish().unwrap()
}

#[test]
fn stitching_unmodified_patches_gives_the_input_back() {
    let g = Grid::new([23, 17, 11], oblique_affine()).unwrap();
    let n = noise(g.len(), 5);
    let v = image_from(&g, |i, j, k| n[g.index(i, j, k)] * 1000.0 - 300.0);
    for (size, stride) in [
        ([8, 8, 8], [8, 8, 8]),
        ([8, 6, 5], [4, 3, 2]),
        ([10, 9, 11], [7, 5, 3]),
        ([23, 17, 11], [1, 1, 1]),
    ] {
        for blend in [Blend::Crop, Blend::Average, Blend::Hann] {
            assert_eq!(
                stitch(&v, size, stride, blend),
                *v.values(),
                "{size:?} {stride:?} {blend:?}"
            );
        }
    }
    assert_eq!(
        axis_starts(23, 8, 8).unwrap(),
        vec![0, 8, 15],
        "the last patch is shifted to the border"
    );
    assert!(axis_starts(5, 8, 4)
        .unwrap_err()
        .to_string()
        .contains("larger than the volume"));
    assert!(axis_starts(20, 8, 9)
        .unwrap_err()
        .to_string()
        .contains("skipped"));
}

#[test]
fn crop_keeps_each_patch_centre() {
    // Patches carry their index as value: with crop, each voxel shows the patch whose centre is nearest.
    let g = Grid::with_spacing([20, 4, 4], [1.0; 3]).unwrap();
    let size = [8, 4, 4];
    let stride = [6, 4, 4];
    let starts = grid_starts(g.shape, size, stride).unwrap();
    assert_eq!(
        starts.iter().map(|s| s[0]).collect::<Vec<_>>(),
        vec![0, 6, 12]
    );
    let mut agg = Aggregator::new(g.shape, size, stride, Blend::Crop).unwrap();
    for (n, st) in starts.iter().enumerate() {
        agg.add(*st, &vec![n as f32; 128]).unwrap();
    }
    let out = agg.finish().unwrap();
    let row: Vec<f32> = (0..20).map(|i| out[i]).collect();
    // Centres at 3.5, 9.5, 15.5: boundaries at 6.5 and 12.5.
    assert_eq!(
        row,
        [
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0,
            2.0, 2.0, 2.0
        ]
    );
}

#[test]
fn patch_affines_place_patches_in_the_world() {
    let g = Grid::new([20, 18, 9], oblique_affine()).unwrap();
    let v = image_from(&g, |i, j, k| (i + 100 * j + 10000 * k) as f32);
    let p = extract(&v, [4, 5, 2], [6, 6, 6]).unwrap();
    for q in [[0usize, 0, 0], [5, 3, 1]] {
        let w_patch = mat_apply(&p.grid.affine, q.map(|x| x as f64));
        let w_vol = mat_apply(
            &g.affine,
            [4.0 + q[0] as f64, 5.0 + q[1] as f64, 2.0 + q[2] as f64],
        );
        assert!((0..3).all(|a| (w_patch[a] - w_vol[a]).abs() < 1e-9));
        assert_eq!(p.at(q[0], q[1], q[2]), v.at(4 + q[0], 5 + q[1], 2 + q[2]));
    }
}

#[test]
fn cli_patches_then_stitch_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_voxaug"))
            .args(args)
            .output()
            .unwrap()
    };
    let pd = d.join("p");
    let o = run(&[
        "patches",
        data("anatomical.nii").to_str().unwrap(),
        "--size",
        "16",
        "--overlap",
        "5",
        "--out",
        pd.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for mode in ["crop", "average", "hann"] {
        let out = d.join(format!("{mode}.nii"));
        let o = run(&[
            "stitch",
            pd.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--mode",
            mode,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let a = voxaug::io::read_volume(data("anatomical.nii"), voxaug::Kind::Image).unwrap();
        let b = voxaug::io::read_volume(&out, voxaug::Kind::Image).unwrap();
        assert_eq!(
            (a.data, a.grid, a.dtype),
            (b.data, b.grid, b.dtype),
            "{mode}"
        );
    }
    let o = run(&[
        "stitch",
        d.to_str().unwrap(),
        "--out",
        d.join("x.nii").to_str().unwrap(),
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("index.json"));
}

#[test]
fn pooled_statistics_equal_those_of_the_concatenated_voxels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut all: Vec<f64> = Vec::new();
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for f in 0..7usize {
        let shape = [10 + f, 8, 6 + f % 3];
        let g = Grid::with_spacing(shape, [1.0, 1.0 + f as f64 * 0.1, 3.0]).unwrap();
        let n = noise(g.len(), f as u64 + 40);
        let v = image_from(&g, |i, j, k| 100.0 * f as f32 + 50.0 * n[g.index(i, j, k)]);
        all.extend(v.values().iter().map(|&x| x as f64));
        let p = d.join(format!("img_{f}.nii.gz"));
        voxaug::io::write_volume(&p, &v).unwrap();
        images.push(p);
        let l = label_from(&g, |i, _, _| if i < 3 { 1.0 } else { 0.0 });
        let lp = d.join(format!("lab_{f}.nii.gz"));
        voxaug::io::write_volume(&lp, &l).unwrap();
        labels.push(lp);
    }
    let files = voxaug::dataset::list_files(d.join("img_*").to_str().unwrap()).unwrap();
    assert_eq!(files, images);
    let st = voxaug::dataset::dataset_stats(&files, &labels, &|_, _| {}).unwrap();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let std = (all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
    assert_eq!(st.voxels as usize, all.len());
    assert!(
        (st.mean - mean).abs() < 1e-9 * mean.abs() && (st.std - std).abs() < 1e-9 * std,
        "{} {} vs {mean} {std}",
        st.mean,
        st.std
    );
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!((st.min, st.max), (sorted[0], sorted[sorted.len() - 1]));
    let bin = (st.max - st.min) / 4096.0;
    for (p, v) in &st.percentiles {
        let exact = sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize];
        assert!(
            (v - exact).abs() <= 2.0 * bin + 1e-9,
            "p{p}: {v} vs {exact}"
        );
    }
    // (Spacings pass through NIfTI's f32 header fields.)
    assert!((st.spacing[1].median - 1.3).abs() < 1e-6);
    let want = [1.0, 1.3, 3.0];
    assert!(
        (0..3).all(|a| (st.suggested_spacing[a] - want[a]).abs() < 1e-6),
        "{:?}",
        st.suggested_spacing
    );
    let l1 = st.labels.iter().find(|l| l.value == 1).unwrap();
    assert_eq!(l1.files, 7);
}

#[test]
fn landmarks_standardise_affinely_related_images_to_one_histogram() {
    let dir = tempfile::tempdir().unwrap();
    let g = Grid::with_spacing([30, 20, 10], [1.0; 3]).unwrap();
    let n = noise(g.len(), 77);
    let base: Vec<f32> = (0..g.len())
        .map(|i| {
            if i % 7 == 0 {
                0.0
            } else {
                (n[i] * n[i]) * 500.0 + 20.0
            }
        })
        .collect();
    let mut files = Vec::new();
    let mut vols = Vec::new();
    for (f, (a, b)) in [(1.0f32, 0.0f32), (2.5, 100.0), (0.3, -40.0), (7.0, 3.0)]
        .iter()
        .enumerate()
    {
        let v = voxaug::Volume::image(base.iter().map(|x| a * x + b).collect(), g.clone()).unwrap();
        let p = dir.path().join(format!("i{f}.nii"));
        voxaug::io::write_volume(&p, &v).unwrap();
        files.push(p);
        vols.push(v);
    }
    let l = voxaug::dataset::learn_landmarks(&files).unwrap();
    assert_eq!(l.len(), 11);
    assert!((l[0] - 0.0).abs() < 1e-9 && (l[10] - 100.0).abs() < 1e-9);
    let t = voxaug::Pipeline::from_json(&format!(
        r#"{{"transforms": [{{"type": "histogram_standardize", "landmarks": {l:?}}}]}}"#
    ))
    .unwrap()
    .fixed_transforms()
    .unwrap();
    let outs: Vec<Vec<f32>> = vols
        .iter()
        .map(|v| {
            voxaug::Executor::Cpu
                .apply(&voxaug::Subject::new(vec![v.clone()], vec![]).unwrap(), &t)
                .unwrap()
                .images[0]
                .values()
                .into_owned()
        })
        .collect();
    for o in &outs[1..] {
        let worst = o
            .iter()
            .zip(&outs[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-3, "standardised images differ by {worst}");
    }
    // From a landmarks file, as dataset-stats writes it.
    let lf = dir.path().join("landmarks.json");
    std::fs::write(&lf, serde_json::json!({ "landmarks": l }).to_string()).unwrap();
    let p = voxaug::Pipeline::from_json(&format!(
        r#"{{"transforms": [{{"type": "histogram_standardize", "landmarks": {:?}}}]}}"#,
        lf.to_str().unwrap()
    ))
    .unwrap();
    assert_eq!(p.fixed_transforms().unwrap(), t);
    let e = voxaug::Pipeline::from_json(
        r#"{"transforms": [{"type": "histogram_standardize", "landmarks": [3, 2, 1]}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("11 non-decreasing numbers"), "{e}");
}

#[test]
fn hist_scale_follows_fastai() {
    // 1000 values 0..999: freqhist_bins(4) -> quantiles 0.001, 0.125, 0.375, 0.625, 0.875, 0.999
    // -> breaks [1, 125, 375, 625, 875, 999]; hist_scaled maps them to 0, 0.2, ..., 1 (clamped outside).
    let g = Grid::with_spacing([10, 10, 10], [1.0; 3]).unwrap();
    let v = image_from(&g, |i, j, k| (i + 10 * j + 100 * k) as f32);
    let t = voxaug::Pipeline::from_json(r#"{"transforms": [{"type": "hist_scale", "bins": 4}]}"#)
        .unwrap()
        .fixed_transforms()
        .unwrap();
    let o = voxaug::Executor::Cpu
        .apply(&voxaug::Subject::new(vec![v], vec![]).unwrap(), &t)
        .unwrap();
    let d = o.images[0].image_data().unwrap();
    for (x, want) in [
        (0usize, 0.0f32),
        (1, 0.0),
        (125, 0.2),
        (250, 0.3),
        (875, 0.8),
        (999, 1.0),
    ] {
        assert!((d[x] - want).abs() < 1e-6, "x = {x}: {} vs {want}", d[x]);
    }
}

/// `dataset-stats` over a folder holding a truncated file and a 4D file: both are listed with their
/// reason and left out, the statistics cover the other files, the exit is 0; `--strict` fails instead.
#[test]
fn dataset_stats_skips_bad_files_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = Grid::with_spacing([6, 5, 4], [1.0; 3]).unwrap();
    for f in 0..3 {
        let v = image_from(&g, |i, j, k| (f * 100 + i + j + k) as f32);
        voxaug::io::write_volume(d.join(format!("img_{f}.nii")), &v).unwrap();
    }
    // Truncated: half the voxel bytes. 4D: dim[0] = 4, dim[4] = 2, a second frame appended.
    let good = std::fs::read(d.join("img_0.nii")).unwrap();
    std::fs::write(d.join("img_3.nii"), &good[..352 + 60]).unwrap();
    let mut four = good.clone();
    four[40..42].copy_from_slice(&4i16.to_le_bytes());
    four[48..50].copy_from_slice(&2i16.to_le_bytes());
    four.extend_from_slice(&good[352..]);
    std::fs::write(d.join("img_4.nii"), &four).unwrap();
    let run = |strict: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_voxaug"));
        c.args([
            "dataset-stats",
            d.join("img_*.nii").to_str().unwrap(),
            "--json",
        ]);
        if strict {
            c.arg("--strict");
        }
        c.output().unwrap()
    };
    let o = run(false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("img_3.nii") && err.contains("img_4.nii"),
        "{err}"
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["files"], 3);
    assert_eq!(j["voxels"], 3 * 120);
    let skipped = j["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("truncated"),
        "{skipped:?}"
    );
    assert!(
        skipped[1]["reason"].as_str().unwrap().contains("frame"),
        "{skipped:?}"
    );
    let o = run(true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--strict") && o.stdout.is_empty(),
        "{err}"
    );
}
