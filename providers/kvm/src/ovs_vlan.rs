//! The VLANs of a running guest's Open vSwitch NICs as Open vSwitch has them.
//!
//! libvirt plugs an `<interface type='bridge'>` with `<virtualport
//! type='openvswitch'/>` into the bridge by running `ovs-vsctl` itself, and
//! its XML keeps only the VLANs it set then. Someone who re-tags the port
//! afterwards (`ovs-vsctl set port vnet3 tag=99`) changes what the guest's
//! traffic really does without libvirt knowing, so for a running guest the
//! port's row in OVSDB is the truth: refresh reads `tag`, `trunks` and
//! `vlan_mode` of every such port there, and a live re-tag writes them there
//! too (libvirt skips the write when its own XML already says the new VLAN).
//!
//! The database is the one libvirt's `ovs-vsctl` uses by default:
//! `$OVS_RUNDIR/db.sock`, else `/var/run/openvswitch/db.sock`. OVSDB (RFC
//! 7047) is spoken directly, one `transact` per guest, over a short-lived
//! blocking connection (these calls already run off the runtime).

use serde_json::{json, Value as Json};
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use strata_provider::{ProviderError, Result, Value};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The socket of the Open vSwitch database libvirt's `ovs-vsctl` talks to.
fn socket() -> String {
    let dir = std::env::var("OVS_RUNDIR").unwrap_or_else(|_| "/var/run/openvswitch".into());
    format!("{dir}/db.sock")
}

/// A port's VLANs as the schema spells them: `vlan` (the access tag, or a
/// trunk's native VLAN) and `trunks`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Vlans {
    pub vlan: Option<i64>,
    pub trunks: Vec<i64>,
}

impl Vlans {
    pub fn of_nic(n: &Value) -> Vlans {
        Vlans { vlan: n.get("vlan").as_i64(), trunks: n.get("trunks").as_list().unwrap_or_default().iter().filter_map(Value::as_i64).collect() }
    }

    /// The port's `tag` and `trunks` as libvirt writes them: a trunk's
    /// native VLAN is in `trunks` too.
    fn as_port(&self) -> PortVlans {
        let mut trunks: BTreeSet<i64> = self.trunks.iter().copied().collect();
        if let (Some(native), false) = (self.vlan, trunks.is_empty()) {
            trunks.insert(native);
        }
        (self.vlan, trunks)
    }

    /// What a port's `tag` and `trunks` say, in the schema's spelling.
    fn of_port(tag: Option<i64>, trunks: BTreeSet<i64>) -> Vlans {
        Vlans { vlan: tag, trunks: trunks.into_iter().filter(|t| Some(*t) != tag).collect() }
    }
}

/// One OVSDB request and its reply's `result`.
fn transact(ops: Vec<Json>) -> Result<Json> {
    let path = socket();
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        ProviderError::new(format!("reading the guest's Open vSwitch ports: {what} {path}: {e} (libvirt plugged the NIC into Open vSwitch through this database)"))
    };
    let mut stream = UnixStream::connect(&path).map_err(|e| fail("cannot connect to", &e))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| fail("cannot set a timeout on", &e))?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| fail("cannot set a timeout on", &e))?;
    let params: Vec<Json> = std::iter::once(json!("Open_vSwitch")).chain(ops).collect();
    let request = json!({"id": 1, "method": "transact", "params": params});
    stream.write_all(request.to_string().as_bytes()).map_err(|e| fail("cannot write to", &e))?;
    // The server sends JSON texts back to back; the reply is the one with
    // our id (anything else, such as an `echo`, is not for us).
    for message in serde_json::Deserializer::from_reader(&stream).into_iter::<Json>() {
        let message = message.map_err(|e| fail("no reply from", &e))?;
        if message["id"] != json!(1) {
            continue;
        }
        if !message["error"].is_null() {
            return Err(fail("an error from", &message["error"]));
        }
        let result = message["result"].clone();
        if let Some(e) = result.as_array().into_iter().flatten().find(|r| !r["error"].is_null()) {
            return Err(fail("an error from", &format!("{} {}", e["error"], e["details"])));
        }
        return Ok(result);
    }
    Err(fail("the connection closed before a reply from", &"EOF"))
}

/// The integers of an OVSDB set datum (a bare atom is a set of one).
fn integers(datum: &Json) -> Vec<i64> {
    match datum {
        Json::Array(a) if a.first() == Some(&json!("set")) => a.get(1).and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_i64).collect(),
        other => other.as_i64().into_iter().collect(),
    }
}

/// A port row's `tag` and `trunks`.
type PortVlans = (Option<i64>, BTreeSet<i64>);

/// The `tag` and `trunks` of each port named in `ports`, in order; `None`
/// where OVSDB has no such port.
fn read(ports: &[String]) -> Result<Vec<Option<PortVlans>>> {
    if ports.is_empty() {
        return Ok(Vec::new());
    }
    let ops = ports
        .iter()
        .map(|p| json!({"op": "select", "table": "Port", "where": [["name", "==", p]], "columns": ["tag", "trunks"]}))
        .collect();
    let result = transact(ops)?;
    Ok((0..ports.len())
        .map(|i| {
            let row = &result[i]["rows"][0];
            if row.is_null() {
                return None;
            }
            Some((integers(&row["tag"]).first().copied(), integers(&row["trunks"]).into_iter().collect()))
        })
        .collect())
}

