//! Built-in functions, with Terraform's names and results.
//!
//! This is the core set the engine needs; the full Terraform library slots in
//! here as more entries of [`call`]. Unknown and sensitive arguments are
//! handled once, in [`call`], for every function that does not opt out.

use super::types::{convert, dedup_set};
use std::collections::BTreeMap;
use strata_provider::{Number, Type, Value};

type Args = Vec<Value>;

/// What functions may know about where and when they run.
#[derive(Debug, Clone, Default)]
pub struct FunctionContext {
    /// The directory of the module being evaluated (`path.module`): relative
    /// paths of the filesystem functions start there.
    pub base_dir: std::path::PathBuf,
    /// True while applying: `timestamp()` and `uuid()` are unknown during
    /// plan and known during apply, as in Terraform.
    pub apply: bool,
}

/// Calls the function `name`.
pub fn call(name: &str, args: Args, cx: &FunctionContext) -> Result<Value, String> {
    match name {
        "sensitive" => return one(args).map(Value::into_sensitive),
        "nonsensitive" => return one(args).map(Value::deep_unmark),
        "length" => {
            // The length of a list with unknown elements is known.
            let v = one(args)?;
            if v.is_unknown() {
                return Ok(Value::Unknown);
            }
            let sensitive = v.is_sensitive();
            let n = match v.unmarked() {
                Value::List(items) => items.len(),
                Value::Map(m) => m.len(),
                Value::String(s) => s.chars().count(),
                other => return Err(format!("cannot take the length of a {}", other.kind())),
            };
            let n = Value::from(n as i64);
            return Ok(if sensitive { n.into_sensitive() } else { n });
        }
        _ => {}
    }
    if args.iter().any(Value::contains_unknown) {
        return Ok(Value::Unknown);
    }
    let sensitive = args.iter().any(Value::contains_sensitive);
    let args: Args = args.into_iter().map(Value::deep_unmark).collect();
    let result = pure(name, args, cx)?;
    Ok(if sensitive { result.into_sensitive() } else { result })
}

