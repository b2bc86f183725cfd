//! Pausing and resuming payment processing (admin), platform-wide or for one rail, with who and why.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope, ok};
use super::extract::{AdminCaller, ApiJson};
use crate::domain::fraud::Verdict;
use crate::domain::purchase::Rail;
use crate::guards::circuit::CircuitMsg;
use crate::guards::fraud::{FraudMsg, Screening};
use crate::guards::pause::{Pause, Scope};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// `platform`, `card` or `paypal`.
    scope: Scope,
    /// Recorded with the admin's id, and shown to clients while paused.
    #[schema(pattern = "\\S")]
    reason: String,
}

/// The pauses in force.
#[derive(serde::Serialize, ToSchema)]
pub struct Paused {
    paused: Vec<Pause>,
}

#[utoipa::path(get, path = "/api/v1/admin/controls", operation_id = "list_controls", tag = "admin",
    responses((status = 200, description = "The pauses in force", body = Paused), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, AdminCaller(_admin): AdminCaller) -> Response {
    ok(StatusCode::OK, Paused { paused: state.pauses.current() })
}

async fn change(state: &AppState, admin: &str, request: ControlRequest, paused: bool) -> Result<Response, ApiError> {
    if request.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason_required", "Say why: the reason is recorded and shown to clients."));
    }
    state.pauses.set(request.scope, paused, request.reason.trim(), admin, None).await?;
    Ok(ok(StatusCode::OK, Paused { paused: state.pauses.current() }))
}

#[utoipa::path(post, path = "/api/v1/admin/controls/pause", tag = "admin", request_body = ControlRequest,
    responses((status = 200, description = "The pauses in force"), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(request): ApiJson<ControlRequest>,
) -> Result<Response, ApiError> {
    change(&state, admin.id.as_str(), request, true).await
}

#[utoipa::path(post, path = "/api/v1/admin/controls/resume", tag = "admin", request_body = ControlRequest,
    responses((status = 200, description = "The pauses in force"), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(request): ApiJson<ControlRequest>,
) -> Result<Response, ApiError> {
    change(&state, admin.id.as_str(), request, false).await
}

fn other_rail(state: &AppState, rail: Rail) -> &'static str {
    let other = match rail {
        Rail::Card => Rail::Paypal,
        Rail::Paypal => Rail::Card,
    };
    match (state.pauses.blocking(other).is_none() && state.gateways.enabled(other), other) {
        (true, Rail::Card) => " Card payments are still available.",
        (true, Rail::Paypal) => " PayPal is still available.",
        (false, _) => "",
    }
}

/// 400 `rail_disabled` when `rail` is switched off, 503 `payments_paused` when it is paused, or `provider_unavailable` while its provider's circuit is open;
/// either names what is still open.
pub async fn ensure_open(state: &AppState, rail: Rail) -> Result<(), ApiError> {
    if !state.gateways.enabled(rail) {
        let name = match rail {
            Rail::Card => "Card",
            Rail::Paypal => "PayPal",
        };
        let message = format!("{name} payments are not offered by this service.{}", other_rail(state, rail));
        return Err(ApiError::bad_request("rail_disabled", message));
    }
    if let Some(pause) = state.pauses.blocking(rail) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "payments_paused",
            format!(
                "Payments are paused ({}); nothing was charged. Try again later.{}",
                pause.reason,
                other_rail(state, rail)
            ),
        ));
    }
    let circuit = &state.purchases.context().circuit;
    // A breaker that does not answer (restarting after a crash) refuses nothing: it guards the provider, not money.
    match circuit.call(|reply| CircuitMsg::Allow { rail, reply }, std::time::Duration::from_secs(5)).await {
        Some(false) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            format!(
                "The payment provider is not answering; nothing was charged. Try again in a minute.{}",
                other_rail(state, rail)
            ),
        )),
        _ => Ok(()),
    }
}

/// Asks the fraud monitor about a checkout; a blocked one is refused with 403 `payment_blocked` (AC9.6.6). A
/// checkout to review goes ahead with the reason, and its credits are held until an admin looks (AC9.3.4).
pub async fn screen(state: &AppState, checkout: Screening) -> Result<Option<String>, ApiError> {
    let monitor = &state.purchases.context().fraud;
    let message = |reply| FraudMsg::Assess { checkout, reply };
    // Unscreened means refused: a monitor restarting after a crash answers within moments, so the client is asked to
    // retry.
    match monitor.call(message, std::time::Duration::from_secs(5)).await {
        Some(Verdict::Allow) => Ok(None),
        Some(Verdict::Review(reason)) => Ok(Some(reason)),
        Some(Verdict::Flagged) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_flagged",
            "This account cannot make payments while a fraud review is open; contact support.",
        )),
        Some(Verdict::Block(reason)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "payment_blocked",
            format!(
                "This payment was blocked by our fraud checks: {reason}. Nothing was charged; contact support to verify your account."
            ),
        )),
        None => Err(crate::actors::purchase::PurchaseError::Busy.into()),
    }
}
