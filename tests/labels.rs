//! Label maps keep their integer type, bit for bit: through reading and writing every supported
//! integer type (NIfTI, gzipped NIfTI, NRRD) and through every spatial op on both executors, with values
//! chosen at the edges of each type (and past 2^24, where an f32 copy would round them).

#[macro_use]
mod common;
use common::*;
use voxaug::{io, DType, Executor, Grid, Kind, Pipeline, Subject, Volume, Voxels};

/// For each integer type: a label map on an oblique grid whose values include the type's extremes.
fn typed_labels(g: &Grid) -> Vec<Volume> {
    let n = g.len();
    let pick = |vals: &[i64]| -> Vec<i64> {
        (0..n)
            .map(|l| {
                let [i, j, k] = [
                    l % g.shape[0],
                    (l / g.shape[0]) % g.shape[1],
                    l / (g.shape[0] * g.shape[1]),
                ];
                vals[(i / 4 + j / 3 + k / 2) % vals.len()]
            })
            .collect()
    };
    let vols: Vec<Voxels> = vec![
        Voxels::U8(
            pick(&[0, 1, 7, 254, 255])
                .iter()
                .map(|&v| v as u8)
                .collect(),
        ),
        Voxels::I8(
            pick(&[0, -128, -1, 5, 127])
                .iter()
                .map(|&v| v as i8)
                .collect(),
        ),
        Voxels::U16(
            pick(&[0, 2, 300, 65535])
                .iter()
                .map(|&v| v as u16)
                .collect(),
        ),
        Voxels::I16(
            pick(&[0, -32768, -7, 1000, 32767])
                .iter()
                .map(|&v| v as i16)
                .collect(),
        ),
        Voxels::U32(
            pick(&[0, 16_777_217, 16_777_219, 4_000_000_001, 4_294_967_295])
                .iter()
                .map(|&v| v as u32)
                .collect(),
        ),
        Voxels::I32(
            pick(&[0, -2_147_483_648, -16_777_217, 33_554_433, 2_147_483_647])
                .iter()
                .map(|&v| v as i32)
                .collect(),
        ),
    ];
    vols.into_iter()
        .map(|d| Volume::from_voxels(d, g.clone(), Kind::Label).unwrap())
        .collect()
}

fn ints(v: &Voxels) -> Vec<i64> {
    voxaug::with_voxels!(v, d => d.iter().map(|&x| voxaug::Voxel::to_f64(x) as i64).collect())
}

fn distinct(v: &Voxels) -> std::collections::BTreeSet<i64> {
    voxaug::with_voxels!(v, d => d.iter().map(|&x| voxaug::Voxel::to_f64(x) as i64).collect())
}

