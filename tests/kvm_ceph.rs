//! One model across the Ceph and KVM providers: a guest created by
//! `strata apply` boots from an RBD image (a libvirt network disk with the
//! cluster's monitors and a cephx key Strata keeps in a `kvm_secret`), sees
//! the image's size, sees it grow live, and gets a second RBD disk
//! hot-plugged. Checked with `virsh` (secret, disks) and the guest's own
//! console (the kernel's view of its disks), and `rbd` for the images.
//! `scripts/libvirt-up.sh` and `scripts/ceph-up.sh target/ceph` (CI runs
//! both) start the daemons; the test fails loudly without them.

mod common;
#[path = "common/guest.rs"]
mod guest;

use common::*;
use guest::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn conf() -> PathBuf {
    let path = std::env::var_os("CEPH_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ceph/ceph.conf"));
    assert!(path.is_file(), "no Ceph cluster: {} is missing; run `bash scripts/ceph-up.sh target/ceph` first", path.display());
    path
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("run a real client");
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn virsh(args: &[&str]) -> String {
    let mut full = vec!["-c", "qemu:///system"];
    full.extend(args);
    run_ok("virsh", &full)
}

fn rbd(args: &[&str]) -> String {
    let conf = conf();
    let mut full = vec!["--conf", conf.to_str().unwrap()];
    full.extend(args);
    run_ok("rbd", &full)
}

const MIB: u64 = 1 << 20;

fn config(dir: &Path, guest: &Path, name: &str, root_size: u64, second_disk: bool) -> String {
    let second_image = if second_disk {
        format!("resource \"ceph_rbd_image\" \"data\" {{\n  pool = ceph_pool.vm.name\n  name = \"data\"\n  size = {}\n}}\n", 4 * MIB)
    } else {
        String::new()
    };
    let second = if second_disk {
        r#",
    { rbd = ceph_rbd_image.data.spec, monitors = data.ceph_cluster.c.monitors, auth_user = ceph_client.guest.entity, secret = kvm_secret.guest.id, size = ceph_rbd_image.data.size }"#
    } else {
        ""
    };
    format!(
        r#"
provider "ceph" {{
  conf = "{conf}"
}}

data "ceph_cluster" "c" {{}}

resource "ceph_pool" "vm" {{
  name = "{name}"
}}

resource "ceph_rbd_image" "root" {{
  pool = ceph_pool.vm.name
  name = "root"
  size = {root_size}
}}
{second_image}
resource "ceph_client" "guest" {{
  name = "{name}-guest"
  pool = ceph_pool.vm.name
}}

resource "kvm_secret" "guest" {{
  usage_name = "{name} client secret"
  value      = ceph_client.guest.key
}}

resource "kvm_domain" "vm" {{
  name    = "{name}-vm"
  memory  = 128
  kernel  = "{guest}/vmlinuz"
  initrd  = "{guest}/initrd.img"
  cmdline = "console=ttyS0 panic=-1"
  disks = [
    {{ rbd = ceph_rbd_image.root.spec, monitors = data.ceph_cluster.c.monitors, auth_user = ceph_client.guest.entity, secret = kvm_secret.guest.id, size = ceph_rbd_image.root.size }}{second}
  ]
  serial_log       = "{dir}/console.log"
  shutdown_timeout = 5
}}

output "secret" {{
  value = kvm_secret.guest.id
}}
"#,
        conf = conf().display(),
        dir = dir.display(),
        guest = guest.display(),
    )
}

