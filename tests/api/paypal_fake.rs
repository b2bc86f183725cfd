//! A PayPal fake, test code only: no public one exists. It follows PayPal's OpenAPI documents in
//! `shared/vendor-specs/paypal/`: OAuth2 client credentials (`/v1/oauth2/token`), Orders v2 (create, read, capture,
//! with `PayPal-Request-Id` replaying the first answer), verify-webhook-signature, and error bodies with `name`,
//! `message`, `debug_id` and `details[].issue`. The test drives the payer's side (approve, cancel), injects faults
//! (500s, slow answers, a declined capture), raises disputes, and the fake delivers signed webhooks as PayPal does.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-secret";
pub const WEBHOOK_ID: &str = "WH-FAKE-0001";
const SIGNING_KEY: &str = "fake-paypal-signing-key";
const ACCESS_TOKEN: &str = "A21AA-fake-access-token";

#[derive(Default)]
struct World {
    orders: HashMap<String, Value>,
    /// The first answer given for each `PayPal-Request-Id`.
    replies: HashMap<String, (u16, Value)>,
    captures: HashMap<String, u32>,
    capture_calls: u32,
    declined: Vec<String>,
    fail_next: u32,
    slow_next: u32,
    /// Every request answered 503, as during an outage.
    down: bool,
    webhook_target: Option<String>,
    refunds: Vec<(String, String)>,
    disputes: HashMap<String, Value>,
    /// Every answer to a dispute: (dispute id, action, the `input` part, the document as (file name, bytes)).
    dispute_answers: Vec<DisputeAnswer>,
}

#[derive(Clone, Debug)]
pub struct DisputeAnswer {
    pub dispute: String,
    pub action: String,
    pub input: Value,
    pub document: Option<(String, Vec<u8>)>,
}

#[derive(Clone)]
pub struct PaypalFake {
    pub base: String,
    world: Arc<Mutex<World>>,
    http: reqwest::Client,
}

fn error(status: StatusCode, name: &str, issue: &str, message: &str) -> Response {
    let body = json!({
        "name": name,
        "message": message,
        "debug_id": format!("{:x}", rand_id()),
        "details": [{ "issue": issue, "description": message }],
    });
    (status, Json(body)).into_response()
}

async fn outage(
    axum::extract::State(fake): axum::extract::State<PaypalFake>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if fake.world.lock().unwrap().down {
        let message = "The service is unavailable.";
        return error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", "SERVICE_UNAVAILABLE", message);
    }
    next.run(request).await
}

fn rand_id() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

fn signature(transmission_id: &str, time: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_KEY.as_bytes()).unwrap();
    mac.update(
        format!("{transmission_id}|{time}|{WEBHOOK_ID}|{}", hex::encode(Sha256::digest(body.as_bytes()))).as_bytes(),
    );
    hex::encode(mac.finalize().into_bytes())
}

