//! Pauses and rate limits (issue 6): what stops payments, and that it stops nothing else.
use crate::helpers::{Db, TestApp, eventually, spawn_app, spawn_app_with};
use crate::on_both_databases;
use purser::auth::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

async fn a_pause_stops_new_checkouts_survives_a_restart_and_resumes(db: Db) {
    let app = spawn_app(db).await;
    let admin = app.token("admin-g", Role::Admin);
    let client = app.client("guarded-1");
    let not_admin =
        app.post("/api/v1/admin/controls/pause", Some(&client.token), &json!({ "scope": "card", "reason": "x" })).await;
    assert_eq!(not_admin.status, StatusCode::FORBIDDEN);
    let paused = app
        .post("/api/v1/admin/controls/pause", Some(&admin), &json!({ "scope": "card", "reason": "Card testing wave" }))
        .await;
    assert_eq!(paused.data()["paused"][0]["scope"], "card");

    let refused = client.create_intent("pro-200", Some("pm_card_visa")).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.error_code(), "payments_paused");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Card testing wave") && message.contains("PayPal is still available"), "{message}");
    let paypal =
        app.post("/api/v1/payments/paypal/create-order", Some(&client.token), &json!({ "packageId": "pro-200" })).await;
    assert_eq!(paypal.status, StatusCode::OK, "the other rail stays open");
    assert_eq!(app.count_where("admin_actions", "action = 'pause' AND admin = 'admin-g'").await, 1);

    // A second process on the same database sees the pause.
    let url = app.database.url.clone();
    let restarted = spawn_app_with(db, move |s| s.database.url = url).await;
    let client = restarted.client("guarded-1");
    assert_eq!(client.create_intent("pro-200", Some("pm_card_visa")).await.status, StatusCode::SERVICE_UNAVAILABLE);
    let admin = restarted.token("admin-g", Role::Admin);
    restarted
        .post("/api/v1/admin/controls/resume", Some(&admin), &json!({ "scope": "card", "reason": "Wave over" }))
        .await;
    assert_eq!(client.create_intent("pro-200", Some("pm_card_visa")).await.status, StatusCode::OK);

    // Issue 16: the first node, still running, reads the pauses back every second, so the resume on the second node
    // and then a platform pause there reach it within about a second, with no restart.
    let first_admin = app.token("admin-g", Role::Admin);
    let pauses_on_first =
        || async { app.get("/api/v1/admin/controls", Some(&first_admin)).await.data()["paused"].clone() };
    let resumed = eventually(Duration::from_secs(3), || async { (pauses_on_first().await == json!([])).then_some(()) });
    assert!(resumed.await.is_some(), "the resume reached the first node");
    assert_eq!(app.client("guarded-1").create_intent("pro-200", Some("pm_card_visa")).await.status, StatusCode::OK);
    let maintenance = json!({ "scope": "platform", "reason": "Maintenance elsewhere" });
    restarted.post("/api/v1/admin/controls/pause", Some(&admin), &maintenance).await;
    let paused = eventually(Duration::from_secs(3), || async {
        (pauses_on_first().await[0]["reason"] == "Maintenance elsewhere").then_some(())
    });
    assert!(paused.await.is_some(), "the pause reached the first node");
    let refused = app.client("guarded-1").create_intent("pro-200", Some("pm_card_visa")).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "payments_paused"));
}

// In-flight payments wait through a pause; they do not fail.
async fn an_in_flight_payment_waits_for_the_resume(db: Db) {
    let app = spawn_app_with(db, |s| s.payments.retry_base = Duration::from_millis(300)).await;
    let admin = app.token("admin-g", Role::Admin);
    let client = app.client("guarded-2");
    let (transaction, intent) = client.open("pro-200", "pm_sandbox_transientProcessingError").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.status, StatusCode::ACCEPTED);
    app.post("/api/v1/admin/controls/pause", Some(&admin), &json!({ "scope": "platform", "reason": "Maintenance" }))
        .await;
    // The retry falls due during the pause and is held, not sent.
    let held = eventually(Duration::from_secs(10), || async {
        (app.count_where("purchase_events", "kind = 'held_by_pause'").await >= 1).then_some(())
    });
    assert!(held.await.is_some(), "the retry is held by the pause");
    assert_eq!(client.transaction(&transaction).await.data()["status"], "processing", "held, not failed");
    app.post("/api/v1/admin/controls/resume", Some(&admin), &json!({ "scope": "platform", "reason": "Done" })).await;
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(client.balance().await, 240);
}

