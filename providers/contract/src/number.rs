//! Numbers exactly as Terraform has them: binary floating point with a
//! 512-bit mantissa (cty's `big.Float`, rounded to nearest even), an exponent
//! without practical bound, and the two infinities. So `1e400` and
//! `1e-400` are numbers, integers of up to 154 digits are exact, `1/3` has
//! 154 significant digits, `0.1 + 0.2 == 0.3`, and every value prints as the
//! shortest decimal that reads back to it, as Go's `Text('f', -1)` prints it.
//!
//! Almost every number of a configuration or a state is a small integer
//! (a port, a count, a size), and values are most of the memory of a large
//! plan: such integers are stored inline as an `i64`, without allocating,
//! and only other numbers carry a boxed big mantissa. A `Number` is 16
//! bytes, so a `Value` is 24 (a string's size).

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, ToPrimitive, Zero};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Mantissa bits of every number: cty parses and computes at 512 bits.
const PRECISION: u64 = 512;

/// Decimal exponents beyond this are refused when parsing, so that a
/// literal like `1e999999999` cannot make the parser compute a number with
/// billions of digits (Terraform's own limit is its memory).
const MAX_DECIMAL_EXPONENT: i64 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number(Repr);

/// Canonical, so that the derived equality and hash are numeric equality:
/// every integer that fits an `i64` (zero included, which has no sign) is
/// `Small`, and only other finite numbers are `Big`, with an odd mantissa.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    Small(i64),
    /// Boxed so that the common case stays two words.
    Big(Box<Finite>),
    Infinite { negative: bool },
}

/// `(-1)^negative · mantissa · 2^exponent`, mantissa odd and at most 512
/// bits, and not an integer that fits an `i64`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Finite {
    negative: bool,
    mantissa: BigUint,
    exponent: i64,
}

const _: () = assert!(std::mem::size_of::<Number>() == 16);

/// An operation without a numeric result, worded as Terraform words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberError(pub &'static str);

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for NumberError {}

impl Number {
    pub const fn zero() -> Number {
        Number(Repr::Small(0))
    }

    /// `±mantissa · 2^exponent` in its canonical form; the mantissa is
    /// already odd (or zero) and at most 512 bits.
    fn canonical(negative: bool, mantissa: BigUint, exponent: i64) -> Number {
        if mantissa.is_zero() {
            return Number::zero();
        }
        // Both at most 64 bits wide, so the shift cannot overflow.
        if exponent >= 0 && exponent as u64 + mantissa.bits() <= 64 {
            let magnitude = mantissa.to_u64().unwrap_or(0) << exponent;
            let small = if negative { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() };
            if let Some(n) = small {
                return Number(Repr::Small(n));
            }
        }
        Number(Repr::Big(Box::new(Finite { negative, mantissa, exponent })))
    }

    pub fn infinity(negative: bool) -> Number {
        Number(Repr::Infinite { negative })
    }

    /// Rounds `±mantissa · 2^exponent` to 512 bits, nearest even; `sticky`
    /// says that nonzero bits below the mantissa were already cut off.
    fn round(negative: bool, mut mantissa: BigUint, mut exponent: i64, sticky: bool) -> Number {
        if mantissa.is_zero() {
            return Number::zero();
        }
        let bits = mantissa.bits();
        if bits > PRECISION {
            let cut = bits - PRECISION;
            let rest = &mantissa & ((BigUint::one() << cut) - 1u32);
            let half = BigUint::one() << (cut - 1);
            mantissa >>= cut;
            exponent += cut as i64;
            let up = match rest.cmp(&half) {
                Ordering::Greater => true,
                Ordering::Equal => sticky || mantissa.is_odd(),
                Ordering::Less => false,
            };
            if up {
                mantissa += 1u32;
            }
        }
        let zeros = mantissa.trailing_zeros().unwrap_or(0);
        Number::canonical(negative, mantissa >> zeros, exponent + zeros as i64)
    }

    /// `±numerator / denominator`, rounded once.
    fn from_ratio(negative: bool, numerator: BigUint, denominator: &BigUint) -> Number {
        if numerator.is_zero() {
            return Number::zero();
        }
        // Scale so that the quotient has at least PRECISION + 2 bits.
        let shift = (PRECISION + 2) as i64 + denominator.bits() as i64 - numerator.bits() as i64;
        let (quotient, remainder) = if shift >= 0 {
            (numerator << shift as u64).div_rem(denominator)
        } else {
            numerator.div_rem(&(denominator << (-shift) as u64))
        };
        Number::round(negative, quotient, -shift, !remainder.is_zero())
    }

