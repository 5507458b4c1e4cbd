//! The `configuration` of Terraform's plan representation: providers,
//! resources with their addresses, `provider_config_key` and expressions,
//! outputs, variables and module calls (each with its module), as written.
//!
//! An expression is `{"constant_value": V}` when it refers to nothing and
//! evaluates on its own, otherwise `{"references": [...]}`: the traversals
//! it contains as written, each followed by the resource or module it
//! names, as Terraform lists them.

use super::values::known;
use crate::config::eval::{eval, NoNames, Scope};
use crate::config::refs::{references, RefTarget};
use crate::config::{BodyExprs, Config, Expr, Sources};
use crate::addr::Mode;
use serde_json::{json, Map, Value as Json};

/// The configuration representation of a whole module tree.
pub fn configuration(root: &Config) -> Json {
    let sources = &root.sources;
    let mut providers = Map::new();
    for p in &root.providers {
        let mut entry = Map::new();
        entry.insert("name".into(), json!(p.name));
        entry.insert("full_name".into(), json!(super::provider_source(&p.name)));
        if let Some(alias) = &p.alias {
            entry.insert("alias".into(), json!(alias));
        }
        let expressions = body(sources, &p.body);
        if !expressions.is_empty() {
            entry.insert("expressions".into(), Json::Object(expressions));
        }
        providers.insert(p.config_addr(), Json::Object(entry));
    }
    // Providers used without a `provider` block are implied, as in Terraform.
    for (_, module) in root.modules() {
        for r in module.resources.values() {
            providers
                .entry(r.provider_config_addr())
                .or_insert_with(|| json!({"name": r.provider_name(), "full_name": super::provider_source(r.provider_name())}));
        }
    }
    json!({"provider_config": providers, "root_module": module(sources, root)})
}

fn module(sources: &Sources, config: &Config) -> Json {
    let mut out = Map::new();
    let outputs: Map<String, Json> = config
        .outputs
        .values()
        .map(|o| {
            let mut entry = Map::new();
            entry.insert("expression".into(), expression(sources, &o.value));
            if o.sensitive {
                entry.insert("sensitive".into(), json!(true));
            }
            if let Some(d) = &o.description {
                entry.insert("description".into(), json!(d));
            }
            if !o.depends_on.is_empty() {
                entry.insert("depends_on".into(), texts(sources, &o.depends_on));
            }
            (o.name.clone(), Json::Object(entry))
        })
        .collect();
    if !outputs.is_empty() {
        out.insert("outputs".into(), Json::Object(outputs));
    }
    let resources: Vec<Json> = config
        .resources
        .values()
        .map(|r| {
            let mut entry = Map::new();
            entry.insert("address".into(), json!(r.addr.to_string()));
            entry.insert("mode".into(), json!(if r.addr.mode == Mode::Data { "data" } else { "managed" }));
            entry.insert("type".into(), json!(r.addr.type_name));
            entry.insert("name".into(), json!(r.addr.name));
            entry.insert("provider_config_key".into(), json!(r.provider_config_addr()));
            entry.insert("expressions".into(), Json::Object(body(sources, &r.body)));
            entry.insert("schema_version".into(), json!(0));
            if let Some(c) = &r.count {
                entry.insert("count_expression".into(), expression(sources, c));
            }
            if let Some(f) = &r.for_each {
                entry.insert("for_each_expression".into(), expression(sources, f));
            }
            if !r.depends_on.is_empty() {
                entry.insert("depends_on".into(), texts(sources, &r.depends_on));
            }
            Json::Object(entry)
        })
        .collect();
    if !resources.is_empty() {
        out.insert("resources".into(), Json::Array(resources));
    }
    let calls: Map<String, Json> = config
        .module_calls
        .values()
        .map(|call| {
            let mut entry = Map::new();
            entry.insert("source".into(), json!(call.source));
            let inputs: Map<String, Json> = call.inputs.iter().map(|a| (a.name.clone(), expression(sources, &a.expr))).collect();
            entry.insert("expressions".into(), Json::Object(inputs));
            if let Some(c) = &call.count {
                entry.insert("count_expression".into(), expression(sources, c));
            }
            if let Some(f) = &call.for_each {
                entry.insert("for_each_expression".into(), expression(sources, f));
            }
            if !call.depends_on.is_empty() {
                entry.insert("depends_on".into(), texts(sources, &call.depends_on));
            }
            if let Some(child) = config.children.get(&call.name) {
                entry.insert("module".into(), module(sources, child));
            }
            (call.name.clone(), Json::Object(entry))
        })
        .collect();
    if !calls.is_empty() {
        out.insert("module_calls".into(), Json::Object(calls));
    }
    let variables: Map<String, Json> = config
        .variables
        .values()
        .map(|v| {
            let mut entry = Map::new();
            if let Some(default) = v.default.as_ref().filter(|_| !v.sensitive) {
                if let Some(value) = eval(&default.expr, &Scope::new(&NoNames)).ok().as_ref().and_then(known) {
                    entry.insert("default".into(), value);
                }
            }
            if let Some(d) = &v.description {
                entry.insert("description".into(), json!(d));
            }
            if v.sensitive {
                entry.insert("sensitive".into(), json!(true));
            }
            (v.name.clone(), Json::Object(entry))
        })
        .collect();
    if !variables.is_empty() {
        out.insert("variables".into(), Json::Object(variables));
    }
    Json::Object(out)
}

/// The expressions of a block body: attributes by name, nested blocks as
/// lists of their bodies.
fn body(sources: &Sources, b: &BodyExprs) -> Map<String, Json> {
    let mut out = Map::new();
    for a in &b.attrs {
        out.insert(a.name.clone(), expression(sources, &a.expr));
    }
    for nested in b.blocks.iter().filter(|n| n.dynamic.is_none()) {
        let list = out.entry(nested.name.clone()).or_insert_with(|| Json::Array(Vec::new()));
        if let Json::Array(items) = list {
            items.push(Json::Object(body(sources, &nested.body)));
        }
    }
    out
}

fn expression(sources: &Sources, e: &Expr) -> Json {
    let refs = references(&e.expr);
    if refs.is_empty() {
        // A literal: only what is printable (never a `sensitive()` value).
        return match eval(&e.expr, &Scope::new(&NoNames)).ok().as_ref().and_then(known) {
            Some(value) => json!({"constant_value": value}),
            None => json!({}),
        };
    }
    let text = sources.text(e.file);
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    for r in refs {
        if let Some(written) = r.range.and_then(|range| text.get(range)) {
            push(written.split_whitespace().collect());
        }
        match r.target {
            RefTarget::Resource { addr, .. } => push(addr.to_string()),
            RefTarget::Module { name, .. } => push(format!("module.{name}")),
            RefTarget::Each => push("each.value".into()),
            RefTarget::CountIndex => push("count.index".into()),
            _ => {}
        }
    }
    json!({"references": out})
}

/// Expressions as their source text (`depends_on` lists).
fn texts(sources: &Sources, exprs: &[Expr]) -> Json {
    let text_of = |e: &Expr| {
        let span = e.span();
        sources.text(span.file).get(span.range).unwrap_or_default().split_whitespace().collect::<String>()
    };
    Json::Array(exprs.iter().map(|e| json!(text_of(e))).collect())
}
