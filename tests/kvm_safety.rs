//! The KVM provider keeps Strata's promises at the worst moments, through
//! the CLI on a real libvirtd (`scripts/libvirt-up.sh`), checked with
//! `virsh`:
//! - a volume Strata did not create is never adopted, changed or deleted
//!   (not by rollback, not after `--no-rollback`, not by `destroy`);
//! - a network or pool left defined but stopped (what a kill between
//!   define and start leaves, here made with virsh and imported) is started
//!   by the next apply, and a stopped pool does not make refresh fail;
//! - a `kill -9` during the graceful shutdown of a restart update (the new
//!   definition stored, the guest still running the old one) does not lose
//!   the restart: the next apply does it.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh").arg("-c").arg("qemu:///system").args(args).output().expect("run virsh");
    assert!(out.status.success(), "virsh {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require_libvirt() {
    let ok = Command::new("virsh").args(["-c", "qemu:///system", "version"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "libvirtd is not reachable at qemu:///system: run `bash scripts/libvirt-up.sh` first");
}

fn name(tag: &str) -> String {
    format!("st{}-{tag}", std::process::id() % 10_000)
}

/// A dir pool made with virsh, outside Strata.
fn foreign_pool(dir: &Path, pool: &str) {
    let path = dir.join("pool");
    virsh(&["pool-define-as", pool, "dir", "--target", &path.display().to_string()]);
    virsh(&["pool-build", pool]);
    virsh(&["pool-start", pool]);
}

#[test]
fn a_volume_strata_did_not_create_is_never_adopted_or_deleted() {
    require_libvirt();
    let dir = scratch();
    let pool = name("foreign");
    foreign_pool(dir.path(), &pool);
    virsh(&["vol-create-as", &pool, "precious.qcow2", "8M", "--format", "qcow2"]);
    let key = virsh(&["vol-key", "--pool", &pool, "precious.qcow2"]);
    let precious_survives = |when: &str| {
        assert!(virsh(&["vol-list", &pool]).contains("precious.qcow2"), "the precious volume survives {when}");
        assert_eq!(virsh(&["vol-key", "--pool", &pool, "precious.qcow2"]), key);
        assert!(virsh(&["vol-info", "--pool", &pool, "precious.qcow2"]).contains("8.00 MiB"), "unchanged {when}");
        assert!(!state(dir.path()).contains_key("kvm_volume.precious"), "state never records it ({when})");
    };
    // A volume Strata does create in the same apply, so that rollback runs.
    write(
        dir.path(),
        "main.strata.hcl",
        &format!(
            r#"
resource "kvm_volume" "fresh" {{
  pool = "{pool}"
  name = "fresh.qcow2"
  size = 1048576
}}
resource "kvm_volume" "precious" {{
  pool       = "{pool}"
  name       = "precious.qcow2"
  size       = 16777216
  depends_on = [kvm_volume.fresh]
}}
"#
        ),
    );
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    let err = stderr(&out);
    assert!(err.contains("kvm_volume.precious") && err.contains("already exists") && err.contains("strata import"), "{err}");
    precious_survives("the rollback");
    assert!(!virsh(&["vol-list", &pool]).contains("fresh.qcow2"), "what the apply created was rolled back");

    let out = expect(dir.path(), &["apply", "-auto-approve", "--no-rollback"], 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    precious_survives("--no-rollback");
    assert!(virsh(&["vol-list", &pool]).contains("fresh.qcow2"), "--no-rollback keeps what was created");

    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    precious_survives("destroy");
    assert!(!virsh(&["vol-list", &pool]).contains("fresh.qcow2"));

    virsh(&["vol-delete", "--pool", &pool, "precious.qcow2"]);
    virsh(&["pool-destroy", &pool]);
    virsh(&["pool-delete", &pool]);
    virsh(&["pool-undefine", &pool]);
}

#[test]
fn networks_and_pools_left_stopped_are_started_by_the_next_apply() {
    require_libvirt();
    let dir = scratch();
    let (net, pool) = (name("half-net"), name("half-pool"));
    let cidr = format!("198.18.{}.0/24", (std::process::id() % 10_000 + 11 * 80) % 250);
    // Defined, never started: what a kill between define and start leaves.
    let xml = dir.path().join("net.xml");
    std::fs::write(&xml, format!("<network><name>{net}</name><ip address='{}' prefix='24'/></network>", cidr.replace("0/24", "1"))).unwrap();
    virsh(&["net-define", &xml.display().to_string()]);
    let path = dir.path().join("pool");
    virsh(&["pool-define-as", &pool, "dir", "--target", &path.display().to_string()]);
    let config = format!(
        r#"
resource "kvm_network" "n" {{
  name      = "{net}"
  addresses = ["{cidr}"]
}}
resource "kvm_pool" "p" {{
  name = "{pool}"
  path = "{path}"
}}
resource "kvm_volume" "v" {{
  pool = kvm_pool.p.name
  name = "v.qcow2"
  size = 1048576
}}
"#,
        path = path.display()
    );
    write(dir.path(), "main.strata.hcl", &config.replace(&config[config.find("resource \"kvm_volume\"").unwrap()..], ""));
    expect(dir.path(), &["import", "kvm_network.n", &net], 0);
    expect(dir.path(), &["import", "kvm_pool.p", &pool], 0);
    assert_eq!(state(dir.path())["kvm_pool.p"].1["active"], serde_json::json!(false), "state records that the pool is stopped");

    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 2);
    let plan = stdout(&out);
    assert!(plan.contains("kvm_network.n will be updated in place (live)") && plan.contains("kvm_pool.p will be updated in place (live)"), "{plan}");
    assert!(plan.contains("active"), "{plan}");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(virsh(&["net-info", &net]).contains("Active:         yes"));
    assert!(virsh(&["pool-info", &pool]).contains("running"));
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // A pool stopped behind Strata's back: refresh keeps its volume, the
    // plan starts the pool again.
    write(dir.path(), "main.strata.hcl", &config);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    virsh(&["pool-destroy", &pool]);
    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 2);
    assert!(stdout(&out).contains("kvm_pool.p will be updated in place (live)") && !stdout(&out).contains("kvm_volume.v"), "{}", stdout(&out));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(virsh(&["vol-list", &pool]).contains("v.qcow2"));
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["net-list", "--all", "--name"]).lines().any(|l| l.trim() == net));
    assert!(!virsh(&["pool-list", "--all", "--name"]).lines().any(|l| l.trim() == pool));
}

