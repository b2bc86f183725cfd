//! Payment methods (AC9.1.6, AC9.1.7, AC9.3.3, AC9.3.6): make one from a Stripe.js card token, list the saved ones,
//! remove one, remove all payment data.
use super::AppState;
use super::error::{ApiError, ErrorEnvelope, ok};
use super::extract::{ApiJson, ClientCaller};
use crate::app::payment_data::{self, RemovalError};
use crate::domain::ids::CardToken;
use crate::domain::purchase::Rail;
use crate::providers::{CardMethod, ProviderError};
use crate::store::payment_methods;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FromToken {
    /// What `stripe.createToken(cardElement)` returned (`tok_…`).
    #[schema(pattern = "^tok_[A-Za-z0-9_]{1,251}$")]
    card_token: String,
}

/// The Card Element's path: Stripe.js tokenizes the card in the browser, and Purser asks Stripe for a PaymentMethod
/// made from that token, which the checkout then pays with. It is saved for later only if that purchase asks.
#[utoipa::path(post, path = "/api/v1/payments/methods", tag = "payment methods", request_body = FromToken,
    responses((status = 201, body = CardMethod),
        (status = 400, description = "Not a card token, or one Stripe refused (used, expired)", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 409, description = "The sandbox has no card tokens: its tokenizer returns methods", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_from_token(
    State(state): State<AppState>,
    ClientCaller(_): ClientCaller,
    ApiJson(request): ApiJson<FromToken>,
) -> Result<Response, ApiError> {
    let token = CardToken::parse(&request.card_token).map_err(|e| ApiError::bad_request("invalid_card_token", e))?;
    let context = state.purchases.context();
    let made = context.provider_call(Rail::Card, "create_method", state.gateways.card.method_from_token(&token)).await;
    match made {
        Ok(method) => Ok(ok(StatusCode::CREATED, method)),
        Err(ProviderError::Rejected { code, message }) => {
            let status = if code == "card_tokens_need_stripe" { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            Err(ApiError { code: Cow::Owned(code), ..ApiError::new(status, "", message) })
        }
        Err(ProviderError::Unreachable(e) | ProviderError::Throttled(e)) => {
            tracing::warn!(error = %e, "stripe did not make a payment method from a card token");
            Err(ApiError::new(StatusCode::BAD_GATEWAY, "provider_unavailable", "Stripe did not answer; try again."))
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedMethodView {
    /// The provider's token; pass it as `paymentMethodId` with `confirm: true` for a one-click purchase.
    id: String,
    #[serde(rename = "type")]
    kind: String,
    brand: Option<String>,
    last4: Option<String>,
    exp_month: Option<i32>,
    exp_year: Option<i32>,
    wallet: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedData {
    methods_removed: usize,
    customer_deleted: bool,
}

#[utoipa::path(get, path = "/api/v1/payments/methods", operation_id = "list_payment_methods", tag = "payment methods",
    responses((status = 200, body = [SavedMethodView]), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, ClientCaller(caller): ClientCaller) -> Result<Response, ApiError> {
    let methods: Vec<SavedMethodView> = payment_methods::list(&state.db, caller.id.as_str())
        .await?
        .into_iter()
        .map(|m| SavedMethodView {
            id: m.id,
            kind: m.kind,
            brand: m.brand,
            last4: m.last4,
            exp_month: m.exp_month,
            exp_year: m.exp_year,
            wallet: m.wallet,
        })
        .collect();
    Ok(ok(StatusCode::OK, methods))
}

impl From<RemovalError> for ApiError {
    fn from(e: RemovalError) -> Self {
        match e {
            RemovalError::Provider(e) => {
                tracing::warn!(error = %e, "provider refused to remove payment data");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_unavailable",
                    "The payment provider did not confirm the removal; try again.",
                )
            }
            RemovalError::Db(e) => e.into(),
        }
    }
}

#[utoipa::path(delete, path = "/api/v1/payments/methods/{id}", operation_id = "remove_payment_method", tag = "payment methods",
    params(("id" = String, Path, description = "A saved method's id")),
    responses((status = 200, description = "Detached at the provider and forgotten"), (status = 401, body = ErrorEnvelope),
        (status = 404, description = "Not one of this client's saved methods", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(method) = payment_methods::find(&state.db, caller.id.as_str(), &id).await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "payment_method_not_found", "No such saved payment method."));
    };
    payment_data::remove_method(state.purchases.context(), &method.id).await?;
    Ok(ok(StatusCode::OK, serde_json::json!({ "id": method.id, "deleted": true })))
}

/// The same, under the account path the admin issue names.
#[utoipa::path(delete, path = "/api/v1/account/payment-data", tag = "payment methods",
    responses((status = 200, description = "Every saved method detached and the provider's customer deleted", body = DeletedData),
        (status = 401, body = ErrorEnvelope), (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete_payment_data(state: State<AppState>, caller: ClientCaller) -> Result<Response, ApiError> {
    delete_account_data(state, caller).await
}

#[utoipa::path(delete, path = "/api/v1/payments/account-data", tag = "payment methods",
    responses((status = 200, description = "Every saved method detached and the provider's customer deleted", body = DeletedData),
        (status = 401, body = ErrorEnvelope), (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete_account_data(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
) -> Result<Response, ApiError> {
    let removed = payment_data::remove_all(state.purchases.context(), &caller.id).await?;
    Ok(ok(StatusCode::OK, DeletedData { methods_removed: removed.methods, customer_deleted: removed.customer }))
}
