//! `kill -9` in the middle of purchases, start again: every unfinished purchase has its actor and timers back,
//! nothing is lost, nothing is credited twice.
use crate::helpers::{Db, TestApp, fresh_database, start_node};
use crate::on_both_databases;
use reqwest::StatusCode;

async fn start_server(database_url: &str) -> (std::process::Child, String) {
    start_node(database_url, &[("PURSER_PAYMENTS__RETRY_BASE", "3s"), ("PURSER_PAYMENTS__CHECKOUT_TTL", "8s")]).await
}

async fn a_killed_service_recovers_every_unfinished_purchase(db: Db) {
    let database = fresh_database(db).await;
    let url = database.url.clone();
    let (mut first, base) = start_server(&url).await;
    let app = TestApp::external(base, database);
    let client = app.client("survivor");

    let (paid, paid_intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&paid_intent, "pro-200").await.data()["status"], "succeeded");
    let (retrying, retrying_intent) = client.open("pro-200", "pm_sandbox_transientProcessingError").await;
    assert_eq!(client.confirm(&retrying_intent, "pro-200").await.status, StatusCode::ACCEPTED);
    let (challenged, challenged_intent) = client.open("pro-200", "pm_card_authenticationRequired").await;
    assert_eq!(client.confirm(&challenged_intent, "pro-200").await.data()["status"], "requires_action");
    let unpaid = client.create_intent("starter-25", None).await.data()["transactionId"].as_str().unwrap().to_owned();

    first.kill().expect("kill -9");
    first.wait().ok();

    let (mut second, base) = start_server(&url).await;
    let mut app = app;
    app.base = base;
    let client = app.client("survivor");
    // The retry timer armed before the crash fires after it.
    client.wait_for_status(&retrying, "succeeded").await;
    // The 3-D Secure purchase waits for its cardholder, who finishes after the restart.
    assert_eq!(client.transaction(&challenged).await.data()["status"], "requires_action");
    assert_eq!(app.authenticate_3ds(&challenged_intent, true).await.status, StatusCode::OK);
    client.wait_for_status(&challenged, "succeeded").await;
    // The expiry deadline survives too.
    client.wait_for_status(&unpaid, "expired").await;
    assert_eq!(client.transaction(&paid).await.data()["status"], "succeeded");

    assert_eq!(client.balance().await, 3 * 240);
    assert_eq!(app.count_rows("credit_ledger").await, 3);
    second.kill().ok();
    second.wait().ok();
}

on_both_databases!(a_killed_service_recovers_every_unfinished_purchase);
