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

#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Database reachable and actors running"), (status = 503, description = "Not ready")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = crate::store::ping(&state.db).await.is_ok();
    let actors = state.purchases.is_running();
    let status = if database && actors { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(json!({ "database": database, "actors": actors }))).into_response()
}
