//! Collection functions. Lists, sets and tuples are all `Value::List`, told
//! apart by their kind; each function returns the kind Terraform's returns
//! (`concat` of lists a list, of tuples a tuple; `keys` of a map a list, of
//! an object a tuple). Sets are returned sorted and without duplicates.

use super::conversion::unify;
use crate::config::types::convert;
use crate::config::unify::{type_of, unify as unify_types};
use super::{
    arity, boolean, integer, into_list, list, map, number, one, string, strings, Args, Function,
    FunctionContext, Result, Table,
};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use strata_provider::{ListKind, ListValue, MapKind, Number, Type, Value, VecMap};

pub(super) const FUNCTIONS: Table = &[
    ("alltrue", Function::Pure(alltrue)),
    ("anytrue", Function::Pure(anytrue)),
    ("chunklist", Function::Pure(chunklist)),
    ("coalesce", Function::Pure(coalesce)),
    ("coalescelist", Function::Pure(coalescelist)),
    ("compact", Function::Pure(compact)),
    ("concat", Function::Pure(concat)),
    ("contains", Function::Pure(contains)),
    ("distinct", Function::Pure(distinct)),
    ("element", Function::Pure(element)),
    ("flatten", Function::Pure(flatten)),
    ("index", Function::Pure(index)),
    ("keys", Function::Pure(keys)),
    ("length", Function::Raw(length)),
    ("lookup", Function::Pure(lookup)),
    ("matchkeys", Function::Pure(matchkeys)),
    ("merge", Function::Pure(merge)),
    ("one", Function::Pure(one_fn)),
    ("range", Function::Pure(range)),
    ("reverse", Function::Pure(reverse)),
    ("setintersection", Function::Pure(setintersection)),
    ("setproduct", Function::Pure(setproduct)),
    ("setsubtract", Function::Pure(setsubtract)),
    ("setunion", Function::Pure(setunion)),
    ("slice", Function::Pure(slice)),
    ("sort", Function::Pure(sort)),
    ("sum", Function::Pure(sum)),
    ("transpose", Function::Pure(transpose)),
    ("values", Function::Pure(values)),
    ("zipmap", Function::Pure(zipmap)),
];

/// Orders set elements as Terraform does: numbers numerically, strings
/// lexically, anything else by its rendering.
fn set_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.cmp_num(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_hcl().cmp(&b.to_hcl()),
    }
}

/// Sorts and removes duplicates: a set.
pub(super) fn into_set(mut items: Vec<Value>) -> Vec<Value> {
    items.sort_by(set_order);
    items.dedup();
    items
}

fn all_bools(args: Args) -> Result<Vec<bool>> {
    list(&one(args)?)?.iter().map(|v| if v.is_null() { Ok(false) } else { boolean(v) }).collect()
}

fn alltrue(args: Args) -> Result {
    Ok(Value::Bool(all_bools(args)?.into_iter().all(|b| b)))
}

fn anytrue(args: Args) -> Result {
    Ok(Value::Bool(all_bools(args)?.into_iter().any(|b| b)))
}

/// A size of 0 puts the whole list in one chunk.
fn chunklist(args: Args) -> Result {
    let [l, size] = arity(args)?;
    let items = into_list(l)?;
    let size = integer(&size)?;
    if size < 0 {
        return Err("the size argument must be positive".into());
    }
    if items.is_empty() {
        return Ok(Value::list(vec![]));
    }
    if size == 0 {
        return Ok(Value::list(vec![Value::list(items)]));
    }
    Ok(Value::list(items.chunks(size as usize).map(|c| Value::list(c.to_vec())).collect()))
}

/// The first argument that is neither null nor an empty string, after the
/// arguments are converted to a common type (`coalesce(1, "a")` is `"1"`).
fn coalesce(args: Args) -> Result {
    let non_null: Vec<Value> = args.into_iter().filter(|v| !v.is_null()).collect();
    unify(non_null)?
        .into_iter()
        .find(|v| v.as_str() != Some(""))
        .ok_or_else(|| "no non-null, non-empty-string arguments".to_owned())
}

