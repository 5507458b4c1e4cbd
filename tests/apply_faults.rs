//! Apply under faults, end to end through the CLI with the `testing`
//! provider: rollback at every position, parallelism bound, Ctrl-C, kill -9,
//! locking.

mod common;

use common::*;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Phase 1: ten objects. Phase 2: those ten updated plus ten new ones that
/// depend on them — twenty operations.
const TWENTY: &str = r#"
variable "phase" {
  type    = number
  default = 1
}
variable "fail_on" {
  type    = number
  default = null
}
variable "latency" {
  type    = number
  default = 0
}
provider "testing" {
  dir               = "${path.root}/world"
  fail_on_operation = var.fail_on
  latency_ms        = var.latency
}
resource "testing_object" "base" {
  count = 10
  name  = "base-${count.index}"
  value = "v${var.phase}"
}
resource "testing_object" "extra" {
  count = var.phase >= 2 ? 10 : 0
  name  = "extra-${count.index}"
  value = testing_object.base[count.index].id
}
"#;

#[test]
fn rollback_restores_the_prior_infrastructure_for_a_failure_at_every_position() {
    let base = scratch();
    write(base.path(), "main.strata.hcl", TWENTY);
    expect(base.path(), &["apply", "-auto-approve"], 0);
    let world_before = world(base.path());
    let state_before = state(base.path());
    assert_eq!(world_before.len(), 10);

    for n in 1..=20 {
        let case = scratch();
        copy_dir(base.path(), case.path());
        let fail = format!("fail_on={n}");
        let out = run(case.path(), &["apply", "-auto-approve", "-var", "phase=2", "-var", &fail, "-parallelism", "3"]);
        assert_eq!(out.status.code(), Some(1), "failure at operation {n} must fail the apply:\n{}", stderr(&out));
        assert!(stderr(&out).contains(&format!("injected failure of operation {n}")), "{}", stderr(&out));
        assert_eq!(
            without_generation(world(case.path())),
            without_generation(world_before.clone()),
            "objects differ after rollback of a failure at operation {n}"
        );
        let state_after: BTreeMap<_, _> = state(case.path()).into_iter().map(|(a, (id, v))| (a, (id, strip(v)))).collect();
        let state_expected: BTreeMap<_, _> = state_before.clone().into_iter().map(|(a, (id, v))| (a, (id, strip(v)))).collect();
        assert_eq!(state_after, state_expected, "state differs after rollback of a failure at operation {n}");
        // And the same change goes through once the fault is gone.
        if n == 20 {
            expect(case.path(), &["apply", "-auto-approve", "-var", "phase=2"], 0);
            assert_eq!(world(case.path()).len(), 20);
            assert_no_orphans(case.path());
        }
    }
}

#[test]
fn no_rollback_keeps_what_succeeded() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", TWENTY);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let out = run(dir.path(), &["apply", "-auto-approve", "-var", "phase=2", "-var", "fail_on=15", "-parallelism", "1", "--no-rollback"]);
    assert_eq!(out.status.code(), Some(1));
    let made = world(dir.path()).len();
    assert!(made > 10 && made < 20, "creates before the failure stay, none after it: {made} objects");
    assert_no_orphans(dir.path());
}

fn independent(n: usize, latency_ms: u64) -> String {
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

#[test]
fn parallelism_reaches_the_configured_bound_and_no_more() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &independent(24, 150));
    let start = Instant::now();
    expect(dir.path(), &["apply", "-auto-approve", "-parallelism", "6"], 0);
    let elapsed = start.elapsed();
    let max: usize = std::fs::read_to_string(dir.path().join("world/max_in_flight")).unwrap().trim().parse().unwrap();
    assert_eq!(max, 6, "operations in flight at once");
    // 24 operations of 150 ms, 6 at a time: 4 rounds, far less than 24 in a row.
    assert!(elapsed < Duration::from_millis(24 * 150), "took {elapsed:?}");
}

