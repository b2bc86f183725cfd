//! Extractors that turn bad input into the API's own errors: JSON bodies and bearer tokens.
use super::AppState;
use super::error::ApiError;
use crate::auth::{Caller, Role};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

/// `axum::extract::Query`, with a bad query string answered 400 in the envelope rather than in plain text.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_query",
                format!("The query string does not match the expected parameters: {}", rejection.body_text()),
            )),
        }
    }
}

/// `axum::extract::Path`, with a malformed path parameter answered 400 in the envelope.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_path",
                format!("The path does not match the expected parameters: {}", rejection.body_text()),
            )),
        }
    }
}

/// `axum::Json`, with every rejection (syntax, wrong types, missing content type, oversize) in the envelope.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// An optional JSON body: none when the request sends no JSON, and a body that is sent but wrong answered in the
/// envelope like any other.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !content_type.starts_with("application/json") {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state).await.map(Some)
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::bad_request(
            "invalid_request",
            format!("The request body does not match the expected fields: {}", e.body_text()),
        ),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request("malformed_json", "The request body is not valid JSON.")
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with `Content-Type: application/json`.",
        ),
        other => body_rejection(other.status()),
    }
}

pub fn body_rejection(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "payload_too_large", "The request body is larger than this endpoint accepts.")
    } else {
        ApiError::new(status, "invalid_request", "The request body could not be read.")
    }
}

/// The caller of a request: a bearer JWT, or the platform backend's API key (`psk_…`, which acts as the `service`
/// role), checked against the database on every request so that a revoked key stops at once on every node.
pub async fn authenticate(state: &AppState, header: Option<&str>) -> Result<Caller, ApiError> {
    let bearer = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
    let Some(presented) = bearer.and_then(crate::domain::api_key::PresentedKey::parse) else {
        return Ok(state.auth.verify_header(header)?);
    };
    match crate::app::api_keys::authenticate(&state.reads, &presented).await? {
        Some(id) => Ok(Caller { id, role: Role::Service, email: None }),
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "The API key is unknown or revoked.")),
    }
}

async fn caller(parts: &Parts, state: &AppState, role: Role) -> Result<Caller, ApiError> {
    let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = authenticate(state, header).await?;
    if caller.role != role {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "This endpoint needs the `{}` role.",
                match role {
                    Role::Client => "client",
                    Role::Admin => "admin",
                    Role::Service => "service",
                }
            ),
        ));
    }
    Ok(caller)
}

/// A request from a signed-in client.
pub struct ClientCaller(pub Caller);

impl FromRequestParts<AppState> for ClientCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(parts, state, Role::Client).await.map(Self)
    }
}

/// A request from the platform's backend (a `service` token).
pub struct ServiceCaller(pub Caller);

impl FromRequestParts<AppState> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(parts, state, Role::Service).await.map(Self)
    }
}

/// A request from a signed-in admin.
pub struct AdminCaller(pub Caller);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(parts, state, Role::Admin).await.map(Self)
    }
}

/// An integer field of a JSON body, as JSON Schema counts integers: `25` or `25.0`, never `25.5`. A generated client may
/// send a whole number with a decimal point; anything with a fraction, or out of `i64`'s range, is refused.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::Deserialize;
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole =
        number.as_i64().or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64));
    whole.ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number")))
}
