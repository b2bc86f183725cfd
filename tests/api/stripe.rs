//! The Stripe provider against localstripe (through the compatibility proxy): a fake nobody here wrote.
use crate::helpers::{Db, TestApp, eventually, spawn_app_with};
use crate::on_both_databases;
use crate::stripe_proxy::StripeProxy;
use purser::settings::{CardProviderChoice, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

const SECRET_KEY: &str = "sk_test_localstripe";
pub(crate) const PUBLISHABLE_KEY: &str = "pk_test_localstripe";
pub(crate) const WEBHOOK_SECRET: &str = "whsec_localstripe_test";

async fn stripe_app(db: Db) -> (TestApp, StripeProxy) {
    stripe_app_with(db, |_| {}).await
}

pub(crate) async fn stripe_app_with(
    db: Db,
    configure: impl FnOnce(&mut purser::settings::Settings) + Send + 'static,
) -> (TestApp, StripeProxy) {
    let proxy = StripeProxy::start().await;
    let api_base = format!("{}/", proxy.base);
    let app = spawn_app_with(db, move |s| {
        configure(s);
        s.payments.card_provider = CardProviderChoice::Stripe;
        // Browsers load localstripe's fake Stripe.js through the proxy too.
        s.stripe.js_url = format!("{api_base}js.stripe.com/v3/");
        s.stripe.api_base = api_base;
        s.stripe.secret_key = Some(Secret::new(SECRET_KEY.into()));
        // Two secrets, as during a rotation: localstripe signs with the second.
        s.stripe.webhook_secret = Some(Secret::new(format!("whsec_old_one,{WEBHOOK_SECRET}")));
    })
    .await;
    let hook_id = format!("purser{}", uuid::Uuid::new_v4().simple());
    proxy.forward_webhooks(&hook_id, WEBHOOK_SECRET, format!("{}/api/v1/webhooks/stripe", app.base)).await;
    (app, proxy)
}

/// A call straight to localstripe, as the browser (Stripe.js) or the Stripe dashboard would make it.
async fn stripe_post(proxy: &StripeProxy, path: &str, form: &[(&str, &str)]) -> Value {
    let answer = reqwest::Client::new()
        .post(format!("{}{path}", proxy.upstream))
        .basic_auth(SECRET_KEY, Some(""))
        .form(form)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "localstripe refused {path}");
    answer.json().await.unwrap()
}

/// What Stripe.js does in the browser: turn a test card into a PaymentMethod. Purser never sees the number.
async fn tokenize(proxy: &StripeProxy, number: &str) -> String {
    let form = [
        ("type", "card"),
        ("card[number]", number),
        ("card[exp_month]", "12"),
        ("card[exp_year]", "2034"),
        ("card[cvc]", "123"),
    ];
    stripe_post(proxy, "/v1/payment_methods", &form).await["id"].as_str().expect("a payment method id").to_owned()
}

