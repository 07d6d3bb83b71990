//! Bad input gets a clear error that names the problem (library and CLI); no partial output file.

mod common;
use common::*;
use std::process::Command;
use voxaug::{io, Executor, Grid, Kind, Pipeline, Subject};

fn err_of<T: std::fmt::Debug>(r: voxaug::Result<T>) -> String {
    r.unwrap_err().to_string()
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .args(args)
        .env("VOXAUG_DEVICE", "cpu")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn truncated_and_non_nifti_files() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(data("anatomical.nii")).unwrap();
    let t = dir.path().join("trunc.nii");
    std::fs::write(&t, &full[..full.len() / 2]).unwrap();
    let e = err_of(io::read_volume(&t, Kind::Image));
    assert!(e.contains("truncated") && e.contains("trunc.nii"), "{e}");
    let short = dir.path().join("short.nii");
    std::fs::write(&short, &full[..100]).unwrap();
    assert!(err_of(io::read_volume(&short, Kind::Image)).contains("too short"));
    let gz = dir.path().join("cut.nii.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &full).unwrap();
    let z = enc.finish().unwrap();
    std::fs::write(&gz, &z[..z.len() / 2]).unwrap();
    assert!(err_of(io::read_volume(&gz, Kind::Image)).contains("gzip"));
    let txt = dir.path().join("notes.nii");
    std::fs::write(&txt, "hello, this is not a volume".repeat(20)).unwrap();
    let e = err_of(io::read_volume(&txt, Kind::Image));
    assert!(e.contains("not a NIfTI-1 file"), "{e}");
    let e = err_of(io::read_volume(dir.path().join("absent.nii"), Kind::Image));
    assert!(e.contains("absent.nii"), "{e}");
    let e = err_of(io::read_volume(data("example_nifti2.nii.gz"), Kind::Image));
    assert!(e.contains("4D volume with 2 frames"), "{e}");
    let e = err_of(io::read_volume(data("example4d.nii.gz"), Kind::Image));
    assert!(e.contains("frames"), "{e}");
}

#[test]
fn zero_or_nan_spacing_is_refused() {
    let g = Grid::with_spacing([3, 3, 3], [1.0; 3]).unwrap();
    let v = image_from(&g, |i, _, _| i as f32);
    let bytes = io::nifti::encode(&v, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (what, val) in [("zero", 0.0f32), ("NaN", f32::NAN)] {
        let mut b = bytes.clone();
        b[254..256].copy_from_slice(&0i16.to_le_bytes()); // sform_code = 0: geometry from the qform
        b[84..88].copy_from_slice(&val.to_le_bytes()); // pixdim[2]
        let p = dir.path().join(format!("{what}.nii"));
        std::fs::write(&p, &b).unwrap();
        let e = err_of(io::read_volume(&p, Kind::Image));
        assert!(
            e.contains("spacing") && e.contains(&format!("{what}.nii")),
            "{e}"
        );
        // A zero column in the sform is refused too.
        let mut b = bytes.clone();
        for o in [280usize, 296, 312] {
            b[o + 4..o + 8].copy_from_slice(&val.to_le_bytes());
        }
        std::fs::write(&p, &b).unwrap();
        let e = err_of(io::read_volume(&p, Kind::Image));
        assert!(e.contains("spacing") || e.contains("NaN"), "{e}");
    }
    assert!(err_of(Grid::with_spacing([2, 2, 2], [1.0, 0.0, 1.0])).contains("spacing"));
}

#[test]
fn nan_voxels_are_refused_by_operations_unless_nan_to_num_comes_first() {
    let g = Grid::with_spacing([2, 2, 2], [1.0; 3]).unwrap();
    let mut d = vec![1.0; 8];
    d[3] = f32::NAN;
    d[5] = f32::INFINITY;
    // Images may hold them (files from SPM do); label maps may not.
    let img = voxaug::Volume::image(d.clone(), g.clone()).unwrap();
    assert!(err_of(voxaug::Volume::label(d, g.clone())).contains("NaN"));
    let s = Subject::new(vec![img], vec![]).unwrap();
    let t = |json: &str| {
        Pipeline::from_json(&format!("{{\"transforms\": [{json}]}}"))
            .unwrap()
            .fixed_transforms()
            .unwrap()
    };
    for ex in [cpu(), gpu()] {
        // The CPU scans the input in these ops' statistics pass; every op refuses alike.
        for op in [
            r#"{"type": "zscore"}"#,
            r#"{"type": "zscore", "mask": "nonzero"}"#,
            r#"{"type": "minmax"}"#,
            r#"{"type": "percentile_clip", "low": 1, "high": 99}"#,
            r#"{"type": "flip", "axes": [0]}"#,
        ] {
            let e = err_of(ex.apply(&s, &t(op)));
            assert!(
                e.contains("2 NaN or infinite") && e.contains("nan_to_num"),
                "{op}: {e}"
            );
            // A caller's bound that is not finite (the loader's, from `largest_abs`) or none at all
            // makes the shared path scan and refuse alike.
            let shared = std::sync::Arc::new(s.clone());
            let largest = voxaug::exec::largest_abs(&shared);
            assert!(!largest.is_finite());
            for bound in [Some(largest), None] {
                let e = err_of(ex.apply_shared(&shared, &t(op), bound));
                assert!(e.contains("2 NaN or infinite"), "{op}, {bound:?}: {e}");
            }
        }
        let ok = ex
            .apply(
                &s,
                &t(r#"{"type": "nan_to_num", "value": -1}, {"type": "flip", "axes": [0]}"#),
            )
            .unwrap();
        assert!(ok.images[0].values().iter().all(|x| x.is_finite()));
        assert_eq!(
            ok.images[0].values().iter().filter(|&&x| x == -1.0).count(),
            2
        );
        let min = ex
            .apply(&s, &t(r#"{"type": "nan_to_num", "value": "min"}"#))
            .unwrap();
        assert!(min.images[0].values().iter().all(|&x| x == 1.0));
        let late = err_of(ex.apply(
            &s,
            &t(r#"{"type": "flip", "axes": [0]}, {"type": "nan_to_num"}"#),
        ));
        assert!(late.contains("must come first"), "{late}");
    }
}

#[test]
fn pipelines_of_copies_refuse_only_the_nan_voxels_they_keep() {
    // NaN on the plane i = 1 (SPM's NaN outside the brain): a crop that cuts it away needs no
    // nan_to_num; one that keeps part of it, a pad and a flip keep what they keep and are refused.
    let g = Grid::with_spacing([12, 10, 8], [1.0; 3]).unwrap();
    let d: Vec<f32> = (0..12 * 10 * 8)
        .map(|n| if n % 12 == 1 { f32::NAN } else { n as f32 })
        .collect();
    let img = voxaug::Volume::image(d, g.clone()).unwrap();
    let lab = voxaug::Volume::label((0..12 * 10 * 8).map(|n| (n % 3) as f32).collect(), g).unwrap();
    let s = Subject::new(vec![img], vec![lab]).unwrap();
    let t = |json: &str| {
        Pipeline::from_json(&format!("{{\"transforms\": [{json}]}}"))
            .unwrap()
            .fixed_transforms()
            .unwrap()
    };
    let cut = t(r#"{"type": "crop", "margins": [[2, 0], [0, 0], [0, 0]]}"#);
    // The same crop of the image with its NaN replaced: where it keeps nothing replaced, the same.
    let clean = t(
        r#"{"type": "nan_to_num", "value": -7}, {"type": "crop", "margins": [[2, 0], [0, 0], [0, 0]]}"#,
    );
    let want = cpu().apply(&s, &clean).unwrap();
    assert!(want.images[0].values().iter().all(|&x| x != -7.0));
    let shared = std::sync::Arc::new(s.clone());
    for ex in [cpu(), gpu()] {
        for out in [
            ex.apply(&s, &cut).unwrap(),
            ex.apply_owned(s.clone(), &cut).unwrap(),
            ex.apply_shared(&shared, &cut, None).unwrap(),
        ] {
            assert_eq!(out.images[0].values(), want.images[0].values());
            assert_eq!(out.labels[0].data, want.labels[0].data);
        }
        for (op, kept) in [
            // Margin 1 keeps i = 1 on the rows it keeps: 8 x 6 of them.
            (r#"{"type": "crop", "margins": 1}"#, 48),
            (r#"{"type": "pad", "margins": 2, "fill": 3}"#, 80),
            (r#"{"type": "flip", "axes": [0, 2]}"#, 80),
            (
                r#"{"type": "crop", "margins": [[1, 0], [0, 0], [0, 0]]}, {"type": "flip", "axes": [1]}"#,
                80,
            ),
            // A crop with an edge pad on another axis (rows repeated: 12 x 8): a copy still.
            (
                r#"{"type": "crop_or_pad", "size": [11, 12, 8], "fill": "edge"}"#,
                96,
            ),
        ] {
            for e in [
                err_of(ex.apply(&s, &t(op))),
                err_of(ex.apply_owned(s.clone(), &t(op))),
                err_of(ex.apply_shared(&shared, &t(op), None)),
            ] {
                assert!(
                    e.contains(&format!("image 0 has {kept} NaN or infinite"))
                        && e.contains("nan_to_num"),
                    "{op}: {e}"
                );
            }
        }
        // Arithmetic on the values still needs every input voxel finite.
        let e = err_of(ex.apply(&s, &t(r#"{"type": "rotate", "degrees": [0, 0, 90]}"#)));
        assert!(e.contains("80 NaN or infinite"), "{e}");
    }
}

#[test]
fn an_output_past_the_space_allowed_is_an_error_before_any_byte() {
    // A 1 MiB file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) stands for a full disk: reserving the
    // output's blocks fails (EFBIG, as ENOSPC would), the error names the output, and neither it nor
    // its temporary file is left; the input is untouched.
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = Grid::with_spacing([96, 96, 40], [1.0; 3]).unwrap();
    let input = d.join("in.nii");
    io::write_volume(&input, &image_from(&g, |i, j, k| (i + j + k) as f32)).unwrap();
    let before = std::fs::read(&input).unwrap();
    let plan = d.join("p.json");
    std::fs::write(&plan, r#"{"transforms": [{"type": "flip", "axes": [0]}]}"#).unwrap();
    // Patches: the first (constant) compresses to little and is written, the second (noise) is past
    // the limit; the first is removed again.
    let cut = d.join("cut.nii");
    // splitmix64's finaliser: bytes that do not compress.
    let hash = |i: usize, j: usize, k: usize| {
        let mut z = (i + 128 * (j + 128 * k)) as u64;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32
    };
    let cg = Grid::with_spacing([128, 64, 64], [1.0; 3]).unwrap();
    io::write_volume(
        &cut,
        &image_from(&cg, |i, j, k| if i < 64 { 1.0 } else { hash(i, j, k) }),
    )
    .unwrap();
    // Patches of an image and a label map: the image's cut is written, the label map's (noise) is past
    // the limit; the image's is removed again.
    let (pimg, plab) = (d.join("pimg.nii"), d.join("plab.nii"));
    let pg = Grid::with_spacing([128, 128, 128], [1.0; 3]).unwrap();
    io::write_volume(&pimg, &image_from(&pg, |_, _, _| 1.0)).unwrap();
    io::write_volume(&plab, &label_from(&pg, |i, j, k| hash(i, j, k) % 256.0)).unwrap();
    // A label map small enough to be written: apply writes it only if the image is written too.
    let label = d.join("lab.nii");
    io::write_volume(&label, &label_from(&g, |i, _, _| (i % 3) as f32)).unwrap();
    let out = d.join("out");
    let converted = d.join("c.nii");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    for args in [
        vec![
            "apply".into(),
            s(&plan),
            "--image".into(),
            s(&input),
            "--out".into(),
            s(&out),
        ],
        vec![
            "apply".into(),
            s(&plan),
            "--image".into(),
            s(&input),
            "--label".into(),
            s(&label),
            "--out".into(),
            s(&out),
        ],
        vec!["convert".into(), s(&input), s(&converted)],
        vec![
            "patches".into(),
            s(&pimg),
            "--label".into(),
            s(&plab),
            "--size".into(),
            "128,128,128".into(),
            "--out".into(),
            s(&out),
        ],
        vec![
            "patches".into(),
            s(&cut),
            "--size".into(),
            "64,64,64".into(),
            "--out".into(),
            s(&out),
        ],
        // The resampled moving image is past the limit: no transform file is left either.
        vec![
            "register".into(),
            s(&input),
            s(&input),
            "--out".into(),
            s(&out),
            "--iterations".into(),
            "3".into(),
        ],
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_voxaug"));
        c.args(&args).env("VOXAUG_DEVICE", "cpu");
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 1 << 20,
                    rlim_max: 1 << 20,
                };
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("too large") && (err.contains(&s(&out)) || err.contains(&s(&converted))),
            "{args:?}: {err}"
        );
        let left: Vec<_> = walk(d)
            .into_iter()
            .filter(|p| ![&input, &plan, &label, &cut, &pimg, &plab].contains(&p))
            .collect();
        assert!(left.is_empty() && !out.exists(), "{args:?} left {left:?}");
        assert_eq!(std::fs::read(&input).unwrap(), before);
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

#[test]
fn pipeline_errors_name_the_problem() {
    let cases = [
        (
            r#"{"transforms": [{"type": "rotat", "degrees": 3}]}"#,
            "unknown transform type `rotat`; did you mean `rotate`?",
        ),
        (
            r#"{"transforms": [{"type": "RandFlipd"}]}"#,
            "did you mean `random_flip` (MONAI's RandFlip)?",
        ),
        (
            r#"{"transforms": [{"type": "rotate", "degres": 3}]}"#,
            "unknown field `degres`",
        ),
        (
            r#"{"transforms": [{"type": "rotate"}]}"#,
            "missing field `degrees`",
        ),
        (
            r#"{"transforms": [{"type": "clip", "min": 5, "max": 1}]}"#,
            "min 5 > max 1",
        ),
        (
            r#"{"transforms": [{"type": "percentile_clip", "low": 1, "high": 101}]}"#,
            "percentile_clip",
        ),
        (
            r#"{"transforms": [{"type": "zoom", "factors": [1, 0, 1]}]}"#,
            "zoom.factors must be > 0",
        ),
        (
            r#"{"transforms": [{"type": "flip", "axes": [3]}]}"#,
            "axis 3",
        ),
        (
            r#"{"transforms": [{"type": "crop", "size": [1, 2, 3]}]}"#,
            "crop takes either",
        ),
        (r#"{"transforms": [], "sed": 1}"#, "unknown field `sed`"),
        (
            r#"{"transforms": [{"type": "rotate", "degrees": [1, 2]}]}"#,
            "list of 3 numbers",
        ),
        (
            r#"{"transforms": [{"type": "rotate", "degrees": 1, "fill": "mean"}]}"#,
            "fill must be",
        ),
        ("{not json", "not valid JSON"),
    ];
    for (text, want) in cases {
        let e = err_of(Pipeline::from_json(text));
        assert!(e.contains(want), "{text}: {e}");
    }
    let e = err_of(Pipeline::from_json(
        r#"{"transforms": [{"type": "clip", "min": 0, "max": 1}, {"type": "nope"}]}"#,
    ));
    assert!(e.contains("transforms[1]"), "{e}");
}

#[test]
fn crop_outside_and_mismatched_grids() {
    let g = Grid::with_spacing([10, 10, 10], [1.0; 3]).unwrap();
    let s = Subject::new(vec![image_from(&g, |_, _, _| 1.0)], vec![]).unwrap();
    let p = Pipeline::from_json(
        r#"{"transforms": [{"type": "crop", "start": [5, 0, 0], "size": [6, 2, 2]}]}"#,
    )
    .unwrap();
    let e = err_of(Executor::Cpu.apply(&s, &p.fixed_transforms().unwrap()));
    assert!(
        e.contains("does not fit") && e.contains("[10, 10, 10]"),
        "{e}"
    );
    let p = Pipeline::from_json(r#"{"transforms": [{"type": "center_crop", "size": [11, 2, 2]}]}"#)
        .unwrap();
    assert!(
        err_of(Executor::Cpu.apply(&s, &p.fixed_transforms().unwrap()))
            .contains("larger than the volume")
    );
    let g2 = Grid::with_spacing([10, 10, 10], [1.0, 1.0, 2.0]).unwrap();
    let e = err_of(Subject::new(
        vec![image_from(&g, |_, _, _| 1.0)],
        vec![label_from(&g2, |_, _, _| 1.0)],
    ));
    assert!(e.contains("different grid"), "{e}");
}

#[test]
fn cli_errors_exit_nonzero_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let anat_path = data("anatomical.nii");
    let anat = anat_path.to_str().unwrap();
    let good = d.join("p.json");
    std::fs::write(&good, r#"{"transforms": [{"type": "flip", "axes": [0]}]}"#).unwrap();
    let bad = d.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"transforms": [{"type": "flip", "axes": [0]}, {"type": "twist"}]}"#,
    )
    .unwrap();
    let big = d.join("big.json");
    std::fs::write(
        &big,
        r#"{"transforms": [{"type": "crop", "start": [0, 0, 0], "size": [40, 5, 5]}]}"#,
    )
    .unwrap();
    let trunc = d.join("t.nii");
    std::fs::write(&trunc, &std::fs::read(anat).unwrap()[..5000]).unwrap();
    let other = d.join("other.nii");
    let g = Grid::with_spacing([4, 4, 4], [1.0; 3]).unwrap();
    io::write_volume(&other, &label_from(&g, |_, _, _| 1.0)).unwrap();
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let nope = d.join("nope.nii");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["apply", bad.to_str().unwrap(), "--image", anat, "--out", o],
            "unknown transform type `twist`",
        ),
        (
            vec!["apply", big.to_str().unwrap(), "--image", anat, "--out", o],
            "does not fit",
        ),
        (
            vec![
                "apply",
                good.to_str().unwrap(),
                "--image",
                trunc.to_str().unwrap(),
                "--out",
                o,
            ],
            "truncated",
        ),
        (
            vec![
                "apply",
                good.to_str().unwrap(),
                "--image",
                anat,
                "--label",
                other.to_str().unwrap(),
                "--out",
                o,
            ],
            "different grid",
        ),
        (
            vec![
                "apply",
                good.to_str().unwrap(),
                "--image",
                anat,
                "--out",
                o,
                "--device",
                "tpu",
            ],
            "unknown device",
        ),
        (vec!["info", nope.to_str().unwrap()], "nope.nii"),
    ];
    for (args, want) in cases {
        let (code, _, err) = cli(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(
            !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
            "{args:?} wrote output"
        );
    }
    // Output over an input is refused, and the input stays as it was.
    let copy = d.join("in.nii");
    std::fs::copy(anat, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let (code, _, err) = cli(&[
        "apply",
        good.to_str().unwrap(),
        "--image",
        copy.to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("overwrite an input"), "{err}");
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

#[test]
fn gpu_without_adapter_is_a_clear_error_and_auto_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.json");
    std::fs::write(&p, r#"{"transforms": [{"type": "flip", "axes": [0]}]}"#).unwrap();
    let anat = data("anatomical.nii");
    let run = |device: &str, out: &str| {
        Command::new(env!("CARGO_BIN_EXE_voxaug"))
            .args([
                "apply",
                p.to_str().unwrap(),
                "--image",
                anat.to_str().unwrap(),
                "--out",
            ])
            .arg(dir.path().join(out))
            .args(["--device", device])
            // No Vulkan driver manifest: the loader finds no adapter.
            .env("VK_ICD_FILENAMES", "/nonexistent.json")
            .env("VK_DRIVER_FILES", "/nonexistent.json")
            // A cache folder of this test's own: the fallback notice is shown once per user.
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .output()
            .unwrap()
    };
    let o = run("gpu", "g");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "gpu without adapter must fail");
    assert!(
        err.contains("no GPU adapter") && err.contains("mesa-vulkan-drivers"),
        "{err}"
    );
    assert!(!dir.path().join("g").exists());
    let o = run("auto", "a");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("running on the CPU"), "{err}");
    assert!(dir.path().join("a/anatomical.nii").exists());
    let o = run("auto", "a2");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && !err.contains("running on the CPU"),
        "shown once: {err}"
    );
    let (code, _, err) = cli(&[
        "apply",
        p.to_str().unwrap(),
        "--image",
        anat.to_str().unwrap(),
        "--out",
        dir.path().join("x").to_str().unwrap(),
        "--device",
        "gpu",
        "--adapter",
        "no-such-gpu",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("no GPU adapter matches `no-such-gpu`"),
        "{err}"
    );
}

#[test]
fn volume_over_gpu_limits_is_refused_with_the_limit() {
    let gpu = voxaug::exec::gpu(None).expect("GPU tests need an adapter (CI installs lavapipe)");
    let voxaug::Executor::Gpu(ctx) = &gpu else {
        unreachable!()
    };
    let max = ctx.limits.max_texture_dimension_3d as usize;
    let g = Grid::with_spacing([max + 1, 1, 1], [1.0; 3]).unwrap();
    let s = Subject::new(vec![image_from(&g, |i, _, _| i as f32)], vec![]).unwrap();
    let t = Pipeline::from_json(r#"{"transforms": [{"type": "flip", "axes": [0]}]}"#)
        .unwrap()
        .fixed_transforms()
        .unwrap();
    let e = err_of(gpu.apply(&s, &t));
    assert!(
        e.contains("limit exceeded") && e.contains(&format!("{max}")),
        "{e}"
    );
    // The CPU path has no such limit.
    assert!(Executor::Cpu.apply(&s, &t).is_ok());
}

#[test]
fn elastic_and_bench_and_demo_arguments_are_checked() {
    for (text, want) in [
        (
            r#"{"transforms": [{"type": "elastic", "sigma": 0, "alpha": 1, "seed": 1}]}"#,
            "elastic.sigma must be within",
        ),
        (
            r#"{"transforms": [{"type": "elastic_bspline", "control_points": [3, 7, 7], "max_displacement_mm": 5, "seed": 1}]}"#,
            "control_points must be within 4..=64",
        ),
        (
            r#"{"transforms": [{"type": "elastic", "sigma": [5, 1], "alpha": 1}]}"#,
            "range min 5 > max 1",
        ),
        (
            r#"{"transforms": [{"type": "bias_field", "order": 2, "coefficients": [1, 2]}]}"#,
            "needs 10 coefficients",
        ),
    ] {
        let e = err_of(Pipeline::from_json(text));
        assert!(e.contains(want), "{text}: {e}");
    }
    let (code, _, err) = cli(&["bench", "--ops", "twirl", "--device", "cpu"]);
    assert!(
        code != 0 && err.contains("unknown bench op `twirl`"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let (code, _, err) = cli(&[
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--shape",
        "2,64,64",
        "--device",
        "cpu",
    ]);
    assert!(
        code != 0 && err.contains("--shape takes three sizes"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A bare JSON list of transforms is the pipeline `{"transforms": [...]}` (seed 0), as documented.
#[test]
fn a_bare_list_is_a_pipeline() {
    let list = r#"[{"type": "flip", "axes": [0]}, {"type": "zscore"}]"#;
    let obj = format!("{{\"seed\": 0, \"transforms\": {list}}}");
    assert_eq!(
        voxaug::Pipeline::from_json(list).unwrap(),
        voxaug::Pipeline::from_json(&obj).unwrap()
    );
    let e = voxaug::Pipeline::from_json("3").unwrap_err().to_string();
    assert!(e.contains("bare list"), "{e}");
}
