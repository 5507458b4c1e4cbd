//! OpenFlow access for the flow resources: `ovs-ofctl` against a bridge's
//! management socket (`unix:RUNDIR/BRIDGE.mgmt`), with cookie-scoped dumps,
//! atomic replacements and deletes.
//!
//! Why `ovs-ofctl` and not a native OpenFlow client: the `match` and
//! `actions` a user writes are ovs-ofctl's flow syntax (every Nicira
//! extension, `ct(...)`, `learn(...)`, port names), and the only complete
//! parser of that syntax is the one in Open vSwitch itself. The one native
//! candidate (`rovs-openflow` 0.2) builds flows from typed structures, has no
//! text parser and no OpenFlow bundle support, and is a months-old
//! single-maintainer crate. `ovs-ofctl --bundle add-flows` gives us an atomic
//! OpenFlow 1.4 bundle: a set is replaced completely or not at all.
//!
//! Ownership: every flow Strata installs carries a cookie whose upper 48 bits
//! derive from the instance UUID ([`Cookie`]) and whose low 16 bits number the
//! flow within its set. Every dump and delete is masked to the upper 48 bits,
//! so flows of other owners are never read as ours nor removed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use strata_provider::{ProviderError, Result};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// The program used for every OpenFlow exchange.
const OFCTL: &str = "ovs-ofctl";

/// How many flows one set may hold: the low cookie bits number them.
pub const MAX_FLOWS: usize = 0xffff;

/// The cookie that marks one instance's flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    /// Upper 48 bits; the low 16 are zero.
    base: u64,
}

impl Cookie {
    /// Mask selecting the owner part of a cookie.
    pub const OWNER_MASK: u64 = 0xffff_ffff_ffff_0000;

    /// The cookie of the instance `id`: its 128 bits folded to 48 (XOR), never
    /// zero, because cookie 0 is what flows added without one carry.
    pub fn of(id: Uuid) -> Cookie {
        let v = id.as_u128();
        let folded = (v as u64) ^ ((v >> 64) as u64);
        let owner = (folded ^ (folded >> 48)) & 0xffff_ffff_ffff;
        let owner = if owner == 0 { 1 } else { owner };
        Cookie { base: owner << 16 }
    }

    /// The cookie of flow `index` of the set.
    pub fn flow(self, index: usize) -> u64 {
        self.base | (index as u64 & 0xffff)
    }

    /// `cookie=0x…/0x…`, the match that selects exactly this owner's flows.
    pub fn selector(self) -> String {
        format!("cookie={:#x}/{:#x}", self.base, Cookie::OWNER_MASK)
    }

    /// The owner cookie as shown to users (`0x…`).
    pub fn hex(self) -> String {
        format!("{:#x}", self.base)
    }

    /// The flow number of a dumped cookie, if the cookie is this owner's.
    pub fn index_of(self, cookie: u64) -> Option<usize> {
        (cookie & Cookie::OWNER_MASK == self.base).then_some((cookie & 0xffff) as usize)
    }
}

/// One flow to install: table, priority, match and actions in ovs-ofctl
/// syntax (the cookie is added on installation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSpec {
    pub table: u8,
    pub priority: u16,
    /// Comma-separated match fields; empty matches everything.
    pub matches: String,
    pub actions: String,
}

impl FlowSpec {
    /// The flow in ovs-ofctl syntax, without a cookie.
    pub fn text(&self) -> String {
        let mut s = format!("table={},priority={}", self.table, self.priority);
        if !self.matches.trim().is_empty() {
            s.push(',');
            s.push_str(self.matches.trim());
        }
        s.push_str(",actions=");
        s.push_str(self.actions.trim());
        s
    }
}

/// A flow as `ovs-ofctl dump-flows --no-stats` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedFlow {
    pub cookie: u64,
    pub spec: FlowSpec,
    /// The line without the cookie: vswitchd's canonical form of the flow,
    /// compared with what was installed to find altered flows.
    pub canonical: String,
}

