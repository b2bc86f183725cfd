//! A compatibility proxy between Purser and localstripe, test code only. localstripe answers in an older API shape
//! than async-stripe 1.0 parses strictly, so the proxy fills the fields Stripe's API reference documents
//! (`amount_capturable`, `amount_received`, `confirmation_method`, `payment_method_types`, an unexpanded
//! `latest_charge`, `last_payment_error.type`). It also turns a confirm with `payment_method` (which localstripe does
//! not implement) into the update-then-confirm Stripe performs, drops `setup_future_usage` and a refund's `reason`
//! (which it refuses), injects provider faults on demand, and forwards localstripe's signed webhooks untouched, or
//! drops them. It plays the Stripe endpoints localstripe lacks for disputes: file upload (`/v1/files`) and a
//! dispute's update and close, on disputes the test opens.
//!
//! Browsers reach localstripe's fake Stripe.js through it too (`{base}/js.stripe.com/v3/`), so the fake's calls
//! (`createToken`, the 3-D Secure `_authenticate`) pass here, with their CORS headers. localstripe cannot make a
//! PaymentMethod from a token (`card[token]`, which Stripe documents), so the proxy remembers what each token it saw
//! created stood for and makes the method from that: it plays Stripe's vault, test cards only.
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Faults {
    /// Answer this many API calls with a 500 before forwarding again.
    pub fail_next: AtomicU32,
    /// Answer this many API calls with Stripe's 400 `invalid_request_error` (a permanent refusal).
    pub reject_next: AtomicU32,
    /// Answer this many API calls with Stripe's 429 `rate_limit` (too many requests).
    pub throttle_next: AtomicU32,
    pub drop_webhooks: AtomicBool,
    /// Refunds made are answered `pending`, as Stripe answers some (localstripe pays every refund at once): their
    /// outcome is then the test's webhook to send.
    pub pending_refunds: AtomicBool,
    /// The webhooks dropped so far, as sent: what a test waits on before it checks that nothing came.
    pub dropped: Mutex<Vec<Value>>,
    /// Radar's `outcome` on the charges of intents answered with `latest_charge` expanded (localstripe has no
    /// Radar): `risk_level: normal` when not set.
    pub radar: Mutex<Option<Value>>,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    faults: Arc<Faults>,
    webhook_target: Mutex<Option<String>>,
    /// Token id → the `card[…]` fields it was created from.
    tokens: Mutex<HashMap<String, Vec<(String, String)>>>,
    /// localstripe has no disputes: the proxy keeps the ones a test opens, and the files uploaded as evidence.
    disputes: Mutex<HashMap<String, Value>>,
    files: Mutex<HashMap<String, Upload>>,
}

/// A file uploaded to `/v1/files`: its purpose, name and bytes.
type Upload = (String, String, Vec<u8>);

pub struct StripeProxy {
    pub base: String,
    pub upstream: String,
    pub faults: Arc<Faults>,
    shared: Arc<Shared>,
    server: tokio::task::AbortHandle,
}