#[test]
fn kill_9_during_a_restart_update_does_not_lose_the_restart() {
    require_libvirt();
    let dir = scratch();
    let vm = name("restart-vm");
    // No OS: the guest ignores ACPI, so the graceful shutdown of a restart
    // waits the whole shutdown_timeout before it forces the guest off.
    let config = |graphics: &str| {
        format!(
            "resource \"kvm_domain\" \"vm\" {{\n  name             = \"{vm}\"\n  type             = \"qemu\"\n  memory           = 64\n  graphics         = \"{graphics}\"\n  shutdown_timeout = 6\n}}\n"
        )
    };
    write(dir.path(), "main.strata.hcl", &config("none"));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let boot = virsh(&["domid", &vm]).trim().to_owned();

    write(dir.path(), "main.strata.hcl", &config("vnc"));
    let mut child = spawn(dir.path(), &["apply", "-auto-approve"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !virsh(&["dumpxml", "--inactive", &vm]).contains("<graphics type='vnc'") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill -9 the apply");
    let _ = child.wait();
    assert!(virsh(&["dumpxml", "--inactive", &vm]).contains("<graphics type='vnc'"), "the new definition was stored");
    assert_eq!(virsh(&["domid", &vm]).trim(), boot, "killed while the guest still ran the old definition");
    assert!(!virsh(&["dumpxml", &vm]).contains("<graphics"));

    let out = expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("(restart)"), "the restart is planned again: {}\n{}", stdout(&out), stderr(&out));
    assert_ne!(virsh(&["domid", &vm]).trim(), boot, "the guest restarted");
    assert!(virsh(&["dumpxml", &vm]).contains("<graphics type='vnc'"), "into the new definition");
    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    assert!(stdout(&out).contains("No changes"), "{}", stdout(&out));

    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["list", "--all", "--name"]).lines().any(|l| l.trim() == vm));
}

