//! Type constraints (`type = list(string)`) and Terraform's automatic
//! conversions between values and types.

use hcl::edit::expr::{Expression, ObjectKey};
use std::collections::BTreeMap;
use super::unify::{type_of, unify};
use strata_provider::{Number, Type, Value, VecMap};

/// Reads a type constraint written as an expression: `string`, `list(number)`,
/// `map(any)`, `object({ name = string })`, `tuple([...])`, `optional(T)`.
/// It reads the parsed tree, at lowering: the model keeps the type, not
/// the expression.
pub fn parse_type_constraint(expr: &Expression) -> Result<Type, String> {
    match expr {
        Expression::Variable(v) => match v.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "any" => Ok(Type::Any),
            other => Err(format!("unknown type {other:?}")),
        },
        Expression::FuncCall(call) => {
            let name = call.name.name.as_str();
            let args: Vec<&Expression> = call.args.iter().collect();
            let [arg] = args.as_slice() else {
                return Err(format!("{name}(...) takes exactly one argument"));
            };
            match name {
                "list" => Ok(Type::List(Box::new(parse_type_constraint(arg)?))),
                "set" => Ok(Type::Set(Box::new(parse_type_constraint(arg)?))),
                "map" => Ok(Type::Map(Box::new(parse_type_constraint(arg)?))),
                "optional" => Err("optional(...) is only allowed for attributes of object(...)".into()),
                "tuple" => match arg {
                    Expression::Array(elems) => elems.iter().map(parse_type_constraint).collect::<Result<_, _>>().map(Type::Tuple),
                    _ => Err("tuple(...) takes a list of types".into()),
                },
                "object" => match arg {
                    Expression::Object(obj) => {
                        let mut attrs = BTreeMap::new();
                        for (key, value) in obj.iter() {
                            let key = match key {
                                ObjectKey::Ident(i) => i.as_str().to_owned(),
                                ObjectKey::Expression(Expression::String(s)) => s.value().to_string(),
                                _ => return Err("object attribute names must be identifiers".into()),
                            };
                            let inner = match value.expr() {
                                Expression::FuncCall(c) if c.name.name.as_str() == "optional" => {
                                    let args: Vec<&Expression> = c.args.iter().collect();
                                    let (ty, default) = match args.as_slice() {
                                        [ty] => (parse_type_constraint(ty)?, None),
                                        [ty, default] => {
                                            let scope = super::eval::Scope::new(&super::eval::NoNames);
                                            let default = super::lower::expr::node(default, &mut Default::default());
                                            let d = super::eval::eval(&default, &scope)
                                                .map_err(|e| format!("the default of optional(...) must be a constant: {}", e.message))?;
                                            (parse_type_constraint(ty)?, Some(Box::new(d)))
                                        }
                                        _ => return Err("optional(type) or optional(type, default)".into()),
                                    };
                                    Type::Optional(Box::new(ty), default)
                                }
                                other => parse_type_constraint(other)?,
                            };
                            attrs.insert(key, inner);
                        }
                        Ok(Type::Object(attrs))
                    }
                    _ => Err("object(...) takes an object of attribute types".into()),
                },
                other => Err(format!("unknown type constructor {other:?}")),
            }
        }
        _ => Err("expected a type such as string, number, bool, list(string) or object({...})".into()),
    }
}

/// Converts `value` to `ty` as Terraform does (`"1"` → 1, `true` → `"true"`),
/// or explains why it cannot. Unknown and null pass through; marks are kept.
/// Collections take the kind of the type (`list(string)` makes a list, not a
/// tuple); `any` inside a collection type is the elements' unified type
/// (`["a", 1]` as `list(any)` is a list of strings); attributes an object
/// type does not declare are dropped, as for Terraform's variables.
pub fn convert(value: &Value, ty: &Type) -> Result<Value, String> {
    convert_as(value, ty, Extra::Drop)
}

/// As [`convert`], but an attribute the object type does not declare is an
/// error: for a provider schema's attributes, where it is a typo.
pub fn convert_strict(value: &Value, ty: &Type) -> Result<Value, String> {
    convert_as(value, ty, Extra::Refuse)
}

/// What to do with object attributes a type does not declare.
#[derive(Clone, Copy, PartialEq)]
enum Extra {
    Drop,
    Refuse,
}

