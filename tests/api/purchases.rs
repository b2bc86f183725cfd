//! A client buys credits with a card on the sandbox provider: success, declines, 3-D Secure, retries, expiry.
use crate::helpers::{Db, eventually, spawn_app, spawn_app_with};
use crate::on_both_databases;
use purser::auth::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

// AC9.1.3: a valid payment adds the package's credits.
async fn a_card_purchase_grants_the_package_credits_once(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("client-1");
    let intent = client.create_intent("pro-200", Some("pm_card_visa")).await;
    assert_eq!(intent.status, StatusCode::OK);
    let data = intent.data();
    assert_eq!(data["amount"], 16000);
    assert_eq!(data["currency"], "usd");
    assert!(data["clientSecret"].as_str().unwrap().contains("_secret_"));
    let intent_id = data["paymentIntentId"].as_str().unwrap().to_owned();
    let transaction = data["transactionId"].as_str().unwrap().to_owned();

    // A confirm names the package its intent was opened for; another one moves nothing.
    let mismatch = client.confirm(&intent_id, "starter-25").await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST, "{}", mismatch.body);
    assert_eq!(mismatch.error_code(), "package_mismatch");
    assert_eq!(client.balance().await, 0);

    let confirmed = client.confirm(&intent_id, "pro-200").await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.data()["status"], "succeeded");
    assert_eq!(confirmed.data()["creditsAdded"], 240);
    assert_eq!(confirmed.data()["newBalance"], 240);
    assert_eq!(confirmed.data()["transactionId"], transaction.as_str());

    // Confirming again answers the same and grants nothing more.
    let again = client.confirm(&intent_id, "pro-200").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.data()["newBalance"], 240);
    // The sandbox's own webhook arrives too; it must not grant a second time.
    app.inbox_applied(1).await;
    assert_eq!(client.balance().await, 240);
    assert_eq!(app.count_rows("credit_ledger").await, 1);

    let view = client.transaction(&transaction).await;
    assert_eq!(view.data()["status"], "succeeded");
    assert_eq!(view.data()["creditsGranted"], true);
    assert_eq!(view.data()["paymentMethod"], "pm_card_visa");
    let kinds: Vec<&str> =
        view.data()["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..3], ["opened", "intent_created", "confirm_requested"]);
}

// AC9.1.4: each decline shows its specific reason and the suggested action; nothing is credited.
async fn each_decline_shows_its_reason_and_action(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("client-2");
    let cases = [
        ("pm_card_visa_chargeDeclined", "card_declined", "Your card was declined."),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds", "Your card has insufficient funds."),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "Your card has expired."),
    ];
    for (method, code, message) in cases {
        let (transaction, intent) = client.open("starter-25", method).await;
        let declined = client.confirm(&intent, "starter-25").await;
        assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED, "{method}: {}", declined.body);
        assert_eq!(declined.error_code(), code);
        assert_eq!(declined.body["error"]["message"], message);
        assert!(!declined.body["error"]["suggestedAction"].as_str().unwrap().is_empty());
        assert_eq!(declined.body["error"]["transactionId"], transaction.as_str());
        let view = client.transaction(&transaction).await;
        assert_eq!(view.data()["status"], "failed");
        assert_eq!(view.data()["failure"]["code"], code);
    }
    assert_eq!(client.balance().await, 0);
}

// AC9.1.5: 3-D Secure answers requires_action with what Stripe.js needs; a completed authentication pays.
async fn three_d_secure_success_grants_credits(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("client-3");
    let (transaction, intent) = client.open("pro-200", "pm_card_authenticationRequired").await;
    let challenged = client.confirm(&intent, "pro-200").await;
    assert_eq!(challenged.status, StatusCode::OK);
    assert_eq!(challenged.data()["status"], "requires_action");
    assert!(challenged.data()["clientSecret"].as_str().unwrap().starts_with(&intent));
    assert_eq!(challenged.data()["nextAction"]["type"], "use_stripe_sdk");
    assert_eq!(client.balance().await, 0);

    assert_eq!(app.authenticate_3ds(&intent, true).await.status, StatusCode::OK);
    let done = client.confirm(&intent, "pro-200").await;
    assert_eq!(done.data()["status"], "succeeded", "{}", done.body);
    assert_eq!(done.data()["newBalance"], 240);
    client.wait_for_status(&transaction, "succeeded").await;
    app.inbox_applied(1).await;
    assert_eq!(client.balance().await, 240);
}

