//! A payment method saved in the provider's vault, as Purser may keep it: the token and what a person needs to
//! recognise the method (brand, last four digits, expiry, wallet). Never the number.
use super::ids::PaymentMethodId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMethod {
    pub id: PaymentMethodId,
    pub customer: String,
    /// `card` or `us_bank_account`.
    pub kind: String,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<i32>,
    pub exp_year: Option<i32>,
    /// `apple_pay`, `google_pay`… when the card came from a wallet.
    pub wallet: Option<String>,
}
