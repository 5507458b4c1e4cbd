//! Strata's JSON in Terraform's formats, read by real consumers: Checkov's
//! plan scanner (`--framework terraform_plan`) must read every planned
//! resource, and jq rewrites of common conftest policies (deny deletes,
//! deny replacements) must give the same answer on a Strata plan as on
//! Terraform's plan of the equivalent `terraform_data` configuration.
//! Terraform's plan is a committed fixture (`tests/tf_json/terraform_plan.json`,
//! made once with Terraform 1.11 from `tests/tf_json/terraform/main.tf`:
//! `terraform apply`, then `terraform plan -var gen=2 -out p && terraform
//! show -json p`), so these tests do not need terraform.
//!
//! Checkov and jq are installed by `scripts/checkov-up.sh` (CI runs it);
//! the tests fail, naming the script, when either is missing. The rest of
//! the file checks every key of the formats one by one: `show -json` of a
//! plan and of the state, `validate -json`, `output -json`, `version
//! -json`, and the machine-readable UI of `plan -json` and `apply -json`.

mod common;

use common::*;
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::process::Command;

const SECRET: &str = "canary-7f3a9c";

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tf_json")
}

/// A directory where the comparison configuration was applied with gen=1,
/// and the `show -json` of its saved plan with gen=2 (also written to
/// `plan.json` there for the consumers).
fn strata_plan() -> (tempfile::TempDir, Json) {
    let dir = scratch();
    std::fs::copy(case_dir().join("main.strata.hcl"), dir.path().join("main.strata.hcl")).unwrap();
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    expect(dir.path(), &["plan", "-var", "gen=2", "-out", "p.plan"], 0);
    let out = expect(dir.path(), &["show", "-json", "p.plan"], 0);
    std::fs::write(dir.path().join("plan.json"), &out.stdout).unwrap();
    let text = stdout(&out);
    assert!(!text.contains(SECRET), "the plan JSON shows the secret:\n{text}");
    let v: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("show -json is not one JSON document: {e}\n{text}"));
    (dir, v)
}

fn tool(name: &str) -> PathBuf {
    let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().expect("run sh");
    assert!(found.status.success(), "{name} is not installed: run scripts/checkov-up.sh (CI does)");
    PathBuf::from(String::from_utf8_lossy(&found.stdout).trim())
}

/// Runs a policy of `tests/tf_json/policies/` on a plan JSON file.
fn jq(policy: &str, plan: &Path) -> Json {
    let out = Command::new(tool("jq"))
        .args(["-c", "-f"])
        .arg(case_dir().join("policies").join(policy))
        .arg(plan)
        .output()
        .expect("run jq");
    assert!(out.status.success(), "jq {policy} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("jq prints JSON")
}

/// Terraform's answer, with Strata's type name for terraform_data.
fn terraform_answer(policy: &str) -> Json {
    let answer = jq(policy, &case_dir().join("terraform_plan.json"));
    serde_json::from_str(&answer.to_string().replace("terraform_data", "strata_data")).unwrap()
}

#[test]
fn conftest_policies_in_jq_answer_as_on_terraforms_plan() {
    let (dir, _) = strata_plan();
    let plan = dir.path().join("plan.json");
    for policy in ["deny_delete.jq", "deny_replace.jq", "action_counts.jq", "carries_secrets.jq"] {
        let ours = jq(policy, &plan);
        let theirs = terraform_answer(policy);
        assert_eq!(ours, theirs, "{policy}: Strata's plan answers differently from Terraform's");
    }
    // The answers are not vacuous: a plan that destroys and replaces is denied.
    assert_eq!(
        jq("deny_delete.jq", &plan),
        json!(["strata_data.cbd would be destroyed", "strata_data.gone[0] would be destroyed", "strata_data.replaced would be destroyed"])
    );
    assert_eq!(
        jq("deny_replace.jq", &plan),
        json!(["strata_data.cbd would be replaced (create then delete)", "strata_data.replaced would be replaced (delete then create)"])
    );
}

/// Checkov's binary: `STRATA_CHECKOV`, or the virtual environment that
/// scripts/checkov-up.sh makes under target/.
fn checkov() -> PathBuf {
    let path = std::env::var_os("STRATA_CHECKOV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/checkov/bin/checkov"));
    assert!(path.exists(), "Checkov is not installed at {}: run scripts/checkov-up.sh (CI does)", path.display());
    path
}

