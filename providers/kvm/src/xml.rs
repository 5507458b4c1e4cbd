//! Small helpers for writing and reading libvirt XML.

use strata_provider::{ProviderError, Result};

/// Escapes text for an XML attribute or element.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

pub fn parse(xml: &str) -> Result<roxmltree::Document<'_>> {
    roxmltree::Document::parse(xml).map_err(|e| ProviderError::new(format!("libvirt returned XML we cannot read: {e}")))
}

/// The text of the first descendant element named `tag`.
pub fn text<'a>(doc: &'a roxmltree::Document, tag: &str) -> Option<&'a str> {
    doc.descendants().find(|n| n.has_tag_name(tag)).and_then(|n| n.text())
}

/// The attribute `attr` of the first descendant element named `tag`.
pub fn attr<'a>(doc: &'a roxmltree::Document, tag: &str, attr: &str) -> Option<&'a str> {
    doc.descendants().find(|n| n.has_tag_name(tag)).and_then(|n| n.attribute(attr))
}
