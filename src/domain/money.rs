//! Money is an integer count of minor units in an ISO 4217 currency; credits are an integer count. No floats anywhere.
use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 currency code that Purser can price in, stored upper case (`USD`) and shown lower case (`usd`) the
/// way Stripe does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// Currencies with two decimal places that every supported provider accepts. Zero-decimal currencies are left out
/// on purpose: their minor unit differs and nothing here needs them yet.
const SUPPORTED: [&str; 8] = ["USD", "EUR", "GBP", "CAD", "AUD", "CHF", "SEK", "NZD"];

impl Currency {
    pub fn parse(code: &str) -> Result<Self, String> {
        let upper = code.trim().to_ascii_uppercase();
        if !SUPPORTED.contains(&upper.as_str()) {
            return Err(format!("unsupported currency `{code}`: expected one of {}", SUPPORTED.join(", ")));
        }
        let bytes = upper.as_bytes();
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("parsed from ASCII")
    }

    /// The lower-case code that Stripe and the public API use.
    pub fn lower(&self) -> String {
        self.code().to_ascii_lowercase()
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A positive amount of money in minor units (cents).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Self, String> {
        if minor <= 0 {
            return Err(format!("amount must be a positive number of minor units, got {minor}"));
        }
        Ok(Self { minor, currency })
    }
}

impl Money {
    /// The decimal string PayPal's API uses (`"160.00"`), exact: integer arithmetic only.
    pub fn decimal(&self) -> String {
        format!("{}.{:02}", self.minor / 100, self.minor % 100)
    }
}

/// Minor units from a decimal string with at most two decimals (`"160"`, `"160.5"`, `"160.00"`), exactly.
pub fn minor_from_decimal(value: &str) -> Result<i64, String> {
    let invalid = || format!("`{value}` is not an amount with at most two decimals");
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) if digits(fraction) => (whole, fraction),
        Some(_) => return Err(invalid()),
        None => (value, ""),
    };
    if !digits(whole) || fraction.len() > 2 {
        return Err(invalid());
    }
    let cents: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
    whole.parse::<i64>().ok().and_then(|w| w.checked_mul(100)).and_then(|w| w.checked_add(cents)).ok_or_else(invalid)
}

/// A whole number of credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Credits(pub i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_is_case_insensitive_and_shown_both_ways() {
        let usd = Currency::parse("usd").unwrap();
        assert_eq!(usd.code(), "USD");
        assert_eq!(usd.lower(), "usd");
    }

    #[test]
    fn decimals_round_trip_exactly() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(Money::new(16000, usd).unwrap().decimal(), "160.00");
        assert_eq!(Money::new(5, usd).unwrap().decimal(), "0.05");
        assert_eq!(minor_from_decimal("160.00"), Ok(16000));
        assert_eq!(minor_from_decimal("0.5"), Ok(50));
        assert_eq!(minor_from_decimal("12"), Ok(1200));
        for bad in ["1.234", "-1.00", "1e3", "", ".5", "1.", "abc"] {
            assert!(minor_from_decimal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_currency_and_non_positive_amount_are_rejected() {
        assert!(Currency::parse("XXX").is_err());
        assert!(Currency::parse("US").is_err());
        let usd = Currency::parse("USD").unwrap();
        assert!(Money::new(0, usd).is_err());
        assert!(Money::new(-5, usd).is_err());
    }
}