#[test]
fn every_integer_type_reads_back_bit_for_bit() {
    let g = Grid::new([13, 11, 7], oblique_affine()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for lab in typed_labels(&g) {
        let dt = lab.data.dtype();
        assert_eq!(lab.dtype, dt);
        for ext in ["nii", "nii.gz", "nrrd"] {
            let p = dir.path().join(format!("{}.{ext}", dt.name()));
            io::write_volume(&p, &lab).unwrap();
            let back = io::read_volume(&p, Kind::Label).unwrap();
            assert_eq!(back.dtype, dt, "{ext}: on-disk type");
            assert_eq!(back.data, lab.data, "{ext}: {} voxels", dt.name());
        }
    }
}

#[test]
fn float_label_files_are_held_in_the_narrowest_integer_type() {
    let g = Grid::with_spacing([4, 3, 2], [1.0; 3]).unwrap();
    let vals: Vec<f32> = (0..24).map(|x| (x % 5) as f32 * 100.0).collect();
    let mut img = Volume::image(vals.clone(), g.clone()).unwrap();
    img.dtype = DType::F32;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("float_labels.nii");
    io::write_volume(&p, &img).unwrap();
    let lab = io::read_volume(&p, Kind::Label).unwrap();
    assert_eq!(
        lab.data.dtype(),
        DType::U16,
        "values up to 400 need 16 bits"
    );
    assert_eq!(lab.dtype, DType::F32, "written back as the file's type");
    assert_eq!(*lab.values(), vals[..]);
    // A fractional value in a label file is refused, naming the file.
    let mut bad = vals.clone();
    bad[3] = 2.5;
    io::write_volume(&p, &Volume::image(bad, g).unwrap()).unwrap();
    let e = io::read_volume(&p, Kind::Label).unwrap_err().to_string();
    assert!(e.contains("float_labels.nii") && e.contains("2.5"), "{e}");
}

const SPATIAL: &[&str] = &[
    r#"{"type": "flip", "axes": [0, 2]}"#,
    r#"{"type": "rotate", "degrees": [10, -20, 35]}"#,
    r#"{"type": "crop", "start": [1, 2, 1], "size": [9, 7, 5]}"#,
    r#"{"type": "pad", "margins": [3, 1, 2]}"#,
    r#"{"type": "resize", "shape": [17, 9, 10]}"#,
    r#"{"type": "zoom", "factors": [1.3, 0.8, 1.1]}"#,
    r#"{"type": "shift", "mm": [2.5, -1.0, 3.0]}"#,
    r#"{"type": "shear", "degrees": [10, 0, 5]}"#,
    r#"{"type": "resample", "spacing": [1.1, 0.9, 2.3]}"#,
    r#"{"type": "elastic", "sigma": [2, 2, 2], "alpha": [3, 3, 3], "seed": 3}"#,
    r#"{"type": "rotate", "degrees": [0, 0, 30], "fill": "edge"}"#,
    r#"{"type": "rotate", "degrees": [0, 0, 30], "fill": "min"}"#,
];

/// Every spatial op keeps the label type and only produces values present in the input (or the fill
/// 0); the GPU gives exactly the CPU's voxels.
fn spatial_ops_keep_the_label_type(ex: &Executor) {
    let g = Grid::new([13, 11, 7], oblique_affine()).unwrap();
    let img = image_from(&g, |i, j, k| (i * 7 + j * 3 + k) as f32);
    for lab in typed_labels(&g) {
        let dt = lab.data.dtype();
        let mut allowed = distinct(&lab.data);
        allowed.insert(0);
        let s = Subject::new(vec![img.clone()], vec![lab]).unwrap();
        for op in SPATIAL {
            let t = Pipeline::from_json(&format!("{{\"transforms\": [{op}]}}"))
                .unwrap()
                .fixed_transforms()
                .unwrap();
            let out = ex.apply(&s, &t).unwrap();
            let o = &out.labels[0];
            assert_eq!(o.data.dtype(), dt, "{op}: in-memory type");
            assert_eq!(o.dtype, dt, "{op}: on-disk type");
            let got = distinct(&o.data);
            assert!(
                got.is_subset(&allowed),
                "{op} {}: new values {:?}",
                dt.name(),
                got.difference(&allowed).collect::<Vec<_>>()
            );
            if !matches!(ex, Executor::Cpu) {
                let want = Executor::Cpu.apply(&s, &t).unwrap();
                assert_eq!(
                    o.data,
                    want.labels[0].data,
                    "{op} {}: GPU vs CPU",
                    dt.name()
                );
            }
        }
    }
}

/// remap_labels / keep_labels on every integer type, alone and between spatial transforms (with a
/// "min" fill after a remap): the expected values voxel by voxel, the image untouched, the label type
/// widened only when a new value needs it, and the GPU bit for bit equal to the CPU (type included).
fn label_maps_on_every_type(ex: &Executor) {
    let g = Grid::new([13, 11, 7], oblique_affine()).unwrap();
    let img = image_from(&g, |i, j, k| (i * 7 + j * 3 + k) as f32);
    for lab in typed_labels(&g) {
        let dt = lab.data.dtype();
        let vals: Vec<i64> = distinct(&lab.data).into_iter().collect();
        // Swap the two largest values, send the smallest to 300 (widens 8-bit types), keep the rest.
        let (a, b, lo) = (vals[vals.len() - 1], vals[vals.len() - 2], vals[0]);
        let remap = format!(
            r#"{{"type": "remap_labels", "mapping": {{"{a}": {b}, "{b}": {a}, "{lo}": 300}}}}"#
        );
        let keep = format!(r#"{{"type": "keep_labels", "labels": [{a}, {b}]}}"#);
        let s = Subject::new(vec![img.clone()], vec![lab.clone()]).unwrap();
        for ops in [
            remap.clone(),
            keep.clone(),
            format!("{remap}, {keep}"),
            format!(
                r#"{{"type": "rotate", "degrees": [0, 0, 20]}}, {remap}, {{"type": "rotate", "degrees": [0, 0, -20], "fill": "min"}}"#
            ),
        ] {
            let t = Pipeline::from_json(&format!("{{\"transforms\": [{ops}]}}"))
                .unwrap()
                .fixed_transforms()
                .unwrap();
            let out = ex.apply(&s, &t).unwrap();
            let o = &out.labels[0];
            if !ops.contains("rotate") {
                assert_eq!(out.images[0], s.images[0], "{ops}: image untouched");
                let want = |x: i64| {
                    let r = if ops.contains("remap") {
                        if x == a {
                            b
                        } else if x == b {
                            a
                        } else if x == lo {
                            300
                        } else {
                            x
                        }
                    } else {
                        x
                    };
                    if ops.contains("keep") && r != a && r != b {
                        0
                    } else {
                        r
                    }
                };
                let (gv, iv) = (ints(&o.data), ints(&lab.data));
                for n in 0..gv.len() {
                    assert_eq!(gv[n], want(iv[n]), "{ops} {}: voxel {n}", dt.name());
                }
            }
            let widen = ops.contains("remap") && !dt.int_range().is_some_and(|(_, hi)| hi >= 300.0);
            if !widen {
                assert_eq!(o.data.dtype(), dt, "{ops}: kept the type");
            }
            assert_eq!(o.dtype, dt, "{ops}: on-disk type recorded");
            if !matches!(ex, Executor::Cpu) {
                let want = Executor::Cpu.apply(&s, &t).unwrap();
                assert_eq!(
                    o.data,
                    want.labels[0].data,
                    "{ops} {}: GPU vs CPU",
                    dt.name()
                );
            }
        }
    }
}

both_executors!(spatial_ops_keep_the_label_type, label_maps_on_every_type);

#[test]
fn label_maps_round_trip_and_sequential_labels_renumbers() {
    let g = Grid::new([9, 8, 5], oblique_affine()).unwrap();
    let lab = label_from(&g, |i, j, _| [0.0, 3.0, 5.0, 9.0][(i / 3 + j / 3) % 4]);
    let s = Subject::new(vec![], vec![lab.clone()]).unwrap();
    let run = |json: &str| {
        Pipeline::from_json(json)
            .unwrap()
            .sample(&Executor::Cpu, &s, 0)
            .unwrap()
    };
    // A remap and its inverse give the input back.
    let (back, _) = run(
        r#"[{"type": "remap_labels", "mapping": {"3": 30, "5": 50}}, {"type": "remap_labels", "mapping": {"30": 3, "50": 5}}]"#,
    );
    assert_eq!(back.labels[0].data, lab.data);
    // TorchIO's SequentialLabels: sorted values -> 0, 1, 2, ...; the plan records the remap.
    let (seq, plan) = run(r#"[{"type": "sequential_labels"}]"#);
    let got = distinct(&seq.labels[0].data);
    assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    for (x, y) in lab.values().iter().zip(seq.labels[0].values().iter()) {
        let want = [0.0, 3.0, 5.0, 9.0].iter().position(|v| v == x).unwrap() as f32;
        assert_eq!(*y, want);
    }
    let json = plan.to_json();
    assert!(
        json.contains("remap_labels") && json.contains("\"9\": 3"),
        "{json}"
    );
    // Bad mappings are refused with the transform named.
    for bad in [
        r#"{"type": "remap_labels", "mapping": {"x": 1}}"#,
        r#"{"type": "remap_labels", "mapping": {"1": 5000000000}}"#,
    ] {
        let e = refused(bad);
        assert!(e.contains("remap_labels"), "{bad}: {e}");
    }
}
