//! Card checkout: create a payment intent for a package, confirm it, read a transaction.
use super::AppState;
use super::client_addr::ClientAddr;
use super::error::{ApiError, ErrorEnvelope, ok};
use super::extract::{ApiJson, ClientCaller};
use crate::domain::ids::TransactionId;
use crate::domain::ids::{PaymentIntentId, PaymentMethodError, PaymentMethodId, new_key};
use crate::domain::package::PackageId;
use crate::domain::purchase::{Checkout, Input, Purchase, Rail, Status};
use crate::guards::fraud::Screening;
use crate::store::opened::Opened;
use crate::store::{ledger, purchases};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntentRequest {
    /// A package id from `GET /api/v1/packages`, e.g. `pro-200`.
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    package_id: String,
    /// A provider token (`pm_…`), new or saved. Never a card number: those are refused.
    #[schema(pattern = "^pm_[A-Za-z0-9_]{1,252}$")]
    payment_method_id: Option<String>,
    /// "Save for future purchases": once it has paid, the method stays in the client's vault at the provider.
    #[serde(default)]
    save_payment_method: bool,
    /// One-click: confirm at once (with a saved method) and answer as `POST /api/v1/payments/confirm` does.
    #[serde(default)]
    confirm: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntentResponse {
    client_secret: Option<String>,
    /// Minor units (cents).
    amount: i64,
    currency: String,
    payment_intent_id: Option<String>,
    #[schema(value_type = String, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: TransactionId,
    status: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfirmRequest {
    #[schema(pattern = "^pi_[A-Za-z0-9_]{1,252}$")]
    payment_intent_id: String,
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    package_id: String,
    /// Optional: another method for a retry after a decline (starts a new attempt).
    #[schema(pattern = "^pm_[A-Za-z0-9_]{1,252}$")]
    payment_method_id: Option<String>,
    /// After a failure, `true` tries again with the same method (the manual retry); otherwise the failure is
    /// reported as it stands.
    #[serde(default)]
    retry: bool,
}

/// One of three shapes, told apart by `status`: `succeeded` (credits granted), `requires_action` (3-D Secure: hand
/// `clientSecret` and `nextAction` to Stripe.js), `processing` (HTTP 202, a retry or settlement is pending).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmResponse {
    #[schema(value_type = String, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: TransactionId,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    credits_added: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_balance: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_action: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_completion_seconds: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionView {
    #[schema(value_type = String, pattern = "^txn_[0-9a-f-]{36}$")]
    transaction_id: TransactionId,
    status: String,
    package_id: String,
    amount: i64,
    currency: String,
    credits: i64,
    credits_granted: bool,
    provider: String,
    /// `card` or `paypal`.
    #[schema(value_type = String)]
    rail: crate::domain::purchase::Rail,
    /// What the payer paid with, when the provider says: `paypal`, `venmo`, `card`…
    funding_source: Option<String>,
    /// The card PaymentIntent or the PayPal order.
    payment_intent_id: Option<String>,
    /// The payment at the provider, for admins (AC9.6.2).
    dashboard_url: Option<String>,
    /// PayPal's seller protection on the capture, when PayPal reported it.
    seller_protection: Option<SellerProtectionView>,
    payment_method: Option<String>,
    attempts: u32,
    failure: Option<FailureView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    events: Vec<EventView>,
    /// For admins only: the audit trail's lines about this transaction (reviews decided, receipts resent…).
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<Vec<AuditView>>,
    /// For admins only: why the payment was held for review (a fraud rule, Stripe Radar's verdict), if it was. Never
    /// in the client's view: a fraud signal is not told to whom it flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    review_reason: Option<String>,
}

/// PayPal's seller protection of a capture: `status` (`ELIGIBLE`, `PARTIALLY_ELIGIBLE`, `NOT_ELIGIBLE`) and the kinds
/// of claim it covers (`ITEM_NOT_RECEIVED`, `UNAUTHORIZED_TRANSACTION`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SellerProtectionView {
    status: String,
    dispute_categories: Vec<String>,
}

impl SellerProtectionView {
    pub fn of(purchase: &Purchase) -> Option<Self> {
        let protection = purchase.seller_protection.as_ref()?;
        Some(Self { status: protection.status.clone(), dispute_categories: protection.dispute_categories.clone() })
    }
}

/// One line of the admin audit trail: who did what, when, and why.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    by: String,
    action: String,
    reason: String,
    at: DateTime<Utc>,
}

impl From<entities::admin_actions::Model> for AuditView {
    fn from(line: entities::admin_actions::Model) -> Self {
        Self { by: line.admin, action: line.action, reason: line.reason, at: line.at }
    }
}

