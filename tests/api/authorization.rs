//! Issue 14: the authorization matrix, built from the router's own route list (the OpenAPI document the router is
//! made from, plus the few routes outside it), so a new route cannot skip it. Every route that needs a caller answers
//! a missing, malformed, forged, expired or wrongly issued token with 401, a client on an admin route with 403, and
//! a client reaching for another client's object with 404 or 403; none of them answers 2xx. The routes anyone may
//! call are listed here with the reason, and a new one fails the test until it is.
use crate::helpers::{Db, TestApp, spawn_app_with};
use crate::on_both_databases;
use purser::auth::{Claims, DEVELOPMENT_SECRET, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ISSUER: &str = "https://platform.example";
const AUDIENCE: &str = "purser";

/// The operations without a caller, and why each is safe to leave open.
const PUBLIC: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/packages", "the catalogue, the same for everyone"),
    ("GET", "/api/v1/payments/refund-policy", "the published policy"),
    (
        "GET",
        "/api/v1/payments/paypal/return",
        "PayPal's redirect; the order id is the capability, nothing personal shown",
    ),
    (
        "GET",
        "/api/v1/payments/paypal/cancel",
        "PayPal's redirect; the order id is the capability, nothing personal shown",
    ),
    ("POST", "/api/v1/webhooks/stripe", "verified by Stripe's signature"),
    ("POST", "/api/v1/webhooks/paypal", "verified with PayPal"),
    ("GET", "/receipts/{transactionId}", "the link's HMAC token is the capability: it opens that one paid receipt"),
    ("GET", "/healthz", "liveness"),
    ("GET", "/readyz", "readiness"),
    ("GET", "/sandbox/paypal/checkoutnow", "development tools only (`deployment.rs`)"),
    ("POST", "/sandbox/paypal/checkoutnow/{id}/approve", "development tools only"),
    ("POST", "/sandbox/paypal/checkoutnow/{id}/cancel", "development tools only"),
    ("POST", "/sandbox/v1/payment_intents/{id}/_authenticate", "development tools only"),
    ("POST", "/sandbox/v1/payment_intents/{id}/_settle", "development tools only"),
    ("POST", "/sandbox/v1/tokens", "development tools only"),
];

/// Routes outside the OpenAPI document that need a caller.
const UNDOCUMENTED: &[(&str, &str)] = &[("POST", "/dev/crash/{actor}")];

/// Every operation of the router: (method, path template, needs a caller).
async fn routes(app: &TestApp) -> Vec<(String, String, bool)> {
    let document: Value =
        app.http.get(format!("{}/api/v1/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let mut routes = vec![];
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let secured = operation.get("security").is_some_and(|s| !s.as_array().unwrap().is_empty());
            routes.push((method.to_uppercase(), path.clone(), secured));
        }
    }
    routes.extend(UNDOCUMENTED.iter().map(|(m, p)| (m.to_string(), p.to_string(), true)));
    routes
}

fn sign(claims: &Claims, secret: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).unwrap()
}

/// Tokens that must all be refused with 401, named.
fn bad_tokens() -> Vec<(&'static str, Option<String>)> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |exp: u64, iss: &str, aud: &str| Claims {
        sub: "matrix-attacker".into(),
        role: Role::Admin,
        email: None,
        exp,
        iss: Some(iss.into()),
        aud: Some(aud.into()),
    };
    vec![
        ("no token", None),
        ("malformed", Some("abc.def".into())),
        ("forged", Some(sign(&claims(now + 600, ISSUER, AUDIENCE), "not-the-secret-of-this-service-at-all"))),
        ("expired", Some(sign(&claims(now - 60, ISSUER, AUDIENCE), DEVELOPMENT_SECRET))),
        ("wrong issuer", Some(sign(&claims(now + 600, "https://evil.example", AUDIENCE), DEVELOPMENT_SECRET))),
        ("wrong audience", Some(sign(&claims(now + 600, ISSUER, "another-service"), DEVELOPMENT_SECRET))),
        ("unknown API key", Some(format!("psk_0123456789ab_{}", "0".repeat(64)))),
    ]
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, String) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.http.request(method.clone(), format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method != Method::GET {
        request = request.json(body);
    }
    let answer = request.send().await.unwrap();
    (answer.status(), answer.text().await.unwrap_or_default())
}

/// The path with each `{param}` filled from `values` (by name), or with a well-formed stand-in.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut path = template.to_owned();
    for (name, value) in values {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    let stand_in = "7d1f0b5e-4c1a-4e0b-9a43-0f6f3c2f9a11";
    while let (Some(open), Some(close)) = (path.find('{'), path.find('}')) {
        path.replace_range(open..=close, stand_in);
    }
    path
}