impl DumpedFlow {
    /// The flow as a line `add-flows` accepts, cookie included (undo records).
    pub fn with_cookie(&self) -> String {
        format!("cookie={:#x},{}", self.cookie, self.spec.text())
    }
}

/// Parses one line of `dump-flows --no-stats`, e.g.
/// ` cookie=0x1, table=3, priority=5,tcp,tp_dst=80 actions=drop`.
pub fn parse_dump_line(line: &str) -> Option<DumpedFlow> {
    let line = line.trim();
    let (head, actions) = line.split_once(" actions=")?;
    let mut cookie = 0;
    let mut table = 0;
    let mut priority = 32768; // OFP_DEFAULT_PRIORITY, which dumps leave out
    let mut matches = Vec::new();
    let mut canonical = Vec::new();
    for field in head.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "cookie" => {
                cookie = u64::from_str_radix(value.trim_start_matches("0x"), 16).ok()?;
                continue;
            }
            "duration" | "n_packets" | "n_bytes" | "idle_age" | "hard_age" => continue,
            "table" => table = value.parse().ok()?,
            "priority" => priority = value.parse().ok()?,
            _ => matches.push(field),
        }
        canonical.push(field);
    }
    let mut canonical = canonical.join(",");
    canonical.push_str(" actions=");
    canonical.push_str(actions.trim());
    Some(DumpedFlow {
        cookie,
        spec: FlowSpec { table, priority, matches: matches.join(","), actions: actions.trim().to_owned() },
        canonical,
    })
}

/// Where the bridges' management sockets live, and how long one call may take.
#[derive(Debug, Clone)]
pub struct OpenFlow {
    rundir: PathBuf,
    timeout: Duration,
}

impl OpenFlow {
    pub fn new(rundir: impl Into<PathBuf>, timeout: Duration) -> OpenFlow {
        OpenFlow { rundir: rundir.into(), timeout }
    }

    /// The run directory for a provider whose database is `db`: the socket's
    /// directory for `unix:PATH`. Management sockets are local files, so a
    /// `tcp:` database needs the run directory given explicitly.
    pub fn rundir_for_db(db: &str) -> Option<PathBuf> {
        let path = db.strip_prefix("unix:")?;
        Path::new(path).parent().map(Path::to_path_buf)
    }

    fn target(&self, bridge: &str) -> String {
        format!("unix:{}", self.rundir.join(format!("{bridge}.mgmt")).display())
    }

