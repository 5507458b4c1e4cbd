//! `yamldecode` and `yamlencode` as Terraform has them (its go-cty-yaml, a
//! go-yaml fork): YAML 1.1 resolution of plain scalars (`yes`/`on`/`y` are
//! true, `0o17` octal, `0x1F` hex, `0777` decimal, timestamps become
//! RFC 3339 strings), merge keys `<<`, the core tags, and the emitter's
//! layout (double-quoted strings folded at 80 columns, literal blocks for
//! multi-line strings, `...` after a plain scalar document).
//!
//! The decoder works on yaml-rust2's parser events, which keep what
//! resolution needs and a value tree loses: each scalar's style (plain or
//! quoted), its tag, anchors and aliases.

use super::{one, str_value, string, Args, Result};
use std::collections::{BTreeMap, HashMap};
use strata_provider::{Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

const CORE: &str = "tag:yaml.org,2002:";

pub(super) fn yamldecode(args: Args) -> Result {
    let text = string(&one(args)?)?;
    let mut decoder = Decoder { parser: Parser::new_from_str(&text), anchors: HashMap::new() };
    decoder.document()
}

struct Decoder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    anchors: HashMap<usize, Value>,
}

/// A decoded node, and whether it was the plain scalar `<<` (a merge key).
struct Node {
    value: Value,
    merge: bool,
}

impl Decoder<'_> {
    fn next(&mut self) -> Result<(Event, Marker)> {
        self.parser.next_token().map_err(|e| format!("{e}"))
    }

    fn document(&mut self) -> Result {
        let at = |m: &Marker| format!("on line {}, column {}", m.line(), m.col() + 1);
        loop {
            match self.next()? {
                (Event::StreamStart, _) => continue,
                (Event::DocumentStart, _) => break,
                (_, m) => return Err(format!("{}: missing start of document", at(&m))),
            }
        }
        let (event, _) = self.next()?;
        let value = match event {
            Event::DocumentEnd => Value::Null,
            event => {
                let v = self.node(event)?.value;
                self.next()?;
                v
            }
        };
        match self.next()? {
            (Event::StreamEnd, _) => Ok(value),
            (_, m) => Err(format!("{}: unexpected extra content after value", at(&m))),
        }
    }

    fn remember(&mut self, anchor: usize, value: &Value) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
    }

    fn node(&mut self, event: Event) -> Result<Node> {
        let plain = |value| Node { value, merge: false };
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let merge = text == "<<" && style == TScalarStyle::Plain && tag.is_none();
                let value = scalar(text, style, tag.as_ref())?;
                self.remember(anchor, &value);
                Ok(Node { value, merge })
            }
            Event::SequenceStart(anchor, tag) => {
                collection_tag(tag.as_ref(), "sequence", "seq")?;
                let mut items = Vec::new();
                loop {
                    match self.next()?.0 {
                        Event::SequenceEnd => break,
                        event => items.push(self.node(event)?.value),
                    }
                }
                let value = Value::tuple(items);
                self.remember(anchor, &value);
                Ok(plain(value))
            }
            Event::MappingStart(anchor, tag) => {
                collection_tag(tag.as_ref(), "mapping", "map")?;
                let mut entries = BTreeMap::new();
                loop {
                    let key = match self.next()?.0 {
                        Event::MappingEnd => break,
                        event => self.node(event)?,
                    };
                    let event = self.next()?.0;
                    let value = self.node(event)?.value;
                    if key.merge {
                        match value {
                            Value::Map(m) => entries.extend(m.into_map()),
                            Value::List(_) => return Err("cannot merge tuple into a mapping".into()),
                            _ => return Err("map merge requires map as the value".into()),
                        }
                        continue;
                    }
                    let name = match key.value {
                        Value::Null => return Err("mapping key cannot be null".into()),
                        Value::List(_) | Value::Map(_) => return Err("only strings are allowed as mapping keys".into()),
                        k => k.to_template_string().unwrap_or_default(),
                    };
                    // A repeated key takes the last value, as in Terraform.
                    entries.insert(name, value);
                }
                let value = Value::Map(entries.into());
                self.remember(anchor, &value);
                Ok(plain(value))
            }
            Event::Alias(id) => self.anchors.get(&id).cloned().map(plain).ok_or_else(|| "unknown anchor referenced".to_owned()),
            other => Err(format!("unexpected YAML event {other:?}")),
        }
    }
}