    pub fn from_f64(n: f64) -> Option<Number> {
        // Through the shortest decimal text of the float, so that a value
        // computed in f64 (`pow`, `log`) reads as Terraform prints it.
        if !n.is_finite() {
            return None;
        }
        format!("{n:e}").parse().ok()
    }

    pub const fn from_i64(n: i64) -> Number {
        Number(Repr::Small(n))
    }

    /// The sign, odd mantissa (zero for zero) and exponent of a finite
    /// number; a small integer's mantissa is built on the way.
    fn finite(&self) -> Option<(bool, Cow<'_, BigUint>, i64)> {
        match &self.0 {
            Repr::Small(0) => Some((false, Cow::Owned(BigUint::ZERO), 0)),
            Repr::Small(n) => {
                let magnitude = n.unsigned_abs();
                let zeros = magnitude.trailing_zeros();
                Some((*n < 0, Cow::Owned(BigUint::from(magnitude >> zeros)), zeros as i64))
            }
            Repr::Big(f) => Some((f.negative, Cow::Borrowed(&f.mantissa), f.exponent)),
            Repr::Infinite { .. } => None,
        }
    }

    fn small(&self) -> Option<i64> {
        match self.0 {
            Repr::Small(n) => Some(n),
            _ => None,
        }
    }

    pub fn to_f64(&self) -> f64 {
        if let Some(n) = self.small() {
            // Rounded to nearest, as the general path below rounds.
            return n as f64;
        }
        let Some((negative, mantissa, exponent)) = self.finite() else {
            return if self.is_negative() { f64::NEG_INFINITY } else { f64::INFINITY };
        };
        // The top 64 bits (rounding twice is below f64's resolution here).
        let drop = mantissa.bits().saturating_sub(64);
        let top = (&*mantissa >> drop).to_u64().unwrap_or(u64::MAX) as f64;
        let mut scale = exponent.saturating_add(drop as i64);
        let mut f = top;
        while scale != 0 && f != 0.0 && f.is_finite() {
            let step = scale.clamp(-1000, 1000);
            f *= 2f64.powi(step as i32);
            scale -= step;
        }
        if negative {
            -f
        } else {
            f
        }
    }

    /// The value as an integer, if it is one and fits.
    pub fn to_i64(&self) -> Option<i64> {
        // Every integer that fits is small (see `Repr`).
        self.small()
    }

    /// The number as JSON, with every digit; `None` for an infinity.
    pub fn to_json(&self) -> Option<serde_json::Number> {
        if self.is_infinite() {
            return None;
        }
        self.to_string().parse().ok()
    }

    pub fn is_integer(&self) -> bool {
        match &self.0 {
            Repr::Small(_) => true,
            Repr::Big(f) => f.exponent >= 0,
            Repr::Infinite { .. } => false,
        }
    }

    pub fn is_zero(&self) -> bool {
        matches!(self.0, Repr::Small(0))
    }

    pub fn is_infinite(&self) -> bool {
        matches!(self.0, Repr::Infinite { .. })
    }

    pub fn is_negative(&self) -> bool {
        match &self.0 {
            Repr::Small(n) => *n < 0,
            Repr::Big(f) => f.negative,
            Repr::Infinite { negative } => *negative,
        }
    }

    pub fn add(&self, o: &Number) -> Result<Number, NumberError> {
        if let Some(sum) = self.small().zip(o.small()).and_then(|(a, b)| a.checked_add(b)) {
            return Ok(Number(Repr::Small(sum)));
        }
        match (self.finite(), o.finite()) {
            (Some((na, a, ea)), Some((nb, b, eb))) => Ok(add_finite((na, &a, ea), (nb, &b, eb))),
            (None, None) if self.is_negative() != o.is_negative() => {
                Err(NumberError("can't subtract infinity from itself"))
            }
            (None, _) => Ok(self.clone()),
            (_, None) => Ok(o.clone()),
        }
    }

    pub fn sub(&self, o: &Number) -> Result<Number, NumberError> {
        self.add(&o.neg())
    }

