//! The platform's side of the ledger (issue 18): its backend, with a `service` token, spends a client's credits on
//! what they bought, gives a spend back once, and reads any client's statement; a client reads its own.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope, ok, ok_envelope};
use super::extract::{ApiJson, ApiQuery, ClientCaller, ServiceCaller, whole_number};
use crate::app::credits::{self, KeyedSpend, SpendError, SpendKey};
use crate::auth::Role;
use crate::domain::ids::{ClientId, SpendId};
use crate::store::spends::{self, Reversed};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

fn parse_client(raw: &str) -> Result<ClientId, ApiError> {
    ClientId::parse(raw).map_err(|e| ApiError::bad_request("invalid_client_id", e))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpendRequest {
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,128}$")]
    client_id: String,
    /// Whole credits, at least 1.
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    credits: i64,
    /// The platform's own id for what the credits bought (a job, a render…), shown on the client's statement.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    reference: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpendView {
    #[schema(value_type = String, pattern = "^spd_[0-9a-f-]{36}$")]
    spend_id: SpendId,
    client_id: String,
    credits: i64,
    reference: String,
    description: String,
    reversed: bool,
    /// The client's balance after this call.
    balance: i64,
    created_at: DateTime<Utc>,
}

fn view(spend: entities::spends::Model, balance: i64) -> SpendView {
    SpendView {
        spend_id: SpendId(spend.id),
        client_id: spend.client_id,
        credits: spend.credits,
        reference: spend.reference,
        description: spend.description,
        reversed: spend.reversed_at.is_some(),
        balance,
        created_at: spend.created_at,
    }
}

