//! Refunds through admin approval (AC9.5.1–AC9.5.7), on the sandbox, with the client's emails.
use crate::helpers::{Answer, Client, Db, TestApp, spawn_app};
use crate::on_both_databases;
use purser::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

async fn paid(client: &Client<'_>, method: &str) -> String {
    let (transaction, intent) = client.open("pro-200", method).await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    transaction
}

async fn ask(client: &Client<'_>, transaction: &str) -> Answer {
    let body = json!({ "transactionId": transaction, "reason": "Unused credits", "details": "No longer need service" });
    client.app.post("/api/v1/payments/refund", Some(&client.token), &body).await
}

async fn decide(app: &TestApp, refund: &str, verdict: &str, body: serde_json::Value) -> Answer {
    let admin = app.token("admin-9", Role::Admin);
    app.post(&format!("/api/v1/admin/refunds/{refund}/{verdict}"), Some(&admin), &body).await
}

// AC9.5.1, AC9.5.2, AC9.5.3, AC9.5.6: the policy, the request, approval, the money back and the receipt.
async fn an_approved_refund_pays_back_and_sends_a_receipt(db: Db) {
    let app = spawn_app(db).await;
    let policy = app.get("/api/v1/payments/refund-policy", None).await;
    assert_eq!(policy.data()["windowDays"], 30);
    assert_eq!(policy.data()["adminApprovalRequired"], true);
    let client = app.client_with_email("refund-1", "refund-1@example.com");
    let transaction = paid(&client, "pm_card_visa").await;

    let asked = ask(&client, &transaction).await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    assert_eq!(asked.data()["status"], "pending_review");
    assert_eq!(asked.data()["estimatedProcessing"], "1-2 business days");
    assert_eq!((asked.data()["credits"].as_i64(), asked.data()["amount"].as_i64()), (Some(240), Some(16000)));
    let refund = asked.data()["refundRequestId"].as_str().unwrap().to_owned();
    let admin = app.token("admin-9", Role::Admin);
    let queue = app.get("/api/v1/admin/refunds?status=pending_review", Some(&admin)).await;
    assert_eq!(queue.data()[0]["refundRequestId"], refund.as_str());
    assert_eq!(client.balance().await, 240, "nothing moves before approval");

    let approved = decide(&app, &refund, "approve", json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.data()["status"], "refunded");
    assert!(approved.data()["providerRefund"].as_str().unwrap().starts_with("re_sbx_"));
    assert_eq!(client.balance().await, 0);
    assert_eq!(app.count_where("credit_ledger", "kind = 'refund_debit' AND credits = -240").await, 1);
    let row = app.get("/api/v1/admin/payments?clientId=refund-1", Some(&admin)).await;
    assert_eq!(
        (row.data()["items"][0]["amount"].as_i64(), row.data()["items"][0]["refunded"].as_i64()),
        (Some(16000), Some(16000))
    );
    let receipt = app.mail_containing("Subject: Refund receipt: 160.00 USD").await.expect("the refund receipt");
    assert!(receipt.contains("5-10 business days") && receipt.contains("To: refund-1@example.com"), "{receipt}");
    assert!(app.mail_containing("was approved").await.is_some());

    let again = ask(&client, &transaction).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "already_refunded");
}

// AC9.5.5: only the unused credits come back, in proportion, rounded down.
async fn a_partial_refund_is_proportional_to_unused_credits(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("refund-2");
    let transaction = paid(&client, "pm_card_visa").await;
    let admin = app.token("admin-9", Role::Admin);
    let used = app
        .post(
            "/api/v1/admin/credits/adjust",
            Some(&admin),
            &json!({ "clientId": "refund-2", "credits": -140, "reason": "usage" }),
        )
        .await;
    assert_eq!(used.data()["balance"], 100);
    let too_much = app
        .post(
            "/api/v1/admin/credits/adjust",
            Some(&admin),
            &json!({ "clientId": "refund-2", "credits": -101, "reason": "usage" }),
        )
        .await;
    assert_eq!(too_much.error_code(), "insufficient_credits", "a balance never goes below zero");
    let asked = ask(&client, &transaction).await;
    assert_eq!((asked.data()["credits"].as_i64(), asked.data()["amount"].as_i64()), (Some(100), Some(6666)));
    let refund = asked.data()["refundRequestId"].as_str().unwrap().to_owned();
    let done = decide(&app, &refund, "approve", json!({})).await;
    assert_eq!((done.data()["status"].as_str(), done.data()["amount"].as_i64()), (Some("refunded"), Some(6666)));
    assert_eq!(client.balance().await, 0);
}

