//! Test hooks of the sandbox provider, mounted under `/sandbox/` only when the sandbox is the card provider.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope};
use super::extract::ApiJson;
use crate::providers::ProviderError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    /// `true` completes (authenticates, clears) the payment, `false` fails it.
    success: bool,
}

#[utoipa::path(post, path = "/sandbox/v1/payment_intents/{id}/_authenticate", tag = "sandbox",
    params(("id" = String, Path, description = "A sandbox payment intent in `requires_action`")),
    request_body = OutcomeRequest,
    responses((status = 200, description = "The payment intent, Stripe-shaped"), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn authenticate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<OutcomeRequest>,
) -> Result<Response, ApiError> {
    let sandbox = sandbox(&state)?;
    answer(sandbox.authenticate(&id, request.success).await)
}

#[utoipa::path(post, path = "/sandbox/v1/payment_intents/{id}/_settle", tag = "sandbox",
    params(("id" = String, Path, description = "A sandbox bank-debit (ACH) payment intent in `processing`")),
    request_body = OutcomeRequest,
    responses((status = 200, description = "The payment intent, Stripe-shaped"), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn settle(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<OutcomeRequest>,
) -> Result<Response, ApiError> {
    let sandbox = sandbox(&state)?;
    answer(sandbox.clear_bank_debit(&id, request.success).await)
}

fn sandbox(state: &AppState) -> Result<&crate::providers::sandbox::Sandbox, ApiError> {
    state
        .sandbox
        .as_deref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "The sandbox is not enabled."))
}

fn answer(result: Result<serde_json::Value, ProviderError>) -> Result<Response, ApiError> {
    match result {
        Ok(intent) => Ok((StatusCode::OK, axum::Json(intent)).into_response()),
        Err(ProviderError::Rejected { code, message }) if code == "resource_missing" => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "resource_missing", message))
        }
        Err(ProviderError::Rejected { message, .. }) => {
            Err(ApiError::bad_request("payment_intent_unexpected_state", message))
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}
