//! A private Open vSwitch for one test: ovsdb-server and ovs-vswitchd as
//! child processes with their own run directory, vswitchd in its own network
//! namespace (its tap devices stay out of the host's). Stopped on drop.
//! `scripts/ovs-up.sh` installs the packages; this needs no running service.
//!
//! Include with `#[path = "common/ovs.rs"] mod ovsd;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A unique name for a namespace or device of this test process
/// (at most 15 characters, so it also fits a network device name).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}{}", std::process::id() % 100_000, NEXT.fetch_add(1, Ordering::Relaxed))
}

pub struct Ovs {
    pub run: tempfile::TempDir,
    /// The namespace ovs-vswitchd runs in (and where its ports' devices are).
    pub netns: String,
    db: Child,
    vswitchd: Option<Child>,
}

fn sh(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn wait_for(path: &Path, what: &str) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what} did not create {}", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Ovs {
    /// ovsdb-server and ovs-vswitchd, ready (vswitchd has applied the
    /// initial configuration).
    pub fn start() -> Ovs {
        let mut ovs = Ovs::start_db_only();
        ovs.start_vswitchd();
        ovs
    }

    /// Only ovsdb-server: changes are stored but nothing realizes them.
    pub fn start_db_only() -> Ovs {
        let run = tempfile::Builder::new().prefix("strata-ovs-").tempdir().expect("run dir");
        let dir = run.path().to_owned();
        let netns = unique("sovs");
        sh(Command::new("ip").args(["netns", "add", &netns]));
        sh(Command::new("ip").args(["netns", "exec", &netns, "ip", "link", "set", "lo", "up"]));
        let db_file = dir.join("conf.db");
        sh(Command::new("ovsdb-tool").arg("create").arg(&db_file).arg("/usr/share/openvswitch/vswitch.ovsschema"));
        let db = Command::new("ovsdb-server")
            .arg(&db_file)
            .arg(format!("--remote=punix:{}", dir.join("db.sock").display()))
            // Listeners configured in the database (set-manager), e.g. TCP.
            .arg("--remote=db:Open_vSwitch,Open_vSwitch,manager_options")
            .arg(format!("--unixctl={}", dir.join("ovsdb-server.ctl").display()))
            .arg(format!("--log-file={}", dir.join("ovsdb-server.log").display()))
            .arg("-vconsole:off")
            .envs(Self::env_of(&dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ovsdb-server (install with scripts/ovs-up.sh)");
        let ovs = Ovs { run, netns, db, vswitchd: None };
        wait_for(&dir.join("db.sock"), "ovsdb-server");
        let version = String::from_utf8_lossy(&sh(Command::new("ovs-vswitchd").arg("--version")).stdout)
            .lines()
            .next()
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_default()
            .to_owned();
        ovs.vsctl(&["--no-wait", "init", "--", "set", "Open_vSwitch", ".", &format!("ovs_version={version}")]);
        ovs
    }

    pub fn start_vswitchd(&mut self) {
        let dir = self.run.path().to_owned();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns, "ovs-vswitchd"])
            .arg(self.db())
            .arg(format!("--unixctl={}", dir.join("ovs-vswitchd.ctl").display()))
            .arg(format!("--log-file={}", dir.join("ovs-vswitchd.log").display()))
            .arg("-vconsole:off")
            .envs(Self::env_of(&dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ovs-vswitchd");
        self.vswitchd = Some(child);
        // Without --no-wait this returns once vswitchd applied it.
        self.vsctl(&["--timeout=20", "set", "Open_vSwitch", ".", "external_ids:ready=true"]);
    }

    /// Stops ovs-vswitchd, keeping its devices (as a crash or restart would).
    pub fn stop_vswitchd(&mut self) {
        if let Some(mut child) = self.vswitchd.take() {
            let ctl = self.run.path().join("ovs-vswitchd.ctl");
            let _ = Command::new("ovs-appctl").arg("-t").arg(&ctl).arg("exit").output();
            let _ = child.wait();
        }
    }

    fn env_of(dir: &Path) -> Vec<(&'static str, PathBuf)> {
        ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"].into_iter().map(|k| (k, dir.to_owned())).collect()
    }

    /// The database address for a `provider "ovs"` block.
    pub fn db(&self) -> String {
        format!("unix:{}", self.run.path().join("db.sock").display())
    }

    /// Runs ovs-vsctl against this instance and returns its stdout.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let out = sh(Command::new("ovs-vsctl").arg(format!("--db={}", self.db())).args(args).envs(Self::env_of(self.run.path())));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Runs ovs-vsctl and returns the whole output, success or not.
    pub fn vsctl_raw(&self, args: &[&str]) -> Output {
        Command::new("ovs-vsctl")
            .arg(format!("--db={}", self.db()))
            .args(args)
            .envs(Self::env_of(self.run.path()))
            .stdin(Stdio::null())
            .output()
            .expect("run ovs-vsctl")
    }

    /// `ovs-vsctl get TABLE RECORD COLUMN`, unquoted.
    pub fn get(&self, table: &str, record: &str, column: &str) -> String {
        self.vsctl(&["get", table, record, column]).trim_matches('"').to_owned()
    }

    /// Runs a command inside vswitchd's namespace.
    pub fn in_netns(&self, args: &[&str]) -> Output {
        Command::new("ip").args(["netns", "exec", &self.netns]).args(args).stdin(Stdio::null()).output().expect("ip netns exec")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.run.path().join("ovs-vswitchd.log")).unwrap_or_default()
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        if let Some(mut child) = self.vswitchd.take() {
            let ctl = self.run.path().join("ovs-vswitchd.ctl");
            // --cleanup removes the tap devices of internal ports too.
            let _ = Command::new("ovs-appctl").arg("-t").arg(&ctl).args(["exit", "--cleanup"]).output();
            let _ = child.kill();
            let _ = child.wait();
        }
        let ctl = self.run.path().join("ovsdb-server.ctl");
        let _ = Command::new("ovs-appctl").arg("-t").arg(&ctl).arg("exit").output();
        let _ = self.db.kill();
        let _ = self.db.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).output();
    }
}