// Twenty concurrent takes of 200 credits from a balance of 240: exactly one goes through, and the balance never goes
// below zero, on PostgreSQL's concurrent transactions as on SQLite's single writer.
async fn concurrent_takes_never_overdraw(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("refund-race");
    paid(&client, "pm_card_visa").await;
    let admin = app.token("admin-race", Role::Admin);
    let take = json!({ "clientId": "refund-race", "credits": -200, "reason": "usage" });
    let statuses = at_once(&app, 20, "/api/v1/admin/credits/adjust", &admin, take).await;
    assert_eq!((count(&statuses, StatusCode::OK), count(&statuses, StatusCode::CONFLICT)), (1, 19), "{statuses:?}");
    assert_eq!(client.balance().await, 40);
}

// AC9.5.4: a denial comes with its reason and one appeal.
async fn a_denied_refund_can_be_appealed_once(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client_with_email("refund-3", "refund-3@example.com");
    let transaction = paid(&client, "pm_card_visa").await;
    let refund = ask(&client, &transaction).await.data()["refundRequestId"].as_str().unwrap().to_owned();
    let no_reason = decide(&app, &refund, "deny", json!({ "reason": " " })).await;
    assert_eq!(no_reason.status, StatusCode::CONFLICT);
    let denied = decide(&app, &refund, "deny", json!({ "reason": "Credits were used for a campaign" })).await;
    assert_eq!(denied.data()["status"], "denied");
    assert_eq!(denied.data()["appealAvailable"], true);
    let mail = app.mail_containing("Reason: Credits were used for a campaign").await.expect("the denial email");
    assert!(mail.contains("appeal"));

    let path = format!("/api/v1/payments/refunds/{refund}/appeal");
    let appealed = app.post(&path, Some(&client.token), &json!({ "message": "They were not used" })).await;
    assert_eq!(appealed.data()["status"], "appealed");
    assert_eq!(
        decide(&app, &refund, "deny", json!({ "reason": "Checked again" })).await.data()["appealAvailable"],
        false
    );
    let second = app.post(&path, Some(&client.token), &json!({ "message": "Please" })).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(client.balance().await, 240);
}

// AC9.5.7: the card expired before the refund: the client is asked for another method.
async fn an_expired_card_asks_for_another_method(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client_with_email("refund-4", "refund-4@example.com");
    let transaction = paid(&client, "pm_sandbox_expiresBeforeRefund").await;
    let refund = ask(&client, &transaction).await.data()["refundRequestId"].as_str().unwrap().to_owned();
    let approved = decide(&app, &refund, "approve", json!({})).await;
    assert_eq!(approved.data()["status"], "needs_alternative_method");
    assert_eq!(approved.data()["failure"], "expired_or_canceled_card");
    assert!(app.mail_containing("We need another way to refund you").await.is_some());
    // A permanent refusal is an admin alert, committed with the refund's state.
    assert_eq!(
        app.count_where(
            "alerts",
            &format!("kind = 'refund_refused' AND key LIKE 'refund_refused:{}:%'", crate::helpers::uuid_of(&refund))
        )
        .await,
        1
    );
}

