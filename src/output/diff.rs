//! Attribute diffs in Terraform's layout: a change inside a nested object or
//! a list shows only what changed (`~ size = 8 -> 16` inside its block), the
//! rest is counted (`# (2 unchanged attributes hidden)`), list elements are
//! matched by a longest common subsequence so one changed element is one
//! changed element, and multi-line strings are diffed line by line in
//! `<<-EOT` form. Nested blocks of the schema print as blocks (`~ disk {`),
//! unchanged ones counted (`# (2 unchanged blocks hidden)`). Sensitive
//! values print as `(sensitive value)`, never more.

use super::Shell;
use anstyle::AnsiColor;
use std::borrow::Cow;
use std::collections::BTreeMap;
use strata_provider::{Block, Value, VecMap};

/// What happens to one value, as the symbol in front of its line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    NoOp,
    Create,
    Update,
    Delete,
}

/// One output line: nesting depth, the symbol column, the text (borrowed
/// when it is a constant: `}`, `]`, `EOT`).
struct Line {
    depth: usize,
    change: Change,
    text: Cow<'static, str>,
}

/// A rendered value: `head` continues the line that names it (`name = `,
/// or a list element's own line); `body` holds the lines below it, the last
/// one closing it (`}`, `]`, `EOT`).
struct Rendered {
    head: String,
    body: Vec<Line>,
}

impl Rendered {
    fn inline(head: String) -> Rendered {
        Rendered { head, body: Vec::new() }
    }

    /// Text after the value's last line: `,` in a list, `-> null`, comments.
    fn append(&mut self, text: &str) {
        match self.body.last_mut() {
            Some(last) => last.text.to_mut().push_str(text),
            None => self.head.push_str(text),
        }
    }
}

/// Per top-level attribute, a comment for its line (`# forces replacement`,
/// Strata's disruption markers).
pub(super) type Markers = BTreeMap<String, String>;

/// The attribute lines of a resource (or drifted object), each after
/// `indent` for the body of `resource "T" "N" {` and ending in a newline (a
/// blank line without its indentation), written straight into `out`: a plan
/// of 100,000 creates prints millions of them. `hide_unchanged` is
/// Terraform's behaviour for updates; creates and deletes show everything.
/// With the resource type's schema, its nested blocks print as blocks.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_attribute_lines(
    out: &mut String,
    indent: &str,
    shell: &Shell,
    before: &Value,
    after: &Value,
    markers: &Markers,
    hide_unchanged: bool,
    schema: Option<&Block>,
) {
    let empty = VecMap::new();
    let b = before.unmarked().as_map().unwrap_or(&empty);
    let a = after.unmarked().as_map().unwrap_or(&empty);
    let mut lines = Vec::new();
    block_body(&mut lines, 1, b, a, markers, hide_unchanged, schema);
    for line in &lines {
        let start = out.len();
        out.push_str(indent);
        let painted = out.len();
        paint_line(out, shell, line);
        if out.len() == painted {
            out.truncate(start);
        }
        out.push('\n');
    }
}

