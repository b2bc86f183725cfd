//! Money is an integer count of minor units in an ISO 4217 currency; credits are an integer count. No floats anywhere.
use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 currency code that Purser can price in, stored upper case (`USD`) and shown lower case (`usd`) the
/// way Stripe does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// The currencies Purser prices in, each with its ISO 4217 exponent: the decimals of its minor unit. This is the one
/// place that knows them; amounts, invoices, CSV exports and provider calls all format through it.
const SUPPORTED: [(&str, u32); 11] = [
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("CAD", 2),
    ("AUD", 2),
    ("CHF", 2),
    ("SEK", 2),
    ("NZD", 2),
    ("JPY", 0),
    ("KWD", 3),
    ("BHD", 3),
];

impl Currency {
    pub fn parse(code: &str) -> Result<Self, String> {
        let upper = code.trim().to_ascii_uppercase();
        if !SUPPORTED.iter().any(|(known, _)| *known == upper) {
            let known: Vec<&str> = SUPPORTED.iter().map(|(known, _)| *known).collect();
            return Err(format!("unsupported currency `{code}`: expected one of {}", known.join(", ")));
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

    /// Decimal places of the minor unit (ISO 4217): 0 for JPY, 2 for USD, 3 for KWD.
    pub fn exponent(&self) -> u32 {
        SUPPORTED.iter().find(|(known, _)| *known == self.code()).map_or(2, |(_, exponent)| *exponent)
    }

    /// `minor` units as the decimal string providers and people read (`"160.00"`, `"1600"`, `"1.500"`): exact,
    /// integer arithmetic only.
    pub fn decimal(&self, minor: i64) -> String {
        let exponent = self.exponent();
        if exponent == 0 {
            return minor.to_string();
        }
        let scale = 10_i64.pow(exponent);
        let sign = if minor < 0 { "-" } else { "" };
        let (whole, fraction) = (minor.unsigned_abs() / scale as u64, minor.unsigned_abs() % scale as u64);
        format!("{sign}{whole}.{fraction:0width$}", width = exponent as usize)
    }

    /// Minor units from a decimal string with at most this currency's decimals (`"160"`, `"160.5"`, `"160.00"` in
    /// USD; `"1600"` in JPY), exactly.
    pub fn minor_from_decimal(&self, value: &str) -> Result<i64, String> {
        let exponent = self.exponent();
        let invalid = || format!("`{value}` is not an amount in {} (at most {exponent} decimals)", self.code());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (whole, fraction) = match value.split_once('.') {
            Some((whole, fraction)) if digits(fraction) => (whole, fraction),
            Some(_) => return Err(invalid()),
            None => (value, ""),
        };
        if !digits(whole) || fraction.len() > exponent as usize {
            return Err(invalid());
        }
        let scale = 10_i64.pow(exponent);
        let fraction: i64 = match exponent {
            0 => 0,
            _ => format!("{fraction:0<width$}", width = exponent as usize).parse().map_err(|_| invalid())?,
        };
        whole
            .parse::<i64>()
            .ok()
            .and_then(|w| w.checked_mul(scale))
            .and_then(|w| w.checked_add(fraction))
            .ok_or_else(invalid)
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
    /// The decimal string PayPal's API and the documents use (`"160.00"`, `"1600"` in JPY), exact.
    pub fn decimal(&self) -> String {
        self.currency.decimal(self.minor)
    }
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
        assert_eq!(usd.minor_from_decimal("160.00"), Ok(16000));
        assert_eq!(usd.minor_from_decimal("0.5"), Ok(50));
        assert_eq!(usd.minor_from_decimal("12"), Ok(1200));
        for bad in ["1.234", "-1.00", "1e3", "", ".5", "1.", "abc"] {
            assert!(usd.minor_from_decimal(bad).is_err(), "{bad}");
        }
    }

    // Issue 17: each currency by its ISO 4217 exponent, in both directions.
    #[test]
    fn zero_and_three_decimal_currencies_keep_their_minor_unit() {
        let jpy = Currency::parse("jpy").unwrap();
        assert_eq!(jpy.exponent(), 0);
        assert_eq!(Money::new(1600, jpy).unwrap().decimal(), "1600");
        assert_eq!(jpy.minor_from_decimal("1600"), Ok(1600));
        assert!(jpy.minor_from_decimal("16.5").is_err(), "yen has no minor unit below one");
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(kwd.exponent(), 3);
        assert_eq!(Money::new(1500, kwd).unwrap().decimal(), "1.500");
        assert_eq!(kwd.minor_from_decimal("1.5"), Ok(1500));
        assert_eq!(kwd.minor_from_decimal("0.005"), Ok(5));
        assert!(kwd.minor_from_decimal("0.0005").is_err());
        assert_eq!(Currency::parse("EUR").unwrap().decimal(-5), "-0.05");
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
