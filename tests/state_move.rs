//! `strata state pull` and `strata state push` through the CLI: the pulled
//! JSON goes back unchanged, into another workspace, and is refused over an
//! unrelated lineage or a newer serial unless `-force`.

mod common;

use common::*;

const CONFIG: &str = r#"
provider "testing" {
  dir = "${path.root}/world"
}
resource "testing_object" "disk" {
  name = "disk"
  size = 3
}
output "size" {
  value = testing_object.disk.size
}
"#;

fn pulled(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&expect(dir, &["state", "pull"], 0).stdout).expect("state pull prints JSON")
}

#[test]
fn pull_and_push_keep_lineage_and_serial_rules() {
    let root = scratch();
    let a = root.path().join("a");
    let b = root.path().join("b");
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        write(d, "main.strata.hcl", CONFIG);
        expect(d, &["apply", "-auto-approve"], 0);
    }
    let state = pulled(&a);
    assert_eq!(state["strata_state_version"], 1);
    assert!(state["instances"]["testing_object.disk"]["id"].is_string(), "{state:#}");
    assert_eq!(state["outputs"]["size"], 3);
    let saved = root.path().join("a.json");
    std::fs::write(&saved, serde_json::to_vec(&state).unwrap()).unwrap();
    let saved = saved.to_str().unwrap();

    let out = expect(&a, &["state", "push", saved], 0);
    assert!(stderr(&out).contains("nothing was written"), "{}", stderr(&out));

    // The state moved on: the pulled copy is older and is refused.
    expect(&a, &["state", "rm", "testing_object.disk"], 0);
    let out = expect(&a, &["state", "push", saved], 1);
    assert!(stderr(&out).contains("over newer state with serial"), "{}", stderr(&out));
    assert_eq!(stdout(&expect(&a, &["state", "list"], 0)), "");
    let out = expect(&a, &["state", "push", "-force", saved], 0);
    assert!(stderr(&out).contains("Pushed"), "{}", stderr(&out));
    assert_eq!(stdout(&expect(&a, &["state", "list"], 0)), "testing_object.disk\n");
    expect(&a, &["plan", "-detailed-exitcode"], 0);
    assert_eq!(pulled(&a)["instances"], state["instances"]);

    // Another configuration's state has another lineage.
    let out = expect(&b, &["state", "push", saved], 1);
    assert!(stderr(&out).contains("over unrelated state with lineage"), "{}", stderr(&out));
    assert_ne!(pulled(&b)["instances"], state["instances"], "nothing was written");

    // An empty workspace takes any state; stdin works too.
    expect(&b, &["workspace", "new", "copy"], 0);
    let mut child = command(&b, &["state", "push", "-"]).stdin(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &serde_json::to_vec(&state).unwrap()).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(pulled(&b)["instances"], state["instances"]);

    let out = expect(&b, &["state", "push", "/nonexistent/x.json"], 1);
    assert!(stderr(&out).contains("cannot read /nonexistent/x.json"), "{}", stderr(&out));
    std::fs::write(b.join("junk.json"), "{}").unwrap();
    let out = expect(&b, &["state", "push", "junk.json"], 1);
    assert!(stderr(&out).contains("is not a state written by strata state pull"), "{}", stderr(&out));
}
