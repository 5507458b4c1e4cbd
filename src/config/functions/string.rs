//! String functions. Lengths, offsets and reversal count grapheme clusters
//! (user-perceived characters), as Terraform does.

use super::{arity, format, integer, list, one, split_args, str_value, string, Args, Function, Result, Table};
use regex::Regex;
use strata_provider::Value;
use unicode_segmentation::UnicodeSegmentation;

pub(super) const FUNCTIONS: Table = &[
    ("chomp", Function::Pure(chomp)),
    ("endswith", Function::Pure(endswith)),
    ("format", Function::Pure(format::format)),
    ("formatlist", Function::Pure(format::formatlist)),
    ("indent", Function::Pure(indent)),
    ("join", Function::Pure(join)),
    ("lower", Function::Pure(lower)),
    ("ltrimspace", Function::Pure(ltrimspace)),
    ("regex", Function::Pure(regex)),
    ("regexall", Function::Pure(regexall)),
    ("replace", Function::Pure(replace)),
    ("rtrimspace", Function::Pure(rtrimspace)),
    ("split", Function::Pure(split)),
    ("startswith", Function::Pure(startswith)),
    ("strcontains", Function::Pure(strcontains)),
    ("strrev", Function::Pure(strrev)),
    ("substr", Function::Pure(substr)),
    ("title", Function::Pure(title)),
    ("trim", Function::Pure(trim)),
    ("trimprefix", Function::Pure(trimprefix)),
    ("trimsuffix", Function::Pure(trimsuffix)),
    ("trimspace", Function::Pure(trimspace)),
    ("upper", Function::Pure(upper)),
];

fn unary(args: Args, f: impl FnOnce(&str) -> String) -> Result {
    str_value(f(&string(&one(args)?)?))
}

fn binary(args: Args) -> Result<(String, String)> {
    let [a, b] = arity(args)?;
    Ok((string(&a)?, string(&b)?))
}

/// Removes every trailing newline (`\n` or `\r\n`).
fn chomp(args: Args) -> Result {
    unary(args, |s| s.trim_end_matches(['\n', '\r']).to_owned())
}

fn endswith(args: Args) -> Result {
    let (s, suffix) = binary(args)?;
    Ok(Value::Bool(s.ends_with(&suffix)))
}

fn startswith(args: Args) -> Result {
    let (s, prefix) = binary(args)?;
    Ok(Value::Bool(s.starts_with(&prefix)))
}

fn strcontains(args: Args) -> Result {
    let (s, sub) = binary(args)?;
    Ok(Value::Bool(s.contains(&sub)))
}

/// Adds `n` spaces after every newline, so all lines but the first are indented.
fn indent(args: Args) -> Result {
    let [n, s] = arity(args)?;
    let n = integer(&n)?;
    let pad = " ".repeat(usize::try_from(n).map_err(|_| "the number of spaces must not be negative")?);
    str_value(string(&s)?.replace('\n', &format!("\n{pad}")))
}

fn join(args: Args) -> Result {
    let (sep, lists) = split_args(args, 1)?;
    if lists.is_empty() {
        return Err("at least one list is required".into());
    }
    let sep = string(&sep[0])?;
    let mut parts = Vec::new();
    for l in &lists {
        for item in list(l)? {
            if item.is_null() {
                return Err("element of the list is null; cannot concatenate null values".into());
            }
            parts.push(string(item)?);
        }
    }
    str_value(parts.join(&sep))
}

/// Case mapping as Go's `strings.ToLower`/`ToUpper`: character by
/// character, one character for one (so `upper("straße")` keeps its `ß` and
/// a final sigma stays `σ`), where Rust's string mapping is Unicode's full
/// one.
fn simple_case(c: char, upper: bool) -> char {
    let mut mapped: Vec<char> = if upper { c.to_uppercase().collect() } else { c.to_lowercase().collect() };
    match (mapped.len(), c) {
        (1, _) => mapped.remove(0),
        // The one lowercase mapping that is longer in full: İ is simply i.
        (_, '\u{130}') if !upper => 'i',
        _ => c,
    }
}

fn lower(args: Args) -> Result {
    unary(args, |s| s.chars().map(|c| simple_case(c, false)).collect())
}

fn upper(args: Args) -> Result {
    unary(args, |s| s.chars().map(|c| simple_case(c, true)).collect())
}

fn ltrimspace(args: Args) -> Result {
    unary(args, |s| s.trim_start().to_owned())
}

fn rtrimspace(args: Args) -> Result {
    unary(args, |s| s.trim_end().to_owned())
}

fn trimspace(args: Args) -> Result {
    unary(args, |s| s.trim().to_owned())
}

