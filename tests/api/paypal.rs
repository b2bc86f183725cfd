//! PayPal Orders v2 against the PayPal fake (AC9.2.1–AC9.2.5), on SQLite and PostgreSQL.
use crate::helpers::{Client, Db, TestApp, eventually, spawn_app_with};
use crate::on_both_databases;
use crate::paypal_fake::{CLIENT_ID, CLIENT_SECRET, PaypalFake, WEBHOOK_ID};
use purser::auth::Role;
use purser::settings::{PaypalProviderChoice, Secret, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Points the PayPal rail at the fake running at `base`.
pub(crate) fn use_paypal_fake(s: &mut Settings, base: &str) {
    s.payments.paypal_provider = PaypalProviderChoice::Paypal;
    s.paypal.api_base = base.to_owned();
    s.paypal.sdk_url = format!("{base}/sdk/js");
    s.paypal.client_id = Some(CLIENT_ID.into());
    s.paypal.client_secret = Some(Secret::new(CLIENT_SECRET.into()));
    s.paypal.webhook_id = Some(WEBHOOK_ID.into());
    s.paypal.timeout = Duration::from_secs(1);
}

pub(crate) async fn paypal_app(
    db: Db,
    configure: impl FnOnce(&mut Settings) + Send + 'static,
) -> (TestApp, PaypalFake) {
    let fake = PaypalFake::start().await;
    let base = fake.base.clone();
    let app = spawn_app_with(db, move |s| {
        use_paypal_fake(s, &base);
        configure(s);
    })
    .await;
    fake.deliver_webhooks_to(format!("{}/api/v1/webhooks/paypal", app.base));
    (app, fake)
}

/// A paid PayPal purchase of `pro-200`: (transaction, capture id).
pub(crate) async fn paid_order(app: &TestApp, client: &Client<'_>, fake: &PaypalFake) -> (String, String) {
    let (transaction, order) = create_order(client, fake).await;
    let return_url = fake.approve(&order, "paypal").await;
    assert_eq!(land(app, &return_url).await.0, StatusCode::OK);
    client.wait_for_status(&transaction, "succeeded").await;
    let capture = fake.order(&order)["purchase_units"][0]["payments"]["captures"][0]["id"].as_str().unwrap().to_owned();
    (transaction, capture)
}

/// AC9.2.1: the client asks for an order and gets PayPal's approval page. Returns (transaction, order).
async fn create_order(client: &Client<'_>, fake: &PaypalFake) -> (String, String) {
    let created = client
        .app
        .post("/api/v1/payments/paypal/create-order", Some(&client.token), &json!({ "packageId": "pro-200" }))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let data = created.data();
    let order = data["orderId"].as_str().unwrap().to_owned();
    assert_eq!(data["approvalUrl"], format!("{}/checkoutnow?token={order}", fake.base));
    let unit = &fake.order(&order)["purchase_units"][0];
    assert_eq!(unit["amount"], json!({ "currency_code": "USD", "value": "160.00" }));
    assert_eq!(unit["custom_id"], crate::helpers::uuid_of(data["transactionId"].as_str().unwrap()));
    (data["transactionId"].as_str().unwrap().to_owned(), order)
}

/// The browser landing on a return or cancel URL.
async fn land(app: &TestApp, url: &str) -> (StatusCode, String) {
    let response = app.http.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

// AC9.2.2, AC9.2.4: approve, come back, credits once, whichever of the return URL and the webhook is first.
async fn an_approved_order_is_captured_once(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-1");
    let (transaction, order) = create_order(&client, &fake).await;
    let return_url = fake.approve(&order, "venmo").await;
    let (status, page) = land(&app, &return_url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Payment complete"), "{page}");
    assert!(page.contains("<strong>240 credits</strong> were added"), "{page}");
    assert!(!page.contains("balance is"), "the page answers whoever holds the order id: nothing personal");
    // Landing again (a reload) captures nothing more.
    assert_eq!(land(&app, &return_url).await.0, StatusCode::OK);
    // Both of PayPal's webhooks (approved, captured) applied: nothing left that could capture again.
    app.inbox_applied(2).await;
    assert_eq!(fake.captures_of(&order), 1);
    assert_eq!(client.balance().await, 240);
    let view = client.transaction(&transaction).await;
    assert_eq!(view.data()["status"], "succeeded");
    assert_eq!(view.data()["rail"], "paypal");
    assert_eq!(view.data()["fundingSource"], "venmo");
    assert_eq!(view.data()["provider"], "paypal");
    // Issue 17: the capture on PayPal's sandbox site, since the fake is not PayPal's live API.
    let captured = fake.order(&order);
    let capture = captured.pointer("/purchase_units/0/payments/captures/0/id").and_then(|v| v.as_str()).unwrap();
    let link = format!("https://www.sandbox.paypal.com/activity/payment/{capture}");
    assert_eq!(view.data()["dashboardUrl"], link.as_str());
    // Issue 17: seller protection as PayPal reported it on the capture (the fake covers a Venmo payment partly).
    let protection = &view.data()["sellerProtection"];
    assert_eq!(protection["status"], "PARTIALLY_ELIGIBLE", "{}", view.body);
    assert_eq!(protection["disputeCategories"], serde_json::json!(["UNAUTHORIZED_TRANSACTION"]));
}

// The payer never comes back: CHECKOUT.ORDER.APPROVED alone captures.
async fn the_approval_webhook_captures_when_the_payer_never_returns(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-2");
    let (transaction, order) = create_order(&client, &fake).await;
    fake.approve(&order, "paypal").await;
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(fake.captures_of(&order), 1);
    assert_eq!(client.balance().await, 240);
}

// AC9.2.3: cancelled at PayPal: back with the reason and a retry, nothing charged.
async fn a_cancelled_payment_comes_back_with_a_retry(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-3");
    let (transaction, order) = create_order(&client, &fake).await;
    let (status, page) = land(&app, &fake.cancel_url(&order)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert!(page.contains("You cancelled the payment at PayPal; nothing was charged."), "{page}");
    assert!(page.contains(&format!("{}/checkout\">Try again", app.base)), "{page}");
    // Issue 14: anyone holding the order id can open the landing, so it changes nothing; the page's script records
    // the cancellation with the payer's own token, as here.
    assert_eq!(client.transaction(&transaction).await.data()["status"], "requires_action");
    assert!(page.contains("/assets/paypal-cancel.js"), "{page}");
    let cancelled =
        app.post("/api/v1/payments/paypal/cancel-order", Some(&client.token), &json!({ "orderId": order })).await;
    assert_eq!(cancelled.status, StatusCode::PAYMENT_REQUIRED, "{}", cancelled.body);
    assert_eq!(client.transaction(&transaction).await.data()["failure"]["code"], "payment_cancelled");
    assert_eq!(fake.captures_of(&order), 0);

    // Issue 14: the retry is a new checkout where the payer is signed in; no GET opens a purchase for a token.
    let again = app.http.get(format!("{}/api/v1/payments/paypal/retry?token={order}", app.base)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.count_rows("purchases").await, 1, "nothing new was opened");
}

// The Smart Payment Buttons' JSON path: onCancel records the payer turning back, onApprove captures once.
async fn smart_buttons_capture_and_cancel_by_order(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-buttons");
    let stranger = app.client("pp-stranger");
    let (cancelled, first) = create_order(&client, &fake).await;
    let order = |id: &str| json!({ "orderId": id });
    let theirs = stranger.app.post("/api/v1/payments/paypal/cancel-order", Some(&stranger.token), &order(&first)).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(theirs.error_code(), "transaction_not_found");
    let cancel = app.post("/api/v1/payments/paypal/cancel-order", Some(&client.token), &order(&first)).await;
    assert_eq!(cancel.status, StatusCode::PAYMENT_REQUIRED, "{}", cancel.body);
    assert_eq!(cancel.error_code(), "payment_cancelled");
    assert_eq!(client.transaction(&cancelled).await.data()["status"], "failed");

    let (_, second) = create_order(&client, &fake).await;
    fake.approve(&second, "venmo").await;
    let capture = |id: String| {
        let (app, token) = (&app, client.token.clone());
        async move { app.post("/api/v1/payments/paypal/capture-order", Some(&token), &json!({ "orderId": id })).await }
    };
    let paid = capture(second.clone()).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(paid.data()["creditsAdded"], 240);
    assert_eq!(paid.data()["newBalance"], 240);
    let again = capture(second.clone()).await;
    assert_eq!(again.data()["status"], "succeeded");
    assert_eq!(fake.captures_of(&second), 1);
    assert_eq!(fake.captures_of(&first), 0);
    assert_eq!(client.balance().await, 240);
    let unknown = capture("NOSUCHORDER".into()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

// AC9.2.3: PayPal declines the funding source at capture.
async fn a_declined_capture_shows_the_reason(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-4");
    let (transaction, order) = create_order(&client, &fake).await;
    fake.decline_capture_of(&order);
    let return_url = fake.approve(&order, "paypal").await;
    let (status, page) = land(&app, &return_url).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{page}");
    assert!(page.contains("declined"), "{page}");
    assert!(page.contains(">Try again</a>"), "{page}");
    assert_eq!(client.transaction(&transaction).await.data()["failure"]["code"], "card_declined");
    assert_eq!(client.balance().await, 0);
}

// PayPal answering 500, then slower than the timeout: retried under the same PayPal-Request-Id, captured once.
async fn paypal_faults_are_retried_without_a_double_capture(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-5");
    let (transaction, order) = create_order(&client, &fake).await;
    fake.fail_next_captures(1);
    fake.answer_next_captures_slowly(1);
    let return_url = fake.approve(&order, "paypal").await;
    client.wait_for_status(&transaction, "succeeded").await;
    let (status, page) = land(&app, &return_url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(fake.capture_calls() >= 3, "a 500, a timeout, then the replayed answer");
    assert_eq!(fake.captures_of(&order), 1, "the timed-out capture was replayed, not repeated");
    assert_eq!(client.balance().await, 240);
}

/// PayPal's `PAYMENT.CAPTURE.COMPLETED` event `id` for a capture of `pro-200` ($160) on the purchase's order.
fn capture_completed(id: &str, capture: &str, transaction: &str, order: &str) -> Value {
    let capture = json!({
        "id": capture, "status": "COMPLETED", "custom_id": transaction,
        "amount": { "currency_code": "USD", "value": "160.00" },
        "supplementary_data": { "related_ids": { "order_id": order } },
    });
    json!({ "id": id, "event_version": "1.0", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource_type": "capture",
        "resource": capture })
}

// Duplicate and out-of-order webhooks; a forged one is refused and not stored.
async fn webhooks_are_verified_deduplicated_and_order_independent(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-6");
    let (transaction, order) = create_order(&client, &fake).await;
    let event = capture_completed("WH-DUP-1", "CAPOUTOFORDER1", &transaction, &order);
    let forged = json!({ "id": "WH-FORGED", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": event["resource"] });
    assert_eq!(fake.deliver(&forged, false).await, 400);
    assert_eq!(app.count_rows("webhook_events").await, 0);
    // The capture's news arrives before the approval's, and twice.
    assert_eq!(fake.deliver(&event, true).await, 200);
    assert_eq!(fake.deliver(&event, true).await, 200);
    client.wait_for_status(&transaction, "succeeded").await;
    fake.send(
        "CHECKOUT.ORDER.APPROVED",
        "checkout-order",
        json!({ "id": order, "status": "APPROVED",
        "purchase_units": [{ "custom_id": transaction }] }),
    )
    .await;
    let applied = crate::helpers::eventually(Duration::from_secs(10), || async {
        (app.count_where("webhook_events", "status = 'received'").await == 0
            && app.count_where("webhook_events", "event_type = 'CHECKOUT.ORDER.APPROVED'").await == 1)
            .then_some(())
    });
    assert!(applied.await.is_some(), "the late approval is stored and applied");
    assert_eq!(client.balance().await, 240);
    assert_eq!(app.count_rows("credit_ledger").await, 1);
    assert_eq!(app.count_where("webhook_events", "event_id = 'WH-DUP-1'").await, 1);
}

// A PayPal outage is no attack: a genuine webhook whose signature check PayPal does not answer is refused 503 (PayPal
// sends it again), held against no sender, and applied once PayPal answers.
async fn a_webhook_paypal_cannot_check_is_left_for_its_retry(db: Db) {
    let (app, fake) = paypal_app(db, |s| s.fraud.breach_signature_failures_per_minute = 2).await;
    let client = app.client("pp-outage");
    let (transaction, order) = create_order(&client, &fake).await;
    let event = capture_completed("WH-OUTAGE-1", "CAPOUTAGE1", &transaction, &order);
    fake.set_down(true);
    for _ in 0..4 {
        assert_eq!(fake.deliver(&event, true).await, 503);
    }
    assert_eq!(app.count_rows("webhook_events").await, 0);
    let admin = app.token("admin-outage", Role::Admin);
    let alerts = app.get("/api/v1/admin/alerts", Some(&admin)).await;
    let kinds: Vec<&str> = alerts.data().as_array().unwrap().iter().filter_map(|a| a["kind"].as_str()).collect();
    assert!(!kinds.iter().any(|k| ["breach", "forged_webhooks"].contains(k)), "no attack alerted: {kinds:?}");
    fake.set_down(false);
    assert_eq!(fake.deliver(&event, true).await, 200);
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(client.balance().await, 240);
}

// AC9.2.5: a dispute raised at PayPal reaches the admins with its details.
async fn a_dispute_alerts_admins_with_its_details(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-7");
    let (transaction, capture) = paid_order(&app, &client, &fake).await;
    let dispute = fake.raise_dispute(&capture, "160.00").await;

    let admin = app.token("admin-1", Role::Admin);
    let listed: Value = eventually(Duration::from_secs(5), || async {
        let list = app.get("/api/v1/admin/disputes", Some(&admin)).await;
        list.data().as_array().and_then(|l| l.first().cloned())
    })
    .await
    .expect("the dispute is listed");
    assert_eq!(listed["id"], dispute.as_str());
    assert_eq!(listed["provider"], "paypal");
    assert_eq!(listed["transactionId"], transaction.as_str());
    assert_eq!(listed["clientId"], "pp-7");
    assert_eq!(listed["amount"], 16000);
    assert_eq!(listed["reason"], "MERCHANDISE_OR_SERVICE_NOT_RECEIVED");
    assert_eq!(listed["status"], "needs_response");
    assert_eq!(listed["providerStatus"], "OPEN");
    let one = app.get(&format!("/api/v1/admin/disputes/{dispute}"), Some(&admin)).await;
    assert_eq!(one.data()["details"]["dispute_life_cycle_stage"], "INQUIRY");
    // Issue 17: the disputed capture's seller protection, as PayPal reported it when it was captured.
    assert_eq!(one.data()["sellerProtection"]["status"], "ELIGIBLE", "{}", one.body);
    let covered = &one.data()["sellerProtection"]["disputeCategories"];
    assert_eq!(covered, &serde_json::json!(["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"]));
    assert_eq!(app.count_where("outbox", "kind = 'admin_alert'").await, 1);
    let client_peek = app.get("/api/v1/admin/disputes", Some(&client.token)).await;
    assert_eq!(client_peek.status, StatusCode::FORBIDDEN);
}

// An order the payer never approves expires; coming back afterwards says so.
async fn an_unapproved_order_expires(db: Db) {
    let (app, fake) = paypal_app(db, |s| s.payments.checkout_ttl = Duration::from_millis(700)).await;
    let client = app.client("pp-8");
    let (transaction, order) = create_order(&client, &fake).await;
    client.wait_for_status(&transaction, "expired").await;
    let late = fake.approve(&order, "paypal").await;
    let (status, page) = land(&app, &late).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert!(page.contains("expired"));
    assert_eq!(fake.captures_of(&order), 0);
}

// The default configuration: the sandbox plays PayPal, approval page and webhooks included, with no account.
async fn the_sandbox_plays_paypal_end_to_end(db: Db) {
    let app = crate::helpers::spawn_app(db).await;
    let client = app.client("pp-9");
    let created =
        app.post("/api/v1/payments/paypal/create-order", Some(&client.token), &json!({ "packageId": "pro-200" })).await;
    let approval = created.data()["approvalUrl"].as_str().unwrap().to_owned();
    let order = created.data()["orderId"].as_str().unwrap().to_owned();
    assert_eq!(approval, format!("{}/sandbox/paypal/checkoutnow?token={order}", app.base));
    let (status, page) = land(&app, &approval).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Sandbox") && page.contains("160.00 USD") && page.contains("Approve payment"), "{page}");

    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let approved = browser
        .post(format!("{}/sandbox/paypal/checkoutnow/{order}/approve", app.base))
        .form(&[("funding", "venmo")])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    let back = approved.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&format!("{}/api/v1/payments/paypal/return?token={order}", app.base)));
    let (status, page) = land(&app, &back).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("<strong>240 credits</strong> were added"));
    assert_eq!(client.balance().await, 240);
    let transaction = created.data()["transactionId"].as_str().unwrap();
    assert_eq!(client.transaction(transaction).await.data()["fundingSource"], "venmo");
}

// Issue 17 (7): Pay Later. PayPal's order names it `paypal`; the button the payer chose, which PayPal's buttons pass
// to createOrder, is what the purchase keeps. The sandbox's approval page offers it too, and its order says `paypal`,
// as PayPal's does in the redirect flow.
async fn pay_later_is_recorded_where_paypal_tells_it_apart(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-later");
    let path = "/api/v1/payments/paypal/create-order";
    let wrong =
        app.post(path, Some(&client.token), &json!({ "packageId": "pro-200", "fundingSource": "bitcoin" })).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.error_code(), "invalid_funding_source");
    let created =
        app.post(path, Some(&client.token), &json!({ "packageId": "pro-200", "fundingSource": "paylater" })).await;
    let transaction = created.data()["transactionId"].as_str().unwrap().to_owned();
    let order = created.data()["orderId"].as_str().unwrap().to_owned();
    let return_url = fake.approve(&order, "paylater").await;
    assert_eq!(land(&app, &return_url).await.0, StatusCode::OK);
    let paid = client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(paid["fundingSource"], "paylater", "{paid}");
    let at_paypal: Vec<String> = fake.order(&order)["payment_source"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(at_paypal, ["paypal"]);

    let sandbox = crate::helpers::spawn_app(db).await;
    let client = sandbox.client("pp-later-sandbox");
    let created = sandbox.post(path, Some(&client.token), &json!({ "packageId": "pro-200" })).await;
    let order = created.data()["orderId"].as_str().unwrap().to_owned();
    let page = land(&sandbox, created.data()["approvalUrl"].as_str().unwrap()).await.1;
    assert!(page.contains("Pay Later"), "{page}");
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let approve = format!("{}/sandbox/paypal/checkoutnow/{order}/approve", sandbox.base);
    let approved = browser.post(approve).form(&[("funding", "paylater")]).send().await.unwrap();
    let back = approved.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(land(&sandbox, &back).await.0, StatusCode::OK);
    let transaction = created.data()["transactionId"].as_str().unwrap();
    assert_eq!(client.transaction(transaction).await.data()["fundingSource"], "paypal");
}

/// Checks the adapter against PayPal's real sandbox; runs only with `PAYPAL_CLIENT_ID` and `PAYPAL_CLIENT_SECRET`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_paypal_sandbox_smoke() {
    let (Ok(id), Ok(secret)) = (std::env::var("PAYPAL_CLIENT_ID"), std::env::var("PAYPAL_CLIENT_SECRET")) else {
        println!(
            "skipped: set PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET (a PayPal sandbox app) to run this smoke test"
        );
        return;
    };
    let app = spawn_app_with(Db::Sqlite, move |s| {
        s.payments.paypal_provider = PaypalProviderChoice::Paypal;
        s.paypal.client_id = Some(id);
        s.paypal.client_secret = Some(Secret::new(secret));
        s.paypal.webhook_id =
            Some(std::env::var("PAYPAL_WEBHOOK_ID").unwrap_or_else(|_| "not-used-by-this-test".into()));
    })
    .await;
    let client = app.client("live-1");
    let created = app
        .post("/api/v1/payments/paypal/create-order", Some(&client.token), &json!({ "packageId": "starter-25" }))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(created.data()["approvalUrl"].as_str().unwrap().contains("paypal.com"), "{}", created.body);
}

// AC9.5.3 for PayPal: an approved refund refunds the capture, for the refunded amount.
async fn a_paypal_refund_refunds_the_capture(db: Db) {
    let (app, fake) = paypal_app(db, |_| {}).await;
    let client = app.client("pp-10");
    let (transaction, order) = create_order(&client, &fake).await;
    let return_url = fake.approve(&order, "paypal").await;
    assert_eq!(land(&app, &return_url).await.0, StatusCode::OK);
    let admin = app.token("admin-p", Role::Admin);
    app.post(
        "/api/v1/admin/credits/adjust",
        Some(&admin),
        &json!({ "clientId": "pp-10", "credits": -120, "reason": "usage" }),
    )
    .await;
    let asked = app
        .post(
            "/api/v1/payments/refund",
            Some(&client.token),
            &json!({ "transactionId": transaction, "reason": "Unused" }),
        )
        .await;
    let refund = asked.data()["refundRequestId"].as_str().unwrap().to_owned();
    let approved = app.post(&format!("/api/v1/admin/refunds/{refund}/approve"), Some(&admin), &json!({})).await;
    assert_eq!(approved.data()["status"], "refunded", "{}", approved.body);
    let capture = fake.order(&order)["purchase_units"][0]["payments"]["captures"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(fake.refunds(), vec![(capture, "80.00".to_owned())], "120 of 240 credits unused: half of 160.00");
}

on_both_databases!(
    a_paypal_refund_refunds_the_capture,
    the_sandbox_plays_paypal_end_to_end,
    an_approved_order_is_captured_once,
    the_approval_webhook_captures_when_the_payer_never_returns,
    a_cancelled_payment_comes_back_with_a_retry,
    smart_buttons_capture_and_cancel_by_order,
    a_declined_capture_shows_the_reason,
    paypal_faults_are_retried_without_a_double_capture,
    webhooks_are_verified_deduplicated_and_order_independent,
    a_webhook_paypal_cannot_check_is_left_for_its_retry,
    a_dispute_alerts_admins_with_its_details,
    pay_later_is_recorded_where_paypal_tells_it_apart,
    an_unapproved_order_expires,
);