fn coalescelist(args: Args) -> Result {
    if args.is_empty() {
        return Err("at least one argument is required".into());
    }
    for a in &args {
        if !a.is_null() && !list(a)?.is_empty() {
            return Ok(a.clone());
        }
    }
    Err("no non-null arguments".into())
}

fn compact(args: Args) -> Result {
    let items = into_list(one(args)?)?;
    let kept = items.into_iter().filter(|v| !v.is_null() && v.as_str() != Some(""));
    kept.map(|v| string(&v).map(Value::String)).collect::<Result<_>>().map(Value::list)
}

/// Lists concatenate to a list of their unified element type; as soon as
/// one argument is a tuple the result is a tuple.
fn concat(args: Args) -> Result {
    if args.is_empty() {
        return Err("at least one argument is required".into());
    }
    let all_lists = args.iter().all(|a| matches!(a, Value::List(l) if l.kind != ListKind::Tuple));
    let items = args.into_iter().map(into_list).collect::<Result<Vec<_>>>()?.concat();
    if all_lists {
        return convert(&Value::tuple(items), &Type::List(Box::new(Type::Any)))
            .map_err(|_| "all arguments must have the same element type".to_owned());
    }
    Ok(Value::tuple(items))
}

fn contains(args: Args) -> Result {
    let [l, v] = arity(args)?;
    Ok(Value::Bool(list(&l)?.contains(&v)))
}

