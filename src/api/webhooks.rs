//! `POST /api/v1/webhooks/stripe`: verify the signature on the raw body, store the event in the inbox (a duplicate
//! is acknowledged and dropped), answer at once, then route it to its purchase's actor.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope};
use super::extract::body_rejection;
use crate::domain::money::minor_from_decimal;
use crate::domain::purchase::Input;
use crate::domain::purchase::IntentUpdate;
use crate::domain::refund::RefundInput;
use crate::guards::fraud::FraudMsg;
use crate::providers::paypal_order;
use crate::providers::{stripe_event, stripe_signature};
use crate::store::disputes::{self, Dispute};
use crate::store::webhooks::{self, IncomingEvent, Recorded};
use crate::store::{customers, payment_methods, purchases, refunds};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use serde_json::json;
use std::net::SocketAddr;

#[utoipa::path(post, path = "/api/v1/webhooks/stripe", tag = "webhooks",
    request_body(content = String, description = "A Stripe event, exactly as sent", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256>")),
    responses(
        (status = 200, description = "Stored (or a duplicate, acknowledged and dropped)"),
        (status = 400, description = "Bad or missing signature, or not an event", body = ErrorEnvelope),
        (status = 429, description = "This sender sent too many webhooks that failed verification", body = ErrorEnvelope),
    ))]
pub async fn stripe(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_rejection(e.status()))?;
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let secrets: Vec<&str> = state.webhook_secrets.iter().map(String::as_str).collect();
    if let Err(e) = stripe_signature::verify(&body, signature, &secrets, chrono::Utc::now().timestamp()) {
        return Ok(refuse(&state, peer, "stripe", e.to_string()));
    }
    let event: stripe_event::Event = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_event", format!("Not a Stripe event: {e}")))?;
    let purchase_id = event.purchase_id();
    let payload = String::from_utf8_lossy(&body);
    let recorded = webhooks::record(
        &state.db,
        IncomingEvent {
            provider: "stripe",
            event_id: &event.id,
            event_type: &event.event_type,
            payload: &payload,
            purchase_id,
        },
    )
    .await?;
    let Recorded::New(row) = recorded else {
        return Ok((StatusCode::OK, axum::Json(json!({ "received": true, "duplicate": true }))).into_response());
    };
    route(state, event, row, purchase_id).await?;
    Ok((StatusCode::OK, axum::Json(json!({ "received": true }))).into_response())
}

/// A webhook that failed verification: 400, or 429 once its sender has spent its budget of failures. The fraud
/// monitor counts every one: a burst across the platform is a breach (AC9.3.7).
fn refuse(state: &AppState, peer: SocketAddr, provider: &'static str, reason: String) -> Response {
    tracing::warn!(%reason, %provider, sender = %peer.ip(), "webhook refused");
    state.purchases.context().fraud.cast(FraudMsg::SignatureFailed { provider });
    match state.limits.bad_webhook(peer.ip()) {
        Ok(()) => ApiError::bad_request("invalid_signature", reason).into_response(),
        Err(wait) => super::guard::too_many(wait, "webhooks that failed verification"),
    }
}

