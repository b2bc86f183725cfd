//! The sandbox's stand-in for Stripe.js tokenization: a card form posts Stripe's documented test card numbers
//! here (never to Purser's API) and gets back the test payment method that plays that card. Real card numbers are
//! refused, as Stripe's test mode refuses them.

/// Stripe's test cards (docs.stripe.com/testing) and the test methods the sandbox honours for them.
const TEST_CARDS: [(&str, &str); 14] = [
    ("4242424242424242", "pm_card_visa"),
    ("5555555555554444", "pm_card_mastercard"),
    ("378282246310005", "pm_card_amex"),
    ("6011111111111117", "pm_card_discover"),
    ("4000000000000002", "pm_card_visa_chargeDeclined"),
    ("4000000000009995", "pm_card_visa_chargeDeclinedInsufficientFunds"),
    ("4000000000000069", "pm_card_chargeDeclinedExpiredCard"),
    ("4000000000000119", "pm_card_chargeDeclinedProcessingError"),
    ("4000002500003155", "pm_card_authenticationRequired"),
    // The spec's 3-D Secure card: Stripe's "always authenticate" card, which the sandbox plays the same way.
    ("4000002760003184", "pm_card_authenticationRequired"),
    // Stripe Radar's test cards: elevated, highest (let through by the rules), always blocked.
    ("4000000000009235", "pm_card_riskLevelElevated"),
    ("4000000000004954", "pm_card_riskLevelHighest"),
    ("4100000000000019", "pm_card_chargeDeclinedFraudulent"),
    // Pays, then the cardholder's bank disputes it as fraudulent.
    ("4000000000000259", "pm_card_createDispute"),
];

#[derive(Debug, PartialEq, Eq)]
pub enum CardError {
    Number,
    NotATestCard,
    Expiry,
    Cvc,
}

impl CardError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Number => "incorrect_number",
            Self::NotATestCard => "card_declined",
            Self::Expiry => "invalid_expiry",
            Self::Cvc => "invalid_cvc",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::Number => "The card number is not valid.",
            Self::NotATestCard => {
                "The sandbox takes only Stripe's test cards, e.g. 4242 4242 4242 4242; no real card is ever charged."
            }
            Self::Expiry => "The card's expiry date is not valid or has passed.",
            Self::Cvc => "The card's security code is not valid.",
        }
    }
}

/// The test payment method for a card, after the checks Stripe.js makes.
pub fn tokenize(
    number: &str,
    exp_month: u32,
    exp_year: u32,
    cvc: &str,
    today: (u32, u32),
) -> Result<&'static str, CardError> {
    let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if !(13..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) || !luhn(&digits) {
        return Err(CardError::Number);
    }
    let year = if exp_year < 100 { 2000 + exp_year } else { exp_year };
    if !(1..=12).contains(&exp_month) || (year, exp_month) < today {
        return Err(CardError::Expiry);
    }
    let cvc_length = if digits.starts_with("34") || digits.starts_with("37") { 4 } else { 3 };
    if cvc.len() != cvc_length || !cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CardError::Cvc);
    }
    TEST_CARDS.iter().find(|(card, _)| *card == digits).map(|(_, method)| *method).ok_or(CardError::NotATestCard)
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cards_become_their_methods_and_bad_input_is_named() {
        let today = (2026, 11);
        assert_eq!(tokenize("4242 4242 4242 4242", 12, 30, "123", today), Ok("pm_card_visa"));
        assert_eq!(tokenize("378282246310005", 1, 2031, "1234", today), Ok("pm_card_amex"));
        assert_eq!(tokenize("4000 0025 0000 3155", 11, 26, "123", today), Ok("pm_card_authenticationRequired"));
        assert_eq!(tokenize("4000 0027 6000 3184", 11, 26, "123", today), Ok("pm_card_authenticationRequired"));
        assert_eq!(tokenize("4242 4242 4242 4241", 12, 30, "123", today), Err(CardError::Number));
        assert_eq!(tokenize("4111 1111 1111 1111", 12, 30, "123", today), Err(CardError::NotATestCard));
        assert_eq!(tokenize("4242424242424242", 10, 26, "123", today), Err(CardError::Expiry));
        assert_eq!(tokenize("4242424242424242", 13, 30, "123", today), Err(CardError::Expiry));
        assert_eq!(tokenize("4242424242424242", 12, 30, "12", today), Err(CardError::Cvc));
    }
}