#[test]
fn a_failed_apply_brings_replaced_volumes_and_networks_back() {
    require_libvirt();
    let dir = scratch();
    let base = name("replace");
    let cidr = format!("198.18.{}.0/24", (std::process::id() % 10_000 + 12 * 80) % 250);
    let config = |format: &str, mtu: &str, failing: bool| {
        let vm = if failing {
            // Fails after both replacements: libvirt rejects a missing volume.
            format!(
                "resource \"kvm_domain\" \"vm\" {{\n  name  = \"{base}-vm\"\n  type  = \"qemu\"\n  memory = 64\n  disks = [{{ pool = kvm_pool.p.name, volume = kvm_volume.data.name }}, {{ pool = kvm_pool.p.name, volume = \"missing.qcow2\" }}]\n  interfaces = [{{ network = kvm_network.n.name }}]\n}}\n"
            )
        } else {
            String::new()
        };
        format!(
            r#"
resource "kvm_pool" "p" {{
  name = "{base}-pool"
  path = "{path}"
}}
resource "kvm_volume" "data" {{
  pool   = kvm_pool.p.name
  name   = "data.img"
  format = "{format}"
  size   = 4194304
}}
resource "kvm_network" "n" {{
  name      = "{base}-net"
  addresses = ["{cidr}"]
  {mtu}
}}
{vm}"#,
            path = dir.path().join("pool").display()
        )
    };
    write(dir.path(), "main.strata.hcl", &config("qcow2", "", false));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let pool = format!("{base}-pool");
    let net_uuid = state(dir.path())["kvm_network.n"].0.clone();
    let path = state(dir.path())["kvm_volume.data"].1["path"].as_str().unwrap().to_owned();
    let qemu_io = |cmd: &str| {
        let out = Command::new("qemu-io").args(["-f", "qcow2", "-c", cmd, &path]).output().expect("run qemu-io");
        out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("fail")
    };
    assert!(qemu_io("write -P 0x3c 1M 1M"), "data written into the volume");

    // Both replaced (format and mtu force it; same names, so not
    // create_before_destroy), then the domain fails: rollback.
    write(dir.path(), "main.strata.hcl", &config("raw", "mtu = 1400", true));
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    assert!(stderr(&out).contains("missing.qcow2"), "{}", stderr(&out));
    assert!(virsh(&["vol-dumpxml", "--pool", &pool, "data.img"]).contains("<format type='qcow2'/>"), "the original volume is back");
    assert!(qemu_io("read -P 0x3c 1M 1M"), "with its data");
    assert!(!virsh(&["vol-list", &pool]).contains(".strata-retired-"), "nothing kept aside is left: {}", virsh(&["vol-list", &pool]));
    assert_eq!(virsh(&["net-uuid", &format!("{base}-net")]).trim(), net_uuid, "the original network is back");
    assert!(!virsh(&["net-dumpxml", &format!("{base}-net")]).contains("mtu"), "as it was");
    assert!(virsh(&["net-info", &format!("{base}-net")]).contains("Active:         yes"));
    assert!(!virsh(&["list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{base}-vm")));
    write(dir.path(), "main.strata.hcl", &config("qcow2", "", false));
    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    assert!(stdout(&out).contains("No changes"), "state matches the restored objects: {}", stdout(&out));

    // Without the failure the replacements stay and the kept copies go.
    write(dir.path(), "main.strata.hcl", &config("raw", "mtu = 1400", false));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(virsh(&["vol-dumpxml", "--pool", &pool, "data.img"]).contains("<format type='raw'/>"));
    assert!(!virsh(&["vol-list", &pool]).contains(".strata-retired-"), "the retired volume was discarded: {}", virsh(&["vol-list", &pool]));
    assert_ne!(virsh(&["net-uuid", &format!("{base}-net")]).trim(), net_uuid);

    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["pool-list", "--all", "--name"]).lines().any(|l| l.trim() == pool));
    assert!(!virsh(&["net-list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{base}-net")));
}
