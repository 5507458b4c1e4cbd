//! The KVM provider against a real libvirtd with QEMU, through the CLI, and
//! checked with `virsh`. `scripts/libvirt-up.sh` installs and starts
//! libvirtd; these tests fail loudly when it is not running.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh").arg("-c").arg("qemu:///system").args(args).output().expect("run virsh");
    assert!(out.status.success(), "virsh {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require_libvirt() {
    let ok = Command::new("virsh").args(["-c", "qemu:///system", "version"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "libvirtd is not reachable at qemu:///system: run `bash scripts/libvirt-up.sh` first");
}

/// A name and a /24 no other test uses at the same time.
fn unique(tag: &str, octet: u8) -> (String, String) {
    let n = std::process::id() % 10_000;
    // 198.18.0.0/15 is reserved for network tests (RFC 2544).
    (format!("st{n}-{tag}"), format!("198.18.{}.0/24", (n + octet as u32 * 80) % 250))
}

fn lab(dir: &Path, name: &str, cidr: &str, hosts: &[(&str, &str)], clone_size: u64) -> String {
    let hosts: Vec<String> = hosts.iter().map(|(mac, ip)| format!("{{ mac = \"{mac}\", ip = \"{ip}\" }}")).collect();
    format!(
        r#"
data "kvm_host" "this" {{}}

resource "kvm_network" "lab" {{
  name       = "{name}-net"
  addresses  = ["{cidr}"]
  dhcp       = true
  dhcp_hosts = [{hosts}]
}}

resource "kvm_pool" "lab" {{
  name = "{name}-pool"
  path = "{pool}"
}}

resource "kvm_volume" "base" {{
  pool   = kvm_pool.lab.name
  name   = "base.raw"
  format = "raw"
  size   = 16777216
}}

resource "kvm_volume" "clone" {{
  pool        = kvm_pool.lab.name
  name        = "clone.qcow2"
  base_volume = kvm_volume.base.name
  size        = {clone_size}
}}

output "domain_type" {{
  value = data.kvm_host.this.domain_type
}}
"#,
        hosts = hosts.join(", "),
        pool = dir.join("pool").display(),
    )
}

#[test]
fn networks_pools_and_volumes_live_on_real_libvirt() {
    require_libvirt();
    let dir = scratch();
    let (name, cidr) = unique("lab", 1);
    let prefix = cidr.trim_end_matches("0/24");
    let host1 = ("52:54:00:aa:00:01", format!("{prefix}10"));
    let host2 = ("52:54:00:aa:00:02", format!("{prefix}11"));
    write(dir.path(), "main.strata.hcl", &lab(dir.path(), &name, &cidr, &[(host1.0, &host1.1)], 33554432));
    expect(dir.path(), &["apply", "-auto-approve"], 0);

    let net = format!("{name}-net");
    let state = state(dir.path());
    let uuid = state["kvm_network.lab"].0.clone();
    assert_eq!(virsh(&["net-uuid", &net]).trim(), uuid, "the network carries the instance's identity");
    assert!(virsh(&["net-info", &net]).contains("Active:         yes"));
    assert!(virsh(&["net-dumpxml", &net]).contains(&format!("ip='{}'", host1.1)));
    assert!(virsh(&["pool-info", &format!("{name}-pool")]).contains("running"));
    let vols = virsh(&["vol-list", &format!("{name}-pool")]);
    assert!(vols.contains("base.raw") && vols.contains("clone.qcow2"), "{vols}");
    assert!(virsh(&["vol-dumpxml", "--pool", &format!("{name}-pool"), "clone.qcow2"]).contains("<backingStore>"));
    let types = stdout(&expect(dir.path(), &["output", "-raw", "domain_type"], 0));
    assert!(types == "qemu" || types == "kvm", "{types}");
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // A new static lease is a live update: same network, still active.
    write(dir.path(), "main.strata.hcl", &lab(dir.path(), &name, &cidr, &[(host1.0, &host1.1), (host2.0, &host2.1)], 33554432));
    let out = expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("kvm_network.lab will be updated in place (live)"), "{}", stdout(&out));
    assert_eq!(virsh(&["net-uuid", &net]).trim(), uuid);
    assert!(virsh(&["net-dumpxml", &net]).contains(&format!("ip='{}'", host2.1)));

    // Growing a volume is live; shrinking it needs consent.
    write(dir.path(), "main.strata.hcl", &lab(dir.path(), &name, &cidr, &[(host1.0, &host1.1), (host2.0, &host2.1)], 67108864));
    let out = expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("kvm_volume.clone will be updated in place (live)"), "{}", stdout(&out));
    assert!(virsh(&["vol-info", "--pool", &format!("{name}-pool"), "clone.qcow2"]).contains("64.00 MiB"));
    write(dir.path(), "main.strata.hcl", &lab(dir.path(), &name, &cidr, &[(host1.0, &host1.1), (host2.0, &host2.1)], 33554432));
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    assert!(stderr(&out).contains("--allow-data-loss"), "{}", stderr(&out));

    // Drift: a resize behind Strata's back shows in the next plan.
    virsh(&["vol-resize", "--pool", &format!("{name}-pool"), "base.raw", "32M"]);
    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 2);
    assert!(stdout(&out).contains("changed outside of Strata"), "{}", stdout(&out));

    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["net-list", "--all", "--name"]).lines().any(|l| l.trim() == net));
    assert!(!virsh(&["pool-list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{name}-pool")));
}