    pub fn mul(&self, o: &Number) -> Result<Number, NumberError> {
        if let Some(product) = self.small().zip(o.small()).and_then(|(a, b)| a.checked_mul(b)) {
            return Ok(Number(Repr::Small(product)));
        }
        let negative = self.is_negative() != o.is_negative();
        match (self.finite(), o.finite()) {
            (Some((_, a, ea)), Some((_, b, eb))) => Ok(Number::round(negative, &*a * &*b, ea + eb, false)),
            _ if self.is_zero() || o.is_zero() => Err(NumberError("can't multiply zero by infinity")),
            _ => Ok(Number::infinity(negative)),
        }
    }

    /// Division as Terraform's: a nonzero number divided by zero is an
    /// infinity; zero by zero and infinity by infinity are errors.
    pub fn div(&self, o: &Number) -> Result<Number, NumberError> {
        const NAN: NumberError = NumberError("can't divide zero by zero or infinity by infinity");
        let negative = self.is_negative() != o.is_negative();
        match (self.finite(), o.finite()) {
            _ if self.is_zero() && o.is_zero() => Err(NAN),
            (None, None) => Err(NAN),
            (Some(_), _) if o.is_zero() => Ok(Number::infinity(negative)),
            (None, Some(_)) => Ok(Number::infinity(negative)),
            (Some(_), None) => Ok(Number::zero()),
            (Some((_, a, ea)), Some((_, b, eb))) => {
                // a·2^ea / b·2^eb = (a / b) · 2^(ea-eb)
                let q = Number::from_ratio(negative, a.into_owned(), &b);
                Ok(q.scale_by_power_of_two(ea - eb))
            }
        }
    }

    /// Remainder as cty computes it: `a - b · trunc(a / b)`, so it has the
    /// sign of `a`, and `a % 0` is `a`.
    pub fn rem(&self, o: &Number) -> Result<Number, NumberError> {
        if self.is_infinite() || o.is_infinite() {
            return Err(NumberError("can't use modulo with zero and infinity"));
        }
        if o.is_zero() {
            return Ok(self.clone());
        }
        // Rust's `%` truncates too; only `i64::MIN % -1` overflows.
        if let Some(r) = self.small().zip(o.small()).and_then(|(a, b)| a.checked_rem(b)) {
            return Ok(Number(Repr::Small(r)));
        }
        // Exactly, then rounded once (cty rounds the quotient first, which
        // only differs when it has more than 512 integer bits).
        let quotient = self.div(o)?.trunc();
        self.sub(&quotient.mul(o)?)
    }

    /// Scaling can make an integer of a fraction or the other way, so the
    /// result is canonicalised again.
    fn scale_by_power_of_two(self, by: i64) -> Number {
        match self.finite() {
            Some((negative, mantissa, exponent)) => Number::canonical(negative, mantissa.into_owned(), exponent + by),
            None => self,
        }
    }

    pub fn neg(&self) -> Number {
        match &self.0 {
            Repr::Small(n) => match n.checked_neg() {
                Some(m) => Number(Repr::Small(m)),
                // -i64::MIN = 2^63 leaves the small integers.
                None => Number::canonical(false, BigUint::one(), 63),
            },
            // And 2^63 negated enters them.
            Repr::Big(f) => Number::canonical(!f.negative, f.mantissa.clone(), f.exponent),
            Repr::Infinite { negative } => Number::infinity(!negative),
        }
    }

    pub fn abs(&self) -> Number {
        if self.is_negative() {
            self.neg()
        } else {
            self.clone()
        }
    }

    fn to_integer(&self, away_from_zero: bool) -> Number {
        match self.finite() {
            Some((negative, mantissa, exponent)) if exponent < 0 => {
                // The mantissa is odd, so a negative exponent means a fraction.
                let mut whole = &*mantissa >> (-exponent) as u64;
                if away_from_zero {
                    whole += 1u32;
                }
                Number::round(negative, whole, 0, false)
            }
            _ => self.clone(),
        }
    }

    pub fn floor(&self) -> Number {
        self.to_integer(self.is_negative())
    }
    pub fn ceil(&self) -> Number {
        self.to_integer(!self.is_negative())
    }
    pub fn trunc(&self) -> Number {
        self.to_integer(false)
    }

