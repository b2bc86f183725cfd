//! Issue 13: every actor can be crashed on command (`/dev/crash/{actor}`, development with `sandbox.crash_hooks`);
//! each comes back under its supervisor with its state read back from the database, the service keeps answering,
//! and nothing is lost.
use crate::helpers::{Answer, Client, Db, TestApp, eventually, spawn_app_with};
use crate::on_both_databases;
use purser::auth::Role;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

async fn crash(app: &TestApp, actor: &str) -> Answer {
    let admin = app.token("admin-crash", Role::Admin);
    app.post(&format!("/dev/crash/{actor}"), Some(&admin), &json!({})).await
}

/// A purchase bought to the end, retried while a guard is between its crash and its restart (503 `busy`).
async fn buy(client: &Client<'_>, package: &str) -> String {
    let opened = eventually(Duration::from_secs(10), || async {
        let answer = client.create_intent(package, Some("pm_card_visa")).await;
        (answer.status != StatusCode::SERVICE_UNAVAILABLE).then_some(answer)
    })
    .await
    .expect("the checkout is answered");
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    let (transaction, intent) =
        (opened.data()["transactionId"].as_str().unwrap(), opened.data()["paymentIntentId"].as_str().unwrap());
    let paid = client.confirm(intent, package).await;
    assert_eq!(paid.data()["status"], "succeeded", "{}", paid.body);
    transaction.to_owned()
}

async fn every_actor_comes_back_from_a_crash_with_its_state(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.sandbox.crash_hooks = true;
        s.fraud.checkouts_per_hour = 3;
        s.payments.reconcile_every = Duration::from_millis(100);
    })
    .await;
    let client = app.client_with_email("crash-1", "crash-1@example.com");

    // Traffic from another client the whole time, while each actor is crashed in turn.
    let traffic = {
        let (base, token) = (app.base.clone(), app.token("crash-traffic", Role::Client));
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut answered = 0;
            for _ in 0..40 {
                let body = json!({ "packageId": "starter-25", "paymentMethodId": "pm_card_visa" });
                let status = http
                    .post(format!("{base}/api/v1/payments/stripe/intent"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("the service answers")
                    .status();
                assert!(
                    status.is_success()
                        || status == StatusCode::SERVICE_UNAVAILABLE
                        || status == StatusCode::FORBIDDEN
                        || status == StatusCode::TOO_MANY_REQUESTS,
                    "{status}"
                );
                answered += 1;
            }
            answered
        })
    };

    // The fraud monitor: two checkouts before the crash, one after, and the fourth is over the hourly limit.
    let first = buy(&client, "starter-25").await;
    buy(&client, "starter-25").await;
    let crashed = crash(&app, "fraud-monitor").await;
    assert_eq!(crashed.status, StatusCode::OK, "{}", crashed.body);
    buy(&client, "starter-25").await;
    let fourth = eventually(Duration::from_secs(10), || async {
        let answer = client.create_intent("starter-25", Some("pm_card_visa")).await;
        (answer.status != StatusCode::SERVICE_UNAVAILABLE).then_some(answer)
    })
    .await
    .unwrap();
    assert_eq!(fourth.error_code(), "payment_blocked", "the restarted monitor read the last hour back");

    // The circuit breaker and the reconciler: crashed, and the service still takes payments and syncs.
    for actor in ["circuit-breaker", "reconciler"] {
        assert_eq!(crash(&app, actor).await.status, StatusCode::OK, "{actor}");
    }
    let other = app.client_with_email("crash-2", "crash-2@example.com");
    buy(&other, "pro-200").await;

    // The pause watcher: crashed, and a pause written to the database by another node still reaches this one.
    assert_eq!(crash(&app, "pause-watcher").await.status, StatusCode::OK);
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S+00:00");
    app.execute(&format!(
        "INSERT INTO platform_controls (scope, paused, reason, changed_by, changed_at) \
         VALUES ('paypal', true, 'Set on another node', 'admin-elsewhere', '{now}')"
    ))
    .await;
    let admin = app.token("admin-watch", Role::Admin);
    let heard = eventually(Duration::from_secs(5), || async {
        let controls = app.get("/api/v1/admin/controls", Some(&admin)).await;
        (controls.data()["paused"][0]["reason"] == "Set on another node").then_some(())
    });
    assert!(heard.await.is_some(), "the restarted watcher read the pause back");

    // The mailer: crashed, and every receipt still arrives.
    assert_eq!(crash(&app, "mailer").await.status, StatusCode::OK);
    assert!(app.mail_containing("To: crash-1@example.com").await.is_some());
    assert!(app.mail_containing("To: crash-2@example.com").await.is_some());

    // A purchase actor and a refund actor: killed mid-life, re-hydrated by the next message.
    let refund = json!({ "transactionId": first, "reason": "unused" });
    let asked = app.post("/api/v1/payments/refund", Some(&client.token), &refund).await;
    let refund_id = asked.data()["refundRequestId"].as_str().unwrap().to_owned();
    let _ = crash(&app, &format!("purchase:{first}")).await;
    let _ = crash(&app, &format!("refund:{refund_id}")).await;
    let admin = app.token("admin-crash", Role::Admin);
    let approved = app.post(&format!("/api/v1/admin/refunds/{refund_id}/approve"), Some(&admin), &json!({})).await;
    assert_eq!(approved.data()["status"], "refunded", "{}", approved.body);

    // Unknown actors and a client's token are refused.
    assert_eq!(crash(&app, "everything").await.error_code(), "unknown_actor");
    let by_client = app.post("/dev/crash/mailer", Some(&client.token), &json!({})).await;
    assert_eq!(by_client.status, StatusCode::FORBIDDEN);

    assert_eq!(traffic.await.expect("the traffic ran"), 40);
    assert_eq!(client.balance().await, 3 * 25 - 25, "three bought, one refunded");
    assert_eq!(other.balance().await, 240);
}