/// Checkov's `-o json` report of a plan file, with only the custom check of
/// `tests/tf_json/checkov/` (Checkov has no checks of its own for
/// strata_data or terraform_data): which resources passed and failed.
fn checkov_report(plan: &Path) -> Json {
    let out = Command::new(checkov())
        .args(["--framework", "terraform_plan", "--skip-download", "--compact", "-o", "json", "-c", "CKV_STRATA_1", "--external-checks-dir"])
        .arg(case_dir().join("checkov"))
        .arg("-f")
        .arg(plan)
        // Offline: no platform, no version check.
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_CHECK_VERSION", "false")
        .env("ANSI_COLORS_DISABLED", "1")
        .env("LOG_LEVEL", "ERROR")
        .output()
        .expect("run checkov");
    let text = String::from_utf8_lossy(&out.stdout);
    // Exit 1 means "a check failed", which the custom check makes happen.
    assert!(matches!(out.status.code(), Some(0 | 1)), "checkov failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("checkov printed no JSON ({e}), exit {:?}:\n{text}\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
    // One framework: one report object (a list when several ran).
    let report = match report {
        Json::Array(mut reports) if reports.len() == 1 => reports.remove(0),
        other => other,
    };
    assert_eq!(report["check_type"], "terraform_plan", "{report}");
    report
}

/// The resources a Checkov report lists as passed or failed, sorted, with
/// Strata's type name for terraform_data.
fn checked(report: &Json, outcome: &str) -> Vec<String> {
    let mut out: Vec<String> = report["results"][outcome]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["resource"].as_str().unwrap().replace("terraform_data", "strata_data"))
        .collect();
    out.sort();
    out
}

#[test]
fn checkov_reads_every_planned_resource() {
    let (dir, plan) = strata_plan();
    // Checkov scans the resources a plan leaves: everything planned but the
    // pure deletion (gone[0]).
    let planned = plan["planned_values"]["root_module"]["resources"].as_array().unwrap().len();
    assert_eq!(planned, 5);
    let ours = checkov_report(&dir.path().join("plan.json"));
    assert_eq!(ours["summary"]["resource_count"], planned, "{ours}");
    assert_eq!(ours["summary"]["parsing_errors"], 0, "{ours}");
    assert_eq!(checked(&ours, "failed_checks"), ["strata_data.replaced"], "Checkov read the values: {ours}");
    assert_eq!(checked(&ours, "passed_checks").len(), 4, "{ours}");
    // Terraform's plan of the same configuration reads the same.
    let theirs = checkov_report(&case_dir().join("terraform_plan.json"));
    assert_eq!(ours["summary"]["resource_count"], theirs["summary"]["resource_count"], "Strata {ours}\nTerraform {theirs}");
    assert_eq!(checked(&ours, "passed_checks"), checked(&theirs, "passed_checks"));
    assert_eq!(checked(&ours, "failed_checks"), checked(&theirs, "failed_checks"));

    // Resources in modules, as child_modules, are read too.
    let dir = module_case();
    expect(dir.path(), &["plan", "-out", "p.plan"], 0);
    let out = expect(dir.path(), &["show", "-json", "p.plan"], 0);
    std::fs::write(dir.path().join("plan.json"), &out.stdout).unwrap();
    let report = checkov_report(&dir.path().join("plan.json"));
    assert_eq!(report["summary"]["resource_count"], 3, "{report}");
    assert_eq!(checked(&report, "passed_checks"), ["module.net[0].strata_data.lan", "module.net[1].strata_data.lan", "strata_data.root"], "{report}");
}

/// A root resource and a module called twice (count), one resource each.
fn module_case() -> tempfile::TempDir {
    let dir = scratch();
    std::fs::create_dir(dir.path().join("net")).unwrap();
    write(
        dir.path(),
        "main.strata.hcl",
        "resource \"strata_data\" \"root\" {\n  input = \"top\"\n}\n\nmodule \"net\" {\n  source = \"./net\"\n  count  = 2\n  name   = \"n${count.index}\"\n}\n",
    );
    write(
        &dir.path().join("net"),
        "main.strata.hcl",
        "variable \"name\" {\n  type = string\n}\n\nresource \"strata_data\" \"lan\" {\n  input = var.name\n}\n\noutput \"id\" {\n  value = strata_data.lan.id\n}\n",
    );
    dir
}

