//! Encoding functions: base64, CSV, JSON, URL and YAML.

use super::{arity, one, str_value, string, Args, Function, Result, Table};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use strata_provider::Value;

pub(super) const FUNCTIONS: Table = &[
    ("base64decode", Function::Pure(base64decode)),
    ("base64encode", Function::Pure(base64encode)),
    ("base64gzip", Function::Pure(base64gzip)),
    ("csvdecode", Function::Pure(csvdecode)),
    ("jsondecode", Function::Pure(jsondecode)),
    ("jsonencode", Function::Pure(jsonencode)),
    ("textdecodebase64", Function::Pure(textdecodebase64)),
    ("textencodebase64", Function::Pure(textencodebase64)),
    ("urlencode", Function::Pure(urlencode)),
    ("yamldecode", Function::Pure(super::yaml::yamldecode)),
    ("yamlencode", Function::Pure(super::yaml::yamlencode)),
];

fn decode_base64(s: &str) -> Result<Vec<u8>> {
    STANDARD.decode(s).map_err(|e| format!("failed to decode base64 data {s:?}: {e}"))
}

fn base64decode(args: Args) -> Result {
    let bytes = decode_base64(&string(&one(args)?)?)?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the result of decoding the provided string is not valid UTF-8".into())
}

fn base64encode(args: Args) -> Result {
    str_value(STANDARD.encode(string(&one(args)?)?))
}

/// The string gzipped, then Base64-encoded. The compressed bytes are
/// flate2's, not Go's, so they may differ from Terraform's; both decompress
/// to the same text.
fn base64gzip(args: Args) -> Result {
    use std::io::Write as _;
    let text = string(&one(args)?)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).and_then(|()| gz.flush()).map_err(|e| format!("failed to compress: {e}"))?;
    str_value(STANDARD.encode(gz.finish().map_err(|e| format!("failed to compress: {e}"))?))
}

/// The first line names the attributes; every row becomes an object of strings.
fn csvdecode(args: Args) -> Result {
    let text = string(&one(args)?)?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers().map_err(|e| format!("CSV parse error: {e}"))?.iter().map(str::to_owned).collect();
    if headers.is_empty() || text.trim().is_empty() {
        return Err("missing header line".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = headers.iter().find(|h| !seen.insert(h.as_str())) {
        return Err(format!("duplicate column name {twice:?}"));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| match e.kind() {
            csv::ErrorKind::UnequalLengths { pos, .. } => {
                format!("CSV parse error on line {}: wrong number of fields", pos.as_ref().map_or(0, |p| p.line()))
            }
            _ => format!("CSV parse error: {e}"),
        })?;
        rows.push(Value::Map(headers.iter().cloned().zip(record.iter().map(Value::from)).collect()));
    }
    Ok(Value::list(rows))
}

fn json_number(n: &serde_json::Number) -> Value {
    Value::from_json_number(n)
}

fn from_json(j: serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => json_number(&n),
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(m) => Value::Map(m.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
    }
}

fn jsondecode(args: Args) -> Result {
    let s = string(&one(args)?)?;
    serde_json::from_str(&s).map(from_json).map_err(|e| format!("invalid JSON: {e}"))
}

/// A JSON string with `<`, `>` and `&` escaped, as Go (and Terraform) do.
fn json_string(s: &str) -> String {
    serde_json::to_string(s)
        .expect("strings serialize")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn write_json(v: &Value, out: &mut String) -> Result<()> {
    match v {
        Value::Null | Value::Unknown => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_infinite() => return Err("cannot serialize infinity as JSON".into()),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&json_string(s)),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(k));
                out.push(':');
                write_json(item, out)?;
            }
            out.push('}');
        }
        Value::Sensitive(inner) => write_json(inner, out)?,
    }
    Ok(())
}

/// Numbers are written exactly (no `f64` rounding).
fn jsonencode(args: Args) -> Result {
    let mut out = String::new();
    write_json(&one(args)?, &mut out)?;
    str_value(out)
}

/// The encodings Strata knows for the `text*base64` functions.
#[derive(Clone, Copy)]
enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Latin1,
    Ascii,
    /// Any other encoding encoding_rs has under its own name
    /// (`windows-1252`, `Shift_JIS`, `EUC-KR`, `KOI8-R`, ...).
    Other(&'static encoding_rs::Encoding),
}

