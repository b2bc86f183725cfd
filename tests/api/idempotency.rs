//! `Idempotency-Key` on money-moving POSTs.
use crate::helpers::{Db, spawn_app};
use crate::on_both_databases;
use reqwest::StatusCode;
use serde_json::json;

async fn the_same_key_and_body_replay_the_first_answer(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("idem-1");
    let body = json!({ "packageId": "pro-200", "paymentMethodId": "pm_card_visa" }).to_string();
    let headers = [("content-type", "application/json"), ("idempotency-key", "order-42")];
    let first = app.post_raw("/api/v1/payments/stripe/intent", Some(&client.token), &headers, body.clone()).await;
    let second = app.post_raw("/api/v1/payments/stripe/intent", Some(&client.token), &headers, body).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.body, second.body);
    assert_eq!(second.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(app.count_rows("purchases").await, 1);

    // The key is the caller's own: another client using the same key starts its own purchase.
    let other = app.client("idem-2");
    let theirs = app
        .post_raw(
            "/api/v1/payments/stripe/intent",
            Some(&other.token),
            &headers,
            json!({ "packageId": "pro-200" }).to_string(),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_ne!(theirs.data()["transactionId"], first.data()["transactionId"]);

    // Replaying a confirm replays its success without a second grant.
    let intent = first.data()["paymentIntentId"].as_str().unwrap();
    let confirm = json!({ "paymentIntentId": intent, "packageId": "pro-200" }).to_string();
    let confirm_headers = [("content-type", "application/json"), ("idempotency-key", "confirm-42")];
    let paid = app.post_raw("/api/v1/payments/confirm", Some(&client.token), &confirm_headers, confirm.clone()).await;
    let replayed = app.post_raw("/api/v1/payments/confirm", Some(&client.token), &confirm_headers, confirm).await;
    assert_eq!(paid.body, replayed.body);
    assert_eq!(client.balance().await, 240);
}

async fn the_same_key_with_another_body_is_a_conflict(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("idem-3");
    let headers = [("content-type", "application/json"), ("idempotency-key", "k-1")];
    let first = app
        .post_raw(
            "/api/v1/payments/stripe/intent",
            Some(&client.token),
            &headers,
            json!({ "packageId": "pro-200" }).to_string(),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let reused = app
        .post_raw(
            "/api/v1/payments/stripe/intent",
            Some(&client.token),
            &headers,
            json!({ "packageId": "starter-25" }).to_string(),
        )
        .await;
    assert_eq!(reused.status, StatusCode::CONFLICT);
    assert_eq!(reused.error_code(), "idempotency_key_reused");
    assert_eq!(app.count_rows("purchases").await, 1);
}

/// A claim as a crash between the claim and the stored answer leaves it: no answer, taken `age` ago.
async fn leave_claim(app: &crate::helpers::TestApp, client: &str, key: &str, age: chrono::TimeDelta, answered: bool) {
    let at = (chrono::Utc::now() - age).format("%Y-%m-%d %H:%M:%S+00:00");
    let (status, body) = if answered { ("200", "'{}'") } else { ("NULL", "NULL") };
    app.execute(&format!(
        "INSERT INTO idempotency_keys (client_id, key, request_hash, response_status, response_body, created_at) \
         VALUES ('{client}', '{key}', 'earlier-request', {status}, {body}, '{at}')"
    ))
    .await;
}

async fn a_key_left_claimed_by_a_crash_is_free_once_its_lease_has_passed(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("idem-lease");
    let intent = async |key: &str| {
        let headers = [("content-type", "application/json"), ("idempotency-key", key)];
        let body = json!({ "packageId": "pro-200", "paymentMethodId": "pm_card_visa" }).to_string();
        app.post_raw("/api/v1/payments/stripe/intent", Some(&client.token), &headers, body).await
    };

    leave_claim(&app, "idem-lease", "crashed", chrono::TimeDelta::minutes(2), false).await;
    let retried = intent("crashed").await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(app.count_rows("purchases").await, 1);
    // The retry's own answer is now the key's: a third try replays it.
    let replayed = intent("crashed").await;
    assert_eq!(replayed.body, retried.body);
    assert_eq!(app.count_rows("purchases").await, 1);

    // A claim inside its lease is a request still running.
    leave_claim(&app, "idem-lease", "running", chrono::TimeDelta::seconds(5), false).await;
    let busy = intent("running").await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.error_code(), "idempotency_key_in_use");
    assert_eq!(app.count_rows("purchases").await, 1);
}

async fn a_key_is_forgotten_after_24_hours(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("idem-expiry");
    leave_claim(&app, "idem-expiry", "yesterday", chrono::TimeDelta::hours(25), true).await;
    let headers = [("content-type", "application/json"), ("idempotency-key", "yesterday")];
    let body = json!({ "packageId": "pro-200" }).to_string();
    let fresh = app.post_raw("/api/v1/payments/stripe/intent", Some(&client.token), &headers, body).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    assert!(fresh.headers.get("idempotent-replayed").is_none());
    assert_eq!(app.count_rows("purchases").await, 1);
}

on_both_databases!(
    the_same_key_and_body_replay_the_first_answer,
    the_same_key_with_another_body_is_a_conflict,
    a_key_left_claimed_by_a_crash_is_free_once_its_lease_has_passed,
    a_key_is_forgotten_after_24_hours,
);