// Issue 13 (8): the deadline queue reads every purchase's deadlines back after a crash (an unpaid checkout still
// expires), and the rate limiter keeps the budgets its predecessor had spent.
async fn the_deadline_queue_and_the_rate_limiter_come_back_with_their_state(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.sandbox.crash_hooks = true;
        s.payments.checkout_ttl = Duration::from_secs(2);
        s.limits.checkout_per_client_per_minute = 3;
    })
    .await;
    let client = app.client("deadline-1");
    let unpaid = client.create_intent("starter-25", None).await;
    let transaction = unpaid.data()["transactionId"].as_str().unwrap().to_owned();
    assert_eq!(crash(&app, "deadlines").await.status, StatusCode::OK);
    client.wait_for_status(&transaction, "expired").await;

    assert_eq!(client.create_intent("starter-25", None).await.status, StatusCode::OK);
    assert_eq!(crash(&app, "rate-limiter").await.status, StatusCode::OK);
    let third = eventually(Duration::from_secs(10), || async {
        let answer = client.create_intent("starter-25", None).await;
        (answer.status != StatusCode::SERVICE_UNAVAILABLE).then_some(answer)
    })
    .await
    .unwrap();
    assert_eq!(third.status, StatusCode::OK, "{}", third.body);
    let fourth = client.create_intent("starter-25", None).await;
    assert_eq!(fourth.status, StatusCode::TOO_MANY_REQUESTS, "the restarted limiter kept the spent budget");
    assert!(fourth.headers.get("retry-after").is_some());
}

