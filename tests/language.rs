//! Language features end to end: conditions, checks, refactoring blocks.

mod common;

use common::*;

const BASE: &str = r#"
variable "size" {
  type    = number
  default = 10
}
variable "want_generation" {
  type    = number
  default = 0
}
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_object" "disk" {
  name = "disk"
  size = var.size
  lifecycle {
    precondition {
      condition     = var.size <= 100
      error_message = "Disks are at most 100 GiB, not ${var.size}."
    }
    postcondition {
      condition     = self.generation == var.want_generation
      error_message = "Generation is ${self.generation}, expected ${var.want_generation}."
    }
  }
}
check "small" {
  assert {
    condition     = var.size < 50
    error_message = "This disk is large."
  }
}
"#;

#[test]
fn preconditions_fail_the_plan_and_checks_only_warn() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", BASE);
    let out = expect(dir.path(), &["plan", "-var", "size=200"], 1);
    assert!(stderr(&out).contains("Disks are at most 100 GiB, not 200."), "{}", stderr(&out));
    let out = expect(dir.path(), &["plan", "-var", "size=60"], 0);
    assert!(stderr(&out).contains("check \"small\" failed: This disk is large."), "{}", stderr(&out));
}

#[test]
fn a_failed_postcondition_fails_the_apply_and_rolls_it_back() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", BASE);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let before = world(dir.path());
    // An update makes generation 1, which the postcondition rejects.
    let out = expect(dir.path(), &["apply", "-auto-approve", "-var", "size=20"], 1);
    assert!(stderr(&out).contains("postcondition failed: Generation is 1, expected 0."), "{}", stderr(&out));
    let after = world(dir.path());
    assert_eq!(after.len(), 1);
    let (id, obj) = after.iter().next().unwrap();
    assert_eq!(obj["size"], 10, "the update was rolled back");
    assert!(before.contains_key(id));
    assert_no_orphans(dir.path());
}

const OBJECTS: &str = r#"
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_object" "a" {
  count = 2
  name  = "a-${count.index}"
}
"#;

#[test]
fn moved_blocks_rename_in_state_without_touching_objects() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", OBJECTS);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let before = world(dir.path());
    let renamed = r#"
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_object" "b" {
  for_each = toset(["first", "second"])
  name     = each.key == "first" ? "a-0" : "a-1"
}
moved {
  from = testing_object.a[0]
  to   = testing_object.b["first"]
}
moved {
  from = testing_object.a[1]
  to   = testing_object.b["second"]
}
"#;
    write(dir.path(), "main.strata.hcl", renamed);
    let out = expect(dir.path(), &["plan"], 0);
    assert!(stdout(&out).contains("(moved from testing_object.a[0])"), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 to add, 0 to change, 0 to destroy. 2 to move."), "{}", stdout(&out));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(world(dir.path()), before, "no object was touched");
    let keys: Vec<String> = state(dir.path()).into_keys().collect();
    assert_eq!(keys, ["testing_object.b[\"first\"]", "testing_object.b[\"second\"]"]);
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
}

#[test]
fn removed_blocks_forget_and_import_blocks_adopt() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", OBJECTS);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let ids: Vec<String> = state(dir.path()).into_values().map(|(id, _)| id).collect();
    let forget = r#"
provider "testing" {
  dir = "${path.root}/world"
}
removed {
  from = testing_object.a
  lifecycle {
    destroy = false
  }
}
"#;
    write(dir.path(), "main.strata.hcl", forget);
    let out = expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("will be removed from state; the object itself stays"), "{}", stdout(&out));
    assert!(state(dir.path()).is_empty());
    assert_eq!(world(dir.path()).len(), 2, "forgotten, not destroyed");

    let adopt = format!(
        r#"
provider "testing" {{
  dir = "${{path.root}}/world"
}}
resource "testing_object" "kept" {{
  name = "a-0"
}}
import {{
  to = testing_object.kept
  id = "{}"
}}
"#,
        ids[0]
    );
    write(dir.path(), "main.strata.hcl", &adopt);
    let out = expect(dir.path(), &["plan"], 0);
    assert!(stdout(&out).contains("imported from"), "{}", stdout(&out));
    assert_eq!(world(dir.path()).len(), 2, "plan changes nothing");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(state(dir.path()).len(), 1);
    assert_eq!(world(dir.path()).len(), 2, "adopted, not created");
    assert_no_orphans_among(dir.path(), 1);
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
}

