//! The credit packages for sale and the caller's credit balance.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope, ok};
use super::extract::ClientCaller;
use crate::store::ledger;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageView {
    id: String,
    name: String,
    /// Minor units (cents).
    amount: i64,
    currency: String,
    credits: i64,
}

#[derive(Serialize, ToSchema)]
pub struct BalanceView {
    balance: i64,
}

#[utoipa::path(get, path = "/api/v1/packages", tag = "catalogue",
    responses((status = 200, description = "Every package for sale", body = [PackageView])))]
pub async fn list_packages(State(state): State<AppState>) -> Response {
    let packages: Vec<PackageView> = state
        .catalogue
        .all()
        .iter()
        .map(|p| PackageView {
            id: p.id.as_str().to_owned(),
            name: p.name.clone(),
            amount: p.price.minor,
            currency: p.price.currency.lower(),
            credits: p.credits.0,
        })
        .collect();
    ok(StatusCode::OK, packages)
}

#[utoipa::path(get, path = "/api/v1/credits/balance", tag = "catalogue",
    responses((status = 200, body = BalanceView), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn balance(State(state): State<AppState>, ClientCaller(caller): ClientCaller) -> Result<Response, ApiError> {
    let balance = ledger::balance(&state.reads, &caller.id).await?;
    Ok(ok(StatusCode::OK, BalanceView { balance }))
}
