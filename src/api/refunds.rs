//! Refunds (AC9.5.1–AC9.5.7): the policy, a client's request and appeal, and the admin's decision, each through the
//! refund's actor.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope, ok};
use super::extract::{AdminCaller, ApiJson, ClientCaller};
use super::payments::parse_transaction_id;
use crate::actors::refund::RefundError;
use crate::api::extract::ApiQuery;
use crate::app;
use crate::app::credits::AdjustError;
use crate::domain::ids::{RefundRequestId, TransactionId};
use crate::domain::refund::{Refund, RefundAsk, RefundInput, RefundStatus};
use crate::store::refunds;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

impl From<RefundError> for ApiError {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::Rejected(rejected) => {
                Self::new(StatusCode::CONFLICT, "refund_not_allowed", rejected.to_string())
            }
            RefundError::Request(rejected) => Self::new(StatusCode::CONFLICT, rejected.code(), rejected.to_string()),
            RefundError::NotFound => Self::new(StatusCode::NOT_FOUND, "refund_not_found", "No such refund request."),
            RefundError::PurchaseNotFound => {
                Self::new(StatusCode::NOT_FOUND, "transaction_not_found", "No such transaction for this account.")
            }
            RefundError::Busy => crate::actors::purchase::PurchaseError::Busy.into(),
            RefundError::Other(e) => Self::internal(e),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    window_days: i64,
    admin_approval_required: bool,
    unused_credits_only: bool,
    partial_refunds: &'static str,
    appeals: u32,
    estimated_processing: &'static str,
    refund_timeline: &'static str,
}

#[utoipa::path(get, path = "/api/v1/payments/refund-policy", operation_id = "refund_policy", tag = "refunds",
    responses((status = 200, description = "Shown to clients before they ask (AC9.5.1)", body = PolicyView)))]