pub(crate) async fn at_stripe(proxy: &StripeProxy, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", proxy.upstream))
        .basic_auth(SECRET_KEY, Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

// AC9.1.3 against localstripe: a customer per client, the purchase id in the intent's metadata, credits once.
async fn a_stripe_card_purchase_succeeds(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    let client = app.client("stripe-1");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert!(intent.starts_with("pi_"));
    let paid = client.confirm(&intent, "pro-200").await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(paid.data()["creditsAdded"], 240);
    assert_eq!(paid.data()["newBalance"], 240);

    let stripe_intent = at_stripe(&proxy, &format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(stripe_intent["metadata"]["purchase_id"], crate::helpers::uuid_of(&transaction));
    assert_eq!(stripe_intent["amount"], 16000);
    let customer = stripe_intent["customer"].as_str().expect("the intent has a customer").to_owned();
    assert_eq!(at_stripe(&proxy, &format!("/v1/customers/{customer}")).await["metadata"]["client_id"], "stripe-1");

    // A second purchase reuses the same Customer.
    let (_, second) = client.open("starter-25", "pm_card_visa").await;
    assert_eq!(at_stripe(&proxy, &format!("/v1/payment_intents/{second}")).await["customer"], customer.as_str());

    // localstripe's signed payment_intent.succeeded arrives (after its one-second delay) and changes nothing.
    let delivered = eventually(Duration::from_secs(10), || async {
        (app.count_where("webhook_events", "event_type = 'payment_intent.succeeded' AND status = 'processed'").await
            > 0)
        .then_some(())
    })
    .await;
    assert!(delivered.is_some(), "localstripe's webhook was not verified and applied");
    assert_eq!(client.balance().await, 240);
}

// Issue 17 (1) on Stripe: Radar's outcome on the confirmed charge (which the proxy adds: localstripe has no Radar)
// holds an elevated payment for an admin, with Radar's reason; a normal one pays. (A success that Stripe's webhook
// reports before the confirmation's answer is read back before anything is granted: `domain::purchase`'s tests.)
async fn radar_elevated_risk_holds_a_stripe_payment(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    *proxy.faults.radar.lock().unwrap() =
        Some(json!({ "risk_level": "elevated", "risk_score": 71, "type": "authorized" }));
    let client = app.client("stripe-radar");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    let held = client.confirm(&intent, "pro-200").await;
    assert_eq!(held.data()["status"], "under_review", "{}", held.body);
    let admin = app.token("admin-radar", purser::auth::Role::Admin);
    let seen = app.get(&format!("/api/v1/admin/payments/{transaction}"), Some(&admin)).await;
    assert_eq!(seen.data()["reviewReason"], "Stripe Radar rates this payment's risk elevated, score 71");
    assert_eq!(client.balance().await, 0);
    *proxy.faults.radar.lock().unwrap() = None;
    let (_, normal) = client.open("pro-200", "pm_card_visa").await;
    let paid = client.confirm(&normal, "pro-200").await;
    assert_eq!(paid.data()["status"], "succeeded");
    assert_eq!(client.balance().await, 240);
    // Issue 17 (4): on Stripe, the receipt is Stripe's own page for the charge.
    let receipt = paid.data()["receiptUrl"].as_str().unwrap();
    assert!(receipt.starts_with("https://pay.stripe.com/receipts/"), "{receipt}");
}

// AC9.1.5: 3-D Secure through localstripe's authentication hook, both ways.
async fn stripe_three_d_secure_approve_and_fail(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    let client = app.client("stripe-2");
    for (approve, expected) in [(true, "succeeded"), (false, "failed")] {
        let method = tokenize(&proxy, "4000002760003184").await;
        let (transaction, intent) = client.open("pro-200", &method).await;
        let challenged = client.confirm(&intent, "pro-200").await;
        assert_eq!(challenged.data()["status"], "requires_action", "{}", challenged.body);
        let secret = challenged.data()["clientSecret"].as_str().unwrap().to_owned();
        let form = [("client_secret", secret.as_str()), ("success", if approve { "true" } else { "false" })];
        stripe_post(&proxy, &format!("/v1/payment_intents/{intent}/_authenticate"), &form).await;
        let after = client.confirm(&intent, "pro-200").await;
        if approve {
            assert_eq!(after.data()["status"], "succeeded", "{}", after.body);
        } else {
            assert_eq!(after.status, StatusCode::PAYMENT_REQUIRED, "{}", after.body);
            assert_eq!(after.error_code(), "authentication_failed");
        }
        client.wait_for_status(&transaction, expected).await;
    }
    assert_eq!(client.balance().await, 240);
}

// The Card Element's path: Stripe.js's token becomes a PaymentMethod at Stripe, which pays; a token works once.
async fn a_card_token_becomes_a_payment_method(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    let client = app.client("stripe-token");
    // What stripe.createToken(cardElement) sends, with the publishable key, from the browser through the proxy.
    let form = [
        ("card[number]", "4242424242424242"),
        ("card[exp_month]", "12"),
        ("card[exp_year]", "2034"),
        ("card[cvc]", "123"),
        ("key", PUBLISHABLE_KEY),
    ];
    let token: Value = reqwest::Client::new()
        .post(format!("{}/v1/tokens", proxy.base))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = json!({ "cardToken": token["id"] });
    let made = app.post("/api/v1/payments/methods", Some(&client.token), &token).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.data()["last4"], "4242");
    let method = made.data()["paymentMethodId"].as_str().expect("a method id").to_owned();
    assert!(method.starts_with("pm_"));
    let (_, intent) = client.open("pro-200", &method).await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["newBalance"], 240);

    let reused = app.post("/api/v1/payments/methods", Some(&client.token), &token).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST, "{}", reused.body);
    assert_eq!(reused.error_code(), "token_already_used");
    let card =
        app.post("/api/v1/payments/methods", Some(&client.token), &json!({ "cardToken": "4242 4242 4242 4242" })).await;
    assert_eq!(card.error_code(), "invalid_card_token");
}