/// Spends a client's credits (issue 18): one ledger row carrying the reference, atomic with the balance check, never
/// below zero. `Idempotency-Key` is required: a retried spend spends once.
#[utoipa::path(post, path = "/api/v1/credits/spend", tag = "credits", request_body = SpendRequest,
    params(("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "Required: the same key and body replay the first answer")),
    responses((status = 201, body = SpendView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 402, description = "`insufficient_credits`: the balance is smaller (the message says how much)", body = ErrorEnvelope),
        (status = 403, description = "Not a service token", body = ErrorEnvelope),
        (status = 409, description = "`idempotency_key_reused` with another body, or `idempotency_key_in_use` while the first is answered", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn spend(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SpendRequest>,
) -> Result<Response, ApiError> {
    let Some(key) = headers.get(super::idempotency::HEADER) else {
        let message = "Send an Idempotency-Key with every spend, so a retry spends once.";
        return Err(ApiError::bad_request("idempotency_key_required", message));
    };
    let key = super::idempotency::parse_key(key)?;
    let client = parse_client(&request.client_id)?;
    // The request as meant, whatever its JSON's spacing: the same key with another spend is refused.
    let fields = [request.client_id.as_str(), &request.credits.to_string(), &request.reference, &request.description];
    let request_hash = hex::encode(Sha256::digest(serde_json::to_vec(&fields).map_err(ApiError::internal)?));
    let key = SpendKey { key, request_hash, lease: state.idempotency_lease };
    let writer = &state.purchases.context().writer;
    let spent = credits::spend(
        writer,
        &service.id,
        &client,
        request.credits,
        &request.reference,
        &request.description,
        key,
        |spending| match spending {
            Ok((spend, balance)) => (201, ok_envelope(view(spend.clone(), *balance)).to_string()),
            Err(balance) => (402, insufficient(*balance).body()),
        },
    );
    match spent.await {
        Ok(KeyedSpend::Done(Ok((spend, balance)))) => Ok(ok(StatusCode::CREATED, view(spend, balance))),
        Ok(KeyedSpend::Done(Err(balance))) => Err(insufficient(balance)),
        Ok(KeyedSpend::Replay { status, body }) => super::idempotency::replay(status, body),
        Ok(KeyedSpend::DifferentRequest) => Err(super::idempotency::reused()),
        Ok(KeyedSpend::InProgress) => Err(super::idempotency::in_use()),
        Err(e @ (SpendError::OutOfBounds | SpendError::Reference)) => {
            Err(ApiError::bad_request("invalid_spend", e.to_string()))
        }
        Err(SpendError::Db(e)) => Err(e.into()),
    }
}

fn insufficient(balance: i64) -> ApiError {
    let message = format!("The balance is {balance} credits.");
    ApiError::new(StatusCode::PAYMENT_REQUIRED, "insufficient_credits", message)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseRequest {
    /// Why the credits go back (a job that failed); kept with the spend.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    reason: String,
}

/// Gives a spend's credits back, once (a job that failed); a second reversal is 409 `already_reversed`.
#[utoipa::path(post, path = "/api/v1/credits/spends/{spendId}/reverse", tag = "credits", request_body = ReverseRequest,
    params(("spendId" = String, Path, pattern = "^(spd_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "`spd_…`")),
    responses((status = 200, body = SpendView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn reverse(
    State(state): State<AppState>,
    ServiceCaller(_service): ServiceCaller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReverseRequest>,
) -> Result<Response, ApiError> {
    let id = SpendId::parse(&id).map_err(|e| ApiError::bad_request("invalid_spend_id", e))?.0;
    let reason = request.reason.trim();
    if reason.is_empty() || request.reason.chars().count() > 500 {
        return Err(ApiError::bad_request("reason_required", "Give a reason of 1 to 500 characters."));
    }
    match credits::reverse(&state.purchases.context().writer, id, reason).await? {
        Reversed::Done(spend, balance) => Ok(ok(StatusCode::OK, view(spend, balance))),
        Reversed::Already(_) => {
            Err(ApiError::new(StatusCode::CONFLICT, "already_reversed", "This spend was given back already."))
        }
        Reversed::NotFound => Err(ApiError::new(StatusCode::NOT_FOUND, "spend_not_found", "No such spend.")),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct LedgerQuery {
    /// `nextCursor` of the previous page.
    #[param(minimum = 0)]
    cursor: Option<i64>,
    /// 100 by default.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// `purchase_grant`, `spend`, `spend_reversal`, `refund_debit`, `refund_credit_back`, `dispute_debit`,
    /// `adjustment`.
    kind: String,
    /// What moved them: `txn_…` (a purchase), `spd_…` (a spend), `ref_…` (a refund), `dp_…` or PayPal's dispute id,
    /// or an adjustment's id.
    source: String,
    credits: i64,
    /// For a spend: the platform's reference and description.
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    at: DateTime<Utc>,
}

/// The caller's own statement, oldest first (issue 18): grants, spends, reversals, refunds, dispute debits,
/// adjustments, each with its source.
#[utoipa::path(get, path = "/api/v1/credits/ledger", tag = "credits", params(LedgerQuery),
    responses((status = 200, description = "`{ items: [LedgerEntry], balance, nextCursor }`"), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn own_ledger(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    ApiQuery(query): ApiQuery<LedgerQuery>,
) -> Result<Response, ApiError> {
    statement(&state, &caller.id, query).await
}

/// A client's statement, for the platform's backend and admins (a client may read its own here too).
#[utoipa::path(get, path = "/api/v1/credits/ledger/{clientId}", tag = "credits",
    params(("clientId" = String, Path, pattern = "^[A-Za-z0-9._@-]{1,128}$", description = "Whose statement"), LedgerQuery),
    responses((status = 200, description = "`{ items: [LedgerEntry], balance, nextCursor }`"), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn client_ledger(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client): Path<String>,
    ApiQuery(query): ApiQuery<LedgerQuery>,
) -> Result<Response, ApiError> {
    let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = super::extract::authenticate(&state, header).await?;
    let client = parse_client(&client)?;
    if caller.role == Role::Client && caller.id != client {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "A client reads its own statement only."));
    }
    statement(&state, &client, query).await
}

async fn statement(state: &AppState, client: &ClientId, query: LedgerQuery) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) || query.cursor.is_some_and(|c| c < 0) {
        let message = "limit is 1 to 500, and cursor the nextCursor of the previous page.";
        return Err(ApiError::bad_request("invalid_query", message));
    }
    let rows = spends::statement(&state.reads, client, query.cursor, limit).await?;
    let spend_ids: Vec<Uuid> =
        rows.iter().filter_map(|r| r.source.strip_prefix("spend:").and_then(|id| Uuid::parse_str(id).ok())).collect();
    let named = spends::named(&state.reads, spend_ids).await?;
    let next = (rows.len() as u64 == limit).then(|| rows.last().map(|r| r.id)).flatten();
    let items: Vec<LedgerEntry> = rows
        .into_iter()
        .map(|r| {
            let spend = r.source.strip_prefix("spend:").and_then(|id| named.iter().find(|s| s.id.to_string() == id));
            LedgerEntry {
                kind: r.kind,
                source: crate::domain::ids::public_source(&r.source),
                credits: r.credits,
                reference: spend.map(|s| s.reference.clone()),
                description: spend.map(|s| s.description.clone()),
                at: r.created_at,
            }
        })
        .collect();
    let balance = crate::store::ledger::balance(&state.reads, client).await?;
    Ok(ok(StatusCode::OK, serde_json::json!({ "items": items, "balance": balance, "nextCursor": next })))
}
