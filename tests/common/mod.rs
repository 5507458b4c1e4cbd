//! Helpers for end-to-end tests: run the real `strata` binary in a scratch
//! directory, with the fault-injecting `testing` provider enabled.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_strata"))
}

pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir)
        .args(args)
        .env("STRATA_ENABLE_TEST_PROVIDER", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("run strata")
}

pub fn spawn(dir: &Path, args: &[&str]) -> Child {
    command(dir, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn strata")
}

/// Runs strata and panics with its output unless it exits with `code`.
pub fn expect(dir: &Path, args: &[&str], code: i32) -> Output {
    let out = run(dir, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "strata {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("strata-test-").tempdir().expect("temp dir")
}

pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write config");
}

/// The objects of the testing provider's world: identity → content.
pub fn world(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("world")) else { return out };
    for e in entries {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let id = path.file_stem().unwrap().to_string_lossy().into_owned();
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            out.insert(id, v);
        }
    }
    out
}

/// The state as `strata show -json` reports it: address → (identity, values).
pub fn state(dir: &Path) -> BTreeMap<String, (String, serde_json::Value)> {
    let out = expect(dir, &["show", "-json"], 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut resources = BTreeMap::new();
    state_resources(&v["values"]["root_module"], &mut resources);
    resources
}

/// The resources of a module in Terraform's state representation and of
/// its `child_modules`, by address (deposed objects as `ADDR~KEY`).
fn state_resources(module: &serde_json::Value, out: &mut BTreeMap<String, (String, serde_json::Value)>) {
    for r in module["resources"].as_array().into_iter().flatten() {
        let mut address = r["address"].as_str().unwrap().to_owned();
        if let Some(deposed) = r["deposed"].as_str() {
            address = format!("{address}~{deposed}");
        }
        out.insert(address, (r["strata_id"].as_str().unwrap().to_owned(), r["values"].clone()));
    }
    for child in module["child_modules"].as_array().into_iter().flatten() {
        state_resources(child, out);
    }
}

/// Every object in the world is known to state under its identity, once,
/// and state knows nothing that does not exist.
pub fn assert_no_orphans(dir: &Path) {
    let world = world(dir);
    let state = state(dir);
    let state_ids: BTreeMap<&String, &String> = state.iter().map(|(a, (id, _))| (id, a)).collect();
    assert_eq!(state_ids.len(), state.len(), "two state entries share an identity: {state:#?}");
    for id in world.keys() {
        assert!(state_ids.contains_key(id), "object {id} exists but state does not know it\nstate: {state:#?}");
    }
    for (address, (id, _)) in &state {
        if address.starts_with("testing_object.") {
            assert!(world.contains_key(id), "state has {address} ({id}) but the object does not exist");
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// `generation` counts in-place updates, so an update and its rollback
/// leave it two higher: everything else must be as before.
pub fn strip(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("generation");
    }
    v
}

pub fn without_generation(w: BTreeMap<String, serde_json::Value>) -> BTreeMap<String, serde_json::Value> {
    w.into_iter().map(|(k, v)| (k, strip(v))).collect()
}
