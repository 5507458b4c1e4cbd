//! `kvm_secret` against the real libvirtd (`scripts/libvirt-up.sh`):
//! lifecycle, a live value change on the same UUID, drift, import by UUID,
//! and the value never in Strata's output. Checked with `virsh secret-*`.

mod common;

use common::*;
use std::process::Command;

fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh").arg("-c").arg("qemu:///system").args(args).output().expect("run virsh");
    assert!(out.status.success(), "virsh {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// Test data in the shape of Ceph keys (base64), not real keys.
const KEY_A: &str = "AQBQxmdlAAAAABAA3OVLQ7nqCMZrHXpEDj1NzQ==";
const KEY_B: &str = "AQCMxmdlAAAAABAAq2k9vXwT0sL6bRJ3pYyFeg==";

fn config(name: &str, key: &str, description: &str) -> String {
    format!(
        "resource \"kvm_secret\" \"s\" {{\n  usage_name  = \"{name} secret\"\n  description = \"{description}\"\n  value       = \"{key}\"\n}}\n\noutput \"id\" {{\n  value = kvm_secret.s.id\n}}\n"
    )
}

fn uuid_of(usage: &str) -> Option<String> {
    virsh(&["secret-list"]).lines().find(|l| l.ends_with(usage)).and_then(|l| l.split_whitespace().next()).map(str::to_owned)
}

#[test]
fn a_secret_is_created_changed_live_drifts_is_imported_and_destroyed() {
    let ok = Command::new("virsh").args(["-c", "qemu:///system", "version"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "libvirtd is not reachable at qemu:///system: run `bash scripts/libvirt-up.sh` first");
    let first = scratch();
    let dir = first.path();
    let name = format!("st{}-sec", std::process::id());
    let usage = format!("{name} secret");

    write(dir, "main.strata.hcl", &config(&name, KEY_A, "one"));
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    assert!(!stdout(&out).contains(KEY_A) && !stderr(&out).contains(KEY_A), "the value leaked");
    assert!(stdout(&out).contains("(sensitive value)"), "{}", stdout(&out));
    let uuid = uuid_of(&usage).expect("libvirt lists the secret");
    assert_eq!(stdout(&expect(dir, &["output", "-raw", "id"], 0)).trim(), uuid, "its libvirt UUID is its id");
    assert_eq!(virsh(&["secret-get-value", &uuid]).trim(), KEY_A);
    let xml = virsh(&["secret-dumpxml", &uuid]);
    assert!(xml.contains("<usage type='ceph'>") && xml.contains("ephemeral='yes'") && xml.contains("<description>one</description>"), "{xml}");
    expect(dir, &["plan", "-detailed-exitcode"], 0);

    // A new value and description: in place, live, same UUID.
    write(dir, "main.strata.hcl", &config(&name, KEY_B, "two"));
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("kvm_secret.s will be updated in place (live)"), "{}", stdout(&out));
    assert!(!stdout(&out).contains(KEY_B) && !stdout(&out).contains(KEY_A), "the values leaked");
    assert_eq!(uuid_of(&usage).as_deref(), Some(uuid.as_str()));
    assert_eq!(virsh(&["secret-get-value", &uuid]).trim(), KEY_B);
    assert!(virsh(&["secret-dumpxml", &uuid]).contains("<description>two</description>"));

    // A value changed outside Strata shows in the next plan, and is put back.
    virsh(&["secret-set-value", &uuid, "--base64", KEY_A]);
    let out = expect(dir, &["plan", "-detailed-exitcode"], 2);
    assert!(stdout(&out).contains("kvm_secret.s will be updated in place"), "{}", stdout(&out));
    assert!(!stdout(&out).contains(KEY_A) && !stdout(&out).contains(KEY_B));
    expect(dir, &["apply", "-auto-approve"], 0);
    assert_eq!(virsh(&["secret-get-value", &uuid]).trim(), KEY_B);

    // Import by UUID into a fresh state.
    let other = scratch();
    write(other.path(), "main.strata.hcl", &config(&name, KEY_B, "two"));
    expect(other.path(), &["import", "kvm_secret.s", &uuid], 0);
    // (The output `id` is new to this state: only it changes.)
    let out = expect(other.path(), &["plan"], 0);
    assert!(stdout(&out).contains("Plan: 0 to add, 0 to change, 0 to destroy"), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(other.path().join(".strata"));

    // A value that is not base64 is refused, without being quoted.
    write(dir, "main.strata.hcl", &config(&name, "not base64!", "two"));
    let out = expect(dir, &["plan"], 1);
    // The message does not quote it (the snippet below it shows the user's own line).
    let message = stderr(&out).lines().next().unwrap_or_default().to_owned();
    assert!(message.contains("is not base64") && !message.contains("not base64!"), "{}", stderr(&out));

    write(dir, "main.strata.hcl", &config(&name, KEY_B, "two"));
    expect(dir, &["destroy", "-auto-approve"], 0);
    assert_eq!(uuid_of(&usage), None, "the secret is gone");
}

/// At `STRATA_LOG=trace` the log shows the libvirt calls (and the secret's
/// XML) but never the value, which the schema marks sensitive.
#[test]
fn a_trace_log_shows_the_libvirt_calls_and_never_the_value() {
    let root = scratch();
    let dir = root.path();
    let log = dir.join("trace.log");
    let name = format!("st{}-seclog", std::process::id());
    let usage = format!("{name} secret");
    let logged = |args: &[&str]| {
        let out = command(dir, args).env("STRATA_LOG", "trace").env("STRATA_LOG_PATH", &log).output().expect("run strata");
        assert!(out.status.success(), "{}", stderr(&out));
        format!("{}{}", stdout(&out), stderr(&out))
    };
    write(dir, "main.strata.hcl", &config(&name, KEY_A, "logged"));
    let mut printed = logged(&["apply", "-auto-approve"]);
    let uuid = uuid_of(&usage).expect("libvirt lists the secret");
    assert_eq!(virsh(&["secret-get-value", &uuid]).trim(), KEY_A);
    write(dir, "main.strata.hcl", &config(&name, KEY_B, "logged"));
    printed.push_str(&logged(&["apply", "-auto-approve"]));
    assert_eq!(virsh(&["secret-get-value", &uuid]).trim(), KEY_B);
    printed.push_str(&logged(&["destroy", "-auto-approve"]));
    assert_eq!(uuid_of(&usage), None, "the secret is gone");

    let text = std::fs::read_to_string(&log).unwrap();
    for key in [KEY_A, KEY_B] {
        assert!(!text.contains(key) && !printed.contains(key), "the value {key} is in the log or output");
    }
    assert_eq!(text.matches("call=\"virSecretSetValue\"").count(), 2, "one value set per apply, by name only:\n{text}");
    let xml = text.lines().find(|l| l.contains("libvirt XML") && l.contains("virSecretDefineXML")).expect("the secret's XML is logged");
    assert!(xml.contains(&uuid) && xml.contains("<description>logged</description>"), "{xml}");
    assert!(text.lines().any(|l| l.contains("call=\"create\"") && l.contains("type_name=\"kvm_secret\"") && l.contains("duration=")), "{text}");
}
