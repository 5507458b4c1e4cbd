//! A real guest created by `strata apply` boots on real libvirt/QEMU: its
//! serial console prints the tiny guest's markers, it gets a DHCP lease from
//! a Strata-managed network and sees its disks; memory and vCPUs change live
//! (same domain ID, no reboot), a kernel command-line change restarts it.
//! `scripts/libvirt-up.sh` starts libvirtd; `scripts/tiny-guest.sh` builds
//! the guest from Debian packages (cached in /var/cache/strata/tiny-guest).

mod common;
#[path = "common/guest.rs"]
mod guest;

use common::*;
use guest::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh").arg("-c").arg("qemu:///system").args(args).output().expect("run virsh");
    assert!(out.status.success(), "virsh {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the tests vary in the guest's configuration.
#[derive(Clone, Copy)]
struct Shape<'a> {
    memory: u64,
    vcpus: u64,
    cmdline: &'a str,
    data_size: u64,
    nics: usize,
}

const START: Shape = Shape { memory: 128, vcpus: 1, cmdline: "console=ttyS0 panic=-1", data_size: 8388608, nics: 1 };

fn config(dir: &Path, guest: &Path, name: &str, net: &str, shape: Shape) -> String {
    let Shape { memory, vcpus, cmdline, data_size, nics } = shape;
    let interfaces = vec!["{ network = kvm_network.lab.name }"; nics].join(", ");
    format!(
        r##"
resource "kvm_network" "lab" {{
  name      = "{name}-net"
  addresses = ["{net}"]
  dhcp      = true
}}

resource "kvm_pool" "lab" {{
  name = "{name}-pool"
  path = "{dir}/pool"
}}

resource "kvm_volume" "data" {{
  pool   = kvm_pool.lab.name
  name   = "data.raw"
  format = "raw"
  size   = {data_size}
}}

resource "kvm_cloudinit_disk" "seed" {{
  pool      = kvm_pool.lab.name
  name      = "seed.iso"
  user_data = "#cloud-config\nhostname: {name}\n"
}}

resource "kvm_domain" "vm" {{
  name       = "{name}-vm"
  memory     = {memory}
  max_memory = 256
  vcpus      = {vcpus}
  max_vcpus  = 2
  kernel     = "{guest}/vmlinuz"
  initrd     = "{guest}/initrd.img"
  cmdline    = "{cmdline}"
  disks = [
    {{ pool = kvm_pool.lab.name, volume = kvm_volume.data.name }},
    {{ pool = kvm_pool.lab.name, volume = kvm_cloudinit_disk.seed.name, readonly = true }},
  ]
  interfaces       = [{interfaces}]
  serial_log       = "{dir}/console.log"
  wait_for_ip      = 120
  shutdown_timeout = 30
}}

output "ip" {{
  value = kvm_domain.vm.ip_addresses
}}
"##,
        dir = dir.display(),
        guest = guest.display(),
    )
}

