//! Numbers as Terraform has them: arbitrary-precision decimals, so that
//! `0.1 + 0.2 == 0.3` and large integers stay exact.

use bigdecimal::{BigDecimal, FromPrimitive, ToPrimitive, Zero};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Digits kept by division, which may not terminate (Terraform keeps 512
/// bits, about 154 decimal digits; 100 is plenty and keeps results short).
const DIVISION_DIGITS: u64 = 100;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Number(BigDecimal);

impl Number {
    pub fn from_f64(n: f64) -> Option<Number> {
        // Through the shortest decimal text of the float, so 0.1 is 0.1.
        if !n.is_finite() {
            return None;
        }
        BigDecimal::from_str(&n.to_string()).ok().or_else(|| BigDecimal::from_f64(n)).map(Number::new)
    }

    pub fn from_i64(n: i64) -> Number {
        Number(BigDecimal::from(n))
    }

    fn new(d: BigDecimal) -> Number {
        Number(d.normalized())
    }

    pub fn to_f64(&self) -> f64 {
        self.0.to_f64().unwrap_or(f64::NAN)
    }

    /// The value as an integer, if it is one and fits.
    pub fn to_i64(&self) -> Option<i64> {
        if self.0.is_integer() {
            self.0.to_i64()
        } else {
            None
        }
    }

    pub fn is_integer(&self) -> bool {
        self.0.is_integer()
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    pub fn is_negative(&self) -> bool {
        self.0.sign() == bigdecimal::num_bigint::Sign::Minus
    }

    pub fn add(&self, o: &Number) -> Number {
        Number::new(&self.0 + &o.0)
    }
    pub fn sub(&self, o: &Number) -> Number {
        Number::new(&self.0 - &o.0)
    }
    pub fn mul(&self, o: &Number) -> Number {
        Number::new(&self.0 * &o.0)
    }
    /// `None` when dividing by zero.
    pub fn div(&self, o: &Number) -> Option<Number> {
        if o.is_zero() {
            return None;
        }
        Some(Number::new((&self.0 / &o.0).with_prec(DIVISION_DIGITS)))
    }
    /// Remainder with the sign of the dividend, as Terraform's `%`.
    pub fn rem(&self, o: &Number) -> Option<Number> {
        if o.is_zero() {
            return None;
        }
        Some(Number::new(&self.0 % &o.0))
    }
    pub fn neg(&self) -> Number {
        Number::new(-self.0.clone())
    }
    pub fn abs(&self) -> Number {
        Number::new(self.0.abs())
    }
    pub fn floor(&self) -> Number {
        Number::new(self.0.with_scale_round(0, bigdecimal::RoundingMode::Floor))
    }
    pub fn ceil(&self) -> Number {
        Number::new(self.0.with_scale_round(0, bigdecimal::RoundingMode::Ceiling))
    }
    pub fn trunc(&self) -> Number {
        Number::new(self.0.with_scale_round(0, bigdecimal::RoundingMode::Down))
    }
    pub fn cmp_num(&self, o: &Number) -> Ordering {
        self.0.cmp(&o.0)
    }
}

impl FromStr for Number {
    type Err = String;
    fn from_str(s: &str) -> Result<Number, String> {
        let t = s.trim();
        if t.is_empty() || t.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') {
            return Err(format!("{s:?} is not a number"));
        }
        BigDecimal::from_str(t).map(Number::new).map_err(|_| format!("{s:?} is not a number"))
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (_, exponent) = self.0.as_bigint_and_exponent();
        // Plain notation for ordinary magnitudes, as Terraform prints them.
        if (-40..=40).contains(&exponent) {
            f.write_str(&self.0.to_plain_string())
        } else {
            write!(f, "{}", self.0)
        }
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

    fn n(s: &str) -> Number {
        s.parse().unwrap()
    }

    #[test]
    fn decimal_arithmetic_is_exact() {
        assert_eq!(n("0.1").add(&n("0.2")), n("0.3"));
        assert_eq!(n("10").div(&n("4")).unwrap().to_string(), "2.5");
        // 1/3 keeps many digits, so times 3 is 0.999... rather than 1.
        assert!(n("1").div(&n("3")).unwrap().mul(&n("3")).to_string().starts_with("0.9999999999"));
        assert_eq!(n("-7").rem(&n("3")).unwrap(), n("-1"));
        assert_eq!(n("2.50").to_string(), "2.5");
        assert_eq!(n("1e3").to_string(), "1000");
        assert_eq!(n("12345678901234567890").add(&n("1")).to_string(), "12345678901234567891");
        assert_eq!(Number::from_f64(0.1).unwrap(), n("0.1"));
        assert_eq!(n("-1.5").floor(), n("-2"));
        assert!("abc".parse::<Number>().is_err());
    }
}
