//! `POST /api/v1/webhooks/stripe`: verify the signature on the raw body, store the event in the inbox (a duplicate
//! is acknowledged and dropped), answer at once, then route it to its purchase's actor.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope};
use super::extract::body_rejection;
use crate::domain::purchase::Input;
use crate::providers::{stripe_event, stripe_signature};
use crate::store::webhooks::{self, IncomingEvent, Recorded};
use crate::store::{customers, payment_methods};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[utoipa::path(post, path = "/api/v1/webhooks/stripe", tag = "webhooks",
    request_body(content = String, description = "A Stripe event, exactly as sent", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256>")),
    responses(
        (status = 200, description = "Stored (or a duplicate, acknowledged and dropped)"),
        (status = 400, description = "Bad or missing signature, or not an event", body = ErrorEnvelope),
    ))]
pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_rejection(e.status()))?;
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let secrets: Vec<&str> = state.webhook_secrets.iter().map(String::as_str).collect();
    if let Err(e) = stripe_signature::verify(&body, signature, &secrets, chrono::Utc::now().timestamp()) {
        tracing::warn!(reason = %e, "stripe webhook refused");
        return Err(ApiError::bad_request("invalid_signature", e.to_string()));
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

async fn route(
    state: AppState,
    event: stripe_event::Event,
    row: i64,
    purchase_id: Option<uuid::Uuid>,
) -> Result<(), ApiError> {
    match event.event_type.as_str() {
        kind if kind.starts_with("payment_intent.") && event.is_payment_intent() => {
            let (Some(id), Ok(update)) = (purchase_id, stripe_event::parse_intent(&event.data.object)) else {
                webhooks::mark(&state.db, row, webhooks::UNROUTABLE, Some("no purchase_id in metadata".into())).await?;
                return Ok(());
            };
            tokio::spawn(async move { state.purchases.deliver_webhook(id, Input::Provider(update), row).await });
        }
        "payment_method.attached" => remember_method(&state, &event, row).await?,
        "payment_method.detached" => {
            if let Some(id) = event.data.object.get("id").and_then(|id| id.as_str()) {
                payment_methods::forget(&state.db, id).await?;
            }
            webhooks::mark(&state.db, row, webhooks::PROCESSED, None).await?;
        }
        // Stored and acknowledged; refunds and disputes act on them when they arrive.
        _ => webhooks::mark(&state.db, row, webhooks::IGNORED, None).await?,
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
            webhooks::mark(&state.db, row, webhooks::PROCESSED, None).await?;
        }
        _ => {
            webhooks::mark(&state.db, row, webhooks::UNROUTABLE, Some("no known customer for this method".into()))
                .await?
        }
    }
    Ok(())
}