// Issue 13 (5): an actor held up by a slow provider answers no one for a while; a request for it gets 503 `busy`
// with Retry-After instead of hanging, and its input is applied once the actor is free.
async fn a_held_up_actor_answers_busy_instead_of_hanging(db: Db) {
    let app = spawn_app(db).await;
    let (transaction, intent) = app.client("busy-1").open("pro-200", "pm_card_visa").await;
    // The provider turns slow: a confirm takes longer than a caller waits.
    let app = app
        .restart(|s| {
            s.sandbox.latency_ms = 1500;
            s.payments.actor_call_timeout = Duration::from_millis(300);
        })
        .await;
    let client = app.client("busy-1");
    let busy = client.confirm(&intent, "pro-200").await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE, "{}", busy.body);
    assert_eq!(busy.error_code(), "busy");
    assert_eq!(busy.headers["retry-after"], "1");
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(client.balance().await, 240);
}

// Issue 13 (5): a pause parks the held provider call as a deadline, so the purchase's actor keeps answering: an
// admin's sync of a payment held by the pause answers at once, and the payment goes through after the resume.
async fn a_pause_holds_the_call_not_the_actor(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.payments.retry_base = Duration::from_millis(200);
        s.payments.actor_call_timeout = Duration::from_secs(2);
    })
    .await;
    let admin = app.token("admin-park", Role::Admin);
    let client = app.client("park-1");
    let (transaction, intent) = client.open("pro-200", "pm_sandbox_transientProcessingError").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.status, StatusCode::ACCEPTED);
    app.post("/api/v1/admin/controls/pause", Some(&admin), &json!({ "scope": "platform", "reason": "Maintenance" }))
        .await;
    // The automatic retry falls due during the pause and is held: parked, with a line in the history.
    let parked = eventually(Duration::from_secs(10), || async {
        (app.count_where("purchase_events", "kind = 'held_by_pause'").await >= 2).then_some(())
    })
    .await;
    assert!(parked.is_some(), "the held confirmation is parked, again and again while the pause lasts");
    let sync = format!("/api/v1/admin/payments/{transaction}/sync");
    let synced = app.post(&sync, Some(&admin), &json!({ "reason": "where is it" })).await;
    assert_eq!(synced.status, StatusCode::OK, "the actor answers during the pause: {}", synced.body);
    assert_eq!(synced.data()["status"], "processing");
    app.post("/api/v1/admin/controls/resume", Some(&admin), &json!({ "scope": "platform", "reason": "Done" })).await;
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(client.balance().await, 240);
}

async fn a_client_over_its_rate_gets_429_and_others_do_not(db: Db) {
    let app = spawn_app_with(db, |s| s.limits.checkout_per_client_per_minute = 3).await;
    let greedy = app.client("greedy");
    for _ in 0..3 {
        assert_eq!(greedy.create_intent("starter-25", None).await.status, StatusCode::OK);
    }
    let limited = greedy.create_intent("starter-25", None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.error_code(), "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=21).contains(&retry_after), "{retry_after}");
    assert_eq!(app.client("patient").create_intent("starter-25", None).await.status, StatusCode::OK);
}

// AC9.3.4, AC9.6.6: the fraud monitor blocks what its rules catch, and only that client.
async fn the_fraud_monitor_blocks_velocity_amount_and_radar(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.fraud.checkouts_per_hour = 2;
        s.fraud.max_amount = 50_000;
    })
    .await;
    let fast = app.client("fast");
    for _ in 0..2 {
        assert_eq!(fast.create_intent("starter-25", None).await.status, StatusCode::OK);
    }
    let blocked = fast.create_intent("starter-25", None).await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN);
    assert_eq!(blocked.error_code(), "payment_blocked");
    assert!(blocked.body["error"]["message"].as_str().unwrap().contains("too many payments"));
    let other = app.client("calm");
    assert_eq!(
        other.create_intent("scale-1000", None).await.error_code(),
        "payment_blocked",
        "70000 is over the 50000 limit"
    );
    assert_eq!(other.create_intent("pro-200", Some("pm_card_visa")).await.status, StatusCode::OK);
    assert_eq!(app.count_rows("purchases").await, 3, "blocked checkouts write nothing");
}