// Card testing makes a new PaymentMethod per attempt; the fraud monitor counts the card by Stripe's fingerprint.
async fn card_velocity_follows_the_fingerprint(db: Db) {
    let (app, proxy) = stripe_app_with(db, |s| s.fraud.checkouts_per_card_per_hour = 2).await;
    for buyer in ["fp-1", "fp-2"] {
        let method = tokenize(&proxy, "4242424242424242").await;
        assert_eq!(app.client(buyer).create_intent("starter-25", Some(&method)).await.status, StatusCode::OK);
    }
    let third = tokenize(&proxy, "4242424242424242").await;
    let blocked = app.client("fp-3").create_intent("starter-25", Some(&third)).await;
    assert_eq!(blocked.error_code(), "payment_blocked", "a third new method for the same card");
    assert!(blocked.body["error"]["message"].as_str().unwrap().contains("this card was used for too many payments"));
    let other = tokenize(&proxy, "5555555555554444").await;
    assert_eq!(app.client("fp-3").create_intent("starter-25", Some(&other)).await.status, StatusCode::OK);
}

// AC9.1.4: a card that declines at charge time.
async fn a_stripe_decline_shows_its_reason(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    let client = app.client("stripe-3");
    let method = tokenize(&proxy, "4000000000000341").await;
    let (transaction, intent) = client.open("pro-200", &method).await;
    let declined = client.confirm(&intent, "pro-200").await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED, "{}", declined.body);
    assert_eq!(declined.error_code(), "card_declined");
    assert_eq!(declined.body["error"]["suggestedAction"], "Use a different card or another payment method.");
    assert_eq!(client.transaction(&transaction).await.data()["failure"]["code"], "card_declined");
    assert_eq!(client.balance().await, 0);
}

// Stripe answering 500 is retried with the same idempotency key; an outcome that stays unknown is reconciled.
async fn stripe_faults_are_retried_then_reconciled(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    let client = app.client("stripe-4");
    let (_, intent) = client.open("pro-200", "pm_card_visa").await;
    proxy.faults.fail_next.store(2, Ordering::SeqCst);
    let paid = client.confirm(&intent, "pro-200").await;
    assert_eq!(paid.data()["status"], "succeeded", "two 500s then success: {}", paid.body);

    let (transaction, intent) = client.open("starter-25", "pm_card_visa").await;
    proxy.faults.fail_next.store(3, Ordering::SeqCst);
    let unknown = client.confirm(&intent, "starter-25").await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED, "the outcome is unknown: {}", unknown.body);
    assert_eq!(unknown.data()["status"], "processing");
    // Once Stripe answers again, reconciliation finds the intent unconfirmed and confirms it under the same key.
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(client.balance().await, 240 + 25);
}

// Issue 13 (7): Stripe's permanent refusal (400 invalid_request_error) fails the attempt with a clear error at once;
// it is not retried as if Stripe were down, and the client is not told `processing`.
async fn a_permanent_stripe_refusal_fails_the_payment_at_once(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    let client = app.client("stripe-400");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    proxy.faults.reject_next.store(1, Ordering::SeqCst);
    let refused = client.confirm(&intent, "pro-200").await;
    assert_ne!(refused.status, StatusCode::ACCEPTED, "{}", refused.body);
    assert_eq!(refused.body["success"], false, "{}", refused.body);
    assert_eq!(client.transaction(&transaction).await.data()["status"], "failed");
    assert_eq!(proxy.faults.reject_next.load(Ordering::SeqCst), 0);
    assert_eq!(client.balance().await, 0);
}

// Issue 13 (7): a permanent refusal when reading the payment (here a 400 invalid_request_error on the sync's
// retrieve) stops the payment with a clear failure and one admin alert, instead of being retried as if Stripe were
// down.
async fn a_permanent_refusal_on_a_read_stops_the_payment_with_an_alert(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    let client = app.client("stripe-refused");
    let method = tokenize(&proxy, "4000002760003184").await;
    let (transaction, intent) = client.open("pro-200", &method).await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "requires_action");
    proxy.faults.reject_next.store(1, Ordering::SeqCst);
    let admin = app.token("admin-s", purser::auth::Role::Admin);
    let synced = app.post(&format!("/api/v1/admin/payments/{transaction}/sync"), Some(&admin), &json!({})).await;
    assert_eq!(synced.status, StatusCode::OK, "{}", synced.body);
    assert_eq!(synced.data()["status"], "failed", "{}", synced.body);
    let view = client.transaction(&transaction).await;
    assert_eq!(view.data()["failure"]["code"], "provider_refused", "{}", view.body);
    assert_eq!(app.count_where("alerts", "kind = 'provider_refused'").await, 1);
    assert_eq!(proxy.faults.reject_next.load(Ordering::SeqCst), 0, "read once, not retried");
    assert_eq!(client.balance().await, 0);
}