async fn three_d_secure_failure_is_a_clear_error_with_a_retry(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("client-4");
    let (transaction, intent) = client.open("pro-200", "pm_card_authenticationRequired").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "requires_action");
    assert_eq!(app.authenticate_3ds(&intent, false).await.status, StatusCode::OK);
    let failed = client.confirm(&intent, "pro-200").await;
    assert_eq!(failed.status, StatusCode::PAYMENT_REQUIRED, "{}", failed.body);
    assert_eq!(failed.error_code(), "authentication_failed");
    assert_eq!(client.balance().await, 0);

    // Asking again reports the same failure; the retry brings the challenge back, and passing it pays.
    assert_eq!(client.confirm(&intent, "pro-200").await.error_code(), "authentication_failed");
    let retry = client.retry(&intent, "pro-200").await;
    assert_eq!(retry.data()["status"], "requires_action");
    app.authenticate_3ds(&intent, true).await;
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(client.balance().await, 240);
}

// processing_error is temporary: retried automatically with backoff until it succeeds.
async fn a_transient_processing_error_is_retried_until_it_succeeds(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("client-5");
    let (transaction, intent) = client.open("pro-200", "pm_sandbox_transientProcessingError").await;
    let pending = client.confirm(&intent, "pro-200").await;
    assert_eq!(pending.status, StatusCode::ACCEPTED, "{}", pending.body);
    assert_eq!(pending.data()["status"], "processing");
    assert!(pending.data()["estimatedCompletionSeconds"].as_i64().unwrap() >= 1);
    let view = client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(view["attempts"], 2);
    assert_eq!(client.balance().await, 240);
}

async fn a_permanent_processing_error_runs_out_of_retries(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("client-6");
    let (transaction, intent) = client.open("pro-200", "pm_card_chargeDeclinedProcessingError").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.status, StatusCode::ACCEPTED);
    let view = client.wait_for_status(&transaction, "failed").await;
    assert_eq!(view["attempts"], 3, "max_attempts = 3 in config.toml");
    assert_eq!(view["failure"]["code"], "processing_error");
    assert_eq!(client.balance().await, 0);
    // The manual retry starts a new round.
    assert_eq!(client.confirm(&intent, "pro-200").await.error_code(), "processing_error");
    let retry = client.retry(&intent, "pro-200").await;
    assert_eq!(retry.status, StatusCode::ACCEPTED);
}

// The sandbox confirms an intent from the copy it kept since making it (no read), never from a stale copy: here the
// intent is cancelled behind the copy's back, as another node or the reconciler would. The copy fails the fence, the
// confirm tried again reads the row, the checkout ends expired, and nothing is charged.
async fn a_confirm_never_charges_from_a_stale_copy_of_the_intent(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("client-stale");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    let later = "updated_at = '2099-01-01T00:00:00Z'";
    app.execute(&format!("UPDATE sandbox_payment_intents SET status = 'canceled', {later} WHERE id = '{intent}'"))
        .await;
    let confirmed = client.confirm(&intent, "pro-200").await;
    assert_eq!(confirmed.status, StatusCode::ACCEPTED, "the fence refused the copy: tried again; {}", confirmed.body);
    // Read from the row, a cancelled intent ends the checkout as it would have without the copy.
    client.wait_for_status(&transaction, "expired").await;
    assert_eq!(client.balance().await, 0);
    let charged =
        format!("id = '{intent}' AND (status <> 'canceled' OR confirmations <> 0 OR latest_charge IS NOT NULL)");
    assert_eq!(app.count_where("sandbox_payment_intents", &charged).await, 0, "the provider charged nothing");
}

