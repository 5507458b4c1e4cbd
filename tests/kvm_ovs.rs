//! One model for guests and switches: a tiny guest booted by `strata apply`
//! plugs into an Open vSwitch bridge (userspace datapath) by reference, on
//! an access VLAN, with a static address from its kernel command line, and
//! a security group names its NIC by `kvm_domain.vm.macs[0]`. A namespace
//! on the same VLAN pings it, one on the other VLAN cannot; moving the NIC
//! to the other VLAN with `strata apply` re-tags the port live (same
//! domain, no reboot) and flips that. Making the NIC a trunk with a native
//! VLAN is live too. A port re-tagged with `ovs-vsctl` behind libvirt's
//! back shows as drift and the apply restores it. Everything is checked
//! with the real clients (`virsh`, `ovs-vsctl`, `ovs-ofctl`) and real
//! traffic.
//!
//! libvirt calls `ovs-vsctl` itself, so this needs the default Open vSwitch
//! (`scripts/ovs-up.sh`) and libvirtd (`scripts/libvirt-up.sh`); the guest
//! is built by `scripts/tiny-guest.sh`. One boot for the whole test.

mod common;
#[path = "common/guest.rs"]
mod guest;

use common::*;
use guest::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = sh(program, args);
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn virsh(args: &[&str]) -> String {
    ok("virsh", &[&["-c", "qemu:///system"], args].concat())
}

fn vsctl(args: &[&str]) -> String {
    ok("ovs-vsctl", &[&["--timeout=10"], args].concat())
}

/// What the test creates outside Strata, and what Strata should have
/// removed, cleaned up however the test ends (the default Open vSwitch and
/// libvirt are shared with the rest of the machine).
struct Leftovers {
    domain: String,
    bridge: String,
    namespaces: Vec<String>,
    veths: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let _ = sh("virsh", &["-c", "qemu:///system", "destroy", &self.domain]);
        let _ = sh("virsh", &["-c", "qemu:///system", "undefine", &self.domain]);
        let _ = sh("ovs-vsctl", &["--timeout=10", "--if-exists", "del-br", &self.bridge]);
        for v in &self.veths {
            let _ = sh("ip", &["link", "del", v]);
        }
        for ns in &self.namespaces {
            let _ = sh("ip", &["netns", "del", ns]);
        }
    }
}

