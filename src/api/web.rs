//! The pages people use: `/checkout` and `/billing` for clients, `/admin` for admins, and `/login` in development.
//! Plain HTML, CSS and JavaScript modules compiled into the binary (no build step, no CDN); the pages call the same
//! JSON API as any client, with the bearer token the platform passes them.
use super::AppState;
use super::error::{ApiError, ok};
use super::extract::ApiJson;
use crate::auth::Role;
use crate::domain::ids::ClientId;
use crate::html::escape;
use crate::settings::{CardProviderChoice, PaypalProviderChoice, Settings};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

const ASSETS: [(&str, &str, &str); 8] = [
    ("app.css", "text/css", include_str!("../web/app.css")),
    ("app.js", "text/javascript", include_str!("../web/app.js")),
    ("checkout.js", "text/javascript", include_str!("../web/checkout.js")),
    ("billing.js", "text/javascript", include_str!("../web/billing.js")),
    ("admin.js", "text/javascript", include_str!("../web/admin.js")),
    ("login.js", "text/javascript", include_str!("../web/login.js")),
    ("paypal-cancel.js", "text/javascript", include_str!("../web/paypal-cancel.js")),
    (
        "favicon.svg",
        "image/svg+xml",
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><circle cx='8' cy='8' r='7' fill='#0b5cad'/></svg>",
    ),
];

/// (path, title, body, script)
const PAGES: [(&str, &str, &str, &str); 4] = [
    ("checkout", "Buy credits", include_str!("../web/checkout.html"), "checkout.js"),
    ("billing", "Billing", include_str!("../web/billing.html"), "billing.js"),
    ("admin", "Admin console", include_str!("../web/admin.html"), "admin.js"),
    ("login", "Sign in", include_str!("../web/login.html"), "login.js"),
];

/// Which provider stands behind each rail of the checkout, and what the page needs to load the provider's own script:
/// Stripe.js for the Card Element, PayPal's JS SDK for the Smart Payment Buttons. The sandbox needs neither.
#[derive(Clone, Debug, Default)]
pub struct PageProviders {
    /// `<body data-…>` attribute name and value pairs.
    attributes: Vec<(&'static str, String)>,
    /// The pages' Content-Security-Policy: their own files, plus exactly the provider origins in use.
    policy: String,
}

/// Where Stripe.js runs its Elements, 3-D Secure frames and API calls (Stripe's security guide, "Content Security
/// Policy"), by directive.
const STRIPE_SOURCES: [(&str, &str); 3] = [
    ("script-src", "https://js.stripe.com https://*.js.stripe.com"),
    ("frame-src", "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com"),
    ("connect-src", "https://api.stripe.com"),
];

/// Where PayPal's JS SDK loads its buttons, windows, calls and images (PayPal's JS SDK CSP guidance).
const PAYPAL_SOURCES: [(&str, &str); 4] = [
    ("script-src", "https://*.paypal.com https://*.paypalobjects.com"),
    ("frame-src", "https://*.paypal.com"),
    ("connect-src", "https://*.paypal.com"),
    ("img-src", "https://*.paypal.com https://*.paypalobjects.com"),
];

/// `https://js.stripe.com/v3/` → `https://js.stripe.com`: what a CSP source names.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

/// The policy for pages that load `providers`: each gets its documented sources plus the origin its script is
/// configured at (the tests' fakes), in the directives where the provider's script loads, frames and calls.
fn content_security_policy(providers: &[(&str, &[(&str, &str)])]) -> String {
    let mut directives: Vec<(&str, String)> = [
        ("default-src", "'self'"),
        ("script-src", "'self'"),
        ("connect-src", "'self'"),
        ("frame-src", "'none'"),
        ("img-src", "'self' data:"),
        // Provider scripts (PayPal's buttons) insert style elements; styles cannot run code.
        ("style-src", "'self' 'unsafe-inline'"),
        ("object-src", "'none'"),
        ("base-uri", "'none'"),
        ("form-action", "'self'"),
        ("frame-ancestors", "'none'"),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.to_owned()))
    .collect();
    for (script_origin, sources) in providers {
        for (directive, hosts) in *sources {
            let Some((_, value)) = directives.iter_mut().find(|(name, _)| name == directive) else { continue };
            if value == "'none'" {
                value.clear();
            } else {
                value.push(' ');
            }
            value.push_str(hosts);
            // Images come from the provider's CDN; everything else also from where its script is configured.
            if *directive != "img-src" {
                value.push(' ');
                value.push_str(script_origin);
            }
        }
    }
    directives.iter().map(|(name, value)| format!("{name} {value}")).collect::<Vec<_>>().join("; ")
}