#[test]
fn a_failed_apply_leaves_libvirt_as_it_was() {
    require_libvirt();
    let dir = scratch();
    let (name, cidr) = unique("rb", 2);
    // The network and the pool are made first; the domain then names a
    // volume that does not exist, which libvirt rejects.
    write(
        dir.path(),
        "main.strata.hcl",
        &format!(
            r#"
resource "kvm_network" "n" {{
  name        = "{name}-net"
  addresses   = ["{cidr}"]
  dhcp        = true
  dhcp_ranges = [{{ start = "{start}", end = "{end}" }}]
}}
resource "kvm_pool" "p" {{
  name = "{name}-pool"
  path = "{dir}/pool"
}}
resource "kvm_domain" "vm" {{
  name       = "{name}-vm"
  type       = "qemu"
  memory     = 64
  disks      = [{{ pool = kvm_pool.p.name, volume = "missing.qcow2" }}]
  interfaces = [{{ network = kvm_network.n.name }}]
}}
"#,
            dir = dir.path().display(),
            start = cidr.replace("0/24", "100"),
            end = cidr.replace("0/24", "150"),
        ),
    );
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    assert!(stderr(&out).contains("kvm_domain.vm") && stderr(&out).contains("missing.qcow2"), "libvirt's message, with the address: {}", stderr(&out));
    assert!(stderr(&out).contains("Rolled back 2 operation(s)"), "{}", stderr(&out));
    let nets = virsh(&["net-list", "--all", "--name"]);
    assert!(!nets.lines().any(|l| l.trim() == format!("{name}-net")), "the network is gone: {nets}");
    let pools = virsh(&["pool-list", "--all", "--name"]);
    assert!(!pools.lines().any(|l| l.trim() == format!("{name}-pool")), "the pool is gone: {pools}");
    assert!(!virsh(&["list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{name}-vm")), "no domain is left");
    assert!(state(dir.path()).is_empty());
}

#[test]
fn existing_networks_are_imported_with_their_identity() {
    require_libvirt();
    let dir = scratch();
    let (name, cidr) = unique("imp", 3);
    let gateway = cidr.replace("0/24", "1");
    let xml = dir.path().join("net.xml");
    std::fs::write(&xml, format!("<network><name>{name}-net</name><ip address='{gateway}' prefix='24'/></network>")).unwrap();
    virsh(&["net-define", &xml.display().to_string()]);
    virsh(&["net-start", &format!("{name}-net")]);
    let uuid = virsh(&["net-uuid", &format!("{name}-net")]).trim().to_owned();
    write(
        dir.path(),
        "main.strata.hcl",
        &format!("resource \"kvm_network\" \"n\" {{\n  name      = \"{name}-net\"\n  addresses = [\"{cidr}\"]\n}}\n"),
    );
    expect(dir.path(), &["import", "kvm_network.n", &format!("{name}-net")], 0);
    assert_eq!(state(dir.path())["kvm_network.n"].0, uuid);
    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    assert!(stdout(&out).contains("No changes"), "{}", stdout(&out));
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["net-list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{name}-net")));
}