/// localstripe keeps every test's webhook registration and sends each event to all of them, this proxy's included,
/// for as long as it answers. A proxy's server left running while its test's service stops (until the test's runtime
/// goes) would relay other tests' events to the service's freed port, which another test's service may have taken by
/// then: that service would hear of a payment its own proxy dropped. So a dropped proxy relays nothing more.
impl Drop for StripeProxy {
    fn drop(&mut self) {
        *self.shared.webhook_target.lock().unwrap() = None;
        self.server.abort();
    }
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
            tokens: Mutex::default(),
            disputes: Mutex::default(),
            files: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await }).abort_handle();
        Self { base, upstream, faults, shared, server }
    }

    /// The payer's bank disputes the payment of `intent` (Stripe-shaped, as `charge.dispute.created` carries it):
    /// the test sends that event itself, signed.
    pub fn open_dispute(&self, intent: &str, amount: i64) -> Value {
        let id = format!("dp_{}", uuid::Uuid::new_v4().simple());
        let due_by = chrono::Utc::now().timestamp() + 7 * 86_400;
        let dispute = json!({ "id": id, "object": "dispute", "amount": amount, "currency": "usd",
            "charge": format!("ch_for_{intent}"), "payment_intent": intent, "reason": "fraudulent",
            "status": "needs_response", "is_charge_refundable": false, "livemode": false, "metadata": {},
            "created": chrono::Utc::now().timestamp(),
            "evidence": { "uncategorized_text": null, "uncategorized_file": null },
            "evidence_details": { "due_by": due_by, "has_evidence": false, "past_due": false, "submission_count": 0 } });
        self.shared.disputes.lock().unwrap().insert(id, dispute.clone());
        dispute
    }

    /// A dispute as the proxy now holds it (with the evidence submitted).
    pub fn dispute(&self, id: &str) -> Value {
        self.shared.disputes.lock().unwrap().get(id).cloned().expect("a dispute the test opened")
    }

    /// The bank decides a dispute the test opened, and no webhook says so: only a read of the dispute finds out.
    pub fn decide_dispute(&self, id: &str, status: &str) {
        self.shared.disputes.lock().unwrap().get_mut(id).expect("a dispute the test opened")["status"] = json!(status);
    }

    pub fn file(&self, id: &str) -> Option<Upload> {
        self.shared.files.lock().unwrap().get(id).cloned()
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
    if shared.faults.throttle_next.load(Ordering::SeqCst) > 0 {
        shared.faults.throttle_next.fetch_sub(1, Ordering::SeqCst);
        let error = json!({ "error": { "type": "invalid_request_error", "code": "rate_limit",
            "message": "Too many requests hit the API too quickly." } });
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(error)).into_response();
    }
    if shared.faults.reject_next.load(Ordering::SeqCst) > 0 {
        shared.faults.reject_next.fetch_sub(1, Ordering::SeqCst);
        let error = json!({ "error": { "type": "invalid_request_error", "param": "payment_method",
            "message": "This PaymentMethod was previously used without being attached to a Customer." } });
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    if path == "/v1/files" || path.starts_with("/v1/disputes/") {
        return disputes(&shared, &parts, &body);
    }
    // The fake Stripe.js posts JSON for 3-D Secure; it passes untouched.
    if body.starts_with(b"{") {
        return translate(send(&shared, parts.method.clone(), &path, &parts.headers, Body::Json(body)).await, None)
            .await;
    }
    let expanded = String::from_utf8_lossy(&body).contains("latest_charge") || path.contains("latest_charge");
    let charge_outcome = expanded.then(|| {
        shared
            .faults
            .radar
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| json!({ "risk_level": "normal", "risk_score": 14, "type": "authorized" }))
    });
    let mut form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    if path == "/v1/payment_methods" {
        let token = form.iter().position(|(k, _)| k == "card[token]");
        if let Some(position) = token {
            let (_, token) = form.remove(position);
            let Some(card) = shared.tokens.lock().unwrap().remove(&token) else {
                let error = json!({ "error": { "type": "invalid_request_error", "code": "token_already_used",
                    "message": "No such token, or it was used already" } });
                return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
            };
            form.extend(card);
        }
    }
    if path == "/v1/tokens" {
        let card: Vec<(String, String)> = form
            .iter()
            .filter(|(k, _)| ["card[number]", "card[exp_month]", "card[exp_year]", "card[cvc]"].contains(&k.as_str()))
            .cloned()
            .collect();
        let answer = send(&shared, parts.method.clone(), &path, &parts.headers, Body::Form(&form)).await;
        let (status, headers, bytes) = read(answer).await;
        let token = serde_json::from_slice::<Value>(&bytes).ok().and_then(|t| t["id"].as_str().map(str::to_owned));
        if let Some(id) = token {
            shared.tokens.lock().unwrap().insert(id, card);
        }
        return respond(status, headers, bytes);
    }
    // localstripe refuses `setup_future_usage`; the test attaches the method and signs `payment_method.attached`
    // itself, as Stripe would after the payment.
    form.retain(|(key, _)| key != "setup_future_usage");
    // Nor does it know a refund's `reason`.
    if path.starts_with("/v1/refunds") {
        form.retain(|(key, _)| key != "reason");
        if parts.method == Method::POST && shared.faults.pending_refunds.load(Ordering::SeqCst) {
            let made = send(&shared, Method::POST, &path, &parts.headers, Body::Form(&form)).await;
            let (status, headers, bytes) = read(made).await;
            let mut refund: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if status.is_success() {
                refund["status"] = json!("pending");
            }
            return (status, headers, axum::Json(refund)).into_response();
        }
    }
    let confirm_with_method = form.iter().position(|(k, _)| k == "payment_method");
    if let (true, Some(position)) = (parts.method == Method::POST && path.ends_with("/confirm"), confirm_with_method) {
        let (_, method) = form.remove(position);
        let intent = path.trim_end_matches("/confirm");
        let method = [("payment_method".into(), method)];
        let update = send(&shared, Method::POST, intent, &parts.headers, Body::Form(&method)).await;
        if !update.status().is_success() {
            return translate(update, None).await;
        }
    }
    form.retain(|(key, _)| !key.starts_with("expand"));
    // localstripe has no `expand`: the proxy expands the charge itself (`translate`).
    let path = match path.split_once('?') {
        Some((route, query)) => {
            let kept: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .filter(|(k, _)| !k.starts_with("expand"))
                .collect();
            let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish();
            if query.is_empty() { route.to_owned() } else { format!("{route}?{query}") }
        }
        None => path,
    };
    translate(send(&shared, parts.method.clone(), &path, &parts.headers, Body::Form(&form)).await, charge_outcome).await
}

