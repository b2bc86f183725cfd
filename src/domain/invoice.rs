//! An invoice as issued: who sold, who bought, what, for how much. Written once, in the transaction that grants the
//! credits, and rendered from this record ever after.
use super::purchase::{Purchase, Rail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seller {
    pub name: String,
    pub address: String,
    pub tax_id: Option<String>,
    /// ISO 3166-1 alpha-2: decides when a business sale is reverse-charged.
    #[serde(default)]
    pub country: String,
}

/// Who issues invoices and the tax rates they apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Issuer {
    pub seller: Seller,
    pub rates: Vec<TaxRate>,
}

/// A tax rate for one jurisdiction, in basis points (1900 = 19 %): integers only, as for money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    pub country: String,
    pub name: String,
    pub rate_bp: i64,
}

/// A business account's billing profile (AC9.4.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingProfile {
    pub company_name: String,
    pub address: String,
    pub country: String,
    pub tax_id: Option<String>,
}

/// The tax contained in what a business paid, for its jurisdiction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxBreakdown {
    pub jurisdiction: String,
    pub tax_name: String,
    pub rate_bp: i64,
    /// Minor units.
    pub net: i64,
    pub tax: i64,
    pub gross: i64,
    /// A business customer in another country with a tax id accounts for the tax itself.
    pub reverse_charge: bool,
}

/// Prices are what the client pays (tax included). The tax in them is `gross × rate ÷ (1 + rate)`, rounded half up
/// to the minor unit; net is the rest, so net + tax is always exactly the gross.
pub fn breakdown(gross: i64, seller: &Seller, buyer: &BillingProfile, rates: &[TaxRate]) -> TaxBreakdown {
    let rate = rates.iter().find(|r| r.country.eq_ignore_ascii_case(&buyer.country));
    let reverse_charge =
        buyer.tax_id.is_some() && !buyer.country.eq_ignore_ascii_case(&seller.country) && rate.is_some();
    let rate_bp = if reverse_charge { 0 } else { rate.map_or(0, |r| r.rate_bp) };
    let tax = (i128::from(gross) * i128::from(rate_bp) * 2 + i128::from(10_000 + rate_bp))
        / (2 * i128::from(10_000 + rate_bp));
    let tax = i64::try_from(tax).unwrap_or(0);
    TaxBreakdown {
        jurisdiction: buyer.country.to_ascii_uppercase(),
        tax_name: rate.map_or_else(|| "Tax".to_owned(), |r| r.name.clone()),
        rate_bp,
        net: gross - tax,
        tax,
        gross,
        reverse_charge,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvoiceDocument {
    pub number: i64,
    pub issued_at: DateTime<Utc>,
    pub seller: Seller,
    pub buyer_id: String,
    pub buyer_email: Option<String>,
    /// For business accounts: who they are, and the tax in the price by jurisdiction.
    #[serde(default)]
    pub business: Option<BillingProfile>,
    #[serde(default)]
    pub tax: Option<TaxBreakdown>,
    pub transaction_id: String,
    pub description: String,
    pub credits: i64,
    /// Decimal string in `currency`, e.g. "160.00".
    pub amount: String,
    pub currency: String,
    pub method: String,
}

impl InvoiceDocument {
    pub fn for_purchase(
        number: i64,
        seller: &Seller,
        rates: &[TaxRate],
        business: Option<BillingProfile>,
        purchase: &Purchase,
        now: DateTime<Utc>,
    ) -> Self {
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
            tax: business.as_ref().map(|profile| breakdown(purchase.price.minor, seller, profile, rates)),
            business,
            transaction_id: super::ids::TransactionId(purchase.id).to_string(),
            description: format!("Credit package {} ({} credits)", purchase.package.as_str(), purchase.credits.0),
            credits: purchase.credits.0,
            amount: purchase.price.decimal(),
            currency: purchase.price.currency.code().to_owned(),
            method,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seller() -> Seller {
        Seller { name: "S".into(), address: "A".into(), tax_id: Some("DE1".into()), country: "DE".into() }
    }

    fn rates() -> Vec<TaxRate> {
        vec![
            TaxRate { country: "DE".into(), name: "VAT".into(), rate_bp: 1900 },
            TaxRate { country: "FR".into(), name: "TVA".into(), rate_bp: 2000 },
        ]
    }

    fn buyer(country: &str, tax_id: Option<&str>) -> BillingProfile {
        BillingProfile {
            company_name: "B".into(),
            address: "X".into(),
            country: country.into(),
            tax_id: tax_id.map(str::to_owned),
        }
    }

    #[test]
    fn tax_is_carved_out_of_the_gross_exactly() {
        let de = breakdown(16000, &seller(), &buyer("DE", Some("DE2")), &rates());
        assert_eq!((de.net, de.tax, de.gross, de.reverse_charge), (13445, 2555, 16000, false)); // 16000 × 19/119 = 2554.6
        let fr = breakdown(16000, &seller(), &buyer("FR", Some("FR9")), &rates());
        assert_eq!((fr.tax, fr.net, fr.reverse_charge), (0, 16000, true));
        let fr_no_id = breakdown(16000, &seller(), &buyer("FR", None), &rates());
        assert_eq!((fr_no_id.tax, fr_no_id.rate_bp), (2667, 2000));
        let us = breakdown(16000, &seller(), &buyer("US", Some("X")), &rates());
        assert_eq!((us.tax, us.reverse_charge), (0, false));
    }
}
