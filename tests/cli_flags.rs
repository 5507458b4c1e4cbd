//! The command-line conventions Terraform users and CI pipelines rely on:
//! the CI flags, exit codes of usage errors, saved plans refusing planning
//! flags, `-var`/`-var-file` order, `-chdir`, JSON and default variable
//! files, `state list` filters, `state mv` of resources and modules, and
//! output to a closed pipe.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZE: &str = r#"
variable "size" {
  type    = number
  default = 20
}
output "size" {
  value = var.size
}
"#;

fn slow_apply(n: usize, latency_ms: u64) -> String {
    format!(
        r#"
provider "testing" {{
  dir        = "${{path.root}}/world"
  latency_ms = {latency_ms}
}}
resource "testing_object" "o" {{
  count = {n}
  name  = "o-${{count.index}}"
}}
"#
    )
}

/// Starts a slow apply and returns once it holds the state lock.
fn hold_lock(dir: &Path) -> std::process::Child {
    let first = spawn(dir, &["apply", "-auto-approve", "-parallelism", "1"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join(".strata/lock.json").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(dir.join(".strata/lock.json").exists(), "the first apply took the lock");
    first
}

#[test]
fn usage_errors_exit_1_not_the_changes_present_code() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", SIZE);
    for args in [
        &["plan", "-bogus"][..],
        &["plan", "-detailed-exitcode", "-no-such-flag"],
        &["plan", "-lock-timeout=5x"],
        &["plan", "-parallelism=0"],
        &["plan", "-input=maybe"],
        &["no-such-command"],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} says what is wrong");
    }
    expect(dir.path(), &["plan", "-help"], 0);
    expect(dir.path(), &["-version"], 0);
}

#[test]
fn the_ci_flags_are_accepted() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", SIZE);
    for args in [
        &["init", "-input=false", "-lock-timeout=10s"][..],
        &["plan", "-input=false", "-lock-timeout=30s", "-compact-warnings", "-parallelism=3", "-refresh=false"],
        &["plan", "-input=true", "-lock=true", "-lock-timeout=1m30s"],
        &["apply", "-input=false", "-auto-approve", "-lock-timeout=500ms", "-compact-warnings"],
        &["destroy", "-input=false", "-auto-approve", "-lock-timeout=0"],
    ] {
        expect(dir.path(), args, 0);
    }
}

#[test]
fn input_false_never_asks_and_says_what_to_pass() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &slow_apply(1, 0));
    let out = expect(dir.path(), &["apply", "-input=false"], 1);
    assert!(stderr(&out).contains("-input=false") && stderr(&out).contains("-auto-approve"), "{}", stderr(&out));
    assert!(world(dir.path()).is_empty(), "nothing was applied");
}

#[test]
fn compact_warnings_print_one_line_each() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", SIZE);
    write(dir.path(), "extra.stratavars.hcl", "size = 3\nundeclared = 1\n");
    let full = stderr(&expect(dir.path(), &["plan", "-var-file", "extra.stratavars.hcl"], 0));
    let compact = stderr(&expect(dir.path(), &["plan", "-var-file", "extra.stratavars.hcl", "-compact-warnings"], 0));
    assert!(full.contains("undeclared"), "{full}");
    assert!(compact.contains("- value for undeclared variable \"undeclared\" (at extra.stratavars.hcl:2:1)"), "{compact}");
    assert!(compact.lines().count() < full.lines().count(), "compact:\n{compact}\nfull:\n{full}");
}

/// A lock record of this (live) test process, as another Strata on this
/// host would leave it while it works.
fn fake_holder(dir: &Path) -> std::path::PathBuf {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
    let holder = serde_json::json!({"id": "held-by-test", "user": "tester", "host": host, "pid": std::process::id(), "operation": "apply", "since": 0});
    std::fs::create_dir_all(dir.join(".strata")).unwrap();
    let path = dir.join(".strata/lock.json");
    std::fs::write(&path, holder.to_string()).unwrap();
    path
}

