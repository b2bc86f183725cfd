//! Liveness and readiness probes.
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

/// Not ready while a background actor is down as well: a node whose guards or timers cannot start again (their
/// restarts refused, say with its connections gone) is taken out of a load balancer's rotation rather than serving
/// without them.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Database reachable and actors running"), (status = 503, description = "Not ready")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = crate::store::ping(&state.db).await.is_ok();
    let down = state.background.down();
    let actors = state.purchases.is_running() && down.is_empty();
    let status = if database && actors { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(json!({ "database": database, "actors": actors, "down": down }))).into_response()
}
