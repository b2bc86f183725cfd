//! PayPal checkout (AC9.2.1–AC9.2.4): create an order, then either send the payer to PayPal and land them back on the
//! return or cancel URL, where the capture happens and the outcome is shown with a retry when it failed; or, with
//! PayPal's Smart Payment Buttons, capture or record the cancellation from the buttons' `onApprove` and `onCancel`.
use super::AppState;
use super::client_addr::ClientAddr;
use super::error::{ApiError, ErrorEnvelope, ok};
use super::extract::{ApiJson, ClientCaller};
use super::pages::page;
use super::payments::parse_package;
use crate::api::extract::ApiQuery;
use crate::domain::ids::{TransactionId, new_key};
use crate::domain::purchase::{Checkout, Input, Purchase, Rail, Status};
use crate::guards::fraud::Screening;
use crate::html::escape;
use crate::providers::paypal_order::approval_url;
use crate::store::purchases;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrderRequest {
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    package_id: String,
    /// The button the payer chose, as PayPal's buttons pass it to `createOrder` (`data.paymentSource`). PayPal's order
    /// names Pay Later and PayPal Credit `paypal`, so this is where they are told apart. Recorded, never trusted for
    /// money.
    #[serde(default)]
    #[schema(pattern = "^(paypal|paylater|credit|venmo|card)$")]
    funding_source: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderResponse {
    order_id: String,
    /// Send the payer's browser here (PayPal's approval page).
    approval_url: String,
    #[schema(value_type = String, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: TransactionId,
}

/// What PayPal appends to the return and cancel URLs (its `PayerID` is not needed: the order knows its payer).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Landing {
    /// The order id.
    #[param(min_length = 1)]
    token: String,
}

async fn open(
    state: &AppState,
    client: crate::domain::ids::ClientId,
    receipt_email: Option<String>,
    package: &crate::domain::package::Package,
    funding_source: Option<String>,
) -> Result<Purchase, ApiError> {
    let checkout = Checkout { rail: Rail::Paypal, receipt_email, funding_source, ..Checkout::default() };
    let step = Purchase::open(new_key(), client, package, checkout, Utc::now(), &state.policy);
    let purchase = state.purchases.open(step).await?;
    match (purchase.status, &purchase.failure) {
        (Status::RequiresAction, _) if approval_url(purchase.next_action.as_ref()).is_some() => Ok(purchase),
        (Status::Failed, Some(failure)) => Err(ApiError::payment_failed(failure, purchase.id)),
        _ => Err(ApiError::new(StatusCode::BAD_GATEWAY, "provider_unavailable", "PayPal did not answer; try again.")),
    }
}

