//! Admin: the transaction list and one transaction's history, and the commands on a payment (retry, sync,
//! release, confirm fraud), each audited in the step it causes.
use super::{ActionReason, RequiredReason};
use crate::api::AppState;
use crate::api::error::{ApiError, ErrorEnvelope, ok};
use crate::api::extract::AdminCaller;
use crate::api::extract::ApiQuery;
use crate::api::payments::{TransactionView, parse_transaction_id, transaction_view};
use crate::domain::ids::{TransactionId, new_key};
use crate::domain::purchase::{Input, Status};
use crate::store::purchases::{self as purchase_store, AdminAction, Filter};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[utoipa::path(get, path = "/api/v1/admin/payments/{transactionId}", tag = "admin",
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The transaction (purchase) id: `txn_…` (a bare UUID is accepted too)")),
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
        Some((purchase, view)) => Ok(ok(StatusCode::OK, view.with_audit(&state, &purchase).await?)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "transaction_not_found", "No such transaction.")),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PaymentQuery {
    status: Option<String>,
    /// `sandbox`, `stripe` or `paypal`.
    provider: Option<String>,
    client_id: Option<String>,
    /// RFC 3339; inclusive.
    from: Option<DateTime<Utc>>,
    /// RFC 3339; exclusive.
    to: Option<DateTime<Utc>>,
    min_amount: Option<i64>,
    max_amount: Option<i64>,
    /// `nextCursor` of the previous page: the last row's creation time (microseconds since 1970) and id.
    #[param(pattern = "^[0-9]{1,17}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    cursor: Option<String>,
    /// 50 by default.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRow {
    #[schema(value_type = String, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: TransactionId,
    client_id: String,
    status: String,
    amount: i64,
    /// Paid back by refunds so far, in the same minor units.
    refunded: i64,
    currency: String,
    provider: String,
    /// `card` or `paypal`: a failed PayPal payment needs the payer again, so only card payments can be retried.
    rail: String,
    method: Option<String>,
    failure_code: Option<String>,
    /// Why it was held for review (a fraud rule, Stripe Radar's verdict), if it was.
    review_reason: Option<String>,
    /// Confirmed as fraud and being given back: still `under_review` until the provider's refund is recorded, but
    /// decided.
    reversing: bool,
    created_at: DateTime<Utc>,
}

fn parse_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let invalid = || ApiError::bad_request("invalid_cursor", "Pass the nextCursor of the previous page.");
    let (at, id) = cursor.split_once('_').ok_or_else(invalid)?;
    let at = at.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(invalid)?;
    Ok((at, id.parse().map_err(|_| invalid())?))
}

/// AC9.6.1: every transaction with status, amount, method and time; filtered, newest first, by cursor.
#[utoipa::path(get, path = "/api/v1/admin/payments", tag = "admin", params(PaymentQuery),
    responses((status = 200, description = "`{items: [PaymentRow], nextCursor}`"), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list_payments(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    ApiQuery(query): ApiQuery<PaymentQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit is 1 to 200."));
    }
    let filter = Filter {
        status: query.status,
        provider: query.provider,
        client: query.client_id,
        from: query.from,
        to: query.to,
        min_amount: query.min_amount,
        max_amount: query.max_amount,
        after: query.cursor.as_deref().map(parse_cursor).transpose()?,
    };
    let rows = purchase_store::search(&state.db, &filter, limit).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let refunded = crate::store::refunds::refunded_amounts(&state.db, &ids).await?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|r| format!("{}_{}", r.created_at.timestamp_micros(), r.id)))
        .flatten();
    let items: Vec<PaymentRow> = rows
        .into_iter()
        .map(|r| PaymentRow {
            reversing: r.status == Status::UnderReview.as_str()
                && r.state.get("reversal").is_some_and(|v| !v.is_null()),
            review_reason: r.state.get("review").and_then(|v| v.as_str()).map(str::to_owned),
            transaction_id: r.id.into(),
            client_id: r.client_id,
            status: r.status,
            amount: r.amount,
            refunded: refunded.get(&r.id).copied().unwrap_or(0),
            currency: r.currency.to_ascii_lowercase(),
            provider: r.provider,
            rail: r.state.get("rail").and_then(|rail| rail.as_str()).unwrap_or("card").to_owned(),
            method: r.payment_method,
            failure_code: r.failure_code,
            created_at: r.created_at,
        })
        .collect();
    Ok(ok(StatusCode::OK, serde_json::json!({ "items": items, "nextCursor": next })))
}

