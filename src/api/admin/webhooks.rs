//! Admin: webhook health and replay (AC9.6.7).
use super::ActionReason;
use crate::api::AppState;
use crate::api::error::{ApiError, ErrorEnvelope, ok};
use crate::api::extract::AdminCaller;
use crate::api::extract::ApiPath;
use crate::api::extract::ApiQuery;
use crate::app::inbox::Replay;
use crate::domain::ids::TransactionId;
use crate::store::webhooks as webhook_store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    id: i64,
    provider: String,
    event_id: String,
    event_type: String,
    status: String,
    error: Option<String>,
    #[schema(value_type = Option<String>, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: Option<TransactionId>,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// `failed`, `unroutable` or `received` (stored, never applied); all three by default.
    status: Option<String>,
}

/// AC9.6.7: webhook health: events that failed, found no purchase, or were never applied.
#[utoipa::path(get, path = "/api/v1/admin/webhooks", tag = "admin", params(WebhookQuery),
    responses((status = 200, body = [WebhookView]), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn webhook_health(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    ApiQuery(query): ApiQuery<WebhookQuery>,
) -> Result<Response, ApiError> {
    let events: Vec<WebhookView> = webhook_store::troubled(&state.db, query.status.as_deref())
        .await?
        .into_iter()
        .map(|e| WebhookView {
            id: e.id,
            provider: e.provider,
            event_id: e.event_id,
            event_type: e.event_type,
            status: e.status,
            error: e.error,
            transaction_id: e.purchase_id.map(TransactionId),
            received_at: e.received_at,
            processed_at: e.processed_at,
        })
        .collect();
    Ok(ok(StatusCode::OK, events))
}

/// Runs a stored webhook event through routing again (audited). A processed event is not replayed.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/{id}/replay", tag = "admin", request_body = ActionReason,
    params(("id" = i64, Path, description = "The stored event's id (`id` in the health list)")),
    responses((status = 202, description = "Routed again; read the health list for its new status"), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, description = "Already processed", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn replay_webhook(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiPath(id): ApiPath<i64>,
    body: Option<crate::api::extract::ApiJson<ActionReason>>,
) -> Result<Response, ApiError> {
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    match state.inbox.replay_for(id, admin.id.as_str(), reason).await? {
        Replay::Replayed => Ok(ok(StatusCode::ACCEPTED, serde_json::json!({ "id": id, "replayed": true }))),
        Replay::NotFound => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "webhook_not_found", "No such stored webhook event."))
        }
        Replay::AlreadyApplied => {
            Err(ApiError::new(StatusCode::CONFLICT, "already_processed", "This event was applied already."))
        }
    }
}
