//! Admin: alerts and their acknowledgement.
use crate::api::AppState;
use crate::api::error::{ApiError, ErrorEnvelope, ok};
use crate::api::extract::AdminCaller;
use crate::api::extract::ApiQuery;
use crate::app::oversight;
use crate::store::alerts as alert_store;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    key: String,
    /// `dispute`, `breach`…
    kind: String,
    #[schema(value_type = Object)]
    details: serde_json::Value,
    created_at: DateTime<Utc>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// `true` (default) lists only alerts nobody acknowledged yet.
    open: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/admin/alerts", tag = "admin", params(AlertQuery),
    responses((status = 200, body = [AlertView]), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    ApiQuery(query): ApiQuery<AlertQuery>,
) -> Result<Response, ApiError> {
    let alerts: Vec<AlertView> = alert_store::list(&state.db, query.open.unwrap_or(true))
        .await?
        .into_iter()
        .map(|a| AlertView {
            key: a.key,
            kind: a.kind,
            details: a.details,
            created_at: a.created_at,
            acknowledged_by: a.acknowledged_by,
            acknowledged_at: a.acknowledged_at,
        })
        .collect();
    Ok(ok(StatusCode::OK, alerts))
}

#[utoipa::path(post, path = "/api/v1/admin/alerts/{key}/acknowledge", tag = "admin",
    params(("key" = String, Path, description = "The alert's key")),
    responses((status = 200, description = "Acknowledged"), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn acknowledge_alert(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    if !oversight::acknowledge_alert(&state.purchases.context().writer, &admin.id, &key).await? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "alert_not_found", "No such alert."));
    }
    Ok(ok(StatusCode::OK, serde_json::json!({ "key": key, "acknowledged": true })))
}