fn compile(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| format!("invalid regular expression pattern: {e}"))
}

/// The result of one match: the whole match without capture groups, a list
/// of the groups when unnamed, an object when named (mixing is an error).
fn captures(re: &Regex, caps: &regex::Captures) -> Result {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    let group = |i: usize| caps.get(i).map_or(Value::Null, |m| Value::from(m.as_str()));
    if names.is_empty() {
        return Ok(group(0));
    }
    match (names.iter().all(Option::is_some), names.iter().all(Option::is_none)) {
        (true, _) => Ok(Value::object(names.iter().enumerate().map(|(i, n)| (n.unwrap_or_default().to_owned(), group(i + 1))))),
        (_, true) => Ok(Value::tuple((1..=names.len()).map(group).collect())),
        _ => Err("invalid regular expression pattern: cannot mix both named and unnamed capture groups".into()),
    }
}

fn regex(args: Args) -> Result {
    let (pattern, s) = binary(args)?;
    let re = compile(&pattern)?;
    let caps = re.captures(&s).ok_or("pattern did not match any part of the given string")?;
    captures(&re, &caps)
}

fn regexall(args: Args) -> Result {
    let (pattern, s) = binary(args)?;
    let re = compile(&pattern)?;
    re.captures_iter(&s).map(|c| captures(&re, &c)).collect::<Result<_>>().map(Value::list)
}

/// A `substring` wrapped in slashes is a regular expression; `$1` and
/// `${name}` in the replacement refer to its groups.
fn replace(args: Args) -> Result {
    let [s, from, to] = arity(args)?;
    let (s, from, to) = (string(&s)?, string(&from)?, string(&to)?);
    match from.strip_prefix('/').and_then(|f| f.strip_suffix('/')) {
        Some(pattern) if from.len() > 1 => str_value(compile(pattern)?.replace_all(&s, to.as_str())),
        _ => str_value(s.replace(&from, &to)),
    }
}

fn split(args: Args) -> Result {
    let (sep, s) = binary(args)?;
    // As Go's strings.Split: an empty separator splits after every character.
    if sep.is_empty() {
        return Ok(Value::list(s.chars().map(|c| Value::from(c.to_string())).collect()));
    }
    if s.is_empty() {
        return Ok(Value::list(vec![Value::from("")]));
    }
    Ok(Value::list(s.split(sep.as_str()).map(Value::from).collect()))
}

fn strrev(args: Args) -> Result {
    unary(args, |s| s.graphemes(true).rev().collect())
}

/// A negative `offset` counts from the end; a negative `length` means "to
/// the end"; out-of-range parts are clipped, never an error.
fn substr(args: Args) -> Result {
    let [s, offset, length] = arity(args)?;
    let s = string(&s)?;
    let (offset, length) = (integer(&offset)?, integer(&length)?);
    let g: Vec<&str> = s.graphemes(true).collect();
    let len = g.len() as i64;
    let start = if offset < 0 { (len + offset).max(0) } else { offset };
    if start >= len {
        return str_value("");
    }
    let end = if length < 0 { len } else { (start + length).min(len) };
    str_value(g[start as usize..end as usize].concat())
}

/// Upper-cases the first letter of each word, as Go's `strings.Title`.
fn title(args: Args) -> Result {
    unary(args, |s| {
        let mut prev_sep = true;
        s.chars()
            .flat_map(|c| {
                let out: Vec<char> = if prev_sep { c.to_uppercase().collect() } else { vec![c] };
                prev_sep = is_separator(c);
                out
            })
            .collect()
    })
}

/// Go's word separators for `strings.Title`: ASCII other than letters,
/// digits and `_`; beyond ASCII, spaces only.
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        !(c.is_ascii_alphanumeric() || c == '_')
    } else {
        c.is_whitespace()
    }
}

/// Removes every character of `cutset` from both ends.
fn trim(args: Args) -> Result {
    let (s, cutset) = binary(args)?;
    let cut: Vec<char> = cutset.chars().collect();
    str_value(s.trim_matches(cut.as_slice()))
}

fn trimprefix(args: Args) -> Result {
    let (s, prefix) = binary(args)?;
    str_value(s.strip_prefix(prefix.as_str()).unwrap_or(&s))
}

fn trimsuffix(args: Args) -> Result {
    let (s, suffix) = binary(args)?;
    str_value(s.strip_suffix(suffix.as_str()).unwrap_or(&s))
}

/// The number of grapheme clusters, used by `length`.
pub(super) fn grapheme_count(s: &str) -> usize {
    s.graphemes(true).count()
}