async fn route(
    state: AppState,
    event: stripe_event::Event,
    row: i64,
    purchase_id: Option<uuid::Uuid>,
) -> Result<(), ApiError> {
    match event.event_type.as_str() {
        kind if kind.starts_with("payment_intent.") && event.is_payment_intent() => {
            let update = stripe_event::parse_intent(&event.data.object);
            let purchase_id = match (purchase_id, &update) {
                (Some(id), _) => Some(id),
                // An intent made without Purser's metadata (or an older event): its id still names the purchase.
                (None, Ok(update)) => {
                    purchases::find_by_intent(&state.db, &update.intent_id).await?.map(|s| s.purchase.id)
                }
                (None, Err(_)) => None,
            };
            let (Some(id), Ok(update)) = (purchase_id, update) else {
                webhooks::mark(
                    &state.db,
                    row,
                    webhooks::InboxStatus::Unroutable,
                    Some("no purchase_id in metadata".into()),
                )
                .await?;
                return Ok(());
            };
            tokio::spawn(async move { state.purchases.deliver_webhook(id, Input::Provider(update), row).await });
        }
        "payment_method.attached" => remember_method(&state, &event, row).await?,
        "charge.refunded" => {
            let charge = &event.data.object;
            let stored = match charge.get("payment_intent").and_then(Value::as_str) {
                Some(intent) => purchases::find_by_intent(&state.db, intent).await?,
                None => None,
            };
            let refund_id = charge.pointer("/refunds/data/0/id").or_else(|| charge.get("id")).and_then(Value::as_str);
            settle_refund(&state, stored.map(|s| s.purchase.id), refund_id.unwrap_or("charge.refunded"), row).await?;
        }
        "charge.dispute.created" | "charge.dispute.updated" | "charge.dispute.closed" => {
            let dispute = &event.data.object;
            let stored = match dispute.get("payment_intent").and_then(Value::as_str) {
                Some(intent) => purchases::find_by_intent(&state.db, intent).await?,
                None => None,
            };
            let text = |name: &str| dispute.get(name).and_then(Value::as_str).unwrap_or("unknown").to_owned();
            let record = Dispute {
                id: text("id"),
                provider: "stripe",
                purchase_id: stored.as_ref().map(|s| s.purchase.id),
                client_id: stored.as_ref().map(|s| s.purchase.client.as_str().to_owned()),
                reason: text("reason"),
                status: text("status"),
                amount: dispute.get("amount").and_then(Value::as_i64),
                currency: dispute.get("currency").and_then(Value::as_str).map(str::to_ascii_uppercase),
                details: dispute.clone(),
            };
            disputes::record(&state.db, record).await?;
            webhooks::mark(&state.db, row, webhooks::InboxStatus::Processed, None).await?;
        }
        "payment_method.detached" => {
            if let Some(id) = event.data.object.get("id").and_then(|id| id.as_str()) {
                payment_methods::forget(&state.db, id).await?;
            }
            webhooks::mark(&state.db, row, webhooks::InboxStatus::Processed, None).await?;
        }
        // Stored and acknowledged; refunds and disputes act on them when they arrive.
        _ => webhooks::mark(&state.db, row, webhooks::InboxStatus::Ignored, None).await?,
    }
    Ok(())
}

/// AC9.1.6: a method attached to a client's customer (after "save for future") becomes a saved method.
async fn remember_method(state: &AppState, event: &stripe_event::Event, row: i64) -> Result<(), ApiError> {
    let method = stripe_event::parse_method(&event.data.object);
    let owner = match &method {
        Some(method) => customers::owner(&state.db, &method.customer).await?,
        None => None,
    };
    match (method, owner) {
        (Some(method), Some((client, provider))) => {
            payment_methods::upsert(&state.db, &client, &provider, &method).await?;
            webhooks::mark(&state.db, row, webhooks::InboxStatus::Processed, None).await?;
        }
        _ => {
            webhooks::mark(
                &state.db,
                row,
                webhooks::InboxStatus::Unroutable,
                Some("no known customer for this method".into()),
            )
            .await?
        }
    }
    Ok(())
}

/// `POST /api/v1/webhooks/paypal`: verified (PayPal's verify-webhook-signature, or the sandbox's own check), stored
/// once per event id, answered at once, then routed.
#[utoipa::path(post, path = "/api/v1/webhooks/paypal", tag = "webhooks",
    request_body(content = String, description = "A PayPal webhook event, exactly as sent", content_type = "application/json"),
    params(("PAYPAL-TRANSMISSION-SIG" = String, Header, description = "With PAYPAL-TRANSMISSION-ID, -TIME, PAYPAL-CERT-URL and PAYPAL-AUTH-ALGO")),
    responses((status = 200, description = "Stored (or a duplicate, acknowledged and dropped)"),
        (status = 400, description = "Signature not verified, or not an event", body = ErrorEnvelope),
        (status = 429, description = "This sender sent too many webhooks that failed verification", body = ErrorEnvelope)))]
