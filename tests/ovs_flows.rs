//! The OVS provider's OpenFlow resources (`ovs_flow_set`,
//! `ovs_security_group`) through the CLI, against a private ovsdb-server and
//! ovs-vswitchd per test (userspace datapath, own run directory and network
//! namespace), checked with `ovs-ofctl dump-flows` and with real traffic
//! between namespaces this test creates (198.18.0.0/15 only).
//! `scripts/ovs-up.sh` installs Open vSwitch; these tests fail loudly without it.

mod common;
#[path = "common/ovs.rs"]
mod ovsd;

use common::*;
use ovsd::{veth, Netns, Ovs};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const OWNER_MASK: &str = "0xffffffffffff0000";

/// `ovs-ofctl` against the private instance's bridge; its stdout.
fn ofctl(ovs: &Ovs, args: &[&str]) -> String {
    let out = Command::new("ovs-ofctl").args(args).env("OVS_RUNDIR", ovs.run.path()).output().expect("run ovs-ofctl");
    assert!(out.status.success(), "ovs-ofctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The flows of `bridge` (no statistics), one per line, without the header.
fn flows(ovs: &Ovs, bridge: &str, filter: &str) -> Vec<String> {
    let mut args = vec!["dump-flows", "--no-stats", bridge];
    if !filter.is_empty() {
        args.push(filter);
    }
    ofctl(ovs, &args).lines().filter(|l| l.contains("actions=")).map(|l| l.trim().to_owned()).collect()
}

/// The flows carrying the owner cookie of `address` (from state).
fn owned(ovs: &Ovs, dir: &Path, bridge: &str, address: &str) -> Vec<String> {
    let cookie = cookie_of(dir, address);
    flows(ovs, bridge, &format!("cookie={cookie}/{OWNER_MASK}"))
}

fn cookie_of(dir: &Path, address: &str) -> String {
    let st = state(dir);
    let (_, values) = st.get(address).unwrap_or_else(|| panic!("{address} not in state: {st:#?}"));
    values["cookie"].as_str().expect("cookie in state").to_owned()
}

fn provider(ovs: &Ovs) -> String {
    format!("provider \"ovs\" {{\n  db = \"{}\"\n}}\n", ovs.db())
}

fn add_bridge(ovs: &Ovs, name: &str) {
    ovs.vsctl(&["--timeout=20", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev"]);
}

/// Waits until a (re)started vswitchd serves OpenFlow on `bridge`.
fn wait_for_bridge(ovs: &Ovs, bridge: &str) {
    let start = std::time::Instant::now();
    while !Command::new("ovs-ofctl").args(["show", bridge]).env("OVS_RUNDIR", ovs.run.path()).output().is_ok_and(|o| o.status.success()) {
        assert!(start.elapsed() < Duration::from_secs(10), "vswitchd does not serve {bridge}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn flow_set(flows: &[(&str, u32, &str, &str)]) -> String {
    let items: Vec<String> = flows
        .iter()
        .map(|(table, priority, m, actions)| format!("    {{ table = {table}, priority = {priority}, match = \"{m}\", actions = \"{actions}\" }},"))
        .collect();
    format!("resource \"ovs_flow_set\" \"acl\" {{\n  bridge = \"brf\"\n  flows = [\n{}\n  ]\n}}\n", items.join("\n"))
}

#[test]
fn a_flow_set_owns_only_its_flows_and_comes_back_after_drift_and_restarts() {
    let mut ovs = Ovs::start();
    add_bridge(&ovs, "brf");
    // Someone else's flows, with and without a cookie.
    ofctl(&ovs, &["add-flow", "brf", "cookie=0x99,priority=50,ip,nw_dst=198.18.9.9,actions=drop"]);
    ofctl(&ovs, &["add-flow", "brf", "priority=40,udp,actions=NORMAL"]);
    let foreign = flows(&ovs, "brf", "");
    assert_eq!(foreign.len(), 3, "{foreign:?}"); // the two and priority=0 NORMAL

    let dir = scratch();
    let base = provider(&ovs);
    let v1 = [("0", 100, "ip,nw_src=198.18.0.1", "drop"), ("3", 7, "tcp,tp_dst=22", "ct(commit),NORMAL")];
    write(dir.path(), "main.strata.hcl", &format!("{base}{}", flow_set(&v1)));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let cookie = cookie_of(dir.path(), "ovs_flow_set.acl");
    let ours = owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl");
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert!(ours[0].contains("priority=100,ip,nw_src=198.18.0.1 actions=drop"), "{ours:?}");
    assert!(ours[1].contains("table=3, priority=7,tcp,tp_dst=22 actions=ct(commit),NORMAL"), "{ours:?}");
    let cookie_prefix = cookie.trim_start_matches("0x").trim_end_matches("0000");
    assert!(ours.iter().all(|f| f.starts_with(&format!("cookie=0x{cookie_prefix}"))), "{cookie} {ours:?}");
    for f in &foreign {
        assert!(flows(&ovs, "brf", "").contains(f), "foreign flow {f} was touched");
    }
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // Drift: one of ours deleted out of band shows in the plan and is re-created.
    ofctl(&ovs, &["del-flows", "brf", &format!("cookie={:#x}/-1", u64::from_str_radix(cookie.trim_start_matches("0x"), 16).unwrap() | 1)]);
    assert_eq!(owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl").len(), 1);
    let plan = stdout(&expect(dir.path(), &["plan", "-detailed-exitcode"], 2));
    assert!(plan.contains("ovs_flow_set.acl") && plan.contains("tp_dst=22"), "{plan}");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl"), ours);
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // An altered flow (same cookie, other actions) is drift too.
    ofctl(&ovs, &["mod-flows", "brf", &format!("cookie={cookie}/{OWNER_MASK},ip,nw_src=198.18.0.1,actions=NORMAL")]);
    let plan = stdout(&expect(dir.path(), &["plan", "-detailed-exitcode"], 2));
    assert!(plan.contains("NORMAL"), "{plan}");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl"), ours);

    // Update: the set is replaced as a whole; foreign flows stay.
    let v2 = [("0", 100, "ip,nw_src=198.18.0.1", "NORMAL"), ("0", 90, "arp", "NORMAL"), ("5", 1, "", "drop")];
    write(dir.path(), "main.strata.hcl", &format!("{base}{}", flow_set(&v2)));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let ours = owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl");
    assert_eq!(ours.len(), 3, "{ours:?}");
    assert!(ours[0].ends_with("priority=100,ip,nw_src=198.18.0.1 actions=NORMAL"), "{ours:?}");
    assert!(ours[2].ends_with("table=5, priority=1 actions=drop"), "{ours:?}");
    for f in &foreign {
        assert!(flows(&ovs, "brf", "").contains(f), "foreign flow {f} was touched by the update");
    }

    // vswitchd restart: flows are lost; the plan shows it; apply re-creates.
    ovs.stop_vswitchd();
    // Meanwhile the flows cannot be known: the plan says why instead of
    // claiming the set is gone.
    let out = expect(dir.path(), &["plan"], 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(err.contains("ovs-vswitchd does not serve it"), "{err}");
    ovs.start_vswitchd();
    wait_for_bridge(&ovs, "brf");
    assert!(owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl").is_empty(), "flows survived a restart?");
    let plan = stdout(&expect(dir.path(), &["plan", "-detailed-exitcode"], 2));
    assert!(plan.contains("ovs_flow_set.acl"), "{plan}");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl"), ours);
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // Destroy removes ours only.
    ofctl(&ovs, &["add-flow", "brf", "cookie=0x99,priority=50,ip,nw_dst=198.18.9.9,actions=drop"]);
    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    let left = flows(&ovs, "brf", "");
    assert!(left.iter().any(|f| f.starts_with("cookie=0x99,")), "{left:?}");
    assert!(!left.iter().any(|f| f.starts_with(&format!("cookie=0x{cookie_prefix}"))), "{left:?}");
}

#[test]
fn bad_flows_are_errors_naming_the_resource_and_never_half_installed() {
    let ovs = Ovs::start();
    add_bridge(&ovs, "brf");
    let dir = scratch();
    let base = provider(&ovs);

    // Syntax the local parser rejects fails the plan.
    write(dir.path(), "main.strata.hcl", &format!("{base}{}", flow_set(&[("0", 10, "ip", "drop"), ("0", 11, "udp", "frobnicate")])));
    let out = expect(dir.path(), &["plan"], 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(err.contains("ovs_flow_set.acl") && err.contains("unknown action frobnicate") && err.contains("flow 2"), "{err}");
    write(dir.path(), "main.strata.hcl", &format!("{base}{}", flow_set(&[("300", 10, "ip", "drop")])));
    let out = expect(dir.path(), &["plan"], 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(err.contains("ovs_flow_set.acl") && err.contains("table 300 is outside 0–254"), "{err}");

    // A good set, then an update the switch rejects (no such group): the
    // apply fails with vswitchd's message and the old set stays in place.
    write(dir.path(), "main.strata.hcl", &format!("{base}{}", flow_set(&[("0", 10, "ip", "drop")])));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let before = owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl");
    assert_eq!(before.len(), 1);
    write(dir.path(), "main.strata.hcl", &format!("{base}{}", flow_set(&[("0", 10, "ip", "NORMAL"), ("0", 11, "udp", "group:5")])));
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(err.contains("ovs_flow_set.acl") && err.contains("OFPBAC_BAD_OUT_GROUP") && err.contains("flow 2"), "{err}");
    assert_eq!(owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl"), before);

    // A port only the switch can resolve: the plan passes, the apply fails.
    write(dir.path(), "main.strata.hcl", &format!("{base}{}", flow_set(&[("0", 10, "ip", "NORMAL"), ("0", 12, "in_port=nosuchport", "drop")])));
    expect(dir.path(), &["plan"], 0);
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(err.contains("ovs_flow_set.acl") && err.contains("nosuchport: invalid or unknown port"), "{err}");
    assert_eq!(owned(&ovs, dir.path(), "brf", "ovs_flow_set.acl"), before);

    // A flow set on a bridge that does not exist fails with that message.
    let dir2 = scratch();
    write(dir2.path(), "main.strata.hcl", &format!("{base}{}", flow_set(&[("0", 10, "ip", "drop")]).replace("brf", "nobr")));
    let out = expect(dir2.path(), &["apply", "-auto-approve"], 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(err.contains("ovs_flow_set.acl") && err.contains("\"nobr\""), "{err}");
}

/// Runs `f` in a thread that entered network namespace `ns` (for sockets
/// created in it).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        use std::os::fd::AsRawFd;
        // SAFETY: setns only changes this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// A TCP listener on `port` in `ns` that accepts connections until dropped.
fn listen(ns: &str, port: u16) {
    let ready = std::sync::mpsc::channel();
    let tx = ready.0;
    in_netns(ns, move || {
        let l = TcpListener::bind(("0.0.0.0", port)).expect("bind");
        tx.send(()).unwrap();
        for c in l.incoming() {
            drop(c);
        }
    });
    ready.1.recv_timeout(Duration::from_secs(5)).expect("listener up");
}

fn connects(ns: &str, addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().unwrap();
    in_netns(ns, move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()).join().unwrap()
}

/// A namespace with one veth to bridge `brsg`, addressed `addr` with `mac`;
/// also the name of its OVS port.
fn tenant_port(ovs: &Ovs, mac: &str, addr: &str) -> (Netns, String) {
    let ns = Netns::new();
    let (outer, inner) = (ovsd::unique("sgo"), ovsd::unique("sgi"));
    veth(&ovs.netns, &outer, &ns.0, &inner, Some(addr));
    for args in [vec!["ip", "link", "set", &inner, "address", mac], vec!["ethtool", "-K", &inner, "tx", "off"]] {
        // The userspace conntrack checks TCP checksums, which veth offloads.
        let out = ns.exec(&args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    ovs.vsctl(&["--timeout=20", "add-port", "brsg", &outer]);
    (ns, outer)
}

fn tenant(ovs: &Ovs, mac: &str, addr: &str) -> Netns {
    tenant_port(ovs, mac, addr).0
}

fn security_group(icmp_from: &str, tcp_port: u16) -> String {
    format!(
        r#"
resource "ovs_security_group" "web" {{
  bridge      = "brsg"
  attachments = ["52:54:00:5e:00:01"]
  rules = [
    {{ direction = "ingress", protocol = "icmp", remote_cidr = "{icmp_from}" }},
    {{ direction = "ingress", protocol = "tcp", port_min = {tcp_port} }},
  ]
}}
"#
    )
}

#[test]
fn a_security_group_filters_real_traffic_statefully() {
    let ovs = Ovs::start();
    add_bridge(&ovs, "brsg");
    let web = tenant(&ovs, "52:54:00:5e:00:01", "198.18.44.1/24");
    let friend = tenant(&ovs, "52:54:00:5e:00:02", "198.18.44.2/24");
    let stranger = tenant(&ovs, "52:54:00:5e:00:03", "198.18.44.3/24");
    listen(&web.0, 8080);
    listen(&web.0, 8081);
    // Without a group everything flows.
    assert!(friend.pings("198.18.44.1", 3));
    assert!(stranger.pings("198.18.44.1", 3));
    assert!(connects(&friend.0, "198.18.44.1:8081"));

    let dir = scratch();
    let base = provider(&ovs);
    write(dir.path(), "main.strata.hcl", &format!("{base}{}", security_group("198.18.44.2/32", 8080)));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let installed = owned(&ovs, dir.path(), "brsg", "ovs_security_group.web");
    assert!(installed.iter().any(|f| f.contains("ct(commit")), "{installed:?}");
    assert!(friend.pings("198.18.44.1", 2), "ICMP from the allowed peer");
    assert!(!stranger.pings("198.18.44.1", 1), "ICMP from another peer must be dropped");
    assert!(connects(&friend.0, "198.18.44.1:8080"), "TCP to the allowed port");
    assert!(connects(&stranger.0, "198.18.44.1:8080"), "TCP to the allowed port from anyone");
    assert!(!connects(&friend.0, "198.18.44.1:8081"), "TCP to another port must be dropped");
    // Default deny outwards: no egress rule, so web cannot open connections,
    // while replies to allowed connections (above) passed.
    assert!(!web.pings("198.18.44.2", 1), "egress is default-deny");
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // Drift: the flows vanish (as after a vswitchd restart) -> plan, re-create.
    ofctl(&ovs, &["del-flows", "brsg", &format!("cookie={}/{OWNER_MASK}", cookie_of(dir.path(), "ovs_security_group.web"))]);
    assert!(stranger.pings("198.18.44.1", 2), "without its flows the group is not enforced");
    let plan = stdout(&expect(dir.path(), &["plan", "-detailed-exitcode"], 2));
    assert!(plan.contains("ovs_security_group.web") && plan.contains("52:54:00:5e:00:01"), "{plan}");
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(owned(&ovs, dir.path(), "brsg", "ovs_security_group.web"), installed);
    assert!(!stranger.pings("198.18.44.1", 1));

    // A vswitchd restart loses the flows; the next plan and apply bring the
    // group back, and it filters again.
    let mut ovs = ovs;
    ovs.stop_vswitchd();
    ovs.start_vswitchd();
    wait_for_bridge(&ovs, "brsg");
    assert!(owned(&ovs, dir.path(), "brsg", "ovs_security_group.web").is_empty());
    expect(dir.path(), &["plan", "-detailed-exitcode"], 2);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(owned(&ovs, dir.path(), "brsg", "ovs_security_group.web"), installed);
    assert!(friend.pings("198.18.44.1", 3), "after the restart: ICMP from the allowed peer");
    assert!(!stranger.pings("198.18.44.1", 1), "after the restart: ICMP from another peer is dropped again");

    // A live update: ICMP from the whole /24, TCP moves to 8081.
    write(dir.path(), "main.strata.hcl", &format!("{base}{}", security_group("198.18.44.0/24", 8081)));
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    assert!(stranger.pings("198.18.44.1", 2));
    assert!(connects(&friend.0, "198.18.44.1:8081"));
    assert!(!connects(&friend.0, "198.18.44.1:8080"));

    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(flows(&ovs, "brsg", "").iter().all(|f| !f.contains("ct(")), "group flows left behind");
    assert!(web.pings("198.18.44.2", 2), "without the group egress flows again");
}

#[test]
fn port_attachments_and_remote_groups() {
    let ovs = Ovs::start();
    add_bridge(&ovs, "brsg");
    let web = tenant(&ovs, "52:54:00:5e:00:01", "198.18.45.1/24");
    let (db, db_port) = tenant_port(&ovs, "52:54:00:5e:00:02", "198.18.45.2/24");
    let stranger = tenant(&ovs, "52:54:00:5e:00:03", "198.18.45.3/24");
    // What libvirt records for a guest's tap.
    ovs.vsctl(&["set", "Interface", &db_port, "external_ids:attached-mac=\"52:54:00:5e:00:02\""]);
    listen(&db.0, 5432);
    listen(&db.0, 5433);

    let dir = scratch();
    let config = format!(
        r#"{}
resource "ovs_security_group" "web" {{
  bridge      = "brsg"
  attachments = ["52:54:00:5e:00:01"]
  rules       = [{{ direction = "egress", protocol = "tcp", port_min = 5432, port_max = 5433 }}]
}}

resource "ovs_security_group" "db" {{
  bridge      = "brsg"
  attachments = ["{db_port}"]
  rules       = [{{ direction = "ingress", protocol = "tcp", port_min = 5432, remote_group = ovs_security_group.web.members }}]
}}
"#,
        provider(&ovs)
    );
    write(dir.path(), "main.strata.hcl", &config);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let st = state(dir.path());
    assert_eq!(st["ovs_security_group.db"].1["members"], serde_json::json!(["52:54:00:5e:00:02"]));
    assert_eq!(st["ovs_security_group.web"].1["members"], serde_json::json!(["52:54:00:5e:00:01"]));
    let db_flows = owned(&ovs, dir.path(), "brsg", "ovs_security_group.db");
    assert!(db_flows.iter().any(|f| f.contains("in_port=")), "a port attachment's egress is matched by in_port: {db_flows:?}");

    assert!(connects(&web.0, "198.18.45.2:5432"), "a member of the remote group reaches the port");
    assert!(!connects(&stranger.0, "198.18.45.2:5432"), "a host outside the remote group does not");
    assert!(!connects(&web.0, "198.18.45.2:5433"), "db allows only 5432, though web may send to 5433");
    // The port attachment's own traffic is matched by in_port: default deny.
    assert!(!db.pings("198.18.45.3", 1), "db has no egress rule");
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);

    // A second group on web's NIC is refused; web's group stays in force.
    let web_flows = owned(&ovs, dir.path(), "brsg", "ovs_security_group.web");
    let dup = "resource \"ovs_security_group\" \"dup\" {\n  bridge      = \"brsg\"\n  attachments = [\"52:54:00:5E:00:01\"]\n}\n";
    write(dir.path(), "main.strata.hcl", &format!("{config}{dup}"));
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(err.contains("ovs_security_group.dup") && err.contains("52:54:00:5e:00:01 is already in another security group"), "{err}");
    assert_eq!(owned(&ovs, dir.path(), "brsg", "ovs_security_group.web"), web_flows);
    assert!(connects(&web.0, "198.18.45.2:5432"));
    write(dir.path(), "main.strata.hcl", &config);

    expect(dir.path(), &["destroy", "-auto-approve"], 0);
    assert!(connects(&stranger.0, "198.18.45.2:5433"));
}

/// Every flow with a cookie on `bridge` belongs to a flow set in state, and
/// every set in state owns at most its declared number of flows.
fn assert_no_orphan_flows(ovs: &Ovs, dir: &Path, bridge: &str, round: u32) {
    let st = state(dir);
    let owners: Vec<u64> = st
        .iter()
        .filter(|(a, _)| a.starts_with("ovs_flow_set."))
        .map(|(_, (_, v))| u64::from_str_radix(v["cookie"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect();
    for f in flows(ovs, bridge, "") {
        let Some(cookie) = f.strip_prefix("cookie=0x").and_then(|r| r.split(',').next()) else { continue };
        let cookie = u64::from_str_radix(cookie, 16).unwrap();
        assert!(owners.contains(&(cookie & 0xffff_ffff_ffff_0000)), "round {round}: orphan flow {f}\nstate: {st:#?}");
    }
}

#[test]
fn kill_9_during_flow_applies_orphans_and_duplicates_nothing() {
    let ovs = Ovs::start();
    add_bridge(&ovs, "brk");
    let dir = scratch();
    let config = format!(
        r#"{}
variable "gen" {{
  type    = number
  default = 0
}}
resource "ovs_flow_set" "s" {{
  count  = 6
  bridge = "brk"
  flows = [
    {{ table = count.index, priority = 100 + var.gen, match = "ip", actions = "drop" }},
    {{ table = count.index, priority = 10, match = "udp,tp_dst=${{1000 + var.gen}}", actions = "NORMAL" }},
  ]
}}
"#,
        provider(&ovs)
    );
    write(dir.path(), "main.strata.hcl", &config);
    // The state database exists before the first kill (a kill -9 while redb
    // creates the file is the engine's concern, not this provider's).
    expect(dir.path(), &["apply", "-auto-approve", "-var", "gen=0"], 0);
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 1..=20u32 {
        let gen = format!("gen={round}");
        let verb = if round % 5 == 4 { "destroy" } else { "apply" };
        let mut child = spawn(dir.path(), &[verb, "-auto-approve", "-var", &gen]);
        std::thread::sleep(Duration::from_millis(20 + next() % 400));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // The next run reconciles whatever was in flight.
        let out = run(dir.path(), &["plan", "-var", &gen]);
        assert_eq!(out.status.code(), Some(0), "round {round}: plan after kill -9 failed:\n{}", stderr(&out));
        assert_no_orphan_flows(&ovs, dir.path(), "brk", round);
    }
    expect(dir.path(), &["apply", "-auto-approve", "-var", "gen=99"], 0);
    assert_no_orphan_flows(&ovs, dir.path(), "brk", 99);
    let all = flows(&ovs, "brk", "");
    assert_eq!(all.len(), 6 * 2 + 1, "exactly the declared flows and the bridge's NORMAL: {all:#?}");
    assert_eq!(all.iter().filter(|f| f.contains("priority=199,ip")).count(), 6, "{all:#?}");
    expect(dir.path(), &["plan", "-detailed-exitcode", "-var", "gen=99"], 0);
    expect(dir.path(), &["destroy", "-auto-approve", "-var", "gen=99"], 0);
    assert_eq!(flows(&ovs, "brk", ""), ["priority=0 actions=NORMAL"]);
}

#[test]
fn a_failed_apply_leaves_the_flow_tables_exactly_as_before() {
    let ovs = Ovs::start();
    add_bridge(&ovs, "brr");
    ofctl(&ovs, &["add-flow", "brr", "cookie=0x77,priority=5,arp,actions=NORMAL"]);
    let dir = scratch();
    let set = |name: &str, flows: &str| format!("resource \"ovs_flow_set\" \"{name}\" {{\n  bridge = \"brr\"\n  flows  = [{flows}]\n}}\n");
    let v1 = format!("{}{}", provider(&ovs), set("keep", r#"{ priority = 10, match = "ip", actions = "drop" }"#));
    write(dir.path(), "main.strata.hcl", &v1);
    expect(dir.path(), &["apply", "-auto-approve"], 0);
    let before = flows(&ovs, "brr", "");
    assert_eq!(before.len(), 3, "{before:?}");

    // An update of `keep`, a new `fresh`, and a `broken` set the switch
    // rejects (a port only it can resolve): the apply fails and rolls back.
    let v2 = format!(
        "{}{}{}{}",
        provider(&ovs),
        set("keep", r#"{ priority = 10, match = "ip", actions = "NORMAL" }"#),
        set("fresh", r#"{ priority = 20, match = "udp", actions = "drop" }"#),
        set("broken", r#"{ priority = 30, match = "in_port=nosuchport", actions = "drop" }"#)
            .replace("bridge", "depends_on = [ovs_flow_set.keep, ovs_flow_set.fresh]\n  bridge"),
    );
    write(dir.path(), "main.strata.hcl", &v2);
    let out = expect(dir.path(), &["apply", "-auto-approve"], 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(err.contains("ovs_flow_set.broken") && err.contains("nosuchport"), "{err}");
    // `broken` waited for the other two, so they had been changed: rolled back.
    assert!(err.contains("roll") || err.contains("Roll"), "{err}");
    assert_eq!(flows(&ovs, "brr", ""), before, "rollback restores the flow tables exactly");
    write(dir.path(), "main.strata.hcl", &v1);
    expect(dir.path(), &["plan", "-detailed-exitcode"], 0);
}
