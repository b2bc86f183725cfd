//! Stripe-shaped webhooks: verified, stored once, routed to the purchase; duplicates and races credit once.
use crate::helpers::{Db, WEBHOOK_SECRET, spawn_app};
use crate::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

pub fn succeeded_event(event_id: &str, intent_id: &str, transaction: &str) -> Value {
    json!({
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": {
            "id": intent_id, "object": "payment_intent", "status": "succeeded", "amount": 16000, "currency": "usd",
            "latest_charge": "ch_test_1", "metadata": { "purchase_id": transaction }
        }}
    })
}

async fn a_duplicated_webhook_credits_once(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("hook-1");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    let event = succeeded_event("evt_dup_1", &intent, &transaction);
    let first = app.send_stripe_event(&event).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // A repeat while the first is still being applied is applied again (the purchase takes it once); a repeat once
    // it has been applied is acknowledged and dropped.
    let second = app.send_stripe_event(&event).await;
    assert_eq!(second.status, StatusCode::OK);
    client.wait_for_status(&transaction, "succeeded").await;
    let settled = crate::helpers::eventually(Duration::from_secs(10), || async {
        (app.count_where("webhook_events", "status = 'processed'").await == 1).then_some(())
    })
    .await;
    assert!(settled.is_some(), "the event is applied");
    let third = app.send_stripe_event(&event).await;
    assert_eq!(third.body["duplicate"], true);
    // A different event about the same success (Stripe may send both) changes nothing either.
    app.send_stripe_event(&succeeded_event("evt_dup_2", &intent, &transaction)).await;
    app.inbox_applied(2).await;
    assert_eq!(client.balance().await, 240);
    assert_eq!(app.count_rows("credit_ledger").await, 1);
    assert_eq!(app.count_rows("webhook_events").await, 2);
}

async fn confirm_racing_the_webhook_credits_once(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("hook-2");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    let event = succeeded_event("evt_race_1", &intent, &transaction);
    let (a, b, hook) = tokio::join!(
        client.confirm(&intent, "pro-200"),
        client.confirm(&intent, "pro-200"),
        app.send_stripe_event(&event)
    );
    assert_eq!(hook.status, StatusCode::OK);
    for confirmed in [a, b] {
        assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
        assert_eq!(confirmed.data()["status"], "succeeded");
    }
    app.inbox_applied(1).await;
    assert_eq!(client.balance().await, 240);
    assert_eq!(app.count_rows("credit_ledger").await, 1);
}