    /// Runs ovs-ofctl with `args` (and `input` on stdin); its stdout, or its
    /// own message as the error.
    async fn run(&self, args: &[&str], input: Option<String>) -> Result<String> {
        let mut cmd = tokio::process::Command::new(OFCTL);
        cmd.args(args)
            .env("OVS_RUNDIR", &self.rundir)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // ovs-ofctl must not outlive Strata: after a kill -9, crash recovery
        // looks for the flows by cookie, and an orphaned ovs-ofctl that
        // commits its bundle afterwards would leave flows no state knows.
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| ProviderError::new(format!("cannot run {OFCTL}: {e}")))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            // A write error means ovs-ofctl exited early; its stderr says why.
            let _ = stdin.write_all(text.as_bytes()).await;
        }
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| ProviderError::new(format!("{OFCTL} {} did not answer within {:?}", args.first().unwrap_or(&""), self.timeout)))?
            .map_err(|e| ProviderError::new(format!("{OFCTL}: {e}")))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Log lines ("2026-…|ofp_table|WARN|…") repeat what the message says.
        let message: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty() && !is_log_line(l)).collect();
        let message = if message.is_empty() { stderr.trim().to_owned() } else { message.join("; ") };
        Err(ProviderError::new(message))
    }

    /// Whether `bridge` has a management socket, i.e. vswitchd runs it.
    pub fn bridge_reachable(&self, bridge: &str) -> bool {
        self.rundir.join(format!("{bridge}.mgmt")).exists()
    }

    /// Every flow of `cookie`'s owner on `bridge`, ordered by flow number.
    /// `None` when vswitchd does not run the bridge (no management socket).
    pub async fn dump(&self, bridge: &str, cookie: Cookie) -> Result<Option<Vec<DumpedFlow>>> {
        if !self.bridge_reachable(bridge) {
            return Ok(None);
        }
        let out = self.run(&["dump-flows", "--no-stats", &self.target(bridge), &cookie.selector()], None).await?;
        let mut flows: Vec<DumpedFlow> = out.lines().filter_map(parse_dump_line).filter(|f| cookie.index_of(f.cookie).is_some()).collect();
        flows.sort_by_key(|f| f.cookie);
        Ok(Some(flows))
    }

    /// Every flow of one table, whoever owns it.
    pub async fn dump_table(&self, bridge: &str, table: u8) -> Result<Vec<DumpedFlow>> {
        self.require_bridge(bridge)?;
        let out = self.run(&["dump-flows", "--no-stats", &self.target(bridge), &format!("table={table}")], None).await?;
        Ok(out.lines().filter_map(parse_dump_line).collect())
    }

    /// Replaces all of the owner's flows on `bridge` by `flows` in one atomic
    /// OpenFlow bundle: afterwards the switch holds exactly these, or (on any
    /// error) exactly what it held before.
    pub async fn replace(&self, bridge: &str, cookie: Cookie, flows: &[FlowSpec]) -> Result<()> {
        let lines: Vec<String> = flows.iter().enumerate().map(|(i, f)| format!("cookie={:#x},{}", cookie.flow(i), f.text())).collect();
        self.replace_lines(bridge, cookie, &lines).await.map_err(|e| ProviderError::new(name_flow_in_error(&e.message, cookie, flows)))
    }

    /// [`OpenFlow::replace`] with complete flow lines (cookies included).
    pub async fn replace_lines(&self, bridge: &str, cookie: Cookie, lines: &[String]) -> Result<()> {
        if flows_exceed(lines.len()) {
            return Err(ProviderError::new(format!("{} flows are more than one set may hold ({MAX_FLOWS})", lines.len())));
        }
        self.require_bridge(bridge)?;
        let mut bundle = format!("delete {}\n", cookie.selector());
        for line in lines {
            bundle.push_str("add ");
            bundle.push_str(line);
            bundle.push('\n');
        }
        self.run(&["--bundle", "add-flows", &self.target(bridge), "-"], Some(bundle)).await.map(drop)
    }

    /// Deletes all of the owner's flows on `bridge`; a bridge vswitchd does
    /// not run has none.
    pub async fn delete(&self, bridge: &str, cookie: Cookie) -> Result<()> {
        if !self.bridge_reachable(bridge) {
            return Ok(());
        }
        self.run(&["del-flows", &self.target(bridge), &cookie.selector()], None).await.map(drop)
    }

    /// Checks the syntax of `flows` without a switch (`ovs-ofctl parse-flows`).
    /// Port names can only be resolved by the switch, so errors about them
    /// are left to the installation. Returns the message for the first bad
    /// flow, naming it.
    pub async fn check_syntax(&self, flows: &[FlowSpec]) -> Result<Option<String>> {
        if flows.is_empty() {
            return Ok(None);
        }
        let text: String = flows.iter().map(|f| format!("{}\n", f.text())).collect();
        match self.run(&["parse-flows", "-"], Some(text)).await {
            Ok(_) => Ok(None),
            Err(e) if e.message.contains("invalid or unknown port") => Ok(None),
            Err(e) if e.message.starts_with("cannot run") => Err(e),
            Err(e) => Ok(Some(name_flow_in_error_at(&e.message, flows, 1))),
        }
    }

    fn require_bridge(&self, bridge: &str) -> Result<()> {
        if self.bridge_reachable(bridge) {
            Ok(())
        } else {
            Err(ProviderError::new(format!(
                "bridge {bridge:?} has no OpenFlow management socket in {}: the bridge does not exist or ovs-vswitchd is not running",
                self.rundir.display()
            )))
        }
    }
}