/// Deviation: Terraform accepts every IANA name and alias Go knows; Strata
/// knows the ones above by their aliases and the rest (those the WHATWG
/// standard defines) by their names.
fn encoding(name: &str) -> Result<Encoding> {
    match name.to_ascii_uppercase().replace('_', "-").as_str() {
        "UTF-8" | "UTF8" => Ok(Encoding::Utf8),
        "UTF-16LE" => Ok(Encoding::Utf16Le),
        "UTF-16BE" => Ok(Encoding::Utf16Be),
        "ISO-8859-1" | "LATIN1" | "ISO8859-1" => Ok(Encoding::Latin1),
        "US-ASCII" | "ASCII" => Ok(Encoding::Ascii),
        _ => encoding_rs::Encoding::for_label(name.as_bytes())
            .filter(|e| e.name().eq_ignore_ascii_case(name))
            .map(Encoding::Other)
            .ok_or_else(|| format!("{name:?} is not a supported IANA encoding name or alias")),
    }
}

/// Bytes windows-1252 leaves undefined (WHATWG maps them to C1 controls;
/// Go, and so Terraform, refuses them).
const WINDOWS_1252_UNDEFINED: [u8; 5] = [0x81, 0x8d, 0x8f, 0x90, 0x9d];

fn textencodebase64(args: Args) -> Result {
    let [s, enc] = arity(args)?;
    let (s, name) = (string(&s)?, string(&enc)?);
    let unencodable = |c: char| format!("the given string contains characters that cannot be represented in {name}: {c:?}");
    let bytes: Vec<u8> = match encoding(&name)? {
        Encoding::Utf8 => s.into_bytes(),
        Encoding::Utf16Le => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        Encoding::Utf16Be => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        Encoding::Latin1 => s.chars().map(|c| u8::try_from(c).map_err(|_| unencodable(c))).collect::<Result<_>>()?,
        Encoding::Ascii => s.chars().map(|c| if c.is_ascii() { Ok(c as u8) } else { Err(unencodable(c)) }).collect::<Result<_>>()?,
        Encoding::Other(e) => {
            let (bytes, _, lossy) = e.encode(&s);
            if lossy {
                return Err(format!("the given string contains characters that cannot be represented in {name}"));
            }
            bytes.into_owned()
        }
    };
    str_value(STANDARD.encode(bytes))
}

fn textdecodebase64(args: Args) -> Result {
    let [s, enc] = arity(args)?;
    let (s, name) = (string(&s)?, string(&enc)?);
    let encoding = encoding(&name)?;
    let bytes = decode_base64(&s)?;
    let invalid = || format!("the given value is has an invalid {name} encoding");
    let units = |be: bool| -> Result<Vec<u16>> {
        if bytes.len() % 2 != 0 {
            return Err(invalid());
        }
        Ok(bytes.chunks(2).map(|c| if be { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) }).collect())
    };
    let text = match encoding {
        Encoding::Utf8 => String::from_utf8(bytes.clone()).map_err(|_| invalid())?,
        Encoding::Utf16Le => String::from_utf16(&units(false)?).map_err(|_| invalid())?,
        Encoding::Utf16Be => String::from_utf16(&units(true)?).map_err(|_| invalid())?,
        Encoding::Latin1 => bytes.iter().map(|&b| b as char).collect(),
        Encoding::Ascii if bytes.is_ascii() => bytes.iter().map(|&b| b as char).collect(),
        Encoding::Ascii => return Err(invalid()),
        Encoding::Other(e) => {
            let undefined = e == encoding_rs::WINDOWS_1252 && bytes.iter().any(|b| WINDOWS_1252_UNDEFINED.contains(b));
            match e.decode_without_bom_handling_and_without_replacement(&bytes) {
                Some(text) if !undefined => text.into_owned(),
                _ => return Err(format!("the given string contains symbols that are not defined for {name}")),
            }
        }
    };
    str_value(text)
}

/// Query-string escaping as Go's `url.QueryEscape`: spaces become `+`.
fn urlencode(args: Args) -> Result {
    const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    let s = string(&one(args)?)?;
    str_value(utf8_percent_encode(&s, QUERY).to_string().replace("%20", "+"))
}