impl TransactionView {
    /// The view of `purchase` as an admin sees it: with the transaction's audit trail and the reason it was held.
    pub async fn with_audit(mut self, state: &AppState, purchase: &Purchase) -> Result<Self, ApiError> {
        let lines = crate::store::controls::audit_of(&state.reads, &self.transaction_id.0.to_string()).await?;
        self.audit = Some(lines.into_iter().map(AuditView::from).collect());
        self.review_reason = purchase.review.clone();
        Ok(self)
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureView {
    code: String,
    message: String,
    suggested_action: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    kind: String,
    from: String,
    to: String,
    detail: Value,
    at: DateTime<Utc>,
}

pub(super) fn parse_package(state: &AppState, raw: &str) -> Result<PackageId, ApiError> {
    let id = PackageId::parse(raw).map_err(|e| ApiError::bad_request("invalid_package", e))?;
    if state.catalogue.get(&id).is_none() {
        let known: Vec<&str> = state.catalogue.all().iter().map(|p| p.id.as_str()).collect();
        return Err(ApiError::bad_request(
            "unknown_package",
            format!("No package `{raw}`; choose one of: {}.", known.join(", ")),
        ));
    }
    Ok(id)
}

fn parse_method(raw: Option<&str>) -> Result<Option<PaymentMethodId>, ApiError> {
    raw.map(|raw| {
        PaymentMethodId::parse(raw).map_err(|e| match e {
            PaymentMethodError::CardData => ApiError::bad_request(
                "card_data_not_accepted",
                "Card numbers must never be sent to this API: tokenize the card with Stripe.js and send the `pm_…` id.",
            ),
            PaymentMethodError::Malformed => ApiError::bad_request(
                "invalid_payment_method",
                "paymentMethodId must be a provider token such as `pm_card_visa`.",
            ),
        })
    })
    .transpose()
}

#[utoipa::path(post, path = "/api/v1/payments/stripe/intent", tag = "payments",
    request_body = IntentRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Replays the stored response for a repeated request: 1 to 255 visible ASCII characters")),
    responses(
        (status = 200, description = "Purchase opened (an IntentResponse); with `confirm: true`, the ConfirmResponse of the one-click purchase", body = IntentResponse),
        (status = 402, description = "One-click purchase declined, or a payment method the provider does not know", body = ErrorEnvelope),
        (status = 400, description = "Unknown package, malformed payment method, card data sent", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "Idempotency-Key reused with another body", body = ErrorEnvelope),
        (status = 502, description = "The provider did not answer", body = ErrorEnvelope),
    ),
    security(("bearer" = [])))]
pub async fn create_intent(
    State(state): State<AppState>,
    ClientAddr(client_ip): ClientAddr,
    ClientCaller(caller): ClientCaller,
    ApiJson(request): ApiJson<IntentRequest>,
) -> Result<Response, ApiError> {
    let package_id = parse_package(&state, &request.package_id)?;
    let method = parse_method(request.payment_method_id.as_deref())?;
    super::controls::ensure_open(&state, Rail::Card).await?;
    let package = state.catalogue.get(&package_id).ok_or_else(|| ApiError::internal("package vanished"))?;
    let card = match &method {
        Some(method) => Some(card_identity(&state, method).await),
        None => None,
    };
    let screening =
        Screening { client: caller.id.as_str().to_owned(), amount: package.price.minor, card, ip: Some(client_ip) };
    let review = super::controls::screen(&state, screening).await?;
    if request.confirm && method.is_none() {
        return Err(ApiError::bad_request("payment_method_required", "A one-click purchase needs a paymentMethodId."));
    }
    let checkout = Checkout {
        rail: Rail::Card,
        payment_method: method,
        save_method: request.save_payment_method,
        receipt_email: caller.email.clone(),
        review,
        funding_source: None,
    };
    let step = Purchase::open(new_key(), caller.id, package, checkout, Utc::now(), &state.policy);
    let mut purchase = state.purchases.open(step).await?;
    state.purchases.context().opened.keep(&purchase);
    if request.confirm && purchase.status == Status::RequiresConfirmation {
        purchase = state
            .purchases
            .send(purchase.id, Input::Confirm { payment_method: None, retry: false, review: None })
            .await?;
        return confirm_response(&state, &purchase).await;
    }
    match (purchase.status, &purchase.failure) {
        // Not lost: the purchase makes its intent again later; its id lets the client find it.
        (Status::Created, _) => Err(ApiError {
            transaction_id: Some(purchase.id),
            ..ApiError::new(
                StatusCode::BAD_GATEWAY,
                "provider_unavailable",
                "The payment provider did not answer; try again.",
            )
        }),
        (Status::Failed, Some(failure)) => Err(ApiError::payment_failed(failure, purchase.id)),
        _ => Ok(ok(
            StatusCode::OK,
            IntentResponse {
                client_secret: purchase.client_secret.clone(),
                amount: purchase.price.minor,
                currency: purchase.price.currency.lower(),
                payment_intent_id: purchase.intent_id.clone(),
                transaction_id: purchase.id.into(),
                status: purchase.status.as_str().to_owned(),
            },
        )),
    }
}