/// How one installed flow of a set looks in the switch now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowState {
    /// As installed.
    Intact,
    /// Present under its cookie but different (modified out of band).
    Altered(DumpedFlow),
    /// Gone (deleted out of band, or vswitchd restarted).
    Missing,
}

/// A set's flows in the switch compared with what Strata installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// One entry per installed flow, in order.
    pub flows: Vec<FlowState>,
    /// Flows under the owner's cookie that Strata did not install.
    pub extra: Vec<DumpedFlow>,
}

impl Reconciled {
    pub fn is_intact(&self) -> bool {
        self.extra.is_empty() && self.flows.iter().all(|f| *f == FlowState::Intact)
    }
}

/// Compares a dump with the canonical lines recorded at installation.
pub fn reconcile(cookie: Cookie, installed: &[String], dumped: Vec<DumpedFlow>) -> Reconciled {
    let mut by_index: std::collections::BTreeMap<usize, DumpedFlow> =
        dumped.into_iter().filter_map(|d| Some((cookie.index_of(d.cookie)?, d))).collect();
    let flows = installed
        .iter()
        .enumerate()
        .map(|(i, canonical)| match by_index.remove(&i) {
            Some(d) if d.canonical == *canonical => FlowState::Intact,
            Some(d) => FlowState::Altered(d),
            None => FlowState::Missing,
        })
        .collect();
    Reconciled { flows, extra: by_index.into_values().collect() }
}

impl OpenFlow {
    /// Installs `flows` as the owner's complete set on `bridge` (atomically,
    /// see [`OpenFlow::replace`]) and returns vswitchd's canonical form of
    /// each, in order, for later drift checks. Should vswitchd hold fewer
    /// flows than given (two that OpenFlow considers the same flow), the
    /// previous set is put back and that is the error.
    pub async fn install(&self, bridge: &str, cookie: Cookie, flows: &[FlowSpec]) -> Result<Vec<String>> {
        let before = self.dump(bridge, cookie).await?.unwrap_or_default();
        self.replace(bridge, cookie, flows).await?;
        let after = self.dump(bridge, cookie).await?.unwrap_or_default();
        let mut canonical = vec![None; flows.len()];
        for d in after {
            if let Some(slot) = cookie.index_of(d.cookie).and_then(|i| canonical.get_mut(i)) {
                *slot = Some(d.canonical);
            }
        }
        if let Some(lost) = canonical.iter().position(Option::is_none) {
            let restore: Vec<String> = before.iter().map(DumpedFlow::with_cookie).collect();
            self.replace_lines(bridge, cookie, &restore).await?;
            return Err(ProviderError::new(format!(
                "flow {} ({}) was replaced by a later flow with the same table, priority and match; the previous flows are back",
                lost + 1,
                flows[lost].text()
            )));
        }
        Ok(canonical.into_iter().flatten().collect())
    }
}

fn flows_exceed(n: usize) -> bool {
    n > MAX_FLOWS
}