// Velocity per IP address and per card, and many cards for one client, each stop a checkout.
async fn the_fraud_monitor_counts_networks_cards_and_card_hopping(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.fraud.checkouts_per_card_per_hour = 2;
        s.fraud.cards_per_client_per_hour = 2;
        s.fraud.checkouts_per_ip_per_hour = 7;
    })
    .await;
    let message = |answer: &crate::helpers::Answer| answer.body["error"]["message"].as_str().unwrap_or("").to_owned();
    for user in ["first", "second"] {
        assert_eq!(app.client(user).create_intent("starter-25", Some("pm_card_visa")).await.status, StatusCode::OK);
    }
    let third = app.client("third").create_intent("starter-25", Some("pm_card_visa")).await;
    assert_eq!(third.error_code(), "payment_blocked");
    assert!(message(&third).contains("this card was used for too many payments"), "{}", third.body);
    // Stripe's cards by issuing country are cards of their own: the Visa's count does not hold the Japanese one.
    let third = app.client("third");
    let (_, intent) = third.open("starter-25", "pm_card_jp").await;
    assert_eq!(third.confirm(&intent, "starter-25").await.data()["status"], "succeeded");
    assert_eq!(third.balance().await, 25);

    let hopper = app.client("hopper");
    for card in ["pm_card_mastercard", "pm_card_amex"] {
        assert_eq!(hopper.create_intent("starter-25", Some(card)).await.status, StatusCode::OK);
    }
    assert_eq!(hopper.create_intent("starter-25", Some("pm_card_amex")).await.status, StatusCode::OK, "a card reused");
    let hopping = hopper.create_intent("starter-25", Some("pm_card_discover")).await;
    assert!(message(&hopping).contains("too many different cards"), "{}", hopping.body);

    // Six checkouts from 127.0.0.1 so far: one more passes, the eighth is refused whoever asks.
    assert_eq!(app.client("fourth").create_intent("starter-25", None).await.status, StatusCode::OK);
    let crowded = app.client("fifth").create_intent("starter-25", None).await;
    assert!(message(&crowded).contains("from this network"), "{}", crowded.body);
    assert_eq!(app.count_rows("purchases").await, 7, "blocked checkouts write nothing");
}

// A restart (a deploy) does not wipe the last hour: checkouts and declines are read back from the purchases.
async fn the_fraud_monitor_remembers_the_last_hour_across_a_restart(db: Db) {
    let rules = |s: &mut purser::settings::Settings| {
        s.fraud.checkouts_per_hour = 3;
        s.fraud.declines_per_hour = 2;
    };
    let app = spawn_app_with(db, rules).await;
    for _ in 0..2 {
        assert_eq!(app.client("busy").create_intent("starter-25", Some("pm_card_visa")).await.status, StatusCode::OK);
        let tester = app.client("tester");
        let (_, intent) = tester.open("starter-25", "pm_card_visa_chargeDeclined").await;
        assert_eq!(tester.confirm(&intent, "starter-25").await.error_code(), "card_declined");
    }

    let app = app.restart(rules).await;
    let busy = app.client("busy");
    assert_eq!(busy.create_intent("starter-25", Some("pm_card_visa")).await.status, StatusCode::OK, "the third");
    let fourth = busy.create_intent("starter-25", Some("pm_card_visa")).await;
    assert_eq!(fourth.error_code(), "payment_blocked", "two before the restart and one after make three");
    let tester = app.client("tester").create_intent("starter-25", Some("pm_card_visa")).await;
    assert_eq!(tester.error_code(), "payment_blocked", "two declines before the restart");
}

// AC9.3.7: webhooks failing verification spend their sender's budget (then 429), and a burst of them is a breach.
/// A forged Stripe webhook from `sender`, a loopback address of its own, so the service sees a sender of its own.
/// Returns the error code.
async fn forge_from(app: &TestApp, sender: [u8; 4]) -> String {
    webhook_from(app, sender, "whsec_not_ours").await
}

/// A Stripe webhook signed with `secret` from `sender`; the error code, or "" when accepted.
async fn webhook_from(app: &TestApp, sender: [u8; 4], secret: &str) -> String {
    let http = reqwest::Client::builder().local_address(std::net::IpAddr::from(sender)).build().unwrap();
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let body = json!({ "id": id, "type": "customer.created", "data": { "object": {} } }).to_string();
    let signature = purser::domain::signature::sign(body.as_bytes(), secret, chrono::Utc::now().timestamp());
    let answer = http
        .post(format!("{}/api/v1/webhooks/stripe", app.base))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let limited = answer.status() == StatusCode::TOO_MANY_REQUESTS;
    assert!(!limited || answer.headers().contains_key("retry-after"));
    let body: serde_json::Value = answer.json().await.unwrap();
    body["error"]["code"].as_str().unwrap_or_default().to_owned()
}