impl PageProviders {
    pub fn from_settings(settings: &Settings) -> Self {
        let stripe = &settings.stripe;
        let paypal = &settings.paypal;
        let mut attributes = Vec::new();
        let mut scripts: Vec<(String, &[(&str, &str)])> = Vec::new();
        if settings.payments.card_provider == CardProviderChoice::Disabled {
            attributes.push(("mode", "disabled".to_owned()));
        } else if settings.payments.card_provider == CardProviderChoice::Stripe {
            scripts.extend(origin(&stripe.js_url).map(|o| (o, &STRIPE_SOURCES[..])));
            attributes.push(("mode", "stripe".to_owned()));
            attributes.push(("stripe-key", stripe.publishable_key.clone().unwrap_or_default()));
            attributes.push(("stripe-script", stripe.js_url.clone()));
            attributes.push(("stripe-country", stripe.country.clone()));
        } else {
            attributes.push(("mode", "sandbox".to_owned()));
        }
        if settings.payments.paypal_provider == PaypalProviderChoice::Disabled {
            attributes.push(("paypal", "disabled".to_owned()));
        } else if settings.payments.paypal_provider == PaypalProviderChoice::Paypal {
            scripts.extend(origin(&paypal.sdk_url).map(|o| (o, &PAYPAL_SOURCES[..])));
            attributes.push(("paypal", "paypal".to_owned()));
            attributes.push(("paypal-key", paypal.client_id.clone().unwrap_or_default()));
            attributes.push(("paypal-script", paypal.sdk_url.clone()));
        } else {
            attributes.push(("paypal", "sandbox".to_owned()));
        }
        let providers: Vec<(&str, &[(&str, &str)])> = scripts.iter().map(|(o, s)| (o.as_str(), *s)).collect();
        Self { attributes, policy: content_security_policy(&providers) }
    }

    fn render(&self) -> String {
        self.attributes.iter().map(|(name, value)| format!(" data-{name}=\"{}\"", escape(value))).collect()
    }
}

pub async fn page(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let Some((path, title, body, script)) = PAGES.iter().find(|(path, ..)| *path == name) else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such page.").into_response();
    };
    if *path == "login" && !state.development_tools {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The development sign-in exists in development only.",
        )
        .into_response();
    }
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title} · Purser</title>\
         <link rel=\"icon\" href=\"/assets/favicon.svg\"><link rel=\"stylesheet\" href=\"/assets/app.css\">\
         <script type=\"module\" src=\"/assets/{script}\"></script></head><body{attributes}>\
         <header><strong>Purser</strong><nav aria-label=\"Pages\"><a href=\"/checkout\">Buy credits</a>\
         <a href=\"/billing\">Billing</a><a href=\"/admin\">Admin</a></nav></header><main>{body}</main></body></html>",
        title = escape(title),
        attributes = state.page_providers.render(),
    );
    let headers = [
        (header::CACHE_CONTROL, "no-store".to_owned()),
        (header::CONTENT_SECURITY_POLICY, state.page_providers.policy.clone()),
    ];
    (headers, Html(html)).into_response()
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, ..)| *file == name) {
        Some((_, content_type, text)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "max-age=300")], *text).into_response()
        }
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such asset.").into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevLogin {
    user: String,
    role: Role,
    email: Option<String>,
}

