//! Built-in functions, with Terraform's names, argument rules and results.
//!
//! Each category lives in its own submodule and exports a table of
//! `(name, function)` pairs; [`call`] looks the name up in those tables.
//! Unknown and sensitive arguments are handled once, in [`call`], for every
//! function that does not opt out (see [`Function`]).
//!
//! Functions accept whichever collection kind Terraform would accept and
//! return the kind Terraform's returns (a list, a set, a tuple...).

mod collection;
mod conversion;
mod crypto;
mod datetime;
mod encoding;
mod filesystem;
mod format;
mod network;
mod numeric;
mod string;
mod yaml;

use super::types::convert;
use strata_provider::{Number, Type, Value, VecMap};

type Args = Vec<Value>;
type Result<T = Value> = std::result::Result<T, String>;

/// What functions may know about where and when they run.
#[derive(Debug, Clone, Default)]
pub struct FunctionContext {
    /// Where relative paths of the filesystem functions start: the root
    /// module's directory, the working directory, as in Terraform.
    pub base_dir: std::path::PathBuf,
    /// True while applying: `timestamp()` and `uuid()` are unknown during
    /// plan and known during apply, as in Terraform.
    pub apply: bool,
}

/// How a function is implemented.
#[derive(Clone, Copy)]
enum Function {
    /// Known, unmarked arguments in; result marked sensitive if any
    /// argument was; unknown if any argument contains an unknown.
    Pure(fn(Args) -> Result),
    /// Like `Pure`, but needs the context (files, phase).
    WithContext(fn(Args, &FunctionContext) -> Result),
    /// Sees the arguments as given, unknowns and marks included.
    Raw(fn(Args, &FunctionContext) -> Result),
}

type Table = &'static [(&'static str, Function)];

const TABLES: &[Table] = &[
    numeric::FUNCTIONS,
    string::FUNCTIONS,
    collection::FUNCTIONS,
    encoding::FUNCTIONS,
    filesystem::FUNCTIONS,
    datetime::FUNCTIONS,
    crypto::FUNCTIONS,
    network::FUNCTIONS,
    conversion::FUNCTIONS,
];

fn lookup(name: &str) -> Option<Function> {
    TABLES.iter().flat_map(|t| t.iter()).find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The names of every built-in function (for completion and docs).
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().flat_map(|t| t.iter()).map(|(n, _)| *n)
}

/// Calls the function `name`.
pub fn call(name: &str, args: Args, cx: &FunctionContext) -> Result {
    let f = lookup(name).ok_or_else(|| format!("there is no function named {name:?}"))?;
    let f = match f {
        Function::Raw(f) => return f(args, cx),
        Function::Pure(f) => Err(f),
        Function::WithContext(f) => Ok(f),
    };
    if args.iter().any(Value::contains_unknown) {
        return Ok(Value::Unknown);
    }
    let sensitive = args.iter().any(Value::contains_sensitive);
    let args: Args = args.into_iter().map(Value::deep_unmark).collect();
    let result = match f {
        Err(pure) => pure(args)?,
        Ok(with_cx) => with_cx(args, cx)?,
    };
    Ok(if sensitive { result.into_sensitive() } else { result })
}

// ---- argument helpers shared by the submodules ----

fn arity<const N: usize>(args: Args) -> Result<[Value; N]> {
    args.try_into().map_err(|a: Args| {
        format!("expects {N} argument{}, got {}", if N == 1 { "" } else { "s" }, a.len())
    })
}

fn one(args: Args) -> Result {
    let [v] = arity::<1>(args)?;
    Ok(v)
}

/// Splits off `required` leading arguments; the rest are variadic.
fn split_args(mut args: Args, required: usize) -> Result<(Args, Args)> {
    if args.len() < required {
        return Err(format!("expects at least {required} argument{}, got {}", if required == 1 { "" } else { "s" }, args.len()));
    }
    let rest = args.split_off(required);
    Ok((args, rest))
}

/// Terraform rejects null for every parameter that does not ask for it.
fn not_null(v: &Value) -> Result<()> {
    if v.is_null() {
        return Err("argument must not be null".into());
    }
    Ok(())
}

fn string(v: &Value) -> Result<String> {
    not_null(v)?;
    v.to_template_string().ok_or_else(|| format!("expected a string, found {}", v.kind()))
}

fn number(v: &Value) -> Result<Number> {
    not_null(v)?;
    convert(v, &Type::Number)?.as_number().cloned().ok_or_else(|| format!("expected a number, found {}", v.kind()))
}

/// A whole number that fits an `i64`.
fn integer(v: &Value) -> Result<i64> {
    let n = number(v)?;
    if !n.is_integer() {
        return Err(format!("{n} is not a whole number"));
    }
    n.to_i64().ok_or_else(|| format!("{n} is too large"))
}

fn boolean(v: &Value) -> Result<bool> {
    not_null(v)?;
    convert(v, &Type::Bool)?.as_bool().ok_or_else(|| format!("expected a bool, found {}", v.kind()))
}

fn list(v: &Value) -> Result<&[Value]> {
    not_null(v)?;
    v.as_list().ok_or_else(|| format!("expected a list, set or tuple, found {}", v.kind()))
}

fn into_list(v: Value) -> Result<Vec<Value>> {
    list(&v)?;
    match v {
        Value::List(items) => Ok(items.into_vec()),
        _ => unreachable!("checked by list()"),
    }
}

fn map(v: &Value) -> Result<&VecMap<String, Value>> {
    not_null(v)?;
    v.as_map().ok_or_else(|| format!("expected a map or object, found {}", v.kind()))
}

fn strings(v: &Value) -> Result<Vec<String>> {
    list(v)?.iter().map(string).collect()
}

fn str_value(s: impl Into<String>) -> Result {
    Ok(Value::String(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique() {
        let mut all: Vec<_> = names().collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn marks_and_unknowns_are_handled_once() {
        let cx = FunctionContext::default();
        let r = call("upper", vec![Value::from("a").into_sensitive()], &cx).unwrap();
        assert_eq!(r, Value::from("A").into_sensitive());
        assert_eq!(call("upper", vec![Value::Unknown], &cx).unwrap(), Value::Unknown);
        assert_eq!(call("length", vec![Value::List(vec![Value::Unknown].into())], &cx).unwrap(), Value::from(1i64));
        assert_eq!(call("timestamp", vec![], &cx).unwrap(), Value::Unknown);
        assert!(call("nope", vec![], &cx).unwrap_err().contains("no function"));
    }
}
