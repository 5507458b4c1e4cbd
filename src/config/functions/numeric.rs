//! Numeric functions. Arithmetic stays in Terraform's 512-bit numbers; `log`
//! and `pow` go through `f64`, as Terraform computes them.

use super::{arity, integer, number, one, string, Args, Function, Result, Table};
use strata_provider::{Number, Value};

pub(super) const FUNCTIONS: Table = &[
    ("abs", Function::Pure(abs)),
    ("ceil", Function::Pure(ceil)),
    ("floor", Function::Pure(floor)),
    ("log", Function::Pure(log)),
    ("max", Function::Pure(max)),
    ("min", Function::Pure(min)),
    ("parseint", Function::Pure(parseint)),
    ("pow", Function::Pure(pow)),
    ("signum", Function::Pure(signum)),
];

fn abs(args: Args) -> Result {
    Ok(number(&one(args)?)?.abs().into())
}

fn ceil(args: Args) -> Result {
    Ok(number(&one(args)?)?.ceil().into())
}

fn floor(args: Args) -> Result {
    Ok(number(&one(args)?)?.floor().into())
}

/// An f64 result as Terraform keeps it: infinities are numbers, NaN is not.
fn float(n: f64) -> Result {
    if n.is_infinite() {
        return Ok(Value::Number(Number::infinity(n < 0.0)));
    }
    Number::from_f64(n).map(Value::Number).ok_or_else(|| "the result is not a number".to_owned())
}

fn log(args: Args) -> Result {
    let [x, base] = arity(args)?;
    let (x, base) = (number(&x)?.to_f64(), number(&base)?.to_f64());
    float(x.ln() / base.ln())
}

fn extreme(args: Args, pick: fn(Number, Number) -> Number) -> Result {
    let mut nums = args.iter().map(number);
    let first = nums.next().ok_or("must have at least one argument")??;
    nums.try_fold(first, |acc, n| Ok(pick(acc, n?))).map(Value::Number)
}

fn max(args: Args) -> Result {
    extreme(args, std::cmp::max)
}

fn min(args: Args) -> Result {
    extreme(args, std::cmp::min)
}

/// Like Go's `big.Int.SetString`: bases 2 to 62; letters are
/// case-insensitive up to base 36, above it `a`-`z` are 10-35 and `A`-`Z` 36-61.
fn parseint(args: Args) -> Result {
    let [s, base] = arity(args)?;
    let (s, base) = (string(&s)?, integer(&base)?);
    if !(2..=62).contains(&base) {
        return Err(format!("base must be a whole number between 2 and 62 inclusive, got {base}"));
    }
    let invalid = || format!("cannot parse {s:?} as a base {base} integer");
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    if digits.is_empty() {
        return Err(invalid());
    }
    let radix = Number::from_i64(base);
    let mut n = Number::from_i64(0);
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as i64 - '0' as i64,
            'a'..='z' => c as i64 - 'a' as i64 + 10,
            'A'..='Z' if base <= 36 => c as i64 - 'A' as i64 + 10,
            'A'..='Z' => c as i64 - 'A' as i64 + 36,
            _ => return Err(invalid()),
        };
        if d >= base {
            return Err(invalid());
        }
        n = n.mul(&radix).and_then(|n| n.add(&Number::from_i64(d))).map_err(|e| e.to_string())?;
    }
    Ok(Value::Number(if negative { n.neg() } else { n }))
}

/// In f64, as Terraform computes it (`pow(3, 40)` is not exact there either).
fn pow(args: Args) -> Result {
    let [x, y] = arity(args)?;
    let (x, y) = (number(&x)?, number(&y)?);
    float(x.to_f64().powf(y.to_f64()))
}

fn signum(args: Args) -> Result {
    let n = number(&one(args)?)?;
    Ok(Value::from(if n.is_zero() { 0 } else if n.is_negative() { -1 } else { 1 }))
}