pub async fn paypal(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_rejection(e.status()))?;
    if let Err(reason) = state.gateways.paypal.verify_webhook(&headers, &body).await {
        return Ok(refuse(&state, peer, "paypal", format!("The webhook signature was not verified: {reason}")));
    }
    let event: paypal_order::Event = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_event", format!("Not a PayPal event: {e}")))?;
    let payload = String::from_utf8_lossy(&body);
    let target = paypal_target(&state, &event).await?;
    let recorded = webhooks::record(
        &state.db,
        IncomingEvent {
            provider: "paypal",
            event_id: &event.id,
            event_type: &event.event_type,
            payload: &payload,
            purchase_id: target.as_ref().map(|(id, _)| *id),
        },
    )
    .await?;
    let Recorded::New(row) = recorded else {
        return Ok((StatusCode::OK, axum::Json(json!({ "received": true, "duplicate": true }))).into_response());
    };
    route_paypal(state, event, row, target).await?;
    Ok((StatusCode::OK, axum::Json(json!({ "received": true }))).into_response())
}

/// Acts on a stored PayPal event (on receipt, or replayed by an admin).
async fn route_paypal(
    state: AppState,
    event: paypal_order::Event,
    row: i64,
    target: Option<(uuid::Uuid, IntentUpdate)>,
) -> Result<(), ApiError> {
    match (event.event_type.as_str(), target) {
        ("PAYMENT.CAPTURE.REFUNDED", _) => {
            let resource = &event.resource;
            let mut purchase = resource.get("custom_id").and_then(Value::as_str).and_then(|id| id.parse().ok());
            if purchase.is_none() {
                let capture = resource.pointer("/links").and_then(Value::as_array).and_then(|links| {
                    links
                        .iter()
                        .find(|l| l["rel"] == "up")?
                        .get("href")?
                        .as_str()?
                        .rsplit('/')
                        .next()
                        .map(str::to_owned)
                });
                if let Some(capture) = capture {
                    purchase = purchases::find_by_charge(&state.db, &capture).await?.map(|s| s.purchase.id);
                }
            }
            let refund_id = resource.get("id").and_then(Value::as_str).unwrap_or("PAYMENT.CAPTURE.REFUNDED");
            settle_refund(&state, purchase, refund_id, row).await?;
        }
        (kind, _) if kind.starts_with("CUSTOMER.DISPUTE.") => {
            disputes::record(&state.db, paypal_dispute(&state, &event.resource).await?).await?;
            webhooks::mark(&state.db, row, webhooks::InboxStatus::Processed, None).await?;
        }
        (_, Some((id, update))) => {
            tokio::spawn(async move { state.purchases.deliver_webhook(id, Input::Provider(update), row).await });
        }
        _ => webhooks::mark(&state.db, row, webhooks::InboxStatus::Ignored, None).await?,
    }
    Ok(())
}

/// Runs a stored event through routing again: for events that failed or found no purchase (AC9.6.7). Its signature
/// was verified when it arrived; the inbox keeps it exactly as sent.
pub async fn replay(state: &AppState, row: &entities::webhook_events::Model) -> Result<(), ApiError> {
    let invalid = |e: serde_json::Error| ApiError::internal(format!("stored event {} is unreadable: {e}", row.id));
    match row.provider.as_str() {
        "paypal" => {
            let event: paypal_order::Event = serde_json::from_str(&row.payload).map_err(invalid)?;
            let target = paypal_target(state, &event).await?;
            route_paypal(state.clone(), event, row.id, target).await
        }
        _ => {
            let event: stripe_event::Event = serde_json::from_str(&row.payload).map_err(invalid)?;
            let purchase_id = event.purchase_id();
            route(state.clone(), event, row.id, purchase_id).await
        }
    }
}