#[test]
fn lock_timeout_waits_for_the_holder() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &slow_apply(8, 250));
    let mut first = hold_lock(dir.path());
    // Without a timeout the lock fails at once.
    let out = expect(dir.path(), &["plan"], 1);
    assert!(stderr(&out).contains("locked by"), "{}", stderr(&out));
    // With a timeout the second command waits until the first is done.
    let out = expect(dir.path(), &["plan", "-lock-timeout=2m", "-detailed-exitcode"], 0);
    assert!(stdout(&out).contains("No changes"), "planned after the first apply finished: {}", stdout(&out));
    assert!(first.wait().unwrap().success());
    // A timeout shorter than the holder's run gives up, naming the holder.
    fake_holder(dir.path());
    let start = Instant::now();
    let out = expect(dir.path(), &["plan", "-lock-timeout=1s"], 1);
    assert!(start.elapsed() >= Duration::from_millis(900), "waited for the timeout: {:?}", start.elapsed());
    assert!(stderr(&out).contains("locked by tester@"), "{}", stderr(&out));
    // The holder lets go while the command waits: it goes ahead.
    let lock = fake_holder(dir.path());
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        std::fs::remove_file(lock).unwrap();
    });
    let start = Instant::now();
    expect(dir.path(), &["destroy", "-auto-approve", "-lock-timeout=30s"], 0);
    assert!(start.elapsed() >= Duration::from_millis(1400), "it waited for the holder: {:?}", start.elapsed());
    release.join().unwrap();
    assert!(world(dir.path()).is_empty(), "the waiting destroy ran");
}

#[test]
fn lock_false_skips_the_lock_with_a_warning() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &slow_apply(2, 0));
    let lock = fake_holder(dir.path());
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    assert!(stderr(&out).contains("locked by tester@"), "{}", stderr(&out));
    let out = expect(dir.path(), &["apply", "-auto-approve", "-lock=false"], 0);
    assert!(stderr(&out).contains("-lock=false"), "{}", stderr(&out));
    assert_eq!(world(dir.path()).len(), 2);
    assert!(lock.exists(), "the other holder's lock is left alone");
    expect(dir.path(), &["state", "mv", "-lock=false", "testing_object.o", "testing_object.p"], 0);
    let list = stdout(&expect(dir.path(), &["state", "list"], 0));
    assert_eq!(list, "testing_object.p[0]\ntesting_object.p[1]\n");
}

#[test]
fn a_saved_plan_refuses_planning_flags() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &slow_apply(1, 0));
    write(dir.path(), "v.stratavars.hcl", "");
    expect(dir.path(), &["plan", "-out", "p.plan"], 0);
    for (args, flag) in [
        (&["apply", "-var", "x=1", "p.plan"][..], "variables"),
        (&["apply", "-var-file", "v.stratavars.hcl", "p.plan"], "variables"),
        (&["apply", "-target", "testing_object.o[0]", "p.plan"], "-target"),
        (&["apply", "-replace", "testing_object.o[0]", "p.plan"], "-replace"),
        (&["apply", "-destroy", "p.plan"], "-destroy"),
        (&["apply", "-refresh-only", "p.plan"], "-refresh-only"),
        (&["apply", "-refresh=false", "p.plan"], "-refresh=false"),
    ] {
        let out = expect(dir.path(), args, 1);
        assert!(stderr(&out).contains(flag) && stderr(&out).contains("saved plan"), "{args:?}: {}", stderr(&out));
        assert!(world(dir.path()).is_empty(), "{args:?} applied nothing");
    }
    // The flags that do not change the plan are fine.
    expect(dir.path(), &["apply", "-input=false", "-lock-timeout=5s", "-parallelism=2", "p.plan"], 0);
    assert_eq!(world(dir.path()).len(), 1);
}

#[test]
fn a_stale_saved_plan_is_refused_before_it_is_shown() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &slow_apply(1, 0));
    expect(dir.path(), &["plan", "-out", "p.plan"], 0);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let out = expect(dir.path(), &["apply", "p.plan"], 1);
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("will perform"), "a stale plan is not shown for review: {}", stdout(&out));
    assert_eq!(world(dir.path()).len(), 1);
}

#[test]
fn var_and_var_file_apply_in_command_line_order() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", SIZE);
    write(dir.path(), "two.stratavars.hcl", "size = 2\n");
    write(dir.path(), "three.stratavars.json", r#"{"size": 3}"#);
    let planned = |args: &[&str]| {
        let mut all = vec!["plan"];
        all.extend_from_slice(args);
        stdout(&expect(dir.path(), &all, 0))
    };
    assert!(planned(&["-var", "size=1", "-var-file", "two.stratavars.hcl"]).contains("+ size = 2"));
    assert!(planned(&["-var-file", "two.stratavars.hcl", "-var", "size=1"]).contains("+ size = 1"));
    assert!(planned(&["-var-file=two.stratavars.hcl", "-var=size=1", "-var-file=three.stratavars.json"]).contains("+ size = 3"));
    assert!(planned(&["-var-file", "three.stratavars.json", "-var-file", "two.stratavars.hcl"]).contains("+ size = 2"));
}

