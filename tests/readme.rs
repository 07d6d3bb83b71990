//! The README's command reference matches the CLI: every `voxaug <command>` it shows (command table rows
//! and shell examples) names a command that exists, and every `--flag` written next to it is one that
//! command's `--help` lists.

use std::collections::BTreeSet;
use std::process::Command;

fn help(cmd: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_voxaug"))
        .args([cmd, "--help"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "`voxaug {cmd} --help` fails: the README names a command that does not exist"
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `--flags` in a piece of README text (letters, digits and dashes after two dashes).
fn flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() {
        if &b[i..i + 2] == b"--"
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'-')
        {
            let mut j = i + 2;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-') {
                j += 1;
            }
            if j > i + 2 && b[i + 2].is_ascii_alphabetic() {
                out.insert(text[i..j].to_string());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn readme_commands_and_flags_exist() {
    let readme = include_str!("../README.md");
    let mut checked = 0;
    let mut in_sh = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        // Command table rows: "| `voxaug cmd ...` | what it does |"; shell lines: "voxaug cmd ...".
        let (usage, rest) = if let Some(r) = line.strip_prefix("| `voxaug ") {
            let end = r.find('`').unwrap_or(r.len());
            (&r[..end], &r[end..])
        } else if in_sh && line.starts_with("voxaug ") {
            (&line["voxaug ".len()..], "")
        } else {
            continue;
        };
        let cmd = usage.split_whitespace().next().unwrap();
        let h = help(cmd);
        // Flags in the usage, and in the description column written as `--flag` of this command.
        let mut wanted = flags(usage);
        for f in flags(rest) {
            if rest.contains(&format!("`{f}")) && !rest.contains("`voxaug") {
                wanted.insert(f);
            }
        }
        for f in wanted {
            assert!(
                h.contains(&format!("{f} "))
                    || h.contains(&format!("{f},"))
                    || h.contains(&format!("{f}\n"))
                    || h.contains(&format!("{f}=")),
                "README line {line:?}: `voxaug {cmd}` has no {f} (its --help:\n{h})"
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 15,
        "only {checked} command lines found in the README"
    );
}

/// Every shell line of the README runs as written: `voxaug ...` lines (and the quick start's
/// `cargo run --release -- demo`, run as the built binary) in a folder holding what they name
/// (`t1.nii.gz`, `seg.nii.gz`: the test data's anatomical scan and a label map of it; `examples/`).
/// Lines that set up the machine (build, install, CI) are listed here; any other line fails the test,
/// so a new example cannot go unchecked.
#[test]
fn readme_shell_examples_run() {
    use voxaug::{io, Kind, Volume};
    const SETUP: [&str; 6] = [
        "cargo build --release --locked",
        "cargo install",
        "bash .ci/run",
        "pip install ./python",
        ".venv/bin/python",
        "apt-get install",
    ];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let t1 = io::read_volume(root.join("tests/data/anatomical.nii"), Kind::Image).unwrap();
    let seg = Volume::label(
        t1.values()
            .iter()
            .map(|&v| (v > 5000.0) as u8 as f32 + (v > 9000.0) as u8 as f32)
            .collect(),
        t1.grid.clone(),
    )
    .unwrap();
    io::write_volume(d.join("t1.nii.gz"), &t1).unwrap();
    io::write_volume(d.join("seg.nii.gz"), &seg).unwrap();
    copy_dir(&root.join("examples"), &d.join("examples"));
    let readme = include_str!("../README.md");
    let (mut in_sh, mut ran) = (false, Vec::new());
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if !in_sh || line.trim().is_empty() {
            continue;
        }
        let cmd = line.split("  #").next().unwrap().trim();
        let args: Vec<&str> = if let Some(rest) = cmd.strip_prefix("voxaug ") {
            rest.split_whitespace().collect()
        } else if let Some(rest) = cmd.strip_prefix("cargo run --release -- ") {
            rest.split_whitespace().collect()
        } else {
            assert!(
                SETUP.iter().any(|s| cmd.starts_with(s)),
                "README shell line {line:?} is neither a voxaug command nor a known setup step: \
                 run it in this test (or list it as setup)"
            );
            continue;
        };
        assert!(
            !args.iter().any(|a| a.contains(['"', '\'', '$', '*'])),
            "README line {line:?}: quoting/globbing is not handled by this test"
        );
        let o = Command::new(env!("CARGO_BIN_EXE_voxaug"))
            .args(&args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "README line {line:?} fails:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        ran.push(args[0].to_string());
    }
    for cmd in ["demo", "augment", "apply"] {
        assert!(
            ran.iter().any(|r| r == cmd),
            "no README example of {cmd} ran"
        );
    }
    // What they say they write.
    assert!(d.join("voxaug-demo/before_after.png").is_file());
    assert!(d.join("aug/0099/plan.json").is_file() && d.join("aug/0099/seg.nii.gz").is_file());
    assert!(d.join("prep/t1.nii.gz").is_file());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
