//! `format` and `formatlist`, with Terraform's verbs: `%v` (`%#v` for JSON),
//! `%t`, `%b %d %o %x %X`, `%e %E %f %g %G`, `%s %q`, `%%`; flags `+ - # 0`
//! and space; widths, precisions and explicit argument indexes (`%[2]s`).
//!
//! Deviation: floating-point verbs format through `f64`.
//!
//! Widths and precisions above [`MAX_WIDTH`] are an error (Go's `fmt` gives
//! up at the same size with `%!(BADWIDTH)`): `%99999999999999d` would
//! otherwise ask for terabytes.

use super::{split_args, string, Args, Result};
use strata_provider::Value;

pub(super) fn format(args: Args) -> Result {
    let (spec, args) = split_args(args, 1)?;
    Ok(Value::String(render(&string(&spec[0])?, &args)?))
}

/// Formats once per element of the list arguments; other arguments repeat.
pub(super) fn formatlist(args: Args) -> Result {
    let (spec, args) = split_args(args, 1)?;
    let spec = string(&spec[0])?;
    let mut rows: Option<(usize, usize)> = None;
    for (i, a) in args.iter().enumerate() {
        if let Some(items) = a.as_list() {
            match rows {
                Some((n, j)) if n != items.len() => {
                    return Err(format!(
                        "argument {} has length {}, which is inconsistent with argument {} of length {n}",
                        i + 2,
                        items.len(),
                        j + 2
                    ))
                }
                _ => rows = Some((items.len(), i)),
            }
        }
    }
    let n = rows.map_or(1, |(n, _)| n);
    (0..n)
        .map(|row| {
            let row_args: Vec<Value> =
                args.iter().map(|a| a.as_list().map_or_else(|| a.clone(), |items| items[row].clone())).collect();
            render(&spec, &row_args).map(Value::String)
        })
        .collect::<Result<_>>()
        .map(Value::list)
}

/// The largest width or precision a verb may ask for, as in Go's `fmt`.
pub const MAX_WIDTH: usize = 1_000_000;

/// An `f64` has at most 767 significant decimal digits and 1074 digits after
/// the point; digits asked for beyond that are zeros, added as text so the
/// standard formatter (which refuses precisions above `u16::MAX`) is never
/// asked for them.
const F64_DIGITS: usize = 1100;

#[derive(Default)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

fn render(spec: &str, args: &[Value]) -> Result<String> {
    let mut out = String::new();
    let chars: Vec<char> = spec.chars().collect();
    let (mut i, mut next_arg, mut max_used) = (0, 0usize, 0usize);
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let start = i - 1;
        let mut s = Spec::default();
        while let Some(&f) = chars.get(i) {
            match f {
                '+' => s.plus = true,
                '-' => s.minus = true,
                '#' => s.sharp = true,
                '0' => s.zero = true,
                ' ' => s.space = true,
                _ => break,
            }
            i += 1;
        }
        if chars.get(i) == Some(&'[') {
            let close = chars[i..].iter().position(|&c| c == ']').ok_or("unterminated argument index")? + i;
            let n: usize = chars[i + 1..close].iter().collect::<String>().parse().map_err(|_| "invalid argument index")?;
            if n == 0 {
                return Err("argument indexes start at 1".into());
            }
            next_arg = n - 1;
            i = close + 1;
        }
        s.width = digits(&chars, &mut i).map_err(|n| format!("width {n} at offset {start} is too large (at most {MAX_WIDTH})"))?;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let precision = digits(&chars, &mut i).map_err(|n| format!("precision {n} at offset {start} is too large (at most {MAX_WIDTH})"))?;
            s.precision = Some(precision.unwrap_or(0));
        }
        let verb = *chars.get(i).ok_or_else(|| format!("format string ends in the middle of a verb at offset {start}"))?;
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.get(next_arg).ok_or_else(|| {
            format!("not enough arguments for \"%{verb}\" at {start}: need index {} but have {} total", next_arg + 1, args.len())
        })?;
        next_arg += 1;
        max_used = max_used.max(next_arg);
        let text = verb_text(verb, &s, arg).map_err(|e| format!("unsupported value for \"%{verb}\" at {start}: {e}"))?;
        out.push_str(&pad(text, &s, verb));
    }
    if max_used < args.len() {
        return Err(format!("too many arguments; only {max_used} used by format string"));
    }
    Ok(out)
}

/// A width or precision; `Err` with the digits as written when it is above
/// [`MAX_WIDTH`].
fn digits(chars: &[char], i: &mut usize) -> std::result::Result<Option<usize>, String> {
    let start = *i;
    while chars.get(*i).is_some_and(char::is_ascii_digit) {
        *i += 1;
    }
    if start == *i {
        return Ok(None);
    }
    let text: String = chars[start..*i].iter().collect();
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_WIDTH => Ok(Some(n)),
        _ => Err(text),
    }
}