// Issue 13 (8): Stripe answering 429 past the call's own retries pauses card processing platform-wide (calls held, not
// failed, with an alert and an audit row), and the rate-limit guard lifts the pause by itself once its window has
// passed; the payment then goes through.
async fn a_provider_429_pauses_its_processing_until_the_window_passes(db: Db) {
    let (app, proxy) = stripe_app_with(db, |s| s.limits.provider_throttle_pause = Duration::from_secs(2)).await;
    let admin = app.token("admin-429", purser::auth::Role::Admin);
    let client = app.client("stripe-429");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    proxy.faults.throttle_next.store(3, Ordering::SeqCst);
    let unknown = client.confirm(&intent, "pro-200").await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED, "the outcome is unknown, not failed: {}", unknown.body);
    let paused = eventually(Duration::from_secs(10), || async {
        let controls = app.get("/api/v1/admin/controls", Some(&admin)).await;
        (controls.data()["paused"][0]["by"] == "rate-limiter").then(|| controls.data()["paused"][0].clone())
    });
    let paused = paused.await.expect("the 429 pauses card processing");
    assert_eq!(paused["scope"], "card");
    let refused = app.client("stripe-429-other").create_intent("starter-25", Some("pm_card_visa")).await;
    assert_eq!(refused.error_code(), "payments_paused");
    assert_eq!(app.count_where("alerts", "kind = 'provider_throttled'").await, 1);
    assert_eq!(app.count_where("admin_actions", "action = 'pause' AND admin = 'rate-limiter'").await, 1);

    client.wait_for_status(&transaction, "succeeded").await;
    let controls = app.get("/api/v1/admin/controls", Some(&admin)).await;
    assert_eq!(controls.data()["paused"], json!([]), "lifted by itself");
    assert_eq!(app.count_where("admin_actions", "action = 'resume' AND admin = 'rate-limiter'").await, 1);
    assert_eq!(client.balance().await, 240);
}

// Issue 13 (8): Purser keeps its own outbound budget per real provider; a burst past it is held (card processing
// paused, calls parked), not sent for Stripe to refuse, and goes through once the window has passed.
async fn a_burst_past_the_outbound_budget_is_held_not_sent(db: Db) {
    let (app, _proxy) = stripe_app_with(db, |s| {
        s.limits.stripe_requests_per_second = 1;
        s.limits.provider_throttle_pause = Duration::from_secs(2);
    })
    .await;
    let admin = app.token("admin-budget", purser::auth::Role::Admin);
    let client = app.client("stripe-budget");
    // Each checkout costs a call or two (the card's fingerprint for the fraud screen, the intent): a quick few
    // spend the budget of one a second.
    let mut held = None;
    for _ in 0..5 {
        let answer = client.create_intent("starter-25", Some("pm_card_visa")).await;
        if answer.status != StatusCode::OK {
            held = Some(answer);
            break;
        }
    }
    let held = held.expect("a checkout past the budget is held");
    assert_eq!(held.status, StatusCode::BAD_GATEWAY, "{}", held.body);
    assert_eq!(held.error_code(), "provider_unavailable");
    let transaction = held.body["error"]["transactionId"].as_str().expect("the held purchase's id").to_owned();
    let paused = eventually(Duration::from_secs(10), || async {
        let controls = app.get("/api/v1/admin/controls", Some(&admin)).await;
        (controls.data()["paused"][0]["by"] == "rate-limiter").then_some(())
    });
    assert!(paused.await.is_some(), "the spent budget pauses card processing");
    assert_eq!(app.count_where("alerts", "kind = 'provider_throttled'").await, 1);
    // Once the window has passed, the held create is made.
    client.wait_for_status(&transaction, "requires_confirmation").await;
    let controls = app.get("/api/v1/admin/controls", Some(&admin)).await;
    assert_eq!(controls.data()["paused"], json!([]));
}

// With webhooks dropped on the way, the client's confirm alone settles the purchase.
async fn dropped_webhooks_lose_nothing(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    proxy.faults.drop_webhooks.store(true, Ordering::SeqCst);
    let client = app.client("stripe-5");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    assert_eq!(client.transaction(&transaction).await.data()["creditsGranted"], true);
    assert_eq!(client.balance().await, 240);
}

// AC9.5.3 against localstripe: an approved refund is a Stripe Refund on the PaymentIntent, for the refunded amount.
async fn a_stripe_refund_is_made_at_stripe(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    let client = app.client("stripe-7");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    let body = json!({ "transactionId": transaction, "reason": "Unused credits" });
    let asked = app.post("/api/v1/payments/refund", Some(&client.token), &body).await;
    let refund = asked.data()["refundRequestId"].as_str().unwrap().to_owned();
    let admin = app.token("admin-s", purser::auth::Role::Admin);
    let approved = app.post(&format!("/api/v1/admin/refunds/{refund}/approve"), Some(&admin), &json!({})).await;
    assert_eq!(approved.data()["status"], "refunded", "{}", approved.body);
    let at_stripe_id = approved.data()["providerRefund"].as_str().unwrap().to_owned();
    let made = at_stripe(&proxy, &format!("/v1/refunds/{at_stripe_id}")).await;
    assert_eq!(made["amount"], 16000, "{made}");
    assert_eq!(client.balance().await, 0);
}