// Issue 14: a thousand forged webhooks from one address: past its budget the sender is turned away, nothing is
// paused, and genuine webhooks from another address are still accepted.
async fn a_flood_of_forged_webhooks_from_one_address_pauses_nothing(db: Db) {
    let app = spawn_app(db).await;
    let mut limited = 0;
    let started = std::time::Instant::now();
    for _ in 0..1000 {
        match forge_from(&app, [127, 0, 0, 1]).await.as_str() {
            "rate_limited" => limited += 1,
            code => assert_eq!(code, "invalid_signature"),
        }
    }
    // The budget is 20 a minute, refilled as time passes: a slow machine earns the sender a few more.
    let budget = 20 + 20 * (started.elapsed().as_secs() / 60 + 1) as usize;
    assert!(limited >= 1000 - budget, "past its budget ({budget}) the sender gets 429: {limited}");
    assert_eq!(webhook_from(&app, [127, 0, 0, 2], crate::helpers::WEBHOOK_SECRET).await, "", "a genuine webhook");
    let bystander = app.client("flood-bystander");
    bystander.create_intent("starter-25", Some("pm_card_visa")).await;
    let open = bystander.create_intent("starter-25", Some("pm_card_visa")).await;
    assert_eq!(open.status, StatusCode::OK, "payments keep running: {}", open.body);
    assert_eq!(app.count_where("alerts", "kind = 'breach'").await, 0);
}

// AC9.3.7 and issue 14: each sender has a budget of failed verifications (then 429); the failures within budgets
// count towards a breach, so one sender alone cannot pause the platform but a burst from several does.
async fn forged_webhooks_are_limited_and_a_burst_pauses_payments(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.limits.bad_webhooks_per_ip_per_minute = 3;
        s.fraud.breach_signature_failures_per_minute = 5;
    })
    .await;
    let mut codes = vec![];
    for _ in 0..8 {
        codes.push(forge_from(&app, [127, 0, 0, 1]).await);
    }
    assert_eq!(codes[..4], ["invalid_signature", "invalid_signature", "invalid_signature", "rate_limited"]);
    assert!(codes[4..].iter().all(|c| c == "rate_limited"), "{codes:?}");
    assert_eq!(forge_from(&app, [127, 0, 0, 2]).await, "invalid_signature");
    // Four failures counted: the first checkout's screening waits behind them in the fraud monitor's mailbox, so the
    // second sees whatever they caused.
    let bystander = app.client("bystander");
    bystander.create_intent("starter-25", Some("pm_card_visa")).await;
    let open = bystander.create_intent("starter-25", Some("pm_card_visa")).await;
    assert_eq!(open.status, StatusCode::OK, "one sender past its budget does not pause payments: {}", open.body);

    assert_eq!(forge_from(&app, [127, 0, 0, 3]).await, "invalid_signature");
    let paused = eventually(Duration::from_secs(10), || async {
        let answer = bystander.create_intent("starter-25", Some("pm_card_visa")).await;
        (answer.body["error"]["code"] == "payments_paused").then_some(answer)
    });
    assert!(paused.await.is_some(), "the burst from several senders pauses payments");
    let admin = app.token("admin-w", Role::Admin);
    let alerts = app.get("/api/v1/admin/alerts", Some(&admin)).await;
    assert_eq!(alerts.data()[0]["kind"], "breach");
    assert!(alerts.data()[0]["details"]["reason"].as_str().unwrap().contains("bad signatures"), "{}", alerts.body);
}

// Issue 14: a new payment method on confirm is screened like a new checkout, and one checkout takes a bounded
// number of attempts: no card testing through one purchase.
async fn confirm_screens_each_new_card_and_caps_attempts(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.fraud.declines_per_hour = 2;
        s.payments.max_attempts_per_purchase = 3;
    })
    .await;
    let tester = app.client("one-checkout-tester");
    let (_, intent) = tester.open("starter-25", "pm_card_visa_chargeDeclined").await;
    assert_eq!(tester.confirm(&intent, "starter-25").await.status, StatusCode::PAYMENT_REQUIRED);
    let with =
        |method: &str| json!({ "paymentIntentId": intent, "packageId": "starter-25", "paymentMethodId": method });
    let new_card = with("pm_card_visa_chargeDeclinedInsufficientFunds");
    let second = app.post("/api/v1/payments/confirm", Some(&tester.token), &new_card).await;
    assert_eq!(second.status, StatusCode::PAYMENT_REQUIRED, "{}", second.body);
    // Two declines within the hour: the next card is refused before it reaches the provider.
    let third = app.post("/api/v1/payments/confirm", Some(&tester.token), &with("pm_card_visa")).await;
    assert_eq!(third.status, StatusCode::FORBIDDEN, "{}", third.body);
    assert_eq!(third.error_code(), "payment_blocked");

    let patient = app.client("one-checkout-retrier");
    let (transaction, intent) = patient.open("starter-25", "pm_card_visa_chargeDeclined").await;
    for _ in 0..2 {
        assert_eq!(patient.confirm(&intent, "starter-25").await.status, StatusCode::PAYMENT_REQUIRED);
        patient.retry(&intent, "starter-25").await;
    }
    let capped = patient.retry(&intent, "starter-25").await;
    assert_eq!(capped.status, StatusCode::CONFLICT, "{}", capped.body);
    assert_eq!(capped.error_code(), "too_many_attempts");
    assert_eq!(patient.transaction(&transaction).await.data()["attempts"], 3);
}

