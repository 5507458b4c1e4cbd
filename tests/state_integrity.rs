//! The state under damage, through the CLI with the `testing` provider: a
//! truncated, lost or bit-flipped database is refused (never a fresh state,
//! never a panic) with a way back; read-only commands write nothing, work on
//! a read-only state and during another apply; a full disk ends rolled back
//! or resumable; locks name their real holder and can be broken safely.
//!
//! The read-only and full-disk tests mount (a bind mount, a tmpfs) and so
//! need root, as CI has.

mod common;

use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

fn objects(count: usize, latency_ms: u64) -> String {
    format!(
        r#"
variable "n" {{
  type    = number
  default = {count}
}}
provider "testing" {{
  dir        = "${{path.root}}/world"
  latency_ms = {latency_ms}
}}
resource "testing_object" "o" {{
  count = var.n
  name  = "o-${{count.index}}"
  value = "v-${{count.index}}"
}}
output "first" {{
  value = testing_object.o[0].id
}}
"#
    )
}

/// A workspace with `count` applied objects.
fn applied(count: usize) -> tempfile::TempDir {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &objects(count, 0));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    dir
}

fn db(dir: &Path) -> PathBuf {
    dir.join(".strata/state.redb")
}

fn json_objects(dir: &Path) -> usize {
    world(dir).len()
}

fn assert_no_panic(out: &std::process::Output, what: &str) {
    let err = stderr(out);
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{what}: panic:\n{err}");
}

/// The command failed naming the damage and the way back.
fn assert_refused_as_damaged(out: &std::process::Output, what: &str) {
    assert_no_panic(out, what);
    assert_eq!(out.status.code(), Some(1), "{what}: must fail\nstdout: {}\nstderr: {}", stdout(out), stderr(out));
    let err = stderr(out);
    assert!(err.contains("is damaged") && err.contains("strata state restore-backup"), "{what}: {err}");
}

#[test]
fn a_truncated_or_missing_database_is_refused_and_nothing_is_created_twice() {
    let base = applied(4);
    let before = stdout(&expect(base.path(), &["show", "-json"], 0));
    let bytes = std::fs::read(db(base.path())).unwrap();
    let len = bytes.len();
    for cut in [Some(0), Some(5), Some(4096), Some(len / 2), Some(len - 4096), Some(len - 1), None] {
        let case = scratch();
        copy_dir(base.path(), case.path());
        match cut {
            Some(cut) => std::fs::write(db(case.path()), &bytes[..cut]).unwrap(),
            None => std::fs::remove_file(db(case.path())).unwrap(),
        }
        let what = format!("database cut to {cut:?} of {len} bytes");
        let must_fail = cut.is_none_or(|c| c <= 4096);
        // Each command either refuses, or (the cut fell in free pages that
        // this command never reads) sees exactly the state there was.
        let show = run(case.path(), &["show", "-json"]);
        if must_fail || !show.status.success() {
            assert_refused_as_damaged(&show, &what);
        } else {
            assert_eq!(stdout(&show), before, "{what}");
        }
        for args in [&["plan", "-detailed-exitcode"][..], &["apply", "-auto-approve"]] {
            let out = run(case.path(), args);
            if must_fail || !out.status.success() {
                assert_refused_as_damaged(&out, &format!("{what}: {args:?}"));
            } else {
                assert!(stdout(&out).contains("No changes"), "{what}: {args:?}: {}", stdout(&out));
            }
        }
        assert_eq!(json_objects(case.path()), 4, "{what}: nothing was created again");
    }

    // The way back the message names works.
    let case = scratch();
    copy_dir(base.path(), case.path());
    std::fs::write(db(case.path()), b"").unwrap();
    let out = expect(case.path(), &["state", "restore-backup"], 0);
    assert!(stderr(&out).contains("Restored state version 0"), "{}", stderr(&out));
    expect(case.path(), &["state", "list"], 0);
}