/// What identifies the card behind `method` for the fraud monitor: its fingerprint when the provider gives one, else
/// the method id. A provider that does not answer does not stop the checkout: the method id stands in.
async fn card_identity(state: &AppState, method: &PaymentMethodId) -> String {
    let context = state.purchases.context();
    let fingerprint = context.provider_call(Rail::Card, "retrieve_method", context.gateways.card.fingerprint(method));
    match fingerprint.await {
        Ok(Some(fingerprint)) => format!("fingerprint:{fingerprint}"),
        Ok(None) => method.as_str().to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "no card fingerprint; the fraud monitor counts the method id instead");
            method.as_str().to_owned()
        }
    }
}

#[utoipa::path(post, path = "/api/v1/payments/confirm", operation_id = "confirm_payment", tag = "payments",
    request_body = ConfirmRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Replays the stored response for a repeated request: 1 to 255 visible ASCII characters")),
    responses(
        (status = 200, description = "`succeeded` or `requires_action`", body = ConfirmResponse),
        (status = 202, description = "`processing`: an automatic retry or settlement is pending", body = ConfirmResponse),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 402, description = "Declined: `card_declined`, `insufficient_funds`, `expired_card`, `processing_error`, `authentication_failed`, `invalid_payment_method`", body = ErrorEnvelope),
        (status = 404, description = "No such transaction for this client", body = ErrorEnvelope),
        (status = 403, description = "A new payment method blocked by the fraud checks, or the account flagged", body = ErrorEnvelope),
        (status = 409, description = "Checkout expired, tried too many times (`too_many_attempts`), or Idempotency-Key reused", body = ErrorEnvelope),
    ),
    security(("bearer" = [])))]
pub async fn confirm(
    State(state): State<AppState>,
    ClientAddr(client_ip): ClientAddr,
    ClientCaller(caller): ClientCaller,
    ApiJson(request): ApiJson<ConfirmRequest>,
) -> Result<Response, ApiError> {
    let intent =
        PaymentIntentId::parse(&request.payment_intent_id).map_err(|e| ApiError::bad_request("invalid_request", e))?;
    let package_id = parse_package(&state, &request.package_id)?;
    let method = parse_method(request.payment_method_id.as_deref())?;
    // A checkout this node opened is known without a read (`store::opened`), unless a new method comes with the
    // confirm: it is screened against the method the purchase holds now, which only its row or actor knows.
    let kept = if method.is_none() { state.purchases.context().opened.get(intent.as_str()) } else { None };
    let (opened, stored) = match kept {
        Some(opened) => (opened, None),
        None => match purchases::find_by_intent(&state.reads, intent.as_str()).await? {
            Some(stored) => (Opened::of(&stored.purchase), Some(stored)),
            None => return Err(intent_not_found()),
        },
    };
    if opened.client != caller.id {
        return Err(intent_not_found());
    }
    super::controls::ensure_open(&state, opened.rail).await?;
    if opened.package != package_id {
        return Err(ApiError::bad_request(
            "package_mismatch",
            format!("This payment intent is for package `{}`.", opened.package.as_str()),
        ));
    }
    // A new payment method is a new checkout as far as fraud goes: screened by the same rules (the account flag,
    // velocity, distinct cards), so one checkout cannot be used to test card after card.
    let review = match (&method, &stored) {
        (Some(method), Some(stored)) if stored.purchase.payment_method.as_ref() != Some(method) => {
            let package = state.catalogue.get(&package_id).ok_or_else(|| ApiError::internal("package vanished"))?;
            let screening = Screening {
                client: caller.id.as_str().to_owned(),
                amount: package.price.minor,
                card: Some(card_identity(&state, method).await),
                ip: Some(client_ip),
            };
            super::controls::screen(&state, screening).await?
        }
        _ => None,
    };
    let input = Input::Confirm { payment_method: method, retry: request.retry, review };
    let purchase = match stored {
        Some(stored) => state.purchases.send_read(stored, input).await?,
        None => state.purchases.send(opened.purchase, input).await?,
    };
    confirm_response(&state, &purchase).await
}

fn intent_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "transaction_not_found", "No such payment intent for this account.")
}