#[test]
fn kill_9_during_a_domain_create_then_rerun_adopts_it() {
    require_libvirt();
    let mut adopted = 0;
    for round in 0..8u64 {
        let dir = scratch();
        let (name, _) = unique(&format!("k{round}"), 4);
        write(
            dir.path(),
            "main.strata.hcl",
            &format!("resource \"kvm_domain\" \"vm\" {{\n  name   = \"{name}-vm\"\n  type   = \"qemu\"\n  memory = 64\n}}\n"),
        );
        let mut child = spawn(dir.path(), &["apply", "-auto-approve"]);
        std::thread::sleep(std::time::Duration::from_millis(100 + round * 120));
        let _ = child.kill();
        let _ = child.wait();
        let out = expect(dir.path(), &["apply", "-auto-approve"], 0);
        if stderr(&out).contains("adopted kvm_domain.vm") {
            adopted += 1;
        }
        let named: Vec<String> = virsh(&["list", "--all", "--name"]).lines().filter(|l| l.trim() == format!("{name}-vm")).map(str::to_owned).collect();
        assert_eq!(named.len(), 1, "exactly one domain {name}-vm");
        assert_eq!(virsh(&["domuuid", &format!("{name}-vm")]).trim(), state(dir.path())["kvm_domain.vm"].0, "state knows the domain by its identity");
        expect(dir.path(), &["destroy", "-auto-approve"], 0);
        assert!(!virsh(&["list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{name}-vm")));
    }
    eprintln!("{adopted} of 8 rounds were killed while the create was in flight and adopted the domain");
    assert!(adopted > 0, "no round hit the create in flight, so adoption was not exercised");
}

#[test]
fn domain_definitions_carry_every_attribute_and_read_back_without_drift() {
    require_libvirt();
    let dir = scratch();
    let (name, cidr) = unique("def", 5);
    let config = |tag: &str| {
        format!(
            r#"
resource "kvm_network" "n" {{
  name      = "{name}-net"
  addresses = ["{cidr}"]
}}
resource "kvm_pool" "p" {{
  name = "{name}-pool"
  path = "{dir}/pool"
}}
resource "kvm_volume" "root" {{
  pool = kvm_pool.p.name
  name = "root.qcow2"
  size = 1048576
}}
resource "kvm_domain" "vm" {{
  name         = "{name}-vm"
  type         = "qemu"
  memory       = 64
  running      = false
  cpu_mode     = "custom"
  cpu_model    = "qemu64"
  vcpus        = 2
  vcpu_pinning = {{ "0" = "0", "1" = "0-1" }}
  hugepages    = true
  graphics     = "vnc"
  tags         = {{ owner = "{tag}" }}
  disks        = [{{ pool = kvm_pool.p.name, volume = kvm_volume.root.name, bus = "sata", boot_order = 1 }}]
  interfaces   = [{{ network = kvm_network.n.name, model = "e1000", mac = "52:54:00:12:34:56" }}]
}}
"#,
            dir = dir.path().display()
        )
    };
    write(dir.path(), "main.strata.hcl", &config("ops"));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let xml = virsh(&["dumpxml", "--inactive", &format!("{name}-vm")]);
    for want in [
        "<model fallback='allow'>qemu64</model>",
        "<vcpupin vcpu='1' cpuset='0-1'/>",
        "<hugepages/>",
        "<graphics type='vnc'",
        "<tag name=\"owner\">ops</tag>",
        "<target dev='sda' bus='sata'/>",
        "<boot order='1'/>",
        "<model type='e1000'/>",
        "<mac address='52:54:00:12:34:56'/>",
    ] {
        assert!(xml.contains(want), "{want} missing from\n{xml}");
    }
    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    assert!(stdout(&out).contains("No changes"), "state reads back exactly what was configured: {}", stdout(&out));
    write(dir.path(), "main.strata.hcl", &config("dev"));
    let out = expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(stdout(&out).contains("updated in place (live)"), "tags change live: {}", stdout(&out));
    assert!(virsh(&["dumpxml", "--inactive", &format!("{name}-vm")]).contains("<tag name=\"owner\">dev</tag>"));
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{name}-vm")));
}

#[test]
fn a_source_image_is_uploaded_through_a_stream() {
    require_libvirt();
    let dir = scratch();
    let (name, _) = unique("up", 6);
    let image: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("image.raw"), &image).unwrap();
    write(
        dir.path(),
        "main.strata.hcl",
        &format!(
            "resource \"kvm_pool\" \"p\" {{\n  name = \"{name}-pool\"\n  path = \"{d}/pool\"\n}}\nresource \"kvm_volume\" \"img\" {{\n  pool   = kvm_pool.p.name\n  name   = \"image.raw\"\n  source = \"{d}/image.raw\"\n}}\n",
            d = dir.path().display()
        ),
    );
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let back = dir.path().join("back.raw");
    virsh(&["vol-download", "--pool", &format!("{name}-pool"), "image.raw", &back.display().to_string()]);
    assert!(std::fs::read(&back).unwrap() == image, "the volume holds the uploaded bytes");
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
}