/// An admin's command to a purchase's actor; its audit row commits with the step it causes.
async fn act(
    state: &AppState,
    admin: &str,
    id: &str,
    action: &'static str,
    reason: &str,
    input: Input,
) -> Result<Response, ApiError> {
    let id = parse_transaction_id(id)?;
    let audit = AdminAction { admin: admin.to_owned(), action, reason: reason.to_owned() };
    let purchase = state.purchases.command(id, input, audit).await?;
    match transaction_view(state, purchase.id).await? {
        Some((_, view)) => Ok(ok(StatusCode::OK, view)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "transaction_not_found", "No such transaction.")),
    }
}

/// AC9.6.3: a failed card payment confirmed again with the same method, with a fresh budget of automatic retries.
#[utoipa::path(post, path = "/api/v1/admin/payments/{transactionId}/retry", tag = "admin", request_body = ActionReason,
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "A failed transaction: `txn_…` (a bare UUID is accepted too)")),
    responses((status = 200, body = TransactionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "Not retryable (expired, paid, never given a method, or PayPal, which needs the payer)", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn retry_payment(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    body: Option<crate::api::extract::ApiJson<ActionReason>>,
) -> Result<Response, ApiError> {
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    let retry = Input::Confirm { payment_method: None, retry: true, review: None };
    // The client's confirm without a method is a bad request; an admin's retry of a payment that never had one is
    // a payment in the wrong state for it.
    act(&state, admin.id.as_str(), &id, "retry", &reason, retry).await.map_err(|e| match e.code.as_ref() {
        "payment_method_required" => ApiError { status: StatusCode::CONFLICT, ..e },
        _ => e,
    })
}

/// AC9.6.7: read the provider's object and move the purchase to it (a webhook that never arrived).
#[utoipa::path(post, path = "/api/v1/admin/payments/{transactionId}/sync", tag = "admin", request_body = ActionReason,
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Any transaction: `txn_…` (a bare UUID is accepted too)")),
    responses((status = 200, body = TransactionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn sync_payment(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    body: Option<crate::api::extract::ApiJson<ActionReason>>,
) -> Result<Response, ApiError> {
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    act(&state, admin.id.as_str(), &id, "sync", &reason, Input::Sync).await
}

/// AC9.3.4: a held payment looked at and let through: its credits are granted.
#[utoipa::path(post, path = "/api/v1/admin/payments/{transactionId}/release", tag = "admin", request_body = ActionReason,
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "A transaction `under_review`: `txn_…` (a bare UUID is accepted too)")),
    responses((status = 200, body = TransactionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`not_under_review`: not held for review, or already being reversed", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn release_payment(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    body: Option<crate::api::extract::ApiJson<ActionReason>>,
) -> Result<Response, ApiError> {
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    act(&state, admin.id.as_str(), &id, "release_review", &reason, Input::Release).await
}

/// AC9.3.5, AC9.6.6: a held payment confirmed as fraud: the account flagged and the client told how to get in touch
/// at once; the payment given back in full by a refund that is retried until the provider makes it, and the
/// purchase `reversed` once it has.
#[utoipa::path(post, path = "/api/v1/admin/payments/{transactionId}/confirm-fraud", tag = "admin", request_body = RequiredReason,
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "A transaction `under_review`: `txn_…` (a bare UUID is accepted too)")),
    responses((status = 200, description = "Still `under_review` until the reversal's refund is made", body = TransactionView),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`not_under_review`: not held for review, or already being reversed", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn confirm_fraud(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    crate::api::extract::ApiJson(body): crate::api::extract::ApiJson<RequiredReason>,
) -> Result<Response, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason_required", "Say why: it is recorded with the flag."));
    }
    // The reversal's refund id is made here, so the state machine stays free of randomness.
    let input =
        Input::ConfirmFraud { refund: new_key(), by: admin.id.as_str().to_owned(), reason: body.reason.clone() };
    act(&state, admin.id.as_str(), &id, "confirm_fraud", &body.reason, input).await
}