/// Collections accept only their own core tag.
fn collection_tag(tag: Option<&Tag>, what: &str, own: &str) -> Result<()> {
    match tag {
        None => Ok(()),
        Some(t) if t.handle == CORE && t.suffix == own => Ok(()),
        Some(t) if t.handle == CORE => Err(format!("can't interpret {what} as {CORE}{}", t.suffix)),
        Some(t) => Err(format!("unsupported tag {:?}", format!("{}{}", t.handle, t.suffix))),
    }
}

fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Result {
    let plain = style == TScalarStyle::Plain;
    let Some(tag) = tag else {
        return if plain { resolve_plain(&text) } else { Ok(Value::String(text)) };
    };
    if tag.handle != CORE {
        return Err(format!("unsupported tag {:?}", format!("{}{}", tag.handle, tag.suffix)));
    }
    // A quoted scalar stays a string whatever its tag says, as in Terraform.
    if !plain && tag.suffix != "binary" {
        return Ok(Value::String(text));
    }
    let cannot = || format!("cannot parse {text:?} as {CORE}{}", tag.suffix);
    match tag.suffix.as_str() {
        "str" | "binary" => Ok(Value::String(text)),
        "null" => Ok(Value::Null),
        "bool" => resolve_plain(&text).ok().filter(|v| matches!(v, Value::Bool(_))).ok_or_else(cannot),
        "int" | "float" => match resolve_plain(&text) {
            Ok(v @ Value::Number(_)) => Ok(v),
            _ => Err(cannot()),
        },
        "timestamp" => timestamp(&text).map(Value::String).ok_or_else(cannot),
        "seq" => Err(format!("can't interpret scalar as {CORE}seq")),
        "map" => Err(format!("can't interpret scalar as {CORE}map")),
        other => Err(format!("unsupported tag {:?}", format!("!!{other}"))),
    }
}