fn change<'a>(plan: &'a Json, address: &str) -> &'a Json {
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no resource change {address} in {plan}"))
}

#[test]
fn show_json_of_a_plan_has_terraforms_keys() {
    let (_dir, plan) = strata_plan();
    assert!(plan["format_version"].as_str().unwrap().starts_with("1."), "{plan}");
    assert_eq!(plan["terraform_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(plan["applyable"], true);
    assert_eq!(plan["errored"], false);

    // Actions, with the two orders of a replacement kept apart.
    for (address, actions) in [
        ("strata_data.keep", json!(["no-op"])),
        ("strata_data.changed", json!(["update"])),
        ("strata_data.replaced", json!(["delete", "create"])),
        ("strata_data.cbd", json!(["create", "delete"])),
        ("strata_data.gone[0]", json!(["delete"])),
        ("strata_data.fresh[0]", json!(["create"])),
    ] {
        assert_eq!(change(&plan, address)["change"]["actions"], actions, "{address}");
    }
    let replaced = change(&plan, "strata_data.replaced");
    assert_eq!(replaced["mode"], "managed");
    assert_eq!(replaced["type"], "strata_data");
    assert_eq!(replaced["name"], "replaced");
    assert_eq!(replaced["provider_name"], "strata/builtin/strata");
    assert_eq!(replaced["action_reason"], "replace_because_cannot_update");
    assert_eq!(replaced["change"]["replace_paths"], json!([["triggers_replace"]]));
    assert_eq!(replaced["change"]["before"]["triggers_replace"], 1);
    assert_eq!(replaced["change"]["after"]["triggers_replace"], 2);
    // The new identity is unknown: left out of `after`, marked in after_unknown.
    assert!(replaced["change"]["after"].get("id").is_none(), "{replaced}");
    assert_eq!(replaced["change"]["after_unknown"]["id"], true, "{replaced}");
    assert!(replaced["change"]["before"]["id"].is_string());
    assert_eq!(change(&plan, "strata_data.gone[0]")["index"], 0);
    assert_eq!(change(&plan, "strata_data.gone[0]")["action_reason"], "delete_because_count_index");
    assert_eq!(change(&plan, "strata_data.gone[0]")["change"]["after"], Json::Null);
    assert_eq!(change(&plan, "strata_data.gone[0]")["change"]["after_sensitive"], false);

    // Secrets: marked true at their nested path, never printed.
    let fresh = change(&plan, "strata_data.fresh[0]");
    assert_eq!(fresh["change"]["before"], Json::Null);
    assert_eq!(fresh["change"]["before_sensitive"], false);
    assert_eq!(fresh["change"]["after_sensitive"]["input"]["secret"], true, "{fresh}");
    assert_eq!(fresh["change"]["after"]["input"], json!({"name": "new"}), "{fresh}");
    let changed = change(&plan, "strata_data.changed");
    assert_eq!(changed["change"]["before"]["input"], json!({"size": 1, "tags": ["a", "b"]}));
    assert_eq!(changed["change"]["after"]["input"], json!({"size": 2, "tags": ["a", "b"]}));
    assert_eq!(changed["change"]["before_sensitive"], json!({}));

    // Strata's extras beside Terraform's keys.
    assert_eq!(replaced["disruption"], "replace", "{replaced}");
    assert_eq!(changed["disruption"], "live", "{changed}");
    assert!(changed["attribute_disruptions"].is_object(), "{changed}");
    assert!(changed["notes"].is_array(), "{changed}");
    assert!(changed.get("rollback_cannot_restore").is_some(), "{changed}");

    // Outputs.
    let secret_out = &plan["output_changes"]["secret_out"];
    assert_eq!(secret_out["actions"], json!(["no-op"]));
    assert_eq!(secret_out["after_sensitive"], true);
    assert_eq!(secret_out["before_sensitive"], true);
    assert_eq!(secret_out["after"], Json::Null);
    assert_eq!(plan["output_changes"]["keep_out"]["after"], "same");
    assert_eq!(plan["output_changes"]["keep_out"]["after_unknown"], false);

    // Variables: values, except a sensitive one's.
    assert_eq!(plan["variables"]["gen"]["value"], 2);
    assert_eq!(plan["variables"]["secret"]["value"], Json::Null);

    // planned_values: what the plan leaves; prior_state: what was there.
    let addresses = |module: &Json| -> Vec<String> {
        module["resources"].as_array().unwrap().iter().map(|r| r["address"].as_str().unwrap().to_owned()).collect()
    };
    let planned = &plan["planned_values"]["root_module"];
    let mut planned_addresses = addresses(planned);
    planned_addresses.sort();
    assert_eq!(planned_addresses, ["strata_data.cbd", "strata_data.changed", "strata_data.fresh[0]", "strata_data.keep", "strata_data.replaced"]);
    let fresh_planned = planned["resources"].as_array().unwrap().iter().find(|r| r["address"] == "strata_data.fresh[0]").unwrap();
    assert_eq!(fresh_planned["sensitive_values"]["input"]["secret"], true);
    assert_eq!(fresh_planned["schema_version"], 0);
    assert_eq!(plan["planned_values"]["outputs"]["secret_out"], json!({"sensitive": true, "type": "string"}));
    assert_eq!(plan["planned_values"]["outputs"]["keep_out"], json!({"sensitive": false, "type": "string", "value": "same"}));
    let prior = &plan["prior_state"];
    assert!(prior["format_version"].as_str().unwrap().starts_with("1."));
    let mut prior_addresses = addresses(&prior["values"]["root_module"]);
    prior_addresses.sort();
    assert_eq!(prior_addresses, ["strata_data.cbd", "strata_data.changed", "strata_data.gone[0]", "strata_data.keep", "strata_data.replaced"]);

    // The configuration, as written.
    let config = &plan["configuration"];
    assert_eq!(config["provider_config"]["strata"]["name"], "strata");
    let resources = config["root_module"]["resources"].as_array().unwrap();
    let cfg = |address: &str| resources.iter().find(|r| r["address"] == address).unwrap_or_else(|| panic!("{address} not in {config}"));
    assert_eq!(cfg("strata_data.keep")["provider_config_key"], "strata");
    assert_eq!(cfg("strata_data.keep")["expressions"]["input"], json!({"constant_value": "same"}));
    assert_eq!(cfg("strata_data.replaced")["expressions"]["triggers_replace"], json!({"references": ["var.gen"]}));
    assert_eq!(cfg("strata_data.gone")["count_expression"], json!({"references": ["var.gen"]}));
    assert_eq!(config["root_module"]["outputs"]["secret_out"]["sensitive"], true);
    assert_eq!(
        config["root_module"]["outputs"]["keep_out"]["expression"],
        json!({"references": ["strata_data.keep.output", "strata_data.keep"]})
    );
    assert_eq!(config["root_module"]["variables"]["gen"]["default"], 1);
    assert!(config["root_module"]["variables"]["secret"].get("default").is_none(), "a sensitive default is not printed");
}

#[test]
fn modules_are_child_modules() {
    let dir = module_case();
    expect(dir.path(), &["plan", "-out", "p.plan"], 0);
    let plan: Json = serde_json::from_slice(&expect(dir.path(), &["show", "-json", "p.plan"], 0).stdout).unwrap();
    let children = plan["planned_values"]["root_module"]["child_modules"].as_array().unwrap();
    let addresses: Vec<&str> = children.iter().map(|c| c["address"].as_str().unwrap()).collect();
    assert_eq!(addresses, ["module.net[0]", "module.net[1]"]);
    assert_eq!(children[1]["resources"][0]["address"], "module.net[1].strata_data.lan");
    let c = change(&plan, "module.net[1].strata_data.lan");
    assert_eq!(c["module_address"], "module.net[1]");
    assert_eq!(c["name"], "lan");
    let call = &plan["configuration"]["root_module"]["module_calls"]["net"];
    assert_eq!(call["source"], "./net");
    assert_eq!(call["count_expression"], json!({"constant_value": 2}));
    assert_eq!(call["expressions"]["name"], json!({"references": ["count.index"]}));
    assert_eq!(call["module"]["resources"][0]["address"], "strata_data.lan");
    assert_eq!(call["module"]["resources"][0]["expressions"]["input"], json!({"references": ["var.name"]}));

    // The state, after apply, nests the same way.
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let state: Json = serde_json::from_slice(&expect(dir.path(), &["show", "-json"], 0).stdout).unwrap();
    let children = state["values"]["root_module"]["child_modules"].as_array().unwrap();
    assert_eq!(children.len(), 2, "{state}");
    assert_eq!(children[0]["resources"][0]["values"]["input"], "n0");
}

#[test]
fn show_json_of_the_state_has_terraforms_keys() {
    let dir = scratch();
    std::fs::copy(case_dir().join("main.strata.hcl"), dir.path().join("main.strata.hcl")).unwrap();
    expect(dir.path(), &["apply", "-auto-approve", "-var", "gen=2"], 0);
    let out = expect(dir.path(), &["show", "-json"], 0);
    assert!(!stdout(&out).contains(SECRET), "{}", stdout(&out));
    let state: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(state["format_version"].as_str().unwrap().starts_with("1."));
    assert_eq!(state["terraform_version"], env!("CARGO_PKG_VERSION"));
    let resources = state["values"]["root_module"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 5, "{state}");
    let fresh = resources.iter().find(|r| r["address"] == "strata_data.fresh[0]").unwrap();
    assert_eq!(fresh["mode"], "managed");
    assert_eq!(fresh["type"], "strata_data");
    assert_eq!(fresh["name"], "fresh");
    assert_eq!(fresh["index"], 0);
    assert_eq!(fresh["provider_name"], "strata/builtin/strata");
    assert_eq!(fresh["values"]["input"], json!({"name": "new"}));
    assert_eq!(fresh["sensitive_values"]["input"]["secret"], true);
    assert!(fresh["values"]["id"].is_string());
    assert_eq!(state["values"]["outputs"]["keep_out"], json!({"sensitive": false, "type": "string", "value": "same"}));
    assert_eq!(state["values"]["outputs"]["secret_out"], json!({"sensitive": true, "type": "string"}));
}

#[test]
fn validate_json_has_terraforms_shape() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", "resource \"strata_data\" \"a\" {\n  input = var.nope\n}\n");
    let out = expect(dir.path(), &["validate", "-json"], 1);
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["format_version"].as_str().unwrap().starts_with("1."));
    assert_eq!(v["valid"], false);
    assert_eq!(v["error_count"], 1);
    assert_eq!(v["warning_count"], 0);
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert!(d["summary"].as_str().unwrap().contains("nope"), "{d}");
    assert!(d["detail"].is_string());
    // `var.nope` on line 2, columns 11 to 19, bytes 39 to 47, as Terraform counts.
    assert_eq!(d["range"], json!({"filename": "main.strata.hcl", "start": {"line": 2, "column": 11, "byte": 39}, "end": {"line": 2, "column": 19, "byte": 47}}));
    assert_eq!(d["snippet"]["code"], "  input = var.nope");
    assert_eq!(d["snippet"]["start_line"], 2);
    assert_eq!(d["snippet"]["highlight_start_offset"], 10);
    assert_eq!(d["snippet"]["highlight_end_offset"], 18);

    write(dir.path(), "main.strata.hcl", "resource \"strata_data\" \"a\" {\n  input = 1\n}\n");
    let v: Json = serde_json::from_slice(&expect(dir.path(), &["validate", "-json"], 0).stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["error_count"], 0);
    assert_eq!(v["diagnostics"], json!([]));
}