/// Stripe's file upload and dispute update and close, as its API reference documents them, which localstripe lacks.
fn disputes(shared: &Shared, parts: &axum::http::request::Parts, body: &[u8]) -> Response {
    let refuse = |status: StatusCode, message: &str| {
        let error = json!({ "error": { "type": "invalid_request_error", "message": message } });
        (status, axum::Json(error)).into_response()
    };
    if parts.headers.get("authorization").is_none() {
        return refuse(StatusCode::UNAUTHORIZED, "You did not provide an API key.");
    }
    let path = parts.uri.path();
    if path == "/v1/files" {
        let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let form = crate::helpers::form_parts(content_type, body);
        let purpose = form.iter().find(|p| p.name == "purpose").map(|p| String::from_utf8_lossy(&p.bytes).to_string());
        let (Some(purpose), Some(file)) = (purpose, form.iter().find(|p| p.name == "file")) else {
            return refuse(StatusCode::BAD_REQUEST, "Missing required param: file or purpose.");
        };
        let id = format!("file_{}", uuid::Uuid::new_v4().simple());
        let name = file.file_name.clone().unwrap_or_default();
        let size = file.bytes.len();
        shared.files.lock().unwrap().insert(id.clone(), (purpose.clone(), name.clone(), file.bytes.clone()));
        return axum::Json(json!({ "id": id, "object": "file", "purpose": purpose, "filename": name, "size": size }))
            .into_response();
    }
    let rest = path.trim_start_matches("/v1/disputes/");
    let (id, close) = match rest.strip_suffix("/close") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let mut disputes = shared.disputes.lock().unwrap();
    let Some(dispute) = disputes.get_mut(id) else {
        return refuse(StatusCode::NOT_FOUND, &format!("No such dispute: '{id}'"));
    };
    if parts.method == Method::GET {
        return axum::Json(dispute.clone()).into_response();
    }
    if matches!(dispute["status"].as_str(), Some("won" | "lost")) {
        return refuse(StatusCode::BAD_REQUEST, "This dispute is already closed.");
    }
    if close {
        dispute["status"] = json!("lost");
    } else {
        for (key, value) in &form {
            if let Some(field) = key.strip_prefix("evidence[").and_then(|k| k.strip_suffix(']')) {
                dispute["evidence"][field] = json!(value);
            }
        }
        if form.iter().any(|(k, v)| k == "submit" && v == "true") {
            dispute["status"] = json!("under_review");
            dispute["evidence_details"]["has_evidence"] = json!(true);
            dispute["evidence_details"]["submission_count"] = json!(1);
        }
    }
    axum::Json(dispute.clone()).into_response()
}

enum Body<'a> {
    Form(&'a [(String, String)]),
    Json(Bytes),
}

async fn send(shared: &Shared, method: Method, path: &str, headers: &HeaderMap, body: Body<'_>) -> reqwest::Response {
    let mut request = shared.http.request(method.clone(), format!("{}{path}", shared.upstream));
    // The browser's origin, so that localstripe answers with the CORS headers the page needs.
    for name in ["authorization", "origin"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    if method != Method::GET && method != Method::DELETE {
        request = match body {
            Body::Form(form) => request.form(form),
            Body::Json(json) => request.header("content-type", "application/json").body(json),
        };
    }
    request.send().await.expect("localstripe answers")
}

/// The status, the headers a browser needs (content type, CORS) and the body of localstripe's answer.
async fn read(response: reqwest::Response) -> (StatusCode, HeaderMap, Bytes) {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| *name == "content-type" || name.as_str().starts_with("access-control-"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    (status, headers, response.bytes().await.unwrap_or_default())
}

fn respond(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    (status, headers, body).into_response()
}

/// localstripe's answer in the current API's shape; with `charge_outcome`, the intent's charge is expanded as asked
/// and carries that Radar outcome.
async fn translate(response: reqwest::Response, charge_outcome: Option<Value>) -> Response {
    let (status, headers, bytes) = read(response).await;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut value) => {
            modernise(&mut value);
            if let (Some(outcome), Some(charge)) = (charge_outcome, value.get("latest_charge").and_then(Value::as_str))
            {
                let receipt = format!("https://pay.stripe.com/receipts/payment/{charge}");
                value["latest_charge"] =
                    json!({ "id": charge, "object": "charge", "outcome": outcome, "receipt_url": receipt });
            }
            (status, headers, axum::Json(value)).into_response()
        }
        Err(_) => respond(status, headers, bytes),
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
        if let Ok(event) = serde_json::from_slice(&body) {
            shared.faults.dropped.lock().unwrap().push(event);
        }
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