// Issue 17, AC9.5.7 on live Stripe: a refund Stripe answers `pending` stays `processing` until Stripe's word. One
// fails days later (`charge.refund.updated`, an expired card): it needs another method, the credits debited at
// approval are back, and the client is mailed. Another succeeds (`refund.updated`): refunded, with its receipt.
async fn a_pending_stripe_refund_settles_on_stripes_word(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    proxy.faults.pending_refunds.store(true, Ordering::SeqCst);
    // localstripe pays every refund at once and says so by webhook: only the test's events may speak here.
    proxy.faults.drop_webhooks.store(true, Ordering::SeqCst);
    let client = app.client_with_email("stripe-pending", "pending@example.com");
    let admin = app.token("admin-p", purser::auth::Role::Admin);
    let mut made = Vec::new();
    for _ in 0..2 {
        let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
        assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
        client.wait_for_status(&transaction, "succeeded").await;
        let body = json!({ "transactionId": transaction, "reason": "Unused credits" });
        let asked = app.post("/api/v1/payments/refund", Some(&client.token), &body).await;
        let refund = asked.data()["refundRequestId"].as_str().unwrap().to_owned();
        let approved = app.post(&format!("/api/v1/admin/refunds/{refund}/approve"), Some(&admin), &json!({})).await;
        assert_eq!(approved.data()["status"], "processing", "pending at Stripe: {}", approved.body);
        made.push((refund, intent, approved.data()["providerRefund"].as_str().unwrap().to_owned()));
    }
    assert_eq!(client.balance().await, 0, "both refunds' credits taken at approval");
    let news = |kind: &str, (intent, at_stripe): (&str, &str), status: &str| {
        json!({
            "id": format!("evt_{}", uuid::Uuid::new_v4().simple()), "object": "event", "type": kind,
            "created": chrono::Utc::now().timestamp(),
            "data": { "object": { "id": at_stripe, "object": "refund", "amount": 16000, "currency": "usd",
                "payment_intent": intent, "status": status,
                "failure_reason": (status == "failed").then_some("expired_or_canceled_card") } },
        })
    };
    let (failed, failed_intent, failed_at_stripe) = &made[0];
    let event = news("charge.refund.updated", (failed_intent, failed_at_stripe), "failed");
    assert_eq!(app.send_signed_event(&event, WEBHOOK_SECRET).await.status, StatusCode::OK);
    let refund_of = |id: &str| {
        let (app, admin, id) = (&app, &admin, id.to_owned());
        async move {
            let queue = app.get("/api/v1/admin/refunds", Some(admin)).await;
            let all = queue.data().as_array().cloned().or_else(|| queue.data()["items"].as_array().cloned());
            all.unwrap_or_default().into_iter().find(|r| r["refundRequestId"] == id.as_str()).unwrap_or_default()
        }
    };
    let settled = crate::helpers::eventually(Duration::from_secs(10), || async {
        let refund = refund_of(failed).await;
        (refund["status"] == "needs_alternative_method").then_some(refund)
    });
    let settled = settled.await.expect("the failed refund needs another method");
    assert_eq!(settled["failure"], "expired_or_canceled_card");
    assert_eq!(client.balance().await, 240, "the failed refund's credits are back");
    // The mail as a reader shows it: quoted-printable's soft line breaks joined.
    let asking = || {
        let mails = std::fs::read_dir(&app.mail_dir).unwrap().flatten();
        let texts = mails.filter_map(|f| std::fs::read_to_string(f.path()).ok());
        let texts = texts.map(|t| t.replace("=\r\n", "").replace("=\n", ""));
        texts.filter(|t| t.contains("We need another way to refund you") && t.contains(failed.as_str())).collect()
    };
    let asked = crate::helpers::eventually(Duration::from_secs(10), || async {
        let found: Vec<String> = asking();
        (!found.is_empty()).then_some(found)
    });
    let asking = asked.await.expect("the client is asked for another method");
    assert_eq!(asking.len(), 1, "once");
    assert!(asking[0].contains("240 credits taken back for it are on your balance again"), "{}", asking[0]);

    let (paid, paid_intent, paid_at_stripe) = &made[1];
    let event = news("refund.updated", (paid_intent, paid_at_stripe), "succeeded");
    assert_eq!(app.send_signed_event(&event, WEBHOOK_SECRET).await.status, StatusCode::OK);
    let refunded = crate::helpers::eventually(Duration::from_secs(10), || async {
        (refund_of(paid).await["status"] == "refunded").then_some(())
    });
    assert!(refunded.await.is_some(), "the succeeded refund is refunded");
    // Each event is marked applied by the refund's step that applied it, so no later write is waited for here.
    let applied = format!("event_id = '{}' AND status = 'processed'", event["id"].as_str().unwrap());
    assert_eq!(app.count_where("webhook_events", &applied).await, 1, "the refund's event is marked with its step");
    assert!(app.mail_containing(&format!("Provider reference: {paid_at_stripe}")).await.is_some(), "its receipt");
    assert_eq!(client.balance().await, 240, "one refund paid, one given back");
}

