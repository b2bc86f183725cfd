//! Bad input gets a clear error in the envelope, the right status, and nothing written.
use crate::helpers::{Db, JWT_SECRET, spawn_app};
use crate::on_both_databases;
use purser::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

async fn bad_requests_get_clear_errors_and_write_nothing(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("bad-1");
    let token = Some(client.token.as_str());
    let path = "/api/v1/payments/stripe/intent";
    let json_type = [("content-type", "application/json")];

    // (why, expected status, expected code, body, headers)
    type Case<'a> = (&'a str, reqwest::StatusCode, &'a str, String, &'a [(&'a str, &'a str)]);
    let cases: Vec<Case> = vec![
        (
            "unknown package",
            StatusCode::BAD_REQUEST,
            "unknown_package",
            json!({ "packageId": "gold-9000" }).to_string(),
            &json_type,
        ),
        ("malformed JSON", StatusCode::BAD_REQUEST, "malformed_json", "{\"packageId\": ".into(), &json_type),
        ("wrong type", StatusCode::BAD_REQUEST, "invalid_request", json!({ "packageId": 200 }).to_string(), &json_type),
        ("missing field", StatusCode::BAD_REQUEST, "invalid_request", json!({}).to_string(), &json_type),
        (
            "unknown field",
            StatusCode::BAD_REQUEST,
            "invalid_request",
            json!({ "packageId": "pro-200", "amount": 1 }).to_string(),
            &json_type,
        ),
        (
            "a card number",
            StatusCode::BAD_REQUEST,
            "card_data_not_accepted",
            json!({ "packageId": "pro-200", "paymentMethodId": "4242 4242 4242 4242" }).to_string(),
            &json_type,
        ),
        (
            "not a token",
            StatusCode::BAD_REQUEST,
            "invalid_payment_method",
            json!({ "packageId": "pro-200", "paymentMethodId": "visa" }).to_string(),
            &json_type,
        ),
        (
            "no content type",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            json!({ "packageId": "pro-200" }).to_string(),
            &[],
        ),
    ];
    for (why, status, code, body, headers) in cases {
        let answer = app.post_raw(path, token, headers, body).await;
        assert_eq!(answer.status, status, "{why}: {}", answer.body);
        assert_eq!(answer.error_code(), code, "{why}");
        assert!(!answer.body["error"]["message"].as_str().unwrap().is_empty(), "{why}");
    }
    let oversized = app.post_oversized(path, &client.token, 2 * 1024 * 1024).await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(oversized.error_code(), "payload_too_large");
    let confirm_junk = app
        .post("/api/v1/payments/confirm", token, &json!({ "paymentIntentId": "nope", "packageId": "pro-200" }))
        .await;
    assert_eq!(confirm_junk.status, StatusCode::BAD_REQUEST);
    let bad_id = app.get("/api/v1/payments/not-a-uuid", token).await;
    assert_eq!(bad_id.error_code(), "invalid_transaction_id");
    assert_eq!(app.count_rows("purchases").await, 0);
    assert_eq!(app.count_rows("idempotency_keys").await, 0);
    assert_eq!(client.balance().await, 0);
}

async fn missing_forged_and_expired_tokens_are_refused(db: Db) {
    let app = spawn_app(db).await;
    let body = json!({ "packageId": "pro-200", "paymentMethodId": "pm_card_visa" });
    let claims = |exp: u64| json!({ "sub": "client-x", "role": "client", "exp": exp });
    let key = |secret: &str| jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let now = jsonwebtoken::get_current_timestamp();
    let forged =
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims(now + 600), &key("not-the-secret")).unwrap();
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims(now - 60), &key(JWT_SECRET)).unwrap();
    for (why, token) in [
        ("missing", None),
        ("malformed", Some("abc.def")),
        ("forged", Some(forged.as_str())),
        ("expired", Some(expired.as_str())),
    ] {
        let answer = app.post("/api/v1/payments/stripe/intent", token, &body).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(answer.error_code(), "unauthorized", "{why}");
    }
    let expired_message = app.post("/api/v1/payments/stripe/intent", Some(&expired), &body).await;
    assert!(expired_message.body["error"]["message"].as_str().unwrap().contains("expired"));

    let client = app.token("client-x", Role::Client);
    let admin_path = app.get(&format!("/api/v1/admin/payments/{}", uuid::Uuid::new_v4()), Some(&client)).await;
    assert_eq!(admin_path.status, StatusCode::FORBIDDEN);
    assert_eq!(admin_path.error_code(), "forbidden");
    let no_route = app.get("/api/v1/nothing-here", None).await;
    assert_eq!(no_route.status, StatusCode::NOT_FOUND);
    assert_eq!(no_route.error_code(), "not_found");
    assert_eq!(app.count_rows("purchases").await, 0);
}