/// A network namespace a test creates (for tenant endpoints), deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new() -> Netns {
        let name = unique("sns");
        sh(Command::new("ip").args(["netns", "add", &name]));
        sh(Command::new("ip").args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"]));
        Netns(name)
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip").args(["netns", "exec", &self.0]).args(args).stdin(Stdio::null()).output().expect("ip netns exec")
    }

    /// Whether one ping to `addr` gets an answer within `secs` seconds.
    pub fn pings(&self, addr: &str, secs: u32) -> bool {
        self.exec(&["ping", "-c", "1", "-W", &secs.to_string(), addr]).status.success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A veth pair with one end (`outer`) in namespace `outer_ns` and the other
/// (`inner`, addressed `cidr`) in `inner_ns`, both up. Both ends are made
/// under unique names and renamed inside their namespaces, so `inner` may
/// be a name the host uses too (eth0).
pub fn veth(outer_ns: &str, outer: &str, inner_ns: &str, inner: &str, cidr: Option<&str>) {
    let (tmp_outer, tmp_inner) = (unique("svo"), unique("svi"));
    sh(Command::new("ip").args(["link", "add", &tmp_outer, "type", "veth", "peer", "name", &tmp_inner]));
    for (tmp, ns, name) in [(&tmp_outer, outer_ns, outer), (&tmp_inner, inner_ns, inner)] {
        sh(Command::new("ip").args(["link", "set", tmp, "netns", ns]));
        sh(Command::new("ip").args(["netns", "exec", ns, "ip", "link", "set", tmp, "name", name]));
        sh(Command::new("ip").args(["netns", "exec", ns, "ip", "link", "set", name, "up"]));
    }
    if let Some(cidr) = cidr {
        sh(Command::new("ip").args(["netns", "exec", inner_ns, "ip", "addr", "add", cidr, "dev", inner]));
    }
}
