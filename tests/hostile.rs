//! Crafted and oversized inputs: each case exits with status 1 and a message naming the problem, never
//! a panic, an abort or a signal, and writes no output. Commands that must stay small in memory run under
//! a virtual-memory limit (`ulimit -v`), so an allocation the header cannot justify fails the test.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Runs the CLI (CPU executor) under an address-space limit of `limit_mb`: (exit code, stderr).
fn cli_limited(args: &[&str], limit_mb: u64) -> (i32, String) {
    let exe = env!("CARGO_BIN_EXE_voxaug");
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {}; exec '{exe}' {}",
            limit_mb * 1024,
            quoted.join(" ")
        ))
        .env("VOXAUG_DEVICE", "cpu")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn cli(args: &[&str]) -> (i32, String) {
    cli_limited(args, 4096)
}

/// Exit code 1 (an error, not a signal or a panic) with `needle` in the message.
fn refused(r: (i32, String), needle: &str) {
    let (code, err) = r;
    assert_eq!(code, 1, "expected a clean error, got exit {code}: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.contains(needle), "message lacks `{needle}`: {err}");
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn dims_whose_product_overflows_are_refused_before_allocation() {
    let d = tempfile::tempdir().unwrap();
    let nrrd = d.path().join("big.nrrd");
    let mut b = b"NRRD0004\ntype: float\ndimension: 3\nsizes: 4611686018427387905 4 1\nencoding: raw\nendian: little\n\n".to_vec();
    b.extend([0u8; 64]);
    write(&nrrd, &b);
    refused(cli(&["info", s(&nrrd)]), "over the limit");
    let pipe = d.path().join("rot.json");
    write(
        &pipe,
        br#"{"transforms": [{"type": "rotate", "degrees": [0, 0, 5]}]}"#,
    );
    let out = d.path().join("out");
    refused(
        cli(&["apply", s(&pipe), "--image", s(&nrrd), "--out", s(&out)]),
        "over the limit",
    );
    assert!(!out.exists(), "no output folder for a refused input");
    // NIfTI-1 with dims 32767^3 (3.5e13 voxels) and a few bytes of data.
    let mut nii = std::fs::read(data("anatomical.nii")).unwrap();
    for a in 1..=3 {
        nii[40 + 2 * a..42 + 2 * a].copy_from_slice(&32767i16.to_le_bytes());
    }
    let big = d.path().join("big.nii");
    write(&big, &nii);
    refused(cli_limited(&["info", s(&big)], 1024), "over the limit");
    // The limit is configurable per command.
    let small = data("anatomical.nii");
    refused(
        cli(&["info", s(&small), "--max-voxels", "1000"]),
        "over the limit of 1000",
    );
}

#[test]
fn a_small_gzip_cannot_inflate_past_its_header() {
    // A valid 33x41x25 int16 header followed by 600 MB of zeros, gzip-compressed to well under 1 MB.
    let d = tempfile::tempdir().unwrap();
    let nii = std::fs::read(data("anatomical.nii")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &nii).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..600 {
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
    }
    let bomb = d.path().join("bomb.nii.gz");
    write(&bomb, &enc.finish().unwrap());
    // Reading inflates only what the header declares: it succeeds within 300 MB of address space.
    let (code, err) = cli_limited(&["info", s(&bomb)], 300);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn detached_nrrd_data_stays_in_its_folder() {
    let d = tempfile::tempdir().unwrap();
    let sub = d.path().join("hdr");
    std::fs::create_dir(&sub).unwrap();
    write(&d.path().join("secret.raw"), &[1u8; 8]);
    for (name, data_file) in [
        ("up.nhdr", "../secret.raw"),
        ("abs.nhdr", "/etc/passwd"),
        ("dev.nhdr", "/dev/zero"),
    ] {
        let h = sub.join(name);
        write(
            &h,
            format!("NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\ndata file: {data_file}\n\n").as_bytes(),
        );
        refused(cli(&["info", s(&h)]), "leaves the header's folder");
    }
    // A link inside the folder to a device is not a regular file.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/dev/zero", sub.join("zero.raw")).unwrap();
        let h = sub.join("link.nhdr");
        write(
            &h,
            b"NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\ndata file: zero.raw\n\n",
        );
        refused(cli(&["info", s(&h)]), "not a regular file");
    }
}

#[test]
fn oversized_outputs_are_refused_before_allocation() {
    let d = tempfile::tempdir().unwrap();
    let img = data("anatomical.nii");
    for (name, json) in [
        (
            "resize",
            r#"{"type": "resize", "shape": [100000, 100000, 100000]}"#,
        ),
        ("pad", r#"{"type": "pad", "margins": 100000}"#),
        (
            "random_resize",
            r#"{"type": "random_resize", "scale": [1000, 1000]}"#,
        ),
        // Sizes whose sums or products wrap around 2^64 (they used to give a small, wrong volume).
        (
            "pad_wrap",
            r#"{"type": "pad", "margins": 9223372036854775808}"#,
        ),
        (
            "resample_tiny",
            r#"{"type": "resample", "spacing": [1e-300, 1, 1]}"#,
        ),
    ] {
        let p = d.path().join(format!("{name}.json"));
        write(&p, format!(r#"{{"transforms": [{json}]}}"#).as_bytes());
        let out = d.path().join(name);
        refused(
            cli_limited(
                &["augment", s(&p), "--image", s(&img), "--out", s(&out)],
                1024,
            ),
            "over the limit",
        );
        assert!(!out.exists(), "{name}: nothing written");
    }
    // Within the voxel limit but past the memory there is: the allocation is refused, not an abort.
    let big = d.path().join("big.json");
    write(
        &big,
        br#"{"transforms": [{"type": "resize", "shape": [1024, 1024, 1024]}]}"#,
    );
    refused(
        cli_limited(
            &[
                "apply",
                s(&big),
                "--image",
                s(&img),
                "--out",
                s(&d.path().join("big")),
            ],
            1024,
        ),
        "out of memory",
    );
    // A crop start near 2^64 wraps start + size to a small number: refused, not a shifted volume.
    for (name, json, needle) in [
        (
            "crop_wrap",
            r#"{"type": "crop", "start": [18446744073709551615, 0, 0], "size": [2, 2, 2]}"#,
            "does not fit",
        ),
        (
            "huge_matrix",
            r#"{"type": "affine", "matrix": [[1e300, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}"#,
            "out of any useful range",
        ),
        (
            "huge_shift",
            r#"{"type": "shift", "mm": [1e300, 0, 0]}"#,
            "out of any useful range",
        ),
    ] {
        let p = d.path().join(format!("{name}.json"));
        write(&p, format!(r#"{{"transforms": [{json}]}}"#).as_bytes());
        let out = d.path().join(name);
        refused(
            cli(&["apply", s(&p), "--image", s(&img), "--out", s(&out)]),
            needle,
        );
        assert!(
            !out.join("anatomical.nii").exists(),
            "{name}: nothing written"
        );
    }
    // 100 mm on 1e-4 mm voxels: a radius of 3 million voxels (it used to run for hours).
    let tiny = d.path().join("tiny.nii");
    let g = voxaug::Grid::with_spacing([8, 8, 8], [1e-4; 3]).unwrap();
    voxaug::io::write_volume(&tiny, &image_from(&g, |i, _, _| i as f32)).unwrap();
    let blur = d.path().join("blur.json");
    write(
        &blur,
        br#"{"transforms": [{"type": "blur", "sigma": 100}]}"#,
    );
    refused(
        cli(&[
            "apply",
            s(&blur),
            "--image",
            s(&tiny),
            "--out",
            s(&d.path().join("b")),
        ]),
        "blur sigma",
    );
    refused(
        cli(&["histogram", s(&img), "--bins", "1000000000000", "--json"]),
        "bins",
    );
}

#[test]
fn forged_patch_indexes_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let pd = d.path().join("p");
    let (code, err) = cli(&[
        "patches",
        s(&data("anatomical.nii")),
        "--size",
        "16",
        "--out",
        s(&pd),
    ]);
    assert_eq!(code, 0, "{err}");
    let index = std::fs::read_to_string(pd.join("index.json")).unwrap();
    let out = d.path().join("s.nii");
    let huge = index.replacen("\"shape\": [\n    33,", "\"shape\": [\n    3300000,", 1);
    assert_ne!(huge, index, "index layout changed");
    write(&pd.join("index.json"), huge.as_bytes());
    refused(
        cli_limited(&["stitch", s(&pd), "--out", s(&out)], 1024),
        "over the limit",
    );
    let escape = index.replacen("patch_00000.nii.gz", "../../etc/passwd", 1);
    write(&pd.join("index.json"), escape.as_bytes());
    refused(
        cli(&["stitch", s(&pd), "--out", s(&out)]),
        "plain file name",
    );
    assert!(!out.exists());
}

#[test]
fn very_anisotropic_voxels_make_a_bounded_preview() {
    let d = tempfile::tempdir().unwrap();
    let g = voxaug::Grid::with_spacing([40, 40, 40], [0.001, 10.0, 10.0]).unwrap();
    let v = image_from(&g, |i, j, k| (i + j + k) as f32);
    let f = d.path().join("thin.nii");
    voxaug::io::write_volume(&f, &v).unwrap();
    let png = d.path().join("thin.png");
    let (code, err) = cli_limited(&["preview", s(&f), "--out", s(&png)], 1024);
    assert_eq!(code, 0, "{err}");
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let info = dec.read_info().unwrap();
    let (w, h) = (info.info().width, info.info().height);
    assert!(w <= 3 * 4096 + 64 && h <= 4096 + 64, "{w} x {h}");
}

#[test]
fn a_dicom_series_with_a_broken_file_is_refused_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let src = data("dicom/series_anatomical");
    let dst = d.path().join("series");
    std::fs::create_dir(&dst).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for n in &names {
        std::fs::copy(src.join(n), dst.join(n)).unwrap();
    }
    // Notes and other non-DICOM files are still skipped.
    write(&dst.join("README.txt"), b"scanned on Tuesday");
    let (code, err) = cli(&["info", s(&dst)]);
    assert_eq!(code, 0, "{err}");
    // A truncated first slice used to be dropped: the volume came out one slice short, exit 0.
    let first = dst.join(&names[0]);
    let bytes = std::fs::read(&first).unwrap();
    write(&first, &bytes[..bytes.len() / 3]);
    refused(cli(&["info", s(&dst)]), names[0].to_str().unwrap());
}

#[cfg(unix)]
#[test]
fn a_link_planted_in_the_output_folder_is_not_followed() {
    let d = tempfile::tempdir().unwrap();
    let victim = d.path().join("victim.txt");
    write(&victim, b"precious");
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // The old temporary name was predictable: `.<name>.voxaug-tmp-<pid>`; plant links for many pids.
    for pid in 1..32768 {
        let _ = std::os::unix::fs::symlink(
            &victim,
            out.join(format!(".anatomical.nii.voxaug-tmp-{pid}")),
        );
    }
    let pipe = d.path().join("p.json");
    write(&pipe, br#"{"transforms": [{"type": "flip", "axes": [0]}]}"#);
    let (code, err) = cli(&[
        "apply",
        s(&pipe),
        "--image",
        s(&data("anatomical.nii")),
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(out.join("anatomical.nii").is_file());
}

#[test]
fn augment_output_folders_are_never_mixed() {
    let d = tempfile::tempdir().unwrap();
    let img = data("anatomical.nii");
    let pipe = d.path().join("p.json");
    write(
        &pipe,
        br#"{"transforms": [{"type": "random_affine", "degrees": 10}, {"type": "random_gamma"}]}"#,
    );
    let out = d.path().join("aug");
    let run = |extra: &[&str]| {
        let mut a = vec!["augment", s(&pipe), "--image", s(&img), "--out", s(&out)];
        a.extend_from_slice(extra);
        cli(&a)
    };
    let (code, err) = run(&["-n", "3"]);
    assert_eq!(code, 0, "{err}");
    let first = std::fs::read(out.join("0001/anatomical.nii")).unwrap();
    // A second run into the same folder is refused (it used to mix its samples with the first run's).
    refused(run(&["-n", "2", "--seed", "9"]), "--overwrite");
    // --resume with another seed is refused; with the same one it completes the run.
    refused(run(&["-n", "5", "--seed", "9", "--resume"]), "same seed");
    // A killed run leaves a temporary sample folder behind: --resume removes it.
    std::fs::create_dir(out.join(".0003.abc.voxaug-tmp")).unwrap();
    let (code, err) = run(&["-n", "5", "--resume"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(out.join("0001/anatomical.nii")).unwrap(),
        first
    );
    assert!(out.join("0004/plan.json").is_file());
    assert!(!out.join(".0003.abc.voxaug-tmp").exists());
    // --overwrite with fewer samples leaves no stale sample behind.
    let (code, err) = run(&["-n", "2", "--seed", "9", "--overwrite"]);
    assert_eq!(code, 0, "{err}");
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["0000", "0001", "voxaug-run.json"]);
    // A run in progress holds a lock: a concurrent run is refused (this test's process is alive).
    write(
        &out.join(".voxaug.lock"),
        std::process::id().to_string().as_bytes(),
    );
    refused(
        run(&["-n", "2", "--seed", "9", "--overwrite"]),
        "another voxaug run",
    );
    // The lock of a killed run (its process is gone) is taken over.
    let mut child = Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    write(&out.join(".voxaug.lock"), gone.to_string().as_bytes());
    let (code, err) = run(&["-n", "2", "--seed", "9", "--overwrite"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.join(".voxaug.lock").exists());
}

#[test]
fn augment_streams_plans_and_stops_at_the_failing_sample() {
    // Plans are sampled as the run goes: a sample whose random size passes the voxel limit stops the
    // run with its index; the samples before it are whole folders, nothing after it is written.
    let d = tempfile::tempdir().unwrap();
    let g = voxaug::Grid::with_spacing([32, 32, 32], [1.0; 3]).unwrap();
    let img = d.path().join("img.nii");
    voxaug::io::write_volume(&img, &image_from(&g, |i, j, k| (i + j + k) as f32)).unwrap();
    let pipe = d.path().join("p.json");
    write(
        &pipe,
        br#"{"transforms": [{"type": "random_resize", "scale": [0.8, 1.2]}]}"#,
    );
    // On both executors (the GPU reads batch k back after submitting batch k + 1).
    for device in ["cpu", "gpu"] {
        let out = d.path().join(format!("aug-{device}"));
        let (code, err) = cli(&[
            "--max-voxels",
            "40000",
            "augment",
            s(&pipe),
            "--image",
            s(&img),
            "--out",
            s(&out),
            "-n",
            "20",
            "--batch",
            "4",
            "--device",
            device,
        ]);
        assert_eq!(code, 1, "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let k: u64 = err
            .rsplit("error: ")
            .next()
            .unwrap()
            .split("sample ")
            .nth(1)
            .and_then(|t| t.split(':').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no sample index in {err}"));
        assert!(k > 0 && err.contains("over the limit"), "{err}");
        let mut left: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want: Vec<String> = (0..k).map(|i| format!("{i:04}")).collect();
        want.push("voxaug-run.json".into());
        assert_eq!(left, want, "{err}");
        for i in 0..k {
            let dir = out.join(format!("{i:04}"));
            assert!(dir.join("img.nii").is_file() && dir.join("plan.json").is_file());
        }
    }
}

#[test]
fn nan_voxels_are_read_and_viewed_but_operations_need_nan_to_num() {
    // SPM writes NaN outside the brain: such files are read, shown and converted; `apply` names the fix.
    let d = tempfile::tempdir().unwrap();
    let g = voxaug::Grid::with_spacing([12, 10, 8], [1.0; 3]).unwrap();
    let v = image_from(&g, |i, j, _| if i < 3 { f32::NAN } else { (i * j) as f32 });
    let f = d.path().join("spm.nii");
    voxaug::io::write_volume(&f, &v).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .args(["info", s(&f)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("240 NaN or infinite"),
        "{text}"
    );
    for args in [
        vec!["convert", s(&f), s(&d.path().join("c.nrrd"))],
        vec!["preview", s(&f), "--out", s(&d.path().join("p.png"))],
        vec!["histogram", s(&f), "--json"],
    ] {
        let (code, err) = cli(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let zs = d.path().join("z.json");
    write(&zs, br#"{"transforms": [{"type": "zscore"}]}"#);
    refused(
        cli(&[
            "apply",
            s(&zs),
            "--image",
            s(&f),
            "--out",
            s(&d.path().join("a")),
        ]),
        "nan_to_num",
    );
    let fixed = d.path().join("n.json");
    write(
        &fixed,
        br#"{"transforms": [{"type": "nan_to_num", "value": "min"}, {"type": "zscore"}]}"#,
    );
    let (code, err) = cli(&[
        "apply",
        s(&fixed),
        "--image",
        s(&f),
        "--out",
        s(&d.path().join("b")),
    ]);
    assert_eq!(code, 0, "{err}");
    let out = voxaug::io::read_volume(d.path().join("b/spm.nii"), voxaug::Kind::Image).unwrap();
    assert!(out.values().iter().all(|x| x.is_finite()));
}

#[test]
fn a_patch_folder_is_not_mixed_with_an_earlier_cut() {
    let d = tempfile::tempdir().unwrap();
    let pd = d.path().join("p");
    let img = data("anatomical.nii");
    let (code, err) = cli(&["patches", s(&img), "--size", "8", "--out", s(&pd)]);
    assert_eq!(code, 0, "{err}");
    let many = std::fs::read_dir(&pd).unwrap().count();
    refused(
        cli(&["patches", s(&img), "--size", "16", "--out", s(&pd)]),
        "--overwrite",
    );
    let (code, err) = cli(&[
        "patches",
        s(&img),
        "--size",
        "16",
        "--out",
        s(&pd),
        "--overwrite",
    ]);
    assert_eq!(code, 0, "{err}");
    let few = std::fs::read_dir(&pd).unwrap().count();
    assert!(
        few < many,
        "stale patches of the 8^3 cut were left: {few} vs {many}"
    );
}
