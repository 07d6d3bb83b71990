//! NIfTI-1 reading and writing: values, types, affines (sform and qform), orientation, atomic writes.

mod common;
use common::*;
use voxaug::io::{self, nifti::header_affine};
use voxaug::{DType, Grid, Kind, Volume};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn anatomical_reads_with_geometry_and_las_orientation() {
    let v = io::read_volume(data("anatomical.nii"), Kind::Image).unwrap();
    assert_eq!(v.grid.shape, [33, 41, 25]);
    assert_eq!(v.dtype, DType::I16);
    assert_eq!(v.grid.orientation(), "LAS");
    assert_eq!(v.grid.spacing(), [2.0, 2.0, 2.0]);
    let st = v.stats();
    assert_eq!((st.min, st.max), (-610.0, 30393.0));
}

#[test]
fn round_trip_keeps_values_dtype_and_affine() {
    let v = io::read_volume(data("anatomical.nii"), Kind::Image).unwrap();
    let dir = tmp();
    for name in ["a.nii", "a.nii.gz"] {
        let p = dir.path().join(name);
        io::write_volume(&p, &v).unwrap();
        let w = io::read_volume(&p, Kind::Image).unwrap();
        assert_eq!(w.data, v.data, "{name}");
        assert_eq!(w.dtype, DType::I16, "{name}");
        assert_eq!(w.grid, v.grid, "{name}");
    }
}