// AC9.6.7: the webhook never came; an admin's manual sync reads the intent at Stripe and settles the purchase.
async fn a_manual_sync_settles_a_purchase_whose_webhook_was_lost(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    proxy.faults.drop_webhooks.store(true, Ordering::SeqCst);
    let client = app.client("stripe-8");
    let method = tokenize(&proxy, "4000002760003184").await;
    let (transaction, intent) = client.open("pro-200", &method).await;
    let challenged = client.confirm(&intent, "pro-200").await;
    assert_eq!(challenged.data()["status"], "requires_action", "{}", challenged.body);
    let secret = challenged.data()["clientSecret"].as_str().unwrap().to_owned();
    stripe_post(
        &proxy,
        &format!("/v1/payment_intents/{intent}/_authenticate"),
        &[("client_secret", &secret), ("success", "true")],
    )
    .await;
    let lost = eventually(Duration::from_secs(10), || async {
        let dropped = proxy.faults.dropped.lock().unwrap();
        dropped
            .iter()
            .any(|e| e["type"] == "payment_intent.succeeded" && e["data"]["object"]["id"] == intent.as_str())
            .then_some(())
    });
    assert!(lost.await.is_some(), "Stripe sent the success, and it was lost");
    let unsettled = client.transaction(&transaction).await;
    assert_eq!(unsettled.data()["status"], "requires_action", "no webhook, no news: {}", unsettled.body);
    let admin = app.token("admin-sync", purser::auth::Role::Admin);
    let synced = app
        .post(
            &format!("/api/v1/admin/payments/{transaction}/sync"),
            Some(&admin),
            &json!({ "reason": "missed webhook" }),
        )
        .await;
    assert_eq!(synced.data()["status"], "succeeded", "{}", synced.body);
    assert_eq!(synced.data()["dashboardUrl"], format!("https://dashboard.stripe.com/test/payments/{intent}"));
    assert_eq!(client.balance().await, 240);
}

// A provider that stops answering opens its circuit: new checkouts get 503 at once, the payment in flight waits and
// succeeds once Stripe is back, and a probe after the cooldown closes the circuit.
async fn a_sick_provider_opens_the_circuit_and_no_payment_fails(db: Db) {
    let (app, proxy) = stripe_app_with(db, |s| {
        s.circuit.failures = 2;
        s.circuit.cooldown = Duration::from_secs(1);
    })
    .await;
    let client = app.client("stripe-9");
    let (in_flight, intent) = client.open("pro-200", "pm_card_visa").await;
    proxy.faults.fail_next.store(10_000, Ordering::SeqCst);
    assert_eq!(client.confirm(&intent, "pro-200").await.status, StatusCode::ACCEPTED);
    let opened = eventually(Duration::from_secs(20), || async {
        let refused = client.create_intent("starter-25", Some("pm_card_visa")).await;
        (refused.status == StatusCode::SERVICE_UNAVAILABLE).then_some(refused)
    })
    .await
    .expect("the circuit opened");
    assert_eq!(opened.error_code(), "provider_unavailable");
    assert!(opened.body["error"]["message"].as_str().unwrap().contains("PayPal is still available"));
    let admin = app.token("admin-c", purser::auth::Role::Admin);
    assert_eq!(app.get("/api/v1/admin/alerts", Some(&admin)).await.data()[0]["kind"], "circuit_opened");

    proxy.faults.fail_next.store(0, Ordering::SeqCst);
    client.wait_for_status(&in_flight, "succeeded").await;
    let closed = eventually(Duration::from_secs(10), || async {
        let probe = client.create_intent("starter-25", Some("pm_card_visa")).await;
        (probe.status == StatusCode::OK).then_some(())
    })
    .await;
    assert!(closed.is_some(), "a probe after the cooldown closes the circuit");
    assert_eq!(client.create_intent("starter-25", Some("pm_card_visa")).await.status, StatusCode::OK);
    assert_eq!(app.count_where("purchases", "status = 'failed'").await, 0, "no payment failed");
}