pub async fn policy(State(state): State<AppState>) -> Response {
    let policy = state.refunds.policy();
    ok(
        StatusCode::OK,
        PolicyView {
            window_days: policy.window.num_days(),
            admin_approval_required: true,
            unused_credits_only: true,
            partial_refunds: "in proportion to the unused credits of the purchase, rounded down to the cent",
            appeals: policy.appeals,
            estimated_processing: "1-2 business days",
            refund_timeline: "5-10 business days after approval, to the original payment method",
        },
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundRequest {
    /// `txn_…` (a bare UUID is accepted too).
    #[schema(pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    transaction_id: String,
    #[schema(pattern = "\\S")]
    reason: String,
    #[serde(default)]
    details: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    #[schema(value_type = String, pattern = "^ref_[0-9a-f-]{36}$")]
    refund_request_id: RefundRequestId,
    #[schema(value_type = String, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: TransactionId,
    client_id: String,
    status: String,
    credits: i64,
    /// Minor units.
    amount: i64,
    currency: String,
    reason: String,
    details: String,
    denial_reason: Option<String>,
    appeal_available: bool,
    provider_refund: Option<String>,
    failure: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn view(state: &AppState, refund: &Refund) -> RefundView {
    RefundView {
        refund_request_id: refund.id.into(),
        transaction_id: refund.purchase_id.into(),
        client_id: refund.client.as_str().to_owned(),
        status: refund.status.as_str().to_owned(),
        credits: refund.credits.0,
        amount: refund.amount.minor,
        currency: refund.amount.currency.lower(),
        reason: refund.reason.clone(),
        details: refund.details.clone(),
        denial_reason: refund.denial_reason.clone(),
        appeal_available: refund.status == RefundStatus::Denied && refund.appeals_used < state.refunds.policy().appeals,
        provider_refund: refund.provider_refund.clone(),
        failure: refund.failure.clone(),
        created_at: refund.created_at,
        updated_at: refund.updated_at,
    }
}

#[utoipa::path(post, path = "/api/v1/payments/refund", operation_id = "request_refund", tag = "refunds", request_body = RefundRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Replays the stored response for a repeated request: 1 to 255 visible ASCII characters")),
    responses((status = 202, description = "`{refundRequestId, status: \"pending_review\", estimatedProcessing}` and the refund's credits and amount"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, description = "Not this client's transaction", body = ErrorEnvelope),
        (status = 409, description = "Not paid, outside the window, already refunded, no unused credits, or a request already open", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn request(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    ApiJson(request): ApiJson<RefundRequest>,
) -> Result<Response, ApiError> {
    let id = parse_transaction_id(&request.transaction_id)?;
    let reason = request.reason.trim();
    if reason.is_empty() || reason.len() > 500 || request.details.len() > 2000 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "Give a reason (up to 500 characters) and at most 2000 characters of details.",
        ));
    }
    let ask = RefundAsk { reason: reason.to_owned(), details: request.details };
    let refund = app::refunds::request(&state.db, &state.refunds, &caller.id, id, ask).await?;
    Ok(ok(
        StatusCode::ACCEPTED,
        serde_json::json!({
            "refundRequestId": RefundRequestId(refund.id),
            "status": refund.status.as_str(),
            "estimatedProcessing": "1-2 business days",
            "credits": refund.credits.0,
            "amount": refund.amount.minor,
            "currency": refund.amount.currency.lower(),
        }),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundQuote {
    #[schema(value_type = String, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: TransactionId,
    /// Whether a refund can be asked for now.
    refundable: bool,
    /// What a refund would take back and give: the purchase's unused credits, at the price paid per credit.
    credits: i64,
    amount: i64,
    currency: String,
    /// The purchase's credits, those already refunded, and those spent since (never refunded).
    bought: i64,
    already_refunded: i64,
    spent: i64,
    /// Why there is no refund: `not_refundable` (not paid), `refund_window_closed`, `already_refunded` or
    /// `no_unused_credits`.
    code: Option<&'static str>,
    /// Why, in the client's words.
    why: String,
    window_ends_at: DateTime<Utc>,
}

/// What a refund of one of the client's purchases would give back now, and why (spent credits are not refunded).
#[utoipa::path(get, path = "/api/v1/payments/{transactionId}/refundable", operation_id = "refund_quote", tag = "refunds",
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The transaction (purchase) id")),
    responses((status = 200, body = RefundQuote), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such transaction for this client", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn quote(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_transaction_id(&id)?;
    let (purchase, quote, books) = app::refunds::quote(&state.reads, &state.refunds, &caller.id, id).await?;
    let left = purchase.credits.0 - books.already_refunded.0;
    let spent = (left - books.balance.clamp(0, left.max(0))).max(0);
    let currency = purchase.price.currency;
    let (credits, amount, code, why) = match quote {
        Ok(refund) if spent == 0 => {
            let why = format!(
                "All {} credits from this purchase are unused: a refund gives back {} {}, once an admin approves it.",
                refund.credits.0,
                refund.amount.decimal(),
                currency.code()
            );
            (refund.credits.0, refund.amount.minor, None, why)
        }
        Ok(refund) => {
            let why = format!(
                "{spent} of the {left} credits from this purchase were spent, and spent credits are not refunded: the \
                 {} unused give back {} {}, the price paid per credit, once an admin approves it.",
                refund.credits.0,
                refund.amount.decimal(),
                currency.code()
            );
            (refund.credits.0, refund.amount.minor, None, why)
        }
        Err(rejected) => (0, 0, Some(rejected.code()), rejected.to_string()),
    };
    let window_ends_at = purchase.created_at + state.refunds.policy().window;
    Ok(ok(
        StatusCode::OK,
        RefundQuote {
            transaction_id: TransactionId(purchase.id),
            refundable: code.is_none(),
            credits,
            amount,
            currency: currency.lower(),
            bought: purchase.credits.0,
            already_refunded: books.already_refunded.0,
            spent,
            code,
            why,
            window_ends_at,
        },
    ))
}

fn parse_refund_id(raw: &str) -> Result<Uuid, ApiError> {
    RefundRequestId::parse(raw).map(|id| id.0).map_err(|e| ApiError::bad_request("invalid_refund_id", e))
}

async fn own(state: &AppState, client: &str, id: &str) -> Result<Refund, ApiError> {
    let id = parse_refund_id(id)?;
    refunds::load(&state.db, id).await?.map(|s| s.refund).filter(|r| r.client.as_str() == client).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "refund_not_found", "No such refund request for this account.")
    })
}

#[utoipa::path(get, path = "/api/v1/payments/refunds", tag = "refunds",
    responses((status = 200, body = [RefundView]), (status = 401, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_own(State(state): State<AppState>, ClientCaller(caller): ClientCaller) -> Result<Response, ApiError> {
    let list: Vec<RefundView> =
        refunds::list(&state.db, Some(caller.id.as_str()), None).await?.iter().map(|r| view(&state, r)).collect();
    Ok(ok(StatusCode::OK, list))
}

#[utoipa::path(get, path = "/api/v1/payments/refunds/{id}", tag = "refunds",
    params(("id" = String, Path, pattern = "^(ref_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The refund request id: `ref_…`")),
    responses((status = 200, body = RefundView), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn get_own(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let refund = own(&state, caller.id.as_str(), &id).await?;
    Ok(ok(StatusCode::OK, view(&state, &refund)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealRequest {
    /// Why the denial should be looked at again: 1 to 2000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    message: String,
}

/// The longest appeal an admin is asked to read.
const MAX_APPEAL: usize = 2000;

#[utoipa::path(post, path = "/api/v1/payments/refunds/{id}/appeal", tag = "refunds", request_body = AppealRequest,
    params(("id" = String, Path, pattern = "^(ref_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The denied refund request: `ref_…`")),
    responses((status = 200, body = RefundView), (status = 404, body = ErrorEnvelope), (status = 409, description = "Not denied, or the appeal was used", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn appeal(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<AppealRequest>,
) -> Result<Response, ApiError> {
    let message = request.message.trim();
    if message.is_empty() || message.chars().count() > MAX_APPEAL {
        let text = format!("Say why in 1 to {MAX_APPEAL} characters.");
        return Err(ApiError::bad_request("invalid_appeal", text));
    }
    let refund = own(&state, caller.id.as_str(), &id).await?;
    let refund = state.refunds.send(refund.id, RefundInput::Appeal { message: message.to_owned() }).await?;
    Ok(ok(StatusCode::OK, view(&state, &refund)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueFilter {
    /// `pending_review`, `appealed`, `processing`, `refunded`, `denied` or `needs_alternative_method`.
    status: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/admin/refunds", operation_id = "list_refunds", tag = "admin", params(QueueFilter),
    responses((status = 200, body = [RefundView]), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn queue(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    ApiQuery(filter): ApiQuery<QueueFilter>,
) -> Result<Response, ApiError> {
    let list: Vec<RefundView> =
        refunds::list(&state.db, None, filter.status.as_deref()).await?.iter().map(|r| view(&state, r)).collect();
    Ok(ok(StatusCode::OK, list))
}

async fn load_any(state: &AppState, id: &str) -> Result<Refund, ApiError> {
    let id = parse_refund_id(id)?;
    Ok(refunds::load(&state.db, id).await?.ok_or(RefundError::NotFound)?.refund)
}

#[utoipa::path(post, path = "/api/v1/admin/refunds/{id}/approve", operation_id = "approve_refund", tag = "admin",
    params(("id" = String, Path, pattern = "^(ref_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The refund request: `ref_…`")),
    responses((status = 200, description = "Approved: credits debited, the provider refund made or on its way", body = RefundView),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let refund = load_any(&state, &id).await?;
    let refund = app::refunds::approve(&state.refunds, refund.id, &admin.id).await?;
    Ok(ok(StatusCode::OK, view(&state, &refund)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyRequest {
    /// Sent to the client.
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/admin/refunds/{id}/deny", operation_id = "deny_refund", tag = "admin", request_body = DenyRequest,
    params(("id" = String, Path, pattern = "^(ref_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The refund request: `ref_…`")),
    responses((status = 200, body = RefundView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn deny(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<DenyRequest>,
) -> Result<Response, ApiError> {
    let refund = load_any(&state, &id).await?;
    let refund = state
        .refunds
        .send(refund.id, RefundInput::Deny { admin: admin.id.as_str().to_owned(), reason: request.reason })
        .await?;
    Ok(ok(StatusCode::OK, view(&state, &refund)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Adjustment {
    #[schema(pattern = "^[A-Za-z0-9_.@:-]{1,128}$")]
    client_id: String,
    /// Negative to take credits (the platform's usage), positive to give.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "super::extract::whole_number")]
    credits: i64,
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    reason: String,
}

/// The platform's use of credits, or an admin's correction: never below zero.
#[utoipa::path(post, path = "/api/v1/admin/credits/adjust", tag = "admin", request_body = Adjustment,
    responses((status = 200, description = "`{balance}` after the adjustment"), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 409, description = "Would go below zero", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn adjust_credits(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(request): ApiJson<Adjustment>,
) -> Result<Response, ApiError> {
    let client = crate::domain::ids::ClientId::parse(&request.client_id)
        .map_err(|e| ApiError::bad_request("invalid_client_id", e))?;
    match app::credits::adjust(&state.purchases.context().writer, &admin.id, &client, request.credits, &request.reason)
        .await
    {
        Ok(balance) => Ok(ok(StatusCode::OK, serde_json::json!({ "balance": balance }))),
        Err(e @ (AdjustError::OutOfBounds | AdjustError::Reason)) => {
            Err(ApiError::bad_request("invalid_request", e.to_string()))
        }
        Err(e @ AdjustError::Insufficient(_)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "insufficient_credits", e.to_string()))
        }
        Err(AdjustError::Db(e)) => Err(e.into()),
    }
}