fn pure(name: &str, args: Args, cx: &FunctionContext) -> Result<Value, String> {
    Ok(match name {
        "upper" => Value::String(string(&one(args)?)?.to_uppercase()),
        "lower" => Value::String(string(&one(args)?)?.to_lowercase()),
        "trimspace" => Value::String(string(&one(args)?)?.trim().to_owned()),
        "join" => {
            let [sep, rest @ ..] = args.as_slice() else { return Err("expects a separator and lists".into()) };
            let sep = string(sep)?;
            let mut parts = Vec::new();
            for l in rest {
                for item in list(l)? {
                    parts.push(string(item)?);
                }
            }
            Value::String(parts.join(&sep))
        }
        "split" => {
            let [sep, s] = two(args)?;
            Value::List(string(&s)?.split(string(&sep)?.as_str()).map(Value::from).collect())
        }
        "replace" => {
            let [s, from, to] = three(args)?;
            Value::String(string(&s)?.replace(string(&from)?.as_str(), &string(&to)?))
        }
        "substr" => {
            let [s, offset, len] = three(args)?;
            let s: Vec<char> = string(&s)?.chars().collect();
            let offset = num(&offset)? as usize;
            let len = num(&len)?;
            let end = if len < 0.0 { s.len() } else { (offset + len as usize).min(s.len()) };
            Value::String(s.get(offset.min(s.len())..end).map(|c| c.iter().collect()).unwrap_or_default())
        }
        "startswith" => {
            let [s, p] = two(args)?;
            Value::Bool(string(&s)?.starts_with(string(&p)?.as_str()))
        }
        "endswith" => {
            let [s, p] = two(args)?;
            Value::Bool(string(&s)?.ends_with(string(&p)?.as_str()))
        }
        "format" => format(args)?,
        "concat" => Value::List(args.iter().map(list).collect::<Result<Vec<_>, _>>()?.concat()),
        "flatten" => {
            fn flat(v: &Value, out: &mut Vec<Value>) {
                match v {
                    Value::List(items) => items.iter().for_each(|i| flat(i, out)),
                    other => out.push(other.clone()),
                }
            }
            let mut out = Vec::new();
            flat(&one(args)?, &mut out);
            Value::List(out)
        }
        "distinct" => {
            let mut out: Vec<Value> = Vec::new();
            for item in list(&one(args)?)? {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Value::List(out)
        }
        "contains" => {
            let [l, v] = two(args)?;
            Value::Bool(list(&l)?.contains(&v))
        }
        "element" => {
            let [l, i] = two(args)?;
            let items = list(&l)?;
            if items.is_empty() {
                return Err("cannot use element on an empty list".into());
            }
            items[num(&i)? as usize % items.len()].clone()
        }
        "range" => {
            let nums = args.iter().map(num).collect::<Result<Vec<_>, _>>()?;
            let (start, end, step) = match nums.as_slice() {
                [end] => (0.0, *end, 1.0),
                [start, end] => (*start, *end, if end >= start { 1.0 } else { -1.0 }),
                [start, end, step] => (*start, *end, *step),
                _ => return Err("expects 1 to 3 numbers".into()),
            };
            if step == 0.0 {
                return Err("step must not be zero".into());
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
                out.push(Value::from(x));
                x += step;
                if out.len() > 1_024_000 {
                    return Err("more than 1024000 elements".into());
                }
            }
            Value::List(out)
        }
        "keys" => Value::List(map(&one(args)?)?.keys().map(|k| Value::from(k.as_str())).collect()),
        "values" => Value::List(map(&one(args)?)?.values().cloned().collect()),
        "merge" => {
            let mut out = BTreeMap::new();
            for m in &args {
                if m.is_null() {
                    continue;
                }
                out.extend(map(m)?.clone());
            }
            Value::Map(out)
        }
        "lookup" => {
            let (m, k, default) = match args.as_slice() {
                [m, k] => (m, k, None),
                [m, k, d] => (m, k, Some(d)),
                _ => return Err("expects a map, a key and an optional default".into()),
            };
            match (map(m)?.get(&string(k)?), default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => return Err(format!("no key {:?} and no default", string(k)?)),
            }
        }
        "coalesce" => args
            .into_iter()
            .find(|v| !v.is_null() && v.as_str() != Some(""))
            .ok_or("no non-null, non-empty argument")?,
        "min" | "max" => {
            let nums = args.iter().map(number).collect::<Result<Vec<_>, _>>()?;
            let picked = if name == "min" { nums.into_iter().min() } else { nums.into_iter().max() };
            Value::Number(picked.ok_or("expects at least one number")?)
        }
        "abs" => Value::Number(number(&one(args)?)?.abs()),
        "ceil" => Value::Number(number(&one(args)?)?.ceil()),
        "floor" => Value::Number(number(&one(args)?)?.floor()),
        "tostring" => to(one(args)?, &Type::String)?,
        "tonumber" => to(one(args)?, &Type::Number)?,
        "tobool" => to(one(args)?, &Type::Bool)?,
        "tolist" => to(one(args)?, &Type::List(Box::new(Type::Any)))?,
        "toset" => {
            let mut items = list(&one(args)?)?.to_vec();
            dedup_set(&mut items);
            Value::List(items)
        }
        "tomap" => to(one(args)?, &Type::Map(Box::new(Type::Any)))?,
        "jsonencode" => Value::String(one(args)?.to_redacted_json().to_string()),
        "jsondecode" => {
            let s = string(&one(args)?)?;
            Value::from_json(serde_json::from_str(&s).map_err(|e| format!("invalid JSON: {e}"))?)
        }
        "file" => {
            let rel = string(&one(args)?)?;
            let path = cx.base_dir.join(&rel);
            Value::String(std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?)
        }
        other => return Err(format!("there is no function named {other:?}")),
    })
}

fn to(v: Value, ty: &Type) -> Result<Value, String> {
    convert(&v, ty)
}

fn one(args: Args) -> Result<Value, String> {
    let [v]: [Value; 1] = args.try_into().map_err(|a: Args| format!("expects 1 argument, got {}", a.len()))?;
    Ok(v)
}

fn two(args: Args) -> Result<[Value; 2], String> {
    args.try_into().map_err(|a: Args| format!("expects 2 arguments, got {}", a.len()))
}

fn three(args: Args) -> Result<[Value; 3], String> {
    args.try_into().map_err(|a: Args| format!("expects 3 arguments, got {}", a.len()))
}

fn string(v: &Value) -> Result<String, String> {
    v.to_template_string().ok_or_else(|| format!("expected a string, found {}", v.kind()))
}

fn number(v: &Value) -> Result<Number, String> {
    convert(v, &Type::Number)?.as_number().cloned().ok_or_else(|| format!("expected a number, found {}", v.kind()))
}

fn num(v: &Value) -> Result<f64, String> {
    convert(v, &Type::Number)?.as_f64().ok_or_else(|| format!("expected a number, found {}", v.kind()))
}

fn list(v: &Value) -> Result<&[Value], String> {
    v.as_list().ok_or_else(|| format!("expected a list, found {}", v.kind()))
}

fn map(v: &Value) -> Result<&BTreeMap<String, Value>, String> {
    v.as_map().ok_or_else(|| format!("expected a map or object, found {}", v.kind()))
}

/// `format` with the verbs `%s`, `%d`, `%v`, `%%` and `%q`.
fn format(args: Args) -> Result<Value, String> {
    let mut args = args.into_iter();
    let spec = string(&args.next().ok_or("expects a format string")?)?;
    let mut out = String::new();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("format string ends with %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.next().ok_or_else(|| format!("not enough arguments for %{verb}"))?;
        match verb {
            's' | 'v' => out.push_str(&string(&arg).unwrap_or_else(|_| arg.to_hcl())),
            'd' => out.push_str(&number(&arg)?.trunc().to_string()),
            'q' => out.push_str(&serde_json::to_string(&string(&arg)?).expect("strings serialize")),
            other => return Err(format!("unsupported verb %{other}")),
        }
    }
    Ok(Value::String(out))
}