/// Development only: a token for whoever asks, so the pages can be tried without the platform's sign-in.
pub async fn dev_token(State(state): State<AppState>, ApiJson(login): ApiJson<DevLogin>) -> Result<Response, ApiError> {
    let user = ClientId::parse(&login.user).map_err(|e| ApiError::bad_request("invalid_user", e))?;
    let token = state
        .auth
        .mint(&user, login.role, login.email.filter(|e| !e.is_empty()), std::time::Duration::from_secs(8 * 3600))
        .map_err(ApiError::internal)?;
    Ok(ok(StatusCode::OK, serde_json::json!({ "token": token })))
}

/// Development with `sandbox.crash_hooks` only: kills an actor as a crash would (any background actor by its role,
/// `fraud-monitor`, `circuit-breaker`, `rate-limiter`, `deadlines`, `mailer`, `event-sender`, `reconciler`,
/// `pause-watcher`, `inbox-sweep`; or `purchase:<id>`, `refund:<id>`), for the tests and the chaos harness.
pub async fn dev_crash(
    State(state): State<AppState>,
    super::extract::AdminCaller(_admin): super::extract::AdminCaller,
    Path(actor): Path<String>,
) -> Result<Response, ApiError> {
    if !state.crash_hooks {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint."));
    }
    let name = match state.background.name_of(&actor) {
        Some(name) => name,
        None => {
            // A purchase's or a refund's actor is named by its bare UUID; the API's `txn_…`/`ref_…` names it too.
            use crate::actors::RowActor;
            use crate::domain::ids::{RefundRequestId, TransactionId};
            let row = match actor.split_once(':').map(|(kind, id)| (RowActor::parse(kind), id)) {
                Some((Some(RowActor::Purchase), id)) => TransactionId::parse(id).map(|id| (RowActor::Purchase, id.0)),
                Some((Some(RowActor::Refund), id)) => RefundRequestId::parse(id).map(|id| (RowActor::Refund, id.0)),
                _ => Err("No such kind of actor.".to_owned()),
            };
            let (kind, id) = row.map_err(|e| ApiError::bad_request("unknown_actor", e))?;
            state.purchases.context().actor_name(kind, id)
        }
    };
    if !crate::actors::tree::crash(&name) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "actor_not_running", "That actor is not running."));
    }
    Ok(ok(StatusCode::OK, serde_json::json!({ "crashed": name })))
}

/// `/` sends a visitor to the checkout.
pub async fn home() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/checkout")]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directive<'a>(policy: &'a str, name: &str) -> &'a str {
        policy.split("; ").find(|d| d.starts_with(&format!("{name} "))).unwrap_or_default()
    }

    #[test]
    fn the_sandbox_pages_load_only_their_own_files() {
        let policy = content_security_policy(&[]);
        assert_eq!(directive(&policy, "script-src"), "script-src 'self'");
        assert_eq!(directive(&policy, "frame-src"), "frame-src 'none'");
        assert_eq!(directive(&policy, "connect-src"), "connect-src 'self'");
    }

    #[test]
    fn a_provider_adds_its_documented_hosts_and_its_configured_origin() {
        let stripe = origin("http://127.0.0.1:9/js.stripe.com/v3/").unwrap();
        assert_eq!(stripe, "http://127.0.0.1:9");
        let policy =
            content_security_policy(&[(&stripe, &STRIPE_SOURCES), ("https://www.paypal.com", &PAYPAL_SOURCES)]);
        let script = directive(&policy, "script-src");
        assert!(script.starts_with("script-src 'self' https://js.stripe.com"), "{script}");
        assert!(script.contains("http://127.0.0.1:9") && script.contains("https://*.paypalobjects.com"), "{script}");
        let frames = directive(&policy, "frame-src");
        assert!(!frames.contains("'none'") && frames.contains("https://hooks.stripe.com"), "{frames}");
        assert_eq!(
            directive(&policy, "img-src"),
            "img-src 'self' data: https://*.paypal.com https://*.paypalobjects.com"
        );
    }
}
