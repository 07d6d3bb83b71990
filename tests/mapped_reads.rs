//! Mapped reads (`voxaug::io::set_mapped_reads`, on in the `voxaug` command line): large uncompressed
//! NIfTI files whose voxels are stored as they are held come back as the file's pages, with the same
//! values as a copied read, and writing to them never reaches the file. One test, because the setting
//! is per process and the cases switch it.

use voxaug::voxels::Voxels;
use voxaug::{io, Executor, Grid, Kind, Pipeline, Subject, Volume};

fn grid(shape: [usize; 3]) -> Grid {
    let mut a = voxaug::grid::IDENTITY;
    a[2][2] = 1.2;
    a[0][3] = -3.0;
    Grid::new(shape, a).unwrap()
}

/// Voxel `i`'s value pattern, varied enough that a shifted or swapped read shows.
fn pattern(i: usize) -> u32 {
    (i as u32).wrapping_mul(2_654_435_761) >> 7
}

fn read(path: &std::path::Path, kind: Kind, mapped: bool) -> Volume {
    io::set_mapped_reads(mapped);
    let v = io::read_volume(path, kind).unwrap();
    io::set_mapped_reads(false);
    v
}

#[test]
fn mapped_reads_equal_copied_reads_and_leave_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    // 8 MiB of voxels or more in each: a float32 image and label maps of every integer type.
    let (s4, s2, s1) = ([128, 128, 128], [128, 128, 256], [256, 256, 128]);
    let n = |s: [usize; 3]| s.iter().product::<usize>();
    let image = Volume::image(
        (0..n(s4))
            .map(|i| (pattern(i) % 4001) as f32 * 0.25 - 300.0)
            .collect(),
        grid(s4),
    )
    .unwrap();
    let labels: Vec<(&str, Voxels, [usize; 3])> = vec![
        (
            "u8.nii",
            (0..n(s1))
                .map(|i| pattern(i) as u8)
                .collect::<Vec<u8>>()
                .into(),
            s1,
        ),
        (
            "i8.nii",
            (0..n(s1))
                .map(|i| pattern(i) as i8)
                .collect::<Vec<i8>>()
                .into(),
            s1,
        ),
        (
            "u16.nii",
            (0..n(s2))
                .map(|i| pattern(i) as u16)
                .collect::<Vec<u16>>()
                .into(),
            s2,
        ),
        (
            "i16.nii",
            (0..n(s2))
                .map(|i| pattern(i) as i16)
                .collect::<Vec<i16>>()
                .into(),
            s2,
        ),
        (
            "u32.nii",
            (0..n(s4)).map(pattern).collect::<Vec<u32>>().into(),
            s4,
        ),
        (
            "i32.nii",
            (0..n(s4))
                .map(|i| pattern(i) as i32 - 9)
                .collect::<Vec<i32>>()
                .into(),
            s4,
        ),
    ];
    io::write_volume(at("image.nii"), &image).unwrap();
    let mut files = vec![(at("image.nii"), Kind::Image)];
    for (name, data, shape) in labels {
        let v = Volume::from_voxels(data, grid(shape), Kind::Label).unwrap();
        io::write_volume(at(name), &v).unwrap();
        files.push((at(name), Kind::Label));
    }
    for (path, kind) in &files {
        let copied = read(path, *kind, false);
        let mapped = read(path, *kind, true);
        assert!(
            !copied.data.is_mapped(),
            "{path:?}: mapped with the setting off"
        );
        assert!(mapped.data.is_mapped(), "{path:?}: not mapped");
        assert_eq!(mapped.data, copied.data, "{path:?}");
        assert_eq!(mapped.grid, copied.grid, "{path:?}");
        assert_eq!(mapped.dtype, copied.dtype, "{path:?}");
    }

    // Writing to a mapped volume copies the pages it writes: the file keeps its bytes.
    let before = std::fs::read(at("image.nii")).unwrap();
    let mut m = read(&at("image.nii"), Kind::Image, true);
    m.image_data_mut().unwrap()[..1000].fill(7.5);
    assert_eq!(m.image_data().unwrap()[999], 7.5);
    assert_eq!(std::fs::read(at("image.nii")).unwrap(), before);

    // Owned pipelines (flip, crop and pad, which run in the buffers of copied inputs, a rotation,
    // intensity ops first or later) on mapped inputs: the same as on copied ones, computed into fresh
    // buffers (writing into a mapping would copy it page by page), and the files untouched.
    let label_bytes = std::fs::read(at("u16.nii")).unwrap();
    let subject = |mapped: bool| {
        let img = read(&at("image.nii"), Kind::Image, mapped);
        let lab = read(&at("i32.nii"), Kind::Label, mapped);
        Subject::new(vec![img], vec![lab]).unwrap()
    };
    for t in [
        r#"[{"type": "flip", "axes": [0, 2]}]"#,
        r#"[{"type": "crop", "start": [5, 20, 30], "size": [100, 90, 64]}]"#,
        r#"[{"type": "pad", "margins": [[2, 3], [1, 0], [0, 4]], "fill": 7.5}]"#,
        r#"[{"type": "rotate", "degrees": [0, 0, 12]}, {"type": "zscore"}]"#,
        r#"[{"type": "zscore"}, {"type": "flip", "axes": [1]}]"#,
        r#"[{"type": "clip", "min": -100, "max": 200}]"#,
    ] {
        let p = Pipeline::from_json(&format!(r#"{{"transforms": {t}}}"#)).unwrap();
        let ts = p.fixed_transforms().unwrap();
        let want = Executor::Cpu.apply_owned(subject(false), &ts).unwrap();
        let got = Executor::Cpu.apply_owned(subject(true), &ts).unwrap();
        assert_eq!(got.images[0].data, want.images[0].data, "{t}");
        assert_eq!(got.labels[0].data, want.labels[0].data, "{t}");
        assert_eq!(got.images[0].grid, want.images[0].grid, "{t}");
        assert!(
            !got.images[0].data.is_mapped(),
            "{t}: written into the mapping"
        );
        // Intensity ops leave label maps as they are: still the file's pages.
        let spatial = ["flip", "crop", "pad", "rotate"]
            .iter()
            .any(|o| t.contains(o));
        assert_eq!(got.labels[0].data.is_mapped(), !spatial, "{t}");
    }
    assert_eq!(std::fs::read(at("image.nii")).unwrap(), before);
    assert_eq!(std::fs::read(at("u16.nii")).unwrap(), label_bytes);

    // Replacing a mapped file (voxaug's writes rename over it) leaves the mapping on the old data.
    let old = read(&at("u8.nii"), Kind::Label, true);
    let first = old.data.as_bytes()[..64].to_vec();
    let zeros = Volume::from_voxels(
        Voxels::zeroed(voxaug::DType::U8, n(s1)).unwrap(),
        grid(s1),
        Kind::Label,
    )
    .unwrap();
    io::write_volume(at("u8.nii"), &zeros).unwrap();
    assert_eq!(&old.data.as_bytes()[..64], &first[..]);
    assert!(first.iter().any(|&b| b != 0));

    // Not mapped, same values: voxels at an offset that is not a multiple of their size, a small file.
    let mut odd = before.clone();
    odd[108..112].copy_from_slice(&354f32.to_le_bytes());
    odd.splice(352..352, [0u8, 0]);
    std::fs::write(at("odd.nii"), &odd).unwrap();
    let v = read(&at("odd.nii"), Kind::Image, true);
    assert!(!v.data.is_mapped());
    assert_eq!(v.data, read(&at("image.nii"), Kind::Image, false).data);
    let small = Volume::image(vec![1.5; 64 * 64 * 64], grid([64, 64, 64])).unwrap();
    io::write_volume(at("small.nii"), &small).unwrap();
    assert!(!read(&at("small.nii"), Kind::Image, true).data.is_mapped());

    // A file shorter than its header declares is an error, mapped reads or not (never a SIGBUS).
    std::fs::write(at("short.nii"), &before[..before.len() - 4096]).unwrap();
    for mapped in [false, true] {
        io::set_mapped_reads(mapped);
        let e = io::read_volume(at("short.nii"), Kind::Image)
            .unwrap_err()
            .to_string();
        io::set_mapped_reads(false);
        assert!(e.contains("truncated"), "{e}");
    }
}
