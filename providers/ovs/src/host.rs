//! The `ovs_host` data source, and what the host can realize: OVS version,
//! datapath and interface types.
//!
//! `Open_vSwitch.datapath_types` lists what vswitchd was *built* with:
//! it says `system` even on a kernel without the openvswitch module. So for a
//! local database the kernel is asked directly whether the `ovs_datapath`
//! generic-netlink family exists; for a remote one the database's word is
//! all there is.

use crate::datum::{atoms, opt_str, Snapshot};
use serde_json::Value as Json;
use strata_provider::{Attribute, Block, Type, Value};

/// What the host behind the database supports.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub ovs_version: Option<String>,
    pub db_version: Option<String>,
    pub datapath_types: Vec<String>,
    pub iface_types: Vec<String>,
    /// Whether vswitchd has reported its capabilities yet.
    pub known: bool,
}

impl HostFacts {
    pub fn from_snapshot(snap: &Snapshot, local: bool) -> HostFacts {
        let strings = |col: &str| -> Vec<String> {
            atoms(snap.root.get(col)).iter().filter_map(Json::as_str).map(str::to_owned).collect()
        };
        let mut datapath_types = strings("datapath_types");
        if local && !kernel_has_ovs_datapath() {
            datapath_types.retain(|t| t != "system");
        }
        let known = !strings("iface_types").is_empty();
        HostFacts {
            ovs_version: opt_str(snap.root.get("ovs_version")),
            db_version: opt_str(snap.root.get("db_version")),
            datapath_types,
            iface_types: strings("iface_types"),
            known,
        }
    }

    pub fn supports_datapath(&self, t: &str) -> bool {
        !self.known || self.datapath_types.iter().any(|d| d == t)
    }

    /// `system` where the kernel datapath works, else `netdev`.
    pub fn default_datapath(&self) -> &'static str {
        if self.supports_datapath("system") {
            "system"
        } else {
            "netdev"
        }
    }
}

pub fn schema() -> Block {
    let strings = || Type::List(Box::new(Type::String));
    Block::new("Facts about the Open vSwitch host behind the database.")
        .attr("ovs_version", Attribute::computed(Type::String).describe("Open vSwitch version, as ovs-vswitchd's start-up recorded it."))
        .attr("db_version", Attribute::computed(Type::String).describe("The OVSDB schema version."))
        .attr(
            "datapath_types",
            Attribute::computed(strings()).describe("Datapath types that work here (`system` only where the kernel has the OVS datapath)."),
        )
        .attr("iface_types", Attribute::computed(strings()).describe("Interface types ovs-vswitchd supports."))
        .attr("vswitchd_running", Attribute::computed(Type::Bool).describe("Whether ovs-vswitchd serves the database."))
}

pub fn read(facts: &HostFacts, vswitchd_running: bool) -> Value {
    let list = |v: &[String]| Value::List(v.iter().map(|s| Value::from(s.as_str())).collect());
    Value::object([
        ("ovs_version", facts.ovs_version.clone().map(Value::from).unwrap_or(Value::Null)),
        ("db_version", facts.db_version.clone().map(Value::from).unwrap_or(Value::Null)),
        ("datapath_types", list(&facts.datapath_types)),
        ("iface_types", list(&facts.iface_types)),
        ("vswitchd_running", Value::Bool(vswitchd_running)),
    ])
}

/// Asks the kernel (generic netlink, CTRL_CMD_GETFAMILY) whether the
/// `ovs_datapath` family exists. Families are global, so the answer holds for
/// every network namespace.
pub fn kernel_has_ovs_datapath() -> bool {
    const NETLINK_GENERIC: i32 = 16;
    const GENL_ID_CTRL: u16 = 0x10;
    const CTRL_CMD_GETFAMILY: u8 = 3;
    const CTRL_ATTR_FAMILY_NAME: u16 = 2;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    let name = b"ovs_datapath\0";
    let attr_len = 4 + name.len();
    let padded = (attr_len + 3) & !3;
    let total = 16 + 4 + padded;
    let mut msg = vec![0u8; total];
    msg[0..4].copy_from_slice(&(total as u32).to_ne_bytes());
    msg[4..6].copy_from_slice(&GENL_ID_CTRL.to_ne_bytes());
    msg[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg[8..12].copy_from_slice(&1u32.to_ne_bytes());
    msg[16] = CTRL_CMD_GETFAMILY;
    msg[17] = 1;
    msg[20..22].copy_from_slice(&(attr_len as u16).to_ne_bytes());
    msg[22..24].copy_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
    msg[24..24 + name.len()].copy_from_slice(name);
    // SAFETY: plain socket calls on buffers this function owns, with their
    // true lengths; the descriptor is closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_GENERIC);
        if fd < 0 {
            return false;
        }
        let tv = libc::timeval { tv_sec: 2, tv_usec: 0 };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        let sent = libc::sendto(
            fd,
            msg.as_ptr() as *const libc::c_void,
            msg.len(),
            0,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        );
        let mut reply = [0u8; 4096];
        let got = if sent < 0 { -1 } else { libc::recv(fd, reply.as_mut_ptr() as *mut libc::c_void, reply.len(), 0) };
        libc::close(fd);
        if got < 20 {
            return false;
        }
        let kind = u16::from_ne_bytes([reply[4], reply[5]]);
        if kind == NLMSG_ERROR {
            let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
            return code == 0;
        }
        kind == GENL_ID_CTRL
    }
}
