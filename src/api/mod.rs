//! HTTP only: parse, call an actor or a query, render. Routes, shared state and the OpenAPI document.
pub mod admin;
pub mod billing;
pub mod catalogue;
pub mod client_addr;
pub mod controls;
pub mod error;
pub mod extract;
pub mod guard;
pub mod headers;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod payment_methods;
pub mod payments;
pub mod paypal;
pub mod receipts;
pub mod refunds;
pub mod request_id;
pub mod sandbox;
pub mod spends;
pub mod web;
pub mod webhooks;

use crate::actors::PurchaseActors;
use crate::auth::Authenticator;
use crate::domain::package::Catalogue;
use crate::domain::purchase::Policy;
use crate::providers::sandbox::Sandbox;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use error::ApiError;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler reads, shared: axum clones the state for each extractor and middleware of every request, so a
/// clone is one reference count, not the copy of every field it was (about 1 % of the server's CPU under load).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub db: DatabaseConnection,
    /// For reads that need not queue behind the writer: balances, transactions, lookups.
    pub reads: DatabaseConnection,
    pub auth: Arc<Authenticator>,
    pub catalogue: Arc<Catalogue>,
    pub policy: Policy,
    pub purchases: Arc<PurchaseActors>,
    pub refunds: Arc<crate::actors::refund::RefundActors>,
    pub pauses: Arc<crate::guards::pause::Pauses>,
    pub inbox: crate::app::inbox::Inbox,
    pub sandbox: Option<Arc<Sandbox>>,
    /// The providers, for the calls the API makes itself (saved methods, PayPal's webhook verification).
    pub gateways: Arc<crate::providers::Gateways>,
    pub webhook_secrets: Arc<Vec<String>>,
    /// Where browsers reach this service.
    pub public_url: String,
    pub body_limit: usize,
    /// Signs the receipt pages' links (`receipts::link`).
    pub receipt_key: Arc<String>,
    /// `server.trusted_proxies`, for `client_addr`.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// How long an unanswered `Idempotency-Key` claim holds its key.
    pub idempotency_lease: chrono::TimeDelta,
    /// The development tools (`Settings::development_tools`): the `/login` page and `/dev/token` exist.
    pub development_tools: bool,
    /// With `sandbox.crash_hooks` in development: `/dev/crash/{actor}` exists.
    pub crash_hooks: bool,
    pub page_providers: Arc<web::PageProviders>,
    /// The background actors (`actors::tree`), for `/readyz` to name those that are down.
    pub background: crate::actors::tree::Adopted,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Purser", description = "Payment orchestrator: buy credit packages with Stripe, PayPal or the sandbox. \
        Every JSON answer is an envelope: `{\"success\":true,\"data\":…}` or `{\"success\":false,\"error\":{\"code\",\"message\"}}`; \
        each success below shows its envelope, and every error is an `ErrorEnvelope`."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