// Issue 14: behind a trusted proxy each client keeps its own per-IP budget (the right-most untrusted
// X-Forwarded-For hop); from anyone else the header is ignored, so a forged one buys nothing.
/// A checkout by client `n`, forwarded for `forwarded` (as a proxy would write `X-Forwarded-For`).
async fn forwarded_checkout(app: &TestApp, n: usize, forwarded: &str) -> StatusCode {
    let token = app.token(&format!("proxied-{n}"), Role::Client);
    let body = json!({ "packageId": "starter-25", "paymentMethodId": "pm_card_visa" }).to_string();
    let headers = [("content-type", "application/json"), ("x-forwarded-for", forwarded)];
    app.post_raw("/api/v1/payments/stripe/intent", Some(&token), &headers, body).await.status
}

async fn clients_behind_a_trusted_proxy_are_limited_each_and_forged_headers_change_nothing(db: Db) {
    let send = forwarded_checkout;
    let behind = spawn_app_with(db, |s| {
        s.limits.checkout_per_ip_per_minute = 2;
        s.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    assert_eq!(send(&behind, 1, "198.51.100.9, 203.0.113.5").await, StatusCode::OK);
    assert_eq!(send(&behind, 2, "203.0.113.5").await, StatusCode::OK);
    assert_eq!(send(&behind, 3, "203.0.113.5").await, StatusCode::TOO_MANY_REQUESTS, "the same client, a third time");
    assert_eq!(send(&behind, 4, "203.0.113.6").await, StatusCode::OK, "another client behind the same proxy");
    drop(behind);

    let direct = spawn_app_with(db, |s| s.limits.checkout_per_ip_per_minute = 2).await;
    assert_eq!(send(&direct, 1, "203.0.113.10").await, StatusCode::OK);
    assert_eq!(send(&direct, 2, "203.0.113.11").await, StatusCode::OK);
    assert_eq!(send(&direct, 3, "203.0.113.12").await, StatusCode::TOO_MANY_REQUESTS, "a forged header is ignored");
}

// AC9.3.7: a wave of declines (card testing) alerts the admins and pauses payments until an admin resumes them.
async fn a_decline_wave_pauses_payments_until_an_admin_resumes(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.fraud.declines_per_hour = 2;
        s.fraud.breach_declines_per_minute = 3;
    })
    .await;
    let tester = app.client("card-tester");
    for _ in 0..2 {
        let (_, intent) = tester.open("starter-25", "pm_card_visa_chargeDeclined").await;
        assert_eq!(tester.confirm(&intent, "starter-25").await.status, StatusCode::PAYMENT_REQUIRED);
    }
    let blocked = eventually(Duration::from_secs(10), || async {
        let answer = tester.create_intent("starter-25", Some("pm_card_visa")).await;
        (answer.body["error"]["code"] == "payment_blocked").then_some(())
    });
    assert!(blocked.await.is_some(), "two declines block the tester");
    let accomplice = app.client("accomplice");
    let (_, intent) = accomplice.open("starter-25", "pm_card_visa_chargeDeclined").await;
    accomplice.confirm(&intent, "starter-25").await;

    let bystander = app.client("bystander");
    let paused = eventually(Duration::from_secs(10), || async {
        let answer = bystander.create_intent("starter-25", Some("pm_card_visa")).await;
        (answer.body["error"]["code"] == "payments_paused").then_some(answer)
    });
    assert!(paused.await.is_some(), "the decline wave pauses payments");
    assert_eq!(app.count_where("outbox", "kind = 'admin_alert'").await, 1);
    let admin = app.token("admin-g", Role::Admin);
    let controls = app.get("/api/v1/admin/controls", Some(&admin)).await;
    assert_eq!(controls.data()["paused"][0]["by"], "fraud-monitor");
    let alerts = app.get("/api/v1/admin/alerts", Some(&admin)).await;
    assert_eq!(alerts.data()[0]["kind"], "breach");
    let key = alerts.data()[0]["key"].as_str().unwrap().to_owned();
    let acknowledged = app.post(&format!("/api/v1/admin/alerts/{key}/acknowledge"), Some(&admin), &json!({})).await;
    assert_eq!(acknowledged.data()["acknowledged"], true);
    assert!(app.get("/api/v1/admin/alerts", Some(&admin)).await.data().as_array().unwrap().is_empty());
    app.post(
        "/api/v1/admin/controls/resume",
        Some(&admin),
        &json!({ "scope": "platform", "reason": "Blocked the testers" }),
    )
    .await;
    assert_eq!(bystander.create_intent("starter-25", Some("pm_card_visa")).await.status, StatusCode::OK);
}