fn convert_as(value: &Value, ty: &Type, extra: Extra) -> Result<Value, String> {
    if let Value::Sensitive(inner) = value {
        // The reason would quote the value (or a key or element of it).
        return convert_as(inner, ty, extra)
            .map(Value::into_sensitive)
            .map_err(|_| format!("expected {ty}, found a sensitive {} that does not convert", inner.kind()));
    }
    if matches!(value, Value::Null | Value::Unknown) || *ty == Type::Any {
        return Ok(value.clone());
    }
    let mismatch = || format!("expected {ty}, found {}", value.kind());
    match ty {
        Type::String => value.to_template_string().map(Value::String).ok_or_else(mismatch),
        Type::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => s
                .trim()
                .parse::<Number>()
                .map(Value::Number)
                .map_err(|_| format!("expected number, found string {s:?} that is not a number")),
            _ => Err(mismatch()),
        },
        Type::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err(mismatch()),
        },
        Type::List(elem) | Type::Set(elem) => match value {
            Value::List(items) => {
                let elem = element_target(elem, items.iter(), "list")?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(convert_as(item, &elem, extra).map_err(|e| format!("element {i}: {e}"))?);
                }
                if matches!(ty, Type::Set(_)) {
                    dedup_set(&mut out);
                    return Ok(Value::set(out));
                }
                Ok(Value::list(out))
            }
            _ => Err(mismatch()),
        },
        Type::Tuple(elems) => match value {
            Value::List(items) if items.len() == elems.len() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, (item, elem)) in items.iter().zip(elems).enumerate() {
                    out.push(convert_as(item, elem, extra).map_err(|e| format!("element {i}: {e}"))?);
                }
                Ok(Value::tuple(out))
            }
            Value::List(items) => Err(format!("expected {ty}, found {} elements", items.len())),
            _ => Err(mismatch()),
        },
        Type::Map(elem) => match value {
            Value::Map(m) => {
                let elem = element_target(elem, m.values(), "map")?;
                // In key order: each insert is an append.
                let mut out = VecMap::with_capacity(m.len());
                for (k, v) in m.iter() {
                    out.insert(k.clone(), convert_as(v, &elem, extra).map_err(|e| format!("key {k:?}: {e}"))?);
                }
                Ok(Value::map(out))
            }
            _ => Err(mismatch()),
        },
        Type::Object(attrs) => match value {
            Value::Map(m) => {
                let mut out = BTreeMap::new();
                for (name, attr_ty) in attrs {
                    let v = match (m.get(name), attr_ty) {
                        (None | Some(Value::Null), Type::Optional(_, Some(default))) => (**default).clone(),
                        (None, Type::Optional(_, None)) => Value::Null,
                        (None, _) => return Err(format!("attribute {name:?} is required")),
                        (Some(v), _) => v.clone(),
                    };
                    out.insert(name.clone(), convert_as(&v, attr_ty, extra).map_err(|e| format!("attribute {name:?}: {e}"))?);
                }
                if extra == Extra::Refuse {
                    if let Some(unexpected) = m.keys().find(|k| !attrs.contains_key(*k)) {
                        return Err(format!("unexpected attribute {unexpected:?}"));
                    }
                }
                Ok(Value::Map(out.into()))
            }
            _ => Err(mismatch()),
        },
        Type::Any => Ok(value.clone()),
        Type::Optional(inner, _) => convert_as(value, inner, extra),
    }
}

/// The type each element converts to: the declared one, or for `any` the
/// type the elements unify to.
fn element_target<'a>(elem: &Type, items: impl Iterator<Item = &'a Value>, what: &str) -> Result<Type, String> {
    if *elem != Type::Any {
        return Ok(elem.clone());
    }
    let types: Vec<Type> = items.map(type_of).collect();
    unify(&types).ok_or_else(|| format!("all {what} elements must have the same type"))
}

/// Sorts and removes duplicates, giving set semantics to a list: numbers in
/// numeric order, everything else by its HCL text.
pub fn dedup_set(items: &mut Vec<Value>) {
    items.sort_by(|a, b| match (a.as_number(), b.as_number()) {
        (Some(x), Some(y)) => x.cmp(y),
        _ => a.to_hcl().cmp(&b.to_hcl()),
    });
    items.dedup();
}

/// The string form of a number key used by `for_each` over a set of numbers.
pub fn key_string(v: &Value) -> Option<String> {
    match v.unmarked() {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(src: &str) -> Type {
        parse_type_constraint(&hcl::edit::parser::parse_expr(src).unwrap()).unwrap()
    }

    #[test]
    fn conversions_follow_terraform() {
        assert_eq!(convert(&Value::from("1"), &Type::Number).unwrap(), Value::from(1i64));
        assert_eq!(convert(&Value::Bool(true), &Type::String).unwrap(), Value::from("true"));
        assert_eq!(convert(&Value::from(2.5), &Type::String).unwrap(), Value::from("2.5"));
        assert!(convert(&Value::from("x"), &Type::Number).unwrap_err().contains("not a number"));
        let obj = ty("object({ name = string, size = number })");
        let v = Value::object([("name", Value::from("a")), ("size", Value::from("3"))]);
        assert_eq!(convert(&v, &obj).unwrap().get("size"), &Value::from(3i64));
        let set = convert(&Value::tuple(vec!["b".into(), "a".into(), "b".into()]), &ty("set(string)")).unwrap();
        assert_eq!(set, Value::set(vec!["a".into(), "b".into()]));
        let mixed = convert(&Value::tuple(vec!["a".into(), Value::from(1i64)]), &ty("list(any)")).unwrap();
        assert_eq!(mixed, Value::list(vec!["a".into(), "1".into()]));
        assert!(crate::config::unify::equal(&mixed, &Value::list(vec!["a".into(), "1".into()])));
        assert!(!crate::config::unify::equal(&mixed, &Value::tuple(vec!["a".into(), "1".into()])));
        assert_eq!(ty("map(list(bool))").to_string(), "map(list(bool))");
        let opt = ty("object({ name = string, size = optional(number, 10), tag = optional(string) })");
        let v = convert(&Value::object([("name", Value::from("a"))]), &opt).unwrap();
        assert_eq!(v.get("size"), &Value::from(10i64));
        assert_eq!(v.get("tag"), &Value::Null);
        assert!(convert(&Value::object([("size", Value::from(1i64))]), &opt).unwrap_err().contains("\"name\" is required"));
        let extra = Value::object([("name", Value::from("a")), ("typo", Value::from(1i64))]);
        assert_eq!(convert(&extra, &opt).unwrap().get("typo"), &Value::Null);
        assert!(convert_strict(&extra, &opt).unwrap_err().contains("unexpected attribute \"typo\""));
    }
}
