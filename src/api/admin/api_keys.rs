//! Admin: the platform backend's API keys (issue 18), made (the key shown once), listed and revoked.
use super::RequiredReason;
use crate::api::AppState;
use crate::api::error::{ApiError, ErrorEnvelope, ok};
use crate::api::extract::{AdminCaller, ApiJson, ApiPath};
use crate::app::api_keys;
use crate::domain::ids::ClientId;
use crate::store::api_keys::{self as key_store, Revoked};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    #[schema(pattern = "^[0-9a-f]{12}$")]
    id: String,
    /// Who the key acts as (the `service` role): the caller's id in spends and the audit trail.
    name: String,
    role: String,
    created_by: String,
    created_at: DateTime<Utc>,
    revoked_by: Option<String>,
    revoked_at: Option<DateTime<Utc>>,
    /// Only in the answer that made the key: `psk_<id>_<secret>`. Purser keeps its hash, never the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl ApiKeyView {
    fn of(key: entities::api_keys::Model, shown_once: Option<String>) -> Self {
        Self {
            id: key.id,
            name: key.name,
            role: key.role,
            created_by: key.created_by,
            created_at: key.created_at,
            revoked_by: key.revoked_by,
            revoked_at: key.revoked_at,
            key: shown_once,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// Who the key acts as: 1 to 128 letters, digits, `.`, `_`, `@` or `-`.
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,128}$")]
    name: String,
}

/// Makes an API key for the platform's backend. The key is in this answer only: store it as a secret.
#[utoipa::path(post, path = "/api/v1/admin/api-keys", tag = "admin", request_body = NewApiKey,
    responses((status = 201, body = ApiKeyView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(request): ApiJson<NewApiKey>,
) -> Result<Response, ApiError> {
    let name = ClientId::parse(&request.name).map_err(|e| ApiError::bad_request("invalid_name", e))?;
    let (key, shown_once) = api_keys::create(&state.purchases.context().writer, &admin.id, &name).await?;
    Ok(ok(StatusCode::CREATED, ApiKeyView::of(key, Some(shown_once))))
}

/// The API keys, newest first, revoked ones included (never a key or its hash).
#[utoipa::path(get, path = "/api/v1/admin/api-keys", tag = "admin",
    responses((status = 200, body = [ApiKeyView]), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Response, ApiError> {
    let keys: Vec<ApiKeyView> =
        key_store::list(&state.db).await?.into_iter().map(|k| ApiKeyView::of(k, None)).collect();
    Ok(ok(StatusCode::OK, keys))
}

/// Revokes a key for good: requests presenting it get 401 on every node from now on.
#[utoipa::path(post, path = "/api/v1/admin/api-keys/{id}/revoke", tag = "admin", request_body = RequiredReason,
    params(("id" = String, Path, pattern = "^[0-9a-f]{12}$", description = "The key's id")),
    responses((status = 200, body = ApiKeyView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "Revoked already", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<RequiredReason>,
) -> Result<Response, ApiError> {
    let reason = super::required_reason(&request.reason)?;
    match api_keys::revoke(&state.purchases.context().writer, &admin.id, id, reason).await? {
        Revoked::Done(key) => Ok(ok(StatusCode::OK, ApiKeyView::of(key, None))),
        Revoked::Already(_) => {
            Err(ApiError::new(StatusCode::CONFLICT, "already_revoked", "This key is revoked already."))
        }
        Revoked::NotFound => Err(ApiError::new(StatusCode::NOT_FOUND, "api_key_not_found", "No such API key.")),
    }
}