/// Like `assert_no_orphans`, but `unmanaged` objects are expected outside state.
fn assert_no_orphans_among(dir: &std::path::Path, unmanaged: usize) {
    let world = world(dir);
    let state = state(dir);
    let known = world.keys().filter(|id| state.values().any(|(sid, _)| sid == *id)).count();
    assert_eq!(world.len() - known, unmanaged, "world: {world:#?}\nstate: {state:#?}");
}

#[test]
fn modules_apply_target_and_move_into_a_module() {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("modules/pair")).unwrap();
    write(
        &dir.path().join("modules/pair"),
        "main.strata.hcl",
        "variable \"prefix\" {\n  type = string\n}\nresource \"testing_object\" \"o\" {\n  count = 2\n  name  = \"${var.prefix}-${count.index}\"\n}\noutput \"ids\" {\n  value = testing_object.o[*].id\n}\n",
    );
    let root = |extra: &str| {
        format!(
            "provider \"testing\" {{\n  dir = \"${{path.root}}/world\"\n}}\nmodule \"pair\" {{\n  source   = \"./modules/pair\"\n  for_each = toset([\"x\", \"y\"])\n  prefix   = each.key\n}}\nresource \"strata_data\" \"ids\" {{\n  input = module.pair[\"x\"].ids\n}}\n{extra}"
        )
    };
    write(dir.path(), "main.strata.hcl", &root(""));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(world(dir.path()).len(), 4);
    let ids = &state(dir.path())["strata_data.ids"].1["input"];
    assert_eq!(ids.as_array().unwrap().len(), 2, "module outputs flow to the root: {ids}");
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // Destroying one module instance takes what depends on it along.
    let out = expect(dir.path(), &["plan", "-destroy", "-target", "module.pair[\"x\"]"], 0);
    assert!(stdout(&out).contains("0 to add, 0 to change, 3 to destroy."), "{}", stdout(&out));

    // A root resource moves into a module instance without being recreated.
    write(dir.path(), "solo.strata.hcl", "resource \"testing_object\" \"solo\" {\n  name = \"solo\"\n}\n");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let solo_id = state(dir.path())["testing_object.solo"].0.clone();
    std::fs::remove_file(dir.path().join("solo.strata.hcl")).unwrap();
    std::fs::create_dir_all(dir.path().join("modules/solo")).unwrap();
    write(&dir.path().join("modules/solo"), "main.strata.hcl", "resource \"testing_object\" \"solo\" {\n  name = \"solo\"\n}\n");
    write(
        dir.path(),
        "main.strata.hcl",
        &root("module \"solo\" {\n  source = \"./modules/solo\"\n}\nmoved {\n  from = testing_object.solo\n  to   = module.solo.testing_object.solo\n}\n"),
    );
    let out = expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("0 to add, 0 to change, 0 to destroy. 1 to move."), "{}", stdout(&out));
    assert_eq!(state(dir.path())["module.solo.testing_object.solo"].0, solo_id);
    assert_no_orphans(dir.path());
}