// Issue 17: the in-house rules review below their blocks. With a review threshold of 100.00 (the block stays at
// 10,000.00), a 160.00 purchase is charged but held for an admin with no credits, and released it gets them; a 25.00
// one goes through.
async fn an_amount_past_the_review_threshold_is_held_for_an_admin(db: Db) {
    let app = crate::helpers::spawn_app_with(db, |s| s.fraud.review_amount = 10_000).await;
    let admin = app.token("admin-r", Role::Admin);
    let client = app.client("review-amount");
    let (small, intent) = client.open("starter-25", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "starter-25").await.data()["status"], "succeeded");
    let (large, intent) = client.open("pro-200", "pm_card_visa").await;
    let held = client.confirm(&intent, "pro-200").await;
    assert_eq!(
        (held.status, held.data()["status"].as_str()),
        (StatusCode::ACCEPTED, Some("under_review")),
        "{}",
        held.body
    );
    assert_eq!(client.balance().await, 25, "only the small one's credits while the large one is held");
    let queue = app.get("/api/v1/admin/payments?status=under_review", Some(&admin)).await;
    let listed: Vec<&str> =
        queue.data()["items"].as_array().unwrap().iter().filter_map(|i| i["transactionId"].as_str()).collect();
    assert_eq!(listed, vec![large.as_str()], "{small} is not held");
    let released = app
        .post(&format!("/api/v1/admin/payments/{large}/release"), Some(&admin), &json!({ "reason": "known buyer" }))
        .await;
    assert_eq!(released.data()["status"], "succeeded", "{}", released.body);
    assert_eq!(client.balance().await, 265);
}

// AC9.3.4, AC9.3.5, AC9.6.6: a risky payment is held for review; released, its credits come; confirmed as fraud,
// it is given back, the account is flagged and the client is asked to verify.
async fn a_risky_payment_is_held_then_released_or_reversed(db: Db) {
    let app = spawn_app(db).await;
    let admin = app.token("admin-f", Role::Admin);
    for (user, verdict) in [("risky-ok", "release"), ("risky-bad", "confirm-fraud")] {
        let client = app.client_with_email(user, &format!("{user}@example.com"));
        let (transaction, intent) = client.open("pro-200", "pm_card_riskLevelElevated").await;
        let held = client.confirm(&intent, "pro-200").await;
        assert_eq!(held.status, StatusCode::ACCEPTED, "{}", held.body);
        assert_eq!(held.data()["status"], "under_review");
        assert_eq!(client.balance().await, 0, "no credits while held");
        let queue = app.get("/api/v1/admin/payments?status=under_review", Some(&admin)).await;
        assert!(queue.data()["items"].as_array().unwrap().iter().any(|i| i["transactionId"] == transaction.as_str()));
        let decided = app
            .post(
                &format!("/api/v1/admin/payments/{transaction}/{verdict}"),
                Some(&admin),
                &json!({ "reason": "checked the card" }),
            )
            .await;
        assert_eq!(decided.status, StatusCode::OK, "{}", decided.body);
        if verdict == "release" {
            assert_eq!(decided.data()["status"], "succeeded");
            assert_eq!(client.balance().await, 240);
        } else {
            // Reversed once the provider's refund is recorded: the sandbox makes it at once.
            client.wait_for_status(&transaction, "reversed").await;
            let refunded = "status = 'refunded' AND amount = 16000 AND credits = 0";
            assert_eq!(app.count_where("refund_requests", refunded).await, 1);
            assert_eq!(app.count_where("sandbox_payment_intents", "refund_id IS NOT NULL").await, 1);
            assert_eq!(client.balance().await, 0);
            let next = client.create_intent("starter-25", Some("pm_card_visa")).await;
            assert_eq!(next.error_code(), "account_flagged");
            let mail = app
                .mail_containing("Subject: Please verify your recent payment")
                .await
                .expect("the client is contacted");
            assert!(mail.contains("To: risky-bad@example.com"));
            let flagged = app.get("/api/v1/admin/accounts/flagged", Some(&admin)).await;
            assert_eq!(flagged.data()[0]["clientId"], "risky-bad");
            assert_eq!(flagged.data()[0]["flaggedBy"], "admin-f");
            let lift = "/api/v1/admin/accounts/risky-bad/unflag";
            let by_client = app.post(lift, Some(&client.token), &json!({ "reason": "me" })).await;
            assert_eq!(by_client.status, StatusCode::FORBIDDEN);
            assert_eq!(app.post(lift, Some(&admin), &json!({ "reason": " " })).await.error_code(), "reason_required");
            let lifted = app.post(lift, Some(&admin), &json!({ "reason": "identity verified by phone" })).await;
            assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.body);
            assert_eq!(client.create_intent("starter-25", Some("pm_card_visa")).await.status, StatusCode::OK);
            assert_eq!(app.post(lift, Some(&admin), &json!({ "reason": "again" })).await.error_code(), "not_flagged");
        }
    }
    assert_eq!(
        app.count_where("admin_actions", "action IN ('release_review', 'confirm_fraud', 'lift_fraud_flag')").await,
        3
    );
}

