//! The Ceph provider against a real single-node cluster (cephx on), through
//! the CLI, and checked with the real `rbd` and `ceph` clients.
//! `scripts/ceph-up.sh target/ceph` starts the cluster (CI does); these tests
//! fail loudly when it is not running. Every test uses its own pools.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use strata_provider::{Provider, Undoable, Value};
use strata_provider_ceph::CephProvider;

/// The cluster's ceph.conf: CEPH_CONF, else the one ceph-up.sh makes in target/ceph.
fn conf() -> PathBuf {
    let path = std::env::var_os("CEPH_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ceph/ceph.conf"));
    assert!(path.is_file(), "no Ceph cluster: {} is missing; run `bash scripts/ceph-up.sh target/ceph` first", path.display());
    let ok = Command::new("timeout")
        .args(["20", "ceph", "--connect-timeout", "10", "--conf"])
        .arg(&path)
        .arg("health")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "the Ceph cluster of {} does not answer; run `bash scripts/ceph-up.sh target/ceph`", path.display());
    path
}

fn tool(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program).arg("--conf").arg(conf()).args(args).output().expect("run the ceph tools")
}

/// Runs `rbd`/`ceph` and returns stdout; panics when it fails.
fn ok(program: &str, args: &[&str]) -> String {
    let out = tool(program, args);
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(program: &str, args: &[&str]) -> serde_json::Value {
    let mut full = args.to_vec();
    full.extend(["--format", "json"]);
    serde_json::from_str(&ok(program, &full)).expect("json from the ceph tools")
}

fn unique(tag: &str) -> String {
    format!("st{}-{tag}", std::process::id())
}

fn provider_block(extra: &str) -> String {
    format!("provider \"ceph\" {{\n  conf = \"{}\"\n{extra}}}\n", conf().display())
}

/// A pool made with the admin key, removed when dropped.
struct Pool(String);

impl Pool {
    fn new(tag: &str) -> Pool {
        let name = unique(tag);
        ok("ceph", &["osd", "pool", "create", &name, "8"]);
        ok("rbd", &["pool", "init", &name]);
        Pool(name)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = tool("ceph", &["osd", "pool", "delete", &self.0, &self.0, "--yes-i-really-really-mean-it"]);
    }
}

fn pool_detail(name: &str) -> Option<serde_json::Value> {
    json("ceph", &["osd", "pool", "ls", "detail"]).as_array().unwrap().iter().find(|p| p["pool_name"] == name).cloned()
}

fn lab(pool: &str, golden_size: u64, quota: u64, flatten_first: bool) -> String {
    format!(
        r#"{provider}
data "ceph_cluster" "this" {{}}

resource "ceph_pool" "lab" {{
  name            = "{pool}"
  quota_max_bytes = {quota}
}}

resource "ceph_rbd_image" "golden" {{
  pool = ceph_pool.lab.name
  name = "golden"
  size = {golden_size}
}}

resource "ceph_rbd_snapshot" "base" {{
  image     = ceph_rbd_image.golden.spec
  name      = "base"
  protected = true
}}

resource "ceph_rbd_image" "vm" {{
  count    = 5
  pool     = ceph_pool.lab.name
  name     = "vm-${{count.index}}"
  size     = 33554432
  clone_of = ceph_rbd_snapshot.base.id
  flatten  = {flatten}

  qos_iops_limit = 300
}}

resource "ceph_client" "tenant" {{
  name = "{pool}-tenant"
  pool = ceph_pool.lab.name
}}

output "fsid" {{
  value = data.ceph_cluster.this.fsid
}}

output "monitors" {{
  value = data.ceph_cluster.this.monitors
}}
"#,
        provider = provider_block(""),
        flatten = if flatten_first { "count.index == 0" } else { "false" },
    )
}

#[test]
fn pools_images_snapshots_clones_and_clients_on_a_real_cluster() {
    conf();
    let dir = scratch();
    let pool = unique("lab");
    let mib = 1 << 20;
    write(dir.path(), "main.strata.hcl", &lab(&pool, 16 * mib, 100 * mib, false));
    expect(dir.path(), &["apply", "-auto-approve"], 0);

    // The pool, its quota and its identity.
    let state = state(dir.path());
    let detail = pool_detail(&pool).expect("the pool exists");
    assert_eq!(detail["quota_max_bytes"], 100 * mib);
    assert_eq!(detail["application_metadata"]["rbd"]["strata-id"], state["ceph_pool.lab"].0.as_str());
    // The golden image carries its identity; the clones are children of the snapshot.
    let golden = format!("{pool}/golden");
    assert_eq!(ok("rbd", &["image-meta", "get", &golden, "strata-id"]).trim(), state["ceph_rbd_image.golden"].0);
    let info = json("rbd", &["info", &golden]);
    assert_eq!(info["size"], 16 * mib);
    let golden_id = info["id"].as_str().unwrap().to_owned();
    let snaps = json("rbd", &["snap", "ls", &golden]);
    assert_eq!(snaps[0]["name"], "base");
    assert_eq!(snaps[0]["protected"], "true");
    let children = ok("rbd", &["children", &format!("{golden}@base")]);
    for i in 0..5 {
        assert!(children.contains(&format!("{pool}/vm-{i}")), "{children}");
        let clone = json("rbd", &["info", &format!("{pool}/vm-{i}")]);
        assert_eq!(clone["parent"]["image"], "golden");
        assert_eq!(clone["size"], 32 * mib, "a clone grows past its parent's size");
        assert_eq!(ok("rbd", &["config", "image", "get", &format!("{pool}/vm-{i}"), "rbd_qos_iops_limit"]).trim(), "300");
    }
    // The tenant's client is limited to the pool; its key is never printed.
    let client = json("ceph", &["auth", "get", &format!("client.{pool}-tenant")]);
    assert_eq!(client[0]["caps"]["osd"], format!("profile rbd pool={pool}"));
    let key = client[0]["key"].as_str().unwrap().to_owned();
    let shown = stdout(&expect(dir.path(), &["show"], 0));
    assert!(!shown.contains(&key), "the key must not be printed:\n{shown}");
    // The data source.
    assert_eq!(stdout(&expect(dir.path(), &["output", "-raw", "fsid"], 0)), ok("ceph", &["fsid"]).trim());
    assert!(stdout(&expect(dir.path(), &["output", "-json"], 0)).contains("127.0.0.1:6789"));
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // Drift in what refresh reads from the cluster, not from state: a QoS
    // limit and a feature changed with the real tools.
    let vm3 = format!("{pool}/vm-3");
    ok("rbd", &["config", "image", "set", &vm3, "rbd_qos_iops_limit", "500"]);
    ok("rbd", &["feature", "disable", &format!("{pool}/vm-4"), "fast-diff"]);
    let out = stdout(&expect(dir.path(), &["plan", "-detailed-exitcode", "-no-color"], 2));
    assert!(out.contains("changed outside of Strata"), "{out}");
    assert!(out.contains("ceph_rbd_image.vm[3] will be updated in place (live)"), "{out}");
    assert!(out.lines().any(|l| l.contains("qos_iops_limit") && l.ends_with("= 500 -> 300")), "{out}");
    let drift = &out[..out.find("Strata will perform").unwrap_or(out.len())];
    assert!(drift.contains("ceph_rbd_image.vm[4]") && drift.contains("\"fast-diff\""), "the disabled feature shows as drift:\n{out}");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(ok("rbd", &["config", "image", "get", &vm3, "rbd_qos_iops_limit"]).trim(), "300", "the apply put the limit back");

    // Growing is live and keeps the image; a quota change is live. What
    // refers to the image's `spec` (the snapshot, and through it the
    // clones) stays known, so nothing else changes.
    write(dir.path(), "main.strata.hcl", &lab(&pool, 24 * mib, 200 * mib, false));
    let out = stdout(&expect(dir.path(), &["apply", "-auto-approve"], 0));
    assert!(out.contains("ceph_rbd_image.golden will be updated in place (live)"), "{out}");
    assert!(out.contains("ceph_pool.lab will be updated in place (live)"), "{out}");
    assert!(out.contains("Plan: 0 to add, 2 to change, 0 to destroy."), "{out}");
    let info = json("rbd", &["info", &golden]);
    assert_eq!(info["size"], 24 * mib);
    assert_eq!(info["id"], golden_id.as_str(), "grown in place, same image");
    assert_eq!(pool_detail(&pool).unwrap()["quota_max_bytes"], 200 * mib);

    // Shrinking needs consent.
    write(dir.path(), "main.strata.hcl", &lab(&pool, 8 * mib, 200 * mib, false));
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    assert!(stderr(&out).contains("--allow-data-loss"), "{}", stderr(&out));
    assert_eq!(json("rbd", &["info", &golden])["size"], 24 * mib, "nothing was shrunk");

    // Flatten one clone: it no longer has a parent, the others still do.
    // The plan says beforehand that a rollback could not link it again.
    write(dir.path(), "main.strata.hcl", &lab(&pool, 24 * mib, 200 * mib, true));
    let out = stdout(&expect(dir.path(), &["plan", "-no-color", "-out", "flatten.plan"], 0));
    assert!(out.contains("# rollback cannot restore this: flattening"), "{out}");
    let json_plan = stdout(&expect(dir.path(), &["show", "-json", "flatten.plan"], 0));
    assert!(json_plan.contains("\"rollback_cannot_restore\":\"flattening"), "{json_plan}");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(json("rbd", &["info", &format!("{pool}/vm-0")]).get("parent").is_none());
    assert_eq!(json("rbd", &["info", &format!("{pool}/vm-1")])["parent"]["image"], "golden");
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // Drift: a resize behind Strata's back shows in the next plan.
    ok("rbd", &["resize", "--no-progress", "--size", "48M", &format!("{pool}/vm-2")]);
    let out = expect(dir.path(), &["plan", "-detailed-exitcode"], 2);
    assert!(stdout(&out).contains("changed outside of Strata"), "{}", stdout(&out));
    assert!(stdout(&out).contains("ceph_rbd_image.vm[2]"), "{}", stdout(&out));

    // Destroy in the right order: clones, snapshot, parent, pool.
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(pool_detail(&pool).is_none(), "the pool is gone");
    assert!(!tool("ceph", &["auth", "get", &format!("client.{pool}-tenant")]).status.success(), "the client is gone");
}

#[test]
fn a_key_limited_to_one_pool_manages_that_pool_only() {
    conf();
    let dir = scratch();
    let mine = Pool::new("mine");
    let other = Pool::new("other");
    let user = unique("limited");
    let keyring = dir.path().join("limited.keyring");
    ok(
        "ceph",
        &[
            "auth",
            "get-or-create",
            &format!("client.{user}"),
            "mon",
            "profile rbd",
            "osd",
            &format!("profile rbd pool={}", mine.0),
            "mgr",
            &format!("profile rbd pool={}", mine.0),
            "-o",
            keyring.to_str().unwrap(),
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = |pool: &str| {
        format!(
            "{}\nresource \"ceph_rbd_image\" \"disk\" {{\n  pool = \"{pool}\"\n  name = \"disk\"\n  size = 4194304\n}}\n\nresource \"ceph_rbd_snapshot\" \"s\" {{\n  image = ceph_rbd_image.disk.spec\n  name  = \"s1\"\n}}\n",
            provider_block(&format!("  user    = \"{user}\"\n  keyring = \"{}\"\n", keyring.display()))
        )
    };
    write(dir.path(), "main.strata.hcl", &config(&mine.0));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(json("rbd", &["info", &format!("{}/disk", mine.0)])["size"], 4194304);
    assert_eq!(json("rbd", &["snap", "ls", &format!("{}/disk", mine.0)])[0]["name"], "s1");
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(!tool("rbd", &["info", &format!("{}/disk", mine.0)]).status.success());

    // Another pool is out of the key's reach: a clear error naming the image.
    let other_dir = scratch();
    std::fs::copy(&keyring, other_dir.path().join("limited.keyring")).unwrap();
    write(other_dir.path(), "main.strata.hcl", &config(&other.0));
    let out = expect(other_dir.path(), &["apply", "-auto-approve"], 1);
    let err = stderr(&out);
    assert!(err.contains(&format!("image {}/disk", other.0)), "{err}");
    assert!(err.contains("EPERM") || err.contains("EACCES") || err.contains("ermission"), "{err}");
    let _ = tool("ceph", &["auth", "del", &format!("client.{user}")]);
}

#[test]
fn images_and_snapshots_are_imported_by_name() {
    conf();
    let dir = scratch();
    let pool = Pool::new("import");
    let spec = format!("{}/data", pool.0);
    ok("rbd", &["create", "--size", "8M", &spec]);
    ok("rbd", &["snap", "create", &format!("{spec}@keep")]);
    write(
        dir.path(),
        "main.strata.hcl",
        &format!(
            "{}\nresource \"ceph_rbd_image\" \"data\" {{\n  pool = \"{}\"\n  name = \"data\"\n  size = 8388608\n}}\n\nresource \"ceph_rbd_snapshot\" \"keep\" {{\n  image = ceph_rbd_image.data.spec\n  name  = \"keep\"\n}}\n",
            provider_block(""),
            pool.0
        ),
    );
    expect(dir.path(), &["import", "ceph_rbd_image.data", &spec], 0);
    expect(dir.path(), &["import", "ceph_rbd_snapshot.keep", &format!("{spec}@keep")], 0);
    let state = state(dir.path());
    assert_eq!(ok("rbd", &["image-meta", "get", &spec, "strata-id"]).trim(), state["ceph_rbd_image.data"].0, "tagged on import");
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
    // Imported records carry no dependencies yet: the snapshot goes first.
    expect(dir.path(), &["destroy", "-auto-approve", "-target", "ceph_rbd_snapshot.keep"], 0);
    assert!(json("rbd", &["snap", "ls", &spec]).as_array().unwrap().is_empty());
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(!tool("rbd", &["info", &spec]).status.success());
}

#[test]
fn bad_input_gets_clear_errors() {
    conf();
    let dir = scratch();
    let pool = Pool::new("bad");
    let image = |extra: &str| {
        format!("{}\nresource \"ceph_rbd_image\" \"x\" {{\n  pool = \"{}\"\n  name = \"x\"\n{extra}}}\n", provider_block(""), pool.0)
    };
    // A size that is not a whole number of bytes.
    write(dir.path(), "main.strata.hcl", &image("  size = 1048576.5\n"));
    let err = stderr(&expect(dir.path(), &["plan"], 1));
    assert!(err.contains("size") && err.contains("whole"), "{err}");
    // A pool name rbd could not address.
    write(dir.path(), "main.strata.hcl", &format!("{}\nresource \"ceph_pool\" \"p\" {{\n  name = \"a/b\"\n}}\n", provider_block("")));
    let err = stderr(&expect(dir.path(), &["plan"], 1));
    assert!(err.contains("\"a/b\" is not a usable Ceph name"), "{err}");
    // A pool name Ceph itself rejects at create time: an existing pool is not adopted.
    write(dir.path(), "main.strata.hcl", &format!("{}\nresource \"ceph_pool\" \"p\" {{\n  name = \"{}\"\n}}\n", provider_block(""), pool.0));
    let err = stderr(&expect(dir.path(), &["apply", "-auto-approve"], 1));
    assert!(err.contains(&format!("pool {} already exists", pool.0)), "{err}");
    // A clone of a snapshot that does not exist.
    write(dir.path(), "main.strata.hcl", &image(&format!("  size = 1048576\n  clone_of = \"{}/nothing@none\"\n", pool.0)));
    let err = stderr(&expect(dir.path(), &["apply", "-auto-approve"], 1));
    assert!(err.contains(&format!("the snapshot to clone, {}/nothing@none, does not exist", pool.0)), "{err}");
    assert!(ok("rbd", &["ls", &pool.0]).trim().is_empty(), "nothing was left behind");

    // An unreachable cluster: a clear error within the timeout, never a hang.
    let unreachable = dir.path().join("unreachable.conf");
    std::fs::write(&unreachable, "[global]\nmon host = 127.0.0.1:1\n").unwrap();
    write(
        dir.path(),
        "main.strata.hcl",
        &format!(
            "provider \"ceph\" {{\n  conf    = \"{}\"\n  timeout = 3\n}}\n\nresource \"ceph_rbd_image\" \"x\" {{\n  pool = \"p\"\n  name = \"x\"\n  size = 1048576\n}}\n",
            unreachable.display()
        ),
    );
    let started = std::time::Instant::now();
    let err = stderr(&expect(dir.path(), &["apply", "-auto-approve"], 1));
    assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
    assert!(err.contains("image p/x") && (err.contains("timed out") || err.contains("unreachable")), "{err}");
}

// Undo points, through the provider contract (the engine drives them once
// its rollback uses undo records).

async fn provider() -> Arc<CephProvider> {
    let p = Arc::new(CephProvider::default());
    p.configure(&Value::object([("conf", Value::from(conf().display().to_string()))])).await.expect("configure");
    p
}

fn export_sha256(spec: &str, dir: &Path) -> String {
    let file = dir.join("export.raw");
    let _ = std::fs::remove_file(&file);
    ok("rbd", &["export", "--no-progress", spec, file.to_str().unwrap()]);
    let out = Command::new("sha256sum").arg(&file).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

fn undo_snapshots(spec: &str) -> Vec<String> {
    json("rbd", &["snap", "ls", spec])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| n.starts_with("strata-undo-"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shrink_is_undone_from_its_snapshot_with_the_same_bytes() {
    let dir = scratch();
    let pool = Pool::new("undo");
    let spec = format!("{}/data", pool.0);
    // Known bytes: 4 MiB of pseudo-random data.
    let data: Vec<u8> = (0u32..(4 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let file = dir.path().join("data.raw");
    std::fs::write(&file, &data).unwrap();
    ok("rbd", &["import", "--no-progress", file.to_str().unwrap(), &spec]);
    let original = export_sha256(&spec, dir.path());

    let p = provider().await;
    let id = uuid::Uuid::new_v4();
    let prior = p.import("ceph_rbd_image", id, &spec).await.expect("import").state;
    let mut planned = prior.clone();
    if let Value::Map(m) = &mut planned {
        m.insert("size".into(), Value::from(1_i64 << 20));
    }
    let record = p
        .prepare_undo("ceph_rbd_image", id, Undoable::Update { prior: &prior, planned: &planned })
        .await
        .unwrap()
        .expect("a shrink gets an undo point");
    assert!(undo_snapshots(&spec).is_empty(), "prepare_undo changes nothing");
    let shrunk = p.update("ceph_rbd_image", id, &prior, &planned, Some(&record)).await.expect("shrink");
    assert_eq!(shrunk.get("size").as_i64(), Some(1 << 20));
    assert_eq!(json("rbd", &["info", &spec])["size"], 1 << 20);
    assert_eq!(undo_snapshots(&spec).len(), 1, "the snapshot was taken first");

    let restored = p.undo("ceph_rbd_image", id, &record).await.expect("undo");
    assert_eq!(restored.get("size").as_i64(), Some(4 << 20));
    assert_eq!(json("rbd", &["info", &spec])["size"], 4 << 20);
    assert_eq!(export_sha256(&spec, dir.path()), original, "the same bytes as before the shrink");
    assert!(undo_snapshots(&spec).is_empty(), "the undo snapshot is gone");
    // Idempotent: again, and discarding what is already gone.
    p.undo("ceph_rbd_image", id, &record).await.expect("undo again");
    p.discard_undo("ceph_rbd_image", id, &record).await.expect("discard");
    assert_eq!(export_sha256(&spec, dir.path()), original);

    // A kept shrink: discard removes the undo point and keeps the new size.
    let record = p.prepare_undo("ceph_rbd_image", id, Undoable::Update { prior: &prior, planned: &planned }).await.unwrap().unwrap();
    p.update("ceph_rbd_image", id, &prior, &planned, Some(&record)).await.expect("shrink");
    p.discard_undo("ceph_rbd_image", id, &record).await.expect("discard");
    p.discard_undo("ceph_rbd_image", id, &record).await.expect("discard twice");
    assert!(undo_snapshots(&spec).is_empty());
    assert_eq!(json("rbd", &["info", &spec])["size"], 1 << 20);

    // A growth needs no undo point.
    let grow = p.prepare_undo("ceph_rbd_image", id, Undoable::Update { prior: &planned, planned: &prior }).await.unwrap();
    assert!(grow.is_none());
    p.delete("ceph_rbd_image", id, &shrunk).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retired_image_waits_in_the_trash_until_undone_or_discarded() {
    let dir = scratch();
    let pool = Pool::new("retire");
    let spec = format!("{}/old", pool.0);
    let file = dir.path().join("data.raw");
    std::fs::write(&file, (0u32..(1 << 20)).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).unwrap();
    ok("rbd", &["import", "--no-progress", file.to_str().unwrap(), &spec]);
    let original = export_sha256(&spec, dir.path());
    let p = provider().await;
    let id = uuid::Uuid::new_v4();
    let prior = p.import("ceph_rbd_image", id, &spec).await.unwrap().state;
    let record = p.prepare_undo("ceph_rbd_image", id, Undoable::Retire { prior: &prior }).await.unwrap().unwrap();
    p.retire("ceph_rbd_image", id, &prior, &record).await.expect("retire");
    assert!(!ok("rbd", &["ls", &pool.0]).contains("old"), "the name is free for the replacement");
    assert!(ok("rbd", &["trash", "ls", &pool.0]).contains("old"));
    let back = p.undo("ceph_rbd_image", id, &record).await.expect("undo");
    assert_eq!(back.get("id"), prior.get("id"), "the same image is back");
    assert_eq!(export_sha256(&spec, dir.path()), original);
    p.undo("ceph_rbd_image", id, &record).await.expect("undo is idempotent");

    // Retired for good.
    p.retire("ceph_rbd_image", id, &prior, &record).await.expect("retire");
    p.discard_undo("ceph_rbd_image", id, &record).await.expect("discard");
    p.discard_undo("ceph_rbd_image", id, &record).await.expect("discard twice");
    assert!(ok("rbd", &["trash", "ls", &pool.0]).trim().is_empty());
    assert!(!ok("rbd", &["ls", &pool.0]).contains("old"));
}

#[test]
fn a_pool_over_its_quota_times_out_with_a_clear_message() {
    conf();
    let dir = scratch();
    let pool = unique("full");
    let mib = 1 << 20;
    let config = |quota: u64, image: bool| {
        let mut text = format!(
            "{}\nresource \"ceph_pool\" \"p\" {{\n  name            = \"{pool}\"\n  quota_max_bytes = {quota}\n}}\n",
            provider_block("  timeout = 5\n")
        );
        if image {
            text.push_str("\nresource \"ceph_rbd_image\" \"late\" {\n  pool = ceph_pool.p.name\n  name = \"late\"\n  size = 1048576\n}\n");
        }
        text
    };
    write(dir.path(), "main.strata.hcl", &config(4 * mib, false));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(pool_detail(&pool).unwrap()["quota_max_bytes"], 4 * mib, "quota set and read back");

    // Fill the pool past its quota; the mon flags it full a few seconds later.
    let file = dir.path().join("fill.raw");
    std::fs::write(&file, vec![0x5a_u8; 12 << 20]).unwrap();
    let _ = Command::new("timeout")
        .args(["60", "rbd", "--conf"])
        .arg(conf())
        .args(["import", "--no-progress", "--rados-osd-op-timeout", "20"])
        .arg(&file)
        .arg(format!("{pool}/fill"))
        .output();
    let full = (0..120).any(|_| {
        let flags = pool_detail(&pool).unwrap()["flags_names"].as_str().unwrap_or_default().to_owned();
        flags.contains("full_quota") || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            false
        }
    });
    assert!(full, "the pool never became full: {:?}", pool_detail(&pool));

    write(dir.path(), "main.strata.hcl", &config(4 * mib, true));
    let started = std::time::Instant::now();
    let err = stderr(&expect(dir.path(), &["apply", "-auto-approve"], 1));
    assert!(started.elapsed().as_secs() < 40, "took {:?}", started.elapsed());
    assert!(err.contains(&format!("pool {pool} is full")), "{err}");

    // Raising the quota unblocks the pool.
    ok("ceph", &["osd", "pool", "set-quota", &pool, "max_bytes", "0"]);
    let removed = (0..60).any(|_| {
        tool("rbd", &["rm", "--no-progress", "--rados-osd-op-timeout", "5", &format!("{pool}/fill")]).status.success() || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            false
        }
    });
    assert!(removed, "the pool stayed blocked after its quota was lifted");
    write(dir.path(), "main.strata.hcl", &config(0, false));
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(pool_detail(&pool).is_none());
}

/// A pool holding one image with known bytes, adopted by Strata; returns
/// the image's spec and the checksum of its bytes.
fn adopted_image(dir: &Path, pool: &Pool) -> (String, String) {
    let spec = format!("{}/data", pool.0);
    let data: Vec<u8> = (0u32..(4 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let file = dir.join("data.raw");
    std::fs::write(&file, &data).unwrap();
    ok("rbd", &["import", "--no-progress", file.to_str().unwrap(), &spec]);
    let checksum = export_sha256(&spec, dir);
    (spec, checksum)
}

fn shrink_then(pool: &str, dir: &Path, size: u64, testing: &str) -> String {
    format!(
        r#"{provider}
provider "testing" {{
  dir = "{world}"
{testing}}}

resource "ceph_rbd_image" "data" {{
  pool = "{pool}"
  name = "data"
  size = {size}
}}

resource "testing_object" "after" {{
  name  = "after"
  value = ceph_rbd_image.data.size
}}
"#,
        provider = provider_block(""),
        world = dir.join("world").display(),
    )
}

#[test]
fn rollback_restores_a_shrunk_image_byte_for_byte() {
    conf();
    let dir = scratch();
    let pool = Pool::new("rollback");
    let (spec, original) = adopted_image(dir.path(), &pool);
    let size = 4 << 20;
    write(dir.path(), "main.strata.hcl", &shrink_then(&pool.0, dir.path(), size, "  fail_on_operation = 99\n"));
    expect(dir.path(), &["import", "ceph_rbd_image.data", &spec], 0);

    // The shrink runs, then the later resource fails: rollback rolls the
    // image back to its undo snapshot.
    write(dir.path(), "main.strata.hcl", &shrink_then(&pool.0, dir.path(), 1 << 20, "  fail_on_operation = 1\n"));
    let out = expect(dir.path(), &["apply", "-auto-approve", "--allow-data-loss"], 1);
    assert!(stderr(&out).contains("injected failure"), "{}", stderr(&out));
    assert_eq!(json("rbd", &["info", &spec])["size"], size, "the size is back");
    assert_eq!(export_sha256(&spec, dir.path()), original, "the bytes are back");
    assert!(undo_snapshots(&spec).is_empty(), "no undo snapshot is left");

    // The same after the process dies between the shrink and the failure,
    // followed by a re-run.
    write(dir.path(), "main.strata.hcl", &shrink_then(&pool.0, dir.path(), 1 << 20, "  crash_on_operation = 1\n"));
    let out = run(dir.path(), &["apply", "-auto-approve", "--allow-data-loss"]);
    assert_eq!(out.status.code(), Some(137), "the apply was killed: {}", stderr(&out));
    assert_eq!(json("rbd", &["info", &spec])["size"], 1 << 20, "killed after the shrink");
    assert_eq!(undo_snapshots(&spec).len(), 1);
    write(dir.path(), "main.strata.hcl", &shrink_then(&pool.0, dir.path(), size, "  fail_on_operation = 99\n"));
    expect(dir.path(), &["plan"], 0);
    assert_eq!(json("rbd", &["info", &spec])["size"], size);
    assert_eq!(export_sha256(&spec, dir.path()), original);
    assert!(undo_snapshots(&spec).is_empty());

    // A shrink that succeeds keeps its result and leaves no undo snapshot.
    write(dir.path(), "main.strata.hcl", &shrink_then(&pool.0, dir.path(), 1 << 20, "  fail_on_operation = 99\n"));
    expect(dir.path(), &["apply", "-auto-approve", "--allow-data-loss"], 0);
    assert_eq!(json("rbd", &["info", &spec])["size"], 1 << 20);
    assert!(undo_snapshots(&spec).is_empty());
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
}

#[test]
fn a_replaced_image_comes_back_from_the_trash_on_rollback() {
    conf();
    let dir = scratch();
    let pool = Pool::new("replace");
    let (spec, original) = adopted_image(dir.path(), &pool);
    let image = |features: &str, testing: &str| {
        shrink_then(&pool.0, dir.path(), 4 << 20, testing).replace("  size = 4194304\n", &format!("  size = 4194304\n  features = {features}\n"))
    };
    write(dir.path(), "main.strata.hcl", &image("[\"layering\"]", "  fail_on_operation = 99\n"));
    expect(dir.path(), &["import", "ceph_rbd_image.data", &spec], 0);
    let old_id = json("rbd", &["info", &spec])["id"].as_str().unwrap().to_owned();
    // New features replace the image; the later failure rolls that back.
    write(dir.path(), "main.strata.hcl", &image("[\"layering\", \"exclusive-lock\"]", "  fail_on_operation = 1\n"));
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    assert!(stderr(&out).contains("injected failure"), "{}", stderr(&out));
    assert_eq!(json("rbd", &["info", &spec])["id"], old_id.as_str(), "the original image is back");
    assert_eq!(export_sha256(&spec, dir.path()), original);
    assert!(ok("rbd", &["trash", "ls", &pool.0]).trim().is_empty(), "nothing left in the trash");
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
}

#[test]
fn a_failed_apply_that_created_a_pool_images_and_a_clone_leaves_the_cluster_as_before() {
    conf();
    let dir = scratch();
    let pool = unique("undone");
    write(
        dir.path(),
        "main.strata.hcl",
        &format!(
            r#"{provider}
provider "testing" {{
  dir               = "{world}"
  fail_on_operation = 1
}}

resource "ceph_pool" "p" {{
  name = "{pool}"
}}

resource "ceph_rbd_image" "golden" {{
  pool = ceph_pool.p.name
  name = "golden"
  size = 8388608
}}

resource "ceph_rbd_snapshot" "base" {{
  image     = ceph_rbd_image.golden.spec
  name      = "base"
  protected = true
}}

resource "ceph_rbd_image" "clone" {{
  pool     = ceph_pool.p.name
  name     = "clone"
  size     = 8388608
  clone_of = ceph_rbd_snapshot.base.id
}}

resource "testing_object" "after" {{
  name  = "after"
  value = ceph_rbd_image.clone.id
}}
"#,
            provider = provider_block(""),
            world = dir.path().join("world").display(),
        ),
    );
    std::fs::create_dir_all(dir.path().join("world")).unwrap();
    // Other tests make and remove their own pools meanwhile: compare ours.
    let has_pool = || ok("ceph", &["osd", "pool", "ls"]).lines().any(|l| l == pool);
    assert!(!has_pool());
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    assert!(stderr(&out).contains("injected failure"), "{}", stderr(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("ceph_rbd_image.clone: Creation complete"), "the clone was made before the failure:\n{said}");
    assert!(!has_pool(), "rollback removed the pool (and so every image in it)");
    assert!(!tool("rbd", &["ls", "-p", &pool]).status.success(), "rbd ls finds no pool {pool}");
    assert!(state(dir.path()).is_empty(), "nothing is left in state");
}

/// Every image in the pool is known to state under the identity it carries,
/// once, and state knows no image that does not exist.
fn assert_no_orphaned_images(dir: &Path, pool: &str, round: usize) {
    let state = state(dir);
    let records: Vec<(&String, &serde_json::Value)> =
        state.iter().filter(|(a, _)| a.starts_with("ceph_rbd_image.")).map(|(_, (id, v))| (id, v)).collect();
    let images: Vec<String> = json("rbd", &["ls", "-p", pool]).as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_owned()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for image in &images {
        assert!(!image.starts_with(".strata-"), "round {round}: a half-made image {image} was left behind");
        let tag = ok("rbd", &["image-meta", "get", &format!("{pool}/{image}"), "strata-id"]).trim().to_owned();
        assert!(seen.insert(tag.clone()), "round {round}: two images carry identity {tag}");
        assert!(
            records.iter().any(|(id, v)| **id == tag && v["name"] == image.as_str()),
            "round {round}: image {image} ({tag}) exists but state does not know it\nstate: {state:#?}"
        );
    }
    for (id, v) in &records {
        assert!(images.iter().any(|i| v["name"] == i.as_str()), "round {round}: state has image {} ({id}) that does not exist", v["name"]);
    }
}

#[test]
fn kill_9_during_creates_leaves_no_orphaned_or_duplicated_images() {
    conf();
    let dir = scratch();
    let pool = Pool::new("crash");
    write(
        dir.path(),
        "main.strata.hcl",
        &format!(
            r#"{}
resource "ceph_rbd_image" "golden" {{
  pool = "{pool}"
  name = "golden"
  size = 8388608
}}

resource "ceph_rbd_snapshot" "base" {{
  image = ceph_rbd_image.golden.spec
  name  = "base"
}}

resource "ceph_rbd_image" "vm" {{
  count    = 3
  pool     = "{pool}"
  name     = "vm-${{count.index}}"
  size     = 16777216
  clone_of = ceph_rbd_snapshot.base.id
}}

resource "ceph_rbd_image" "plain" {{
  count = 2
  pool  = "{pool}"
  name  = "plain-${{count.index}}"
  size  = 4194304
}}
"#,
            provider_block(""),
            pool = pool.0
        ),
    );
    expect(dir.path(), &["apply", "-auto-approve", "-target", "ceph_rbd_snapshot.base"], 0);
    let (mut killed, mut midway) = (0, 0);
    // Rounds go on until enough applies were really killed: how long the
    // creates take depends on the machine, so a kill may come too late.
    let mut round = 0;
    while killed < 20 && round < 100 {
        round += 1;
        let mut child = spawn(dir.path(), &["apply", "-auto-approve"]);
        // Wait until the creates have begun, then spread the kills over them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            if json("rbd", &["ls", "-p", &pool.0]).as_array().unwrap().len() > 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis((round as u64 * 131) % 900));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.code().is_none() {
            killed += 1;
            // Interrupted inside a create: an image not yet renamed into
            // place, or only some of them made.
            let images = json("rbd", &["ls", "-p", &pool.0]);
            let images = images.as_array().unwrap();
            if images.iter().any(|i| i.as_str().unwrap().starts_with(".strata-")) || (2..6).contains(&images.len()) {
                midway += 1;
            }
        }
        // The next command recovers the interrupted apply first.
        expect(dir.path(), &["plan"], 0);
        assert_no_orphaned_images(dir.path(), &pool.0, round);
        // Start the next round with the clones and images to create again.
        expect(dir.path(), &["destroy", "-auto-approve", "-target", "ceph_rbd_image.vm", "-target", "ceph_rbd_image.plain"], 0);
    }
    // The kills must really have interrupted applies, some in the middle of
    // the creates (how many lands mid-create depends on the machine's load).
    assert!(killed >= 20 && midway >= 1, "only {killed} of {round} applies killed, {midway} in the middle of the creates");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_no_orphaned_images(dir.path(), &pool.0, round + 1);
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(json("rbd", &["ls", "-p", &pool.0]).as_array().unwrap().is_empty());
}
