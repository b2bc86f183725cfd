//! The rate-limit actor's check in front of the endpoints that start payments and refunds: 429 with `Retry-After` in the envelope.
use super::AppState;
use super::error::ApiError;
use crate::guards::rate_limit::RateMsg;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::time::Duration;

pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = super::extract::authenticate(&state, authorization).await.ok();
    let client = caller.map(|caller| caller.id.as_str().to_owned());
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    let ip = peer.map(|peer| super::client_addr::resolve(peer, request.headers(), &state.trusted_proxies));
    let check = |reply| RateMsg::Inbound { client, ip, reply };
    match state.purchases.context().limiter.call(check, state.purchases.context().call_timeout).await {
        Some(Ok(())) => next.run(request).await,
        Some(Err(wait)) => too_many(wait, "payment requests"),
        // No budget is no permission: a limiter that does not answer (restarting) turns the request away.
        None => ApiError::from(crate::actors::purchase::PurchaseError::Busy).into_response(),
    }
}

/// 429 in the envelope, with `Retry-After` in whole seconds.
pub fn too_many(wait: Duration, what: &str) -> Response {
    let seconds = wait.as_secs() + 1;
    let error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("Too many {what}; try again in {seconds} s."),
    );
    let mut response = error.into_response();
    response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    response
}
