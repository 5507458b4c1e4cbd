//! Date and time functions on RFC 3339 timestamps.

use super::{arity, str_value, string, Args, Function, FunctionContext, Result, Table};
use chrono::{DateTime, Datelike, FixedOffset, TimeDelta, Timelike, Utc};
use strata_provider::Value;

pub(super) const FUNCTIONS: Table = &[
    ("formatdate", Function::Pure(formatdate)),
    ("timeadd", Function::Pure(timeadd)),
    ("timecmp", Function::Pure(timecmp)),
    ("plantimestamp", Function::Raw(plantimestamp)),
    ("timestamp", Function::Raw(timestamp)),
];

fn parse(s: &str) -> Result<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).map_err(|e| format!("not a valid RFC3339 timestamp: {s:?} ({e})"))
}

/// RFC 3339 as Go writes it: whole seconds, `Z` for UTC.
fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    let offset = t.offset().local_minus_utc();
    let zone = if offset == 0 {
        "Z".to_owned()
    } else {
        format!("{}{:02}:{:02}", if offset < 0 { '-' } else { '+' }, offset.abs() / 3600, offset.abs() % 3600 / 60)
    };
    format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// Unknown during plan; the current time during apply.
fn timestamp(args: Args, cx: &FunctionContext) -> Result {
    arity::<0>(args)?;
    if !cx.apply {
        return Ok(Value::Unknown);
    }
    str_value(rfc3339(&Utc::now().fixed_offset()))
}

/// The time the plan was made, known while planning (unlike `timestamp`).
/// Deviation: Strata takes it once per run (the first call), so applying a
/// saved plan gives the time of the apply, not of the plan.
fn plantimestamp(args: Args, _: &FunctionContext) -> Result {
    static PLAN_TIME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    arity::<0>(args)?;
    str_value(PLAN_TIME.get_or_init(|| rfc3339(&Utc::now().fixed_offset())).clone())
}

/// A Go duration: `1h30m`, `-10m`, `1.5h`, `300ms`, `2us`, `10ns`.
fn duration(s: &str) -> Result<TimeDelta> {
    let invalid = || format!("invalid duration {s:?}");
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(TimeDelta::zero());
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut nanos: i128 = 0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit in duration {s:?}")),
            other => return Err(format!("unknown unit {other:?} in duration {s:?}")),
        };
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        let mut part = whole * scale;
        let mut unit_scale = scale;
        for d in frac.chars() {
            unit_scale /= 10;
            part += d.to_digit(10).ok_or_else(invalid)? as i128 * unit_scale;
        }
        nanos += part;
        rest = tail;
    }
    let nanos = i64::try_from(if negative { -nanos } else { nanos }).map_err(|_| invalid())?;
    Ok(TimeDelta::nanoseconds(nanos))
}

fn timeadd(args: Args) -> Result {
    let [t, d] = arity(args)?;
    let t = parse(&string(&t)?)?;
    let d = duration(&string(&d)?)?;
    let sum = t.checked_add_signed(d).ok_or("the resulting time is out of range")?;
    str_value(rfc3339(&sum))
}

fn timecmp(args: Args) -> Result {
    let [a, b] = arity(args)?;
    let (a, b) = (parse(&string(&a)?)?, parse(&string(&b)?)?);
    Ok(Value::from(a.cmp(&b) as i64))
}

const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Terraform's format sequences (`YYYY`, `MMM`, `DD`, `EEEE`, `hh`, `mm`,
/// `ss`, `aa`, `ZZZ`, ...), literal text in single quotes (`''` for a quote);
/// other letters are an error.
fn formatdate(args: Args) -> Result {
    let [spec, t] = arity(args)?;
    let (spec, t) = (string(&spec)?, parse(&string(&t)?)?);
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (None, _) => return Err("unterminated literal '".into()),
                    (Some('\''), Some('\'')) => {
                        out.push('\'');
                        i += 2;
                    }
                    (Some('\''), _) => break,
                    (Some(&c), _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let seq: String = chars[i..i + run].iter().collect();
        out.push_str(&date_part(&seq, &t).ok_or_else(|| format!("invalid date format verb {seq:?}"))?);
        i += run;
    }
    str_value(out)
}

fn date_part(seq: &str, t: &DateTime<FixedOffset>) -> Option<String> {
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let offset = t.offset().local_minus_utc();
    let (sign, oh, om) = (if offset < 0 { '-' } else { '+' }, offset.abs() / 3600, offset.abs() % 3600 / 60);
    Some(match seq {
        "YYYY" => format!("{:04}", t.year()),
        "YY" => format!("{:02}", t.year() % 100),
        "MMMM" => MONTHS[t.month0() as usize].to_owned(),
        "MMM" => MONTHS[t.month0() as usize][..3].to_owned(),
        "MM" => format!("{:02}", t.month()),
        "M" => t.month().to_string(),
        "DD" => format!("{:02}", t.day()),
        "D" => t.day().to_string(),
        "EEEE" => DAYS[t.weekday().num_days_from_monday() as usize].to_owned(),
        "EEE" => DAYS[t.weekday().num_days_from_monday() as usize][..3].to_owned(),
        "hh" => format!("{:02}", t.hour()),
        "h" => t.hour().to_string(),
        "HH" => format!("{hour12:02}"),
        "H" => hour12.to_string(),
        "AA" => (if t.hour() < 12 { "AM" } else { "PM" }).to_owned(),
        "aa" => (if t.hour() < 12 { "am" } else { "pm" }).to_owned(),
        "mm" => format!("{:02}", t.minute()),
        "m" => t.minute().to_string(),
        "ss" => format!("{:02}", t.second()),
        "s" => t.second().to_string(),
        "ZZZZZ" => format!("{sign}{oh:02}:{om:02}"),
        "ZZZZ" => format!("{sign}{oh:02}{om:02}"),
        "ZZZ" if offset == 0 => "UTC".to_owned(),
        "ZZZ" => format!("{sign}{oh:02}{om:02}"),
        "Z" if offset == 0 => "Z".to_owned(),
        "Z" => format!("{sign}{oh:02}:{om:02}"),
        _ => return None,
    })
}