// ACH: `processing` for days, with the estimate shown; credits only once the bank clears the debit.
async fn a_bank_debit_credits_only_when_it_clears(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("ach-1");
    for (clears, expected) in [(true, "succeeded"), (false, "failed")] {
        let (transaction, intent) = client.open("pro-200", "pm_sandbox_usBankAccount").await;
        let pending = client.confirm(&intent, "pro-200").await;
        assert_eq!(pending.status, StatusCode::ACCEPTED, "{}", pending.body);
        assert_eq!(pending.data()["status"], "processing");
        assert_eq!(pending.data()["estimatedCompletionSeconds"], 4 * 24 * 3600);
        // The sandbox's `payment_intent.processing` applied: everything the confirm set off has landed.
        let applied =
            format!("payload LIKE '%{intent}%' AND event_type = 'payment_intent.processing' AND status = 'processed'");
        let landed = eventually(Duration::from_secs(10), || async {
            (app.count_where("webhook_events", &applied).await == 1).then_some(())
        });
        assert!(landed.await.is_some(), "the processing event is applied");
        assert_eq!(client.transaction(&transaction).await.data()["creditsGranted"], false);
        let cleared = app
            .post(&format!("/sandbox/v1/payment_intents/{intent}/_settle"), None, &json!({ "success": clears }))
            .await;
        assert_eq!(cleared.status, StatusCode::OK);
        let view = client.wait_for_status(&transaction, expected).await;
        if !clears {
            assert_eq!(view["failure"]["code"], "insufficient_funds");
        }
    }
    assert_eq!(client.balance().await, 240);
}

async fn an_unpaid_checkout_expires(db: Db) {
    let app = spawn_app_with(db, |s| s.payments.checkout_ttl = Duration::from_millis(700)).await;
    let client = app.client("client-7");
    let intent = client.create_intent("pro-200", None).await;
    assert_eq!(intent.data()["status"], "requires_payment_method");
    let transaction = intent.data()["transactionId"].as_str().unwrap().to_owned();
    let intent_id = intent.data()["paymentIntentId"].as_str().unwrap().to_owned();
    client.wait_for_status(&transaction, "expired").await;
    let late = client.confirm(&intent_id, "pro-200").await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert_eq!(late.error_code(), "checkout_expired");
}

// Purchases waiting on a person hold no actor: it passivates, the deadline still fires, and the next move wakes it.
async fn idle_purchases_passivate_and_wake_on_the_next_move(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.payments.passivate_after = Duration::from_millis(100);
        s.payments.checkout_ttl = Duration::from_millis(1500);
    })
    .await;
    // The actor registry is per process, shared by the tests running beside this one: look for these two only.
    let has_actor = |id: &str| ractor::registry::where_is(format!("purchase:{id}")).is_some();
    let client = app.client("idle-client");
    let (paid, intent) = client.open("pro-200", "pm_card_authenticationRequired").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "requires_action");
    let abandoned = client.create_intent("starter-25", None).await.data()["transactionId"].as_str().unwrap().to_owned();
    let passivated =
        eventually(Duration::from_secs(10), || async { (!has_actor(&paid) && !has_actor(&abandoned)).then_some(()) });
    assert!(passivated.await.is_some(), "both purchases wait on the client with no actor");
    assert_eq!(app.authenticate_3ds(&intent, true).await.status, StatusCode::OK);
    client.wait_for_status(&paid, "succeeded").await;
    assert_eq!(client.balance().await, 240);
    client.wait_for_status(&abandoned, "expired").await;
}

/// How many times the service has read an intent from the provider, from `/metrics`.
async fn intent_reads(app: &crate::helpers::TestApp) -> u64 {
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(app.token("admin-metrics", purser::auth::Role::Admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = r#"purser_provider_call_seconds_count{rail="card",operation="retrieve_intent"} "#;
    metrics.lines().find_map(|l| l.strip_prefix(line)).map_or(0, |n| n.parse().unwrap())
}

// Issue 13 (6): an actor woken from passivation by a message is not a crash: it reads no provider.
async fn a_woken_actor_does_not_reconcile(db: Db) {
    let app = spawn_app_with(db, |s| s.payments.passivate_after = Duration::from_millis(100)).await;
    let client = app.client("wake-client");
    let (transaction, intent) = client.open("pro-200", "pm_card_authenticationRequired").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "requires_action");
    let passivated = crate::helpers::eventually(Duration::from_secs(10), || async {
        ractor::registry::where_is(format!("purchase:{transaction}")).is_none().then_some(())
    });
    assert!(passivated.await.is_some(), "the actor passivates");
    let reads = intent_reads(&app).await;
    let event = json!({
        "id": "evt_wake_1", "object": "event", "type": "payment_intent.requires_action",
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": { "id": intent, "object": "payment_intent", "status": "requires_action",
            "amount": 16000, "currency": "usd", "metadata": { "purchase_id": transaction } } }
    });
    assert_eq!(app.send_stripe_event(&event).await.status, StatusCode::OK);
    let applied = crate::helpers::eventually(Duration::from_secs(10), || async {
        (app.count_where("webhook_events", "status = 'processed'").await == 1).then_some(())
    });
    assert!(applied.await.is_some(), "the webhook woke the actor and was applied");
    assert_eq!(intent_reads(&app).await, reads, "waking read nothing from the provider");
    assert_eq!(client.transaction(&transaction).await.data()["status"], "requires_action");
}

