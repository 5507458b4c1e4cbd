//! The KVM provider's undo records, driven through the provider API on a
//! real libvirtd (`scripts/libvirt-up.sh`) and checked with `virsh`: after
//! `prepare_undo`, the operation and `undo`, the persistent definition is
//! byte for byte what it was, the power state too; a retired object comes
//! back; a shrunk volume gets its data back; `undo` and `discard_undo` may
//! run twice. Also what refresh reports: a restart the guest has not had
//! yet (`pending_restart`), and the volumes of a pool that is not running.

mod common;

use std::process::Command;
use std::sync::Arc;
use strata_provider::{Instance, Provider, ProviderFactory, UndoRecord, Undoable, Value};
use uuid::Uuid;

fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh").arg("-c").arg("qemu:///system").args(args).output().expect("run virsh");
    assert!(out.status.success(), "virsh {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn listed(args: &[&str], name: &str) -> bool {
    virsh(args).lines().any(|l| l.trim() == name)
}

async fn kvm() -> Arc<dyn Provider> {
    let ok = Command::new("virsh").args(["-c", "qemu:///system", "version"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "libvirtd is not reachable at qemu:///system: run `bash scripts/libvirt-up.sh` first");
    let p = strata_provider_kvm::KvmFactory.instantiate();
    p.configure(&Value::object([("uri", Value::from("qemu:///system"))])).await.expect("configure kvm");
    p
}

fn name(tag: &str) -> String {
    format!("st{}-{tag}", std::process::id() % 10_000)
}

fn set(v: &Value, key: &str, to: Value) -> Value {
    let mut v = v.clone();
    if let Value::Map(m) = &mut v {
        m.insert(key.to_owned(), to);
    }
    v
}

async fn read(p: &Arc<dyn Provider>, type_name: &str, id: Uuid, state: &Value) -> Option<Value> {
    p.read(type_name, &[Instance { id, state }]).await.expect("read").remove(0)
}

async fn prepare(p: &Arc<dyn Provider>, type_name: &str, id: Uuid, change: Undoable<'_>) -> UndoRecord {
    p.prepare_undo(type_name, id, change).await.expect("prepare_undo").expect("an undo record")
}

/// A domain with no OS (it idles in the firmware and ignores ACPI, so a
/// graceful shutdown ends after `shutdown_timeout`).
fn domain(name: &str) -> Value {
    Value::object([
        ("name", Value::from(name)),
        ("type", Value::from("qemu")),
        ("memory", Value::from(64i64)),
        ("max_memory", Value::from(128i64)),
        ("shutdown_timeout", Value::from(1i64)),
        ("tags", Value::object([("owner", Value::from("ops"))])),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn domain_updates_and_retirement_are_undone_exactly() {
    let p = kvm().await;
    let vm = name("undo-vm");
    let id = Uuid::new_v4();
    let config = domain(&vm);
    let created = p.create("kvm_domain", id, &config).await.expect("create");
    let before = virsh(&["dumpxml", "--inactive", &vm]);
    let boot = virsh(&["domid", &vm]).trim().to_owned();

    // A live update (memory within max_memory, tags): undone live, no restart.
    let live = set(&set(&created, "memory", Value::from(96i64)), "tags", Value::object([("owner", Value::from("dev"))]));
    let rec = prepare(&p, "kvm_domain", id, Undoable::Update { prior: &created, planned: &live }).await;
    assert_eq!(virsh(&["dumpxml", "--inactive", &vm]), before, "prepare_undo changes nothing");
    let updated = p.update("kvm_domain", id, &created, &live, Some(&rec)).await.expect("live update");
    assert!(virsh(&["dumpxml", "--inactive", &vm]).contains("<tag name=\"owner\">dev</tag>"));
    assert_eq!(virsh(&["domid", &vm]).trim(), boot);
    let restored = p.undo("kvm_domain", id, &rec).await.expect("undo the live update");
    assert_eq!(virsh(&["dumpxml", "--inactive", &vm]), before, "the definition is restored exactly");
    assert_eq!(virsh(&["domid", &vm]).trim(), boot, "undoing a live change does not restart the guest");
    let live_xml = virsh(&["dumpxml", &vm]);
    assert!(live_xml.contains("name=\"owner\">ops<") && !live_xml.contains(">dev<"), "the live tags are changed back too:\n{live_xml}");
    assert_eq!(restored.get("memory"), created.get("memory"));
    assert_ne!(updated.get("memory"), restored.get("memory"));

    // A restart update (graphics): undone by restarting into the old definition.
    let restart = set(&created, "graphics", Value::from("vnc"));
    let rec = prepare(&p, "kvm_domain", id, Undoable::Update { prior: &created, planned: &restart }).await;
    p.update("kvm_domain", id, &created, &restart, Some(&rec)).await.expect("restart update");
    let restarted = virsh(&["domid", &vm]).trim().to_owned();
    assert_ne!(restarted, boot, "the update restarted the guest");
    assert!(virsh(&["dumpxml", &vm]).contains("<graphics type='vnc'"));
    p.undo("kvm_domain", id, &rec).await.expect("undo the restart update");
    assert_eq!(virsh(&["dumpxml", "--inactive", &vm]), before);
    assert!(!virsh(&["dumpxml", &vm]).contains("<graphics"), "the guest runs the old definition again");
    assert!(virsh(&["domstate", &vm]).contains("running"));
    let again = virsh(&["domid", &vm]).trim().to_owned();
    p.undo("kvm_domain", id, &rec).await.expect("undo is idempotent");
    assert_eq!(virsh(&["dumpxml", "--inactive", &vm]), before);
    assert_eq!(virsh(&["domid", &vm]).trim(), again, "a second undo finds the guest as it should be and leaves it");
    p.discard_undo("kvm_domain", id, &rec).await.expect("discard");

    // Retired for a replacement: undefined, then defined and started again.
    let rec = prepare(&p, "kvm_domain", id, Undoable::Retire { prior: &created }).await;
    p.retire("kvm_domain", id, &created, &rec).await.expect("retire");
    assert!(!listed(&["list", "--all", "--name"], &vm), "a retired domain is gone from libvirt");
    p.retire("kvm_domain", id, &created, &rec).await.expect("retire is idempotent");
    let back = p.undo("kvm_domain", id, &rec).await.expect("undo the retirement");
    assert_eq!(virsh(&["dumpxml", "--inactive", &vm]), before, "the same definition, same UUID");
    assert_eq!(virsh(&["domuuid", &vm]).trim(), id.to_string());
    assert!(virsh(&["domstate", &vm]).contains("running"), "it ran before, so it runs again");
    assert_eq!(back.get("id").as_str(), Some(id.to_string().as_str()));

    p.delete("kvm_domain", id, &created).await.expect("delete");
    assert!(!listed(&["list", "--all", "--name"], &vm));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_the_guest_has_not_had_is_reported_and_done_by_the_next_update() {
    let p = kvm().await;
    let vm = name("pend-vm");
    let id = Uuid::new_v4();
    let config = domain(&vm);
    let created = p.create("kvm_domain", id, &config).await.expect("create");
    assert!(created.get("pending_restart").is_null());
    let boot = virsh(&["domid", &vm]).trim().to_owned();

    // What an update killed during its graceful shutdown leaves: the new
    // definition stored, the guest still running the old one.
    let dir = common::scratch();
    let xml = dir.path().join("vm.xml");
    let changed = virsh(&["dumpxml", "--inactive", &vm]).replace("</devices>", "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/></devices>");
    std::fs::write(&xml, changed).unwrap();
    virsh(&["define", &xml.display().to_string()]);
    let planned = set(&created, "graphics", Value::from("vnc"));
    let now = read(&p, "kvm_domain", id, &planned).await.expect("the domain exists");
    assert_eq!(now.get("graphics").as_str(), Some("vnc"), "the persistent definition is what refresh reports");
    assert_eq!(now.get("pending_restart").as_bool(), Some(true), "and that the guest has not restarted into it");

    // Planned: the engine diffs pending_restart (true) against the
    // configuration (unset); the update does the restart.
    let after = p.update("kvm_domain", id, &now, &planned, None).await.expect("update");
    assert_ne!(virsh(&["domid", &vm]).trim(), boot, "the guest restarted");
    assert!(virsh(&["dumpxml", &vm]).contains("<graphics type='vnc'"), "into the new definition");
    assert!(after.get("pending_restart").is_null());
    assert!(read(&p, "kvm_domain", id, &after).await.unwrap().get("pending_restart").is_null());

    p.delete("kvm_domain", id, &created).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread")]
async fn network_updates_and_retirement_are_undone_exactly() {
    let p = kvm().await;
    let net = name("undo-net");
    let id = Uuid::new_v4();
    let n = std::process::id() % 10_000;
    let prefix = format!("198.18.{}.", (n + 9 * 80) % 250);
    let host = |i: u8| Value::object([("mac", Value::from(format!("52:54:00:ab:00:0{i}"))), ("ip", Value::from(format!("{prefix}{}", 10 + i)))]);
    let config = Value::object([
        ("name", Value::from(net.as_str())),
        ("addresses", Value::List(vec![Value::from(format!("{prefix}0/24"))].into())),
        ("dhcp", Value::Bool(true)),
        ("dhcp_hosts", Value::List(vec![host(1), host(2)].into())),
    ]);
    let created = p.create("kvm_network", id, &config).await.expect("create");
    let (persistent, live) = (virsh(&["net-dumpxml", "--inactive", &net]), virsh(&["net-dumpxml", &net]));

    // Removing the first host and adding one: undone with the hosts back in
    // their order, live and in the definition.
    let planned = set(&created, "dhcp_hosts", Value::List(vec![host(2), host(3)].into()));
    let rec = prepare(&p, "kvm_network", id, Undoable::Update { prior: &created, planned: &planned }).await;
    p.update("kvm_network", id, &created, &planned, Some(&rec)).await.expect("update");
    assert!(!virsh(&["net-dumpxml", &net]).contains(&format!("ip='{prefix}11'")));
    for _ in 0..2 {
        let restored = p.undo("kvm_network", id, &rec).await.expect("undo the update");
        assert_eq!(virsh(&["net-dumpxml", "--inactive", &net]), persistent, "the definition is restored exactly");
        assert_eq!(virsh(&["net-dumpxml", &net]), live, "and the running network");
        assert_eq!(restored.get("dhcp_hosts"), created.get("dhcp_hosts"));
    }

    // Retired: destroyed and undefined, then back with the same XML.
    let rec = prepare(&p, "kvm_network", id, Undoable::Retire { prior: &created }).await;
    p.retire("kvm_network", id, &created, &rec).await.expect("retire");
    assert!(!listed(&["net-list", "--all", "--name"], &net));
    p.undo("kvm_network", id, &rec).await.expect("undo the retirement");
    p.undo("kvm_network", id, &rec).await.expect("undo is idempotent");
    assert_eq!(virsh(&["net-dumpxml", "--inactive", &net]), persistent);
    assert_eq!(virsh(&["net-uuid", &net]).trim(), id.to_string());
    assert!(virsh(&["net-info", &net]).contains("Active:         yes"));

    // A network stopped behind Strata's back reads as inactive and the
    // update that converges it starts it.
    virsh(&["net-destroy", &net]);
    let now = read(&p, "kvm_network", id, &created).await.unwrap();
    assert_eq!(now.get("active").as_bool(), Some(false));
    p.update("kvm_network", id, &now, &created, None).await.expect("start it");
    assert!(virsh(&["net-info", &net]).contains("Active:         yes"));

    p.delete("kvm_network", id, &created).await.expect("delete");
    assert!(!listed(&["net-list", "--all", "--name"], &net));
}

#[tokio::test(flavor = "multi_thread")]
async fn replaced_and_shrunk_volumes_are_kept_aside_and_brought_back() {
    let p = kvm().await;
    let dir = common::scratch();
    let pool_name = name("undo-pool");
    let pool_id = Uuid::new_v4();
    let pool = Value::object([("name", Value::from(pool_name.as_str())), ("path", Value::from(dir.path().join("pool").display().to_string()))]);
    let pool_state = p.create("kvm_pool", pool_id, &pool).await.expect("create pool");
    let config = Value::object([
        ("pool", Value::from(pool_name.as_str())),
        ("name", Value::from("data.qcow2")),
        ("format", Value::from("qcow2")),
        ("size", Value::from(4194304i64)),
    ]);
    let vid = Uuid::new_v4();
    assert!(p.name_is_free("kvm_volume", &config).await.unwrap());
    let created = p.create("kvm_volume", vid, &config).await.expect("create volume");
    assert!(!p.name_is_free("kvm_volume", &config).await.unwrap(), "the name is taken now");
    let download = |to: &str| {
        let out = dir.path().join(to);
        virsh(&["vol-download", "--pool", &pool_name, "data.qcow2", &out.display().to_string()]);
        std::fs::read(out).unwrap()
    };
    // Data in the last MiB of the disk, which a shrink to 2 MiB cuts off.
    let path = created.get("path").as_str().unwrap().to_owned();
    let qemu_io = |cmd: &str| {
        let out = Command::new("qemu-io").args(["-f", "qcow2", "-c", cmd, &path]).output().expect("run qemu-io");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        out.status.success() && !text.contains("fail") && !text.contains("error")
    };
    assert!(qemu_io("write -P 0x5a 3M 1M"));
    let has_data = || qemu_io("read -P 0x5a 3M 1M");
    assert!(has_data());
    let original = download("original.qcow2");

    // Retired: kept aside under another name, brought back on undo.
    let rec = prepare(&p, "kvm_volume", vid, Undoable::Retire { prior: &created }).await;
    p.retire("kvm_volume", vid, &created, &rec).await.expect("retire");
    let vols = virsh(&["vol-list", &pool_name]);
    assert!(!vols.contains("data.qcow2 "), "the name is free for the replacement: {vols}");
    assert!(vols.contains("data.qcow2.strata-retired-"), "the volume is kept aside: {vols}");
    assert!(p.name_is_free("kvm_volume", &config).await.unwrap());
    p.undo("kvm_volume", vid, &rec).await.expect("undo the retirement");
    p.undo("kvm_volume", vid, &rec).await.expect("undo is idempotent");
    assert_eq!(download("back.qcow2"), original, "the same file");
    assert!(!virsh(&["vol-list", &pool_name]).contains("strata-retired"));

    // Shrunk with an undo record: a full copy is kept, and put back.
    let small = set(&created, "size", Value::from(2097152i64));
    let rec = prepare(&p, "kvm_volume", vid, Undoable::Update { prior: &created, planned: &small }).await;
    p.update("kvm_volume", vid, &created, &small, Some(&rec)).await.expect("shrink");
    assert!(virsh(&["vol-info", "--pool", &pool_name, "data.qcow2"]).contains("2.00 MiB"));
    assert!(!has_data(), "the shrink cut the data off");
    assert!(virsh(&["vol-list", &pool_name]).contains("strata-unshrunk"), "the copy is kept aside");
    let restored = p.undo("kvm_volume", vid, &rec).await.expect("undo the shrink");
    assert_eq!(restored.get("size"), created.get("size"));
    assert!(has_data(), "the data the shrink cut off is back");
    assert!(virsh(&["vol-info", "--pool", &pool_name, "data.qcow2"]).contains("4.00 MiB"));
    p.undo("kvm_volume", vid, &rec).await.expect("undo is idempotent");
    assert!(has_data());
    assert!(!virsh(&["vol-list", &pool_name]).contains("strata-unshrunk"), "the copy is used up");

    // Discarded after success: the retired volume is deleted for good.
    let rec = prepare(&p, "kvm_volume", vid, Undoable::Retire { prior: &created }).await;
    p.retire("kvm_volume", vid, &created, &rec).await.expect("retire");
    p.discard_undo("kvm_volume", vid, &rec).await.expect("discard");
    p.discard_undo("kvm_volume", vid, &rec).await.expect("discard is idempotent");
    assert!(!virsh(&["vol-list", &pool_name]).contains("data.qcow2"), "{}", virsh(&["vol-list", &pool_name]));

    // The volumes of a stopped pool keep their state; the pool reads as
    // inactive, and its update starts it.
    let again = p.create("kvm_volume", vid, &config).await.expect("create again");
    virsh(&["pool-destroy", &pool_name]);
    assert_eq!(read(&p, "kvm_volume", vid, &again).await, Some(again.clone()), "a stopped pool does not lose its volumes");
    let stopped = read(&p, "kvm_pool", pool_id, &pool_state).await.unwrap();
    assert_eq!(stopped.get("active").as_bool(), Some(false));
    p.update("kvm_pool", pool_id, &stopped, &pool_state, None).await.expect("start the pool");
    assert!(virsh(&["pool-info", &pool_name]).contains("running"));
    assert!(virsh(&["vol-list", &pool_name]).contains("data.qcow2"));

    // A retired pool leaves its volumes alone and comes back with them.
    let rec = prepare(&p, "kvm_pool", pool_id, Undoable::Retire { prior: &pool_state }).await;
    p.retire("kvm_pool", pool_id, &pool_state, &rec).await.expect("retire the pool");
    assert!(!listed(&["pool-list", "--all", "--name"], &pool_name));
    p.undo("kvm_pool", pool_id, &rec).await.expect("undo the pool's retirement");
    assert!(virsh(&["pool-info", &pool_name]).contains("running"));
    assert!(virsh(&["vol-list", &pool_name]).contains("data.qcow2"));

    // A replaced cloud-init seed is kept aside too, and comes back with the
    // configuration it was built from (kept in the record, marked sensitive).
    let seed = Value::object([
        ("pool", Value::from(pool_name.as_str())),
        ("name", Value::from("seed.iso")),
        ("user_data", Value::from("#cloud-config\nhostname: undo\n")),
    ]);
    let sid = Uuid::new_v4();
    let seeded = p.create("kvm_cloudinit_disk", sid, &seed).await.expect("create seed");
    let rec = prepare(&p, "kvm_cloudinit_disk", sid, Undoable::Retire { prior: &seeded }).await;
    assert!(rec.0.get("user_data").is_sensitive(), "user data in a record is marked sensitive");
    p.retire("kvm_cloudinit_disk", sid, &seeded, &rec).await.expect("retire seed");
    assert!(virsh(&["vol-list", &pool_name]).contains("seed.iso.strata-retired-"));
    let back = p.undo("kvm_cloudinit_disk", sid, &rec).await.expect("undo the seed's retirement");
    assert_eq!(back, seeded, "the seed's state is what it was");
    assert_eq!(read(&p, "kvm_cloudinit_disk", sid, &back).await, Some(seeded.clone()));
    p.delete("kvm_cloudinit_disk", sid, &seeded).await.expect("delete seed");

    p.delete("kvm_volume", vid, &again).await.expect("delete volume");
    p.delete("kvm_pool", pool_id, &pool_state).await.expect("delete pool");
    assert!(!listed(&["pool-list", "--all", "--name"], &pool_name));
}
