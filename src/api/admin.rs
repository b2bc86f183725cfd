//! Admin endpoints (role `admin`). The console grows with the admin issue; for now, any transaction's full history.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope, ok};
use super::extract::AdminCaller;
use super::payments::{TransactionView, parse_transaction_id, transaction_view};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

#[utoipa::path(get, path = "/api/v1/admin/payments/{transactionId}", tag = "admin",
    params(("transactionId" = String, Path, description = "The transaction (purchase) id")),
    responses((status = 200, body = TransactionView), (status = 401, body = ErrorEnvelope),
        (status = 403, description = "Not an admin", body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get_payment(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_transaction_id(&id)?;
    match transaction_view(&state, id).await? {
        Some((_, view)) => Ok(ok(StatusCode::OK, view)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "transaction_not_found", "No such transaction.")),
    }
}