#[test]
fn byte_flips_are_refused_or_harmless_never_a_panic_or_a_silently_different_state() {
    let base = applied(4);
    let before = stdout(&expect(base.path(), &["show", "-json"], 0));
    let bytes = std::fs::read(db(base.path())).unwrap();
    // Half spread over the whole file, half inside the instance records. Not
    // in the intents' and undo steps' copies that the apply's last commits
    // freed (`"operation":…,"address":`, `{"record":{"address":`): no reader
    // follows a freed page, so a flip there is rightly harmless, and how many
    // such copies a file keeps depends on how its pages were reused.
    let pattern = br#"{"address":"testing_object."#;
    let records: Vec<usize> = bytes
        .windows(pattern.len())
        .enumerate()
        .filter(|(i, w)| *w == pattern && !bytes[..*i].ends_with(br#"{"record":"#))
        .map(|(i, _)| i)
        .collect();
    assert!(!records.is_empty());
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut positions: Vec<usize> = (0..40).map(|_| (next() % bytes.len() as u64) as usize).collect();
    positions.extend((0..40).map(|_| (records[(next() % records.len() as u64) as usize] + (next() % 120) as usize).saturating_sub(30)));
    let mut refused = 0;
    for at in positions.into_iter().filter(|p| *p < bytes.len()) {
        let case = scratch();
        copy_dir(base.path(), case.path());
        let mut damaged = bytes.clone();
        damaged[at] ^= (next() % 255 + 1) as u8;
        std::fs::write(db(case.path()), &damaged).unwrap();
        let what = format!("flip at byte {at}");
        let show = run(case.path(), &["show", "-json"]);
        assert_no_panic(&show, &what);
        if show.status.success() {
            assert_eq!(stdout(&show), before, "{what}: show read a different state");
        } else {
            assert_refused_as_damaged(&show, &what);
            refused += 1;
        }
        let plan = run(case.path(), &["plan", "-detailed-exitcode"]);
        assert_no_panic(&plan, &what);
        match plan.status.code() {
            Some(0) => {}
            Some(1) => assert_refused_as_damaged(&plan, &what),
            code => panic!("{what}: plan exited {code:?} (a changed state?):\n{}", stdout(&plan)),
        }
        assert_eq!(json_objects(case.path()), 4, "{what}");
    }
    assert!(refused >= 20, "only {refused} flips inside the records were caught");
}

/// Every file under `dir` with its bytes and modification time.
fn fingerprint(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), (std::fs::read(e.path()).unwrap(), e.metadata().unwrap().modified().unwrap()))
        })
        .collect()
}

const READERS: &[&[&str]] = &[
    &["show"],
    &["show", "-json"],
    &["state", "list"],
    &["state", "show", "testing_object.o[1]"],
    &["state", "history"],
    &["output"],
    &["output", "-json"],
    &["console"],
];

fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?} failed (the test needs root)");
}

#[test]
fn read_only_commands_write_nothing_and_work_on_a_read_only_state() {
    let dir = applied(3);
    let state_dir = dir.path().join(".strata");
    let before = fingerprint(&state_dir);
    std::thread::sleep(Duration::from_millis(20));
    for args in READERS {
        expect(dir.path(), args, 0);
    }
    assert!(fingerprint(&state_dir) == before, "a read-only command changed a file in .strata/");

    // Root ignores permissions: a read-only bind mount makes it real.
    let path = state_dir.to_str().unwrap();
    sh(&["mount", "--bind", path, path]);
    let result = std::panic::catch_unwind(|| {
        sh(&["mount", "-o", "remount,bind,ro", path, path]);
        for args in READERS {
            let out = expect(dir.path(), args, 0);
            assert_no_panic(&out, &format!("{args:?}"));
        }
        let out = run(dir.path(), &["apply", "-auto-approve"]);
        assert_no_panic(&out, "apply on a read-only state");
        assert_eq!(out.status.code(), Some(1), "apply cannot write a read-only state");
    });
    sh(&["umount", path]);
    result.unwrap();
}

