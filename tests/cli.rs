//! End-to-end tests of the commands a user runs.

mod common;

use common::*;

const DISK: &str = r#"
variable "size" {
  type    = number
  default = 20
}
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_object" "disk" {
  name = "disk"
  size = var.size
}
"#;

#[test]
fn data_loss_needs_explicit_consent() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", DISK);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    expect(dir.path(), &["apply", "-auto-approve", "-var", "size=40"], 0);
    let out = expect(dir.path(), &["apply", "-auto-approve", "-var", "size=10"], 1);
    assert!(stderr(&out).contains("--allow-data-loss"), "{}", stderr(&out));
    assert_eq!(world(dir.path()).values().next().unwrap()["size"], 40);
    expect(dir.path(), &["apply", "-auto-approve", "-var", "size=10", "--allow-data-loss"], 0);
    assert_eq!(world(dir.path()).values().next().unwrap()["size"], 10);
}

#[test]
fn a_saved_plan_applies_exactly_once_and_is_refused_when_state_moved() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", DISK);
    let out = expect(dir.path(), &["plan", "-out", "p.plan", "-detailed-exitcode"], 2);
    assert!(stdout(&out).contains("1 to add"));
    expect(dir.path(), &["apply", "p.plan"], 0);
    assert_eq!(world(dir.path()).len(), 1);
    let out = expect(dir.path(), &["apply", "p.plan"], 1);
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));
    assert_eq!(world(dir.path()).len(), 1);
}

#[test]
fn import_state_commands_and_history() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", DISK);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let list = expect(dir.path(), &["state", "list"], 0);
    assert_eq!(stdout(&list), "testing_object.disk\n");
    let id = state(dir.path())["testing_object.disk"].0.clone();
    expect(dir.path(), &["state", "rm", "testing_object.disk"], 0);
    assert!(state(dir.path()).is_empty());
    assert_eq!(world(dir.path()).len(), 1, "state rm does not destroy");
    expect(dir.path(), &["import", "testing_object.disk", &id], 0);
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    assert_no_orphans(dir.path());
    let history = stdout(&expect(dir.path(), &["state", "history"], 0));
    for op in ["apply", "state rm", "import"] {
        assert!(history.contains(op), "{history}");
    }
}

#[test]
fn drift_shows_in_the_next_plan_and_refresh_only_records_it() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", DISK);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let (id, obj) = world(dir.path()).into_iter().next().unwrap();
    let mut changed = obj.clone();
    changed["size"] = serde_json::json!(25);
    std::fs::write(dir.path().join(format!("world/{id}.json")), changed.to_string()).unwrap();
    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 2);
    assert!(stdout(&out).contains("changed outside of Strata"), "{}", stdout(&out));
    assert!(stdout(&out).contains("size       = 25 -> 20"), "{}", stdout(&out));
    expect(dir.path(), &["apply", "-auto-approve", "-refresh-only"], 0);
    assert_eq!(state(dir.path())["testing_object.disk"].1["size"], 25);
}

#[test]
fn validate_reports_json_and_fmt_checks_layout() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", "resource \"strata_data\" \"a\" {\ninput=var.nope\n}\n");
    let out = expect(dir.path(), &["validate", "-json"], 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["range"]["filename"], "main.strata.hcl");
    assert_eq!(v["diagnostics"][0]["range"]["start"]["line"], 2);
    assert_eq!(v["diagnostics"][0]["range"]["start"]["column"], 7);
    expect(dir.path(), &["fmt", "-check"], 3);
    expect(dir.path(), &["fmt"], 0);
    assert_eq!(std::fs::read_to_string(dir.path().join("main.strata.hcl")).unwrap(), "resource \"strata_data\" \"a\" {\n  input = var.nope\n}\n");
    expect(dir.path(), &["fmt", "-check"], 0);
}

#[test]
fn graph_targets_and_destroy() {
    let dir = scratch();
    write(
        dir.path(),
        "main.strata.hcl",
        "resource \"strata_data\" \"a\" {\n  input = 1\n}\nresource \"strata_data\" \"b\" {\n  input = strata_data.a.output\n}\nresource \"strata_data\" \"c\" {\n  input = 3\n}\n",
    );
    let dot = stdout(&expect(dir.path(), &["graph"], 0));
    assert!(dot.contains("\"strata_data.b\" -> \"strata_data.a\""), "{dot}");
    expect(dir.path(), &["apply", "-auto-approve", "-target", "strata_data.b"], 0);
    assert_eq!(stdout(&expect(dir.path(), &["state", "list"], 0)), "strata_data.a\nstrata_data.b\n");
    expect(dir.path(), &["apply", "-auto-approve", "-exclude", "strata_data.a"], 0);
    assert_eq!(state(dir.path()).len(), 3);
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(state(dir.path()).is_empty());
}

#[test]
fn data_sources_are_read_at_plan_time_and_providers_validate() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", DISK);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let mut config = DISK.to_owned();
    config.push_str(
        "data \"testing_object\" \"disk\" {\n  name = testing_object.disk.name\n}\nresource \"strata_data\" \"copy\" {\n  input = data.testing_object.disk.id\n}\noutput \"disk_id\" {\n  value = data.testing_object.disk.id\n}\n",
    );
    write(dir.path(), "main.strata.hcl", &config);
    let id = state(dir.path())["testing_object.disk"].0.clone();
    let out = expect(dir.path(), &["plan"], 0);
    assert!(stdout(&out).contains(&format!("input  = \"{id}\"")), "the data source's value is known at plan:\n{}", stdout(&out));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(stdout(&expect(dir.path(), &["output", "-raw", "disk_id"], 0)), id);

    write(dir.path(), "main.strata.hcl", &DISK.replace("name = \"disk\"", "name = \"a/b\""));
    let out = expect(dir.path(), &["plan"], 1);
    assert!(stderr(&out).contains("must not contain '/'") && stderr(&out).contains("main.strata.hcl:"), "{}", stderr(&out));
}

#[test]
fn a_secret_the_provider_marks_itself_is_no_drift() {
    // Providers return secrets marked (a cephx key, a libvirt secret): refresh
    // must compare values, not marks.
    let dir = scratch();
    write(
        dir.path(),
        "main.strata.hcl",
        r#"
variable "pw" {
  sensitive = true
  default   = "hunter2"
}
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_object" "a" {
  name   = "a"
  secret = var.pw
}
"#,
    );
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let plan = expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    assert!(!stdout(&plan).contains("changed outside of Strata"), "{}", stdout(&plan));
}