async fn bad_refund_requests_get_clear_errors(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.client("refund-5");
    let transaction = paid(&owner, "pm_card_visa").await;
    let stranger = app.client("refund-6");
    assert_eq!(ask(&stranger, &transaction).await.error_code(), "transaction_not_found");
    let (unpaid, _) = owner.open("starter-25", "pm_card_visa").await;
    assert_eq!(ask(&owner, &unpaid).await.error_code(), "not_refundable");
    assert_eq!(ask(&owner, &transaction).await.status, StatusCode::ACCEPTED);
    assert_eq!(ask(&owner, &transaction).await.error_code(), "refund_already_requested");
    let refund = owner.app.get("/api/v1/payments/refunds", Some(&owner.token)).await.data()[0]["refundRequestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let client_approving =
        app.post(&format!("/api/v1/admin/refunds/{refund}/approve"), Some(&owner.token), &json!({})).await;
    assert_eq!(client_approving.status, StatusCode::FORBIDDEN);
    let empty = app
        .post("/api/v1/payments/refund", Some(&owner.token), &json!({ "transactionId": transaction, "reason": "" }))
        .await;
    assert_eq!(empty.error_code(), "invalid_request");
    assert_eq!(app.count_rows("refund_requests").await, 1);
}

// A duplicated `charge.refunded` (self-signed; Stripe may send it more than once) changes nothing twice.
async fn a_duplicated_refund_webhook_is_harmless(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("refund-7");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    client.confirm(&intent, "pro-200").await;
    let refund = ask(&client, &transaction).await.data()["refundRequestId"].as_str().unwrap().to_owned();
    assert_eq!(decide(&app, &refund, "approve", json!({})).await.data()["status"], "refunded");
    let event = json!({ "id": "evt_refunded_1", "object": "event", "type": "charge.refunded",
        "data": { "object": { "id": "ch_1", "object": "charge", "payment_intent": intent, "refunds": { "data": [{ "id": "re_1" }] } } } });
    assert_eq!(app.send_stripe_event(&event).await.status, StatusCode::OK);
    assert_eq!(app.send_stripe_event(&event).await.body["duplicate"], true);
    assert_eq!(app.count_where("credit_ledger", "kind = 'refund_debit'").await, 1);
    assert_eq!(client.balance().await, 0);
}

/// Sends `n` copies of one POST at once and returns each answer's status.
async fn at_once(app: &TestApp, n: usize, path: &str, token: &str, body: serde_json::Value) -> Vec<StatusCode> {
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = app.http.post(format!("{}{path}", app.base)).bearer_auth(token).json(&body);
        calls.spawn(async move { request.send().await.expect("an answer").status() });
    }
    calls.join_all().await
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

// Issue 13 (1): one open request per purchase and one debit, however many ask or approve at once.
async fn concurrent_requests_and_approvals_make_one_refund(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("refund-burst");
    let transaction = paid(&client, "pm_card_visa").await;
    let body = json!({ "transactionId": transaction, "reason": "Unused credits" });
    let asked = at_once(&app, 8, "/api/v1/payments/refund", &client.token, body).await;
    assert_eq!((count(&asked, StatusCode::ACCEPTED), count(&asked, StatusCode::CONFLICT)), (1, 7), "{asked:?}");
    assert_eq!(app.count_rows("refund_requests").await, 1);

    let admin = app.token("admin-burst", Role::Admin);
    let queue = app.get("/api/v1/admin/refunds", Some(&admin)).await;
    let refund = queue.data()[0]["refundRequestId"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/admin/refunds/{refund}/approve");
    let approved = at_once(&app, 8, &approve, &admin, json!({})).await;
    assert_eq!((count(&approved, StatusCode::OK), count(&approved, StatusCode::CONFLICT)), (1, 7), "{approved:?}");
    assert_eq!(app.count_where("credit_ledger", "kind = 'refund_debit'").await, 1);
    assert_eq!(client.balance().await, 0);
}

// Issue 13 (1): an adjustment is bounded, and the audit trail says who made it and why.
async fn credit_adjustments_are_bounded_and_audited(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("adjust-1");
    paid(&client, "pm_card_visa").await;
    let admin = app.token("admin-adjust", Role::Admin);
    let adjust = async |credits: i64, reason: &str| {
        let body = json!({ "clientId": "adjust-1", "credits": credits, "reason": reason });
        app.post("/api/v1/admin/credits/adjust", Some(&admin), &body).await
    };
    for credits in [i64::MIN, -1_000_000_001, 1_000_000_001, i64::MAX, 0] {
        let refused = adjust(credits, "typo").await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{credits}: {}", refused.body);
        assert_eq!(refused.error_code(), "invalid_request");
    }
    let refused = adjust(10, &"x".repeat(501)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(client.balance().await, 240, "nothing moved");

    let given = adjust(10, "goodwill for the outage").await;
    assert_eq!(given.data()["balance"], 250);
    let audited = "admin = 'admin-adjust' AND action = 'adjust_credits' AND target = 'adjust-1' \
        AND reason LIKE '+10 credits%goodwill for the outage'";
    assert_eq!(app.count_where("admin_actions", audited).await, 1);
    assert_eq!(app.count_where("admin_actions", "action = 'adjust_credits'").await, 1);
}

on_both_databases!(
    concurrent_requests_and_approvals_make_one_refund,
    credit_adjustments_are_bounded_and_audited,
    an_approved_refund_pays_back_and_sends_a_receipt,
    a_partial_refund_is_proportional_to_unused_credits,
    concurrent_takes_never_overdraw,
    a_denied_refund_can_be_appealed_once,
    an_expired_card_asks_for_another_method,
    bad_refund_requests_get_clear_errors,
    a_duplicated_refund_webhook_is_harmless,
);