// Issue 17 (1), AC9.3.4 on Radar's word: the verdict on the charge, not the method's name. Elevated is held for an
// admin with Radar's reason; highest (let through by a rule) is declined by giving the money back; Radar's block is a
// decline at the charge; normal pays.
async fn radar_risk_on_the_charge_decides_review(db: Db) {
    let app = spawn_app(db).await;
    let admin = app.token("admin-radar", Role::Admin);
    let reason_of = |transaction: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let seen = app.get(&format!("/api/v1/admin/payments/{transaction}"), Some(admin)).await;
            seen.data()["reviewReason"].as_str().unwrap_or_default().to_owned()
        }
    };
    let elevated = app.client("radar-elevated");
    let (transaction, intent) = elevated.open("pro-200", "pm_card_riskLevelElevated").await;
    let held = elevated.confirm(&intent, "pro-200").await;
    assert_eq!(held.status, StatusCode::ACCEPTED, "{}", held.body);
    assert_eq!(held.data()["status"], "under_review");
    assert!(held.data().get("reviewReason").is_none(), "the client is not told the fraud signal");
    let reason = reason_of(transaction.clone()).await;
    assert!(reason.starts_with("Stripe Radar rates this payment's risk elevated, score"), "{reason}");
    let queue = app.get("/api/v1/admin/payments?status=under_review", Some(&admin)).await;
    let row =
        queue.data()["items"].as_array().unwrap().iter().find(|i| i["transactionId"] == transaction.as_str()).cloned();
    assert_eq!(row.unwrap()["reviewReason"], reason.as_str());
    assert_eq!(elevated.balance().await, 0, "no credits while held");

    let highest = app.client("radar-highest");
    let (transaction, intent) = highest.open("pro-200", "pm_card_riskLevelHighest").await;
    highest.confirm(&intent, "pro-200").await;
    highest.wait_for_status(&transaction, "reversed").await;
    let reason = reason_of(transaction.clone()).await;
    assert!(reason.contains("risk highest, score") && reason.contains("declined and given back"), "{reason}");
    assert_eq!(app.count_where("sandbox_payment_intents", "refund_id IS NOT NULL").await, 1, "the money went back");
    assert_eq!(highest.balance().await, 0);

    let blocked = app.client("radar-blocked");
    let (_, intent) = blocked.open("pro-200", "pm_card_chargeDeclinedFraudulent").await;
    let declined = blocked.confirm(&intent, "pro-200").await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED, "{}", declined.body);
    assert_eq!(declined.error_code(), "fraudulent");
    let (_, normal) = blocked.open("pro-200", "pm_card_visa").await;
    assert_eq!(blocked.confirm(&normal, "pro-200").await.data()["status"], "succeeded");
    assert_eq!(blocked.balance().await, 240);
}

async fn held_payment(app: &crate::helpers::TestApp, user: &str) -> String {
    let client = app.client_with_email(user, &format!("{user}@example.com"));
    let (transaction, intent) = client.open("pro-200", "pm_card_riskLevelElevated").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "under_review");
    transaction
}