    pub fn cmp_num(&self, o: &Number) -> Ordering {
        let (a, b) = match (&self.0, &o.0) {
            (Repr::Small(x), Repr::Small(y)) => return x.cmp(y),
            (Repr::Infinite { negative: x }, Repr::Infinite { negative: y }) => return y.cmp(x),
            (Repr::Infinite { negative }, _) => {
                return if *negative { Ordering::Less } else { Ordering::Greater };
            }
            (_, Repr::Infinite { negative }) => {
                return if *negative { Ordering::Greater } else { Ordering::Less };
            }
            _ => (self.is_negative(), o.is_negative()),
        };
        if self.is_zero() || o.is_zero() || a != b {
            let sign = |n: &Number| if n.is_zero() { 0 } else if n.is_negative() { -1 } else { 1 };
            return sign(self).cmp(&sign(o));
        }
        // The sign of the difference is the order itself, whatever the
        // operands' signs (reversing it for negatives had `-2 < -1` false).
        match self.sub(o).expect("finite numbers subtract") {
            d if d.is_zero() => Ordering::Equal,
            d if d.is_negative() => Ordering::Less,
            _ => Ordering::Greater,
        }
    }

    /// The shortest decimal digits that read back to this number at 512
    /// bits, with the position of the decimal point: Go's `roundShortest`.
    fn shortest_decimal(mantissa: &BigUint, exponent: i64) -> Decimal {
        let mut d = Decimal::exact(mantissa, exponent);
        // The neighbours half an ulp away, at PRECISION + 1 bits.
        let shift = PRECISION + 1 - mantissa.bits();
        let scaled = mantissa << shift;
        let exp = exponent - shift as i64;
        let lower = Decimal::exact(&(&scaled - 1u32), exp);
        let upper = Decimal::exact(&(&scaled + 1u32), exp);
        // Round-to-nearest-even reads a neighbour back only if our mantissa is even.
        let inclusive = !scaled.bit(1);
        for i in 0..d.digits.len() {
            let (l, m, u) = (lower.at(i), d.digits[i], upper.at(i));
            let ok_down = l != m || inclusive && i + 1 == lower.digits.len();
            let ok_up = m != u && (inclusive || m + 1 < u || i + 1 < upper.digits.len());
            match (ok_down, ok_up) {
                (true, true) => {
                    d.round(i + 1);
                    break;
                }
                (true, false) => {
                    d.round_down(i + 1);
                    break;
                }
                (false, true) => {
                    d.round_up(i + 1);
                    break;
                }
                (false, false) => {}
            }
        }
        d
    }
}

fn add_finite((na, a, ea): (bool, &BigUint, i64), (nb, b, eb): (bool, &BigUint, i64)) -> Number {
    if a.is_zero() {
        return Number::round(nb, b.clone(), eb, false);
    }
    if b.is_zero() {
        return Number::round(na, a.clone(), ea, false);
    }
    // A tiny addend far below the other's last bit only decides rounding:
    // stand it in by one sticky bit instead of shifting by a huge distance.
    let (top_a, top_b) = (ea + a.bits() as i64, eb + b.bits() as i64);
    let floor = top_a.max(top_b) - PRECISION as i64 - 4;
    let clamp = |m: &BigUint, e: i64| -> (BigUint, i64) {
        if e + (m.bits() as i64) < floor {
            (BigUint::one(), floor - 1)
        } else {
            (m.clone(), e)
        }
    };
    let ((a, ea), (b, eb)) = (clamp(a, ea), clamp(b, eb));
    let e = ea.min(eb);
    let a = a << (ea - e) as u64;
    let b = b << (eb - e) as u64;
    if na == nb {
        Number::round(na, a + b, e, false)
    } else if a >= b {
        Number::round(na, a - b, e, false)
    } else {
        Number::round(nb, b - a, e, false)
    }
}

/// A decimal `0.digits × 10^point`, digits without trailing zeros, as Go's
/// `math/big` decimal used for formatting.
struct Decimal {
    digits: Vec<u8>,
    point: i64,
}

