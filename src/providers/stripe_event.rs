//! Reading Stripe-shaped JSON: webhook events and PaymentIntent objects. The sandbox speaks the same shapes, so one
//! parser serves both and the sandbox exercises the real path.
use crate::domain::failure::FailureCode;
use crate::domain::purchase::{IntentStatus, IntentUpdate};
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
    /// The purchase this event is about, from the metadata Purser put on the intent.
    pub fn purchase_id(&self) -> Option<Uuid> {
        self.data.object.pointer("/metadata/purchase_id")?.as_str()?.parse().ok()
    }

    pub fn is_payment_intent(&self) -> bool {
        self.data.object.get("object").and_then(Value::as_str) == Some("payment_intent")
    }
}

pub fn parse_intent(object: &Value) -> Result<IntentUpdate, ProviderError> {
    let malformed = |what: &str| ProviderError::Unreachable(format!("provider sent a payment intent without {what}"));
    let intent_id = object.get("id").and_then(Value::as_str).ok_or_else(|| malformed("an id"))?;
    let status = match object.get("status").and_then(Value::as_str).ok_or_else(|| malformed("a status"))? {
        "requires_payment_method" => IntentStatus::RequiresPaymentMethod,
        "requires_confirmation" => IntentStatus::RequiresConfirmation,
        "requires_action" => IntentStatus::RequiresAction,
        "processing" => IntentStatus::Processing,
        "succeeded" => IntentStatus::Succeeded,
        "canceled" => IntentStatus::Canceled,
        // `requires_capture` does not occur: Purser creates intents with automatic capture.
        _ => return Err(malformed("a known status")),
    };
    let error = object.get("last_payment_error").filter(|e| !e.is_null());
    let failure = error.map(|e| {
        let field = |name: &str| e.get(name).and_then(Value::as_str);
        let code = field("decline_code").or_else(|| field("code")).unwrap_or("card_declined");
        FailureCode::from_provider(code)
    });
    let charge = match object.get("latest_charge") {
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Object(charge)) => charge.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    Ok(IntentUpdate {
        intent_id: intent_id.to_owned(),
        status,
        client_secret: object.get("client_secret").and_then(Value::as_str).map(str::to_owned),
        next_action: object.get("next_action").filter(|a| !a.is_null()).cloned(),
        charge,
        failure,
    })
}