/// The body of a resource or nested block: its attributes, then its nested
/// blocks, each after a blank line, as Terraform lays them out.
fn block_body(
    lines: &mut Vec<Line>,
    depth: usize,
    before: &VecMap<String, Value>,
    after: &VecMap<String, Value>,
    markers: &Markers,
    hide_unchanged: bool,
    schema: Option<&Block>,
) {
    let Some(schema) = schema.filter(|s| !s.blocks.is_empty()) else {
        object_body(lines, depth, before, after, markers, hide_unchanged, true);
        return;
    };
    // A block value marked sensitive (whole or per block) prints as an
    // attribute does: `(sensitive value)`, its content never unwrapped.
    let unmarked_blocks = |v: Option<&Value>| match v {
        None => true,
        Some(Value::List(items)) => !items.iter().any(Value::is_sensitive),
        Some(v) => !v.is_sensitive(),
    };
    let is_block = |k: &String| schema.blocks.contains_key(k) && unmarked_blocks(before.get(k)) && unmarked_blocks(after.get(k));
    let attributes = |m: &VecMap<String, Value>| m.iter().filter(|(k, _)| !is_block(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let (before_attributes, after_attributes): (VecMap<String, Value>, VecMap<String, Value>) = (attributes(before), attributes(after));
    let has_attributes = before_attributes.keys().chain(after_attributes.keys()).any(|k| !(is_unset(before.get(k), true) && is_unset(after.get(k), true)));
    object_body(lines, depth, &before_attributes, &after_attributes, markers, hide_unchanged, true);
    let mut hidden = 0;
    for (name, nested) in schema.blocks.iter().filter(|(name, _)| is_block(name)) {
        let as_list = |v: Option<&Value>| -> Vec<Value> {
            match v.map(Value::unmarked) {
                Some(Value::List(items)) => items.to_vec(),
                Some(Value::Null) | None => Vec::new(),
                Some(other) => vec![other.clone()],
            }
        };
        let (old, new) = (as_list(before.get(name)), as_list(after.get(name)));
        let marker = markers.get(name.as_str());
        // A blank line between the attributes and each kind of block.
        let mut first_shown = has_attributes;
        for (change, b, a) in match_elements(&old, &new) {
            if change == Change::NoOp && hide_unchanged {
                hidden += 1;
                continue;
            }
            let empty = VecMap::new();
            let map = |v: Option<&Value>| v.and_then(|v| v.unmarked().as_map().cloned()).unwrap_or_default();
            let (b, a) = (map(b), map(a));
            if std::mem::take(&mut first_shown) {
                lines.push(Line { depth, change: Change::NoOp, text: Cow::Borrowed("") });
            }
            let head = match marker.filter(|_| change != Change::NoOp) {
                Some(m) => format!("{name} {{ # {m}"),
                None => format!("{name} {{"),
            };
            lines.push(Line { depth, change, text: head.into() });
            match change {
                Change::Delete => block_body(lines, depth + 1, &b, &empty, &Markers::new(), false, Some(&nested.block)),
                Change::Create => block_body(lines, depth + 1, &empty, &a, &Markers::new(), false, Some(&nested.block)),
                _ => block_body(lines, depth + 1, &b, &a, &Markers::new(), hide_unchanged, Some(&nested.block)),
            }
            lines.push(Line { depth, change: Change::NoOp, text: "}".into() });
        }
    }
    if hidden > 0 {
        lines.push(Line { depth, change: Change::NoOp, text: Cow::Borrowed("") });
        lines.push(Line { depth, change: Change::NoOp, text: unchanged(hidden, "block").into() });
    }
}

/// Appends `line` to `out`: its indentation, symbol and text, without
/// trailing whitespace (a line that is only whitespace appends nothing).
fn paint_line(out: &mut String, shell: &Shell, line: &Line) {
    let start = out.len();
    // The caller indents depth 1 already (the resource body).
    for _ in 1..line.depth {
        out.push_str("    ");
    }
    let (color, symbol) = match line.change {
        Change::NoOp => (None, " "),
        Change::Create => (Some(AnsiColor::Green), "+"),
        Change::Update => (Some(AnsiColor::Yellow), "~"),
        Change::Delete => (Some(AnsiColor::Red), "-"),
    };
    match color.filter(|_| shell.color()) {
        Some(color) => out.push_str(&shell.paint(color.on_default(), symbol)),
        None => out.push_str(symbol),
    }
    out.push(' ');
    out.push_str(&line.text);
    let kept = out[start..].trim_end().len();
    out.truncate(start + kept);
}

/// Null, or at the top level an empty list (no nested blocks): not shown.
fn is_unset(v: Option<&Value>, top_level: bool) -> bool {
    v.is_none_or(|v| v.is_null() || (top_level && matches!(v.unmarked(), Value::List(items) if items.is_empty())))
}

fn same(before: &Value, after: &Value) -> bool {
    !after.contains_unknown() && before.clone().deep_unmark() == after.clone().deep_unmark()
}

fn classify(before: Option<&Value>, after: Option<&Value>, top_level: bool) -> Change {
    match (is_unset(before, top_level), is_unset(after, top_level)) {
        (true, true) => Change::NoOp,
        (true, false) => Change::Create,
        (false, true) => Change::Delete,
        (false, false) => {
            let (b, a) = (before.expect("set"), after.expect("set"));
            if same(b, a) && b.is_sensitive() == a.is_sensitive() {
                Change::NoOp
            } else {
                Change::Update
            }
        }
    }
}

/// Attributes Terraform always shows, changed or not, so the reader knows
/// which object a change is in.
fn identifying(name: &str) -> bool {
    matches!(name, "id" | "name" | "tags")
}

/// An object key as HCL writes it: bare when it is an identifier.
fn key_text(key: &str) -> Cow<'_, str> {
    let mut chars = key.chars();
    let identifier = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if identifier {
        key.into()
    } else {
        serde_json::to_string(key).expect("strings serialize").into()
    }
}

/// The attributes of an object, at `depth`, changed ones (and identifying
/// ones) shown, the others counted.
fn object_body(
    lines: &mut Vec<Line>,
    depth: usize,
    before: &VecMap<String, Value>,
    after: &VecMap<String, Value>,
    markers: &Markers,
    hide_unchanged: bool,
    top_level: bool,
) {
    let keys: Vec<&String> = {
        let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.retain(|k| !(is_unset(before.get(*k), top_level) && is_unset(after.get(*k), top_level)));
        keys
    };
    let width = keys.iter().map(|k| key_text(k).chars().count()).max().unwrap_or(0);
    let mut hidden = 0;
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        let change = classify(old, new, top_level);
        if change == Change::NoOp && hide_unchanged && !identifying(key) {
            hidden += 1;
            continue;
        }
        let mut value = value_change(depth, change, old, new);
        if change == Change::Delete {
            value.append(" -> null");
        }
        let name = format!("{:<width$}", key_text(key));
        let marker = markers.get(key.as_str()).filter(|_| change != Change::NoOp);
        let head = match marker {
            Some(m) => format!("{name} = {} # {m}", value.head),
            None => format!("{name} = {}", value.head),
        };
        lines.push(Line { depth, change, text: head.into() });
        lines.extend(value.body);
    }
    if hidden > 0 {
        lines.push(Line { depth, change: Change::NoOp, text: unchanged(hidden, "attribute").into() });
    }
}