/// The card circuit's state as `/metrics` reports it: 0 closed, 1 half-open, 2 open; `None` while no breaker answers.
async fn card_circuit(app: &TestApp) -> Option<u8> {
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(app.token("admin-metrics", Role::Admin))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    metrics.lines().find_map(|l| l.strip_prefix(r#"purser_circuit_state{rail="card"} "#)?.parse().ok())
}

// Issue 13 (8): the circuit breaker reads its open circuits back after a crash: checkouts stay away from the sick
// provider.
async fn a_restarted_circuit_breaker_remembers_an_open_circuit(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.sandbox.crash_hooks = true;
        s.sandbox.faults.error_rate = 1.0;
        s.circuit.failures = 2;
        s.circuit.cooldown = Duration::from_secs(600);
    })
    .await;
    let client = app.client("circuit-1");
    // Checkouts fail at the provider until the breaker has seen enough failures.
    let opened = eventually(Duration::from_secs(20), || async {
        client.create_intent("starter-25", Some("pm_card_visa")).await;
        (card_circuit(&app).await == Some(2)).then_some(())
    });
    assert!(opened.await.is_some(), "the card circuit opens");
    assert_eq!(crash(&app, "circuit-breaker").await.status, StatusCode::OK);
    let back = eventually(Duration::from_secs(10), || async { card_circuit(&app).await });
    assert_eq!(back.await, Some(2), "the restarted breaker still has the card circuit open");
    let refused = client.create_intent("starter-25", Some("pm_card_visa")).await;
    assert_eq!(refused.error_code(), "provider_unavailable");
}

// The inbox sweep is supervised like every other background actor: crashed, it comes back and still applies an event
// a dead node stored and never routed, with no retry from the provider.
async fn a_crashed_inbox_sweep_still_applies_what_was_left(db: Db) {
    let app = spawn_app_with(db, |s| s.sandbox.crash_hooks = true).await;
    let client = app.client("sweep-crashed");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(crash(&app, "inbox-sweep").await.status, StatusCode::OK);
    let event = crate::webhooks::succeeded_event("evt_after_crash", &intent, &transaction);
    crate::webhooks::leave_unapplied(&app, &event).await;
    let applied = eventually(Duration::from_secs(30), || async {
        let processed = "event_id = 'evt_after_crash' AND status = 'processed'";
        (app.count_where("webhook_events", processed).await == 1).then_some(())
    });
    assert!(applied.await.is_some(), "the restarted sweep applied the event");
    client.wait_for_status(&transaction, "succeeded").await;
    assert_eq!(client.balance().await, 240);
}

/// The connections of this app's database that listen for pauses (the pause watcher's, one of the pool's).
async fn listening(app: &TestApp) -> i64 {
    let sql = "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_stat_activity \
               WHERE datname = current_database() AND query LIKE 'LISTEN%'";
    crate::helpers::scalar(&app.database.url, sql).await
}

// A crash skips an actor's cleanup (ractor runs no `post_stop` on a kill). The pause watcher listens on one of the
// pool's connections: a crashed watcher must give it back, or each crash takes one more, until no request gets one
// (a CI chaos run ended that way, every request failing with "Connection pool timed out").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_pause_watcher_gives_its_connection_back() {
    let app = spawn_app_with(Db::Postgres, |s| {
        s.sandbox.crash_hooks = true;
        s.database.max_connections = Some(4);
    })
    .await;
    for crashes in 1..=6 {
        let crashed = eventually(Duration::from_secs(10), || async {
            (crash(&app, "pause-watcher").await.status == StatusCode::OK).then_some(())
        });
        assert!(crashed.await.is_some(), "the watcher is back for crash {crashes}");
        let one = eventually(Duration::from_secs(10), || async { (listening(&app).await == 1).then_some(()) });
        assert!(one.await.is_some(), "after crash {crashes}, {} connections listen", listening(&app).await);
    }
    let client = app.client("watcher-crashed");
    buy(&client, "starter-25").await;
    assert_eq!(client.balance().await, 25);
}

// Without the setting there is no way to crash anything (production refuses it: `deployment.rs`).
async fn crash_hooks_are_off_by_default(db: Db) {
    let app = crate::helpers::spawn_app(db).await;
    let answer = crash(&app, "mailer").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

on_both_databases!(
    the_deadline_queue_and_the_rate_limiter_come_back_with_their_state,
    every_actor_comes_back_from_a_crash_with_its_state,
    a_restarted_circuit_breaker_remembers_an_open_circuit,
    a_crashed_inbox_sweep_still_applies_what_was_left,
    crash_hooks_are_off_by_default,
);