#[test]
fn a_guest_boots_from_rbd_sees_it_grow_and_gets_a_second_rbd_disk_hot_plugged() {
    let ok = Command::new("virsh").args(["-c", "qemu:///system", "version"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "libvirtd is not reachable at qemu:///system: run `bash scripts/libvirt-up.sh` first");
    let guest = tiny_guest();
    let scratch = scratch();
    let dir = scratch.path();
    // QEMU (libvirt-qemu) writes the console log here; it reads no other file.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let name = format!("st{}-kc", std::process::id());
    let vm = format!("{name}-vm");
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, 8 * MIB, false));
    let out = expect(dir, &["apply", "-auto-approve"], 0);

    // The secret holds the client's key, which never shows in Strata's output.
    let key = run_ok("ceph", &["--conf", conf().to_str().unwrap(), "auth", "get-key", &format!("client.{name}-guest")]);
    let key = key.trim();
    assert!(!key.is_empty());
    assert!(!stdout(&out).contains(key) && !stderr(&out).contains(key), "the key leaked into the apply's output");
    let uuid = stdout(&expect(dir, &["output", "-raw", "secret"], 0)).trim().to_owned();
    assert!(virsh(&["secret-list"]).contains(&uuid), "{}", virsh(&["secret-list"]));
    assert_eq!(virsh(&["secret-get-value", &uuid]).trim(), key, "libvirt's secret holds the cephx key");
    assert!(virsh(&["secret-dumpxml", &uuid]).contains(&format!("<name>{name} client secret</name>")));
    // The image is a network disk: QEMU opens it itself with the secret.
    let xml = virsh(&["dumpxml", &vm]);
    assert!(xml.contains(&format!("name='{name}/root'")) && xml.contains("protocol='rbd'"), "{xml}");
    assert!(xml.contains(&format!("<secret type='ceph' uuid='{uuid}'/>")), "{xml}");

    // The guest sees its RBD disk, 8 MiB = 16384 sectors.
    let log = wait_for(dir, "GUEST-READY", 90);
    assert!(log.contains("GUEST-UP"), "the guest booted:\n{log}\n{}", stderr(&out));
    assert!(log.contains("GUEST-DISK vda 16384"), "it sees its RBD disk and its size:\n{log}");
    expect(dir, &["plan", "-detailed-exitcode"], 0);
    let domid = virsh(&["domid", &vm]).trim().to_owned();

    // Growing the image is live, and the running guest's kernel sees it.
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, 16 * MIB, false));
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("ceph_rbd_image.root will be updated in place (live)"), "{}", stdout(&out));
    assert!(stdout(&out).contains("kvm_domain.vm will be updated in place (live)"), "{}", stdout(&out));
    assert!(rbd(&["info", &format!("{name}/root")]).contains("size 16 MiB"));
    assert!(virsh(&["domblkinfo", &vm, "vda"]).contains(&format!("Capacity:       {}", 16 * MIB)), "{}", virsh(&["domblkinfo", &vm, "vda"]));
    let log = wait_for(dir, "capacity change from 16384 to 32768", 30);
    assert!(log.contains("capacity change from 16384 to 32768"), "the guest saw its disk grow:\n{log}");
    assert_eq!(virsh(&["domid", &vm]).trim(), domid, "the same running domain");
    expect(dir, &["plan", "-detailed-exitcode"], 0);

    // A second RBD disk is hot-plugged.
    write(dir, "main.strata.hcl", &config(dir, &guest, &name, 16 * MIB, true));
    let out = expect(dir, &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("kvm_domain.vm will be updated in place (live)"), "{}", stdout(&out));
    assert!(virsh(&["domblklist", &vm]).contains(&format!("vdb      {name}/data")), "{}", virsh(&["domblklist", &vm]));
    let log = wait_for(dir, "[vdb] 8192 512-byte logical blocks", 30);
    assert!(log.contains("[vdb] 8192 512-byte logical blocks"), "the guest's kernel found the hot-plugged disk:\n{log}");
    assert_eq!(virsh(&["domid", &vm]).trim(), domid);
    assert_eq!(console(dir).matches("GUEST-UP").count(), 1, "no reboot through all of that");
    expect(dir, &["plan", "-detailed-exitcode"], 0);

    expect(dir, &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["list", "--all", "--name"]).lines().any(|l| l.trim() == vm));
    assert!(!virsh(&["secret-list"]).contains(&uuid), "the secret is gone");
}