#[test]
fn a_domain_boots_gets_a_lease_and_changes_live() {
    let ok = Command::new("virsh").args(["-c", "qemu:///system", "version"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "libvirtd is not reachable at qemu:///system: run `bash scripts/libvirt-up.sh` first");
    let guest = tiny_guest();
    let scratch = scratch();
    let dir = scratch.path();
    // QEMU runs as libvirt-qemu: it must reach the pool and the log.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let n = std::process::id() % 10_000;
    let name = format!("st{n}-boot");
    let net = format!("198.19.{}.0/24", n % 250);
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, &net, START));
    let out = expect(dir, &["apply", "-auto-approve"], 0);

    let log = wait_for(dir, "GUEST-READY", 60);
    assert!(log.contains("GUEST-UP"), "the guest booted:\n{log}\n{}", stderr(&out));
    assert!(log.contains("GUEST-DISK vda"), "it sees its data disk:\n{log}");
    assert!(log.contains("GUEST-SEED instance-id: seed local-hostname: seed"), "it reads the cloud-init seed:\n{log}");
    let prefix = net.trim_end_matches("0/24");
    assert!(log.contains(&format!("GUEST-LEASE {prefix}")), "it got a lease from the Strata network:\n{log}");
    let ips = stdout(&expect(dir, &["output", "-json", "ip"], 0));
    assert!(ips.contains(prefix), "the lease is in state: {ips}");
    expect(dir, &["plan", "-detailed-exitcode"], 0);

    let vm = format!("{name}-vm");
    let domid = virsh(&["domid", &vm]).trim().to_owned();

    // Memory and vCPUs within their maximums change live: same domain, no reboot.
    let live = Shape { memory: 96, vcpus: 2, ..START };
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, &net, live));
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("kvm_domain.vm will be updated in place (live)"), "{}", stdout(&out));
    assert_eq!(virsh(&["domid", &vm]).trim(), domid, "the domain kept running");
    assert_eq!(console(dir).matches("GUEST-UP").count(), 1, "the guest did not reboot");
    // The balloon driver hands the memory back within moments.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !virsh(&["dominfo", &vm]).contains("Used memory:    98304 KiB") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(virsh(&["dominfo", &vm]).contains("Used memory:    98304 KiB"), "{}", virsh(&["dominfo", &vm]));
    assert_eq!(virsh(&["vcpucount", &vm, "--live", "--active"]).trim(), "2");
    expect(dir, &["plan", "-detailed-exitcode"], 0);

    // A NIC is hot-plugged and unplugged live.
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, &net, Shape { nics: 2, ..live }));
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("kvm_domain.vm will be updated in place (live)"), "{}", stdout(&out));
    assert_eq!(virsh(&["domiflist", &vm]).matches("virtio").count(), 2);
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, &net, live));
    expect(dir, &["apply", "-auto-approve"], 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while virsh(&["domiflist", &vm]).matches("virtio").count() != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(virsh(&["domiflist", &vm]).matches("virtio").count(), 1, "the NIC was unplugged");

    // Growing the disk of a running guest is live: the guest sees the size.
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, &net, Shape { data_size: 16777216, ..live }));
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("kvm_volume.data will be updated in place (live)"), "{}", stdout(&out));
    assert!(virsh(&["domblkinfo", &vm, "vda"]).contains("Capacity:       16777216"), "{}", virsh(&["domblkinfo", &vm, "vda"]));
    assert_eq!(virsh(&["domid", &vm]).trim(), domid, "still the same running domain");
    assert_eq!(console(dir).matches("GUEST-UP").count(), 1, "no reboot through all of that");

    // Drift: memory changed with virsh shows in the next plan.
    virsh(&["setmem", &vm, "112M", "--config"]);
    let live = Shape { data_size: 16777216, ..live };
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, &net, live));
    let out = expect(dir, &["plan", "-detailed-exitcode"], 2);
    assert!(stdout(&out).contains("changed outside of Strata") && stdout(&out).contains("memory"), "{}", stdout(&out));
    expect(dir, &["apply", "-auto-approve"], 0);

    // Recreating the network says so, and the running guest is re-attached.
    std::fs::write(dir.join("main.strata.hcl"), config(dir, &guest, &name, &net, live).replace("  dhcp      = true\n", "  dhcp      = true\n  mtu       = 1400\n")).unwrap();
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("kvm_network.lab must be replaced (mtu forces replacement)"), "{}", stdout(&out));
    assert!(stdout(&out).contains("# note: the network is recreated: running guests attached to it lose their link"), "{}", stdout(&out));
    let bridge = virsh(&["net-info", &format!("{name}-net")]).lines().find_map(|l| l.strip_prefix("Bridge:").map(|b| b.trim().to_owned())).unwrap();
    let ports = String::from_utf8_lossy(&Command::new("ip").args(["-o", "link", "show", "master", &bridge]).output().unwrap().stdout).into_owned();
    assert!(ports.contains("vnet"), "the guest's NIC is on the new bridge {bridge}: {ports}");
    assert_eq!(virsh(&["domid", &vm]).trim(), domid, "the guest kept running");
    let live_config = config(dir, &guest, &name, &net, live).replace("  dhcp      = true\n", "  dhcp      = true\n  mtu       = 1400\n");

    // A kernel command-line change needs a restart, and says so.
    let restart = config(dir, &guest, &name, &net, Shape { cmdline: "console=ttyS0 panic=-1 quiet", ..live });
    assert!(live_config.contains("mtu"));
    write(dir, "main.strata.hcl", &restart.replace("  dhcp      = true\n", "  dhcp      = true\n  mtu       = 1400\n"));
    let out = expect(dir, &["plan"], 0);
    assert!(stdout(&out).contains("updated in place (restart)") && stdout(&out).contains("1 restart(s)"), "{}", stdout(&out));
    let macs = |list: String| list.lines().filter_map(|l| l.split_whitespace().nth(4).filter(|m| m.starts_with("52:54"))).map(str::to_owned).collect::<Vec<_>>();
    let macs_before = macs(virsh(&["domiflist", &vm]));
    expect(dir, &["apply", "-auto-approve"], 0);
    assert_ne!(virsh(&["domid", &vm]).trim(), domid, "the domain restarted");
    assert_eq!(macs(virsh(&["domiflist", &vm])), macs_before, "its NIC kept its MAC through the new definition");
    assert!(!macs_before.is_empty());
    assert!(virsh(&["dumpxml", &vm]).contains("panic=-1 quiet"));
    assert!(wait_for(dir, "GUEST-UP", 60).contains("GUEST-UP"), "it came back up");

    expect(dir, &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["list", "--all", "--name"]).lines().any(|l| l.trim() == vm));
    assert!(!virsh(&["net-list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{name}-net")));
    assert!(!virsh(&["pool-list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{name}-pool")));
}