#[test]
fn ctrl_c_finishes_in_flight_work_records_it_and_exits_non_zero() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &independent(20, 400));
    let child = spawn(dir.path(), &["apply", "-auto-approve", "-parallelism", "2"]);
    std::thread::sleep(Duration::from_millis(900));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("Interrupted"), "{}", stderr(&out));
    let made = world(dir.path()).len();
    assert!((2..20).contains(&made), "in-flight operations finish, nothing new starts: {made} objects");
    assert_no_orphans(dir.path());
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(world(dir.path()).len(), 20);
    assert_no_orphans(dir.path());
}

fn churn(gen: u32, destroy: bool) -> Vec<String> {
    let mut args = vec!["apply".to_owned(), "-auto-approve".into(), "-var".into(), format!("gen={gen}")];
    if destroy {
        args[0] = "destroy".into();
    }
    args
}

#[test]
fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    let dir = scratch();
    write(
        dir.path(),
        "main.strata.hcl",
        r#"
variable "gen" {
  type    = number
  default = 0
}
provider "testing" {
  dir        = "${path.root}/world"
  latency_ms = 3
}
resource "testing_object" "a" {
  count = 6
  name  = "a-${count.index}"
  value = "gen-${var.gen}"
}
resource "testing_object" "b" {
  count = 6
  name  = "b-${count.index}"
  value = testing_object.a[count.index].value
}
resource "testing_object" "r" {
  count = 3
  name  = "r-${var.gen}-${count.index}"
}
"#,
    );
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..50u32 {
        let args = churn(round, round % 7 == 6);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = spawn(dir.path(), &argv);
        std::thread::sleep(Duration::from_millis(5 + next() % 120));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // The next run reconciles whatever was in flight.
        let out = run(dir.path(), &["plan", "-var", &format!("gen={round}")]);
        assert_eq!(out.status.code(), Some(0), "round {round}: plan after kill -9 failed:\n{}", stderr(&out));
        assert_no_orphans(dir.path());
    }
    expect(dir.path(), &["apply", "-auto-approve", "-var", "gen=99"], 0);
    assert_no_orphans(dir.path());
    assert_eq!(world(dir.path()).len(), 15, "exactly the configured objects exist");
    expect(dir.path(), &["plan", "-detailed-exitcode", "-var", "gen=99"], 0);
    expect(dir.path(), &["destroy", "-auto-approve", "-var", "gen=99"], 0);
    assert!(world(dir.path()).is_empty());
}

#[test]
fn a_second_apply_fails_at_once_naming_the_lock_holder() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &independent(6, 400));
    let mut first = spawn(dir.path(), &["apply", "-auto-approve", "-parallelism", "1"]);
    // Wait until the first apply holds the lock (a loaded machine starts it slowly).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.path().join(".strata/lock.json").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.path().join(".strata/lock.json").exists(), "the first apply took the lock");
    let start = Instant::now();
    let out = run(dir.path(), &["apply", "-auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(start.elapsed() < Duration::from_secs(2), "the second apply must not wait");
    let err = stderr(&out);
    assert!(err.contains("locked by") && err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(first.wait().unwrap().success());
}

#[test]
fn a_lock_left_by_a_dead_process_is_broken_with_a_warning() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &independent(2, 0));
    let mut child = spawn(dir.path(), &["apply", "-auto-approve"]);
    child.kill().unwrap();
    child.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
    let stale = serde_json::json!({"id": "stale-lock", "user": "ghost", "host": host, "pid": child.id(), "operation": "apply", "since": 0});
    std::fs::create_dir_all(dir.path().join(".strata")).unwrap();
    std::fs::write(dir.path().join(".strata/lock.json"), stale.to_string()).unwrap();
    let out = expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(stderr(&out).contains("broke a stale state lock"), "{}", stderr(&out));
    assert_no_orphans(dir.path());
}