/// Sets the port's VLANs as libvirt would (an access tag; a trunk, whose
/// native VLAN is untagged), then waits until ovs-vswitchd applied them.
pub(crate) fn write(port: &str, want: &Vlans) -> Result<()> {
    let set = |v: Vec<Json>| json!(["set", v]);
    let (tag, trunks) = want.as_port();
    let tag = set(tag.into_iter().map(Json::from).collect());
    let trunks = set(trunks.into_iter().map(Json::from).collect());
    let mode = if want.vlan.is_some() && !want.trunks.is_empty() { json!("native-untagged") } else { set(Vec::new()) };
    let root = transact(vec![json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["_uuid"]})])?;
    let root = root[0]["rows"][0]["_uuid"].clone();
    let result = transact(vec![
        json!({"op": "update", "table": "Port", "where": [["name", "==", port]], "row": {"tag": tag, "trunks": trunks, "vlan_mode": mode}}),
        json!({"op": "mutate", "table": "Open_vSwitch", "where": [["_uuid", "==", root]], "mutations": [["next_cfg", "+=", 1]]}),
        json!({"op": "select", "table": "Open_vSwitch", "where": [["_uuid", "==", root]], "columns": ["next_cfg"]}),
        json!({"op": "comment", "comment": format!("strata: re-tag the guest NIC port {port}")}),
    ])?;
    if result[0]["count"].as_i64() != Some(1) {
        return Err(ProviderError::new(format!("Open vSwitch has no port {port} for the guest's NIC: is the guest plugged in?")));
    }
    let next_cfg = result[2]["rows"][0]["next_cfg"].as_i64().unwrap_or(0);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let r = transact(vec![json!({"op": "select", "table": "Open_vSwitch", "where": [["_uuid", "==", root]], "columns": ["cur_cfg"]})])?;
        if r[0]["rows"][0]["cur_cfg"].as_i64().unwrap_or(0) >= next_cfg {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ProviderError::new(format!("the port {port} was re-tagged in OVSDB but ovs-vswitchd did not apply it within {TIMEOUT:?}: is it running?")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The port name (`<target dev>`) of each `<interface>` of a running guest's
/// live XML that is plugged into Open vSwitch, by NIC position.
pub(crate) fn ports_of(live: &roxmltree::Document) -> Vec<Option<String>> {
    live.descendants()
        .filter(|n| n.has_tag_name("interface"))
        .map(|n| {
            let ovs = n.children().any(|c| c.has_tag_name("virtualport") && c.attribute("type") == Some("openvswitch"));
            let dev = n.children().find(|c| c.has_tag_name("target")).and_then(|t| t.attribute("dev"));
            dev.filter(|_| ovs).map(str::to_owned)
        })
        .collect()
}

/// `interfaces` (as the definition reads) with the VLANs Open vSwitch has
/// for the ports of `live`'s NICs.
pub(crate) fn overlay(interfaces: &mut [Value], live: &roxmltree::Document) -> Result<()> {
    let ports = ports_of(live);
    let plugged: Vec<(usize, String)> = ports.into_iter().enumerate().filter_map(|(i, p)| Some((i, p?))).filter(|(i, _)| *i < interfaces.len()).collect();
    if plugged.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = plugged.iter().map(|(_, p)| p.clone()).collect();
    for ((i, _), port) in plugged.iter().zip(read(&names)?) {
        // A port OVSDB does not have is not plugged in: nothing to say.
        let Some((tag, trunks)) = port else { continue };
        // As libvirt set it: the definition's spelling stands.
        if Vlans::of_nic(&interfaces[*i]).as_port() == (tag, trunks.clone()) {
            continue;
        }
        let vlans = Vlans::of_port(tag, trunks);
        if let Value::Map(m) = &mut interfaces[*i] {
            m.insert("vlan".into(), vlans.vlan.map(Value::from).unwrap_or(Value::Null));
            m.insert("trunks".into(), if vlans.trunks.is_empty() { Value::Null } else { Value::List(vlans.trunks.into_iter().map(Value::from).collect()) });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_datums_read_as_integers() {
        assert_eq!(integers(&json!(10)), vec![10]);
        assert_eq!(integers(&json!(["set", []])), Vec::<i64>::new());
        assert_eq!(integers(&json!(["set", [10, 20]])), vec![10, 20]);
    }

    #[test]
    fn a_trunks_native_vlan_is_in_the_ports_trunks() {
        let trunk = Vlans { vlan: Some(10), trunks: vec![20, 30] };
        let (tag, trunks) = trunk.as_port();
        assert_eq!((tag, trunks.iter().copied().collect::<Vec<_>>()), (Some(10), vec![10, 20, 30]));
        assert_eq!(Vlans::of_port(tag, trunks), trunk);
        let access = Vlans { vlan: Some(99), trunks: vec![] };
        assert_eq!(Vlans::of_port(Some(99), BTreeSet::new()), access);
    }

    #[test]
    fn only_open_vswitch_nics_name_a_port() {
        let xml = "<domain><devices>\
            <interface type='network'><target dev='vnet0'/></interface>\
            <interface type='bridge'><virtualport type='openvswitch'/><target dev='vnet1'/></interface>\
            </devices></domain>";
        let doc = roxmltree::Document::parse(xml).unwrap();
        assert_eq!(ports_of(&doc), vec![None, Some("vnet1".to_owned())]);
    }
}
