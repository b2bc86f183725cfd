//! Admin endpoints (role `admin`). The console grows with the admin issue; for now, any transaction's full history
//! and the disputes.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope, ok};
use super::extract::{AdminCaller, ApiJson};
use super::payments::{TransactionView, parse_transaction_id, transaction_view};
use crate::domain::purchase::{Input, Purchase, Rail, Status};
use crate::store::purchases::{self as purchase_store, AdminAction, Filter};
use crate::store::{alerts as alert_store, controls, disputes, refunds, webhooks as webhook_store};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::Response;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeView {
    id: String,
    provider: String,
    transaction_id: Option<uuid::Uuid>,
    client_id: Option<String>,
    reason: String,
    status: String,
    /// Minor units.
    amount: Option<i64>,
    currency: Option<String>,
    /// The provider's own record of the dispute, as it sent it.
    #[schema(value_type = Object)]
    details: serde_json::Value,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<entities::disputes::Model> for DisputeView {
    fn from(d: entities::disputes::Model) -> Self {
        Self {
            id: d.id,
            provider: d.provider,
            transaction_id: d.purchase_id,
            client_id: d.client_id,
            reason: d.reason,
            status: d.status,
            amount: d.amount,
            currency: d.currency,
            details: d.details,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// AC9.2.5: disputes raised at PayPal or through Stripe, newest first.
#[utoipa::path(get, path = "/api/v1/admin/disputes", tag = "admin",
    responses((status = 200, body = [DisputeView]), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list_disputes(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Response, ApiError> {
    let disputes: Vec<DisputeView> = disputes::list(&state.db).await?.into_iter().map(DisputeView::from).collect();
    Ok(ok(StatusCode::OK, disputes))
}

#[utoipa::path(get, path = "/api/v1/admin/disputes/{id}", tag = "admin",
    params(("id" = String, Path, description = "The provider's dispute id")),
    responses((status = 200, body = DisputeView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get_dispute(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match disputes::find(&state.db, &id).await? {
        Some(dispute) => Ok(ok(StatusCode::OK, DisputeView::from(dispute))),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "dispute_not_found", "No such dispute.")),
    }
}

#[derive(Deserialize, IntoParams)]
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
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Up to 200; 50 by default.
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRow {
    transaction_id: Uuid,
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
    Query(query): Query<PaymentQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
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
            transaction_id: r.id,
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

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionReason {
    /// Recorded in the audit trail.
    #[serde(default)]
    reason: String,
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
    params(("transactionId" = String, Path, description = "A failed transaction")),
    responses((status = 200, body = TransactionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "Not retryable (expired, paid, or PayPal, which needs the payer)", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn retry_payment(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    body: Option<axum::Json<ActionReason>>,
) -> Result<Response, ApiError> {
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    act(&state, admin.id.as_str(), &id, "retry", &reason, Input::Confirm { payment_method: None, retry: true }).await
}

/// AC9.6.7: read the provider's object and move the purchase to it (a webhook that never arrived).
#[utoipa::path(post, path = "/api/v1/admin/payments/{transactionId}/sync", tag = "admin", request_body = ActionReason,
    params(("transactionId" = String, Path, description = "Any transaction")),
    responses((status = 200, body = TransactionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn sync_payment(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    body: Option<axum::Json<ActionReason>>,
) -> Result<Response, ApiError> {
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    act(&state, admin.id.as_str(), &id, "sync", &reason, Input::Sync).await
}

/// AC9.3.4: a held payment looked at and let through: its credits are granted.
#[utoipa::path(post, path = "/api/v1/admin/payments/{transactionId}/release", tag = "admin", request_body = ActionReason,
    params(("transactionId" = String, Path, description = "A transaction `under_review`")),
    responses((status = 200, body = TransactionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`not_under_review`: not held for review, or already being reversed", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn release_payment(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    body: Option<axum::Json<ActionReason>>,
) -> Result<Response, ApiError> {
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    act(&state, admin.id.as_str(), &id, "release_review", &reason, Input::Release).await
}

/// AC9.3.5, AC9.6.6: a held payment confirmed as fraud: the account flagged and the client told how to get in touch
/// at once; the payment given back in full by a refund that is retried until the provider makes it, and the
/// purchase `reversed` once it has.
#[utoipa::path(post, path = "/api/v1/admin/payments/{transactionId}/confirm-fraud", tag = "admin", request_body = ActionReason,
    params(("transactionId" = String, Path, description = "A transaction `under_review`")),
    responses((status = 200, description = "Still `under_review` until the reversal's refund is made", body = TransactionView),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`not_under_review`: not held for review, or already being reversed", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn confirm_fraud(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<ActionReason>,
) -> Result<Response, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason_required", "Say why: it is recorded with the flag."));
    }
    // The reversal's refund id is made here, so the state machine stays free of randomness.
    let input =
        Input::ConfirmFraud { refund: Uuid::new_v4(), by: admin.id.as_str().to_owned(), reason: body.reason.clone() };
    act(&state, admin.id.as_str(), &id, "confirm_fraud", &body.reason, input).await
}

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
#[utoipa::path(post, path = "/api/v1/admin/accounts/{clientId}/unflag", tag = "admin", request_body = ActionReason,
    params(("clientId" = String, Path, description = "A flagged client")),
    responses((status = 200, description = "The flag is lifted"), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, description = "The account is not flagged", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn lift_flag(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(client): Path<String>,
    ApiJson(body): ApiJson<ActionReason>,
) -> Result<Response, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason_required", "Say why the account is cleared: it is audited."));
    }
    if !crate::store::fraud_flags::lift(&state.db, &client, &body.reason, admin.id.as_str()).await? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_flagged", "This account is not flagged."));
    }
    Ok(ok(StatusCode::OK, serde_json::json!({ "clientId": client, "flagged": false })))
}

#[derive(Deserialize, IntoParams)]
pub struct ReportQuery {
    /// `day`, `week` (ISO weeks, from Monday) or `month`.
    period: String,
    /// RFC 3339; inclusive. Defaults to 30 days ago.
    from: Option<DateTime<Utc>>,
    /// RFC 3339; exclusive. Defaults to now.
    to: Option<DateTime<Utc>>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

#[derive(Serialize, ToSchema, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RevenueRow {
    period_start: String,
    method: String,
    currency: String,
    /// Minor units, all three.
    gross: i64,
    refunded: i64,
    net: i64,
    payments: i64,
}

fn period_start(at: DateTime<Utc>, period: &str) -> Option<NaiveDate> {
    let day = at.date_naive();
    match period {
        "day" => Some(day),
        "week" => day.checked_sub_days(chrono::Days::new(u64::from(day.weekday().num_days_from_monday()))),
        "month" => day.with_day(1),
        _ => None,
    }
}

fn method_of(purchase: &Purchase) -> String {
    match purchase.rail {
        Rail::Paypal => format!("paypal/{}", purchase.funding_source.as_deref().unwrap_or("paypal")),
        Rail::Card
            if purchase.settling.is_some()
                || purchase.payment_method.as_ref().is_some_and(|m| m.as_str().contains("usBankAccount")) =>
        {
            "ach".into()
        }
        Rail::Card => "card".into(),
    }
}

/// AC9.6.5: revenue per day, week or month, by payment method and currency: gross, refunded and net.
#[utoipa::path(get, path = "/api/v1/admin/reports/revenue", tag = "admin", params(ReportQuery),
    responses((status = 200, description = "`[RevenueRow]` as JSON, or CSV with `format=csv`", body = [RevenueRow]), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn revenue(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    if period_start(Utc::now(), &query.period).is_none() {
        return Err(ApiError::bad_request("invalid_period", "period is day, week or month."));
    }
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(to - chrono::TimeDelta::days(30));
    let filter =
        Filter { status: Some(Status::Succeeded.as_str().into()), from: Some(from), to: Some(to), ..Filter::default() };
    let paid = purchase_store::search(&state.db, &filter, u64::MAX / 2).await?;
    let refunded = refunds::list(&state.db, None, Some("refunded")).await?;
    let mut rows: BTreeMap<(String, String, String), RevenueRow> = BTreeMap::new();
    for model in paid {
        let purchase = purchase_store::decode(model)?.purchase;
        let start = period_start(purchase.created_at, &query.period).map(|d| d.to_string()).unwrap_or_default();
        let key = (start.clone(), method_of(&purchase), purchase.price.currency.code().to_owned());
        let row = rows.entry(key.clone()).or_insert_with(|| RevenueRow {
            period_start: key.0,
            method: key.1,
            currency: key.2,
            ..RevenueRow::default()
        });
        let back: i64 = refunded.iter().filter(|r| r.purchase_id == purchase.id).map(|r| r.amount.minor).sum();
        row.gross += purchase.price.minor;
        row.refunded += back;
        row.net = row.gross - row.refunded;
        row.payments += 1;
    }
    let rows: Vec<RevenueRow> = rows.into_values().collect();
    if query.format.as_deref() == Some("csv") {
        let mut csv = csv::Writer::from_writer(Vec::new());
        for row in &rows {
            csv.serialize(row).map_err(ApiError::internal)?;
        }
        let body = csv.into_inner().map_err(ApiError::internal)?;
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    Ok(ok(StatusCode::OK, rows))
}

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
pub struct AlertQuery {
    /// `true` (default) lists only alerts nobody acknowledged yet.
    open: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/admin/alerts", tag = "admin", params(AlertQuery),
    responses((status = 200, body = [AlertView]), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(query): Query<AlertQuery>,
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
    if !alert_store::acknowledge(&state.db, &key, admin.id.as_str()).await? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "alert_not_found", "No such alert."));
    }
    Ok(ok(StatusCode::OK, serde_json::json!({ "key": key, "acknowledged": true })))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    id: i64,
    provider: String,
    event_id: String,
    event_type: String,
    status: String,
    error: Option<String>,
    transaction_id: Option<Uuid>,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
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
    Query(query): Query<WebhookQuery>,
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
            transaction_id: e.purchase_id,
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
    Path(id): Path<i64>,
    body: Option<axum::Json<ActionReason>>,
) -> Result<Response, ApiError> {
    let Some(event) = webhook_store::find(&state.db, id).await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "webhook_not_found", "No such stored webhook event."));
    };
    if event.status == webhook_store::InboxStatus::Processed.as_str() {
        return Err(ApiError::new(StatusCode::CONFLICT, "already_processed", "This event was applied already."));
    }
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    controls::audit(&state.db, admin.id.as_str(), "replay_webhook", &event.event_id, &reason).await?;
    super::webhooks::replay(&state, &event).await?;
    Ok(ok(StatusCode::ACCEPTED, serde_json::json!({ "id": id, "replayed": true })))
}