// Issue 14: free text has a length and a report a range, so one request cannot store or scan without bound.
async fn free_text_and_report_ranges_are_bounded(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("bounded-1");
    let appeal = json!({ "message": "x".repeat(2001) });
    let answer = app.post("/api/v1/payments/refunds/any/appeal", Some(&client.token), &appeal).await;
    assert_eq!((answer.status, answer.error_code()), (StatusCode::BAD_REQUEST, "invalid_appeal"));
    let profile = json!({ "companyName": "c".repeat(201), "address": "1 Main St", "country": "DE" });
    let answer = app
        .http
        .put(format!("{}/api/v1/billing/profile", app.base))
        .bearer_auth(&client.token)
        .json(&profile)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count_rows("billing_profiles").await, 0);
    let admin = app.token("admin-bounded", Role::Admin);
    for range in
        ["from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"]
    {
        let report = app.get(&format!("/api/v1/admin/reports/revenue?period=day&{range}"), Some(&admin)).await;
        assert_eq!((report.status, report.error_code()), (StatusCode::BAD_REQUEST, "invalid_range"), "{range}");
    }
    let year = app.get(
        "/api/v1/admin/reports/revenue?period=month&from=2025-06-01T00:00:00Z&to=2026-06-01T00:00:00Z",
        Some(&admin),
    );
    assert_eq!(year.await.status, StatusCode::OK);
    // Only `from`: the range runs a year from it (or to now), not from 2000 to now.
    let from_only = app.get("/api/v1/admin/reports/revenue?period=day&from=2000-01-01T00:00:00Z", Some(&admin));
    assert_eq!(from_only.await.status, StatusCode::OK);
    let format = app.get("/api/v1/admin/reports/revenue?period=day&format=xml", Some(&admin)).await;
    assert_eq!((format.status, format.error_code()), (StatusCode::BAD_REQUEST, "invalid_format"));
    for limit in ["0", "201"] {
        let page = app.get(&format!("/api/v1/admin/payments?limit={limit}"), Some(&admin)).await;
        assert_eq!((page.status, page.error_code()), (StatusCode::BAD_REQUEST, "invalid_limit"), "{limit}");
    }
    // Credits are whole numbers, as JSON Schema counts them: `5.0` is five, `5.5` is refused.
    let adjust = |credits: serde_json::Value| {
        let body = json!({ "clientId": "bounded-1", "credits": credits, "reason": "goodwill" });
        let (app, admin) = (&app, admin.clone());
        async move { app.post("/api/v1/admin/credits/adjust", Some(&admin), &body).await }
    };
    let whole = adjust(json!(5.0)).await;
    assert_eq!((whole.status, &whole.data()["balance"]), (StatusCode::OK, &json!(5)), "{}", whole.body);
    let fraction = adjust(json!(5.5)).await;
    assert_eq!((fraction.status, fraction.error_code()), (StatusCode::BAD_REQUEST, "invalid_request"));
    assert_eq!(client.balance().await, 5);
    // A page far past the end is refused, not a crash of the request (it once overflowed the offset).
    let far = app.get("/api/v1/billing/history?page=9223372036854775808", Some(&client.token)).await;
    assert_eq!((far.status, far.error_code()), (StatusCode::BAD_REQUEST, "invalid_page"));
    // A query string that does not parse is answered in the envelope too, not in plain text.
    let bad_query = app.get("/api/v1/billing/export?year=last", Some(&client.token)).await;
    assert_eq!((bad_query.status, bad_query.error_code()), (StatusCode::BAD_REQUEST, "invalid_query"));
    let bad_path = app.post("/api/v1/admin/webhooks/not-a-number/replay", Some(&admin), &json!({})).await;
    assert_eq!((bad_path.status, bad_path.error_code()), (StatusCode::BAD_REQUEST, "invalid_path"));
}

on_both_databases!(
    bad_requests_get_clear_errors_and_write_nothing,
    missing_forged_and_expired_tokens_are_refused,
    free_text_and_report_ranges_are_bounded
);