#[test]
fn output_and_version_json_have_terraforms_shape() {
    let dir = scratch();
    std::fs::copy(case_dir().join("main.strata.hcl"), dir.path().join("main.strata.hcl")).unwrap();
    write(
        dir.path(),
        "outputs.strata.hcl",
        "output \"list\" {\n  value = [\"a\", \"b\"]\n}\noutput \"obj\" {\n  value = { n = 1, s = \"x\" }\n}\n",
    );
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let out = expect(dir.path(), &["output", "-json"], 0);
    assert!(!stdout(&out).contains(SECRET));
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["keep_out"], json!({"sensitive": false, "type": "string", "value": "same"}));
    assert_eq!(v["secret_out"], json!({"sensitive": true, "type": "string"}));
    assert_eq!(v["list"], json!({"sensitive": false, "type": ["list", "string"], "value": ["a", "b"]}));
    assert_eq!(v["obj"], json!({"sensitive": false, "type": ["object", {"n": "number", "s": "string"}], "value": {"n": 1, "s": "x"}}));
    assert_eq!(stdout(&expect(dir.path(), &["output", "-json", "list"], 0)).trim(), r#"["a","b"]"#);
    let secret = expect(dir.path(), &["output", "-json", "secret_out"], 1);
    assert!(!stdout(&secret).contains(SECRET) && !stderr(&secret).contains(SECRET));
    assert!(stderr(&secret).contains("-raw"), "{}", stderr(&secret));

    let v: Json = serde_json::from_slice(&expect(dir.path(), &["version", "-json"], 0).stdout).unwrap();
    assert_eq!(v["terraform_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["platform"].as_str().unwrap().contains('_'), "{v}");
    assert_eq!(v["provider_selections"]["strata/builtin/strata"], env!("CARGO_PKG_VERSION"), "{v}");
    assert_eq!(v["terraform_outdated"], false);
}

/// Every stdout line of a machine-readable UI run, checked for the common
/// fields and parsed.
fn ui_lines(out: &std::process::Output) -> Vec<Json> {
    let text = stdout(out);
    assert!(!text.contains(SECRET), "a secret in the UI stream:\n{text}");
    assert!(!stderr(out).contains(SECRET), "a secret on stderr:\n{}", stderr(out));
    text.lines()
        .map(|line| {
            let v: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{text}"));
            for key in ["@level", "@message", "@module", "@timestamp", "type"] {
                assert!(v[key].is_string(), "{key} missing in {line}");
            }
            assert!(chrono::DateTime::parse_from_rfc3339(v["@timestamp"].as_str().unwrap()).is_ok(), "{line}");
            v
        })
        .collect()
}

fn of_type<'a>(lines: &'a [Json], kind: &str) -> Vec<&'a Json> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

#[test]
fn plan_and_apply_json_speak_terraforms_machine_readable_ui() {
    let dir = scratch();
    std::fs::copy(case_dir().join("main.strata.hcl"), dir.path().join("main.strata.hcl")).unwrap();
    expect(dir.path(), &["apply", "-auto-approve"], 0);

    let lines = ui_lines(&expect(dir.path(), &["plan", "-json", "-var", "gen=2"], 0));
    assert_eq!(lines[0]["type"], "version", "{lines:?}");
    assert_eq!(lines[0]["ui"], "1.2");
    let planned = of_type(&lines, "planned_change");
    let action = |address: &str| {
        planned
            .iter()
            .find(|l| l["change"]["resource"]["addr"] == address)
            .unwrap_or_else(|| panic!("no planned_change for {address}: {lines:?}"))["change"]["action"]
            .clone()
    };
    assert_eq!(planned.len(), 5, "no-op changes are not announced: {planned:?}");
    assert_eq!(action("strata_data.fresh[0]"), "create");
    assert_eq!(action("strata_data.changed"), "update");
    assert_eq!(action("strata_data.replaced"), "replace");
    assert_eq!(action("strata_data.cbd"), "replace");
    assert_eq!(action("strata_data.gone[0]"), "delete");
    let gone = planned.iter().find(|l| l["change"]["resource"]["addr"] == "strata_data.gone[0]").unwrap();
    assert_eq!(gone["change"]["resource"]["resource_key"], 0);
    assert_eq!(gone["change"]["resource"]["resource_type"], "strata_data");
    assert_eq!(gone["change"]["reason"], "delete_because_count_index");
    assert_eq!(gone["@message"], "strata_data.gone[0]: Plan to delete");
    let summary = of_type(&lines, "change_summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["changes"], json!({"add": 3, "change": 1, "import": 0, "remove": 3, "forget": 0, "operation": "plan"}));
    assert_eq!(summary[0]["@message"], "Plan: 3 to add, 1 to change, 3 to destroy.");
    let outputs = of_type(&lines, "outputs");
    assert_eq!(outputs[0]["outputs"]["secret_out"], json!({"sensitive": true, "action": "noop"}));

    let lines = ui_lines(&expect(dir.path(), &["apply", "-json", "-auto-approve", "-var", "gen=2"], 0));
    assert_eq!(lines[0]["type"], "version");
    let started = of_type(&lines, "apply_start");
    let completed = of_type(&lines, "apply_complete");
    assert_eq!(started.len(), completed.len(), "{lines:?}");
    assert!(started.len() >= 5, "{lines:?}");
    for c in &completed {
        assert!(c["hook"]["elapsed_seconds"].is_number(), "{c}");
        assert!(c["hook"]["resource"]["addr"].is_string(), "{c}");
    }
    let fresh = started.iter().find(|l| l["hook"]["resource"]["addr"] == "strata_data.fresh[0]").unwrap();
    assert_eq!(fresh["hook"]["action"], "create");
    assert_eq!(fresh["@message"], "strata_data.fresh[0]: Creating...");
    let summary = of_type(&lines, "change_summary");
    assert_eq!(summary.last().unwrap()["changes"]["operation"], "apply");
    assert_eq!(summary.last().unwrap()["changes"]["add"], 3, "{lines:?}");
    assert_eq!(summary.last().unwrap()["changes"]["remove"], 3, "{lines:?}");
    let outputs = of_type(&lines, "outputs");
    let last = &outputs.last().unwrap()["outputs"];
    assert_eq!(last["keep_out"], json!({"sensitive": false, "type": "string", "value": "same"}));
    assert_eq!(last["secret_out"], json!({"sensitive": true, "type": "string"}));
}

#[test]
fn a_failed_apply_reports_errors_and_its_rollback_as_ui_messages() {
    let dir = scratch();
    write(
        dir.path(),
        "main.strata.hcl",
        "variable \"fail\" {\n  default = false\n}\nprovider \"testing\" {\n  dir = \"${path.root}/world\"\n}\n\
         resource \"testing_object\" \"first\" {\n  name = \"first\"\n}\n\
         resource \"testing_object\" \"second\" {\n  name  = \"second\"\n  value = testing_object.first.id\n  fail  = var.fail\n}\n",
    );
    let out = run(dir.path(), &["apply", "-json", "-auto-approve", "-var", "fail=true"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let lines = ui_lines(&out);
    let errored = of_type(&lines, "apply_errored");
    assert_eq!(errored.len(), 1, "{lines:?}");
    assert_eq!(errored[0]["@level"], "error");
    assert_eq!(errored[0]["hook"]["resource"]["addr"], "testing_object.second");
    let diags = of_type(&lines, "diagnostic");
    assert!(diags.iter().any(|d| d["diagnostic"]["severity"] == "error" && d["diagnostic"]["address"] == "testing_object.second"), "{lines:?}");
    assert_eq!(of_type(&lines, "rollback_start").len(), 1, "{lines:?}");
    let undone = of_type(&lines, "rollback_resource_complete");
    assert_eq!(undone.len(), 1, "{lines:?}");
    assert_eq!(undone[0]["hook"]["resource"]["addr"], "testing_object.first");
    let done = of_type(&lines, "rollback_complete");
    assert_eq!(done[0]["rollback"]["rolled_back"], json!(["testing_object.first"]), "{lines:?}");
    assert_eq!(of_type(&lines, "change_summary").last().unwrap()["@level"], "error");
    assert!(world(dir.path()).is_empty(), "rolled back");
}

#[test]
fn configuration_errors_are_diagnostic_messages_on_stdout() {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", "resource \"strata_data\" \"a\" {\n  input = var.nope\n}\n");
    let out = expect(dir.path(), &["plan", "-json"], 1);
    let lines = ui_lines(&out);
    assert_eq!(lines[0]["type"], "version");
    let d = of_type(&lines, "diagnostic");
    assert_eq!(d.len(), 1, "{lines:?}");
    assert_eq!(d[0]["@level"], "error");
    assert_eq!(d[0]["diagnostic"]["range"]["start"]["line"], 2);
    assert!(d[0]["@message"].as_str().unwrap().starts_with("Error: "), "{}", d[0]);
}

#[test]
fn a_long_operation_reports_progress_every_ten_seconds() {
    let dir = scratch();
    write(
        dir.path(),
        "main.strata.hcl",
        "provider \"testing\" {\n  dir        = \"${path.root}/world\"\n  latency_ms = 12500\n}\nresource \"testing_object\" \"slow\" {\n  name = \"slow\"\n}\n",
    );
    let lines = ui_lines(&expect(dir.path(), &["apply", "-json", "-auto-approve"], 0));
    let progress = of_type(&lines, "apply_progress");
    assert_eq!(progress.len(), 1, "{lines:?}");
    assert_eq!(progress[0]["hook"]["elapsed_seconds"], 10);
    assert_eq!(progress[0]["@message"], "testing_object.slow: Still creating... [10s elapsed]");
}

#[test]
fn drift_moves_and_forgets_have_terraforms_keys() {
    let dir = scratch();
    let config = "provider \"testing\" {\n  dir = \"${path.root}/world\"\n}\n\
                  resource \"testing_object\" \"disk\" {\n  name = \"disk\"\n  size = 20\n}\n\
                  resource \"strata_data\" \"old\" {\n  input = 1\n}\n\
                  resource \"strata_data\" \"kept\" {\n  input = 2\n}\n";
    write(dir.path(), "main.strata.hcl", config);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    // Changed outside Strata: refresh finds it.
    let (id, obj) = world(dir.path()).into_iter().next().unwrap();
    let mut changed = obj.clone();
    changed["size"] = json!(25);
    std::fs::write(dir.path().join(format!("world/{id}.json")), changed.to_string()).unwrap();
    // `old` is renamed by a moved block; `kept` leaves the configuration but stays.
    let config = config
        .replace("\"old\"", "\"new\"")
        .replace("resource \"strata_data\" \"kept\" {\n  input = 2\n}\n", "removed {\n  from = strata_data.kept\n  lifecycle {\n    destroy = false\n  }\n}\n")
        + "moved {\n  from = strata_data.old\n  to   = strata_data.new\n}\n";
    write(dir.path(), "main.strata.hcl", &config);
    expect(dir.path(), &["plan", "-out", "p.plan"], 0);
    let plan: Json = serde_json::from_slice(&expect(dir.path(), &["show", "-json", "p.plan"], 0).stdout).unwrap();

    let drift = plan["resource_drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{plan}");
    assert_eq!(drift[0]["address"], "testing_object.disk");
    assert_eq!(drift[0]["change"]["actions"], json!(["update"]));
    assert_eq!(drift[0]["change"]["before"]["size"], 20);
    assert_eq!(drift[0]["change"]["after"]["size"], 25);
    assert_eq!(change(&plan, "testing_object.disk")["change"]["actions"], json!(["update"]));
    let moved = change(&plan, "strata_data.new");
    assert_eq!(moved["previous_address"], "strata_data.old", "{moved}");
    assert_eq!(moved["change"]["actions"], json!(["no-op"]));
    assert_eq!(change(&plan, "strata_data.kept")["change"]["actions"], json!(["forget"]));

    let lines = ui_lines(&expect(dir.path(), &["plan", "-json"], 0));
    let drifted = of_type(&lines, "resource_drift");
    assert_eq!(drifted.len(), 1, "{lines:?}");
    assert_eq!(drifted[0]["change"]["resource"]["addr"], "testing_object.disk");
    let planned = of_type(&lines, "planned_change");
    let action = |addr: &str| planned.iter().find(|l| l["change"]["resource"]["addr"] == addr).map(|l| l["change"]["action"].clone());
    assert_eq!(action("strata_data.new"), Some(json!("move")), "{lines:?}");
    assert_eq!(action("strata_data.kept"), Some(json!("remove")), "{lines:?}");
    let mv = planned.iter().find(|l| l["change"]["resource"]["addr"] == "strata_data.new").unwrap();
    assert_eq!(mv["change"]["previous_resource"]["addr"], "strata_data.old");
    assert_eq!(of_type(&lines, "change_summary")[0]["changes"]["forget"], 1);
}
