//! Stripe's test disputes, played by the sandbox: a payment with `pm_card_createDispute` succeeds and the payer's bank
//! disputes it at once; evidence whose text is `winning_evidence` wins it and `losing_evidence` loses it, as in
//! Stripe's test mode, other evidence leaves it under review, and closing it concedes it. Each change is sent as
//! Stripe's `charge.dispute.*` webhook, so the service's real path applies it.
use super::{ProviderError, Sandbox, intents, rejected};
use crate::domain::dispute::{Answer, Report};
use crate::domain::ids::new_key;
use crate::providers::stripe_event::parse_dispute;
use chrono::{Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

/// Stripe's test payment method whose charge is disputed as fraudulent.
pub const CREATE_DISPUTE: &str = "pm_card_createDispute";
/// How long Stripe gives the merchant to answer.
const EVIDENCE_DAYS: i64 = 7;

impl Sandbox {
    /// Opens the dispute a paid `pm_card_createDispute` intent draws, in the record of its payment.
    pub(super) fn open_dispute(intent: &mut intents::Model) {
        if intent.status == "succeeded"
            && intent.payment_method.as_deref() == Some(CREATE_DISPUTE)
            && intent.dispute_id.is_none()
        {
            intent.dispute_id = Some(format!("dp_sbx_{}", new_key().simple()));
            intent.dispute_status = Some("needs_response".into());
        }
    }

    /// Tells the service of a dispute opened by `open_dispute`.
    pub(super) fn announce_dispute(&self, intent: &intents::Model) {
        if intent.dispute_status.as_deref() == Some("needs_response") {
            self.send_webhook("charge.dispute.created", render_dispute(intent, "needs_response"));
        }
    }

    /// Answers a dispute, or (no answer) reads it.
    pub async fn dispute(&self, id: &str, answer: Option<&Answer>) -> Result<Report, ProviderError> {
        match answer {
            Some(answer) => self.call(Box::pin(self.decide_dispute(id, answer))).await,
            None => self.call(Box::pin(async { report(&self.disputed(id).await?, None) })).await,
        }
    }

    async fn disputed(&self, id: &str) -> Result<intents::Model, ProviderError> {
        let found = intents::Entity::find().filter(intents::Column::DisputeId.eq(id)).one(&self.db);
        found
            .await
            .map_err(super::db_error)?
            .ok_or_else(|| rejected("resource_missing", format!("No such dispute: '{id}'")))
    }

    async fn decide_dispute(&self, id: &str, answer: &Answer) -> Result<Report, ProviderError> {
        let mut intent = self.disputed(id).await?;
        if !matches!(intent.dispute_status.as_deref(), Some("needs_response")) {
            return Err(rejected("dispute_already_closed", format!("Dispute {id} is not waiting for a response")));
        }
        let decided = match answer {
            Answer::Accept { .. } => "lost",
            Answer::Evidence { text, .. } if text.trim() == "winning_evidence" => "won",
            Answer::Evidence { text, .. } if text.trim() == "losing_evidence" => "lost",
            Answer::Evidence { .. } => "under_review",
        };
        intent.dispute_status = Some(decided.into());
        let intent = self.store(intent).await?;
        // Submitted evidence is reviewed before the bank decides; a concession closes the dispute at once.
        let answered = match answer {
            Answer::Accept { .. } => "lost",
            Answer::Evidence { .. } => "under_review",
        };
        let event = if decided == "under_review" { "charge.dispute.updated" } else { "charge.dispute.closed" };
        self.send_webhook(event, render_dispute(&intent, decided));
        report(&intent, Some(answered))
    }
}

/// The dispute as the sandbox reports it: with `status`, or as it stands.
fn report(intent: &intents::Model, status: Option<&str>) -> Result<Report, ProviderError> {
    let status = status.or(intent.dispute_status.as_deref()).unwrap_or("needs_response");
    parse_dispute(&render_dispute(intent, status))
        .ok_or_else(|| ProviderError::Unreachable("sandbox dispute without an id".into()))
}

fn render_dispute(intent: &intents::Model, status: &str) -> Value {
    let due_by = intent.updated_at + Duration::days(EVIDENCE_DAYS);
    json!({
        "id": intent.dispute_id,
        "object": "dispute",
        "amount": intent.amount,
        "currency": intent.currency,
        "charge": intent.latest_charge,
        "payment_intent": intent.id,
        "reason": "fraudulent",
        "status": status,
        "evidence_details": { "due_by": due_by.timestamp(), "has_evidence": status != "needs_response",
            "past_due": false, "submission_count": u8::from(status != "needs_response") },
        "is_charge_refundable": false,
        "created": Utc::now().timestamp(),
        "livemode": false,
        "metadata": {},
    })
}