// Issue 13 (8): with every rail's circuit open the platform is paused (an alert and an audit row), since nothing can
// be paid; the breaker probes each provider itself, and the first to answer lifts the pause the same way.
async fn every_rail_down_pauses_the_platform_until_a_probe_succeeds(db: Db) {
    let paypal = crate::paypal_fake::PaypalFake::start().await;
    let base = paypal.base.clone();
    let (app, proxy) = stripe_app_with(db, move |s| {
        crate::paypal::use_paypal_fake(s, &base);
        s.circuit.failures = 2;
        s.circuit.cooldown = Duration::from_secs(1);
    })
    .await;
    let client = app.client("all-down-1");
    proxy.faults.fail_next.store(1_000_000, Ordering::SeqCst);
    paypal.set_down(true);
    let order = json!({ "packageId": "starter-25" });
    let paused = eventually(Duration::from_secs(60), || async {
        let card = client.create_intent("starter-25", Some("pm_card_visa")).await;
        app.post("/api/v1/payments/paypal/create-order", Some(&client.token), &order).await;
        (card.error_code() == "payments_paused").then_some(card)
    })
    .await
    .expect("the platform is paused");
    assert!(paused.body["error"]["message"].as_str().unwrap().contains("circuit"), "{}", paused.body);
    let by_breaker =
        |action: &str| format!("admin = 'circuit-breaker' AND action = '{action}' AND target = 'platform'");
    assert_eq!(app.count_where("admin_actions", &by_breaker("pause")).await, 1);
    assert_eq!(app.count_where("alerts", "kind = 'all_rails_down'").await, 1);

    // Stripe answers again: its probe closes the card circuit and lifts the pause; PayPal's stays open.
    proxy.faults.fail_next.store(0, Ordering::SeqCst);
    let resumed = eventually(Duration::from_secs(20), || async {
        let card = client.create_intent("starter-25", Some("pm_card_visa")).await;
        (card.status == StatusCode::OK).then_some(())
    });
    assert!(resumed.await.is_some(), "a probe that succeeds resumes the platform");
    assert_eq!(app.count_where("admin_actions", &by_breaker("resume")).await, 1);
    assert_eq!(app.count_where("alerts", "kind = 'all_rails_down_lifted'").await, 1);
    // Refused either by the open circuit (503) or, once its cooldown has passed, as the half-open trial that PayPal
    // leaves unanswered (502): which one depends on the timing, the refusal does not.
    let still_down = app.post("/api/v1/payments/paypal/create-order", Some(&client.token), &order).await;
    assert!(
        [StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_GATEWAY].contains(&still_down.status),
        "{}",
        still_down.body
    );
    assert_eq!(still_down.error_code(), "provider_unavailable");
    assert_eq!(app.count_where("admin_actions", &by_breaker("pause")).await, 1, "paused once");
}

// The scheduled reconciler does on its own what the manual sync does: a lost webhook is found and settled.
async fn the_reconciler_settles_a_purchase_whose_webhook_was_lost(db: Db) {
    let (app, proxy) = stripe_app_with(db, |s| {
        s.payments.reconcile_every = Duration::from_millis(200);
        s.payments.reconcile_after = Duration::from_millis(500);
    })
    .await;
    proxy.faults.drop_webhooks.store(true, Ordering::SeqCst);
    let client = app.client("stripe-10");
    let method = tokenize(&proxy, "4000002760003184").await;
    let (transaction, intent) = client.open("pro-200", &method).await;
    let secret = client.confirm(&intent, "pro-200").await.data()["clientSecret"].as_str().unwrap().to_owned();
    stripe_post(
        &proxy,
        &format!("/v1/payment_intents/{intent}/_authenticate"),
        &[("client_secret", &secret), ("success", "true")],
    )
    .await;
    let view = client.wait_for_status(&transaction, "succeeded").await;
    assert!(view["events"].as_array().unwrap().iter().any(|e| e["kind"] == "manual_sync"), "settled by a sync");
    assert_eq!(client.balance().await, 240);
    // AC9.6.7: the missed webhook is an admin alert, once.
    let alerted =
        format!("kind = 'missed_webhook' AND key = 'missed_webhook:{}'", crate::helpers::uuid_of(&transaction));
    let raised = eventually(Duration::from_secs(10), || async {
        (app.count_where("alerts", &alerted).await == 1).then_some(())
    });
    assert!(raised.await.is_some(), "the missed webhook is alerted");
    assert_eq!(app.count_where("alerts", "kind = 'missed_webhook'").await, 1);
}

