//! Money as an exact count of minor units (tiyin, cents): prices and totals are never floats.
//!
//! Every currency navbat bills in (UZS, USD, EUR, RUB) has 100 minor units, so an amount is
//! an `i64` of hundredths and prints with two decimals. Prices are written in the
//! configuration as decimal strings (`"1350.00"`, `"1350.5"`, `"1350"`) and parsed exactly;
//! a third decimal is refused rather than rounded.

use std::fmt;

/// An amount of money in minor units (1/100 of the currency unit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// Why a price text is not an amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Empty, a sign, letters or more than one point.
    #[error("\"{0}\" is not a decimal amount such as \"1350.00\"")]
    NotDecimal(String),
    /// More than two decimals.
    #[error("\"{0}\" has more than two decimals (the smallest unit is 0.01)")]
    TooPrecise(String),
    /// Larger than navbat counts.
    #[error("\"{0}\" is too large")]
    TooLarge(String),
}

impl Money {
    /// The largest amount a price may be (a billion units): far above any price per call, and
    /// small enough that volume times price cannot overflow an `i64` of minor units.
    pub const MAX_PRICE: Money = Money(100_000_000_000);

    /// An amount of `minor` hundredths.
    pub const fn from_minor(minor: i64) -> Money {
        Money(minor)
    }

    /// The amount in hundredths.
    pub const fn minor(self) -> i64 {
        self.0
    }

    /// Parses a non-negative decimal (`"1350"`, `"1350.5"`, `"1350.00"`) exactly.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let t = text.trim();
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(frac)
            || (t.contains('.') && frac.is_empty())
        {
            return Err(MoneyError::NotDecimal(text.to_owned()));
        }
        if frac.len() > 2 {
            return Err(MoneyError::TooPrecise(text.to_owned()));
        }
        let too_large = || MoneyError::TooLarge(text.to_owned());
        let units: i64 = whole.parse().map_err(|_| too_large())?;
        let cents: i64 = if frac.is_empty() {
            0
        } else {
            let f: i64 = frac
                .parse()
                .map_err(|_| MoneyError::NotDecimal(text.to_owned()))?;
            if frac.len() == 1 {
                f * 10
            } else {
                f
            }
        };
        let minor = units
            .checked_mul(100)
            .and_then(|m| m.checked_add(cents))
            .ok_or_else(too_large)?;
        if minor > Money::MAX_PRICE.0 {
            return Err(too_large());
        }
        Ok(Money(minor))
    }

    /// `self` times `count`, or `None` on overflow.
    pub fn times(self, count: u64) -> Option<Money> {
        i64::try_from(count)
            .ok()
            .and_then(|c| self.0.checked_mul(c))
            .map(Money)
    }

    /// `self + other`, or `None` on overflow.
    pub fn plus(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// The amount as a number of units, for a spreadsheet cell (exact for any amount below
    /// 2^53 minor units, which every invoice is).
    pub fn as_units_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

/// Serialised as its decimal text (`"1350.00"`), never as a float.
impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for Money {
    /// `1350.00`, `-0.05`: two decimals, no grouping (a reader or a spreadsheet parses it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_and_prints_two_decimals() {
        for (text, minor) in [
            ("1500.00", 150_000),
            ("1350", 135_000),
            ("1350.5", 135_050),
            ("0.01", 1),
            (" 12.30 ", 1_230),
        ] {
            let m = Money::parse(text).unwrap();
            assert_eq!(m.minor(), minor, "{text}");
        }
        assert_eq!(Money::from_minor(135_050).to_string(), "1350.50");
        assert_eq!(Money::from_minor(-5).to_string(), "-0.05");
    }

    #[test]
    fn refuses_what_is_not_an_exact_amount() {
        for bad in ["", ".5", "5.", "1,5", "-1", "1e3", "1.2.3", "abc", "１２"] {
            assert!(
                matches!(Money::parse(bad), Err(MoneyError::NotDecimal(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Money::parse("1.005"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Money::parse("99999999999999999999"),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            Money::parse("1000000001"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn arithmetic_is_checked() {
        let p = Money::parse("1350.00").unwrap();
        assert_eq!(p.times(150_000).unwrap().to_string(), "202500000.00");
        assert!(Money::from_minor(i64::MAX).times(2).is_none());
        assert!(Money::from_minor(i64::MAX)
            .plus(Money::from_minor(1))
            .is_none());
    }
}