impl PaypalFake {
    pub async fn start() -> Self {
        purser::startup::install_crypto();
        let world = Arc::new(Mutex::new(World::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = Self { base, world, http: reqwest::Client::new() };
        let app = axum::Router::new()
            .route("/v1/oauth2/token", post(token))
            .route("/v2/checkout/orders", post(create_order))
            .route("/v2/checkout/orders/{id}", get(read_order))
            .route("/v2/checkout/orders/{id}/capture", post(capture))
            .route("/v2/payments/captures/{id}/refund", post(refund_capture))
            .route("/v1/notifications/verify-webhook-signature", post(verify))
            .route("/v1/customer/disputes/{id}", get(read_dispute))
            .route("/v1/customer/disputes/{id}/{action}", post(answer_dispute))
            .route("/sdk/js", get(sdk))
            .route("/checkoutnow/approve", post(approve_in_browser))
            .layer(axum::middleware::from_fn_with_state(fake.clone(), outage))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    pub fn deliver_webhooks_to(&self, url: String) {
        self.world.lock().unwrap().webhook_target = Some(url);
    }

    /// From now on every request is answered 503 (`true`), or served again (`false`).
    pub fn set_down(&self, down: bool) {
        self.world.lock().unwrap().down = down;
    }

    /// The next `calls` captures answer 500 without doing anything.
    pub fn fail_next_captures(&self, calls: u32) {
        self.world.lock().unwrap().fail_next = calls;
    }

    /// The next `calls` captures are done but answered after the client has given up waiting.
    pub fn answer_next_captures_slowly(&self, calls: u32) {
        self.world.lock().unwrap().slow_next = calls;
    }

    /// The refunds made, as (capture id, amount value).
    pub fn refunds(&self) -> Vec<(String, String)> {
        self.world.lock().unwrap().refunds.clone()
    }

    /// How many capture requests arrived, retries included.
    pub fn capture_calls(&self) -> u32 {
        self.world.lock().unwrap().capture_calls
    }

    pub fn decline_capture_of(&self, order: &str) {
        self.world.lock().unwrap().declined.push(order.to_owned());
    }

    pub fn captures_of(&self, order: &str) -> u32 {
        self.world.lock().unwrap().captures.get(order).copied().unwrap_or(0)
    }

    pub fn order(&self, id: &str) -> Value {
        self.world.lock().unwrap().orders.get(id).cloned().expect("a known order")
    }

    fn landing(&self, order: &str, which: &str) -> String {
        let url = self.order(order)["_urls"][which].as_str().unwrap().to_owned();
        format!("{url}?token={order}&PayerID=FAKEPAYER")
    }

    /// The payer approves at PayPal with `funding` (`paypal`, `venmo`…); PayPal sends CHECKOUT.ORDER.APPROVED and
    /// redirects to the return URL, which this returns.
    pub async fn approve(&self, order: &str, funding: &str) -> String {
        let approved = {
            let mut world = self.world.lock().unwrap();
            let stored = world.orders.get_mut(order).expect("a known order");
            stored["status"] = json!("APPROVED");
            // Orders v2 has no Pay Later source: it is paid through the payer's PayPal account.
            let source = if funding == "paylater" { "paypal" } else { funding };
            stored["payment_source"] = json!({ source: { "email_address": "payer@example.com" } });
            public(stored)
        };
        self.send("CHECKOUT.ORDER.APPROVED", "checkout-order", approved).await;
        self.landing(order, "return_url")
    }

    /// The payer turns back at PayPal: the cancel URL.
    pub fn cancel_url(&self, order: &str) -> String {
        self.landing(order, "cancel_url")
    }

    /// A buyer opens a dispute on a capture, as PayPal's CUSTOMER.DISPUTE.CREATED reports it: an inquiry (`OPEN`).
    pub async fn raise_dispute(&self, capture_id: &str, value: &str) -> String {
        self.open_dispute(capture_id, value, "OPEN", "INQUIRY").await
    }

    /// A claim the merchant must answer (`WAITING_FOR_SELLER_RESPONSE`), escalated past the inquiry.
    pub async fn raise_claim(&self, capture_id: &str, value: &str) -> String {
        self.open_dispute(capture_id, value, "WAITING_FOR_SELLER_RESPONSE", "CHARGEBACK").await
    }

    async fn open_dispute(&self, capture_id: &str, value: &str, status: &str, stage: &str) -> String {
        let id = format!("PP-D-{}", rand_id() % 100_000);
        let now = chrono::Utc::now();
        let resource = json!({
            "dispute_id": id,
            "create_time": now.to_rfc3339(),
            "update_time": now.to_rfc3339(),
            "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
            "status": status,
            "dispute_amount": { "currency_code": "USD", "value": value },
            "disputed_transactions": [{ "seller_transaction_id": capture_id }],
            "dispute_life_cycle_stage": stage,
            "dispute_channel": "INTERNAL",
            "seller_response_due_date": (now + chrono::Duration::days(10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        self.world.lock().unwrap().disputes.insert(id.clone(), resource.clone());
        self.send("CUSTOMER.DISPUTE.CREATED", "dispute", resource).await;
        id
    }

    /// PayPal decides a dispute (`RESOLVED_BUYER_FAVOUR`, `RESOLVED_SELLER_FAVOUR`…) and says so by webhook.
    pub async fn resolve_dispute(&self, id: &str, outcome: &str) -> u16 {
        let resolved = {
            let mut world = self.world.lock().unwrap();
            let dispute = world.disputes.get_mut(id).expect("a known dispute");
            dispute["status"] = json!("RESOLVED");
            dispute["dispute_outcome"] = json!({ "outcome_code": outcome });
            dispute.clone()
        };
        self.send("CUSTOMER.DISPUTE.RESOLVED", "dispute", resolved).await
    }

    pub fn dispute_answers(&self) -> Vec<DisputeAnswer> {
        self.world.lock().unwrap().dispute_answers.clone()
    }

    /// Delivers a webhook event signed as PayPal signs it; returns the HTTP status Purser answered.
    pub async fn send(&self, event_type: &str, resource_type: &str, resource: Value) -> u16 {
        let event = json!({
            "id": format!("WH-{}", rand_id()),
            "event_version": "1.0",
            "create_time": chrono::Utc::now().to_rfc3339(),
            "resource_type": resource_type,
            "event_type": event_type,
            "summary": event_type,
            "resource": resource,
        });
        self.deliver(&event, true).await
    }

    /// Delivers `event` as is; `genuine: false` signs it with the wrong key, as a forger would.
    pub async fn deliver(&self, event: &Value, genuine: bool) -> u16 {
        let target = self.world.lock().unwrap().webhook_target.clone().expect("a webhook target");
        let body = event.to_string();
        let transmission_id = uuid::Uuid::new_v4().to_string();
        let time = chrono::Utc::now().to_rfc3339();
        let sig = if genuine { signature(&transmission_id, &time, &body) } else { "00".repeat(32) };
        self.http
            .post(target)
            .header("content-type", "application/json")
            .header("paypal-transmission-id", transmission_id)
            .header("paypal-transmission-time", time)
            .header("paypal-transmission-sig", sig)
            .header("paypal-cert-url", format!("{}/v1/notifications/certs/CERT-fake", self.base))
            .header("paypal-auth-algo", "SHA256withRSA")
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Faults first (for captures), then the answer already given for this request id, then the work.
    async fn guarded(
        &self,
        headers: &HeaderMap,
        faulty: bool,
        work: impl FnOnce(&mut World) -> (u16, Value),
    ) -> Response {
        let (fail, slow) = {
            let mut world = self.world.lock().unwrap();
            if faulty {
                world.capture_calls += 1;
                let fail = world.fail_next > 0;
                world.fail_next = world.fail_next.saturating_sub(1);
                let slow = !fail && world.slow_next > 0;
                if slow {
                    world.slow_next -= 1;
                }
                (fail, slow)
            } else {
                (false, false)
            }
        };
        if fail {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "INTERNAL_SERVICE_ERROR",
                "An internal service error has occurred.",
            );
        }
        let request_id = headers.get("paypal-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (status, body) = {
            let mut world = self.world.lock().unwrap();
            match request_id.as_ref().and_then(|id| world.replies.get(id).cloned()) {
                Some(reply) => reply,
                None => {
                    let reply = work(&mut world);
                    if let Some(id) = request_id {
                        world.replies.insert(id, reply.clone());
                    }
                    reply
                }
            }
        };
        if slow {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
    }
}

/// An order as PayPal shows it: without the fake's bookkeeping.
fn public(order: &Value) -> Value {
    let mut shown = order.clone();
    shown.as_object_mut().unwrap().remove("_urls");
    shown
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {ACCESS_TOKEN}"))
}

async fn token(headers: HeaderMap, body: String) -> Response {
    if basic(&headers) != Some((CLIENT_ID.into(), CLIENT_SECRET.into())) || body != "grant_type=client_credentials" {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client", "error_description": "Client Authentication failed" })),
        )
            .into_response();
    }
    Json(json!({ "scope": "https://uri.paypal.com/services/payments/payment", "access_token": ACCESS_TOKEN,
        "token_type": "Bearer", "app_id": "APP-FAKE", "expires_in": 32400, "nonce": "fake" }))
    .into_response()
}

/// PayPal's JS SDK, as far as the checkout page uses it (`tests/api/paypal_sdk.js`).
async fn sdk() -> Response {
    ([("content-type", "text/javascript")], include_str!("paypal_sdk.js")).into_response()
}

#[derive(serde::Deserialize)]
struct BrowserApproval {
    token: String,
    funding: String,
}

/// The fake SDK's stand-in for the payer logging in and consenting in PayPal's window.
async fn approve_in_browser(
    State(fake): State<PaypalFake>,
    axum::extract::Query(approval): axum::extract::Query<BrowserApproval>,
) -> Response {
    let cors = [("access-control-allow-origin", "*")];
    if !fake.world.lock().unwrap().orders.contains_key(&approval.token) {
        return (StatusCode::NOT_FOUND, cors).into_response();
    }
    fake.approve(&approval.token, &approval.funding).await;
    (StatusCode::OK, cors).into_response()
}

async fn create_order(State(fake): State<PaypalFake>, headers: HeaderMap, Json(request): Json<Value>) -> Response {
    if !authorised(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_FAILURE",
            "INVALID_TOKEN",
            "Authentication failed due to invalid authentication credentials or a missing Authorization header.",
        );
    }
    let unit = request.pointer("/purchase_units/0").cloned().unwrap_or_default();
    let valid_amount = unit.pointer("/amount/value").and_then(Value::as_str).is_some_and(|v| v.contains('.'))
        && unit.pointer("/amount/currency_code").and_then(Value::as_str).is_some_and(|c| c.len() == 3);
    if request["intent"] != "CAPTURE" || !valid_amount {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "INVALID_PARAMETER_VALUE",
            "Request is not well-formed, syntactically incorrect, or violates schema.",
        );
    }
    let base = fake.base.clone();
    let context = request.pointer("/payment_source/paypal/experience_context").cloned().unwrap_or_default();
    fake.guarded(&headers, false, move |world| {
        let id = format!("{:017X}", rand_id() % 0x0FFF_FFFF_FFFF_FFFF)[..17].to_owned();
        let order = json!({
            "id": id,
            "intent": "CAPTURE",
            "status": "PAYER_ACTION_REQUIRED",
            "purchase_units": [unit],
            "create_time": chrono::Utc::now().to_rfc3339(),
            "links": [
                { "href": format!("{base}/v2/checkout/orders/{id}"), "rel": "self", "method": "GET" },
                { "href": format!("{base}/checkoutnow?token={id}"), "rel": "payer-action", "method": "GET" },
            ],
            "_urls": { "return_url": context["return_url"], "cancel_url": context["cancel_url"] },
        });
        world.orders.insert(id, order.clone());
        (200, public(&order))
    })
    .await
}

async fn read_order(State(fake): State<PaypalFake>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILURE", "INVALID_TOKEN", "Authentication failed.");
    }
    fake.guarded(&headers, false, move |world| match world.orders.get(&id) {
        Some(order) => (200, public(order)),
        None => (
            404,
            json!({ "name": "RESOURCE_NOT_FOUND", "message": "The specified resource does not exist.",
            "debug_id": "fake", "details": [{ "issue": "INVALID_RESOURCE_ID" }] }),
        ),
    })
    .await
}

async fn capture(State(fake): State<PaypalFake>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILURE", "INVALID_TOKEN", "Authentication failed.");
    }
    let unprocessable = |issue: &str, message: &str| {
        (
            422,
            json!({ "name": "UNPROCESSABLE_ENTITY", "message": "The requested action could not be performed, semantically incorrect, or failed business validation.",
            "debug_id": "fake", "details": [{ "issue": issue, "description": message }] }),
        )
    };
    let mut completed = None;
    let response = fake
        .guarded(&headers, true, |world| {
            let declined = world.declined.contains(&id);
            let Some(order) = world.orders.get_mut(&id) else {
                return (404, json!({ "name": "RESOURCE_NOT_FOUND", "message": "The specified resource does not exist.", "debug_id": "fake" }));
            };
            match order["status"].as_str() {
                Some("APPROVED") if declined => unprocessable("INSTRUMENT_DECLINED", "The instrument presented was either declined by the processor or bank."),
                Some("APPROVED") => {
                    let capture = json!({
                        "id": format!("CAP{:014X}", rand_id() % 0xFFFF_FFFF_FFFF),
                        "status": "COMPLETED",
                        "amount": order.pointer("/purchase_units/0/amount").cloned(),
                        "custom_id": order.pointer("/purchase_units/0/custom_id").cloned(),
                        "final_capture": true,
                        // As PayPal's Orders v2 reference shows it on a capture; a Venmo payment only partly.
                        "seller_protection": if order.pointer("/payment_source/venmo").is_some() {
                            json!({ "status": "PARTIALLY_ELIGIBLE", "dispute_categories": ["UNAUTHORIZED_TRANSACTION"] })
                        } else {
                            json!({ "status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"] })
                        },
                        "supplementary_data": { "related_ids": { "order_id": id } },
                    });
                    order["status"] = json!("COMPLETED");
                    order["purchase_units"][0]["payments"] = json!({ "captures": [capture.clone()] });
                    completed = Some(capture);
                    let shown = public(order);
                    *world.captures.entry(id.clone()).or_default() += 1;
                    (201, shown)
                }
                Some("COMPLETED") => unprocessable("ORDER_ALREADY_CAPTURED", "Order already captured."),
                _ => unprocessable("ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment."),
            }
        })
        .await;
    if let Some(capture) = completed {
        let fake = fake.clone();
        tokio::spawn(async move { fake.send("PAYMENT.CAPTURE.COMPLETED", "capture", capture).await });
    }
    response
}

async fn refund_capture(
    State(fake): State<PaypalFake>,
    headers: HeaderMap,
    Path(capture): Path<String>,
    Json(request): Json<Value>,
) -> Response {
    if !authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILURE", "INVALID_TOKEN", "Authentication failed.");
    }
    let value = request.pointer("/amount/value").and_then(Value::as_str).unwrap_or_default().to_owned();
    fake.guarded(&headers, false, move |world| {
        let known = world.orders.values().any(|o| o.pointer("/purchase_units/0/payments/captures/0/id").and_then(Value::as_str) == Some(&capture));
        if !known {
            return (404, json!({ "name": "RESOURCE_NOT_FOUND", "message": "The specified resource does not exist.", "debug_id": "fake" }));
        }
        world.refunds.push((capture.clone(), value.clone()));
        (201, json!({ "id": format!("REF{:014X}", rand_id() % 0xFFFF_FFFF_FFFF), "status": "COMPLETED",
            "amount": request["amount"], "links": [{ "rel": "up", "href": format!("/v2/payments/captures/{capture}") }] }))
    })
    .await
}

async fn verify(headers: HeaderMap, Json(request): Json<Value>) -> Response {
    if !authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILURE", "INVALID_TOKEN", "Authentication failed.");
    }
    let field = |name: &str| request.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let expected =
        signature(&field("transmission_id"), &field("transmission_time"), &request["webhook_event"].to_string());
    let genuine = field("webhook_id") == WEBHOOK_ID && field("transmission_sig") == expected;
    Json(json!({ "verification_status": if genuine { "SUCCESS" } else { "FAILURE" } })).into_response()
}

