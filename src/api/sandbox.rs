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
pub struct AuthenticateRequest {
    /// `true` completes 3-D Secure, `false` fails it.
    success: bool,
}

#[utoipa::path(post, path = "/sandbox/v1/payment_intents/{id}/_authenticate", tag = "sandbox",
    params(("id" = String, Path, description = "A sandbox payment intent in `requires_action`")),
    request_body = AuthenticateRequest,
    responses((status = 200, description = "The payment intent, Stripe-shaped"), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn authenticate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<AuthenticateRequest>,
) -> Result<Response, ApiError> {
    let sandbox = state
        .sandbox
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "The sandbox is not enabled."))?;
    match sandbox.authenticate(&id, request.success).await {
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