async fn an_unsigned_or_forged_webhook_is_refused_and_not_stored(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("hook-3");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    let body = succeeded_event("evt_forged", &intent, &transaction).to_string();
    let now = chrono::Utc::now().timestamp();
    let forged = purser::domain::signature::sign(body.as_bytes(), "whsec_attacker", now);
    let stale = purser::domain::signature::sign(body.as_bytes(), WEBHOOK_SECRET, now - 301);
    for (signature, why) in [(None, "missing"), (Some(forged.as_str()), "forged"), (Some(stale.as_str()), "stale")] {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(signature) = signature {
            headers.push(("stripe-signature", signature));
        }
        let refused = app.post_raw("/api/v1/webhooks/stripe", None, &headers, body.clone()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(refused.error_code(), "invalid_signature", "{why}");
    }
    assert_eq!(app.count_rows("webhook_events").await, 0);
    assert_eq!(client.transaction(&transaction).await.data()["status"], "requires_confirmation");
    assert_eq!(client.balance().await, 0);
}

// AC9.2.5 for cards: Stripe's `charge.dispute.created` (self-signed; localstripe has no disputes) feeds the same
// dispute model, tied to the purchase by its PaymentIntent.
async fn a_stripe_dispute_reaches_the_admins(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("hook-4");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    let event = json!({
        "id": "evt_dispute_1", "object": "event", "type": "charge.dispute.created",
        "data": { "object": { "id": "dp_test_1", "object": "dispute", "amount": 16000, "currency": "usd",
            "reason": "fraudulent", "status": "needs_response", "charge": "ch_test_1", "payment_intent": intent } }
    });
    assert_eq!(app.send_stripe_event(&event).await.status, StatusCode::OK);
    let admin = app.token("admin-2", purser::auth::Role::Admin);
    let dispute = app.get("/api/v1/admin/disputes/dp_test_1", Some(&admin)).await;
    assert_eq!(dispute.data()["transactionId"], transaction.as_str());
    assert_eq!(dispute.data()["reason"], "fraudulent");
    assert_eq!(dispute.data()["amount"], 16000);
    assert_eq!(dispute.data()["currency"], "USD");
    assert_eq!(app.count_where("outbox", "kind = 'admin_alert'").await, 1);
}

// AC9.6.7: webhook health lists events that found no purchase; an admin can replay them (audited); events without
// Purser's metadata still find their purchase by the intent.
async fn webhook_health_lists_trouble_and_replays_it(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("hook-5");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    let mut bare = succeeded_event("evt_bare_1", &intent, &transaction);
    bare["data"]["object"]["metadata"] = json!({});
    assert_eq!(app.send_stripe_event(&bare).await.status, StatusCode::OK);
    client.wait_for_status(&transaction, "succeeded").await;

    let stray = succeeded_event("evt_stray_1", "pi_nobody", &uuid::Uuid::new_v4().to_string());
    assert_eq!(app.send_stripe_event(&stray).await.status, StatusCode::OK);
    let admin = app.token("admin-w", purser::auth::Role::Admin);
    let listed = crate::helpers::eventually(Duration::from_secs(5), || async {
        let health = app.get("/api/v1/admin/webhooks?status=unroutable", Some(&admin)).await;
        health.data().as_array().and_then(|l| l.iter().find(|e| e["eventId"] == "evt_stray_1").cloned())
    })
    .await
    .expect("the stray event is listed");
    assert!(listed["error"].as_str().is_some());
    let id = listed["id"].as_i64().unwrap();
    let replayed =
        app.post(&format!("/api/v1/admin/webhooks/{id}/replay"), Some(&admin), &json!({ "reason": "check" })).await;
    assert_eq!(replayed.status, StatusCode::ACCEPTED);
    assert_eq!(app.count_where("admin_actions", "action = 'replay_webhook'").await, 1);
    let processed = app.count_where("webhook_events", "event_id = 'evt_bare_1' AND status = 'processed'").await;
    assert_eq!(processed, 1);
    let bare_id = app.get("/api/v1/admin/webhooks?status=processed", Some(&admin)).await;
    let bare_id = bare_id.data().as_array().unwrap().iter().find(|e| e["eventId"] == "evt_bare_1").unwrap()["id"]
        .as_i64()
        .unwrap();
    let again = app.post(&format!("/api/v1/admin/webhooks/{bare_id}/replay"), Some(&admin), &json!({})).await;
    assert_eq!(again.error_code(), "already_processed");
    let missing = app.post("/api/v1/admin/webhooks/999999/replay", Some(&admin), &json!({})).await;
    assert_eq!((missing.status, missing.error_code()), (StatusCode::NOT_FOUND, "webhook_not_found"));
    assert_eq!(
        app.count_where("admin_actions", "action = 'replay_webhook'").await,
        1,
        "a refused replay is not audited"
    );
    // Still nothing to route the stray event to: it is unroutable again, not left `received`.
    let unroutable = crate::helpers::eventually(Duration::from_secs(5), || async {
        let rows = app.count_where("webhook_events", "event_id = 'evt_stray_1' AND status = 'unroutable'").await;
        (rows == 1).then_some(())
    });
    assert!(unroutable.await.is_some(), "the replayed stray event is unroutable again");
}

/// The inbox row a crash between storing an event and applying it leaves behind.
/// An event as a node leaves it when it dies between storing and routing it: received, and due for any node's inbox
/// sweep once the routing grace has passed.
pub async fn leave_unapplied(app: &crate::helpers::TestApp, event: &Value) {
    let now = chrono::Utc::now();
    let at = now.format("%Y-%m-%d %H:%M:%S+00:00");
    let sweep_at = (now + purser::store::webhooks::ROUTING_GRACE).to_rfc3339();
    app.execute(&format!(
        "INSERT INTO webhook_events (provider, event_id, event_type, payload, status, received_at, sweep_at) \
         VALUES ('stripe', '{}', '{}', '{}', 'received', '{at}', '{sweep_at}')",
        event["id"].as_str().unwrap(),
        event["type"].as_str().unwrap(),
        event.to_string().replace('\'', "''"),
    ))
    .await;
}

// Issue 13 (3): the provider's retry of an event stored but never applied is applied, not dropped as a duplicate.
async fn a_retry_of_an_event_never_applied_is_applied(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("hook-stuck");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    let event = succeeded_event("evt_stuck_1", &intent, &transaction);
    leave_unapplied(&app, &event).await;
    let retried = app.send_stripe_event(&event).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert!(retried.body.get("duplicate").is_none(), "{}", retried.body);
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(client.balance().await, 240);
    assert_eq!(app.count_where("webhook_events", "status = 'processed'").await, 1);
    assert_eq!(app.count_rows("webhook_events").await, 1);

    // Once applied, a repeat is a duplicate; another event about the same success changes nothing but is listed in
    // the purchase's history, as Stripe's dashboard lists every event of a payment.
    assert_eq!(app.send_stripe_event(&event).await.body["duplicate"], true);
    app.send_stripe_event(&succeeded_event("evt_stuck_2", &intent, &transaction)).await;
    let listed = crate::helpers::eventually(Duration::from_secs(10), || async {
        (app.count_where("purchase_events", "kind = 'provider_update_unchanged'").await == 1).then_some(())
    })
    .await;
    assert!(listed.is_some(), "the no-op event is in the history");
    assert_eq!(app.count_where("webhook_events", "status = 'processed'").await, 2);
    assert_eq!(app.count_rows("credit_ledger").await, 1);
}

// Issue 13 (3): events left unapplied by a crash are applied at the next start, with no retry from the provider.
async fn events_left_unapplied_are_swept_at_start(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("hook-sweep");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    leave_unapplied(&app, &succeeded_event("evt_swept", &intent, &transaction)).await;
    let app = app.restart(|_| {}).await;
    let client = app.client("hook-sweep");
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(client.balance().await, 240);
    assert_eq!(app.count_where("webhook_events", "status = 'processed'").await, 1);
}

// Issue 13 (6): the reconciler backs off per purchase. A bank debit that waits days for its bank is synced once,
// then not again for an hour, however often the reconciler ticks; a card payment whose 3-D Secure is still open
// is synced again and again, on a doubling interval. Neither is a missing webhook.
async fn the_reconciler_backs_off_per_purchase(db: Db) {
    let app = crate::helpers::spawn_app_with(db, |s| {
        s.payments.reconcile_every = Duration::from_millis(50);
        s.payments.reconcile_after = Duration::ZERO;
        s.sandbox.faults.webhook_drop_rate = 1.0;
    })
    .await;
    let client = app.client("reconcile-1");
    let (ach, intent) = client.open("pro-200", "pm_sandbox_usBankAccount").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "processing");
    let (card, intent) = client.open("starter-25", "pm_card_threeDSecure2Required").await;
    assert_eq!(client.confirm(&intent, "starter-25").await.data()["status"], "requires_action");

    // The card's doubling syncs show the reconciler ticking on; the bank debit is still at its one.
    let card_synced_often = crate::helpers::eventually(Duration::from_secs(15), || async {
        (app.count_where("reconcile_schedule", "syncs >= 4").await == 1).then_some(())
    })
    .await;
    assert!(card_synced_often.is_some(), "the 3-D Secure purchase is synced again and again");
    assert_eq!(app.count_where("reconcile_schedule", "syncs = 1").await, 1, "the bank debit is synced once");
    assert_eq!(app.count_rows("reconcile_schedule").await, 2);
    assert_eq!(app.count_where("alerts", "kind = 'missed_webhook'").await, 0);
    assert_eq!(client.transaction(&ach).await.data()["status"], "processing");
    assert_eq!(client.transaction(&card).await.data()["status"], "requires_action");
}