async fn read_dispute(State(fake): State<PaypalFake>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILURE", "INVALID_TOKEN", "Authentication failed.");
    }
    match fake.world.lock().unwrap().disputes.get(&id) {
        Some(dispute) => Json(dispute.clone()).into_response(),
        None => {
            error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "The dispute does not exist.")
        }
    }
}

/// `provide-evidence` and `accept-claim`: a multipart form with an `input` JSON part and an optional document. PayPal
/// takes evidence only while it waits for the seller; an accepted claim is resolved in the buyer's favour at once.
async fn answer_dispute(
    State(fake): State<PaypalFake>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if !authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILURE", "INVALID_TOKEN", "Authentication failed.");
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let parts = crate::helpers::form_parts(content_type, &body);
    let Some(input) =
        parts.iter().find(|p| p.name == "input").and_then(|p| serde_json::from_slice::<Value>(&p.bytes).ok())
    else {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "input is required.");
    };
    let file_part = if action == "provide-evidence" { "evidence-file" } else { "accept-claim-document" };
    let document =
        parts.iter().find(|p| p.name == file_part).map(|p| (p.file_name.clone().unwrap_or_default(), p.bytes.clone()));
    let (event, changed) = {
        let mut world = fake.world.lock().unwrap();
        let Some(dispute) = world.disputes.get_mut(&id) else {
            return error(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                "INVALID_RESOURCE_ID",
                "The dispute does not exist.",
            );
        };
        let status = dispute["status"].as_str().unwrap_or_default().to_owned();
        let event = match (action.as_str(), status.as_str()) {
            ("provide-evidence", "WAITING_FOR_SELLER_RESPONSE") => {
                dispute["status"] = json!("UNDER_REVIEW");
                "CUSTOMER.DISPUTE.UPDATED"
            }
            ("accept-claim", "OPEN" | "WAITING_FOR_SELLER_RESPONSE") => {
                dispute["status"] = json!("RESOLVED");
                dispute["dispute_outcome"] = json!({ "outcome_code": "ACCEPTED" });
                "CUSTOMER.DISPUTE.RESOLVED"
            }
            ("provide-evidence" | "accept-claim", _) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "UNPROCESSABLE_ENTITY",
                    "NOT_AUTHORIZED_FOR_ACTION",
                    "The dispute is not in a state that allows this action.",
                );
            }
            _ => return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "No such action."),
        };
        let changed = dispute.clone();
        world.dispute_answers.push(DisputeAnswer { dispute: id.clone(), action: action.clone(), input, document });
        (event, changed)
    };
    let sender = fake.clone();
    tokio::spawn(async move { sender.send(event, "dispute", changed).await });
    let link = format!("{}/v1/customer/disputes/{id}", fake.base);
    Json(json!({ "links": [{ "href": link, "rel": "self", "method": "GET" }] })).into_response()
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = headers.get("authorization")?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