async fn a_client_sees_only_its_own_transactions(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.client("owner");
    let other = app.client("someone-else");
    let (transaction, intent) = owner.open("pro-200", "pm_card_visa").await;
    let peek = other.transaction(&transaction).await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    assert_eq!(peek.error_code(), "transaction_not_found");
    let steal = other.confirm(&intent, "pro-200").await;
    assert_eq!(steal.status, StatusCode::NOT_FOUND);
    assert_eq!(owner.transaction(&transaction).await.data()["status"], "requires_confirmation");
    // An admin reads any transaction.
    let admin = app.token("admin-1", Role::Admin);
    let read = app.get(&format!("/api/v1/admin/payments/{transaction}"), Some(&admin)).await;
    assert_eq!(read.data()["transactionId"], transaction.as_str());
}

async fn packages_and_the_openapi_document_are_served(db: Db) {
    let app = spawn_app(db).await;
    let packages = app.get("/api/v1/packages", None).await;
    let pro =
        packages.data().as_array().unwrap().iter().find(|p| p["id"] == "pro-200").expect("pro-200 is for sale").clone();
    assert_eq!(
        (pro["amount"].as_i64(), pro["credits"].as_i64(), pro["currency"].as_str()),
        (Some(16000), Some(240), Some("usd"))
    );
    let doc = app.get("/api/v1/openapi.json", None).await;
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/payments/stripe/intent",
        "/api/v1/payments/confirm",
        "/api/v1/payments/{transactionId}",
        "/api/v1/credits/balance",
        "/api/v1/packages",
        "/api/v1/webhooks/stripe",
        "/api/v1/admin/payments/{transactionId}",
        "/healthz",
        "/readyz",
    ] {
        assert!(doc.body["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    // The document describes the answers as sent: a success in its envelope, and the errors any request can meet.
    let listed = &doc.body["paths"]["/api/v1/packages"]["get"]["responses"];
    let success = &listed["200"]["content"]["application/json"]["schema"];
    assert_eq!(success["properties"]["data"]["items"]["$ref"], "#/components/schemas/PackageView", "{success}");
    assert_eq!(success["required"], json!(["success", "data"]));
    let confirm = &doc.body["paths"]["/api/v1/payments/confirm"]["post"]["responses"];
    for code in ["400", "401", "403", "413", "415", "429", "500", "503"] {
        assert!(confirm.get(code).is_some(), "confirm documents {code}: {confirm}");
    }
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, json!({ "database": true, "actors": true, "down": [] }));
    let generated = ready.headers["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 32, "a request id is made up when none is sent");
    let echoed = app.http.get(format!("{}/healthz", app.base)).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42", "a proxy's request id is kept");
}

on_both_databases!(
    a_card_purchase_grants_the_package_credits_once,
    idle_purchases_passivate_and_wake_on_the_next_move,
    a_woken_actor_does_not_reconcile,
    each_decline_shows_its_reason_and_action,
    three_d_secure_success_grants_credits,
    three_d_secure_failure_is_a_clear_error_with_a_retry,
    a_transient_processing_error_is_retried_until_it_succeeds,
    a_permanent_processing_error_runs_out_of_retries,
    a_confirm_never_charges_from_a_stale_copy_of_the_intent,
    an_unpaid_checkout_expires,
    a_bank_debit_credits_only_when_it_clears,
    a_client_sees_only_its_own_transactions,
    packages_and_the_openapi_document_are_served,
);