fn unchanged(n: usize, what: &str) -> String {
    format!("# ({n} unchanged {what}{} hidden)", if n == 1 { "" } else { "s" })
}

/// The value of a line at `depth` whose change is already classified.
fn value_change(depth: usize, change: Change, before: Option<&Value>, after: Option<&Value>) -> Rendered {
    match change {
        Change::Create => whole(depth, after.expect("created value"), Change::Create),
        Change::Delete => whole(depth, before.expect("deleted value"), Change::Delete),
        Change::NoOp => whole(depth, after.or(before).expect("a value"), Change::NoOp),
        Change::Update => update(depth, before.expect("old value"), after.expect("new value")),
    }
}

/// A value shown whole, every nested line with the same symbol.
fn whole(depth: usize, value: &Value, change: Change) -> Rendered {
    match value {
        Value::Sensitive(_) => Rendered::inline("(sensitive value)".into()),
        Value::Map(m) if !m.is_empty() => {
            let shown: Vec<(&String, &Value)> = m.iter().filter(|(_, v)| !v.is_null()).collect();
            let width = shown.iter().map(|(k, _)| key_text(k).chars().count()).max().unwrap_or(0);
            let mut body = Vec::new();
            for (k, v) in shown {
                let inner = whole(depth + 1, v, change);
                body.push(Line { depth: depth + 1, change, text: format!("{:<width$} = {}", key_text(k), inner.head).into() });
                body.extend(inner.body);
            }
            body.push(Line { depth, change: Change::NoOp, text: "}".into() });
            Rendered { head: "{".into(), body }
        }
        Value::List(items) if !items.is_empty() => {
            let mut body = Vec::new();
            for item in items {
                let mut inner = whole(depth + 1, item, change);
                inner.append(",");
                body.push(Line { depth: depth + 1, change, text: inner.head.into() });
                body.extend(inner.body);
            }
            body.push(Line { depth, change: Change::NoOp, text: "]".into() });
            Rendered { head: "[".into(), body }
        }
        Value::String(s) if s.contains('\n') => {
            let mut body: Vec<Line> =
                s.lines().map(|l| Line { depth: depth + 1, change: Change::NoOp, text: l.to_owned().into() }).collect();
            body.push(Line { depth, change: Change::NoOp, text: "EOT".into() });
            Rendered { head: "<<-EOT".into(), body }
        }
        other => Rendered::inline(super::render_value(other)),
    }
}

