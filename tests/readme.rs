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