#[utoipa::path(post, path = "/api/v1/payments/paypal/create-order", tag = "paypal",
    request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Replays the stored response for a repeated request: 1 to 255 visible ASCII characters")),
    responses((status = 200, body = CreateOrderResponse), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 502, description = "PayPal did not answer", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_order(
    State(state): State<AppState>,
    ClientAddr(client_ip): ClientAddr,
    ClientCaller(caller): ClientCaller,
    ApiJson(request): ApiJson<CreateOrderRequest>,
) -> Result<Response, ApiError> {
    let package_id = parse_package(&state, &request.package_id)?;
    if let Some(source) = request.funding_source.as_deref().filter(|s| !FUNDING_SOURCES.contains(s)) {
        let message = format!("fundingSource `{source}` is not one of {}.", FUNDING_SOURCES.join(", "));
        return Err(ApiError::bad_request("invalid_funding_source", message));
    }
    super::controls::ensure_open(&state, Rail::Paypal).await?;
    let package = state.catalogue.get(&package_id).ok_or_else(|| ApiError::internal("package vanished"))?;
    // PayPal screens its own payers; Purser's rules still block (velocity, amount, decline bursts).
    let screening = Screening {
        client: caller.id.as_str().to_owned(),
        amount: package.price.minor,
        card: None,
        ip: Some(client_ip),
    };
    super::controls::screen(&state, screening).await?;
    let purchase = open(&state, caller.id, caller.email, package, request.funding_source).await?;
    Ok(ok(
        StatusCode::OK,
        CreateOrderResponse {
            order_id: purchase.intent_id.clone().unwrap_or_default(),
            approval_url: approval_url(purchase.next_action.as_ref()).unwrap_or_default(),
            transaction_id: purchase.id.into(),
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderRequest {
    /// The PayPal order id the buttons' `onApprove` or `onCancel` received (`data.orderID`).
    order_id: String,
}

/// The funding sources PayPal's buttons name.
const FUNDING_SOURCES: [&str; 5] = ["paypal", "paylater", "credit", "venmo", "card"];

/// The PayPal purchase an order id names.
async fn by_order(state: &AppState, order: &str) -> Result<Option<purchases::Stored>, ApiError> {
    Ok(purchases::find_by_intent(&state.reads, order).await?.filter(|s| s.purchase.rail == Rail::Paypal))
}

/// One of the caller's PayPal purchases, by its order id.
async fn own_order(state: &AppState, caller: &crate::domain::ids::ClientId, order: &str) -> Result<Uuid, ApiError> {
    by_order(state, order).await?.filter(|s| &s.purchase.client == caller).map(|s| s.purchase.id).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "transaction_not_found", "No such PayPal order for this account.")
    })
}

/// The Smart Payment Buttons' `onApprove` (AC9.2.2, AC9.2.4): capture the approved order and grant the credits once,
/// answering as `/payments/confirm` does.
#[utoipa::path(post, path = "/api/v1/payments/paypal/capture-order", tag = "paypal", request_body = OrderRequest,
    responses((status = 200, description = "`succeeded`, with the credits added and the new balance", body = super::payments::ConfirmResponse),
        (status = 202, description = "PayPal holds the capture pending", body = super::payments::ConfirmResponse),
        (status = 402, description = "The capture was declined: pick another funding source", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn capture_order(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    ApiJson(request): ApiJson<OrderRequest>,
) -> Result<Response, ApiError> {
    let id = own_order(&state, &caller.id, &request.order_id).await?;
    super::controls::ensure_open(&state, Rail::Paypal).await?;
    let purchase =
        state.purchases.send(id, Input::Confirm { payment_method: None, retry: false, review: None }).await?;
    super::payments::confirm_response(&state, &purchase).await
}

/// The Smart Payment Buttons' `onCancel` (AC9.2.3): the payer closed PayPal's window; the purchase records why, and
/// the answer is the `paypal_cancelled` failure the page shows with its retry.
#[utoipa::path(post, path = "/api/v1/payments/paypal/cancel-order", tag = "paypal", request_body = OrderRequest,
    responses((status = 402, description = "Cancelled by the payer; nothing was charged", body = ErrorEnvelope),
        (status = 200, description = "PayPal had captured it after all", body = super::payments::ConfirmResponse),
        (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn cancel_order(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    ApiJson(request): ApiJson<OrderRequest>,
) -> Result<Response, ApiError> {
    let id = own_order(&state, &caller.id, &request.order_id).await?;
    let purchase = state.purchases.send(id, Input::PayerCancelled).await?;
    super::payments::confirm_response(&state, &purchase).await
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Payment not found",
        "<p>We could not find this PayPal payment. Nothing was charged.</p>",
    )
}

/// A retry is a new checkout, made where the payer is signed in, through the same pause, screen, rate limit and
/// idempotency as any other: the landing page, which anyone holding the order id can open, only links there.
fn retry_link(state: &AppState) -> String {
    format!("<p><a class=\"button\" href=\"{}/checkout\">Try again</a></p>", escape(&state.public_url))
}

/// The page a purchase's outcome shows to the payer.
async fn outcome_page(state: &AppState, purchase: &Purchase) -> Result<Response, ApiError> {
    Ok(match purchase.status {
        // Nothing personal (no balance): the page answers whoever holds the order id.
        Status::Succeeded => page(
            StatusCode::OK,
            "Payment complete",
            &format!(
                "<p role=\"status\"><strong>{} credits</strong> were added to your account.</p><p>Transaction {}</p>\
                 <p><a href=\"/billing\">Your balance and billing</a> · <a href=\"/checkout\">Buy more credits</a></p>",
                purchase.credits.0, purchase.id
            ),
        ),
        Status::Processing => page(
            StatusCode::ACCEPTED,
            "Payment pending",
            "<p role=\"status\">PayPal is still processing this payment. Your credits are added as soon as it completes.</p>",
        ),
        Status::Failed => {
            let failure = purchase.failure.clone().unwrap_or(crate::domain::failure::FailureCode::CardDeclined);
            page(
                StatusCode::PAYMENT_REQUIRED,
                "Payment not completed",
                &format!(
                    "<p role=\"alert\"><strong>{}</strong> {}</p>{}",
                    escape(failure.message()),
                    escape(failure.suggested_action()),
                    retry_link(state)
                ),
            )
        }
        Status::Expired => page(
            StatusCode::GONE,
            "Checkout expired",
            &format!(
                "<p role=\"alert\">This checkout expired before it was paid. Nothing was charged.</p>{}",
                retry_link(state)
            ),
        ),
        _ => {
            let link = approval_url(purchase.next_action.as_ref()).unwrap_or_default();
            page(
                StatusCode::OK,
                "Waiting for PayPal",
                &format!(
                    "<p>PayPal has not approved this payment yet.</p><p><a class=\"button\" href=\"{}\">Continue at PayPal</a></p>",
                    escape(&link)
                ),
            )
        }
    })
}

async fn land(state: &AppState, order: &str, input: Input) -> Result<Response, ApiError> {
    let Some(stored) = by_order(state, order).await? else {
        return Ok(not_found());
    };
    let purchase = match state.purchases.send(stored.purchase.id, input).await {
        Ok(purchase) => purchase,
        Err(crate::actors::purchase::PurchaseError::Rejected(_)) => {
            purchases::load(&state.reads, stored.purchase.id).await?.map(|s| s.purchase).unwrap_or(stored.purchase)
        }
        Err(e) => return Err(e.into()),
    };
    outcome_page(state, &purchase).await
}

/// PayPal's return URL (AC9.2.2): capture the approved order, grant the credits once, show the confirmation.
#[utoipa::path(get, path = "/api/v1/payments/paypal/return", tag = "paypal", params(Landing),
    responses((status = 200, description = "HTML: payment complete with the credits added and the new balance"),
        (status = 402, description = "HTML: the capture was declined, with the reason and a retry"),
        (status = 404, description = "HTML: no such PayPal payment")))]
pub async fn paypal_return(
    State(state): State<AppState>,
    ApiQuery(landing): ApiQuery<Landing>,
) -> Result<Response, ApiError> {
    land(&state, &landing.token, Input::Confirm { payment_method: None, retry: false, review: None }).await
}

/// PayPal's cancel URL (AC9.2.3): the payer turned back. Anyone holding the order id can open this URL, so it
/// changes nothing itself: the page says nothing was charged and offers a retry, and its script records the
/// cancellation through `cancel-order` with the payer's own token, when the payer is signed in in this browser.
/// Otherwise the unpaid order simply expires.
#[utoipa::path(get, path = "/api/v1/payments/paypal/cancel", tag = "paypal", params(Landing),
    responses((status = 402, description = "HTML: cancelled, nothing charged, with a retry"), (status = 404, description = "HTML: no such PayPal payment")))]
pub async fn paypal_cancel(
    State(state): State<AppState>,
    ApiQuery(landing): ApiQuery<Landing>,
) -> Result<Response, ApiError> {
    if by_order(&state, &landing.token).await?.is_none() {
        return Ok(not_found());
    }
    let failure = crate::domain::failure::FailureCode::PayerCancelled;
    Ok(super::pages::page_with(
        StatusCode::PAYMENT_REQUIRED,
        "Payment not completed",
        &format!("<p role=\"alert\"><strong>{}</strong></p>{}", escape(failure.message()), retry_link(&state)),
        &format!("<script src=\"/assets/paypal-cancel.js\" data-order=\"{}\"></script>", escape(&landing.token)),
    ))
}