pub fn router(state: AppState) -> Router {
    let money_moving = OpenApiRouter::new()
        .routes(routes!(payments::create_intent))
        .routes(routes!(payments::confirm))
        .routes(routes!(paypal::create_order))
        .routes(routes!(payment_methods::create_from_token))
        .routes(routes!(paypal::capture_order))
        .routes(routes!(paypal::cancel_order))
        .routes(routes!(refunds::request))
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::rate_limit));
    // The platform's spends claim and answer their Idempotency-Key in their own step (`app::credits::spend`), and are
    // not under the clients' checkout limits (one backend spends for all).
    // Evidence carries a document; every other body stays under `server.body_limit_bytes`.
    let evidence = OpenApiRouter::new()
        .routes(routes!(admin::submit_evidence))
        .layer(DefaultBodyLimit::max(admin::EVIDENCE_BODY_LIMIT.max(state.body_limit)));
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(money_moving)
        .merge(evidence)
        .routes(routes!(spends::spend))
        .routes(routes!(admin::accept_dispute))
        .routes(routes!(payments::get_transaction))
        .routes(routes!(payment_methods::list))
        .routes(routes!(payment_methods::remove))
        .routes(routes!(payment_methods::delete_account_data))
        .routes(routes!(payment_methods::delete_payment_data))
        .routes(routes!(catalogue::list_packages))
        .routes(routes!(catalogue::balance))
        .routes(routes!(spends::reverse))
        .routes(routes!(spends::own_ledger))
        .routes(routes!(spends::client_ledger))
        .routes(routes!(webhooks::stripe))
        .routes(routes!(webhooks::paypal))
        .routes(routes!(paypal::paypal_return))
        .routes(routes!(paypal::paypal_cancel))
        .routes(routes!(admin::list_disputes))
        .routes(routes!(billing::history))
        .routes(routes!(billing::export))
        .routes(routes!(billing::invoice))
        .routes(routes!(billing::save_profile, billing::profile))
        .routes(routes!(billing::resend_receipt))
        .routes(routes!(billing::admin_resend_receipt))
        .routes(routes!(controls::list))
        .routes(routes!(controls::pause))
        .routes(routes!(controls::resume))
        .routes(routes!(refunds::policy))
        .routes(routes!(refunds::quote))
        .routes(routes!(refunds::list_own))
        .routes(routes!(refunds::get_own))
        .routes(routes!(refunds::appeal))
        .routes(routes!(refunds::queue))
        .routes(routes!(refunds::approve))
        .routes(routes!(refunds::deny))
        .routes(routes!(refunds::adjust_credits))
        .routes(routes!(admin::get_dispute))
        .routes(routes!(admin::get_payment))
        .routes(routes!(admin::list_payments))
        .routes(routes!(admin::retry_payment))
        .routes(routes!(admin::sync_payment))
        .routes(routes!(admin::release_payment))
        .routes(routes!(admin::confirm_fraud))
        .routes(routes!(admin::list_flags))
        .routes(routes!(admin::lift_flag))
        .routes(routes!(admin::revenue))
        .routes(routes!(admin::list_alerts))
        .routes(routes!(admin::webhook_health))
        .routes(routes!(admin::replay_webhook))
        .routes(routes!(admin::acknowledge_alert))
        .routes(routes!(admin::create_api_key, admin::list_api_keys))
        .routes(routes!(admin::revoke_api_key))
        .routes(routes!(admin::list_deliveries))
        .routes(routes!(admin::replay_delivery))
        .routes(routes!(receipts::page))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics));
    if state.sandbox.is_some() {
        api = api
            .routes(routes!(sandbox::authenticate))
            .routes(routes!(sandbox::settle))
            .routes(routes!(sandbox::paypal_checkout))
            .routes(routes!(sandbox::paypal_approve))
            .routes(routes!(sandbox::paypal_turn_back))
            .routes(routes!(sandbox::tokenize));
    }
    let (router, openapi) = api.split_for_parts();
    let packages: Vec<&str> = state.catalogue.all().iter().map(|p| p.id.as_str()).collect();
    let openapi = Arc::new(openapi::document(&openapi, &packages));
    let mut router = router
        .route("/", axum::routing::get(web::home))
        .route("/{page}", axum::routing::get(web::page))
        .route("/assets/{name}", axum::routing::get(web::asset))
        .route("/api/v1/openapi.json", axum::routing::get(move || async move { axum::Json(openapi.as_ref().clone()) }));
    // Not routes at all on a deployment, so whatever is sent to them (no body, a bad one, no token) answers 404.
    if state.development_tools {
        router = router.route("/dev/token", axum::routing::post(web::dev_token));
        if state.crash_hooks {
            router = router.route("/dev/crash/{actor}", axum::routing::post(web::dev_crash));
        }
    }
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint.").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This endpoint does not take that method.",
            )
            .into_response()
        })
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(axum::middleware::from_fn(request_id::layer))
        .layer(axum::middleware::from_fn_with_state(
            headers::Https(state.public_url.starts_with("https://")),
            headers::layer,
        ))
        .with_state(state)
}
