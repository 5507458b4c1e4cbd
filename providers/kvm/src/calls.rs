//! Logging of the libvirt calls the provider makes: each call's libvirt
//! name and duration at `debug`, the XML it sends at `trace`. Secret
//! values are never logged: `virSecretSetValue` is logged by name only, and
//! no XML this provider writes holds a key (RBD disks name the secret by
//! UUID).

use std::time::Instant;
use virt::error::Error;

/// Runs one libvirt call and logs it.
pub(crate) fn call<T>(name: &'static str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    if !tracing::enabled!(target: "strata::libvirt", tracing::Level::DEBUG) {
        return f();
    }
    let started = Instant::now();
    let result = f();
    match &result {
        Ok(_) => tracing::debug!(target: "strata::libvirt", call = name, duration = ?started.elapsed(), "libvirt call"),
        Err(e) => tracing::debug!(target: "strata::libvirt", call = name, duration = ?started.elapsed(), error = %e.message(), "libvirt call failed"),
    }
    result
}

/// Runs one libvirt call that sends `xml`, and logs it with the XML.
pub(crate) fn with_xml<T>(name: &'static str, xml: &str, f: impl FnOnce(&str) -> Result<T, Error>) -> Result<T, Error> {
    tracing::trace!(target: "strata::libvirt", call = name, xml, "libvirt XML");
    call(name, || f(xml))
}