fn verb_text(verb: char, s: &Spec, arg: &Value) -> Result<String> {
    if arg.is_null() && verb != 'v' {
        return Err("null value cannot be formatted".into());
    }
    match verb {
        'v' if s.sharp => Ok(arg.to_redacted_json().to_string()),
        'v' => Ok(match arg {
            Value::Null => "null".into(),
            Value::List(_) | Value::Map(_) => arg.to_redacted_json().to_string(),
            _ => arg.to_template_string().unwrap_or_default(),
        }),
        't' => match arg {
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err("bool required".into()),
        },
        's' => {
            let text = arg.to_template_string().ok_or("string required")?;
            Ok(match s.precision {
                Some(p) => text.chars().take(p).collect(),
                None => text,
            })
        }
        'q' => Ok(serde_json::to_string(&arg.to_template_string().ok_or("string required")?).expect("strings serialize")),
        'b' | 'd' | 'o' | 'x' | 'X' => {
            let n = super::number(arg).map_err(|_| "number required".to_owned())?;
            if !n.is_integer() {
                return Err("number must be a whole number".into());
            }
            let i: i128 = n.to_string().parse().map_err(|_| "number is too large")?;
            let body = match verb {
                'b' => format!("{:b}", i.unsigned_abs()),
                'o' => format!("{:o}", i.unsigned_abs()),
                'x' => format!("{:x}", i.unsigned_abs()),
                'X' => format!("{:X}", i.unsigned_abs()),
                _ => i.unsigned_abs().to_string(),
            };
            Ok(signed(i < 0, s, body))
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let f = super::number(arg).map_err(|_| "number required".to_owned())?.to_f64();
            let body = match verb {
                'e' | 'E' => exp_form(f.abs(), s.precision.unwrap_or(6)),
                'f' | 'F' => fixed(f.abs(), s.precision.unwrap_or(6)),
                _ => general(f.abs(), s.precision),
            };
            let body = if verb.is_ascii_uppercase() { body.to_uppercase() } else { body };
            Ok(signed(f.is_sign_negative() && f != 0.0, s, body))
        }
        other => Err(format!("unrecognized format verb %{other}")),
    }
}

fn signed(negative: bool, s: &Spec, body: String) -> String {
    let sign = if negative {
        "-"
    } else if s.plus {
        "+"
    } else if s.space {
        " "
    } else {
        ""
    };
    format!("{sign}{body}")
}

/// `%f`: `precision` digits after the point.
fn fixed(f: f64, precision: usize) -> String {
    let exact = precision.min(F64_DIGITS);
    let mut text = format!("{f:.exact$}");
    text.extend(std::iter::repeat_n('0', precision - exact));
    text
}

/// Go's `%e`: `d.dddddde±dd`.
fn exp_form(f: f64, precision: usize) -> String {
    let exact = precision.min(F64_DIGITS);
    let raw = format!("{f:.exact$e}");
    let (mantissa, exp) = raw.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let zeros = "0".repeat(precision - exact);
    format!("{mantissa}{zeros}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Go's `%g`: the shortest representation, in exponent form for large or
/// small exponents; trailing zeros removed.
fn general(f: f64, precision: Option<usize>) -> String {
    // Trailing zeros are removed and an f64's exponent stays below 400, so
    // digits past F64_DIGITS change nothing.
    let precision = precision.map(|p| p.min(F64_DIGITS));
    let sci = match precision {
        Some(p) => format!("{:.*e}", p.max(1) - 1, f),
        None => format!("{f:e}"),
    };
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let limit = precision.map_or(6, |p| p.max(1) as i32);
    if exp < -4 || exp >= limit {
        let mantissa = strip_zeros(mantissa);
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    match precision {
        None => format!("{f}"),
        Some(p) => {
            let decimals = (p.max(1) as i32 - 1 - exp).max(0) as usize;
            strip_zeros(&format!("{f:.decimals$}")).to_owned()
        }
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn pad(text: String, s: &Spec, verb: char) -> String {
    let Some(width) = s.width else { return text };
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = width - len;
    if s.minus {
        return format!("{text}{}", " ".repeat(fill));
    }
    if s.zero && "bdoxXeEfFgG".contains(verb) {
        let sign_len = text.starts_with(['-', '+', ' ']) as usize;
        return format!("{}{}{}", &text[..sign_len], "0".repeat(fill), &text[sign_len..]);
    }
    format!("{}{text}", " ".repeat(fill))
}
