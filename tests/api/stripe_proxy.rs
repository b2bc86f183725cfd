//! A compatibility proxy between Purser and localstripe, test code only. localstripe answers in an older API shape
//! than async-stripe 1.0 parses strictly, so the proxy fills the fields Stripe's API reference documents
//! (`amount_capturable`, `amount_received`, `confirmation_method`, `payment_method_types`, an unexpanded
//! `latest_charge`, `last_payment_error.type`). It also turns a confirm with `payment_method` (which localstripe does
//! not implement) into the update-then-confirm Stripe performs, drops `setup_future_usage` and a refund's `reason`
//! (which it refuses), injects provider faults on demand, and forwards localstripe's signed webhooks untouched, or
//! drops them.
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Faults {
    /// Answer this many API calls with a 500 before forwarding again.
    pub fail_next: AtomicU32,
    pub drop_webhooks: AtomicBool,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    faults: Arc<Faults>,
    webhook_target: Mutex<Option<String>>,
}

pub struct StripeProxy {
    pub base: String,
    pub upstream: String,
    pub faults: Arc<Faults>,
    shared: Arc<Shared>,
}

impl StripeProxy {
    pub async fn start() -> Self {
        purser::startup::install_crypto();
        let upstream = std::env::var("PURSER_TEST_LOCALSTRIPE_URL").expect(
            "PURSER_TEST_LOCALSTRIPE_URL is not set: run the test suite with `scripts/test`, which starts localstripe",
        );
        let faults = Arc::new(Faults::default());
        let shared = Arc::new(Shared {
            upstream: upstream.clone(),
            http: reqwest::Client::new(),
            faults: faults.clone(),
            webhook_target: Mutex::new(None),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, upstream, faults, shared }
    }

    /// Registers with localstripe a webhook endpoint (this proxy) signed with `secret`, forwarded to `target`.
    pub async fn forward_webhooks(&self, id: &str, secret: &str, target: String) {
        *self.shared.webhook_target.lock().unwrap() = Some(target);
        let form = [("url", format!("{}/_webhook", self.base)), ("secret", secret.to_owned())];
        let registered =
            self.shared.http.post(format!("{}/_config/webhooks/{id}", self.upstream)).form(&form).send().await.unwrap();
        assert!(registered.status().is_success(), "localstripe refused the webhook registration");
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    if path == "/_webhook" {
        return relay_webhook(&shared, &parts.headers, body).await;
    }
    if shared.faults.fail_next.load(Ordering::SeqCst) > 0 {
        shared.faults.fail_next.fetch_sub(1, Ordering::SeqCst);
        let error = json!({ "error": { "type": "api_error", "message": "injected by the test proxy" } });
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(error)).into_response();
    }
    let mut form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    // localstripe refuses `setup_future_usage`; the test attaches the method and signs `payment_method.attached`
    // itself, as Stripe would after the payment.
    form.retain(|(key, _)| key != "setup_future_usage");
    // Nor does it know a refund's `reason`.
    if path.starts_with("/v1/refunds") {
        form.retain(|(key, _)| key != "reason");
    }
    let confirm_with_method = form.iter().position(|(k, _)| k == "payment_method");
    if let (true, Some(position)) = (parts.method == Method::POST && path.ends_with("/confirm"), confirm_with_method) {
        let (_, method) = form.remove(position);
        let intent = path.trim_end_matches("/confirm");
        let update = send(&shared, Method::POST, intent, &parts.headers, &[("payment_method".into(), method)]).await;
        if !update.status().is_success() {
            return translate(update).await;
        }
    }
    translate(send(&shared, parts.method.clone(), &path, &parts.headers, &form).await).await
}

async fn send(
    shared: &Shared,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> reqwest::Response {
    let mut request = shared.http.request(method.clone(), format!("{}{path}", shared.upstream));
    if let Some(auth) = headers.get("authorization") {
        request = request.header("authorization", auth.as_bytes());
    }
    if method != Method::GET && method != Method::DELETE {
        request = request.form(form);
    }
    request.send().await.expect("localstripe answers")
}

async fn translate(response: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let bytes = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut value) => {
            modernise(&mut value);
            (status, axum::Json(value)).into_response()
        }
        Err(_) => (status, bytes).into_response(),
    }
}

/// Fills what the current API shape has and localstripe's does not, everywhere a PaymentIntent appears.
fn modernise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("object").and_then(Value::as_str) == Some("payment_intent") {
                let amount = map.get("amount").cloned().unwrap_or(json!(0));
                let succeeded = map.get("status").and_then(Value::as_str) == Some("succeeded");
                map.entry("amount_capturable").or_insert(json!(0));
                map.entry("amount_received").or_insert(if succeeded { amount } else { json!(0) });
                map.entry("confirmation_method").or_insert(json!("automatic"));
                map.entry("payment_method_types").or_insert(json!(["card"]));
                if let Some(charge_id) = map.get("latest_charge").and_then(|c| c.get("id")).cloned() {
                    map.insert("latest_charge".into(), charge_id);
                }
                if let Some(Value::Object(error)) = map.get_mut("last_payment_error") {
                    error.entry("type").or_insert(json!("card_error"));
                }
            }
            map.values_mut().for_each(modernise);
        }
        Value::Array(items) => items.iter_mut().for_each(modernise),
        _ => {}
    }
}

async fn relay_webhook(shared: &Shared, headers: &HeaderMap, body: Bytes) -> Response {
    let target = shared.webhook_target.lock().unwrap().clone();
    let Some(target) = target.filter(|_| !shared.faults.drop_webhooks.load(Ordering::SeqCst)) else {
        return StatusCode::OK.into_response();
    };
    let mut request = shared.http.post(target).header("content-type", "application/json").body(body);
    if let Some(signature) = headers.get("stripe-signature") {
        request = request.header("stripe-signature", signature.as_bytes());
    }
    match request.send().await {
        Ok(answer) => StatusCode::from_u16(answer.status().as_u16()).unwrap().into_response(),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