/// A value that changed: nested objects and lists diffed inside,
/// multi-line strings line by line, anything else `old -> new`.
fn update(depth: usize, before: &Value, after: &Value) -> Rendered {
    if before.is_sensitive() || after.is_sensitive() {
        return Rendered::inline("(sensitive value)".into());
    }
    if after.is_unknown() {
        let mut old = whole(depth, before, Change::Delete);
        old.append(" -> (known after apply)");
        return old;
    }
    match (before, after) {
        (Value::Map(b), Value::Map(a)) => {
            let mut body = Vec::new();
            object_body(&mut body, depth + 1, b, a, &Markers::new(), true, false);
            body.push(Line { depth, change: Change::NoOp, text: "}".into() });
            Rendered { head: "{".into(), body }
        }
        (Value::List(b), Value::List(a)) => list_update(depth, b, a),
        (Value::String(b), Value::String(a)) if b.contains('\n') || a.contains('\n') => {
            let mut body = Vec::new();
            for change in similar::TextDiff::from_lines(b.as_str(), a.as_str()).iter_all_changes() {
                let change_kind = match change.tag() {
                    similar::ChangeTag::Delete => Change::Delete,
                    similar::ChangeTag::Insert => Change::Create,
                    similar::ChangeTag::Equal => Change::NoOp,
                };
                let text = change.value().trim_end_matches('\n').trim_end_matches('\r').to_owned();
                body.push(Line { depth: depth + 1, change: change_kind, text: text.into() });
            }
            body.push(Line { depth, change: Change::NoOp, text: "EOT".into() });
            Rendered { head: "<<-EOT".into(), body }
        }
        (b, a) => Rendered::inline(format!("{} -> {}", super::render_value(b), super::render_value(a))),
    }
}

/// Pairs old and new elements along their longest common subsequence; in
/// each gap, objects are matched in order as updates (Terraform does the
/// same), other values are removed and added.
fn match_elements<'v>(before: &'v [Value], after: &'v [Value]) -> Vec<(Change, Option<&'v Value>, Option<&'v Value>)> {
    // Elements compared by their unmarked content; an element holding an
    // unknown never equals anything.
    let key = |side: &str, i: usize, v: &Value| {
        if v.contains_unknown() {
            format!("{side}{i}")
        } else {
            format!("={:?}", v.clone().deep_unmark())
        }
    };
    let old_keys: Vec<String> = before.iter().enumerate().map(|(i, v)| key("old", i, v)).collect();
    let new_keys: Vec<String> = after.iter().enumerate().map(|(i, v)| key("new", i, v)).collect();
    let mut out = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old_keys, &new_keys) {
        let (removed, added) = match op {
            similar::DiffOp::Equal { old_index, new_index, len } => {
                for (o, n) in before[old_index..old_index + len].iter().zip(&after[new_index..new_index + len]) {
                    let change = if o.is_sensitive() == n.is_sensitive() { Change::NoOp } else { Change::Update };
                    out.push((change, Some(o), Some(n)));
                }
                continue;
            }
            similar::DiffOp::Delete { old_index, old_len, .. } => (&before[old_index..old_index + old_len], &after[0..0]),
            similar::DiffOp::Insert { new_index, new_len, .. } => (&before[0..0], &after[new_index..new_index + new_len]),
            similar::DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                (&before[old_index..old_index + old_len], &after[new_index..new_index + new_len])
            }
        };
        let objects = |vs: &[Value]| vs.iter().all(|v| matches!(v.unmarked(), Value::Map(_)));
        let paired = if objects(removed) && objects(added) { removed.len().min(added.len()) } else { 0 };
        for (o, n) in removed[..paired].iter().zip(&added[..paired]) {
            out.push((Change::Update, Some(o), Some(n)));
        }
        out.extend(removed[paired..].iter().map(|o| (Change::Delete, Some(o), None)));
        out.extend(added[paired..].iter().map(|n| (Change::Create, None, Some(n))));
    }
    out
}

