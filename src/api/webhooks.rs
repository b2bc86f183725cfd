//! The provider webhooks: verify the signature on the raw body, parse, and hand the event to the inbox
//! (`app::inbox`), which stores it once and routes it; answer at once.
use super::AppState;
use super::client_addr::ClientAddr;
use super::error::{ApiError, ErrorEnvelope};
use super::extract::body_rejection;
use crate::app::inbox::Received;
use crate::domain::signature as stripe_signature;
use crate::guards::fraud::FraudMsg;
use crate::guards::rate_limit::RateMsg;
use crate::providers::stripe_event;
use crate::providers::{ProviderError, paypal_order};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[utoipa::path(post, path = "/api/v1/webhooks/stripe", operation_id = "stripe_webhook", tag = "webhooks",
    request_body(content = String, description = "A Stripe event, exactly as sent", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256>")),
    responses(
        (status = 200, description = "Stored (or a duplicate, acknowledged and dropped)"),
        (status = 400, description = "Bad or missing signature, or not an event", body = ErrorEnvelope),
        (status = 429, description = "This sender sent too many webhooks that failed verification", body = ErrorEnvelope),
    ))]
pub async fn stripe(
    State(state): State<AppState>,
    ClientAddr(client_ip): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_rejection(e.status()))?;
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let secrets: Vec<&str> = state.webhook_secrets.iter().map(String::as_str).collect();
    if let Err(e) = stripe_signature::verify(&body, signature, &secrets, chrono::Utc::now().timestamp()) {
        return Ok(refuse(&state, client_ip, "stripe", e.to_string()).await);
    }
    let event: stripe_event::Event = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_event", format!("Not a Stripe event: {e}")))?;
    acknowledge(state.inbox.stripe(event, &String::from_utf8_lossy(&body)).await?)
}

fn acknowledge(received: Received) -> Result<Response, ApiError> {
    let body = match received {
        Received::New => json!({ "received": true }),
        Received::Duplicate => json!({ "received": true, "duplicate": true }),
    };
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// What PayPal signs every webhook with (its verify-webhook-signature API needs them all).
const PAYPAL_HEADERS: [&str; 5] = [
    "paypal-transmission-id",
    "paypal-transmission-time",
    "paypal-transmission-sig",
    "paypal-cert-url",
    "paypal-auth-algo",
];

/// A webhook that failed verification: 400, or 429 once its sender has spent its budget of failures. The fraud
/// monitor counts those within the sender's budget: a burst across the platform is a breach (AC9.3.7), but one
/// sender past its budget is only turned away, so it cannot pause the platform alone.
async fn refuse(state: &AppState, sender: std::net::IpAddr, provider: &'static str, reason: String) -> Response {
    tracing::warn!(%reason, %provider, sender = %sender, "webhook refused");
    let ctx = state.purchases.context();
    let spend = |reply| RateMsg::BadWebhook { ip: sender, reply };
    match ctx.limiter.call(spend, ctx.call_timeout).await.unwrap_or(Err(std::time::Duration::ZERO)) {
        Ok(()) => {
            ctx.fraud.cast(FraudMsg::SignatureFailed { provider, sender });
            ApiError::bad_request("invalid_signature", reason).into_response()
        }
        Err(wait) => super::guard::too_many(wait, "webhooks that failed verification"),
    }
}

/// `POST /api/v1/webhooks/paypal`: verified (PayPal's verify-webhook-signature, or the sandbox's own check), stored
/// once per event id, answered at once, then routed.
#[utoipa::path(post, path = "/api/v1/webhooks/paypal", operation_id = "paypal_webhook", tag = "webhooks",
    request_body(content = String, description = "A PayPal webhook event, exactly as sent", content_type = "application/json"),
    params(("PAYPAL-TRANSMISSION-SIG" = String, Header, description = "With PAYPAL-TRANSMISSION-ID, -TIME, PAYPAL-CERT-URL and PAYPAL-AUTH-ALGO")),
    responses((status = 200, description = "Stored (or a duplicate, acknowledged and dropped)"),
        (status = 400, description = "Signature not verified, or not an event", body = ErrorEnvelope),
        (status = 429, description = "This sender sent too many webhooks that failed verification", body = ErrorEnvelope),
        (status = 503, description = "`provider_unavailable`: PayPal's signature check did not answer; PayPal sends the event again", body = ErrorEnvelope)))]
pub async fn paypal(
    State(state): State<AppState>,
    ClientAddr(client_ip): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_rejection(e.status()))?;
    // PayPal's verification is a call to PayPal: only for a request that carries its headers, from a sender still
    // within its budget of failures.
    let missing = PAYPAL_HEADERS.iter().find(|name| headers.get(**name).is_none_or(|v| v.is_empty()));
    if let Some(name) = missing {
        return Ok(refuse(&state, client_ip, "paypal", format!("The webhook has no {name} header.")).await);
    }
    let ctx = state.purchases.context();
    let sender = |reply| RateMsg::WebhookSender { ip: client_ip, reply };
    if let Some(Err(wait)) = ctx.limiter.call(sender, ctx.call_timeout).await {
        return Ok(super::guard::too_many(wait, "webhooks that failed verification"));
    }
    // Not spent from PayPal's outbound budget (`provider_call`): a flood of forged events would spend it and so
    // pause the PayPal rail; the senders' own budgets above bound what they cost.
    match state.gateways.paypal.verify_webhook(&headers, &body).await {
        Ok(()) => {}
        Err(ProviderError::Rejected { message, .. }) => {
            let reason = format!("The webhook signature was not verified: {message}");
            return Ok(refuse(&state, client_ip, "paypal", reason).await);
        }
        // PayPal did not answer its own check: nothing is known of the sender, so nothing is held against it, and
        // PayPal sends the event again on the error.
        Err(ProviderError::Unreachable(e) | ProviderError::Throttled(e)) => {
            tracing::warn!(error = %e, "PayPal's signature check did not answer: webhook left for PayPal's retry");
            let message = "PayPal's signature check did not answer; send the event again.";
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", message));
        }
    }
    let event: paypal_order::Event = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_event", format!("Not a PayPal event: {e}")))?;
    acknowledge(state.inbox.paypal(event, &String::from_utf8_lossy(&body)).await?)
}