async fn every_route_refuses_whoever_it_is_not_for(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.auth.issuer = Some(ISSUER.into());
        s.auth.audience = Some(AUDIENCE.into());
        s.sandbox.crash_hooks = true;
    })
    .await;
    let routes = routes(&app).await;

    // The open routes are exactly the listed ones.
    let mut open: Vec<(String, String)> = routes.iter().filter(|r| !r.2).map(|r| (r.0.clone(), r.1.clone())).collect();
    open.sort();
    let mut listed: Vec<(String, String)> = PUBLIC.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    listed.sort();
    assert_eq!(open, listed, "a route without a caller must be listed in PUBLIC with its reason");

    // Every other route: 401 for each bad token.
    let secured: Vec<&(String, String, bool)> = routes.iter().filter(|r| r.2).collect();
    assert!(secured.len() > 40, "the document lists the API: {}", secured.len());
    for (why, token) in bad_tokens() {
        for (method, template, _) in &secured {
            let (status, body) = call(&app, method, &fill(template, &[]), token.as_deref(), &json!({})).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {method} {template}: {body}");
        }
    }

    // A client on an admin route: 403.
    let client = app.client("matrix-client");
    for (method, template, _) in
        secured.iter().filter(|r| r.1.starts_with("/api/v1/admin") || r.1 == "/metrics" || r.1.starts_with("/dev/"))
    {
        let (status, body) = call(&app, method, &fill(template, &[]), Some(&client.token), &json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a client on {method} {template}: {body}");
    }

    // Issue 18: the platform's service token reaches its own routes only; every other route, admin's or a client's,
    // is 403.
    let service = app.token("matrix-service", purser::auth::Role::Service);
    let its_own =
        ["/api/v1/credits/spend", "/api/v1/credits/spends/{spendId}/reverse", "/api/v1/credits/ledger/{clientId}"];
    for (method, template, _) in secured.iter().filter(|r| !its_own.contains(&r.1.as_str())) {
        let (status, body) = call(&app, method, &fill(template, &[]), Some(&service), &json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "the service on {method} {template}: {body}");
    }

    // Another client's objects: 404 (or 403), never 2xx.
    let owner = app.client("matrix-owner");
    let bought = owner.create_intent("pro-200", Some("pm_card_mastercard")).await;
    let (transaction, intent) = (
        bought.data()["transactionId"].as_str().unwrap().to_owned(),
        bought.data()["paymentIntentId"].as_str().unwrap().to_owned(),
    );
    assert_eq!(owner.confirm(&intent, "pro-200").await.status, StatusCode::OK);
    let asked = app
        .post(
            "/api/v1/payments/refund",
            Some(&owner.token),
            &json!({ "transactionId": transaction, "reason": "unused" }),
        )
        .await;
    let refund = asked.data()["refundRequestId"].as_str().unwrap().to_owned();
    let invoice = format!("{transaction}.pdf");
    let theirs = [("transactionId", transaction.as_str()), ("file", invoice.as_str())];
    let other = app.client("matrix-other");
    let mut reached = 0;
    for (method, template, _) in
        secured.iter().filter(|r| !r.1.starts_with("/api/v1/admin") && r.1.contains('{') && !r.1.starts_with("/dev/"))
    {
        let path = if template.contains("/refunds/{id}") {
            fill(template, &[("id", &refund)])
        } else {
            fill(template, &theirs)
        };
        let body = if template.ends_with("/appeal") { json!({ "message": "let me see it" }) } else { json!({}) };
        let (status, answer) = call(&app, method, &path, Some(&other.token), &body).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
            "another client on {method} {path}: {status} {answer}"
        );
        reached += 1;
    }
    assert!(reached >= 5, "the client routes with an object: {reached}");
    // And the routes that name the object in their body.
    let by_body = [
        ("/api/v1/payments/confirm", json!({ "paymentIntentId": intent, "packageId": "pro-200" })),
        ("/api/v1/payments/refund", json!({ "transactionId": transaction, "reason": "mine now" })),
    ];
    for (path, body) in by_body {
        let (status, answer) = call(&app, "POST", path, Some(&other.token), &body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another client on POST {path}: {answer}");
    }
    assert_eq!(owner.balance().await, 240, "nothing of the owner's moved");
}

on_both_databases!(every_route_refuses_whoever_it_is_not_for);