#[test]
fn oblique_affine_round_trips_through_sform_and_qform() {
    let g = Grid::new([7, 6, 5], oblique_affine()).unwrap();
    let v = image_from(&g, |i, j, k| (i * j) as f32 + 0.25 * k as f32);
    let dir = tmp();
    let p = dir.path().join("o.nii.gz");
    io::write_volume(&p, &v).unwrap();
    let w = io::read_volume(&p, Kind::Image).unwrap();
    assert_eq!(w.dtype, DType::F32);
    assert_eq!(w.data, v.data);
    // The qform alone gives the same affine (readers that ignore the sform see the same geometry).
    let bytes = {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let mut h = nifti::NiftiHeader::from_reader(std::io::Cursor::new(&bytes)).unwrap();
    assert_eq!((h.sform_code, h.qform_code), (1, 1));
    h.sform_code = 0;
    let q = header_affine(&h).unwrap();
    for r in 0..3 {
        for c in 0..4 {
            assert!(
                (q[r][c] - g.affine[r][c]).abs() < 1e-4,
                "qform {q:?} vs {:?}",
                g.affine
            );
        }
    }
    // A left-handed affine (LAS) needs qfac = -1.
    let las = io::read_volume(data("anatomical.nii"), Kind::Image).unwrap();
    let p2 = dir.path().join("las.nii");
    io::write_volume(&p2, &las).unwrap();
    let mut h2 = nifti::NiftiHeader::from_file(&p2).unwrap();
    assert_eq!(h2.pixdim[0], -1.0);
    h2.sform_code = 0;
    let q2 = header_affine(&h2).unwrap();
    assert!((0..3).all(|r| (0..4).all(|c| (q2[r][c] - las.grid.affine[r][c]).abs() < 1e-4)));
}

#[test]
fn label_maps_keep_their_integer_type_and_images_become_float_when_needed() {
    let g = Grid::with_spacing([4, 5, 6], [1.0, 1.0, 2.0]).unwrap();
    let lab = label_from(&g, |i, _, _| (i * 60) as f32);
    assert_eq!(lab.dtype, DType::U8);
    let dir = tmp();
    let p = dir.path().join("l.nii");
    io::write_volume(&p, &lab).unwrap();
    let back = io::read_volume(&p, Kind::Label).unwrap();
    assert_eq!(back.dtype, DType::U8);
    assert_eq!(back.data, lab.data);
    // An int16 image whose values became fractional is written as float32, losslessly.
    let mut v = io::read_volume(data("anatomical.nii"), Kind::Image).unwrap();
    v.image_data_mut().unwrap()[0] = 0.5;
    let p2 = dir.path().join("f.nii");
    io::write_volume(&p2, &v).unwrap();
    let back = io::read_volume(&p2, Kind::Image).unwrap();
    assert_eq!(back.dtype, DType::F32);
    assert_eq!(back.data, v.data);
}

#[test]
fn every_integer_and_float_type_reads_and_scaling_is_applied() {
    let g = Grid::with_spacing([3, 2, 2], [1.0; 3]).unwrap();
    let dir = tmp();
    for dt in [
        DType::U8,
        DType::I8,
        DType::U16,
        DType::I16,
        DType::U32,
        DType::I32,
        DType::F32,
    ] {
        let vals: Vec<f32> = (0..12)
            .map(|x| {
                if dt == DType::I8 || dt == DType::I16 || dt == DType::I32 {
                    x as f32 - 5.0
                } else {
                    x as f32 * 3.0
                }
            })
            .collect();
        let mut v = Volume::new(vals.clone(), g.clone(), Kind::Image).unwrap();
        v.dtype = dt;
        let p = dir.path().join(format!("{}.nii", dt.name()));
        io::write_volume(&p, &v).unwrap();
        let back = io::read_volume(&p, Kind::Image).unwrap();
        assert_eq!(back.dtype, dt);
        assert_eq!(*back.values(), vals[..]);
        // scl_slope = 2, scl_inter = -1 (header bytes 112..120) -> value * 2 - 1, read as float.
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[112..116].copy_from_slice(&2.0f32.to_le_bytes());
        bytes[116..120].copy_from_slice(&(-1.0f32).to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let scaled = io::read_volume(&p, Kind::Image).unwrap();
        assert_eq!(
            scaled.values().to_vec(),
            vals.iter().map(|x| x * 2.0 - 1.0).collect::<Vec<_>>()
        );
    }
}

#[test]
fn big_endian_files_read() {
    // Hand-made big-endian int16 file: header fields and data in big-endian order.
    let g = Grid::with_spacing([2, 2, 1], [1.0; 3]).unwrap();
    let mut v = Volume::new(vec![1.0, -2.0, 300.0, 4.0], g, Kind::Image).unwrap();
    v.dtype = DType::I16;
    let le = io::nifti::encode(&v, false).unwrap();
    let mut be = le.clone();
    // Swap every header field by its width (i32/f32: 4 bytes, i16: 2 bytes).
    let fields4 = [
        0usize, 32, 56, 60, 64, 108, 112, 116, 124, 128, 132, 136, 140, 144,
    ];
    let mut four: Vec<usize> = fields4.to_vec();
    four.extend((76..108).step_by(4));
    four.extend((256..328).step_by(4));
    let mut two: Vec<usize> = vec![36, 68, 70, 72, 74, 120, 252, 254];
    two.extend((40..56).step_by(2));
    for o in four {
        be[o..o + 4].reverse();
    }
    for o in two {
        be[o..o + 2].reverse();
    }
    for o in (352..be.len()).step_by(2) {
        be[o..o + 2].reverse();
    }
    let dir = tmp();
    let p = dir.path().join("be.nii");
    std::fs::write(&p, &be).unwrap();
    let back = io::read_volume(&p, Kind::Image).unwrap();
    assert_eq!(back.data, v.data);
    assert_eq!(back.grid, v.grid);
}

#[test]
fn write_is_atomic_and_leaves_no_temporary_files() {
    let v = io::read_volume(data("anatomical.nii"), Kind::Image).unwrap();
    let dir = tmp();
    let p = dir.path().join("x.nii.gz");
    io::write_volume(&p, &v).unwrap();
    io::write_volume(&p, &v).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["x.nii.gz".to_string()]);
    // Unwritable destination: error, nothing left behind.
    let bad = dir.path().join("missing-folder").join("y.nii");
    let e = io::write_volume(&bad, &v).unwrap_err().to_string();
    assert!(e.contains("missing-folder"), "{e}");
}

/// Uncompressed voxel data of 8 MiB and more is read by positioned reads on several threads: the
/// values equal the gzip (streamed) read's, and a file cut short is still a clear "truncated" error.
#[test]
fn large_uncompressed_files_read_in_parallel_and_refuse_truncation() {
    let dir = tmp();
    let g = Grid::with_spacing([161, 128, 121], [1.0, 1.2, 0.9]).unwrap();
    let image = image_from(&g, |i, j, k| {
        (i * 7 + j * 13 + k * 31) as f32 * 0.25 - 100.0
    });
    let gl = Grid::with_spacing([256, 256, 131], [1.0; 3]).unwrap();
    let label = label_from(&gl, |i, j, k| ((i / 9 + j / 7 + k / 5) % 6) as f32);
    for (v, kind) in [(&image, Kind::Image), (&label, Kind::Label)] {
        let (raw, gz) = (dir.path().join("v.nii"), dir.path().join("v.nii.gz"));
        io::write_volume(&raw, v).unwrap();
        io::write_volume(&gz, v).unwrap();
        let bytes = std::fs::read(&raw).unwrap();
        assert!(
            bytes.len() > 8 << 20,
            "the data must take the parallel path"
        );
        let (a, b) = (
            io::read_volume(&raw, kind).unwrap(),
            io::read_volume(&gz, kind).unwrap(),
        );
        assert_eq!(a.data, v.data);
        assert_eq!(a.data, b.data);
        assert_eq!(a.dtype, v.dtype);
        // The converting path (bytes read raw, then to f32): a uint8 file read as an image.
        let as_image = io::read_volume(&raw, Kind::Image).unwrap();
        assert_eq!(as_image.values(), v.values());
        assert_eq!(as_image.data.dtype(), DType::F32, "images are held as f32");
        // Cut inside the last chunk and inside an early one.
        for keep in [bytes.len() - 3, 352 + (5 << 20) + 17] {
            let cut = dir.path().join("cut.nii");
            std::fs::write(&cut, &bytes[..keep]).unwrap();
            let e = io::read_volume(&cut, kind).unwrap_err().to_string();
            let got = format!("truncated: {} bytes", keep - 352);
            assert!(e.contains(&got) && e.contains("cut.nii"), "{e}");
        }
    }
}
