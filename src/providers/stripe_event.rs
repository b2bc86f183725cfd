//! Reading Stripe-shaped JSON: webhook events and PaymentIntent objects. The sandbox speaks the same shapes, so one
//! parser serves both and the sandbox exercises the real path.
use crate::domain::dispute::{Report, Standing};
use crate::domain::failure::FailureCode;
use crate::domain::ids::PaymentMethodId;
use crate::domain::money::{Currency, Money};
use crate::domain::purchase::{IntentStatus, IntentUpdate, Risk};
use crate::domain::saved_method::SavedMethod;
use crate::providers::ProviderError;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: Value,
}

impl Event {
    /// The purchase this event is about, from the metadata Purser put on the intent (a bare UUID; `txn_…` too).
    pub fn purchase_id(&self) -> Option<Uuid> {
        let id = self.data.object.pointer("/metadata/purchase_id")?.as_str()?;
        crate::domain::ids::TransactionId::parse(id).ok().map(|id| id.0)
    }

    pub fn is_payment_intent(&self) -> bool {
        self.data.object.get("object").and_then(Value::as_str) == Some("payment_intent")
    }
}

/// Stripe's PaymentIntent status names. `requires_capture` never occurs: Purser creates intents with automatic
/// capture.
pub fn intent_status(status: &str) -> Option<IntentStatus> {
    Some(match status {
        "requires_payment_method" => IntentStatus::RequiresPaymentMethod,
        "requires_confirmation" => IntentStatus::RequiresConfirmation,
        "requires_action" => IntentStatus::RequiresAction,
        "processing" => IntentStatus::Processing,
        "succeeded" => IntentStatus::Succeeded,
        "canceled" => IntentStatus::Canceled,
        _ => return None,
    })
}

/// Stripe reports most declines as `code: card_declined` with the finer reason in `decline_code`.
pub fn failure(decline_code: Option<&str>, code: Option<&str>) -> FailureCode {
    FailureCode::from_provider(decline_code.or(code).unwrap_or("card_declined"))
}

pub fn parse_intent(object: &Value) -> Result<IntentUpdate, ProviderError> {
    let malformed = |what: &str| ProviderError::Unreachable(format!("provider sent a payment intent without {what}"));
    let field = |value: &Value, name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let intent_id = field(object, "id").ok_or_else(|| malformed("an id"))?;
    let status = field(object, "status").and_then(|s| intent_status(&s)).ok_or_else(|| malformed("a known status"))?;
    let error = object.get("last_payment_error").filter(|e| !e.is_null());
    let charge = match object.get("latest_charge") {
        Some(Value::String(id)) => Some(id.clone()),
        Some(charge @ Value::Object(_)) => field(charge, "id"),
        _ => None,
    };
    Ok(IntentUpdate {
        intent_id,
        status,
        client_secret: field(object, "client_secret"),
        next_action: object.get("next_action").filter(|a| !a.is_null()).cloned(),
        charge,
        failure: error.map(|e| failure(field(e, "decline_code").as_deref(), field(e, "code").as_deref())),
        bank_debit: object
            .get("payment_method_types")
            .and_then(Value::as_array)
            .is_some_and(|types| types.iter().any(|t| t == "us_bank_account")),
        funding_source: None,
        paid: paid(object),
        seller_protection: None,
        // Radar's verdict is on the charge, present only where the charge is expanded.
        risk: object.get("latest_charge").filter(|c| c.is_object()).map(|charge| Risk {
            level: charge.pointer("/outcome/risk_level").and_then(Value::as_str).unwrap_or("not_assessed").to_owned(),
            score: charge.pointer("/outcome/risk_score").and_then(Value::as_i64),
        }),
        receipt_url: object.pointer("/latest_charge/receipt_url").and_then(Value::as_str).map(str::to_owned),
    })
}

/// What a succeeded intent received: `amount_received` (or `amount`) in `currency`.
fn paid(object: &Value) -> Option<Money> {
    let received = object.get("amount_received").and_then(Value::as_i64).filter(|n| *n > 0);
    let amount = received.or_else(|| object.get("amount").and_then(Value::as_i64))?;
    let currency = Currency::parse(&object.get("currency")?.as_str()?.to_ascii_uppercase()).ok()?;
    Money::new(amount, currency).ok()
}

/// A Stripe dispute object, from a `charge.dispute.*` event or the answer to an update or close.
pub fn parse_dispute(object: &Value) -> Option<Report> {
    let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
    let status = text("status")?;
    Some(Report {
        id: text("id")?,
        provider: "stripe",
        payment: text("payment_intent"),
        reason: text("reason").unwrap_or_else(|| "general".into()),
        standing: Standing::from_stripe(&status),
        provider_status: status,
        amount: object.get("amount").and_then(Value::as_i64),
        currency: text("currency").map(|c| c.to_ascii_uppercase()),
        evidence_due_by: object
            .pointer("/evidence_details/due_by")
            .and_then(Value::as_i64)
            .and_then(|at| chrono::DateTime::from_timestamp(at, 0)),
        details: object.clone(),
    })
}

/// A Stripe PaymentMethod attached to a Customer (`payment_method.attached`), as Purser keeps it.
pub fn parse_method(object: &Value) -> Option<SavedMethod> {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let number = |value: Option<&Value>| value.and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok());
    let kind = text(object.get("type"))?;
    let details = object.get(&kind);
    let detail = |name: &str| details.and_then(|d| d.get(name));
    Some(SavedMethod {
        id: PaymentMethodId::parse(object.get("id")?.as_str()?).ok()?,
        customer: text(object.get("customer"))?,
        brand: text(detail("brand")).or_else(|| text(detail("bank_name"))),
        last4: text(detail("last4")),
        exp_month: number(detail("exp_month")),
        exp_year: number(detail("exp_year")),
        wallet: text(detail("wallet").and_then(|w| w.get("type"))),
        kind,
    })
}
