//! Fault injection at chosen instants, not random ones: an apply with
//! creates, updates, a restart, a data-loss shrink, both kinds of
//! replacement, deletes and an import is stopped (as `kill -9` would stop
//! it) before and after **every** journal commit and before and after
//! **every** provider call's effect, with and without an injected failure so
//! that the rollback is interrupted at every point too. After each stop the
//! next command must recover to the state before the apply (or, after the
//! point of no return, to its completed changes), with nothing orphaned,
//! duplicated or lost, and the next apply must converge.
//!
//! Also: rollback exactness for a failure at every position of a
//! 25-operation apply, and what the plan and the report say about changes
//! rollback cannot restore.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;

const MAIN: &str = r#"
variable "phase" {
  type    = number
  default = 1
}
variable "fail_on" {
  type    = number
  default = null
}
variable "crash_on" {
  type    = number
  default = null
}
variable "crash_point" {
  type    = string
  default = "before"
}
variable "coalesce" {
  type    = number
  default = null
}
provider "testing" {
  dir                = "${path.root}/world"
  fail_on_operation  = var.fail_on
  crash_on_operation = var.crash_on
  crash_point        = var.crash_point
  coalesce           = var.coalesce
}
resource "testing_object" "updated" {
  name  = "updated"
  value = "v${var.phase}"
  size  = var.phase == 1 ? 10 : 5
}
resource "testing_object" "restarted" {
  name          = "restarted"
  restart_value = "r${var.phase}"
}
resource "testing_object" "replaced" {
  name = "replaced-${var.phase}"
}
resource "testing_object" "cbd" {
  name = "cbd-${var.phase}"
  lifecycle {
    create_before_destroy = true
  }
}
resource "testing_object" "deleted" {
  count = var.phase == 1 ? 1 : 0
  name  = "deleted"
}
resource "testing_object" "created" {
  count = var.phase == 2 ? 1 : 0
  name  = "created"
  value = testing_object.updated.id
}
resource "testing_object" "dependent" {
  name  = "dependent"
  value = testing_object.replaced.id
}
"#;

/// Added for phase 2: adopts an object Strata did not create.
fn adopt_file(foreign: &str) -> String {
    format!(
        r#"
resource "testing_object" "adopted" {{
  name = "foreign"
}}
import {{
  to = testing_object.adopted
  id = "{foreign}"
}}
"#
    )
}

const PHASE_2: &[&str] = &["apply", "-auto-approve", "-var", "phase=2", "--allow-data-loss", "-parallelism", "1"];

/// A working directory after phase 1, plus an object no one manages.
fn base() -> (tempfile::TempDir, String) {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", MAIN);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let foreign = "0d5c3b4e-8d71-4a7e-9a3e-2f6f1d7c9b10".to_owned();
    std::fs::write(
        dir.path().join("world").join(format!("{foreign}.json")),
        format!(r#"{{"name":"foreign","id":"{foreign}","generation":0}}"#),
    )
    .unwrap();
    (dir, foreign)
}

/// Leftovers of undo points: copies kept for an update, retired objects.
fn undo_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("world"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".undo-") || n.contains(".retired-"))
        .collect()
}

fn names(world: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
    let mut v: Vec<String> = world.values().map(|o| o["name"].as_str().unwrap_or_default().to_owned()).collect();
    v.sort();
    v
}

/// No orphans, duplicates or lost records; the unmanaged object exists once,
/// managed or not; no undo point left behind.
fn assert_consistent(dir: &Path, context: &str) {
    let world = world(dir);
    let state = state(dir);
    let state_ids: BTreeMap<&String, &String> = state.iter().map(|(a, (id, _))| (id, a)).collect();
    assert_eq!(state_ids.len(), state.len(), "{context}: two state entries share an identity: {state:#?}");
    for (id, object) in &world {
        if object["name"] != "foreign" {
            assert!(state_ids.contains_key(id), "{context}: object {id} ({}) exists but state does not know it", object["name"]);
        }
    }
    for (address, (id, _)) in &state {
        assert!(world.contains_key(id), "{context}: state has {address} ({id}) but the object does not exist");
    }
    assert_eq!(names(&world).iter().filter(|n| *n == "foreign").count(), 1, "{context}: the unmanaged object must exist exactly once");
    assert_eq!(undo_files(dir), Vec::<String>::new(), "{context}: undo points left behind");
}

