//! Why a payment failed, in the provider's vocabulary, with the message and next step the spec's error table gives.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum FailureCode {
    CardDeclined,
    InsufficientFunds,
    ExpiredCard,
    ProcessingError,
    AuthenticationFailed,
    /// The provider does not know the payment method (Stripe's `resource_missing`).
    InvalidPaymentMethod,
    /// The payer turned back at PayPal.
    PayerCancelled,
    /// The provider refused a request about this payment for good (an invalid request, authentication, an object
    /// it does not know): retrying cannot help, and an admin is alerted.
    ProviderRefused,
    /// A decline code this table does not know; shown as a generic decline but recorded verbatim.
    Other(String),
}

impl FailureCode {
    /// Maps a Stripe `decline_code` or error `code`. Stripe reports most declines as `card_declined` with the finer
    /// reason in `decline_code`, so callers pass the finer one when present.
    pub fn from_provider(code: &str) -> Self {
        match code {
            "card_declined" | "generic_decline" | "do_not_honor" => Self::CardDeclined,
            "insufficient_funds" => Self::InsufficientFunds,
            "expired_card" => Self::ExpiredCard,
            "processing_error" => Self::ProcessingError,
            "payment_intent_authentication_failure" | "authentication_required" => Self::AuthenticationFailed,
            "resource_missing" | "invalid_payment_method" => Self::InvalidPaymentMethod,
            "INSTRUMENT_DECLINED" | "DECLINED" | "PAYEE_BLOCKED_TRANSACTION" => Self::CardDeclined,
            "payment_cancelled" => Self::PayerCancelled,
            "provider_refused" => Self::ProviderRefused,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::CardDeclined => "card_declined",
            Self::InsufficientFunds => "insufficient_funds",
            Self::ExpiredCard => "expired_card",
            Self::ProcessingError => "processing_error",
            Self::AuthenticationFailed => "authentication_failed",
            Self::InvalidPaymentMethod => "invalid_payment_method",
            Self::PayerCancelled => "payment_cancelled",
            Self::ProviderRefused => "provider_refused",
            Self::Other(code) => code,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::CardDeclined => "Your card was declined.",
            Self::InsufficientFunds => "Your card has insufficient funds.",
            Self::ExpiredCard => "Your card has expired.",
            Self::ProcessingError => "A temporary error occurred while processing your card.",
            Self::AuthenticationFailed => "Card authentication (3-D Secure) failed or was cancelled.",
            Self::InvalidPaymentMethod => "The payment method does not exist or cannot be used.",
            Self::PayerCancelled => "You cancelled the payment at PayPal; nothing was charged.",
            Self::ProviderRefused => {
                "The payment provider refused this payment's request; it was stopped and our team alerted."
            }
            Self::Other(_) => "The payment was declined.",
        }
    }

    pub fn suggested_action(&self) -> &'static str {
        match self {
            Self::CardDeclined => "Use a different card or another payment method.",
            Self::InsufficientFunds => "Choose a smaller package or use a different card.",
            Self::ExpiredCard => "Update your card details or use a different card.",
            Self::ProcessingError => "Nothing was charged. Try again in a moment.",
            Self::AuthenticationFailed => "Try again and complete the bank's authentication, or use another card.",
            Self::InvalidPaymentMethod => "Enter the card again or choose another payment method.",
            Self::PayerCancelled => "Start the PayPal checkout again, or pay by card.",
            Self::ProviderRefused => "Start a new checkout; if it happens again, contact support.",
            Self::Other(_) => "Use a different card or contact your bank.",
        }
    }

    /// What the fraud monitor counts against a client as a decline: the bank or the provider said no. A temporary
    /// error and a payer who turned back are not that.
    pub fn is_decline(&self) -> bool {
        !matches!(self, Self::ProcessingError | Self::PayerCancelled | Self::ProviderRefused)
    }

    /// Temporary failures are retried automatically; declines are not, since retrying them only annoys the bank.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::ProcessingError)
    }
}

impl From<FailureCode> for String {
    fn from(code: FailureCode) -> Self {
        code.code().to_owned()
    }
}

impl From<String> for FailureCode {
    fn from(code: String) -> Self {
        if code == "authentication_failed" { Self::AuthenticationFailed } else { Self::from_provider(&code) }
    }
}
