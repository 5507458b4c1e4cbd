//! Undo records of `kvm_domain`.
//!
//! A record keeps the persistent XML from before the operation, whether the
//! guest ran (and which boot of it: the libvirt domain ID), whether a
//! restart was already pending, and autostart. So
//! - an **update** is undone exactly: if the guest still runs the boot it
//!   ran before, the old definition is stored again and what the update
//!   changed live (memory, vCPUs, hot-plugged devices, tags) is changed
//!   back live, with no restart; if the update restarted or stopped it, the
//!   guest is stopped gracefully, the old definition stored and the guest
//!   started again as it was;
//! - a **retired** domain (removed for its replacement) is undefined only:
//!   its disks are volumes and stay; undo defines it again from the XML and
//!   starts it if it ran. Nothing is kept outside the record, so discarding
//!   it removes nothing.

use crate::domain::{self, apply_live, shutdown, state};
use crate::undo;
use crate::{err, xml};
use strata_provider::{ProviderError, Result, UndoRecord, Value};
use uuid::Uuid;
use virt::connect::Connect;
use virt::sys;

/// Reads what undoing `op` on the domain takes. Changes nothing. `None`
/// when the domain does not exist (nothing to undo).
pub fn prepare(conn: &Connect, id: Uuid, op: &str, prior: &Value) -> Result<Option<UndoRecord>> {
    let Some(dom) = crate::found(conn.lookup_domain_by_uuid(id))? else { return Ok(None) };
    let persistent = dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE).map_err(err)?;
    let running = dom.is_active().map_err(err)?;
    let pending = running && crate::domain_restart::pending(&dom, &xml::parse(&persistent)?)?;
    Ok(Some(undo::record(op, [
        ("xml", Value::from(persistent)),
        ("running", Value::Bool(running)),
        ("boot", dom.id().filter(|_| running).map(|i| Value::from(i as i64)).unwrap_or(Value::Null)),
        ("pending_restart", Value::Bool(pending)),
        ("autostart", Value::Bool(dom.autostart().map_err(err)?)),
        ("prior", prior.clone()),
    ])))
}

/// Removes the domain for its replacement: stop it, undefine it. Its XML is
/// in the record; its volumes are not touched. Idempotent.
pub fn retire(conn: &Connect, id: Uuid) -> Result<()> {
    domain::delete(conn, id)
}

/// Restores the domain as the record describes it. Idempotent: each step
/// checks what is there first.
pub fn undo(conn: &Connect, id: Uuid, rec: &UndoRecord) -> Result<Value> {
    let old_xml = undo::text(rec, "xml")?;
    let prior = rec.0.get("prior");
    let was_running = undo::flag(rec, "running");
    let dom = match crate::found(conn.lookup_domain_by_uuid(id))? {
        Some(dom) => dom,
        None => crate::calls::with_xml("virDomainDefineXML", old_xml, |x| conn.define_domain_xml(x)).map_err(|e| {
            ProviderError::new(format!("defining the domain again from its undo record: {}", e.message()))
        })?,
    };
    let active = dom.is_active().map_err(err)?;
    let same_boot = active && was_running && rec.0.get("boot").as_i64().is_some_and(|b| dom.id() == Some(b as u32));
    let live_xml = if active { dom.xml_desc(0).map_err(err)? } else { String::new() };
    // A later boot that already runs the old definition (an earlier undo
    // restarted it) needs no restart either.
    let runs_old = same_boot || active && was_running && !crate::domain_restart::differs(&xml::parse(old_xml)?, &xml::parse(&live_xml)?);
    if runs_old {
        // The guest runs the old definition: store it again and change back
        // live what the update changed live.
        let live_now = live_state(&dom, &live_xml, prior)?;
        crate::calls::with_xml("virDomainDefineXML", old_xml, |x| conn.define_domain_xml(x)).map_err(err)?;
        apply_live(conn, &dom, &live_now, prior, &domain::persistent_macs(&dom)?)?;
    } else {
        if active {
            // Started or restarted by the operation: it runs a definition
            // that must not stay.
            shutdown(&dom, prior)?;
        }
        crate::calls::with_xml("virDomainDefineXML", old_xml, |x| conn.define_domain_xml(x)).map_err(err)?;
        if was_running {
            crate::calls::call("virDomainCreate", || dom.create()).map_err(err)?;
        }
    }
    dom.set_autostart(undo::flag(rec, "autostart")).map_err(err)?;
    state(&dom, prior)
}

/// What a running guest runs, in the terms of the domain's state: its live
/// XML read the way refresh reads the persistent one.
fn live_state(dom: &virt::domain::Domain, live_xml: &str, config: &Value) -> Result<Value> {
    let mut now = state(dom, config)?;
    // `state` reads the persistent definition; the live values that undo
    // changes back are memory, vCPUs, devices and tags, read from the live
    // definition here.
    let doc = xml::parse(live_xml)?;
    let live = domain::definition_values(&doc, config);
    if let Value::Map(m) = &mut now {
        for key in ["memory", "vcpus", "disks", "interfaces", "tags"] {
            if let Some(v) = live.get(key) {
                m.insert(key.to_owned(), v.clone());
            }
        }
    }
    Ok(now)
}

/// Nothing is kept outside the record.
pub fn discard(_rec: &UndoRecord) -> Result<()> {
    Ok(())
}