// Issue 14: a success reported for another amount or currency than the price grants nothing: the payment is held
// for review and the admins are alerted.
async fn a_success_for_another_amount_grants_nothing(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("short-payer");
    let (transaction, intent) = client.open("pro-200", "pm_card_authenticationRequired").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "requires_action");
    let event = json!({ "id": "evt_short_payment", "type": "payment_intent.succeeded", "data": { "object": {
        "id": intent, "object": "payment_intent", "status": "succeeded", "amount": 100, "amount_received": 100,
        "currency": "usd", "latest_charge": "ch_short", "metadata": { "purchase_id": transaction } } } });
    assert_eq!(app.send_signed_event(&event, WEBHOOK_SECRET).await.status, StatusCode::OK);
    let view = client.wait_for_status(&transaction, "under_review").await;
    assert_eq!(view["creditsGranted"], false, "{view}");
    assert_eq!(client.balance().await, 0);
    assert_eq!(app.count_where("alerts", "kind = 'amount_mismatch'").await, 1);
}

on_both_databases!(
    a_success_for_another_amount_grants_nothing,
    the_reconciler_backs_off_per_purchase,
    a_retry_of_an_event_never_applied_is_applied,
    events_left_unapplied_are_swept_at_start,
    webhook_health_lists_trouble_and_replays_it,
    a_stripe_dispute_reaches_the_admins,
    a_duplicated_webhook_credits_once,
    confirm_racing_the_webhook_credits_once,
    an_unsigned_or_forged_webhook_is_refused_and_not_stored,
);