on_both_databases!(
    every_rail_down_pauses_the_platform_until_a_probe_succeeds,
    a_burst_past_the_outbound_budget_is_held_not_sent,
    a_provider_429_pauses_its_processing_until_the_window_passes,
    a_permanent_refusal_on_a_read_stops_the_payment_with_an_alert,
    a_permanent_stripe_refusal_fails_the_payment_at_once,
    the_reconciler_settles_a_purchase_whose_webhook_was_lost,
    a_sick_provider_opens_the_circuit_and_no_payment_fails,
    a_manual_sync_settles_a_purchase_whose_webhook_was_lost,
    a_stripe_refund_is_made_at_stripe,
    a_pending_stripe_refund_settles_on_stripes_word,
    a_stripe_card_purchase_succeeds,
    radar_elevated_risk_holds_a_stripe_payment,
    stripe_three_d_secure_approve_and_fail,
    a_stripe_decline_shows_its_reason,
    a_card_token_becomes_a_payment_method,
    card_velocity_follows_the_fingerprint,
    stripe_faults_are_retried_then_reconciled,
    dropped_webhooks_lose_nothing,
    stripe_saved_cards_one_click_and_account_deletion,
);

/// Stripe's `payment_method.attached`, which localstripe does not send: the test signs it, shaped as Stripe documents.
async fn send_attached(app: &TestApp, method: &Value) {
    let event = json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "type": "payment_method.attached",
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": method },
    });
    assert_eq!(app.send_signed_event(&event, WEBHOOK_SECRET).await.status, StatusCode::OK);
}

// AC9.1.6, AC9.1.7, AC9.3.3, AC9.3.6 against localstripe.
async fn stripe_saved_cards_one_click_and_account_deletion(db: Db) {
    let (app, proxy) = stripe_app(db).await;
    let client = app.client("stripe-6");
    let method = tokenize(&proxy, "4242424242424242").await;
    let body = json!({ "packageId": "pro-200", "paymentMethodId": method, "savePaymentMethod": true });
    let intent = app.post("/api/v1/payments/stripe/intent", Some(&client.token), &body).await;
    let intent_id = intent.data()["paymentIntentId"].as_str().unwrap().to_owned();
    assert_eq!(client.confirm(&intent_id, "pro-200").await.data()["status"], "succeeded");

    // Stripe attaches the method to the customer (setup_future_usage) and tells Purser.
    let customer =
        at_stripe(&proxy, &format!("/v1/payment_intents/{intent_id}")).await["customer"].as_str().unwrap().to_owned();
    let attached =
        stripe_post(&proxy, &format!("/v1/payment_methods/{method}/attach"), &[("customer", &customer)]).await;
    assert_eq!(attached["customer"], customer.as_str());
    send_attached(&app, &attached).await;
    let saved = app.get("/api/v1/payments/methods", Some(&client.token)).await;
    assert_eq!(saved.data()[0]["id"], method.as_str());
    assert_eq!(saved.data()[0]["last4"], "4242");
    assert_eq!(saved.data()[0]["brand"], "visa");

    let one_click = json!({ "packageId": "starter-25", "paymentMethodId": method, "confirm": true });
    let bought = app.post("/api/v1/payments/stripe/intent", Some(&client.token), &one_click).await;
    assert_eq!(bought.data()["status"], "succeeded", "{}", bought.body);
    assert_eq!(bought.data()["newBalance"], 265);

    let deleted = app.delete("/api/v1/payments/account-data", &client.token).await;
    assert_eq!(deleted.data()["methodsRemoved"], 1);
    assert_eq!(deleted.data()["customerDeleted"], true);
    assert!(
        at_stripe(&proxy, &format!("/v1/payment_methods/{method}")).await["customer"].is_null(),
        "detached at Stripe"
    );
    let gone = at_stripe(&proxy, &format!("/v1/customers/{customer}")).await;
    assert!(gone.get("error").is_some() || gone["deleted"] == true, "customer deleted at Stripe: {gone}");
    assert!(app.get("/api/v1/payments/methods", Some(&client.token)).await.data().as_array().unwrap().is_empty());
    // Both removals were provider calls like any other: budgeted, seen by the circuit breaker, timed.
    let admin = app.token("admin-metrics", purser::auth::Role::Admin);
    let metrics = app.http.get(format!("{}/metrics", app.base)).bearer_auth(admin).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for operation in ["detach_method", "delete_customer"] {
        let line = format!("purser_provider_call_seconds_count{{rail=\"card\",operation=\"{operation}\"}} 1");
        assert!(metrics.lines().any(|l| l == line), "{line} in /metrics");
    }
}
