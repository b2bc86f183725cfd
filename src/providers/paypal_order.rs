//! Reading PayPal-shaped JSON (Orders v2 orders, Payments v2 captures, webhook events) into the purchase machine's
//! vocabulary. The sandbox and the PayPal adapter both go through here.
use super::ProviderError;
use crate::domain::dispute::{Report, Standing};
use crate::domain::failure::FailureCode;
use crate::domain::money::{Currency, Money};
use crate::domain::purchase::{IntentStatus, IntentUpdate, SellerProtection};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub resource: Value,
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

/// The payer's approval link of an order (`payer-action`, or `approve` in older answers).
fn approval_link(order: &Value) -> Option<String> {
    order.get("links")?.as_array()?.iter().find_map(|link| {
        let rel = link.get("rel")?.as_str()?;
        (rel == "payer-action" || rel == "approve").then(|| link.get("href")?.as_str().map(str::to_owned)).flatten()
    })
}

/// What the payer paid with: the key of `payment_source` (`paypal`, `venmo`, `card`…).
fn funding_source(order: &Value) -> Option<String> {
    order.get("payment_source")?.as_object()?.keys().next().cloned()
}

/// A capture's status as a provider update on its order.
fn capture_update(order_id: String, capture: &Value, funding: Option<String>) -> IntentUpdate {
    let (status, failure) = match capture.get("status").and_then(Value::as_str) {
        Some("COMPLETED") => (IntentStatus::Succeeded, None),
        Some("PENDING") => (IntentStatus::Processing, None),
        // DECLINED, FAILED, DENIED: the funding source refused; the payer has to choose again.
        _ => (IntentStatus::RequiresPaymentMethod, Some(FailureCode::CardDeclined)),
    };
    IntentUpdate {
        intent_id: order_id,
        status,
        client_secret: None,
        next_action: None,
        charge: text(capture, "/id"),
        failure,
        bank_debit: false,
        funding_source: funding,
        paid: amount(capture.get("amount")),
        seller_protection: seller_protection(capture),
        risk: None,
        receipt_url: None,
    }
}

/// A capture's `seller_protection`, as PayPal reports it on every capture.
fn seller_protection(capture: &Value) -> Option<SellerProtection> {
    let protection = capture.get("seller_protection")?;
    let categories = protection.get("dispute_categories").and_then(Value::as_array);
    Some(SellerProtection {
        status: protection.get("status")?.as_str()?.to_owned(),
        dispute_categories: categories.into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect(),
    })
}

/// A PayPal amount (`{ "currency_code", "value" }`) as money.
fn amount(amount: Option<&Value>) -> Option<Money> {
    let amount = amount?;
    let currency = Currency::parse(amount.get("currency_code")?.as_str()?).ok()?;
    Money::new(currency.minor_from_decimal(amount.get("value")?.as_str()?).ok()?, currency).ok()
}

pub fn parse_order(order: &Value) -> Result<IntentUpdate, ProviderError> {
    let malformed = |what: &str| ProviderError::Unreachable(format!("PayPal sent an order without {what}"));
    let id = text(order, "/id").ok_or_else(|| malformed("an id"))?;
    let funding = funding_source(order);
    if let Some(capture) = order.pointer("/purchase_units/0/payments/captures/0") {
        return Ok(capture_update(id, capture, funding));
    }
    let status = match order.get("status").and_then(Value::as_str).ok_or_else(|| malformed("a status"))? {
        "CREATED" | "SAVED" | "PAYER_ACTION_REQUIRED" => IntentStatus::RequiresAction,
        "APPROVED" => IntentStatus::RequiresConfirmation,
        "COMPLETED" => IntentStatus::Succeeded,
        "VOIDED" => IntentStatus::Canceled,
        _ => return Err(malformed("a known status")),
    };
    let next_action = approval_link(order)
        .filter(|_| status == IntentStatus::RequiresAction)
        .map(|url| json!({ "type": "redirect_to_url", "redirect_to_url": { "url": url } }));
    Ok(IntentUpdate {
        intent_id: id,
        status,
        client_secret: None,
        next_action,
        charge: None,
        failure: None,
        bank_debit: false,
        funding_source: funding,
        paid: amount(order.pointer("/purchase_units/0/amount")),
        seller_protection: None,
        risk: None,
        receipt_url: None,
    })
}

/// A `PAYMENT.CAPTURE.*` resource: the capture, pointing at its order and (through `custom_id`) at the purchase.
pub fn parse_capture(capture: &Value) -> Option<(Option<Uuid>, IntentUpdate)> {
    let order_id = text(capture, "/supplementary_data/related_ids/order_id")?;
    let purchase = text(capture, "/custom_id").and_then(|id| id.parse().ok());
    Some((purchase, capture_update(order_id, capture, None)))
}

/// A PayPal dispute, from a `CUSTOMER.DISPUTE.*` event or `GET /v1/customer/disputes/{id}`.
pub fn parse_dispute(dispute: &Value) -> Option<Report> {
    let status = text(dispute, "/status")?;
    let outcome = text(dispute, "/dispute_outcome/outcome_code");
    let disputed = amount(dispute.get("dispute_amount"));
    Some(Report {
        id: text(dispute, "/dispute_id")?,
        provider: "paypal",
        payment: text(dispute, "/disputed_transactions/0/seller_transaction_id"),
        reason: text(dispute, "/reason").unwrap_or_else(|| "OTHER".into()),
        standing: Standing::from_paypal(&status, outcome.as_deref()),
        provider_status: outcome.map_or(status.clone(), |outcome| format!("{status} ({outcome})")),
        amount: disputed.map(|m| m.minor),
        currency: disputed.map(|m| m.currency.code().to_owned()),
        evidence_due_by: text(dispute, "/seller_response_due_date")
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
            .map(|at| at.with_timezone(&chrono::Utc)),
        details: dispute.clone(),
    })
}

/// The purchase an order belongs to, from the `custom_id` Purser set on its purchase unit.
pub fn order_purchase(order: &Value) -> Option<Uuid> {
    text(order, "/purchase_units/0/custom_id")?.parse().ok()
}

/// The approval URL handed to the client, from a purchase's `next_action`.
pub fn approval_url(next_action: Option<&Value>) -> Option<String> {
    next_action?.pointer("/redirect_to_url/url")?.as_str().map(str::to_owned)
}

/// A capture PayPal refused (`INSTRUMENT_DECLINED`): a failed attempt on the order, not a failed call. The request id
/// stands in for the capture that was never made, so the refusal counts once.
pub fn refused_capture(order_id: &str, request_id: &str, issue: &str) -> IntentUpdate {
    IntentUpdate {
        intent_id: order_id.to_owned(),
        status: IntentStatus::RequiresPaymentMethod,
        client_secret: None,
        next_action: None,
        charge: Some(request_id.to_owned()),
        failure: Some(FailureCode::from_provider(issue)),
        bank_debit: false,
        funding_source: None,
        paid: None,
        seller_protection: None,
        risk: None,
        receipt_url: None,
    }
}
