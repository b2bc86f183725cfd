//! The receipt page (the spec's receipt): the paid purchase's receipt as a printable page, opened by anyone holding
//! its link and no one else. The link carries an HMAC of the transaction id under a random key the first node made
//! (`store::receipt_key`), so it cannot be made from the id, needs no sign-in, and opens that one receipt only.
use super::AppState;
use super::error::ApiError;
use super::extract::ApiQuery;
use crate::domain::ids::TransactionId;
use crate::domain::purchase::Status;
use crate::store::{ledger, purchases};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use utoipa::IntoParams;
use uuid::Uuid;

fn mac(key: &str, id: Uuid) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(b"receipt:");
    mac.update(id.as_bytes());
    mac
}

/// Where a paid purchase's receipt can be opened, for as long as the key lasts.
pub fn link(state: &AppState, id: Uuid) -> String {
    let token = hex::encode(mac(&state.receipt_key, id).finalize().into_bytes());
    format!("{}/receipts/{}?token={token}", state.public_url.trim_end_matches('/'), TransactionId(id))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptQuery {
    /// The link's signature, as `receiptUrl` gives it.
    #[param(pattern = "^[0-9a-f]{64}$")]
    token: String,
}

#[utoipa::path(get, path = "/receipts/{transactionId}", tag = "payments",
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "A paid transaction: `txn_…` (a bare UUID is accepted too)"), ReceiptQuery),
    responses((status = 200, description = "The receipt, a printable HTML page", content_type = "text/html"),
        (status = 400, body = super::error::ErrorEnvelope),
        (status = 404, description = "No receipt at this link", body = super::error::ErrorEnvelope)))]
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReceiptQuery>,
) -> Result<Response, ApiError> {
    let id = super::payments::parse_transaction_id(&id)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "receipt_not_found", "No receipt at this link.");
    let signature = hex::decode(&query.token).map_err(|_| not_found())?;
    mac(&state.receipt_key, id).verify_slice(&signature).map_err(|_| not_found())?;
    let purchase = purchases::load(&state.reads, id).await?.map(|s| s.purchase);
    let purchase = purchase.filter(|p| p.status == Status::Succeeded).ok_or_else(not_found)?;
    let balance = ledger::balance(&state.reads, &purchase.client).await?;
    let page = crate::notify::receipt::receipt(&purchase, balance).html;
    let headers = [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "private, no-store")];
    Ok((StatusCode::OK, headers, page).into_response())
}