fn distinct(args: Args) -> Result {
    let mut out: Vec<Value> = Vec::new();
    for item in into_list(one(args)?)? {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(Value::list(out))
}

/// The index wraps around the end of the list.
fn element(args: Args) -> Result {
    let [l, i] = arity(args)?;
    let items = list(&l)?;
    let i = integer(&i)?;
    if i < 0 {
        return Err("cannot use element function with a negative index".into());
    }
    if items.is_empty() {
        return Err("cannot use element function with an empty list".into());
    }
    Ok(items[i as usize % items.len()].clone())
}

fn flatten(args: Args) -> Result {
    fn flat(v: Value, out: &mut Vec<Value>) {
        match v {
            Value::List(items) => items.into_iter().for_each(|i| flat(i, out)),
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    into_list(one(args)?)?.into_iter().for_each(|v| flat(v, &mut out));
    Ok(Value::tuple(out))
}

fn index(args: Args) -> Result {
    let [l, v] = arity(args)?;
    let i = list(&l)?.iter().position(|x| *x == v).ok_or("item not found")?;
    Ok(Value::from(i as i64))
}

/// The kind of what `keys` and `values` return: a list for a map, a tuple
/// for an object.
fn listing_kind(v: &Value) -> ListKind {
    match v {
        Value::Map(m) if m.kind == MapKind::Map => ListKind::List,
        _ => ListKind::Tuple,
    }
}

fn keys(args: Args) -> Result {
    let m = one(args)?;
    let keys = map(&m)?.keys().map(|k| Value::from(k.as_str())).collect();
    Ok(Value::List(ListValue::new(keys, listing_kind(&m))))
}

fn values(args: Args) -> Result {
    let m = one(args)?;
    let values = map(&m)?.values().cloned().collect();
    Ok(Value::List(ListValue::new(values, listing_kind(&m))))
}

/// Known even when elements are unknown; sensitive only if the collection
/// itself is.
fn length(args: Args, _: &FunctionContext) -> Result {
    let v = one(args)?;
    if v.is_unknown() {
        return Ok(Value::Unknown);
    }
    let n = match v.unmarked() {
        Value::List(items) => items.len(),
        Value::Map(m) => m.len(),
        Value::String(s) => super::string::grapheme_count(s),
        Value::Null => return Err("argument must not be null".into()),
        other => return Err(format!("argument must be a string, a collection type, or a structural type, not {}", other.kind())),
    };
    let n = Value::from(n as i64);
    Ok(if v.is_sensitive() { n.into_sensitive() } else { n })
}

fn lookup(args: Args) -> Result {
    let (m, k, default) = match <[Value; 3]>::try_from(args) {
        Ok([m, k, d]) => (m, k, Some(d)),
        Err(args) => {
            let [m, k] = arity(args).map_err(|_| "expects a map, a key and a default")?;
            (m, k, None)
        }
    };
    let key = string(&k)?;
    match (map(&m)?.get(&key), default) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(format!("the given key {key:?} was not found in the map")),
    }
}

fn matchkeys(args: Args) -> Result {
    let [vals, ks, search] = arity(args)?;
    let (vals, ks, search) = (list(&vals)?, list(&ks)?, list(&search)?);
    if vals.len() != ks.len() {
        return Err("length of keys and values should be equal".into());
    }
    let picked = vals.iter().zip(ks).filter(|(_, k)| search.contains(k)).map(|(v, _)| v.clone());
    Ok(Value::list(picked.collect()))
}

/// Later arguments win; null arguments are skipped. Maps of one element
/// type merge to a map; anything else to an object.
fn merge(args: Args) -> Result {
    // A null argument has no type of its own, so the result is an object.
    let types: Vec<Type> = args.iter().map(type_of).collect();
    let one_map_type = types.iter().all(|t| matches!(t, Type::Map(_)) && *t == types[0]);
    let args: Vec<Value> = args.into_iter().filter(|m| !m.is_null()).collect();
    // `extend` sorts each argument in at once: linear for maps, which are
    // sorted already.
    let mut out = VecMap::new();
    for m in args {
        match m {
            Value::Map(entries) => out.extend(entries),
            other => return Err(format!("arguments must be maps or objects, got {}", other.kind())),
        }
    }
    Ok(if one_map_type && !types.is_empty() { Value::map(out) } else { Value::Map(out.into()) })
}

fn one_fn(args: Args) -> Result {
    let mut items = into_list(one(args)?)?;
    match items.len() {
        0 => Ok(Value::Null),
        1 => Ok(items.remove(0)),
        _ => Err("must be a list, set, or tuple value with either zero or one elements".into()),
    }
}

/// At most 1024 elements, as in Terraform.
fn range(args: Args) -> Result {
    let nums = args.iter().map(number).collect::<Result<Vec<_>>>()?;
    let zero = Number::from_i64(0);
    let one = Number::from_i64(1);
    let (start, limit, step) = match nums.as_slice() {
        [limit] => (zero.clone(), limit.clone(), one),
        [start, limit] => (start.clone(), limit.clone(), if limit >= start { one } else { one.neg() }),
        [start, limit, step] => (start.clone(), limit.clone(), step.clone()),
        _ => return Err("expects 1 to 3 arguments".into()),
    };
    if step.is_zero() {
        return Err("step must not be zero".into());
    }
    if start < limit && step < zero {
        return Err("step must be positive when start is less than limit".into());
    }
    if start > limit && step > zero {
        return Err("step must be negative when start is greater than limit".into());
    }
    let mut out = Vec::new();
    let mut x = start;
    while (step > zero && x < limit) || (step < zero && x > limit) {
        if out.len() >= 1024 {
            return Err("more than 1024 values were generated; either decrease the difference between start and end or use a smaller step".into());
        }
        out.push(Value::Number(x.clone()));
        x = x.add(&step).map_err(|e| e.to_string())?;
    }
    Ok(Value::list(out))
}

/// A tuple stays a tuple; a list or set becomes a list.
fn reverse(args: Args) -> Result {
    let l = one(args)?;
    let kind = match &l {
        Value::List(l) if l.kind == ListKind::Tuple => ListKind::Tuple,
        _ => ListKind::List,
    };
    let mut items = into_list(l)?;
    items.reverse();
    Ok(Value::List(ListValue::new(items, kind)))
}

/// The arguments of the set functions, their elements converted to one
/// type (`setunion(["a"], [1])` is a set of strings).
fn sets(args: Args) -> Result<Vec<Vec<Value>>> {
    if args.is_empty() {
        return Err("at least one argument is required".into());
    }
    let lists = args.into_iter().map(into_list).collect::<Result<Vec<_>>>()?;
    let types: Vec<Type> = lists.iter().flatten().map(type_of).collect();
    let elem = unify_types(&types).ok_or("all elements must have the same type")?;
    lists
        .into_iter()
        .map(|l| l.iter().map(|v| convert(v, &elem)).collect::<std::result::Result<Vec<_>, _>>())
        .collect()
}

fn setintersection(args: Args) -> Result {
    let mut sets = sets(args)?.into_iter();
    let first = sets.next().unwrap_or_default();
    let rest: Vec<Vec<Value>> = sets.collect();
    Ok(Value::set(into_set(first.into_iter().filter(|v| rest.iter().all(|s| s.contains(v))).collect())))
}

fn setsubtract(args: Args) -> Result {
    let [a, b] = arity(args)?;
    let [a, b]: [Vec<Value>; 2] = sets(vec![a, b])?.try_into().map_err(|_| "expects two sets")?;
    Ok(Value::set(into_set(a.into_iter().filter(|v| !b.contains(v)).collect())))
}

fn setunion(args: Args) -> Result {
    Ok(Value::set(into_set(sets(args)?.concat())))
}

/// Every combination of one element from each argument, in argument order.
fn setproduct(args: Args) -> Result {
    if args.len() < 2 {
        return Err("at least two arguments are required".into());
    }
    let mut combos: Vec<Vec<Value>> = vec![vec![]];
    for set in sets(args)? {
        combos = combos
            .into_iter()
            .flat_map(|prefix| set.iter().map(move |v| [prefix.clone(), vec![v.clone()]].concat()))
            .collect();
    }
    Ok(Value::list(combos.into_iter().map(Value::tuple).collect()))
}

fn slice(args: Args) -> Result {
    let [l, start, end] = arity(args)?;
    let items = list(&l)?;
    let (start, end) = (integer(&start)?, integer(&end)?);
    if start < 0 {
        return Err("the start index must not be negative".into());
    }
    if end > items.len() as i64 {
        return Err("the end index must not be greater than the length of the list".into());
    }
    if start > end {
        return Err("the start index must be less than or equal to the end index".into());
    }
    let kind = match &l {
        Value::List(l) if l.kind == ListKind::Tuple => ListKind::Tuple,
        _ => ListKind::List,
    };
    Ok(Value::List(ListValue::new(items[start as usize..end as usize].to_vec(), kind)))
}

/// Elements are converted to strings and sorted lexically.
fn sort(args: Args) -> Result {
    let l = one(args)?;
    if list(&l)?.iter().any(Value::is_null) {
        return Err("given list element is null; a null list element cannot be sorted".into());
    }
    let mut items = strings(&l)?;
    items.sort();
    Ok(Value::list(items.into_iter().map(Value::String).collect()))
}

fn sum(args: Args) -> Result {
    let items = into_list(one(args)?)?;
    if items.is_empty() {
        return Err("cannot sum an empty list".into());
    }
    let mut total = Number::from_i64(0);
    for v in &items {
        let n = number(v).map_err(|_| "argument must be a list, set, or tuple of numbers")?;
        total = total.add(&n).map_err(|e| e.to_string())?;
    }
    Ok(Value::Number(total))
}

fn transpose(args: Args) -> Result {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, vs) in map(&one(args)?)? {
        for v in strings(vs)? {
            out.entry(v).or_default().push(Value::from(k.as_str()));
        }
    }
    Ok(Value::map(out.into_iter().map(|(k, v)| (k, Value::list(v))).collect()))
}

fn zipmap(args: Args) -> Result {
    let [ks, vs_value] = arity(args)?;
    let (ks, vs) = (strings(&ks)?, list(&vs_value)?);
    if ks.len() != vs.len() {
        return Err(format!("number of keys ({}) does not match number of values ({})", ks.len(), vs.len()));
    }
    let entries: VecMap<String, Value> = ks.into_iter().zip(vs.iter().cloned()).collect();
    Ok(match &vs_value {
        Value::List(l) if l.kind == ListKind::Tuple => Value::Map(entries.into()),
        _ => Value::map(entries),
    })
}
