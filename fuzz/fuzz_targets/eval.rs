//! Fuzz target for the evaluator: any expression, with the function library,
//! must evaluate to a value or an error, never a panic, and anything derived
//! from a sensitive value must stay marked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::addr::{InstanceKey, ResourceAddr};
use strata::config::eval::{eval, Resolver, Scope};
use strata_provider::Value;

/// A few names to reach more of the evaluator: a sensitive variable, an
/// object, and resources whose attributes are unknown.
struct Names;

impl Resolver for Names {
    fn variable(&self, name: &str) -> Option<Value> {
        match name {
            "secret" => Some(Value::from("hunter2").into_sensitive()),
            "list" => Some(Value::tuple(vec![Value::from(1i64), Value::from("two"), Value::Bool(true)])),
            "obj" => Some(Value::object([("a", Value::from(1i64)), ("b", Value::Unknown)])),
            _ => None,
        }
    }
    fn local(&self, name: &str) -> Result<Value, String> {
        Err(format!("no local {name}"))
    }
    fn resource(&self, _: &ResourceAddr, _: Option<&InstanceKey>) -> Result<Value, String> {
        Ok(Value::object([("id", Value::Unknown), ("name", Value::from("r"))]))
    }
    fn path(&self, _: &str) -> Option<Value> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(expr) = strata::config::parse::parse_expr(text) else { return };
    let Ok(value) = eval(&expr, &Scope::new(&Names)) else { return };
    // Whatever is derived from var.secret stays redacted. Inputs that could
    // spell the secret out themselves (string literals, heredocs) or unmark
    // it on purpose (nonsensitive) are not evidence of a leak.
    let could_spell_it = text.contains('"') || text.contains("<<") || text.contains("nonsensitive");
    if text.contains("var.secret") && !could_spell_it {
        assert!(!value.to_hcl().contains("hunter2"), "a secret leaked from {text:?}: {}", value.to_hcl());
    }
});