fn wait_for_lock(dir: &Path) -> serde_json::Value {
    let lock = dir.join(".strata/lock.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(bytes) = std::fs::read(&lock) {
            if let Ok(v) = serde_json::from_slice(&bytes) {
                return v;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the apply never took the lock");
}

/// Waits until the running apply created `n` objects.
fn wait_for_progress(dir: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while json_objects(dir) < n {
        assert!(Instant::now() < deadline, "the apply made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_state_can_be_read_while_another_process_applies() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &objects(8, 250));
    let mut apply = spawn(dir.path(), &["apply", "-auto-approve", "-parallelism", "1"]);
    wait_for_lock(dir.path());
    wait_for_progress(dir.path(), 1);
    for args in READERS.iter().filter(|a| a[0] != "output" && a[0] != "console" && a.len() < 3) {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?} during an apply: {}", stderr(&out));
    }
    let listed = stdout(&expect(dir.path(), &["state", "list"], 0)).lines().count();
    assert!(apply.try_wait().unwrap().is_none(), "the reads ran while the apply was still running");
    assert!((1..8).contains(&listed), "the reader saw the apply's progress so far: {listed}");
    assert!(apply.wait().unwrap().success());
    assert_eq!(stdout(&expect(dir.path(), &["state", "list"], 0)).lines().count(), 8);
}

fn mount_tmpfs(dir: &Path, size: &str) {
    std::fs::create_dir_all(dir).unwrap();
    sh(&["mount", "-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.to_str().unwrap()]);
}

const BIG: &str = r#"
variable "n" {
  type    = number
  default = 400
}
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_object" "o" {
  count = var.n
  name  = "o-${count.index}"
  value = join("", [for i in range(1000) : "01234567890123456789"])
}
"#;

#[test]
fn a_full_disk_ends_rolled_back_or_resumable_never_with_unrecorded_objects() {
    for size in ["4m", "6m"] {
        let outer = scratch();
        let dir = outer.path().join("fs");
        mount_tmpfs(&dir, size);
        let result = std::panic::catch_unwind(|| {
            write(&dir, "main.strata.hcl", BIG);
            // 400 objects of 20 KB do not fit: the disk fills mid-apply.
            let out = run(&dir, &["apply", "-auto-approve", "-parallelism", "4"]);
            assert_no_panic(&out, size);
            assert_eq!(out.status.code(), Some(1), "{size}: {}", stderr(&out));
            let err = stderr(&out);
            assert!(err.contains("No space left on device") || err.contains("is full"), "{size}: {err}");
            assert!(!err.contains("could not be rolled back"), "{size}: {err}");
            // Everything the apply made was undone, or is known to state.
            assert_no_orphans(&dir);
            // And it resumes: a configuration that fits converges.
            let out = run(&dir, &["apply", "-auto-approve", "-var", "n=10"]);
            assert_eq!(out.status.code(), Some(0), "{size}: {}", stderr(&out));
            assert_no_orphans(&dir);
            assert_eq!(json_objects(&dir), 10);
            expect(&dir, &["plan", "-detailed-exitcode", "-var", "n=10"], 0);
        });
        sh(&["umount", dir.to_str().unwrap()]);
        result.unwrap();
    }
}

#[test]
fn force_unlock_of_a_running_apply_needs_confirmation() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &objects(12, 300));
    let mut apply = spawn(dir.path(), &["apply", "-auto-approve", "-parallelism", "1"]);
    let lock = wait_for_lock(dir.path());
    let id = lock["id"].as_str().unwrap();

    // A second apply is told how to break the lock.
    let out = run(dir.path(), &["apply", "-auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("strata force-unlock {id}")), "{}", stderr(&out));

    // Not on a terminal and without -force: refused, the lock stays.
    let out = run(dir.path(), &["force-unlock", id]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("still running") && err.contains("-force"), "{err}");
    assert!(dir.path().join(".strata/lock.json").exists(), "the live lock was kept");

    // On a terminal it asks: anything but "yes" keeps the lock.
    let out = on_a_terminal(dir.path(), &format!("force-unlock {id}"), "no");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("Do you really want to break the lock?") && stdout(&out).contains("cancelled"), "{}", stdout(&out));
    assert!(dir.path().join(".strata/lock.json").exists(), "the live lock was kept");
    let out = on_a_terminal(dir.path(), &format!("force-unlock {id}"), "yes");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("was removed"), "{}", stdout(&out));
    assert!(!dir.path().join(".strata/lock.json").exists());
    assert!(apply.wait().unwrap().success());
}

/// Runs strata on a pseudo-terminal (util-linux `script`) and answers its
/// question with `answer`. The terminal's output (stdout and stderr) is in stdout.
fn on_a_terminal(dir: &Path, args: &str, answer: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new("script")
        .args(["-qec", &format!("{} {args}", bin().display()), "/dev/null"])
        .current_dir(dir)
        .env("STRATA_ENABLE_TEST_PROVIDER", "1")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux script runs");
    std::thread::sleep(Duration::from_millis(300));
    writeln!(child.stdin.as_mut().unwrap(), "{answer}").unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_corrupt_lock_file_is_reported_and_cleared_by_force_unlock() {
    let dir = applied(2);
    std::fs::write(dir.path().join(".strata/lock.json"), b"{\"id\": \"6f0c").unwrap();
    let out = run(dir.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("is corrupt") && err.contains("strata force-unlock"), "{err}");
    // Its holder cannot be known: confirmation is needed.
    assert_eq!(run(dir.path(), &["force-unlock", "corrupt"]).status.code(), Some(1));
    let out = expect(dir.path(), &["force-unlock", "-force", "corrupt"], 0);
    assert!(stderr(&out).contains("did not hold a lock record"), "{}", stderr(&out));
    expect(dir.path(), &["plan"], 0);
}

#[test]
fn with_its_lock_file_deleted_a_running_apply_is_still_named_as_the_holder() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &objects(6, 300));
    let mut first = spawn(dir.path(), &["apply", "-auto-approve", "-parallelism", "1"]);
    wait_for_lock(dir.path());
    wait_for_progress(dir.path(), 1);
    std::fs::remove_file(dir.path().join(".strata/lock.json")).unwrap();
    let second = spawn(dir.path(), &["apply", "-auto-approve"]);
    let second_pid = second.id();
    let out = second.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("pid {}", first.id())), "the real holder is named: {err}");
    assert!(!err.contains(&format!("pid {second_pid}")), "not the second apply itself: {err}");
    assert!(first.wait().unwrap().success());
}

#[test]
fn temp_files_of_a_killed_locker_are_removed() {
    let dir = applied(1);
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let leftover = dir.path().join(format!(".strata/.lock.json.{dead}.5e1f.tmp"));
    std::fs::write(&leftover, b"{}").unwrap();
    expect(dir.path(), &["plan"], 0);
    assert!(!leftover.exists());
    let names: Vec<String> =
        std::fs::read_dir(dir.path().join(".strata")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp") && !n.starts_with("lock.")), "{names:?}");
}
