//! Numbers exactly as Terraform has them: binary floating point with a
//! 512-bit mantissa (cty's `big.Float`, rounded to nearest even), an exponent
//! without practical bound, and the two infinities. So `1e400` and
//! `1e-400` are numbers, integers of up to 154 digits are exact, `1/3` has
//! 154 significant digits, `0.1 + 0.2 == 0.3`, and every value prints as the
//! shortest decimal that reads back to it, as Go's `Text('f', -1)` prints it.

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, ToPrimitive, Zero};
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
/// a finite mantissa is odd (or zero, with exponent 0 and no sign).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// `(-1)^negative · mantissa · 2^exponent`, mantissa at most 512 bits.
    Finite { negative: bool, mantissa: BigUint, exponent: i64 },
    Infinite { negative: bool },
}

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
        Number(Repr::Finite { negative: false, mantissa: BigUint::ZERO, exponent: 0 })
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
        Number(Repr::Finite { negative, mantissa: mantissa >> zeros, exponent: exponent + zeros as i64 })
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

    pub fn from_i64(n: i64) -> Number {
        Number::round(n < 0, BigUint::from(n.unsigned_abs()), 0, false)
    }

    fn finite(&self) -> Option<(bool, &BigUint, i64)> {
        match &self.0 {
            Repr::Finite { negative, mantissa, exponent } => Some((*negative, mantissa, *exponent)),
            Repr::Infinite { .. } => None,
        }
    }

    pub fn to_f64(&self) -> f64 {
        let Some((negative, mantissa, exponent)) = self.finite() else {
            return if self.is_negative() { f64::NEG_INFINITY } else { f64::INFINITY };
        };
        // The top 64 bits (rounding twice is below f64's resolution here).
        let drop = mantissa.bits().saturating_sub(64);
        let top = (mantissa >> drop).to_u64().unwrap_or(u64::MAX) as f64;
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
        let (negative, mantissa, exponent) = self.finite()?;
        if !(0..=63).contains(&exponent) {
            return mantissa.is_zero().then_some(0);
        }
        let magnitude = (mantissa << exponent as u64).to_u64()?;
        if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        }
    }

    /// The number as JSON, with every digit; `None` for an infinity.
    pub fn to_json(&self) -> Option<serde_json::Number> {
        if self.is_infinite() {
            return None;
        }
        self.to_string().parse().ok()
    }

    pub fn is_integer(&self) -> bool {
        self.finite().is_some_and(|(_, m, e)| e >= 0 || m.is_zero())
    }

    pub fn is_zero(&self) -> bool {
        self.finite().is_some_and(|(_, m, _)| m.is_zero())
    }

    pub fn is_infinite(&self) -> bool {
        matches!(self.0, Repr::Infinite { .. })
    }

    pub fn is_negative(&self) -> bool {
        match self.0 {
            Repr::Finite { negative, .. } | Repr::Infinite { negative } => negative,
        }
    }

    pub fn add(&self, o: &Number) -> Result<Number, NumberError> {
        match (self.finite(), o.finite()) {
            (Some(a), Some(b)) => Ok(add_finite(a, b)),
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
        let negative = self.is_negative() != o.is_negative();
        match (self.finite(), o.finite()) {
            (Some((_, a, ea)), Some((_, b, eb))) => Ok(Number::round(negative, a * b, ea + eb, false)),
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
                let q = Number::from_ratio(negative, a.clone(), b);
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
        // Exactly, then rounded once (cty rounds the quotient first, which
        // only differs when it has more than 512 integer bits).
        let quotient = self.div(o)?.trunc();
        self.sub(&quotient.mul(o)?)
    }

    fn scale_by_power_of_two(self, by: i64) -> Number {
        match self.0 {
            Repr::Finite { negative, mantissa, exponent } if !mantissa.is_zero() => {
                Number(Repr::Finite { negative, mantissa, exponent: exponent + by })
            }
            other => Number(other),
        }
    }

    pub fn neg(&self) -> Number {
        match &self.0 {
            Repr::Finite { mantissa, .. } if mantissa.is_zero() => self.clone(),
            Repr::Finite { negative, mantissa, exponent } => {
                Number(Repr::Finite { negative: !negative, mantissa: mantissa.clone(), exponent: *exponent })
            }
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
                let mut whole = mantissa >> (-exponent) as u64;
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
            (Repr::Infinite { negative: x }, Repr::Infinite { negative: y }) => return y.cmp(x),
            (Repr::Infinite { negative }, _) => {
                return if *negative { Ordering::Less } else { Ordering::Greater };
            }
            (_, Repr::Infinite { negative }) => {
                return if *negative { Ordering::Greater } else { Ordering::Less };
            }
            (Repr::Finite { negative: x, .. }, Repr::Finite { negative: y, .. }) => (*x, *y),
        };
        if self.is_zero() || o.is_zero() || a != b {
            let sign = |n: &Number| if n.is_zero() { 0 } else if n.is_negative() { -1 } else { 1 };
            return sign(self).cmp(&sign(o));
        }
        let magnitude = match self.sub(o).expect("finite numbers subtract") {
            d if d.is_zero() => Ordering::Equal,
            d if d.is_negative() => Ordering::Less,
            _ => Ordering::Greater,
        };
        if a {
            magnitude.reverse()
        } else {
            magnitude
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
            return Ok(if n == 0 { Number::zero() } else { Number::round(negative, BigUint::from(n), 0, false) });
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
        let Some((negative, mantissa, exponent)) = self.finite() else {
            return f.write_str(if self.is_negative() { "-Inf" } else { "+Inf" });
        };
        if let Some(i) = self.to_i64() {
            return write!(f, "{i}");
        }
        let mut out = String::new();
        if negative {
            out.push('-');
        }
        if exponent >= 0 && mantissa.bits() + exponent as u64 <= PRECISION {
            // An integer exactly representable: its shortest form is itself.
            out.push_str(&(mantissa << exponent as u64).to_string());
        } else {
            Number::shortest_decimal(mantissa, exponent).write_plain(&mut out);
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
