//! Workspaces on the local backend through the CLI: each has its own state,
//! lock and history; the selection is remembered in `.strata/environment`
//! and `STRATA_WORKSPACE` overrides it; `terraform.workspace` and
//! `strata.workspace` evaluate to it; deleting is refused for the current
//! workspace and, without `-force`, for one that still manages objects.
//! Messages and exit codes follow Terraform's.

mod common;

use common::*;
use std::path::Path;

const CONFIG: &str = r#"
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_object" "disk" {
  name = "disk-${terraform.workspace}"
  size = 1
}
output "ws" {
  value = strata.workspace
}
"#;

fn names_in_world(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = world(dir).values().map(|v| v["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

#[test]
fn each_workspace_has_its_own_state_and_history() {
    let dir = scratch();
    let d = dir.path();
    write(d, "main.strata.hcl", CONFIG);
    expect(d, &["apply", "-auto-approve"], 0);
    assert_eq!(stdout(&expect(d, &["workspace", "show"], 0)), "default\n");

    let out = expect(d, &["workspace", "new", "prod"], 0);
    assert!(stderr(&out).contains("Created and switched to workspace \"prod\"!"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(d.join(".strata/environment")).unwrap(), "prod\n");
    assert_eq!(stdout(&expect(d, &["workspace", "show"], 0)), "prod\n");
    assert_eq!(stdout(&expect(d, &["workspace", "list"], 0)), "  default\n* prod\n\n");
    // A new workspace is empty: the default's object is not seen.
    let plan = expect(d, &["plan", "-detailed-exitcode"], 2);
    assert!(stdout(&plan).contains("1 to add"), "{}", stdout(&plan));
    expect(d, &["apply", "-auto-approve"], 0);
    assert_eq!(names_in_world(d), ["disk-default", "disk-prod"]);
    assert_eq!(stdout(&expect(d, &["output", "-raw", "ws"], 0)), "prod");
    assert!(d.join(".strata/workspaces/prod/state.redb").exists());
    assert!(d.join(".strata/state.redb").exists(), "the default workspace stays in .strata/");

    // Histories are separate: prod has one applied version.
    let prod_history = stdout(&expect(d, &["state", "history"], 0));
    expect(d, &["workspace", "select", "default"], 0);
    assert_eq!(stdout(&expect(d, &["output", "-raw", "ws"], 0)), "default");
    expect(d, &["apply", "-auto-approve", "-replace", "testing_object.disk"], 0);
    let default_history = stdout(&expect(d, &["state", "history"], 0));
    assert!(default_history.lines().count() > prod_history.lines().count(), "{default_history}\n---\n{prod_history}");
    expect(d, &["plan", "-detailed-exitcode"], 0);

    // STRATA_WORKSPACE overrides the selection, for one command.
    let out = command(d, &["output", "-raw", "ws"]).env("STRATA_WORKSPACE", "prod").output().unwrap();
    assert_eq!(stdout(&out), "prod");
    let out = command(d, &["workspace", "select", "prod"]).env("STRATA_WORKSPACE", "prod").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("overridden using the STRATA_WORKSPACE environment variable"), "{}", stderr(&out));
    // An unknown workspace in CI is created by its first write, as in Terraform.
    let out = command(d, &["apply", "-auto-approve"]).env("STRATA_WORKSPACE", "pr-42").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&expect(d, &["workspace", "list"], 0)), "* default\n  pr-42\n  prod\n\n");
    assert_eq!(names_in_world(d), ["disk-default", "disk-pr-42", "disk-prod"]);
}

#[test]
fn workspace_errors_mirror_terraform() {
    let dir = scratch();
    let d = dir.path();
    write(d, "main.strata.hcl", CONFIG);
    expect(d, &["workspace", "new", "dev"], 0);
    let out = expect(d, &["workspace", "new", "dev"], 1);
    assert!(stderr(&out).contains("Workspace \"dev\" already exists"), "{}", stderr(&out));
    let out = expect(d, &["workspace", "new", "a/b"], 1);
    assert!(stderr(&out).contains("The workspace name \"a/b\" is not allowed"), "{}", stderr(&out));
    let out = expect(d, &["workspace", "select", "nope"], 1);
    assert!(stderr(&out).contains("Workspace \"nope\" doesn't exist."), "{}", stderr(&out));
    assert_eq!(stdout(&expect(d, &["workspace", "show"], 0)), "dev\n", "a failed select keeps the selection");
    let out = expect(d, &["workspace", "select", "-or-create", "qa"], 0);
    assert!(stderr(&out).contains("Created and switched to workspace \"qa\"!"), "{}", stderr(&out));
    let out = expect(d, &["workspace", "select", "dev"], 0);
    assert!(stderr(&out).contains("Switched to workspace \"dev\"."), "{}", stderr(&out));

    let out = expect(d, &["workspace", "delete", "dev"], 1);
    assert!(stderr(&out).contains("Workspace \"dev\" is your active workspace."), "{}", stderr(&out));
    let out = expect(d, &["workspace", "delete", "nope"], 1);
    assert!(stderr(&out).contains("Workspace \"nope\" doesn't exist."), "{}", stderr(&out));
    expect(d, &["workspace", "select", "qa"], 0);
    let out = expect(d, &["workspace", "delete", "default"], 1);
    assert!(stderr(&out).contains("Can't delete default state"), "{}", stderr(&out));

    // A workspace that still manages objects is kept unless forced.
    expect(d, &["workspace", "select", "dev"], 0);
    expect(d, &["apply", "-auto-approve"], 0);
    expect(d, &["workspace", "select", "default"], 0);
    let out = expect(d, &["workspace", "delete", "dev"], 1);
    let err = stderr(&out);
    assert!(err.contains("Workspace is not empty") && err.contains("  - testing_object.disk"), "{err}");
    assert!(d.join(".strata/workspaces/dev/state.redb").exists(), "nothing was deleted");
    let out = expect(d, &["workspace", "delete", "-force", "dev"], 0);
    assert!(stderr(&out).contains("Deleted workspace \"dev\"!") && stderr(&out).contains("was non-empty"), "{}", stderr(&out));
    assert!(!d.join(".strata/workspaces/dev").exists());
    assert_eq!(names_in_world(d), ["disk-dev"], "forgotten, not destroyed");
    let out = expect(d, &["workspace", "delete", "qa"], 0);
    assert!(stderr(&out).contains("Deleted workspace \"qa\"!") && !stderr(&out).contains("non-empty"), "{}", stderr(&out));
    assert_eq!(stdout(&expect(d, &["workspace", "list"], 0)), "* default\n\n");
}

#[test]
fn each_workspace_has_its_own_lock() {
    let dir = scratch();
    let d = dir.path();
    write(d, "main.strata.hcl", CONFIG);
    expect(d, &["workspace", "new", "dev"], 0);
    expect(d, &["workspace", "select", "default"], 0);
    // A held lock on default (a live process: this test) blocks default only.
    let lock = serde_json::json!({
        "id": "11111111-2222-3333-4444-555555555555", "user": "someone", "host": hostname(),
        "pid": std::process::id(), "operation": "apply", "since": 0
    });
    std::fs::write(d.join(".strata/lock.json"), lock.to_string()).unwrap();
    let out = expect(d, &["apply", "-auto-approve"], 1);
    assert!(stderr(&out).contains("locked"), "{}", stderr(&out));
    let out = command(d, &["apply", "-auto-approve"]).env("STRATA_WORKSPACE", "dev").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names_in_world(d), ["disk-dev"]);
}

#[test]
fn a_saved_plan_applies_only_to_the_workspace_it_was_made_in() {
    let dir = scratch();
    let d = dir.path();
    write(d, "main.strata.hcl", CONFIG);
    expect(d, &["plan", "-out", "p.plan"], 0);
    expect(d, &["workspace", "new", "prod"], 0);
    let out = expect(d, &["apply", "p.plan"], 1);
    assert!(stderr(&out).contains("was made for another state") && stderr(&out).contains("not for workspace \"prod\""), "{}", stderr(&out));
    assert!(names_in_world(d).is_empty());
    expect(d, &["workspace", "select", "default"], 0);
    expect(d, &["apply", "p.plan"], 0);
    assert_eq!(names_in_world(d), ["disk-default"]);
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned()
}