#[test]
fn console_evaluates_against_configuration_and_state() {
    let dir = scratch();
    write(
        dir.path(),
        "main.strata.hcl",
        "variable \"pw\" {\n  default   = \"s3cret\"\n  sensitive = true\n}\nresource \"strata_data\" \"a\" {\n  input = { name = \"a\", pw = var.pw }\n}\n",
    );
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let mut child = command(dir.path(), &["console"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"strata_data.a.output.name\ncidrhost(\"10.0.0.0/24\", 5)\nvar.pw\nupper(var.pw)\n0.1 + 0.2 == 0.3\nstrata_data.b.id\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "the undeclared reference fails the session");
    assert_eq!(stdout(&out), "\"a\"\n\"10.0.0.5\"\n(sensitive value)\n(sensitive value)\ntrue\n");
    assert!(stderr(&out).contains("strata_data.b is not declared"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("s3cret") && !stderr(&out).contains("s3cret"));
}

#[test]
fn count_from_an_unknown_value_names_it_and_suggests_target() {
    let dir = scratch();
    write(
        dir.path(),
        "main.strata.hcl",
        "resource \"strata_data\" \"n\" {\n  input = 3\n}\nresource \"strata_data\" \"copies\" {\n  count = length(strata_data.n.id)\n  input = count.index\n}\n",
    );
    let out = expect(dir.path(), &["plan"], 1);
    let err = stderr(&out);
    assert!(err.contains("the count of strata_data.copies depends on values that are not known until apply (strata_data.n)"), "{err}");
    assert!(err.contains("-target strata_data.n"), "{err}");
    assert!(err.contains("main.strata.hcl:5:11"), "{err}");
}

/// Variables take their declared types as Terraform gives them (each
/// expected answer is what `terraform console` printed for the same
/// configuration): `list(any)` unifies its elements, an object type drops
/// undeclared attributes and fills optional ones, and `==` compares types.
#[test]
fn variable_types_unify_convert_and_compare_as_in_terraform() {
    let dir = scratch();
    write(
        dir.path(),
        "main.strata.hcl",
        r#"
variable "mixed" {
  type    = list(any)
  default = ["a", 1]
}
variable "m" {
  type    = map(any)
  default = { a = 1, b = "x" }
}
variable "obj" {
  type    = object({ name = string, size = optional(number, 10), tags = optional(map(string), {}) })
  default = { name = "a", extra = true }
}
variable "objs" {
  type    = list(object({ name = string, port = optional(number, 80) }))
  default = [{ name = "a", junk = 1 }, { name = "b", port = "8080" }]
}
variable "tup" {
  type    = tuple([string, number])
  default = [1, "2"]
}
"#,
    );
    let mut child = command(dir.path(), &["console"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    let questions = [
        ("var.mixed", r#"["a", "1"]"#),
        (r#"var.mixed == ["a", "1"]"#, "false"),
        (r#"var.mixed == tolist(["a", "1"])"#, "true"),
        ("var.m", r#"{a = "1", b = "x"}"#),
        (r#"var.m == tomap({a = "1", b = "x"})"#, "true"),
        ("var.obj", "{name = \"a\", size = 10, tags = {}}"),
        (r#"var.obj == {name = "a", size = 10, tags = {}}"#, "false"),
        ("var.obj.tags == tomap({})", "true"),
        ("var.objs", r#"[{name = "a", port = 80}, {name = "b", port = 8080}]"#),
        ("var.tup", r#"["1", 2]"#),
        (r#"var.tup == ["1", 2]"#, "true"),
    ];
    let input: String = questions.iter().map(|(q, _)| format!("{q}\n")).collect();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected: String = questions.iter().map(|(_, a)| format!("{a}\n")).collect();
    assert_eq!(stdout(&out), expected);
}

/// `path.root` is `.` and `path.module` the module's directory relative to
/// it, as Terraform gives them, and the filesystem functions read
/// `${path.module}/...` from a module, also when run with `-chdir`.
#[test]
fn module_paths_are_relative_and_files_are_found_from_chdir() {
    let parent = scratch();
    let dir = parent.path().join("env");
    std::fs::create_dir_all(dir.join("modules/x")).unwrap();
    std::fs::create_dir_all(parent.path().join("shared")).unwrap();
    write(&dir, "main.strata.hcl", "module \"x\" {\n  source = \"./modules/x\"\n}\nmodule \"s\" {\n  source = \"../shared\"\n}\noutput \"root\" {\n  value = path.root\n}\noutput \"module\" {\n  value = path.module\n}\noutput \"x\" {\n  value = module.x.info\n}\noutput \"s\" {\n  value = module.s.info\n}\n");
    let child = "output \"info\" {\n  value = { where = path.module, text = file(\"${path.module}/data.txt\"), exists = fileexists(\"${path.module}/data.txt\") }\n}\n";
    write(&dir.join("modules/x"), "main.strata.hcl", child);
    write(&dir.join("modules/x"), "data.txt", "from x");
    write(&parent.path().join("shared"), "main.strata.hcl", child);
    write(&parent.path().join("shared"), "data.txt", "from shared");
    expect(parent.path(), &["-chdir=env", "apply", "-auto-approve"], 0);
    let out = expect(parent.path(), &["-chdir=env", "output", "-json"], 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["root"]["value"], ".");
    assert_eq!(json["module"]["value"], ".");
    assert_eq!(json["x"]["value"], serde_json::json!({"where": "modules/x", "text": "from x", "exists": true}));
    assert_eq!(json["s"]["value"], serde_json::json!({"where": "../shared", "text": "from shared", "exists": true}));
}
