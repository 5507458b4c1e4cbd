//! The provider reference pages are generated from the schemas, so they say
//! exactly what the code does. Regenerate with
//! `UPDATE_EXPECT=1 cargo test --test provider_docs`.

use std::fmt::Write as _;
use std::path::Path;
use strata_provider::{Attribute, Block, Presence, ProviderFactory};

fn presence(a: &Attribute) -> &'static str {
    match a.presence {
        Presence::Required => "required",
        Presence::Optional => "optional",
        Presence::Computed if a.stable => "computed, stable (known at plan time across in-place updates)",
        Presence::Computed => "computed",
        Presence::OptionalComputed => "optional, computed",
    }
}

fn block(out: &mut String, name: &str, kind: &str, b: &Block) {
    let _ = writeln!(out, "## {kind} `{name}`\n\n{}\n", b.description);
    let _ = writeln!(out, "| attribute | type | presence | a change is applied | notes |\n|---|---|---|---|---|");
    for (attr, a) in &b.attributes {
        let change = if a.presence == Presence::Computed { "—".to_owned() } else { format!("`{}`", a.on_change) };
        let sensitive = if a.sensitive { " (sensitive)" } else { "" };
        let _ = writeln!(out, "| `{attr}` | `{}` | {}{sensitive} | {change} | {} |", a.ty, presence(a), a.description.replace('|', "\\|"));
    }
    for (nested, n) in &b.blocks {
        let _ = writeln!(out, "| `{nested}` block | nested ({:?}) | optional | `{}` | {} |", n.nesting, n.on_change, n.block.description);
    }
    out.push('\n');
}

fn reference(f: &dyn ProviderFactory) -> String {
    let schema = f.schema();
    let mut out = format!(
        "# Provider `{}`: reference\n\nGenerated from the provider's schema by `tests/provider_docs.rs`; do not edit by hand.\n\n\
         How a change is applied: `live` (in place, no disruption), `restart` (in place, the guest restarts), \
         `replace` (destroyed and created again), `data-loss` (destroys data; needs `--allow-data-loss`). \
         Some attributes are refined per change by the provider (for example growing a volume is `live`, shrinking it `data-loss`).\n\n",
        f.name()
    );
    block(&mut out, f.name(), "Provider configuration", &schema.provider);
    for (name, b) in &schema.resources {
        block(&mut out, name, "Resource", b);
    }
    for (name, b) in &schema.data_sources {
        block(&mut out, name, "Data source", b);
    }
    out
}

fn check(f: &dyn ProviderFactory, path: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let actual = reference(f);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(expected == actual, "{} is out of date with the schema; regenerate with UPDATE_EXPECT=1", path.display());
}

#[test]
fn kvm_reference_is_current() {
    check(&strata_provider_kvm::KvmFactory, "providers/kvm/REFERENCE.md");
}

#[test]
fn ceph_reference_is_current() {
    check(&strata_provider_ceph::CephFactory, "providers/ceph/REFERENCE.md");
}

#[test]
fn builtin_reference_is_current() {
    check(&strata_provider_builtin::StrataFactory, "providers/builtin/REFERENCE.md");
}

#[test]
fn ovs_reference_is_current() {
    check(&strata_provider_ovs::OvsFactory, "providers/ovs/REFERENCE.md");
}