/// YAML 1.1 resolution of a plain scalar, as go-cty-yaml does it.
fn resolve_plain(text: &str) -> Result {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Ok(Value::Number(Number::infinity(false))),
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Value::Number(Number::infinity(true))),
        ".nan" | ".NaN" | ".NAN" => return Err("floating point NaN is not supported".into()),
        _ => {}
    }
    if !text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
        return Ok(Value::String(text.to_owned()));
    }
    if let Some(t) = timestamp(text) {
        return Ok(Value::String(t));
    }
    if is_decimal(text) {
        let digits = text.strip_prefix('+').unwrap_or(text);
        let digits = match digits.strip_prefix('-') {
            Some(rest) => format!("-{}", pad_fraction(rest)),
            None => pad_fraction(digits),
        };
        return digits.parse::<Number>().map(Value::Number).map_err(|_| format!("cannot parse {text:?} as a number"));
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8)] {
        if let Some(digits) = text.strip_prefix(prefix).filter(|d| !d.is_empty() && d.chars().all(|c| c.is_digit(radix))) {
            return i64::from_str_radix(digits, radix)
                .map(Value::from)
                .map_err(|_| format!("cannot parse {text:?} as {CORE}int: the value is out of range"));
        }
    }
    Ok(Value::String(text.to_owned()))
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_decimal(text: &str) -> bool {
    let s = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |d: &str| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// `.5` → `0.5`, `5.` → `5.0`, so the number parser reads them.
fn pad_fraction(s: &str) -> String {
    let s = if s.starts_with('.') { format!("0{s}") } else { s.to_owned() };
    match s.find('.') {
        Some(i) if !s[i + 1..].starts_with(|c: char| c.is_ascii_digit()) => format!("{}.0{}", &s[..=i].trim_end_matches('.'), &s[i + 1..]),
        _ => s,
    }
}

/// The timestamp forms go-yaml accepts (`2001-12-14`, `2001-12-14T21:59:43.10-05:00`,
/// `2001-12-14 21:59:43.10`), as RFC 3339 with whole seconds.
fn timestamp(text: &str) -> Option<String> {
    use chrono::{FixedOffset, NaiveDate, NaiveTime, TimeZone};
    if !(text.len() >= 8 && text.as_bytes()[..4].iter().all(u8::is_ascii_digit) && text.as_bytes()[4] == b'-') {
        return None;
    }
    let num = |s: &str, max_len: usize| (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten();
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some((&text[i..i + 1], &text[i + 1..]))),
        None => (text, None),
    };
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (d.next()?, d.next()?, d.next()?);
    let date = NaiveDate::from_ymd_opt(num(y, 4)? as i32, num(m, 2)?, num(day, 2)?)?;
    let Some((sep, rest)) = rest else {
        return Some(format!("{}T00:00:00Z", date.format("%Y-%m-%d")));
    };
    // With `T` a zone is required; with a space there is none (UTC).
    let (clock, zone) = if sep == " " {
        (rest, None)
    } else {
        let i = rest.find(['Z', '+', '-'])?;
        (&rest[..i], Some(&rest[i..]))
    };
    let (clock, fraction) = clock.split_once('.').map_or((clock, None), |(c, f)| (c, Some(f)));
    if fraction.is_some_and(|f| num(f, 9).is_none()) {
        return None;
    }
    let mut c = clock.splitn(3, ':');
    let time = NaiveTime::from_hms_opt(num(c.next()?, 2)?, num(c.next()?, 2)?, num(c.next()?, 2)?)?;
    let offset = match zone {
        None | Some("Z") => 0,
        Some(z) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (h, m) = z[1..].split_once(':')?;
            let (h, m) = (num(h, 2)? as i32, num(m, 2)? as i32);
            if h.to_string().len() > 2 || h > 23 || m > 59 || z[1..].len() != 5 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let zone = FixedOffset::east_opt(offset)?;
    let at = zone.from_local_datetime(&date.and_time(time)).single()?;
    Some(if offset == 0 { at.format("%Y-%m-%dT%H:%M:%SZ").to_string() } else { at.format("%Y-%m-%dT%H:%M:%S%:z").to_string() })
}

// ---- yamlencode ----

/// The emitter's preferred line width: double-quoted strings fold at a
/// space once a line is past it.
const BEST_WIDTH: usize = 80;

pub(super) fn yamlencode(args: Args) -> Result {
    let v = one(args)?;
    let mut w = Writer { out: String::new(), column: 0 };
    match v.unmarked() {
        Value::Null | Value::Bool(_) | Value::Number(_) => {
            w.put(&plain_scalar(&v));
            w.put("\n...\n");
        }
        _ => {
            w.node(&v, 0, 2);
            w.newline_if_needed();
        }
    }
    str_value(w.out)
}

struct Writer {
    out: String,
    column: usize,
}

fn plain_scalar(v: &Value) -> String {
    match v.unmarked() {
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => "null".into(),
    }
}

impl Writer {
    fn put(&mut self, s: &str) {
        for c in s.chars() {
            self.out.push(c);
            self.column = if c == '\n' { 0 } else { self.column + 1 };
        }
    }

    fn newline_if_needed(&mut self) {
        if !self.out.ends_with('\n') {
            self.put("\n");
        }
    }

    fn indent_to(&mut self, indent: usize) {
        self.put(&" ".repeat(indent));
    }

    /// Writes `v` where the cursor is. `indent` is the column of the
    /// block the node is in; `scalar_indent` where a multi-line scalar's
    /// lines (or a folded string's continuation) start.
    fn node(&mut self, v: &Value, indent: usize, scalar_indent: usize) {
        match v.unmarked() {
            Value::List(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.indent_to(indent);
                    }
                    self.put("- ");
                    self.node(item, indent + 2, indent + 2);
                    self.newline_if_needed();
                }
            }
            Value::Map(m) if !m.is_empty() => {
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        self.indent_to(indent);
                    }
                    self.entry(k, item, indent);
                }
            }
            Value::List(_) => self.put("[]"),
            Value::Map(_) => self.put("{}"),
            Value::String(s) => self.string(s, scalar_indent, true),
            _ => self.put(&plain_scalar(v)),
        }
    }

    fn entry(&mut self, key: &str, item: &Value, indent: usize) {
        // A long or multi-line key is not a simple key: `? KEY` then `: VALUE`.
        if key.len() > 128 || key.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) {
            self.put("? ");
            self.string(key, indent + 2, true);
            self.newline_if_needed();
            self.indent_to(indent);
            self.put(":");
        } else {
            self.double_quoted(key, 0, false);
            self.put(":");
        }
        match item.unmarked() {
            Value::List(items) if !items.is_empty() => {
                self.put("\n");
                self.indent_to(indent);
                self.node(item, indent, indent + 2);
            }
            Value::Map(m) if !m.is_empty() => {
                self.put("\n");
                self.indent_to(indent + 2);
                self.node(item, indent + 2, indent + 4);
            }
            _ => {
                self.put(" ");
                self.node(item, indent, indent + 2);
                self.newline_if_needed();
            }
        }
    }

    /// A string: a literal block if it has a line feed and the emitter
    /// allows one, else double-quoted.
    fn string(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        if s.contains('\n') && block_allowed(s) {
            self.literal(s, indent);
        } else {
            self.double_quoted(s, indent, allow_breaks);
        }
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.put("|");
        if s.starts_with([' ', '\n']) {
            self.put("2");
        }
        let trailing_breaks = s.len() - s.trim_end_matches('\n').len();
        self.put(match (trailing_breaks, s.len()) {
            (0, _) => "-",
            (1, 1) => "+",
            (1, _) => "",
            _ => "+",
        });
        self.put("\n");
        let mut at_line_start = true;
        for c in s.chars() {
            if c == '\n' {
                self.put("\n");
                at_line_start = true;
            } else {
                if at_line_start {
                    self.indent_to(indent);
                    at_line_start = false;
                }
                self.out.push(c);
                self.column += 1;
            }
        }
    }

    /// go-yaml's double-quoted writer: escapes, and a fold at a space
    /// past the line width (a second space after it is escaped).
    fn double_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.put("\"");
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if let Some(escape) = escape(c) {
                self.put(&escape);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i < chars.len() - 1 {
                    self.put("\n");
                    self.indent_to(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.put("\\");
                    }
                } else {
                    self.put(" ");
                }
                spaces = true;
            } else {
                self.out.push(c);
                self.column += 1;
                spaces = false;
            }
        }
        self.put("\"");
    }
}