// Issue 13 (2): a reversal whose provider refund fails is retried, across a crash, until the provider makes it once;
// the purchase is `reversed` only then.
async fn a_fraud_reversal_is_retried_until_the_provider_refunds_it(db: Db) {
    let app = spawn_app(db).await;
    let transaction = held_payment(&app, "fraud-retry").await;
    // The provider goes down, then the admin confirms the fraud.
    let app = app.restart(|s| s.sandbox.faults.error_rate = 1.0).await;
    let admin = app.token("admin-r", Role::Admin);
    let path = format!("/api/v1/admin/payments/{transaction}/confirm-fraud");
    let decided = app.post(&path, Some(&admin), &json!({ "reason": "stolen card" })).await;
    assert_eq!(decided.status, StatusCode::OK, "{}", decided.body);
    assert_eq!(decided.data()["status"], "under_review", "not reversed before the money is back");
    assert_eq!(app.count_where("fraud_flags", "client_id = 'fraud-retry'").await, 1);
    assert_eq!(app.count_where("outbox", "kind = 'fraud_notice'").await, 1);
    assert_eq!(app.count_where("admin_actions", "action = 'confirm_fraud' AND admin = 'admin-r'").await, 1);
    let retrying = eventually(Duration::from_secs(10), || async {
        // PostgreSQL's jsonb writes `"attempt": 2`, SQLite keeps serde's `"attempt":2`.
        let retried = "status = 'processing' AND REPLACE(CAST(state AS TEXT), ' ', '') LIKE '%\"attempt\":2%'";
        (app.count_where("refund_requests", retried).await == 1).then_some(())
    })
    .await;
    assert!(retrying.is_some(), "the refund is retried");
    let client = app.client("fraud-retry");
    assert_eq!(client.transaction(&transaction).await.data()["status"], "under_review");

    // A crash, and the provider back: the reversal is seen through, once.
    let app = app.restart(|_| {}).await;
    let client = app.client("fraud-retry");
    client.wait_for_status(&transaction, "reversed").await;
    assert_eq!(app.count_where("refund_requests", "status = 'refunded' AND amount = 16000").await, 1);
    assert_eq!(app.count_where("sandbox_payment_intents", "refund_id IS NOT NULL").await, 1);
    assert_eq!(client.balance().await, 0);
}

// Issue 13 (2): release and confirm-fraud act only on a payment held for review; anything else is 409 and
// writes nothing.
async fn only_a_held_payment_can_be_released_or_reversed(db: Db) {
    let app = spawn_app(db).await;
    let admin = app.token("admin-n", Role::Admin);
    let client = app.client_with_email("not-held", "not-held@example.com");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    for verdict in ["confirm-fraud", "release"] {
        let path = format!("/api/v1/admin/payments/{transaction}/{verdict}");
        let refused = app.post(&path, Some(&admin), &json!({ "reason": "looks odd" })).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{verdict}: {}", refused.body);
        assert_eq!(refused.error_code(), "not_under_review");
    }
    assert_eq!(app.count_rows("fraud_flags").await, 0);
    assert_eq!(app.count_where("outbox", "kind = 'fraud_notice'").await, 0);
    assert_eq!(app.count_rows("refund_requests").await, 0);
    assert_eq!(app.count_rows("admin_actions").await, 0);
    assert_eq!(client.balance().await, 240);

    // Confirmed once, a second confirmation is refused and reverses nothing more.
    let held = held_payment(&app, "held-twice").await;
    let path = format!("/api/v1/admin/payments/{held}/confirm-fraud");
    assert_eq!(app.post(&path, Some(&admin), &json!({ "reason": "stolen" })).await.status, StatusCode::OK);
    let again = app.post(&path, Some(&admin), &json!({ "reason": "stolen" })).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(app.count_rows("refund_requests").await, 1);
}

on_both_databases!(
    radar_risk_on_the_charge_decides_review,
    an_amount_past_the_review_threshold_is_held_for_an_admin,
    clients_behind_a_trusted_proxy_are_limited_each_and_forged_headers_change_nothing,
    a_flood_of_forged_webhooks_from_one_address_pauses_nothing,
    confirm_screens_each_new_card_and_caps_attempts,
    a_pause_holds_the_call_not_the_actor,
    a_held_up_actor_answers_busy_instead_of_hanging,
    a_fraud_reversal_is_retried_until_the_provider_refunds_it,
    only_a_held_payment_can_be_released_or_reversed,
    a_risky_payment_is_held_then_released_or_reversed,
    the_fraud_monitor_counts_networks_cards_and_card_hopping,
    the_fraud_monitor_remembers_the_last_hour_across_a_restart,
    forged_webhooks_are_limited_and_a_burst_pauses_payments,
    the_fraud_monitor_blocks_velocity_amount_and_radar,
    a_decline_wave_pauses_payments_until_an_admin_resumes,
    a_pause_stops_new_checkouts_survives_a_restart_and_resumes,
    an_in_flight_payment_waits_for_the_resume,
    a_client_over_its_rate_gets_429_and_others_do_not,
);