impl Decimal {
    /// `mantissa · 2^exponent`, exactly.
    fn exact(mantissa: &BigUint, exponent: i64) -> Decimal {
        if mantissa.is_zero() {
            return Decimal { digits: Vec::new(), point: 0 };
        }
        let (integer, fraction_digits) = if exponent >= 0 {
            (mantissa << exponent as u64, 0)
        } else {
            // m / 2^k = m · 5^k / 10^k
            let k = (-exponent) as u64;
            (mantissa * BigUint::from(5u32).pow(k as u32), k as i64)
        };
        let mut digits: Vec<u8> = integer.to_string().into_bytes().into_iter().map(|c| c - b'0').collect();
        let point = digits.len() as i64 - fraction_digits;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        Decimal { digits, point }
    }

    fn at(&self, i: usize) -> u8 {
        self.digits.get(i).copied().unwrap_or(0)
    }

    fn trim(&mut self) {
        while self.digits.last() == Some(&0) {
            self.digits.pop();
        }
        if self.digits.is_empty() {
            self.point = 0;
        }
    }

    fn round(&mut self, n: usize) {
        if n >= self.digits.len() {
            return;
        }
        let up = if self.digits[n] == 5 && n + 1 == self.digits.len() {
            n > 0 && self.digits[n - 1] % 2 == 1
        } else {
            self.digits[n] >= 5
        };
        if up {
            self.round_up(n)
        } else {
            self.round_down(n)
        }
    }

    fn round_up(&mut self, n: usize) {
        if n >= self.digits.len() {
            return;
        }
        let mut i = n;
        while i > 0 && self.digits[i - 1] == 9 {
            i -= 1;
        }
        if i == 0 {
            self.digits = vec![1];
            self.point += 1;
        } else {
            self.digits.truncate(i);
            self.digits[i - 1] += 1;
        }
    }

    fn round_down(&mut self, n: usize) {
        if n < self.digits.len() {
            self.digits.truncate(n);
            self.trim();
        }
    }

    /// Plain `ddd.ddd` notation, as `Text('f', -1)`.
    fn write_plain(&self, out: &mut String) {
        if self.point > 0 {
            let whole = (self.point as usize).min(self.digits.len());
            out.extend(self.digits[..whole].iter().map(|d| char::from(b'0' + d)));
            out.extend(std::iter::repeat_n('0', self.point as usize - whole));
        } else {
            out.push('0');
        }
        let fraction = self.digits.len() as i64 - self.point;
        if fraction > 0 {
            out.push('.');
            for i in 0..fraction {
                let at = self.point + i;
                out.push(char::from(b'0' + if at < 0 { 0 } else { self.at(at as usize) }));
            }
        }
    }
}

impl FromStr for Number {
    type Err = String;
    /// A decimal number: `-12`, `3.25`, `1e400`, `.5`, `6.02E+23`.
    fn from_str(s: &str) -> Result<Number, String> {
        let invalid = || format!("{s:?} is not a number");
        let t = s.trim();
        let (negative, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        // A plain integer (almost every literal of a configuration) needs no
        // big-number arithmetic; the result is the same canonical value.
        if (1..=18).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()) {
            let n: u64 = t.parse().map_err(|_| invalid())?;
            // At most 18 digits: below i64::MAX, and no negative zero.
            let n = n as i64;
            return Ok(Number(Repr::Small(if negative { -n } else { n })));
        }
        let (significand, exponent) = match t.find(['e', 'E']) {
            Some(at) => (&t[..at], t[at + 1..].parse::<i64>().map_err(|_| invalid())?),
            None => (t, 0),
        };
        let (whole, fraction) = significand.split_once('.').unwrap_or((significand, ""));
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
            return Err(invalid());
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.is_empty() {
            return Ok(Number::zero());
        }
        let exponent = exponent - fraction.len() as i64;
        if exponent.abs() > MAX_DECIMAL_EXPONENT + digits.len() as i64 {
            return Err(format!("{s:?} is out of the range of numbers Strata can represent"));
        }
        let significand: BigUint = digits.parse().map_err(|_| invalid())?;
        let ten = BigUint::from(10u32);
        Ok(if exponent >= 0 {
            Number::round(negative, significand * ten.pow(exponent as u32), 0, false)
        } else {
            Number::from_ratio(negative, significand, &ten.pow((-exponent) as u32))
        })
    }
}