/// Whether go-yaml may write the string as a block scalar: no trailing
/// space, no space before a line break, no character it would escape.
fn block_allowed(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let special = chars.iter().any(|&c| c != '\n' && escape(c).is_some());
    let space_break = chars.windows(2).any(|w| w[0] == ' ' && w[1] == '\n');
    !special && !space_break && !s.ends_with(' ')
}

/// The escape go-yaml writes for `c` in a double-quoted string, if any.
fn escape(c: char) -> Option<String> {
    let named = match c {
        '\0' => "0",
        '\u{7}' => "a",
        '\u{8}' => "b",
        '\t' => "t",
        '\n' => "n",
        '\u{b}' => "v",
        '\u{c}' => "f",
        '\r' => "r",
        '\u{1b}' => "e",
        '"' => "\"",
        '\\' => "\\",
        '\u{85}' => "N",
        '\u{2028}' => "L",
        '\u{2029}' => "P",
        _ => "",
    };
    if !named.is_empty() {
        return Some(format!("\\{named}"));
    }
    let printable = matches!(c, ' '..='~') || matches!(c as u32, 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{FEFF}';
    if printable {
        return None;
    }
    Some(match c as u32 {
        n @ 0..=0xFF => format!("\\x{n:02X}"),
        n @ 0..=0xFFFF => format!("\\u{n:04X}"),
        n => format!("\\U{n:08X}"),
    })
}