/// The inbox sweep: at start and then every `every`, events that failed or whose routing died with a process are
/// run through routing again, so none waits for the provider's retry (or is lost when the retries end).
pub async fn sweep(state: AppState, every: std::time::Duration) {
    let grace = chrono::TimeDelta::from_std(every).unwrap_or(chrono::TimeDelta::MAX).min(chrono::TimeDelta::minutes(1));
    let mut stuck_since = chrono::Utc::now();
    loop {
        match webhooks::unapplied(&state.db, stuck_since).await {
            Ok(rows) => {
                for row in rows {
                    if let Err(e) = replay(&state, &row).await {
                        tracing::warn!(event = %row.event_id, error = e.message, "inbox sweep: event not applied");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "inbox sweep: inbox not read"),
        }
        tokio::time::sleep(every).await;
        // After the first pass, an event still `received` a while after it arrived has lost its routing.
        stuck_since = chrono::Utc::now() - grace;
    }
}

/// The purchase a PayPal order or capture event is about, and what it says.
async fn paypal_target(
    state: &AppState,
    event: &paypal_order::Event,
) -> Result<Option<(uuid::Uuid, IntentUpdate)>, ApiError> {
    let (purchase, update) = match event.event_type.as_str() {
        "CHECKOUT.ORDER.APPROVED" | "CHECKOUT.ORDER.COMPLETED" => {
            let Ok(update) = paypal_order::parse_order(&event.resource) else { return Ok(None) };
            (paypal_order::order_purchase(&event.resource), update)
        }
        "PAYMENT.CAPTURE.COMPLETED"
        | "PAYMENT.CAPTURE.PENDING"
        | "PAYMENT.CAPTURE.DENIED"
        | "PAYMENT.CAPTURE.DECLINED" => {
            let Some((purchase, update)) = paypal_order::parse_capture(&event.resource) else { return Ok(None) };
            (purchase, update)
        }
        _ => return Ok(None),
    };
    let purchase = match purchase {
        Some(id) => Some(id),
        None => purchases::find_by_intent(&state.db, &update.intent_id).await?.map(|s| s.purchase.id),
    };
    Ok(purchase.map(|id| (id, update)))
}

/// A PayPal dispute (AC9.2.5), tied to the purchase whose capture it disputes.
async fn paypal_dispute(state: &AppState, resource: &Value) -> Result<Dispute, ApiError> {
    let text = |pointer: &str| resource.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    let capture = text("/disputed_transactions/0/seller_transaction_id");
    let stored = match &capture {
        Some(capture) => purchases::find_by_charge(&state.db, capture).await?,
        None => None,
    };
    Ok(Dispute {
        id: text("/dispute_id").unwrap_or_else(|| "unknown".into()),
        provider: "paypal",
        purchase_id: stored.as_ref().map(|s| s.purchase.id),
        client_id: stored.as_ref().map(|s| s.purchase.client.as_str().to_owned()),
        reason: text("/reason").unwrap_or_else(|| "UNKNOWN".into()),
        status: text("/status").unwrap_or_else(|| "OPEN".into()),
        amount: text("/dispute_amount/value").and_then(|v| minor_from_decimal(&v).ok()),
        currency: text("/dispute_amount/currency_code"),
        details: resource.clone(),
    })
}

/// The provider reports a refund paid: the purchase's refund waiting on it is done. A refund already settled (by the
/// call's own answer) or made outside Purser changes nothing.
async fn settle_refund(
    state: &AppState,
    purchase: Option<uuid::Uuid>,
    provider_refund: &str,
    row: i64,
) -> Result<(), ApiError> {
    let waiting = match purchase {
        Some(purchase) => refunds::processing_for(&state.db, purchase).await?,
        None => None,
    };
    if let Some(id) = waiting {
        let input = RefundInput::Refunded { provider_refund: provider_refund.to_owned() };
        if let Err(e) = state.refunds.send(id, input).await {
            webhooks::mark(&state.db, row, webhooks::InboxStatus::Failed, Some(e.to_string())).await?;
            return Ok(());
        }
    }
    webhooks::mark(&state.db, row, webhooks::InboxStatus::Processed, None).await?;
    Ok(())
}