#[test]
fn uefi_domains_start_and_existing_domains_are_imported() {
    require_libvirt();
    let dir = scratch();
    let (name, _) = unique("efi", 7);
    write(
        dir.path(),
        "main.strata.hcl",
        &format!("resource \"kvm_domain\" \"vm\" {{\n  name     = \"{name}-vm\"\n  type     = \"qemu\"\n  memory   = 128\n  machine  = \"q35\"\n  firmware = \"uefi\"\n}}\n"),
    );
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let xml = virsh(&["dumpxml", &format!("{name}-vm")]);
    assert!(xml.contains("<loader") && xml.contains("OVMF"), "libvirt picked UEFI firmware:\n{xml}");
    assert!(virsh(&["domstate", &format!("{name}-vm")]).contains("running"));
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // Forget it, then adopt it again by name: the same UUID comes back.
    let uuid = state(dir.path())["kvm_domain.vm"].0.clone();
    expect(dir.path(), &["state", "rm", "kvm_domain.vm"], 0);
    expect(dir.path(), &["import", "kvm_domain.vm", &format!("{name}-vm")], 0);
    assert_eq!(state(dir.path())["kvm_domain.vm"].0, uuid);
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(!virsh(&["list", "--all", "--name"]).lines().any(|l| l.trim() == format!("{name}-vm")));
}

/// The cloud-init seed is built in memory: with TMPDIR pointing at a regular
/// file, where no temporary file or directory can be made, the apply still
/// succeeds, and the ISO libvirt holds carries the (sensitive) user-data.
/// Nothing of the secret is printed.
#[test]
fn a_cloud_init_seed_with_secrets_never_touches_the_disk() {
    require_libvirt();
    let dir = scratch();
    let (name, _) = unique("seed", 7);
    let canary = format!("seed-canary-{}", uuid_like());
    let user_data = format!("#cloud-config\npassword: {canary}\n");
    let not_a_dir = dir.path().join("not-a-dir");
    std::fs::write(&not_a_dir, "").unwrap();
    write(
        dir.path(),
        "main.strata.hcl",
        &format!(
            r#"
variable "user_data" {{
  type      = string
  sensitive = true
}}

resource "kvm_pool" "p" {{
  name = "{name}-pool"
  path = "{d}/pool"
}}

resource "kvm_cloudinit_disk" "seed" {{
  pool      = kvm_pool.p.name
  name      = "seed.iso"
  user_data = var.user_data
}}
"#,
            d = dir.path().display()
        ),
    );
    let apply = |args: &[&str]| {
        let out = command(dir.path(), args).env("TMPDIR", &not_a_dir).env("STRATA_VAR_user_data", &user_data).output().unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(out.status.success(), "strata {args:?}:\n{text}");
        assert!(!text.contains(&canary), "the secret was printed:\n{text}");
    };
    apply(&["apply", "-auto-approve"]);
    let iso = dir.path().join("seed.iso");
    virsh(&["vol-download", "--pool", &format!("{name}-pool"), "seed.iso", &iso.display().to_string()]);
    let isoinfo = |args: &[&str]| {
        let out = Command::new("isoinfo").arg("-i").arg(&iso).args(args).output().expect("run isoinfo");
        assert!(out.status.success(), "isoinfo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(isoinfo(&["-d"]).contains("Volume id: cidata"), "a NoCloud seed");
    assert_eq!(isoinfo(&["-R", "-x", "/user-data"]), user_data);
    assert_eq!(isoinfo(&["-R", "-x", "/meta-data"]), "instance-id: seed\nlocal-hostname: seed\n");
    assert!(isoinfo(&["-R", "-l"]).lines().filter(|l| l.contains("-data")).all(|l| l.starts_with("-rw-------")), "{}", isoinfo(&["-R", "-l"]));
    apply(&["plan", "-detailed-exitcode"]);
    apply(&["destroy", "-auto-approve"]);
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{:x}{:x}", std::process::id(), nanos)
}