pub(super) async fn confirm_response(state: &AppState, purchase: &Purchase) -> Result<Response, ApiError> {
    let base = ConfirmResponse {
        transaction_id: purchase.id.into(),
        status: purchase.status.as_str().to_owned(),
        credits_added: None,
        new_balance: None,
        receipt_url: None,
        client_secret: None,
        next_action: None,
        estimated_completion_seconds: None,
    };
    match purchase.status {
        Status::Succeeded => Ok(ok(
            StatusCode::OK,
            ConfirmResponse {
                credits_added: Some(purchase.credits.0),
                new_balance: Some(ledger::balance(&state.reads, &purchase.client).await?),
                receipt_url: Some(receipt_url(state, purchase)),
                ..base
            },
        )),
        Status::RequiresAction => Ok(ok(
            StatusCode::OK,
            ConfirmResponse {
                client_secret: purchase.client_secret.clone(),
                next_action: purchase.next_action.clone(),
                ..base
            },
        )),
        Status::Processing => {
            let wait = match (purchase.next_retry, purchase.settling) {
                (Some(retry), _) => (retry.at - Utc::now()).num_seconds().max(0) + 1,
                (None, Some(settlement)) => settlement.estimate_seconds(),
                (None, None) => 5,
            };
            Ok(ok(StatusCode::ACCEPTED, ConfirmResponse { estimated_completion_seconds: Some(wait), ..base }))
        }
        // Paid; the credits wait for an admin's look (AC9.3.4).
        Status::UnderReview => Ok(ok(StatusCode::ACCEPTED, base)),
        Status::Reversed => Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment_reversed",
            "This payment was reversed after review; nothing was kept. Contact support.",
        )),
        Status::Failed => {
            let failure =
                purchase.failure.as_ref().ok_or_else(|| ApiError::internal("failed purchase without a reason"))?;
            Err(ApiError::payment_failed(failure, purchase.id))
        }
        Status::Created | Status::RequiresPaymentMethod | Status::RequiresConfirmation | Status::Expired => {
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "unexpected_state",
                format!("The payment is {}.", purchase.status.as_str()),
            ))
        }
    }
}

/// A transaction with its whole history, as the client or an admin reads it.
pub async fn transaction_view(state: &AppState, id: Uuid) -> Result<Option<(Purchase, TransactionView)>, ApiError> {
    let Some(stored) = purchases::load(&state.reads, id).await? else {
        return Ok(None);
    };
    let p = stored.purchase;
    let events = purchases::history(&state.reads, id)
        .await?
        .into_iter()
        .map(|e| EventView { kind: e.kind, from: e.from_status, to: e.to_status, detail: e.detail, at: e.created_at })
        .collect();
    let view = TransactionView {
        transaction_id: p.id.into(),
        status: p.status.as_str().to_owned(),
        package_id: p.package.as_str().to_owned(),
        amount: p.price.minor,
        currency: p.price.currency.lower(),
        credits: p.credits.0,
        credits_granted: p.credits_granted,
        provider: state.gateways.name(p.rail).to_owned(),
        rail: p.rail,
        funding_source: p.funding_source.clone(),
        dashboard_url: state.gateways.dashboard_url(&p),
        seller_protection: SellerProtectionView::of(&p),
        payment_intent_id: p.intent_id.clone(),
        payment_method: p.payment_method.as_ref().map(|m| m.as_str().to_owned()),
        attempts: p.attempt,
        failure: p.failure.as_ref().map(|f| FailureView {
            code: f.code().to_owned(),
            message: f.message().to_owned(),
            suggested_action: f.suggested_action().to_owned(),
        }),
        created_at: p.created_at,
        updated_at: p.updated_at,
        expires_at: p.expires_at,
        events,
        audit: None,
        review_reason: None,
    };
    Ok(Some((p, view)))
}

/// Where a paid purchase's receipt is: Stripe's own page for a Stripe charge, otherwise Purser's printable one.
pub fn receipt_url(state: &AppState, purchase: &Purchase) -> String {
    purchase.receipt_url.clone().unwrap_or_else(|| super::receipts::link(state, purchase.id))
}

/// A transaction id from a path or a body: `txn_…`, or the bare UUID of earlier versions.
pub fn parse_transaction_id(raw: &str) -> Result<Uuid, ApiError> {
    TransactionId::parse(raw).map(|id| id.0).map_err(|e| ApiError::bad_request("invalid_transaction_id", e))
}

#[utoipa::path(get, path = "/api/v1/payments/{transactionId}", tag = "payments",
    params(("transactionId" = String, Path, pattern = "^(txn_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The transaction (purchase) id: `txn_…` (a bare UUID is accepted too)")),
    responses((status = 200, body = TransactionView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such transaction for this client", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get_transaction(
    State(state): State<AppState>,
    ClientCaller(caller): ClientCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_transaction_id(&id)?;
    match transaction_view(&state, id).await? {
        Some((purchase, view)) if purchase.client == caller.id => Ok(ok(StatusCode::OK, view)),
        _ => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "transaction_not_found", "No such transaction for this account."))
        }
    }
}