/// One element of a list diff.
struct Element {
    change: Change,
    rendered: Rendered,
}

/// A changed list, its elements matched by [`match_elements`].
fn list_update(depth: usize, before: &[Value], after: &[Value]) -> Rendered {
    let element_depth = depth + 1;
    let elements: Vec<Element> = match_elements(before, after)
        .into_iter()
        .map(|(change, o, n)| {
            Element { change, rendered: value_change(element_depth, change, o, n) }
        })
        .collect();
    // Lists of plain values keep one unchanged neighbour on each side of a
    // change for context, as order matters there; lists of objects hide
    // every unchanged element.
    let nested = before.iter().chain(after).any(|v| matches!(v.unmarked(), Value::Map(_) | Value::List(_)));
    let mut body = Vec::new();
    let mut pending: Vec<Element> = Vec::new();
    let mut show_next = false;
    let emit = |body: &mut Vec<Line>, mut e: Element| {
        e.rendered.append(",");
        body.push(Line { depth: element_depth, change: e.change, text: e.rendered.head.into() });
        body.extend(e.rendered.body);
    };
    for element in elements {
        if element.change == Change::NoOp && !show_next {
            pending.push(element);
            continue;
        }
        show_next = false;
        if !nested {
            if pending.len() > 1 {
                body.push(Line { depth: element_depth, change: Change::NoOp, text: unchanged(pending.len() - 1, "element").into() });
            }
            if let Some(last) = pending.pop() {
                emit(&mut body, last);
            }
            pending.clear();
            show_next = element.change != Change::NoOp;
        }
        emit(&mut body, element);
    }
    if !pending.is_empty() {
        body.push(Line { depth: element_depth, change: Change::NoOp, text: unchanged(pending.len(), "element").into() });
    }
    body.push(Line { depth, change: Change::NoOp, text: "]".into() });
    Rendered { head: "[".into(), body }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attribute lines, one `String` each, without indentation.
    fn attribute_lines(shell: &Shell, before: &Value, after: &Value, markers: &Markers, hide_unchanged: bool, schema: Option<&Block>) -> Vec<String> {
        let mut text = String::new();
        write_attribute_lines(&mut text, "", shell, before, after, markers, hide_unchanged, schema);
        text.lines().map(str::to_owned).collect()
    }

    fn lines(before: Value, after: Value) -> String {
        attribute_lines(&Shell::new(true, false), &before, &after, &Markers::new(), true, None).join("\n")
    }

    fn obj(entries: Vec<(&str, Value)>) -> Value {
        Value::object(entries)
    }

    #[test]
    fn a_changed_secret_inside_an_object_shows_no_value() {
        let before = obj(vec![("conn", obj(vec![("user", "admin".into()), ("password", Value::from("hunter2").into_sensitive())]))]);
        let after = obj(vec![("conn", obj(vec![("user", "admin".into()), ("password", Value::from("hunter3").into_sensitive())]))]);
        let text = lines(before, after);
        assert!(!text.contains("hunter"), "{text}");
        assert_eq!(text, "~ conn = {\n    ~ password = (sensitive value)\n      # (1 unchanged attribute hidden)\n  }");
    }

    #[test]
    fn a_secret_that_only_gains_its_mark_is_a_change_without_the_value() {
        let text = lines(obj(vec![("pin", "1234".into())]), obj(vec![("pin", Value::from("1234").into_sensitive())]));
        assert_eq!(text, "~ pin = (sensitive value)");
    }

    #[test]
    fn an_object_that_becomes_unknown_shows_what_goes() {
        let before = obj(vec![("out", obj(vec![("a", Value::from("x"))]))]);
        let after = obj(vec![("out", Value::Unknown)]);
        assert_eq!(lines(before, after), "~ out = {\n    - a = \"x\"\n  } -> (known after apply)");
    }

    #[test]
    fn list_context_keeps_one_neighbour_each_side() {
        let list = |items: &[&str]| Value::List(items.iter().map(|s| Value::from(*s)).collect());
        let before = obj(vec![("l", list(&["a", "b", "c", "d", "e", "f", "g"]))]);
        let after = obj(vec![("l", list(&["a", "b", "c", "X", "e", "f", "g"]))]);
        assert_eq!(
            lines(before, after),
            "~ l = [\n      # (2 unchanged elements hidden)\n      \"c\",\n    - \"d\",\n    + \"X\",\n      \"e\",\n      # (2 unchanged elements hidden)\n  ]"
        );
    }

    #[test]
    fn removed_attributes_say_null_and_created_strings_are_heredocs() {
        let before = obj(vec![("gone", "x".into()), ("kept", "k".into())]);
        let after = obj(vec![("kept", "k".into()), ("script", "one\ntwo\n".into())]);
        assert_eq!(lines(before, after), "- gone   = \"x\" -> null\n+ script = <<-EOT\n      one\n      two\n  EOT\n  # (1 unchanged attribute hidden)");
    }

    fn disks_schema() -> Block {
        use strata_provider::{Attribute, Disruption, Nesting, Type};
        let disk = Block::new("").attr("label", Attribute::required(Type::String)).attr("size", Attribute::optional(Type::Number));
        Block::new("").attr("name", Attribute::required(Type::String)).block("disk", Nesting::List, disk, Disruption::Live)
    }

    fn disk(label: &str, size: i64) -> Value {
        obj(vec![("label", label.into()), ("size", Value::Number(size.into()))])
    }

    #[test]
    fn nested_blocks_print_as_blocks_and_unchanged_ones_are_counted() {
        let schema = disks_schema();
        let before = obj(vec![("name", "vm".into()), ("disk", Value::List(vec![disk("a", 1), disk("b", 2), disk("c", 3)].into()))]);
        let after = obj(vec![("name", "vm".into()), ("disk", Value::List(vec![disk("a", 1), disk("b", 5), disk("c", 3), disk("d", 4)].into()))]);
        let text = attribute_lines(&Shell::new(true, false), &before, &after, &Markers::new(), true, Some(&schema)).join("\n");
        assert_eq!(
            text,
            "  name = \"vm\"\n\n~ disk {\n    ~ size  = 2 -> 5\n      # (1 unchanged attribute hidden)\n  }\n+ disk {\n    + label = \"d\"\n    + size  = 4\n  }\n\n  # (2 unchanged blocks hidden)"
        );
    }

    #[test]
    fn sensitive_blocks_are_not_unwrapped() {
        let schema = disks_schema();
        let before = obj(vec![("disk", Value::List(vec![disk("secret-label", 1)].into()).into_sensitive())]);
        let after = obj(vec![("disk", Value::List(vec![disk("secret-label", 2)].into()).into_sensitive())]);
        let text = attribute_lines(&Shell::new(true, false), &before, &after, &Markers::new(), true, Some(&schema)).join("\n");
        assert_eq!(text, "~ disk = (sensitive value)");
        let before = obj(vec![("disk", Value::List(vec![disk("secret-label", 1).into_sensitive()].into()))]);
        let after = obj(vec![("disk", Value::List(vec![disk("secret-label", 2).into_sensitive()].into()))]);
        let text = attribute_lines(&Shell::new(true, false), &before, &after, &Markers::new(), true, Some(&schema)).join("\n");
        assert!(!text.contains("secret-label"), "{text}");
    }
}
