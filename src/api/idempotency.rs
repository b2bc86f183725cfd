//! `Idempotency-Key` on money-moving POSTs: the same key and body replay the stored response; the same key with
//! another body is refused with 409 `idempotency_key_reused`.
use super::AppState;
use super::error::ApiError;
use super::extract::body_rejection;
use crate::store::idempotency::{self, Claim};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match handle(state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// A key as sent: 1 to 255 visible ASCII characters.
pub fn parse_key(key: &HeaderValue) -> Result<String, ApiError> {
    key.to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
            )
        })
}

/// The answer stored under a key, sent again, marked as a replay.
pub fn replay(status: u16, body: String) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(status).map_err(ApiError::internal)?;
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

pub fn reused() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_reused",
        "This Idempotency-Key was already used with a different request; use a new key for a new request.",
    )
}

pub fn in_use() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
}

async fn handle(state: AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    let Some(key) = request.headers().get(HEADER) else {
        return Ok(next.run(request).await);
    };
    let key = parse_key(key)?;
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    // Without a valid caller there is nothing to scope the key to; the handler answers 401 anyway.
    let Ok(caller) = super::extract::authenticate(&state, authorization).await else {
        return Ok(next.run(request).await);
    };
    let client = caller.id.as_str().to_owned();

    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, state.body_limit).await.map_err(|_| body_rejection(StatusCode::PAYLOAD_TOO_LARGE))?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(parts.uri.path());
    hasher.update(&bytes);
    let hash = hex::encode(hasher.finalize());

    let writer = state.purchases.context().writer.clone();
    let (owner, name, lease) = (client.clone(), key.clone(), state.idempotency_lease);
    let claimed =
        writer.write(move |txn| Box::pin(async move { idempotency::claim(txn, &owner, &name, &hash, lease).await }));
    match claimed.await? {
        Claim::Replay { status, body } => return replay(status, body),
        Claim::DifferentRequest => return Err(reused()),
        Claim::InProgress => return Err(in_use()),
        Claim::Fresh => {}
    }

    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.map_err(ApiError::internal)?;
    // A server error is our failure, not the client's: the key is released so the same key may try again.
    let answer = (!parts.status.is_server_error())
        .then(|| (parts.status.as_u16(), String::from_utf8_lossy(&bytes).into_owned()));
    writer
        .write(move |txn| {
            Box::pin(async move {
                match answer {
                    Some((status, body)) => idempotency::complete(txn, &client, &key, status, body).await,
                    None => idempotency::release(txn, &client, &key).await,
                }
            })
        })
        .await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