/// A namespace with `eth0` (the peer of `host_end`, left in the host's
/// namespace for the bridge) holding `addresses`.
fn namespace(ns: &str, host_end: &str, addresses: &[&str]) {
    ok("ip", &["netns", "add", ns]);
    ok("ip", &["link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    ok("ip", &["link", "set", host_end, "up"]);
    for a in addresses {
        ok("ip", &["netns", "exec", ns, "ip", "addr", "add", a, "dev", "eth0"]);
    }
    ok("ip", &["netns", "exec", ns, "ip", "link", "set", "eth0", "up"]);
    ok("ip", &["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
}

/// Whether a ping from `ns` (from `source`) reaches `addr` within a few
/// tries (the guest under TCG answers slowly, the first one waits for ARP).
fn pings(ns: &str, source: &str, addr: &str, tries: u32) -> bool {
    (0..tries).any(|_| sh("ip", &["netns", "exec", ns, "ping", "-c", "1", "-W", "2", "-I", source, addr]).status.success())
}

/// `nic` is the NIC's VLAN attributes, e.g. `vlan = 10`.
fn config(dir: &Path, guest: &Path, name: &str, nic: &str) -> String {
    format!(
        r#"
resource "ovs_bridge" "lan" {{
  name          = "{name}"
  datapath_type = "netdev"
}}

resource "ovs_port" "tenant10" {{
  bridge = ovs_bridge.lan.name
  name   = "{name}a"
  type   = "system"
  tag    = 10
}}

resource "ovs_port" "tenant20" {{
  bridge = ovs_bridge.lan.name
  name   = "{name}b"
  type   = "system"
  tag    = 20
}}

resource "kvm_domain" "vm" {{
  name             = "{name}-vm"
  memory           = 128
  kernel           = "{guest}/vmlinuz"
  initrd           = "{guest}/initrd.img"
  cmdline          = "console=ttyS0 panic=-1 strata.ip=198.18.40.10/24"
  interfaces       = [{{ ovs_bridge = ovs_bridge.lan.name, {nic} }}]
  serial_log       = "{dir}/console.log"
  shutdown_timeout = 10
}}

# ICMP to the guest only from 198.18.40.0/30: the tenants' first addresses.
resource "ovs_security_group" "vm" {{
  bridge      = ovs_bridge.lan.name
  attachments = [kvm_domain.vm.macs[0]]
  rules = [
    {{ direction = "ingress", protocol = "icmp", remote_cidr = "198.18.40.0/30" }},
    {{ direction = "egress" }},
  ]
}}

output "mac" {{
  value = kvm_domain.vm.macs[0]
}}
"#,
        dir = dir.display(),
        guest = guest.display(),
    )
}

#[test]
fn a_guest_on_an_ovs_vlan_reaches_its_vlan_and_moves_live() {
    assert!(
        sh("virsh", &["-c", "qemu:///system", "version"]).status.success(),
        "libvirtd is not reachable at qemu:///system: run `bash scripts/libvirt-up.sh` first"
    );
    assert!(
        sh("ovs-vsctl", &["--timeout=5", "show"]).status.success(),
        "the default Open vSwitch is not running: run `bash scripts/ovs-up.sh` first"
    );
    let guest = tiny_guest();
    let scratch = scratch();
    let dir = scratch.path();
    // QEMU runs as libvirt-qemu: it must reach the console log.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let name = format!("sk{}", std::process::id() % 100_000);
    let (ns10, ns20) = (format!("{name}n10"), format!("{name}n20"));
    let _leftovers = Leftovers {
        domain: format!("{name}-vm"),
        bridge: name.clone(),
        namespaces: vec![ns10.clone(), ns20.clone()],
        veths: vec![format!("{name}a"), format!("{name}b")],
    };
    // The tenant on VLAN 10 has a second address the security group refuses.
    namespace(&ns10, &format!("{name}a"), &["198.18.40.1/24", "198.18.40.5/24"]);
    namespace(&ns20, &format!("{name}b"), &["198.18.40.2/24"]);

    write(dir, "main.strata.hcl", &config(dir, &guest, &name, "vlan = 10"));
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    let vm = format!("{name}-vm");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !console(dir).contains("GUEST-STATIC") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(console(dir).contains("GUEST-STATIC 198.18.40.10/24"), "the guest took its address:\n{}\n{}", console(dir), stderr(&out));

    // The guest's tap is a port of the bridge, with the access tag.
    let iflist = virsh(&["domiflist", &vm]);
    let row = iflist.lines().find(|l| l.contains("vnet")).unwrap_or_else(|| panic!("no tap in {iflist}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    let (tap, mac) = (fields[0].to_owned(), fields[4].to_owned());
    assert_eq!(vsctl(&["port-to-br", &tap]), name, "{}", vsctl(&["show"]));
    assert_eq!(vsctl(&["get", "port", &tap, "tag"]), "10");
    assert_eq!(vsctl(&["get", "interface", &tap, "external_ids:attached-mac"]).trim_matches('"'), mac);
    assert_eq!(stdout(&expect(dir, &["output", "-raw", "mac"], 0)).trim(), mac, "macs[0] is the NIC's MAC");
    // The security group compiled the guest's MAC into the bridge's flows.
    let flows = ok("ovs-ofctl", &["dump-flows", &name]);
    assert!(flows.contains(&format!("dl_dst={mac}")) && flows.contains("nw_src=198.18.40.0/30"), "{flows}");
    expect(dir, &["plan", "-detailed-exitcode"], 0);

    assert!(pings(&ns10, "198.18.40.1", "198.18.40.10", 15), "the tenant on VLAN 10 reaches the guest on VLAN 10\n{}", vsctl(&["show"]));
    assert!(!pings(&ns10, "198.18.40.5", "198.18.40.10", 1), "the security group refuses ICMP from outside 198.18.40.0/30");
    assert!(!pings(&ns20, "198.18.40.2", "198.18.40.10", 1), "the tenant on VLAN 20 does not");
    let domid = virsh(&["domid", &vm]);

    // Moving the NIC to VLAN 20 re-tags the running guest's port.
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, "vlan = 20"));
    let out = expect(dir, &["plan"], 0);
    assert!(stdout(&out).contains("kvm_domain.vm will be updated in place (live)"), "{}", stdout(&out));
    expect(dir, &["apply", "-auto-approve"], 0);
    assert_eq!(vsctl(&["get", "port", &tap, "tag"]), "20", "the port was re-tagged");
    assert_eq!(virsh(&["domid", &vm]), domid, "the same running domain");
    assert_eq!(console(dir).matches("GUEST-UP").count(), 1, "the guest did not reboot");
    assert!(virsh(&["dumpxml", "--inactive", &vm]).contains("<tag id='20'/>"), "the persistent definition has the new VLAN too");
    assert!(pings(&ns20, "198.18.40.2", "198.18.40.10", 10), "now the tenant on VLAN 20 reaches the guest");
    assert!(!pings(&ns10, "198.18.40.1", "198.18.40.10", 1), "and the one on VLAN 10 does not");
    expect(dir, &["plan", "-detailed-exitcode"], 0);

    // Re-tagged behind libvirt's back: the plan sees the VLAN the port
    // really has (OVSDB), and the apply puts VLAN 20 back, live.
    vsctl(&["set", "port", &tap, "tag=99"]);
    let out = expect(dir, &["plan", "-detailed-exitcode"], 2);
    let text = stdout(&out);
    assert!(text.contains("kvm_domain.vm will be updated in place (live)") && text.contains("99"), "the drift shows:\n{text}");
    assert!(!pings(&ns20, "198.18.40.2", "198.18.40.10", 1), "on VLAN 99 the tenant on VLAN 20 no longer reaches the guest");
    expect(dir, &["apply", "-auto-approve"], 0);
    assert_eq!(vsctl(&["get", "port", &tap, "tag"]), "20", "the apply restored the tag");
    assert_eq!(virsh(&["domid", &vm]), domid, "the same running domain");
    assert!(pings(&ns20, "198.18.40.2", "198.18.40.10", 10), "the tenant on VLAN 20 reaches the guest again");
    expect(dir, &["plan", "-detailed-exitcode"], 0);

    // A trunk whose native (untagged) VLAN is 20: live too, and the guest's
    // untagged traffic stays on VLAN 20.
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, "vlan = 20, trunks = [10, 30]"));
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("kvm_domain.vm will be updated in place (live)"), "{}", stdout(&out));
    assert_eq!(vsctl(&["get", "port", &tap, "vlan_mode"]), "native-untagged");
    assert_eq!(vsctl(&["get", "port", &tap, "tag"]), "20");
    assert_eq!(vsctl(&["get", "port", &tap, "trunks"]), "[10, 20, 30]");
    assert_eq!(virsh(&["domid", &vm]), domid, "still the same running domain");
    assert!(pings(&ns20, "198.18.40.2", "198.18.40.10", 5), "the native VLAN still reaches the guest");
    expect(dir, &["plan", "-detailed-exitcode"], 0);

    expect(dir, &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["list", "--all", "--name"]).lines().any(|l| l.trim() == vm), "the guest is gone");
    assert!(!vsctl(&["list-br"]).lines().any(|b| b == name), "the bridge is gone, after the guest");
}
