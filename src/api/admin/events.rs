//! Admin: the platform's event deliveries, each endpoint's queue with its attempts, and replay (issue 18).
use super::ActionReason;
use crate::api::AppState;
use crate::api::error::{ApiError, ErrorEnvelope, ok};
use crate::api::extract::{AdminCaller, ApiJson, ApiPath, ApiQuery};
use crate::store::events;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    id: i64,
    #[schema(pattern = "^evt_[0-9a-f]{32}$")]
    event_id: String,
    event_type: String,
    endpoint: String,
    /// `pending` (due at `nextAttemptAt`), `delivered`, or `failed` (retried for three days; replay sends it again).
    status: String,
    attempts: i32,
    /// The HTTP status of the last attempt, when the endpoint answered.
    last_status: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
}

impl DeliveryView {
    pub fn of(delivery: entities::event_deliveries::Model, event_type: String) -> Self {
        let pending = delivery.status == "pending";
        Self {
            id: delivery.id,
            event_id: delivery.event_id,
            event_type,
            endpoint: delivery.endpoint,
            status: delivery.status,
            attempts: delivery.attempts,
            last_status: delivery.last_status,
            last_error: delivery.last_error,
            created_at: delivery.created_at,
            next_attempt_at: pending.then_some(delivery.available_at),
            delivered_at: delivery.delivered_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// One endpoint's deliveries (its `name` in `[[events.endpoints]]`).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    endpoint: Option<String>,
    /// `pending`, `delivered` or `failed`.
    #[param(pattern = "^(pending|delivered|failed)$")]
    status: Option<String>,
    /// The `nextCursor` of the previous page.
    #[param(minimum = 1)]
    cursor: Option<i64>,
    /// 50 by default.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
}

/// Deliveries of events to the platform's endpoints, newest first.
#[utoipa::path(get, path = "/api/v1/admin/events/deliveries", tag = "admin", params(DeliveryQuery),
    responses((status = 200, description = "`{ items: [DeliveryView], nextCursor }`"), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50);
    let endpoint_ok = query.endpoint.as_deref().is_none_or(crate::settings::is_endpoint_name);
    let status_ok = query.status.as_deref().is_none_or(|s| ["pending", "delivered", "failed"].contains(&s));
    if !(1..=200).contains(&limit) || query.cursor.is_some_and(|c| c < 1) || !endpoint_ok || !status_ok {
        let message = "limit is 1 to 200, cursor the nextCursor of the previous page, status pending, delivered or \
                       failed, and endpoint an endpoint's name.";
        return Err(ApiError::bad_request("invalid_query", message));
    }
    let rows =
        events::deliveries(&state.db, query.endpoint.as_deref(), query.status.as_deref(), query.cursor, limit).await?;
    let next = (rows.len() as u64 == limit).then(|| rows.last().map(|(d, _)| d.id)).flatten();
    let items: Vec<DeliveryView> = rows.into_iter().map(|(d, t)| DeliveryView::of(d, t)).collect();
    Ok(ok(StatusCode::OK, serde_json::json!({ "items": items, "nextCursor": next })))
}

/// Sends a delivery again now, whatever its status (audited): after an endpoint's long outage, or to test it.
#[utoipa::path(post, path = "/api/v1/admin/events/deliveries/{id}/replay", tag = "admin", request_body = ActionReason,
    params(("id" = i64, Path, minimum = 1, description = "The delivery's id")),
    responses((status = 202, body = DeliveryView, description = "Queued; the sender sends it within its poll interval"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn replay_delivery(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiPath(id): ApiPath<i64>,
    body: Option<ApiJson<ActionReason>>,
) -> Result<Response, ApiError> {
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    let by = admin.id.as_str().to_owned();
    let writer = &state.purchases.context().writer;
    let replayed =
        writer.write(move |txn| Box::pin(async move { events::replay(txn, id, &by, &reason, Utc::now()).await }));
    let Some(delivery) = replayed.await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "delivery_not_found", "No such event delivery."));
    };
    let typed = events::typed(&state.db, vec![delivery]).await?;
    let view = typed.into_iter().next().map(|(delivery, kind)| DeliveryView::of(delivery, kind));
    Ok(ok(StatusCode::ACCEPTED, view))
}
