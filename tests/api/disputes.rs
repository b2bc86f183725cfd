//! Disputes end to end (issue 17, AC9.2.5, AC9.6.2): seen with the purchase's history, answered with evidence or
//! conceded at the provider, and settled by its word: a lost dispute takes the credits back once and flags the
//! account, a won one changes nothing. On the sandbox (Stripe's test disputes), on Stripe through the proxy, and on
//! the PayPal fake.
use crate::helpers::{Db, TestApp, eventually, spawn_app};
use crate::on_both_databases;
use base64::Engine;
use purser::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A small PDF, as an admin would attach a delivery log.
const EVIDENCE_PDF: &[u8] = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

fn evidence(text: &str) -> Value {
    let content = base64::engine::general_purpose::STANDARD.encode(EVIDENCE_PDF);
    json!({ "text": text, "file": { "name": "usage-log.pdf", "contentBase64": content } })
}

/// Waits until the dispute on `transaction` stands at `status`, and returns it as the admin sees it.
async fn dispute_of(app: &TestApp, admin: &str, transaction: &str, status: &str) -> Value {
    let found = eventually(Duration::from_secs(15), || async {
        let listed = app.get("/api/v1/admin/disputes", Some(admin)).await;
        let items = listed.data().as_array().cloned().unwrap_or_default();
        items.into_iter().find(|d| d["transactionId"] == transaction && d["status"] == status)
    });
    found.await.unwrap_or_else(|| panic!("no dispute on {transaction} reached {status}"))
}

/// Buys `pro-200` (240 credits) with Stripe's test card whose payment the bank then disputes; spends `spent`.
async fn disputed_purchase(app: &TestApp, client_id: &str, spent: i64) -> (String, Value) {
    let client = app.client(client_id);
    let (transaction, intent) = client.open("pro-200", "pm_card_createDispute").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    let admin = app.token("admin-d", Role::Admin);
    if spent > 0 {
        let body = json!({ "clientId": client_id, "credits": -spent, "reason": "used" });
        assert_eq!(app.post("/api/v1/admin/credits/adjust", Some(&admin), &body).await.status, StatusCode::OK);
    }
    let dispute = dispute_of(app, &admin, &transaction, "needs_response").await;
    (transaction, dispute)
}

