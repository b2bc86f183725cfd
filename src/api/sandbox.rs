//! Test hooks of the sandbox provider, mounted under `/sandbox/` only when the sandbox is the card provider.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope};
use super::extract::ApiJson;
use super::pages::page;
use crate::api::extract::ApiQuery;
use crate::html::escape;
use crate::providers::ProviderError;
use crate::providers::sandbox::FUNDING_SOURCES;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    /// `true` completes (authenticates, clears) the payment, `false` fails it.
    success: bool,
}

#[utoipa::path(post, path = "/sandbox/v1/payment_intents/{id}/_authenticate", tag = "sandbox",
    params(("id" = String, Path, description = "A sandbox payment intent in `requires_action`")),
    request_body = OutcomeRequest,
    responses((status = 200, description = "The payment intent, Stripe-shaped"), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn authenticate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<OutcomeRequest>,
) -> Result<Response, ApiError> {
    let sandbox = sandbox(&state)?;
    answer(sandbox.authenticate(&id, request.success).await)
}

#[utoipa::path(post, path = "/sandbox/v1/payment_intents/{id}/_settle", tag = "sandbox",
    params(("id" = String, Path, description = "A sandbox bank-debit (ACH) payment intent in `processing`")),
    request_body = OutcomeRequest,
    responses((status = 200, description = "The payment intent, Stripe-shaped"), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn settle(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<OutcomeRequest>,
) -> Result<Response, ApiError> {
    let sandbox = sandbox(&state)?;
    answer(sandbox.clear_bank_debit(&id, request.success).await)
}

fn sandbox(state: &AppState) -> Result<&crate::providers::sandbox::Sandbox, ApiError> {
    state
        .sandbox
        .as_deref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "The sandbox is not enabled."))
}

fn answer(result: Result<serde_json::Value, ProviderError>) -> Result<Response, ApiError> {
    match result {
        Ok(intent) => Ok((StatusCode::OK, axum::Json(intent)).into_response()),
        Err(ProviderError::Rejected { code, message }) if code == "resource_missing" => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "resource_missing", message))
        }
        Err(ProviderError::Rejected { message, .. }) => {
            Err(ApiError::bad_request("payment_intent_unexpected_state", message))
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// The sandbox's stand-in for PayPal's approval page (`approvalUrl` of a sandbox order).
#[utoipa::path(get, path = "/sandbox/paypal/checkoutnow", tag = "sandbox",
    params(("token" = String, Query, description = "The sandbox order id")),
    responses((status = 200, description = "HTML: approve (choosing a funding source) or cancel"), (status = 404, description = "HTML: no such order")))]
pub async fn paypal_checkout(
    State(state): State<AppState>,
    ApiQuery(order): ApiQuery<OrderToken>,
) -> Result<Response, ApiError> {
    let sandbox = sandbox(&state)?;
    let Ok(found) = sandbox.read_order(&order.token).await else {
        return Ok(page(StatusCode::NOT_FOUND, "Order not found", "<p>No such sandbox PayPal order.</p>"));
    };
    let amount = found.pointer("/purchase_units/0/amount").cloned().unwrap_or_default();
    let value = amount.get("value").and_then(|v| v.as_str()).unwrap_or_default();
    let currency = amount.get("currency_code").and_then(|v| v.as_str()).unwrap_or_default();
    let token = escape(&order.token);
    let choices: String = FUNDING_SOURCES
        .iter()
        .enumerate()
        .map(|(i, (key, label))| {
            let checked = if i == 0 { " checked" } else { "" };
            format!("<p><label><input type=\"radio\" name=\"funding\" value=\"{key}\"{checked}> {label}</label></p>")
        })
        .collect();
    let body = format!(
        "<p class=\"sandbox\" role=\"note\"><strong>Sandbox:</strong> this page stands in for PayPal. No money moves.</p>\
         <p>Pay <strong>{} {}</strong> to Purser.</p>\
         <form method=\"post\" action=\"/sandbox/paypal/checkoutnow/{token}/approve\"><fieldset><legend>Pay with</legend>{choices}\
         </fieldset><p><button type=\"submit\">Approve payment</button></p></form>\
         <form method=\"post\" action=\"/sandbox/paypal/checkoutnow/{token}/cancel\"><p><button type=\"submit\">Cancel and return</button></p></form>",
        escape(value),
        escape(currency),
    );
    Ok(page(StatusCode::OK, "Sandbox PayPal", &body))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderToken {
    token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct Approval {
    /// `paypal`, `venmo`, `card`, or `declined` (a source whose capture PayPal refuses).
    funding: String,
}

/// The payer approves on the sandbox page: back to Purser's return URL, as PayPal redirects.
#[utoipa::path(post, path = "/sandbox/paypal/checkoutnow/{id}/approve", tag = "sandbox",
    params(("id" = String, Path, description = "The sandbox order id")),
    request_body(content = Approval, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "To /api/v1/payments/paypal/return?token=…"), (status = 400, body = ErrorEnvelope)))]
pub async fn paypal_approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Form(approval): axum::Form<Approval>,
) -> Result<Response, ApiError> {
    let sandbox = sandbox(&state)?;
    if let Err(e) = sandbox.approve_order(&id, &approval.funding).await {
        return answer(Err(e));
    }
    Ok(redirect(&format!("{}/api/v1/payments/paypal/return?token={id}&PayerID=SBXPAYER", state.public_url)))
}

/// The payer cancels on the sandbox page: back to Purser's cancel URL.
#[utoipa::path(post, path = "/sandbox/paypal/checkoutnow/{id}/cancel", tag = "sandbox",
    params(("id" = String, Path, description = "The sandbox order id")),
    responses((status = 303, description = "To /api/v1/payments/paypal/cancel?token=…")))]
pub async fn paypal_turn_back(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    redirect(&format!("{}/api/v1/payments/paypal/cancel?token={id}", state.public_url))
}

fn redirect(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, location.to_owned())]).into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardDetails {
    number: String,
    exp_month: u32,
    exp_year: u32,
    cvc: String,
}

/// The sandbox's tokenizer, standing in for Stripe.js: Stripe's test card numbers in, the test payment method out.
/// Only the sandbox's card form calls it; Purser's API never takes card numbers.
#[utoipa::path(post, path = "/sandbox/v1/tokens", tag = "sandbox", request_body = CardDetails,
    responses((status = 200, description = "`{id, brand, last4}`: the test payment method for that card"),
        (status = 400, description = "Not a valid card, or not one of Stripe's test cards", body = ErrorEnvelope)))]
pub async fn tokenize(ApiJson(card): ApiJson<CardDetails>) -> Result<Response, ApiError> {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let method = crate::providers::sandbox::tokens::tokenize(
        &card.number,
        card.exp_month,
        card.exp_year,
        &card.cvc,
        (today.year() as u32, today.month()),
    )
    .map_err(|e| ApiError::bad_request(e.code(), e.message()))?;
    let last4: String =
        card.number.chars().filter(char::is_ascii_digit).rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    Ok(super::error::ok(StatusCode::OK, serde_json::json!({ "id": method, "last4": last4 })))
}
