//! Saved payment methods on the sandbox: "save for future", one-click purchase, removal (AC9.1.6, AC9.1.7, AC9.3.6).
use crate::helpers::{Db, eventually, spawn_app};
use crate::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn a_saved_card_buys_again_in_one_click(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("saver-1");
    let body = json!({ "packageId": "pro-200", "paymentMethodId": "pm_card_mastercard", "savePaymentMethod": true });
    let intent = app.post("/api/v1/payments/stripe/intent", Some(&client.token), &body).await;
    let intent_id = intent.data()["paymentIntentId"].as_str().unwrap().to_owned();
    assert_eq!(client.confirm(&intent_id, "pro-200").await.data()["status"], "succeeded");

    // The provider attaches the method once it has paid, and says so by webhook.
    let saved: Value = eventually(Duration::from_secs(10), || async {
        let list = app.get("/api/v1/payments/methods", Some(&client.token)).await;
        list.data().as_array().filter(|l| !l.is_empty()).map(|l| l[0].clone())
    })
    .await
    .expect("the card is saved");
    assert_eq!(saved["id"], "pm_card_mastercard");
    assert_eq!(saved["brand"], "mastercard");
    assert_eq!(saved["last4"], "4444");
    assert_eq!((saved["expMonth"].as_i64(), saved["expYear"].as_i64()), (Some(12), Some(2034)));
    assert!(saved.get("number").is_none(), "never a card number");

    // AC9.1.7: one call buys with it.
    let one_click = json!({ "packageId": "starter-25", "paymentMethodId": saved["id"], "confirm": true });
    let bought = app.post("/api/v1/payments/stripe/intent", Some(&client.token), &one_click).await;
    assert_eq!(bought.status, StatusCode::OK, "{}", bought.body);
    assert_eq!(bought.data()["status"], "succeeded");
    assert_eq!(bought.data()["creditsAdded"], 25);
    assert_eq!(bought.data()["newBalance"], 265);

    // Another client cannot see or remove it.
    let other = app.client("saver-2");
    assert!(app.get("/api/v1/payments/methods", Some(&other.token)).await.data().as_array().unwrap().is_empty());
    let stolen = app.delete("/api/v1/payments/methods/pm_card_mastercard", &other.token).await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    assert_eq!(stolen.error_code(), "payment_method_not_found");

    let removed = app.delete("/api/v1/payments/methods/pm_card_mastercard", &client.token).await;
    assert_eq!(removed.data()["deleted"], true);
    assert!(app.get("/api/v1/payments/methods", Some(&client.token)).await.data().as_array().unwrap().is_empty());

    // Card tokens come from Stripe.js; the sandbox's own tokenizer hands out methods, so it has none to turn.
    let token = app.post("/api/v1/payments/methods", Some(&client.token), &json!({ "cardToken": "tok_visa" })).await;
    assert_eq!(token.status, StatusCode::CONFLICT, "{}", token.body);
    assert_eq!(token.error_code(), "card_tokens_need_stripe");
}

async fn a_one_click_purchase_needs_a_method(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("saver-3");
    let answer = app
        .post(
            "/api/v1/payments/stripe/intent",
            Some(&client.token),
            &json!({ "packageId": "pro-200", "confirm": true }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error_code(), "payment_method_required");
    assert_eq!(app.count_rows("purchases").await, 0);
}

on_both_databases!(a_saved_card_buys_again_in_one_click, a_one_click_purchase_needs_a_method);