#[test]
fn default_and_json_variable_files_load_in_terraform_order() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", SIZE);
    let size = |dir: &Path| {
        let out = stdout(&expect(dir, &["plan"], 0));
        out.lines().find_map(|l| l.trim().strip_prefix("+ size = ").map(str::to_owned)).unwrap_or_else(|| panic!("{out}"))
    };
    assert_eq!(size(dir.path()), "20");
    write(dir.path(), "strata.stratavars.json", r#"{"size": 4}"#);
    assert_eq!(size(dir.path()), "4", "the default JSON file loads");
    write(dir.path(), "strata.stratavars.hcl", "size = 5\n");
    assert_eq!(size(dir.path()), "4", "the JSON default comes after the HCL one, as terraform.tfvars.json does");
    write(dir.path(), "a.auto.stratavars.hcl", "size = 6\n");
    assert_eq!(size(dir.path()), "6", "automatic files come after the default ones");
    write(dir.path(), "b.auto.stratavars.json", r#"{"size": 7}"#);
    assert_eq!(size(dir.path()), "7", "automatic files apply by name, JSON ones too");
    let out = stdout(&expect(dir.path(), &["plan", "-var", "size=8"], 0));
    assert!(out.contains("+ size = 8"), "the command line wins: {out}");
    // A JSON syntax error names the file and place.
    write(dir.path(), "b.auto.stratavars.json", "{\"size\": 7,\n  oops}");
    let out = expect(dir.path(), &["plan"], 1);
    assert!(stderr(&out).contains("b.auto.stratavars.json:2:"), "{}", stderr(&out));
}

#[test]
fn chdir_comes_first_so_out_and_var_file_resolve_inside() {
    let dir = scratch();
    let work = dir.path().join("infra");
    std::fs::create_dir(&work).unwrap();
    write(&work, "main.strata.hcl", SIZE);
    write(&work, "prod.stratavars.hcl", "size = 9\n");
    let out = expect(dir.path(), &["-chdir=infra", "plan", "-var-file", "prod.stratavars.hcl", "-out", "p.plan"], 0);
    assert!(stdout(&out).contains("+ size = 9"), "{}", stdout(&out));
    assert!(work.join("p.plan").exists(), "-out is inside -chdir");
    assert!(!dir.path().join("p.plan").exists());
    assert!(work.join(".strata").exists() && !dir.path().join(".strata").exists(), "the state is inside -chdir");
    expect(dir.path(), &["-chdir=infra", "apply", "p.plan"], 0);
    let out = expect(dir.path(), &["-chdir=no-such-dir", "plan"], 1);
    assert!(stderr(&out).contains("no-such-dir"), "{}", stderr(&out));
}

const MANY: &str = r#"
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_object" "a" {
  count = 2
  name  = "a-${count.index}"
}
resource "testing_object" "b" {
  name = "b"
}
module "m" {
  source = "./m"
}
"#;

const MODULE: &str = r#"
resource "testing_object" "x" {
  name = "x"
}
resource "testing_object" "y" {
  name = "y"
}
"#;

fn many(dir: &Path) {
    write(dir, "main.strata.hcl", MANY);
    std::fs::create_dir_all(dir.join("m")).unwrap();
    write(&dir.join("m"), "main.strata.hcl", MODULE);
    expect(dir, &["apply", "-auto-approve"], 0);
}

#[test]
fn state_list_filters_by_resource_instance_and_module() {
    let dir = scratch();
    many(dir.path());
    let list = |args: &[&str]| {
        let mut all = vec!["state", "list"];
        all.extend_from_slice(args);
        stdout(&expect(dir.path(), &all, 0))
    };
    assert_eq!(list(&[]).lines().count(), 5, "{}", list(&[]));
    assert_eq!(list(&["testing_object.a"]), "testing_object.a[0]\ntesting_object.a[1]\n");
    assert_eq!(list(&["testing_object.a[1]"]), "testing_object.a[1]\n");
    assert_eq!(list(&["module.m"]), "module.m.testing_object.x\nmodule.m.testing_object.y\n");
    assert_eq!(list(&["module.m.testing_object.y", "testing_object.b"]), "module.m.testing_object.y\ntesting_object.b\n");
    let out = expect(dir.path(), &["state", "list", "testing_object.zz"], 1);
    assert!(stderr(&out).contains("testing_object.zz"), "{}", stderr(&out));
    expect(dir.path(), &["state", "list", "not an address"], 1);
}