impl fmt::Display for Number {
    /// Shortest plain decimal, as Terraform prints numbers (`+Inf`, `-Inf`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.to_i64() {
            return write!(f, "{i}");
        }
        let Some((negative, mantissa, exponent)) = self.finite() else {
            return f.write_str(if self.is_negative() { "-Inf" } else { "+Inf" });
        };
        let mut out = String::new();
        if negative {
            out.push('-');
        }
        if exponent >= 0 && mantissa.bits() + exponent as u64 <= PRECISION {
            // An integer exactly representable: its shortest form is itself.
            out.push_str(&(&*mantissa << exponent as u64).to_string());
        } else {
            Number::shortest_decimal(&mantissa, exponent).write_plain(&mut out);
        }
        f.write_str(&out)
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, o: &Number) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Number {
    fn cmp(&self, o: &Number) -> Ordering {
        self.cmp_num(o)
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Number {
        Number::from_i64(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_integers_parse_to_what_the_general_path_makes() {
        for text in ["0", "-0", "7", "-7", "0012", "+42", "999999999999999999", "-123456789012345678"] {
            let general = format!("{text}e0");
            assert_eq!(text.parse::<Number>(), general.parse::<Number>(), "{text}");
        }
        assert_eq!("5".parse::<Number>(), Ok(Number::from_i64(5)));
    }

    fn n(s: &str) -> Number {
        s.parse().unwrap()
    }

    /// The general (boxed) representation of an integer, built the slow
    /// way, to compare the inline one against.
    fn general(s: &str) -> Number {
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        Number::round(negative, digits.parse().unwrap(), 0, false)
    }

    #[test]
    fn integers_that_fit_an_i64_are_inline_and_no_others() {
        for i in [0, 1, -1, 2, 1 << 40, -(1 << 40), i64::MAX, i64::MIN, i64::MIN + 1, i64::MAX - 1] {
            let text = i.to_string();
            assert_eq!(Number::from_i64(i), general(&text), "{i}");
            assert!(matches!(general(&text).0, Repr::Small(m) if m == i), "{i}");
            assert_eq!(n(&text), Number::from_i64(i));
            assert_eq!(n(&format!("{text}.0")), Number::from_i64(i));
            assert_eq!(n(&format!("{text}e0")), Number::from_i64(i));
            assert_eq!(Number::from_i64(i).to_i64(), Some(i));
            assert_eq!(Number::from_i64(i).to_string(), text);
        }
        for text in ["9223372036854775808", "-9223372036854775809", "18446744073709551616", "1e19", "0.5", "-0.5"] {
            let x = n(text);
            assert!(matches!(x.0, Repr::Big(_)), "{text}");
            assert_eq!(x.to_i64(), None, "{text}");
        }
        assert_eq!(n("9223372036854775808").to_string(), "9223372036854775808");
        assert_eq!(n("-9223372036854775809").to_string(), "-9223372036854775809");
        assert!(n("9223372036854775808").is_integer() && !n("0.5").is_integer());
    }

    #[test]
    fn negative_zero_is_zero() {
        for text in ["-0", "-0.0", "-0e5", "-000"] {
            assert_eq!(n(text), Number::zero(), "{text}");
            assert!(!n(text).is_negative(), "{text}");
            assert_eq!(n(text).to_string(), "0");
        }
        assert_eq!(Number::zero().neg(), Number::zero());
        assert_eq!(n("5").sub(&n("5")).unwrap(), Number::zero());
        assert_eq!(n("-5").mul(&n("0")).unwrap(), Number::zero());
        assert_eq!(n("-0.5").ceil(), Number::zero());
        assert!(!n("-0.5").trunc().is_negative());
        assert_eq!(n("-1").div(&n("1e400")).unwrap().cmp_num(&Number::zero()), Ordering::Less);
    }

    #[test]
    fn arithmetic_enters_and_leaves_the_inline_integers() {
        let (max, min) = (Number::from_i64(i64::MAX), Number::from_i64(i64::MIN));
        let one = Number::from_i64(1);
        // Overflowing i64 falls back to exact big arithmetic.
        assert_eq!(max.add(&one).unwrap(), n("9223372036854775808"));
        assert_eq!(min.sub(&one).unwrap(), n("-9223372036854775809"));
        assert_eq!(max.mul(&max).unwrap().to_string(), "85070591730234615847396907784232501249");
        assert_eq!(min.neg(), n("9223372036854775808"));
        assert_eq!(min.abs().to_string(), "9223372036854775808");
        assert_eq!(min.div(&n("-1")).unwrap(), n("9223372036854775808"));
        assert_eq!(min.rem(&n("-1")).unwrap(), Number::zero());
        assert_eq!(min.mul(&n("-1")).unwrap().to_string(), "9223372036854775808");
        // And big results that fit come back inline.
        assert_eq!(n("9223372036854775808").neg(), min);
        assert_eq!(n("9223372036854775808").sub(&one).unwrap(), max);
        assert_eq!(n("-9223372036854775809").add(&one).unwrap(), min);
        assert_eq!(n("18446744073709551616").div(&n("2")).unwrap(), n("9223372036854775808"));
        assert_eq!(n("18446744073709551616").div(&n("4")).unwrap(), Number::from_i64(1 << 62));
        assert_eq!(n("1e30").div(&n("1e20")).unwrap(), Number::from_i64(10_000_000_000));
        assert_eq!(n("2.5").mul(&n("4")).unwrap(), Number::from_i64(10));
        assert_eq!(n("0.1").add(&n("0.9")).unwrap(), one);
        assert_eq!(n("7.5").floor(), Number::from_i64(7));
        assert_eq!(n("-7.5").floor(), Number::from_i64(-8));
        assert_eq!(n("1e19").rem(&n("7")).unwrap(), Number::from_i64(10_000_000_000_000_000_000u64.rem_euclid(7) as i64));
        // And inline ones leave for fractions.
        assert_eq!(n("7").div(&n("2")).unwrap(), n("3.5"));
        assert_eq!(n("-7").div(&n("2")).unwrap().to_string(), "-3.5");
        assert_eq!(n("6").div(&n("3")).unwrap(), Number::from_i64(2));
        assert_eq!(n("-7").rem(&n("-3")).unwrap(), n("-1"));
        assert_eq!(n("7").rem(&n("-3")).unwrap(), n("1"));
        // Comparisons across the two representations.
        assert!(max < n("9223372036854775808") && n("-9223372036854775809") < min);
        assert!(n("0.5") < one && n("-0.5") > n("-1") && n("1e400") > max && n("-1e400") < min);
        assert!(n("-3.5") < n("-2.5") && n("-3.5") < n("-2") && n("-2") < n("-1.5") && n("-1e30") < n("-1e29"));
        assert_eq!(min.to_f64(), -9223372036854775808.0);
        assert_eq!(max.to_f64(), 9223372036854775807.0);
        assert_eq!(n("9007199254740993").to_f64(), 9007199254740992.0);
        assert_eq!(Number::from_i64(-3).to_json().unwrap().to_string(), "-3");
    }

    #[test]
    fn arithmetic_is_terraforms() {
        assert_eq!(n("0.1").add(&n("0.2")).unwrap(), n("0.3"));
        assert_eq!(n("10").div(&n("4")).unwrap().to_string(), "2.5");
        let third = n("1").div(&n("3")).unwrap();
        assert_eq!(third.to_string(), format!("0.{}5", "3".repeat(154)));
        assert_eq!(third.mul(&n("3")).unwrap(), n("1"));
        assert_eq!(n("-7").rem(&n("3")).unwrap(), n("-1"));
        assert_eq!(n("5").rem(&n("0")).unwrap(), n("5"));
        assert_eq!(n("2.50").to_string(), "2.5");
        assert_eq!(n("1e3").to_string(), "1000");
        assert_eq!(n("1e400").to_string(), format!("1{}", "0".repeat(400)));
        assert_eq!(n("1e-400").to_string(), format!("0.{}1", "0".repeat(399)));
        assert_eq!(n("12345678901234567890").add(&n("1")).unwrap().to_string(), "12345678901234567891");
        assert_eq!(Number::from_f64(0.1).unwrap(), n("0.1"));
        assert_eq!(n("-1.5").floor(), n("-2"));
        assert_eq!(n("-1.5").ceil(), n("-1"));
        assert_eq!(n("5").div(&n("0")).unwrap().to_string(), "+Inf");
        assert!(n("0").div(&n("0")).is_err());
        assert!("abc".parse::<Number>().is_err());
        assert!("1e".parse::<Number>().is_err());
        assert_eq!(n("-3").to_i64(), Some(-3));
        assert_eq!(n("0.25").to_f64(), 0.25);
        assert!(n("1e-400") > Number::zero());
        assert!(n("100000000000000000000000000000001") > n("100000000000000000000000000000000"));
    }
}
