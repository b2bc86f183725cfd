//! An invoice as issued: who sold, who bought, what, for how much. Written once, in the transaction that grants the
//! credits, and rendered from this record ever after.
use super::purchase::{Purchase, Rail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seller {
    pub name: String,
    pub address: String,
    pub tax_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvoiceDocument {
    pub number: i64,
    pub issued_at: DateTime<Utc>,
    pub seller: Seller,
    pub buyer_id: String,
    pub buyer_email: Option<String>,
    pub transaction_id: String,
    pub description: String,
    pub credits: i64,
    /// Decimal string in `currency`, e.g. "160.00".
    pub amount: String,
    pub currency: String,
    pub method: String,
}

impl InvoiceDocument {
    pub fn for_purchase(number: i64, seller: &Seller, purchase: &Purchase, now: DateTime<Utc>) -> Self {
        let method = match (purchase.rail, &purchase.funding_source) {
            (Rail::Paypal, Some(source)) => format!("PayPal ({source})"),
            (Rail::Paypal, None) => "PayPal".to_owned(),
            (Rail::Card, _) => "Card".to_owned(),
        };
        InvoiceDocument {
            number,
            issued_at: now,
            seller: seller.clone(),
            buyer_id: purchase.client.as_str().to_owned(),
            buyer_email: purchase.receipt_email.clone(),
            transaction_id: purchase.id.to_string(),
            description: format!("Credit package {} ({} credits)", purchase.package.as_str(), purchase.credits.0),
            credits: purchase.credits.0,
            amount: purchase.price.decimal(),
            currency: purchase.price.currency.code().to_owned(),
            method,
        }
    }
}