fn is_log_line(line: &str) -> bool {
    line.split('|').count() >= 4 && line.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// ovs-ofctl names a flow it cannot parse by its line of the bundle file
/// (`-:N:`, line 1 is the delete), and a flow the switch rejected by its
/// cookie (`… ADD … cookie:0x… …`); this says which flow of the set it was.
fn name_flow_in_error(message: &str, cookie: Cookie, flows: &[FlowSpec]) -> String {
    let rejected = message.split("cookie:").nth(1).and_then(|rest| {
        let hex: String = rest.trim_start_matches("0x").chars().take_while(char::is_ascii_hexdigit).collect();
        let index = cookie.index_of(u64::from_str_radix(&hex, 16).ok()?)?;
        let flow = flows.get(index)?;
        let reason = message.split_once(" for: ").map_or(message, |(reason, _)| reason).trim_start_matches("Error ");
        Some(format!("flow {} ({}): vswitchd rejected it: {reason}", index + 1, flow.text()))
    });
    rejected.unwrap_or_else(|| name_flow_in_error_at(message, flows, 2))
}

fn name_flow_in_error_at(message: &str, flows: &[FlowSpec], first_line: usize) -> String {
    let located = message.strip_prefix("ovs-ofctl: -:").and_then(|rest| {
        let (line, detail) = rest.split_once(':')?;
        let line: usize = line.trim().parse().ok()?;
        let index = line.checked_sub(first_line)?;
        let flow = flows.get(index)?;
        Some(format!("flow {} ({}): {}", index + 1, flow.text(), detail.trim()))
    });
    located.unwrap_or_else(|| message.strip_prefix("ovs-ofctl: ").unwrap_or(message).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_keep_owners_apart() {
        let a = Cookie::of(Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677));
        let b = Cookie::of(Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6678));
        assert_ne!(a, b);
        assert_eq!(a.index_of(a.flow(7)), Some(7));
        assert_eq!(b.index_of(a.flow(7)), None);
        assert_eq!(a.flow(0) & 0xffff, 0);
        assert_ne!(a.flow(0), 0);
        assert!(a.selector().ends_with("/0xffffffffffff0000"));
    }

    #[test]
    fn the_zero_uuid_still_has_a_cookie() {
        assert_ne!(Cookie::of(Uuid::nil()).flow(0), 0);
    }

    #[test]
    fn dump_lines_parse_to_their_parts() {
        let f = parse_dump_line(" cookie=0x123450002, table=3, priority=5,tcp,tp_dst=0x50/0xfff0 actions=ct(commit,zone=5),NORMAL").unwrap();
        assert_eq!(f.cookie, 0x1_2345_0002);
        assert_eq!(f.spec, FlowSpec { table: 3, priority: 5, matches: "tcp,tp_dst=0x50/0xfff0".into(), actions: "ct(commit,zone=5),NORMAL".into() });
        assert_eq!(f.canonical, "table=3,priority=5,tcp,tp_dst=0x50/0xfff0 actions=ct(commit,zone=5),NORMAL");
        let d = parse_dump_line(" priority=0 actions=NORMAL").unwrap();
        assert_eq!((d.cookie, d.spec.table, d.spec.priority, d.spec.matches.as_str()), (0, 0, 0, ""));
        let default_priority = parse_dump_line(" cookie=0x1, ip actions=drop").unwrap();
        assert_eq!(default_priority.spec.priority, 32768);
        assert!(parse_dump_line("NXST_FLOW reply (xid=0x4):").is_none());
    }

    #[test]
    fn bundle_errors_name_the_flow() {
        let flows = vec![
            FlowSpec { table: 0, priority: 7, matches: "ip".into(), actions: "drop".into() },
            FlowSpec { table: 0, priority: 7, matches: "udp".into(), actions: "frobnicate".into() },
        ];
        let cookie = Cookie { base: 0x1_2345_0000 };
        assert_eq!(
            name_flow_in_error("ovs-ofctl: -:3: unknown action frobnicate", cookie, &flows),
            "flow 2 (table=0,priority=7,udp,actions=frobnicate): unknown action frobnicate"
        );
        assert_eq!(
            name_flow_in_error(
                "Error OFPBAC_BAD_OUT_GROUP for: OFPT_FLOW_MOD (OF1.4) (xid=0x8): ADD priority=7,udp cookie:0x123450001 actions=group:5; ovs-ofctl: talking to x (Protocol error)",
                cookie,
                &flows
            ),
            "flow 2 (table=0,priority=7,udp,actions=frobnicate): vswitchd rejected it: OFPBAC_BAD_OUT_GROUP"
        );
        assert_eq!(name_flow_in_error("ovs-ofctl: talking to x (Protocol error)", cookie, &flows), "talking to x (Protocol error)");
    }

    #[test]
    fn the_run_directory_follows_a_unix_database() {
        assert_eq!(OpenFlow::rundir_for_db("unix:/var/run/openvswitch/db.sock"), Some(PathBuf::from("/var/run/openvswitch")));
        assert_eq!(OpenFlow::rundir_for_db("tcp:198.18.0.1:6640"), None);
    }
}
