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
