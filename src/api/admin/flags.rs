//! Admin: accounts flagged for confirmed fraud, and lifting a flag (AC9.3.5).
use super::RequiredReason;
use crate::api::AppState;
use crate::api::error::{ApiError, ErrorEnvelope, ok};
use crate::api::extract::{AdminCaller, ApiJson};
use crate::app::oversight;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// An account flagged for confirmed fraud.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FraudFlag {
    client_id: String,
    reason: String,
    flagged_by: String,
    flagged_at: DateTime<Utc>,
}

/// AC9.3.5: the accounts that cannot buy because fraud was confirmed on them.
#[utoipa::path(get, path = "/api/v1/admin/accounts/flagged", tag = "admin",
    responses((status = 200, body = [FraudFlag]), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list_flags(State(state): State<AppState>, AdminCaller(_admin): AdminCaller) -> Result<Response, ApiError> {
    let flags = crate::store::fraud_flags::list(&state.db).await?;
    let flags: Vec<FraudFlag> = flags
        .into_iter()
        .map(|f| FraudFlag {
            client_id: f.client_id,
            reason: f.reason,
            flagged_by: f.flagged_by,
            flagged_at: f.flagged_at,
        })
        .collect();
    Ok(ok(StatusCode::OK, flags))
}

/// Lets a flagged account buy again, once an admin has cleared it; audited with the reason.
#[utoipa::path(post, path = "/api/v1/admin/accounts/{clientId}/unflag", tag = "admin", request_body = RequiredReason,
    params(("clientId" = String, Path, description = "A flagged client")),
    responses((status = 200, description = "The flag is lifted"), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, description = "The account is not flagged", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn lift_flag(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(client): Path<String>,
    ApiJson(body): ApiJson<RequiredReason>,
) -> Result<Response, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason_required", "Say why the account is cleared: it is audited."));
    }
    let writer = &state.purchases.context().writer;
    if !oversight::lift_fraud_flag(writer, &admin.id, &client, &body.reason).await? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_flagged", "This account is not flagged."));
    }
    Ok(ok(StatusCode::OK, serde_json::json!({ "clientId": client, "flagged": false })))
}
