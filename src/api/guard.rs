//! The rate limit in front of the endpoints that start payments and refunds: 429 with `Retry-After` in the envelope.
use super::AppState;
use super::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let client = state.auth.verify_header(authorization).ok().map(|caller| caller.id.as_str().to_owned());
    let ip = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    match state.limits.check(client.as_deref(), ip) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = wait.as_secs() + 1;
            let error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("Too many payment requests; try again in {seconds} s."),
            );
            let mut response = error.into_response();
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
            response
        }
    }
}