// A lost dispute takes the purchase's credits back once, even below zero, and flags the account; the admin sees the
// evidence in the audit trail and the dispute in the purchase's history.
async fn a_lost_dispute_takes_the_credits_back_once(db: Db) {
    let app = spawn_app(db).await;
    let (transaction, dispute) = disputed_purchase(&app, "dispute-1", 100).await;
    let client = app.client("dispute-1");
    assert_eq!(client.balance().await, 140);
    assert_eq!(dispute["reason"], "fraudulent");
    assert_eq!(dispute["amount"], 16000);
    assert!(dispute["evidenceDueBy"].as_str().is_some(), "{dispute}");
    let id = dispute["id"].as_str().unwrap();
    let admin = app.token("admin-d", Role::Admin);

    // Stripe's test mode: evidence reading `losing_evidence` loses.
    let answered =
        app.post(&format!("/api/v1/admin/disputes/{id}/evidence"), Some(&admin), &evidence("losing_evidence")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    // Submitted for review; the bank's `lost` may already have come by webhook, and a closed dispute stays closed.
    let status = answered.data()["status"].as_str().unwrap();
    assert!(["under_review", "lost"].contains(&status), "{status}");
    let audit = &answered.data()["audit"][0];
    assert_eq!(audit["by"], "admin-d");
    assert_eq!(audit["action"], "dispute_evidence");
    assert!(audit["reason"].as_str().unwrap().contains("usage-log.pdf"), "{audit}");

    let lost = dispute_of(&app, &admin, &transaction, "lost").await;
    assert_eq!(lost["creditsDebited"], 240);
    assert_eq!(client.balance().await, -100, "the credits were spent: the balance goes below zero");
    // The same news again (a provider's retry under a new event id) takes nothing more.
    let again = json!({ "id": "evt_dispute_closed_again", "object": "event", "type": "charge.dispute.closed",
        "data": { "object": lost["details"] } });
    assert_eq!(app.send_stripe_event(&again).await.status, StatusCode::OK);
    let applied = eventually(Duration::from_secs(5), || async {
        (app.count_where("webhook_events", "event_id = 'evt_dispute_closed_again' AND status = 'processed'").await == 1)
            .then_some(())
    });
    assert!(applied.await.is_some());
    assert_eq!(client.balance().await, -100);
    assert_eq!(app.count_where("credit_ledger", "kind = 'dispute_debit'").await, 1);

    // The account waits for an admin before it buys again.
    let refused = client.create_intent("starter-25", Some("pm_card_visa")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.error_code(), "account_flagged");
    let one = app.get(&format!("/api/v1/admin/disputes/{id}"), Some(&admin)).await;
    let history: Vec<&str> =
        one.data()["transaction"]["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(history.contains(&"dispute_needs_response") && history.contains(&"dispute_lost"), "{history:?}");
    // A closed dispute takes no more answers.
    let late =
        app.post(&format!("/api/v1/admin/disputes/{id}/accept"), Some(&admin), &json!({ "reason": "late" })).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert_eq!(late.error_code(), "dispute_closed");
}

// A won dispute changes nothing, and a late report that says otherwise does not reopen it.
async fn a_won_dispute_changes_nothing(db: Db) {
    let app = spawn_app(db).await;
    let (transaction, dispute) = disputed_purchase(&app, "dispute-2", 0).await;
    let id = dispute["id"].as_str().unwrap().to_owned();
    let admin = app.token("admin-d", Role::Admin);
    let body = json!({ "text": "winning_evidence" });
    let answered = app.post(&format!("/api/v1/admin/disputes/{id}/evidence"), Some(&admin), &body).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    dispute_of(&app, &admin, &transaction, "won").await;

    let intent = dispute["details"]["payment_intent"].clone();
    let late = json!({ "id": "evt_late_lost", "object": "event", "type": "charge.dispute.updated",
        "data": { "object": { "id": id, "object": "dispute", "amount": 16000, "currency": "usd",
            "reason": "fraudulent", "status": "lost", "payment_intent": intent } } });
    assert_eq!(app.send_stripe_event(&late).await.status, StatusCode::OK);
    let applied = eventually(Duration::from_secs(5), || async {
        (app.count_where("webhook_events", "event_id = 'evt_late_lost' AND status = 'processed'").await == 1)
            .then_some(())
    });
    assert!(applied.await.is_some());
    let one = app.get(&format!("/api/v1/admin/disputes/{id}"), Some(&admin)).await;
    assert_eq!(one.data()["status"], "won");
    assert_eq!(one.data()["creditsDebited"], 0);
    assert_eq!(app.client("dispute-2").balance().await, 240);
    assert_eq!(app.count_where("fraud_flags", "client_id = 'dispute-2'").await, 0);
}

// Conceding closes the dispute at once; the credits go back with the money. Bad answers change nothing.
async fn conceding_a_dispute_and_bad_answers(db: Db) {
    let app = spawn_app(db).await;
    let (transaction, dispute) = disputed_purchase(&app, "dispute-3", 40).await;
    let id = dispute["id"].as_str().unwrap().to_owned();
    let admin = app.token("admin-d", Role::Admin);
    let path = format!("/api/v1/admin/disputes/{id}");
    let client = app.client("dispute-3");

    let content = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let bad = [
        (json!({ "text": "  " }), "invalid_evidence"),
        (json!({ "text": "x".repeat(20_001) }), "invalid_evidence"),
        (
            json!({ "text": "log", "file": { "name": "run.exe", "contentBase64": content(b"MZ") } }),
            "invalid_evidence_file",
        ),
        (
            json!({ "text": "log", "file": { "name": "log.pdf", "contentBase64": "not base64!" } }),
            "invalid_evidence_file",
        ),
        (json!({ "text": "log", "file": { "name": "log.pdf", "contentBase64": "" } }), "invalid_evidence_file"),
    ];
    for (body, code) in bad {
        let refused = app.post(&format!("{path}/evidence"), Some(&admin), &body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(refused.error_code(), code, "{body}");
    }
    let too_big = evidence_sized(4 * 1024 * 1024 + 1);
    let refused = app.post(&format!("{path}/evidence"), Some(&admin), &too_big).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "invalid_evidence_file");
    let unknown = app.post("/api/v1/admin/disputes/dp_nobody/evidence", Some(&admin), &json!({ "text": "x" })).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let by_client = app.post(&format!("{path}/accept"), Some(&client.token), &json!({ "reason": "mine" })).await;
    assert_eq!(by_client.status, StatusCode::FORBIDDEN);
    let anonymous = app.post(&format!("{path}/accept"), None, &json!({ "reason": "x" })).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.post(&format!("{path}/accept"), Some(&admin), &json!({ "reason": " " })).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.count_where("admin_actions", "action LIKE 'dispute_%'").await, 0);
    assert_eq!(app.get(&path, Some(&admin)).await.data()["status"], "needs_response");

    let conceded = app.post(&format!("{path}/accept"), Some(&admin), &json!({ "reason": "the card was stolen" })).await;
    assert_eq!(conceded.status, StatusCode::OK, "{}", conceded.body);
    assert_eq!(conceded.data()["status"], "lost");
    assert_eq!(conceded.data()["creditsDebited"], 240);
    assert_eq!(client.balance().await, -40);
    assert_eq!(app.count_where("admin_actions", "action = 'dispute_accept'").await, 1);
    // The sandbox's own charge.dispute.closed follows, and takes nothing more.
    let settled = eventually(Duration::from_secs(10), || async {
        (app.count_where("webhook_events", "event_type = 'charge.dispute.closed' AND status = 'processed'").await == 1)
            .then_some(())
    });
    assert!(settled.await.is_some());
    assert_eq!(client.balance().await, -40);
    dispute_of(&app, &admin, &transaction, "lost").await;
}

/// Evidence whose file holds `size` bytes.
fn evidence_sized(size: usize) -> Value {
    let content = base64::engine::general_purpose::STANDARD.encode(vec![b'%'; size]);
    json!({ "text": "log", "file": { "name": "big.pdf", "contentBase64": content } })
}

// On Stripe: the document goes up through Stripe's file upload, the evidence is submitted with it, and the
// `charge.dispute.closed` that says lost takes the credits back.
async fn a_stripe_dispute_is_answered_with_a_document(db: Db) {
    let (app, proxy) = crate::stripe::stripe_app_with(db, |_| {}).await;
    let client = app.client("dispute-4");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    let opened = proxy.open_dispute(&intent, 16000);
    let id = opened["id"].as_str().unwrap().to_owned();
    let event = |kind: &str, object: Value| {
        json!({ "id": format!("evt_{}", uuid::Uuid::new_v4().simple()), "object": "event", "type": kind,
            "created": chrono::Utc::now().timestamp(), "data": { "object": object } })
    };
    let created = event("charge.dispute.created", opened);
    assert_eq!(app.send_signed_event(&created, crate::stripe::WEBHOOK_SECRET).await.status, StatusCode::OK);
    let admin = app.token("admin-d", Role::Admin);
    dispute_of(&app, &admin, &transaction, "needs_response").await;

    let answered =
        app.post(&format!("/api/v1/admin/disputes/{id}/evidence"), Some(&admin), &evidence("Used on 3 May")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    assert_eq!(answered.data()["status"], "under_review");
    assert_eq!(answered.data()["providerStatus"], "under_review");
    let at_stripe = proxy.dispute(&id);
    assert_eq!(at_stripe["evidence"]["uncategorized_text"], "Used on 3 May");
    let file = at_stripe["evidence"]["uncategorized_file"].as_str().expect("the document's file id").to_owned();
    let (purpose, name, bytes) = proxy.file(&file).expect("the document was uploaded");
    assert_eq!(
        (purpose.as_str(), name.as_str(), bytes.as_slice()),
        ("dispute_evidence", "usage-log.pdf", EVIDENCE_PDF)
    );

    let mut lost = at_stripe.clone();
    lost["status"] = json!("lost");
    let closed = event("charge.dispute.closed", lost);
    assert_eq!(app.send_signed_event(&closed, crate::stripe::WEBHOOK_SECRET).await.status, StatusCode::OK);
    assert_eq!(dispute_of(&app, &admin, &transaction, "lost").await["creditsDebited"], 240);
    assert_eq!(client.balance().await, 0);
}

// A dispute lost at Stripe whose webhook never came is found by the reconciler's read; a read Stripe refuses gives
// the dispute back at once, so the next tick reads it again instead of waiting out the two-minute claim.
async fn a_lost_dispute_whose_webhook_never_came_is_read_again_after_a_failed_read(db: Db) {
    let (app, proxy) = crate::stripe::stripe_app_with(db, |s| {
        s.payments.reconcile_every = Duration::from_millis(100);
        s.payments.reconcile_after = Duration::from_millis(500);
    })
    .await;
    let client = app.client("dispute-6");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    let opened = proxy.open_dispute(&intent, 16000);
    let id = opened["id"].as_str().unwrap().to_owned();
    let created = json!({ "id": "evt_dispute_6_created", "object": "event", "type": "charge.dispute.created",
        "created": chrono::Utc::now().timestamp(), "data": { "object": opened } });
    assert_eq!(app.send_signed_event(&created, crate::stripe::WEBHOOK_SECRET).await.status, StatusCode::OK);
    let admin = app.token("admin-d", Role::Admin);
    dispute_of(&app, &admin, &transaction, "needs_response").await;

    proxy.faults.reject_next.store(1, Ordering::SeqCst);
    proxy.decide_dispute(&id, "lost");
    let refused = eventually(Duration::from_secs(10), || async {
        (proxy.faults.reject_next.load(Ordering::SeqCst) == 0).then_some(())
    });
    assert!(refused.await.is_some(), "the reconciler never read the dispute");
    assert_eq!(dispute_of(&app, &admin, &transaction, "lost").await["creditsDebited"], 240);
    assert_eq!(client.balance().await, 0);
}

// On PayPal: a claim answered with evidence (PayPal's provide-evidence, with the document) goes under review, and
// PayPal's resolution for the buyer takes the credits back; another claim, accepted, is lost at once.
async fn paypal_claims_are_answered_and_settled(db: Db) {
    let (app, fake) = crate::paypal::paypal_app(db, |_| {}).await;
    let client = app.client("dispute-5");
    let admin = app.token("admin-d", Role::Admin);
    let mut claims = Vec::new();
    for _ in 0..2 {
        let (transaction, capture) = crate::paypal::paid_order(&app, &client, &fake).await;
        claims.push((transaction, fake.raise_claim(&capture, "160.00").await));
    }
    assert_eq!(client.balance().await, 480);

    let (first, claim) = &claims[0];
    dispute_of(&app, &admin, first, "needs_response").await;
    let answered =
        app.post(&format!("/api/v1/admin/disputes/{claim}/evidence"), Some(&admin), &evidence("Delivered")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    assert_eq!(answered.data()["status"], "under_review");
    let sent = fake.dispute_answers().pop().unwrap();
    assert_eq!((sent.dispute.as_str(), sent.action.as_str()), (claim.as_str(), "provide-evidence"));
    assert_eq!(sent.input["evidences"][0]["notes"], "Delivered");
    assert_eq!(sent.document, Some(("usage-log.pdf".to_owned(), EVIDENCE_PDF.to_vec())));
    assert_eq!(fake.resolve_dispute(claim, "RESOLVED_BUYER_FAVOUR").await, 200);
    assert_eq!(dispute_of(&app, &admin, first, "lost").await["creditsDebited"], 240);
    assert_eq!(client.balance().await, 240);

    let (second, claim) = &claims[1];
    dispute_of(&app, &admin, second, "needs_response").await;
    let body = json!({ "reason": "not worth contesting" });
    let accepted = app.post(&format!("/api/v1/admin/disputes/{claim}/accept"), Some(&admin), &body).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.data()["status"], "lost");
    assert_eq!(accepted.data()["providerStatus"], "RESOLVED (ACCEPTED)");
    assert_eq!(fake.dispute_answers().pop().unwrap().input["note"], "not worth contesting");
    assert_eq!(client.balance().await, 0);
    // PayPal's own CUSTOMER.DISPUTE.RESOLVED follows the acceptance and takes nothing more.
    let settled = eventually(Duration::from_secs(10), || async {
        let resolved = "event_type = 'CUSTOMER.DISPUTE.RESOLVED' AND status = 'processed'";
        (app.count_where("webhook_events", resolved).await == 2).then_some(())
    });
    assert!(settled.await.is_some());
    assert_eq!(client.balance().await, 0);
    assert_eq!(app.count_where("credit_ledger", "kind = 'dispute_debit'").await, 2);
}

/// Stripe's `charge.dispute.closed` for dispute `id` of the whole `pro-200` payment of `intent`, lost.
fn dispute_lost_event(id: &str, intent: &str) -> Value {
    let dispute = json!({ "id": id, "object": "dispute", "status": "lost", "reason": "fraudulent",
        "amount": 16000, "currency": "usd", "payment_intent": intent });
    json!({ "id": format!("evt_{id}"), "object": "event", "type": "charge.dispute.closed", "data": { "object": dispute } })
}

// A dispute lost before Purser learns that the payment succeeded (its news first, the payment's after, as when the
// node that confirmed the payment was down) takes the credits back in the step that grants them, once.
async fn a_dispute_lost_before_the_grant_takes_the_credits_back_with_it(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("dispute-early");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    let lost = dispute_lost_event("dp_early_lost", &intent);
    assert_eq!(app.send_stripe_event(&lost).await.status, StatusCode::OK);
    let admin = app.token("admin-d", Role::Admin);
    assert_eq!(dispute_of(&app, &admin, &transaction, "lost").await["creditsDebited"], 0, "nothing granted yet");

    let confirmed = client.confirm(&intent, "pro-200").await;
    assert_eq!(confirmed.data()["status"], "succeeded", "{}", confirmed.body);
    assert_eq!(client.balance().await, 0, "granted and taken back in one step");
    assert_eq!(dispute_of(&app, &admin, &transaction, "lost").await["creditsDebited"], 240);
    assert_eq!(app.count_where("credit_ledger", "kind = 'dispute_debit'").await, 1);
}

// A lost dispute whose news came before the payment's grant but whose step ran after it: the step held up (here by
// its dispute's lock, which the test holds; in a chaos run by a batch on another lane), the grant committed meanwhile
// without the dispute to see, and a step deciding on the purchase as read when the news came took nothing back.
// PostgreSQL only: SQLite's one writer has no lock to hold the step up with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_dispute_whose_step_follows_the_grant_takes_the_credits_back() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    let app = spawn_app(Db::Postgres).await;
    let client = app.client("dispute-late-step");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    let lost = dispute_lost_event("dp_late_step", &intent);
    let holder = sea_orm::Database::connect(&app.database.url).await.expect("connect to hold the lock");
    let held = holder.begin().await.unwrap();
    let lock = "SELECT pg_advisory_xact_lock(hashtextextended('dispute:dp_late_step', 0))";
    held.execute_raw(Statement::from_string(DbBackend::Postgres, lock)).await.unwrap();
    let grant_meanwhile = async {
        let stored = eventually(Duration::from_secs(10), || async {
            (app.count_where("webhook_events", "event_id = 'evt_dp_late_step'").await > 0).then_some(())
        });
        assert!(stored.await.is_some(), "the dispute's news was stored");
        let confirmed = client.confirm(&intent, "pro-200").await;
        assert_eq!(confirmed.data()["status"], "succeeded", "{}", confirmed.body);
        held.commit().await.unwrap();
    };
    let (sent, ()) = tokio::join!(app.send_stripe_event(&lost), grant_meanwhile);
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let admin = app.token("admin-d", Role::Admin);
    assert_eq!(dispute_of(&app, &admin, &transaction, "lost").await["creditsDebited"], 240);
    assert_eq!(client.balance().await, 0, "granted, then taken back");
    assert_eq!(app.count_where("credit_ledger", "kind = 'dispute_debit'").await, 1);
}

on_both_databases!(
    a_dispute_lost_before_the_grant_takes_the_credits_back_with_it,
    a_lost_dispute_takes_the_credits_back_once,
    a_won_dispute_changes_nothing,
    conceding_a_dispute_and_bad_answers,
    a_stripe_dispute_is_answered_with_a_document,
    a_lost_dispute_whose_webhook_never_came_is_read_again_after_a_failed_read,
    paypal_claims_are_answered_and_settled,
);
