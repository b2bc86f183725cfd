//! The admin console API (issue 6): the transaction list, retry, and the revenue report.
use crate::helpers::{Db, spawn_app};
use crate::on_both_databases;
use purser::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

// AC9.6.1: all transactions, filtered, a page at a time.
async fn admins_page_through_filtered_transactions(db: Db) {
    let app = spawn_app(db).await;
    let admin = app.token("admin-a", Role::Admin);
    let (alice, bob) = (app.client("alice"), app.client("bob"));
    for method in ["pm_card_visa", "pm_card_visa_chargeDeclined", "pm_card_mastercard"] {
        let (_, intent) = alice.open("pro-200", method).await;
        alice.confirm(&intent, "pro-200").await;
    }
    bob.open("starter-25", "pm_card_visa").await;
    bob.open("starter-25", "pm_card_visa").await;

    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/admin/payments?limit=2&cursor={c}"),
            None => "/api/v1/admin/payments?limit=2".into(),
        };
        let page = app.get(&path, Some(&admin)).await;
        for item in page.data()["items"].as_array().unwrap() {
            assert!(seen.insert(item["transactionId"].as_str().unwrap().to_owned()), "no transaction twice");
        }
        match page.data()["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let failed = app.get("/api/v1/admin/payments?status=failed", Some(&admin)).await;
    let items = failed.data()["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!((items[0]["failureCode"].as_str(), items[0]["amount"].as_i64()), (Some("card_declined"), Some(16000)));
    let bobs = app.get("/api/v1/admin/payments?clientId=bob&maxAmount=3000", Some(&admin)).await;
    assert_eq!(bobs.data()["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.get("/api/v1/admin/payments?cursor=junk", Some(&admin)).await.error_code(), "invalid_cursor");
    assert_eq!(app.get("/api/v1/admin/payments", Some(&alice.token)).await.status, StatusCode::FORBIDDEN);

    // AC9.6.3: a failed payment retried by an admin, audited.
    let declined = items[0]["transactionId"].as_str().unwrap().to_owned();
    let retried = app
        .post(&format!("/api/v1/admin/payments/{declined}/retry"), Some(&admin), &json!({ "reason": "client asked" }))
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.data()["attempts"], 2);
    assert_eq!(app.count_where("admin_actions", "action = 'retry' AND admin = 'admin-a'").await, 1);
}

// AC9.6.5: revenue by period and method, gross, refunded and net, matching what was paid and refunded.
async fn the_revenue_report_matches_payments_and_refunds(db: Db) {
    let app = spawn_app(db).await;
    let admin = app.token("admin-r", Role::Admin);
    let client = app.client("payer");
    let mut paid = Vec::new();
    for package in ["pro-200", "starter-25"] {
        let (transaction, intent) = client.open(package, "pm_card_visa").await;
        client.confirm(&intent, package).await;
        paid.push(transaction);
    }
    let asked = app
        .post("/api/v1/payments/refund", Some(&client.token), &json!({ "transactionId": paid[1], "reason": "Unused" }))
        .await;
    let refund = asked.data()["refundRequestId"].as_str().unwrap().to_owned();
    app.post(&format!("/api/v1/admin/refunds/{refund}/approve"), Some(&admin), &json!({})).await;

    let report = app.get("/api/v1/admin/reports/revenue?period=month", Some(&admin)).await;
    let rows: Vec<Value> = report.data().as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!((row["method"].as_str(), row["currency"].as_str()), (Some("card"), Some("USD")));
    assert_eq!(
        (row["gross"].as_i64(), row["refunded"].as_i64(), row["net"].as_i64(), row["payments"].as_i64()),
        (Some(18500), Some(2500), Some(16000), Some(2))
    );
    let csv = app
        .http
        .get(format!("{}/api/v1/admin/reports/revenue?period=day&format=csv", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("periodStart,method,currency,gross,refunded,net,payments"), "{text}");
    assert!(text.contains(",card,USD,18500,2500,16000,2"), "{text}");
    assert_eq!(app.get("/api/v1/admin/reports/revenue?period=year", Some(&admin)).await.error_code(), "invalid_period");
}

async fn metrics_count_what_happened(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("metered");
    for method in ["pm_card_visa", "pm_card_visa_chargeDeclined"] {
        let (_, intent) = client.open("starter-25", method).await;
        client.confirm(&intent, "starter-25").await;
    }
    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(app.token("admin-metrics", Role::Admin))
        .send()
        .await
        .unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for line in [
        "purser_purchase_transitions_total{status=\"created\"} 2",
        "purser_purchase_transitions_total{status=\"succeeded\"} 1",
        "purser_purchase_transitions_total{status=\"failed\"} 1",
        "# TYPE purser_webhooks_received_total counter",
        "# TYPE purser_outbox_pending gauge",
        "purser_provider_call_seconds_count{rail=\"card\",operation=\"create_intent\"} 2",
        "purser_provider_call_seconds_count{rail=\"card\",operation=\"confirm_intent\"} 2",
        "purser_provider_call_errors_total{rail=\"card\",operation=\"confirm_intent\"} 0",
        "purser_circuit_state{rail=\"card\"} 0",
        // The declined purchase may still be retried until it expires; the paid one needs no deadline.
        "purser_scheduled_deadlines 1",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(!text.contains("metered"), "no client ids in metrics");
}

on_both_databases!(
    admins_page_through_filtered_transactions,
    the_revenue_report_matches_payments_and_refunds,
    metrics_count_what_happened
);
