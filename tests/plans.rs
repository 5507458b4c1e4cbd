//! Data-driven plan tests: each directory of `tests/plans/` holds a
//! configuration (`main.strata.hcl`), optionally a prior configuration
//! (`prior.strata.hcl`, applied first to make the prior state), and the
//! expected output of `strata plan` in `expected.txt`. Identities are
//! normalised. Regenerate with `UPDATE_EXPECT=1 cargo test --test plans`.

mod common;

use common::*;
use std::path::Path;

fn check(case: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans").join(case);
    let dir = scratch();
    if src.join("prior.strata.hcl").exists() {
        std::fs::copy(src.join("prior.strata.hcl"), dir.path().join("main.strata.hcl")).unwrap();
        expect(dir.path(), &["apply", "-auto-approve"], 0);
    }
    copy_case(&src, dir.path());
    let out = run(dir.path(), &["plan", "-no-color"]);
    let actual = normalise(&format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        stdout(&out),
        stderr(&out)
    ));
    let expected_path = src.join("expected.txt");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_EXPECT=1", expected_path.display()));
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, &actual).unified_diff().header("expected", "actual").to_string();
        panic!("plan of {case} differs from expected.txt:\n{diff}");
    }
}

/// Copies a case directory (modules and templates too), minus the test's own files.
fn copy_case(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "expected.txt" || name == "prior.strata.hcl" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(to.join(&name)).unwrap();
            copy_case(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Replaces UUIDs (they differ on every run) with a placeholder.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if i + 36 <= chars.len() {
            let candidate: String = chars[i..i + 36].iter().collect();
            if uuid::Uuid::parse_str(&candidate).is_ok() && candidate.chars().filter(|c| *c == '-').count() == 4 {
                out.push_str("<uuid>");
                i += 36;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[test]
fn create() {
    check("create");
}

#[test]
fn update_disruptions() {
    check("update_disruptions");
}

#[test]
fn nested_update() {
    check("nested_update");
}

#[test]
fn errors_all_at_once() {
    check("errors_all_at_once");
}

#[test]
fn cycle() {
    check("cycle");
}

#[test]
fn sensitive() {
    check("sensitive");
}

#[test]
fn lab() {
    check("lab");
}

#[test]
fn dynamic() {
    check("dynamic");
}

#[test]
fn stable_computed() {
    check("stable_computed");
}

#[test]
fn limits() {
    check("limits");
}

#[test]
fn recursive_module() {
    check("recursive_module");
}

#[test]
fn secrets_never_appear_in_any_output() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans/sensitive/main.strata.hcl");
    let dir = scratch();
    std::fs::copy(src, dir.path().join("main.strata.hcl")).unwrap();
    let mut seen = String::new();
    for args in [&["plan"][..], &["plan", "-json"], &["apply", "-auto-approve"], &["apply", "-auto-approve", "-json"], &["show"], &["show", "-json"], &["output"], &["output", "-json", "dsn"], &["state", "show", "strata_data.db"]] {
        let out = run(dir.path(), args);
        seen.push_str(&stdout(&out));
        seen.push_str(&stderr(&out));
    }
    assert!(seen.contains("(sensitive value)"), "{seen}");
    assert!(!seen.contains("correct-horse"), "a secret leaked:\n{seen}");
    // Only an explicit -raw read prints it, as in Terraform.
    let raw = expect(dir.path(), &["output", "-raw", "dsn"], 0);
    assert_eq!(stdout(&raw), "postgres://admin:correct-horse-battery-staple@db/app");
}
