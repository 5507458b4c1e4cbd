//! The examples under `examples/` keep working: each is validated, formatted
//! as `strata fmt` would write it, and planned against the real daemons the
//! test environment starts (libvirtd, Open vSwitch, the Ceph test cluster),
//! from a scratch copy so that no state lands in the repository. The lab is
//! applied for real by the README's main command and `tests/kvm_guest.rs`;
//! this keeps the others from rotting unseen.

mod common;
#[path = "common/guest.rs"]
mod guest;

use common::*;
use std::path::Path;

/// Copies `examples/NAME` into a scratch directory.
fn example(name: &str) -> tempfile::TempDir {
    let dir = scratch();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    for entry in std::fs::read_dir(&source).expect("read the example") {
        let path = entry.expect("example entry").path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().expect("file name"))).expect("copy the example");
        }
    }
    dir
}

/// The Ceph test cluster's configuration, as `scripts/ceph-up.sh` prints it.
fn ceph_env(cmd: &mut std::process::Command) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ceph");
    let conf = std::env::var_os("CEPH_CONF").unwrap_or_else(|| root.join("ceph.conf").into());
    let keyring = std::env::var_os("CEPH_KEYRING").unwrap_or_else(|| root.join("ceph.client.admin.keyring").into());
    assert!(Path::new(&conf).is_file(), "no Ceph test cluster: run `eval \"$(bash scripts/test-env-up.sh)\"` first");
    cmd.env("CEPH_CONF", conf).env("CEPH_KEYRING", keyring);
}

fn check(name: &str, vars: &[String], adds: usize) {
    let dir = example(name);
    let mut args: Vec<&str> = vec!["plan", "-no-color"];
    for v in vars {
        args.extend(["-var", v]);
    }
    expect(dir.path(), &["validate"], 0);
    let fmt = expect(dir.path(), &["fmt", "-check", "-diff"], 0);
    assert!(stdout(&fmt).trim().is_empty(), "examples/{name} is not formatted:\n{}", stdout(&fmt));
    let mut cmd = command(dir.path(), &args);
    ceph_env(&mut cmd);
    let out = cmd.output().expect("run strata plan");
    let text = stdout(&out);
    assert!(out.status.success(), "plan of examples/{name} failed:\n{text}\n{}", stderr(&out));
    let summary = format!("Plan: {adds} to add, 0 to change, 0 to destroy.");
    assert!(text.contains(&summary), "examples/{name}: expected {summary:?} in:\n{text}");
}

fn guest_dir() -> String {
    guest::tiny_guest().display().to_string()
}

#[test]
fn basic_plans() {
    check("basic", &[], 4);
}

#[test]
fn lab_plans() {
    check("lab", &[format!("guest_dir={}", guest_dir())], 9);
}

#[test]
fn ovs_lab_plans() {
    check("ovs-lab", &[format!("guest_dir={}", guest_dir())], 5);
}

#[test]
fn ceph_lab_plans() {
    check("ceph-lab", &[format!("guest_kernel_dir={}", guest_dir())], 11);
}