#[test]
fn state_mv_moves_whole_resources_and_modules() {
    let dir = scratch();
    many(dir.path());
    let before = world(dir.path());
    let out = expect(dir.path(), &["state", "mv", "testing_object.a", "testing_object.c"], 0);
    assert!(stderr(&out).contains("Successfully moved 2"), "{}", stderr(&out));
    expect(dir.path(), &["state", "mv", "module.m", "module.n"], 0);
    expect(dir.path(), &["state", "mv", "module.n.testing_object.x", "testing_object.x"], 0);
    let listed = stdout(&expect(dir.path(), &["state", "list"], 0));
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    assert_eq!(listed, ["module.n.testing_object.y", "testing_object.b", "testing_object.c[0]", "testing_object.c[1]", "testing_object.x"]);
    // The configuration renamed the same way plans no change: the objects
    // kept their identities.
    write(dir.path(), "main.strata.hcl", &MANY.replace("\"a\"", "\"c\"").replace("module \"m\"", "module \"n\""));
    write(&dir.path().join("m"), "main.strata.hcl", &MODULE.replace("resource \"testing_object\" \"x\" {\n  name = \"x\"\n}\n", ""));
    write(
        dir.path(),
        "x.strata.hcl",
        "resource \"testing_object\" \"x\" {\n  name = \"x\"\n}\n",
    );
    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    assert!(stdout(&out).contains("No changes"), "{}", stdout(&out));
    assert_eq!(world(dir.path()), before, "state mv touches no object");
    // Refusals: nothing matches, the destination is taken, kinds differ.
    expect(dir.path(), &["state", "mv", "testing_object.zz", "testing_object.z"], 1);
    let out = expect(dir.path(), &["state", "mv", "testing_object.b", "testing_object.x"], 1);
    assert!(stderr(&out).contains("already in state"), "{}", stderr(&out));
    expect(dir.path(), &["state", "mv", "module.n", "testing_object.q"], 1);
    expect(dir.path(), &["state", "mv", "testing_object.b", "testing_plain.b"], 1);
}

#[test]
fn state_show_prints_a_valid_resource_block_and_history_rfc3339_times() {
    let dir = scratch();
    many(dir.path());
    let shown = stdout(&expect(dir.path(), &["state", "show", "testing_object.a[1]"], 0));
    assert!(shown.starts_with("# testing_object.a[1]:\n"), "{shown}");
    assert!(shown.contains("\nresource \"testing_object\" \"a\" {\n"), "{shown}");
    let body: hcl::Body = hcl::from_str(&shown).unwrap_or_else(|e| panic!("not valid HCL ({e}):\n{shown}"));
    let block = body.blocks().next().expect("one block");
    assert_eq!(block.identifier(), "resource");
    assert_eq!(block.labels().iter().map(|l| l.as_str()).collect::<Vec<_>>(), ["testing_object", "a"]);
    let history = stdout(&expect(dir.path(), &["state", "history"], 0));
    let now = chrono::Utc::now();
    for line in history.lines() {
        let time = line.split_whitespace().nth(1).unwrap_or_default();
        let parsed = chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|e| panic!("{time:?} is not RFC 3339 ({e}): {line}"));
        assert!(time.ends_with('Z'), "UTC, as Terraform prints: {time}");
        assert!((now - parsed.with_timezone(&chrono::Utc)).num_seconds().abs() < 3600, "{time} is not now");
    }
    assert!(!history.is_empty());
}

/// A pipe whose reading end is already closed: every write gets EPIPE.
fn closed_pipe() -> Stdio {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe() fills two new descriptors that this function owns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is ours and closed once; fds[1] moves into the Stdio.
    unsafe {
        libc::close(fds[0]);
        Stdio::from(std::os::fd::OwnedFd::from_raw_fd(fds[1]))
    }
}

#[test]
fn writing_to_a_closed_pipe_ends_quietly_without_a_panic() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &slow_apply(2, 0));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    for args in [&["completions", "bash"][..], &["plan"], &["state", "list"], &["show"], &["-help"], &["plan", "-help"]] {
        let out = Command::new(bin())
            .current_dir(dir.path())
            .args(args)
            .env("STRATA_ENABLE_TEST_PROVIDER", "1")
            .stdin(Stdio::null())
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(out.status.code().is_some(), "{args:?} ended by a signal: {:?}", out.status);
        if !args.contains(&"-help") {
            assert_eq!(out.status.code(), Some(141), "{args:?}: nobody got the output, so it is no success: {err}");
        }
        assert!(!err.contains("Broken pipe"), "{args:?} ends quietly: {err}");
    }
    // `| head -1` as a shell runs it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{} completions bash | head -1", bin().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).lines().count(), 1);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