fn comparable(state: BTreeMap<String, (String, serde_json::Value)>) -> BTreeMap<String, (String, serde_json::Value)> {
    state.into_iter().map(|(a, (id, v))| (a, (id, strip(v)))).collect()
}

/// The world and the state before the apply under test.
type Before = (BTreeMap<String, serde_json::Value>, BTreeMap<String, (String, serde_json::Value)>);

struct Case<'a> {
    label: String,
    env: Vec<(&'a str, String)>,
    vars: Vec<String>,
}

/// Runs the phase-2 apply of `case` in a copy of `base`; returns false when
/// the stop point was never reached (the apply ran to its end).
fn run_case(
    base: &Path,
    foreign: &str,
    case: &Case<'_>,
    before: &Before,
    rolled_back: &std::cell::Cell<usize>,
) -> bool {
    let dir = scratch();
    copy_dir(base, dir.path());
    write(dir.path(), "adopt.strata.hcl", &adopt_file(foreign));
    let mut args: Vec<String> = PHASE_2.iter().map(|s| s.to_string()).collect();
    for v in &case.vars {
        args.extend(["-var".to_owned(), v.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = command(dir.path(), &args);
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let label = &case.label;
    match out.status.code() {
        Some(137) => {}
        Some(0 | 1) => return false,
        other => panic!("{label}: unexpected exit {other:?}\n{}", stderr(&out)),
    }

    // Recovery happens in the next command that takes the lock.
    let recovered = run(dir.path(), &["plan", "-var", "phase=2"]);
    let said = format!("{}{}", stdout(&recovered), stderr(&recovered));
    assert!(recovered.status.success(), "{label}: plan after the crash failed:\n{said}");
    assert!(!said.contains("panicked"), "{label}: {said}");
    assert_consistent(dir.path(), &format!("{label}, after recovery"));
    if said.contains("rolling it back") || said.contains("finishing the rollback") {
        rolled_back.set(rolled_back.get() + 1);
        assert_eq!(without_generation(world(dir.path())), without_generation(before.0.clone()), "{label}: objects differ from before the apply\n{said}");
        assert_eq!(comparable(state(dir.path())), comparable(before.1.clone()), "{label}: state differs from before the apply\n{said}");
        // The original configuration finds the original objects intact.
        let orig = scratch();
        copy_dir(dir.path(), orig.path());
        std::fs::remove_file(orig.path().join("adopt.strata.hcl")).unwrap();
        let plan = run(orig.path(), &["plan", "-detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(0), "{label}: the original configuration must need no change:\n{}", stdout(&plan));
    }

    // And the change goes through once nothing stops it.
    let again = run(dir.path(), &["apply", "-auto-approve", "-var", "phase=2", "--allow-data-loss"]);
    assert_eq!(again.status.code(), Some(0), "{label}: re-run failed:\n{}{}", stdout(&again), stderr(&again));
    let plan = run(dir.path(), &["plan", "-var", "phase=2", "-detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{label}: not converged:\n{}", stdout(&plan));
    assert_consistent(dir.path(), &format!("{label}, after the re-run"));
    assert_eq!(
        names(&world(dir.path())),
        ["cbd-2", "created", "dependent", "foreign", "replaced-2", "restarted", "updated"],
        "{label}: wrong objects after the re-run"
    );
    true
}

/// Runs every stop point; returns how many there were and how many of them
/// recovery rolled back.
fn sweep(vars: Vec<String>) -> (usize, usize) {
    let (base, foreign) = base();
    let before = (world(base.path()), state(base.path()));
    let rolled_back = std::cell::Cell::new(0);
    let mut cases = 0;
    for when in ["before", "after"] {
        for n in 1.. {
            let case = Case {
                label: format!("stop {when} journal commit {n} {vars:?}"),
                env: vec![("STRATA_TEST_CRASH_COMMIT", format!("{when}:{n}"))],
                vars: vars.clone(),
            };
            if !run_case(base.path(), &foreign, &case, &before, &rolled_back) {
                break;
            }
            cases += 1;
        }
        for n in 1.. {
            let mut vars = vars.clone();
            vars.extend([format!("crash_on={n}"), format!("crash_point={when}")]);
            let case = Case { label: format!("stop {when} provider call {n} {vars:?}"), env: Vec::new(), vars };
            if !run_case(base.path(), &foreign, &case, &before, &rolled_back) {
                break;
            }
            cases += 1;
        }
    }
    eprintln!("{cases} stop points, {} rolled back by recovery", rolled_back.get());
    (cases, rolled_back.get())
}

#[test]
fn a_stop_at_every_commit_and_call_boundary_recovers_without_orphans() {
    let (cases, rolled_back) = sweep(Vec::new());
    // 2 × (commits + calls) of a 14-operation apply; most stops are in the
    // main phase, which recovery rolls back.
    assert!(cases >= 60, "only {cases} stop points were exercised");
    assert!(rolled_back >= 30, "only {rolled_back} of {cases} stops were rolled back");
}

/// The same stops when the provider declares its operations coalescing:
/// each pass of the walk starts its ready operations as one burst whose
/// intents are journaled in one commit before any of them calls the
/// provider, so the stops fall at other places of the same promises.
#[test]
fn a_stop_at_every_boundary_of_coalescing_operations_recovers_without_orphans() {
    let (cases, rolled_back) = sweep(vec!["coalesce=64".into()]);
    assert!(cases >= 40, "only {cases} stop points were exercised");
    assert!(rolled_back >= 20, "only {rolled_back} of {cases} stops were rolled back");
}

#[test]
fn a_stop_at_every_boundary_of_a_rollback_finishes_the_rollback() {
    // Operation 6 fails (in the main phase), so everything after it is the
    // rollback: each of its commits and calls is a stop point too.
    let (cases, rolled_back) = sweep(vec!["fail_on=6".to_owned()]);
    assert!(cases >= 40, "only {cases} stop points were exercised");
    assert!(rolled_back >= 20, "only {rolled_back} of {cases} stops were rolled back");
}

const TWENTY_FIVE: &str = r#"
variable "phase" {
  type    = number
  default = 1
}
variable "fail_on" {
  type    = number
  default = null
}
provider "testing" {
  dir               = "${path.root}/world"
  fail_on_operation = var.fail_on
}
resource "testing_object" "updated" {
  count = 5
  name  = "updated-${count.index}"
  value = "v${var.phase}"
  size  = var.phase == 1 ? 10 : 4
}
resource "testing_object" "replaced" {
  count = 5
  name  = "replaced-${count.index}-${var.phase}"
}
resource "testing_object" "cbd" {
  count = 5
  name  = "cbd-${count.index}-${var.phase}"
  lifecycle {
    create_before_destroy = true
  }
}
resource "testing_object" "deleted" {
  count = var.phase == 1 ? 5 : 0
  name  = "deleted-${count.index}"
}
resource "testing_object" "created" {
  count = var.phase == 2 ? 5 : 0
  name  = "created-${count.index}"
  value = testing_object.replaced[count.index].id
}
"#;

#[test]
fn rollback_is_exact_for_a_failure_at_every_position_and_cleanup_failures_say_what_remains() {
    let base = scratch();
    write(base.path(), "main.strata.hcl", TWENTY_FIVE);
    expect(base.path(), &["apply", "-auto-approve"], 0);
    let (world_before, state_before) = (without_generation(world(base.path())), comparable(state(base.path())));
    let (mut rolled_back, mut cleanup_failures) = (0, 0);
    for n in 1.. {
        let dir = scratch();
        copy_dir(base.path(), dir.path());
        let fail = format!("fail_on={n}");
        let out = run(dir.path(), &["apply", "-auto-approve", "-var", "phase=2", "-var", &fail, "--allow-data-loss", "-parallelism", "2"]);
        if out.status.code() == Some(0) {
            break; // n is past the last operation.
        }
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "failure at {n}: {said}");
        assert!(said.contains(&format!("injected failure of operation {n}")), "{said}");
        if said.contains("the cleanup phase failed") {
            cleanup_failures += 1;
            assert!(said.contains("left to clean up"), "failure at {n} must say what remains: {said}");
            assert!(!said.contains("Rolled back"), "a cleanup failure rolls nothing back: {said}");
        } else {
            rolled_back += 1;
            assert_eq!(undo_files(dir.path()), Vec::<String>::new(), "failure at {n}: undo points left behind by the rollback");
            assert_eq!(without_generation(world(dir.path())), world_before, "objects differ after rollback of a failure at {n}:\n{said}");
            assert_eq!(comparable(state(dir.path())), state_before, "state differs after rollback of a failure at {n}:\n{said}");
        }
        expect(dir.path(), &["apply", "-auto-approve", "-var", "phase=2", "--allow-data-loss"], 0);
        assert_eq!(undo_files(dir.path()), Vec::<String>::new(), "failure at {n}: undo points left behind after the re-run");
        assert_no_orphans(dir.path());
        let plan = run(dir.path(), &["plan", "-var", "phase=2", "-detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(0), "failure at {n}: not converged after the re-run");
    }
    // 5 updates, 5 retires + 5 creates, 5 + 5 cbd creates... in the main
    // phase; 5 deletes, 5 cbd deletes and the discards in cleanup.
    assert!(rolled_back >= 25, "{rolled_back} main-phase failures");
    assert!(cleanup_failures >= 10, "{cleanup_failures} cleanup-phase failures");
}

#[test]
fn the_plan_and_the_report_name_what_rollback_cannot_restore() {
    let dir = scratch();
    let config = r#"
variable "v" {
  default = "1"
}
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_plain" "fragile" {
  name = "fragile-${var.v}"
}
resource "testing_object" "late" {
  name  = "late"
  value = testing_plain.fragile.id
  fail  = var.v == "2"
}
"#;
    write(dir.path(), "main.strata.hcl", config);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let plan = expect(dir.path(), &["plan", "-var", "v=2"], 0);
    assert!(
        stdout(&plan).contains("rollback cannot restore this: the old object is destroyed before its replacement is created"),
        "{}",
        stdout(&plan)
    );
    let json = expect(dir.path(), &["plan", "-var", "v=2", "-json"], 0);
    assert!(stdout(&json).contains("\"rollback_cannot_restore\":\"the old object"), "{}", stdout(&json));
    let out = run(dir.path(), &["apply", "-auto-approve", "-var", "v=2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("testing_plain.fragile could not be rolled back: it was destroyed to be replaced"),
        "{}",
        stderr(&out)
    );
    assert_no_orphans(dir.path());
}

#[test]
fn a_crash_during_the_rollback_of_a_create_before_destroy_replacement_keeps_the_original() {
    // The reproduction of issue 7: the rollback deleted the new object, and
    // the process died before recording it. The original (deposed during the
    // apply) must come back at its address, not be destroyed.
    let config = r#"
variable "v" {
  default = "1"
}
variable "crash_on" {
  default = null
}
provider "testing" {
  dir                = "${path.root}/world"
  crash_on_operation = var.crash_on
  crash_point        = "after"
}
resource "testing_object" "web" {
  name = "web-${var.v}"
  lifecycle {
    create_before_destroy = true
  }
}
resource "testing_object" "late" {
  name  = "late"
  value = testing_object.web.id
  fail  = var.v == "2"
}
"#;
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", config);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let before = (without_generation(world(dir.path())), comparable(state(dir.path())));
    // Operation 1 creates web-2, 2 is the failing update, 3 the rollback's
    // delete of web-2: the process ends right after it took effect.
    let out = run(dir.path(), &["apply", "-auto-approve", "-var", "v=2", "-var", "crash_on=3", "-parallelism", "1"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let recovered = expect(dir.path(), &["plan"], 0);
    assert!(stdout(&recovered).contains("finishing the rollback") || stderr(&recovered).contains("finishing the rollback"), "{}", stdout(&recovered));
    assert!(stdout(&recovered).contains("No changes"), "the original configuration must find the original intact:\n{}", stdout(&recovered));
    assert_eq!((without_generation(world(dir.path())), comparable(state(dir.path()))), before);
    assert_no_orphans(dir.path());
}

/// One burst of coalescing creates is two journal commits: the apply's
/// beginning with every intent, then the apply's end (every outcome, the
/// cleanup phase, the outputs and the end in one: outcomes without an undo
/// point ride on the next commit). A stop at each of those boundaries
/// recovers exactly: before the first nothing was called and there is
/// nothing to recover; after the first the intents and the apply log are
/// there together, so recovery rolls back an apply that made nothing;
/// before the end every object is made but no outcome is durable, so
/// recovery finds each by its identity and rolls all of them back; after
/// the end nothing is left to do and everything stands.
#[test]
fn one_burst_of_creates_is_two_journal_commits_and_a_stop_at_each_recovers() {
    const BURST: &str = r#"
provider "testing" {
  dir      = "${path.root}/world"
  coalesce = 16
}
resource "testing_object" "o" {
  count = 8
  name  = "o-${count.index}"
}
output "first" {
  value = testing_object.o[0].id
}
"#;
    let stopped = |point: &str| {
        let dir = scratch();
        write(dir.path(), "main.strata.hcl", BURST);
        let out = command(dir.path(), &["apply", "-auto-approve"]).env("STRATA_TEST_CRASH_COMMIT", point).output().unwrap();
        (dir, out)
    };
    // A stop before a third commit is never reached.
    let (dir, out) = stopped("before:3");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!((world(dir.path()).len(), state(dir.path()).len()), (8, 8));
    expect(dir.path(), &["output", "first"], 0);

    for (point, created, recovery) in [
        ("before:1", 0, None),
        ("after:1", 0, Some("rolling it back (0 operation(s) to undo)")),
        ("before:2", 8, Some("rolling it back (8 operation(s) to undo)")),
        ("after:2", 8, None),
    ] {
        let (dir, out) = stopped(point);
        assert_eq!(out.status.code(), Some(137), "{point}: {}", stderr(&out));
        assert_eq!(world(dir.path()).len(), created, "{point}: objects made before the stop");
        let recovered = run(dir.path(), &["plan"]);
        let said = format!("{}{}", stdout(&recovered), stderr(&recovered));
        assert!(recovered.status.success(), "{point}: {said}");
        match recovery {
            Some(line) => assert!(said.contains(line), "{point}: recovery should say {line:?}:\n{said}"),
            None => assert!(!said.contains("was interrupted") && !said.contains("reconcil"), "{point}: nothing to recover:\n{said}"),
        }
        let kept = if point == "after:2" { 8 } else { 0 };
        assert_eq!((world(dir.path()).len(), state(dir.path()).len()), (kept, kept), "{point}: after recovery");
        assert_eq!(run(dir.path(), &["output", "first"]).status.success(), kept == 8, "{point}: outputs only with the apply's end");
        assert_no_orphans(dir.path());
    }
}

/// A burst's deferred outcomes ride on the next commit, here the intent of
/// an object that depends on the burst: durable before that object's call.
/// Commits: the burst's intents; the dependent's intent with the burst's
/// outcomes; the end with the dependent's outcome. A stop at each boundary
/// leaves the world and the state agreeing after recovery (the main phase
/// rolled back, unless the end was durable), nothing orphaned.
#[test]
fn a_bursts_deferred_outcomes_ride_on_its_dependents_intent_and_a_stop_at_each_commit_recovers() {
    const CHAIN: &str = r#"
provider "testing" {
  dir      = "${path.root}/world"
  coalesce = 16
}
resource "testing_object" "o" {
  count = 4
  name  = "o-${count.index}"
}
resource "testing_object" "after" {
  name = "after-${length(testing_object.o)}-${testing_object.o[0].id}"
}
"#;
    let stopped = |point: &str| {
        let dir = scratch();
        write(dir.path(), "main.strata.hcl", CHAIN);
        let out = command(dir.path(), &["apply", "-auto-approve"]).env("STRATA_TEST_CRASH_COMMIT", point).output().unwrap();
        (dir, out)
    };
    let (dir, out) = stopped("before:4");
    assert_eq!(out.status.code(), Some(0), "a stop before a fourth commit is never reached: {}", stderr(&out));
    assert_eq!((world(dir.path()).len(), state(dir.path()).len()), (5, 5));

    for (point, created) in [("before:2", 4), ("after:2", 4), ("before:3", 5), ("after:3", 5)] {
        let (dir, out) = stopped(point);
        assert_eq!(out.status.code(), Some(137), "{point}: {}", stderr(&out));
        assert_eq!(world(dir.path()).len(), created, "{point}: objects made before the stop");
        let recovered = run(dir.path(), &["plan"]);
        let said = format!("{}{}", stdout(&recovered), stderr(&recovered));
        assert!(recovered.status.success(), "{point}: {said}");
        let kept = if point == "after:3" { 5 } else { 0 };
        assert_eq!((world(dir.path()).len(), state(dir.path()).len()), (kept, kept), "{point}: after recovery\n{said}");
        assert_no_orphans(dir.path());
    }
}
