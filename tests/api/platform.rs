//! Issue 18, the platform's side: its backend, with a `service` token, spends a client's credits on what they
//! bought (once per Idempotency-Key, never below zero), gives a spend back once, and reads a client's statement; the
//! service role can do nothing else.
use crate::helpers::{Db, TestApp, spawn_app};
use crate::on_both_databases;
use purser::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn spend(app: &TestApp, token: &str, key: &str, body: &Value) -> crate::helpers::Answer {
    let headers = [("content-type", "application/json"), ("idempotency-key", key)];
    app.post_raw("/api/v1/credits/spend", Some(token), &headers, body.to_string()).await
}

/// A client with the 240 credits of `pro-200`.
async fn funded(app: &TestApp, client: &str) {
    let client = app.client(client);
    let (_, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
}

async fn a_spend_retried_with_its_key_spends_once_and_reverses_once(db: Db) {
    let app = spawn_app(db).await;
    funded(&app, "plat-1").await;
    let service = app.token("platform-backend", Role::Service);
    let body = json!({ "clientId": "plat-1", "credits": 40, "reference": "job-17", "description": "a 4K render" });
    let first = spend(&app, &service, "spend-job-17", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let spent = first.data().clone();
    assert!(spent["spendId"].as_str().unwrap().starts_with("spd_"), "{spent}");
    assert_eq!(spent["balance"], 200);
    let again = spend(&app, &service, "spend-job-17", &body).await;
    assert_eq!(again.data()["spendId"], spent["spendId"], "a retry answers the first spend");
    assert_eq!(app.count_rows("spends").await, 1);
    let other = json!({ "clientId": "plat-1", "credits": 41, "reference": "job-17", "description": "a 4K render" });
    let reused = spend(&app, &service, "spend-job-17", &other).await;
    assert_eq!((reused.status, reused.error_code()), (StatusCode::CONFLICT, "idempotency_key_reused"));
    let short = json!({ "clientId": "plat-1", "credits": 1000, "reference": "job-99" });
    let refused = spend(&app, &service, "spend-job-99", &short).await;
    assert_eq!(spend(&app, &service, "spend-job-99", &short).await.body, refused.body, "a refusal is kept too");
    let client = app.client("plat-1");
    assert_eq!(client.balance().await, 200);

    let unkeyed = app.post("/api/v1/credits/spend", Some(&service), &body).await;
    assert_eq!(unkeyed.status, StatusCode::BAD_REQUEST);
    assert_eq!(unkeyed.error_code(), "idempotency_key_required");
    let too_much = json!({ "clientId": "plat-1", "credits": 201, "reference": "job-18" });
    let refused = spend(&app, &service, "spend-job-18", &too_much).await;
    assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(refused.error_code(), "insufficient_credits");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("200"), "{}", refused.body);
    for (bad, code) in [
        (json!({ "clientId": "plat-1", "credits": 0, "reference": "x" }), "invalid_spend"),
        (json!({ "clientId": "plat-1", "credits": 5, "reference": " " }), "invalid_spend"),
        (json!({ "clientId": "not a client", "credits": 5, "reference": "x" }), "invalid_client_id"),
    ] {
        let answer = spend(&app, &service, &format!("bad-{code}-{}", bad["credits"]), &bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.error_code(), code, "{bad}");
    }
    assert_eq!(app.count_rows("spends").await, 1, "refusals write nothing");

    let path = format!("/api/v1/credits/spends/{}/reverse", spent["spendId"].as_str().unwrap());
    let reversed = app.post(&path, Some(&service), &json!({ "reason": "the render failed" })).await;
    assert_eq!(reversed.status, StatusCode::OK, "{}", reversed.body);
    assert_eq!(reversed.data()["balance"], 240);
    let twice = app.post(&path, Some(&service), &json!({ "reason": "again" })).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.error_code(), "already_reversed");
    assert_eq!(client.balance().await, 240);

    let statement = app.get("/api/v1/credits/ledger/plat-1", Some(&service)).await;
    let items = statement.data()["items"].as_array().unwrap().clone();
    let kinds: Vec<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
    assert_eq!(kinds, ["purchase_grant", "spend", "spend_reversal"]);
    assert!(items[0]["source"].as_str().unwrap().starts_with("txn_"));
    assert_eq!(items[1]["source"], spent["spendId"]);
    assert_eq!((items[1]["credits"].as_i64(), items[1]["reference"].as_str()), (Some(-40), Some("job-17")));
    assert_eq!(statement.data()["balance"], 240);
    let own = app.get("/api/v1/credits/ledger", Some(&client.token)).await;
    assert_eq!(own.data()["items"].as_array().unwrap().len(), 3);
    let other = app.get("/api/v1/credits/ledger/someone-else", Some(&client.token)).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

// The service role reads and spends credits, nothing else; nobody else spends.
async fn the_service_role_does_nothing_else(db: Db) {
    let app = spawn_app(db).await;
    let service = app.token("platform-backend", Role::Service);
    for path in ["/api/v1/admin/payments", "/api/v1/admin/refunds", "/api/v1/admin/disputes", "/api/v1/credits/balance"]
    {
        assert_eq!(app.get(path, Some(&service)).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let pause = json!({ "scope": "platform", "reason": "no" });
    assert_eq!(app.post("/api/v1/admin/controls/pause", Some(&service), &pause).await.status, StatusCode::FORBIDDEN);
    let checkout = json!({ "packageId": "pro-200", "paymentMethodId": "pm_card_visa" });
    assert_eq!(
        app.post("/api/v1/payments/stripe/intent", Some(&service), &checkout).await.status,
        StatusCode::FORBIDDEN
    );
    let body = json!({ "clientId": "plat-2", "credits": 1, "reference": "x" });
    for token in [app.client("plat-2").token, app.token("admin-p", Role::Admin)] {
        assert_eq!(spend(&app, &token, "k", &body).await.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(spend(&app, "", "k", &body).await.status, StatusCode::UNAUTHORIZED);
}

// Many spends at once, on several keys, never take a balance below zero: exactly as many pass as it can pay for.
async fn concurrent_spends_never_overdraw(db: Db) {
    let app = spawn_app(db).await;
    funded(&app, "plat-3").await;
    let service = app.token("platform-backend", Role::Service);
    let body = json!({ "clientId": "plat-3", "credits": 50, "reference": "burst" });
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..10 {
        let (http, url) = (app.http.clone(), format!("{}/api/v1/credits/spend", app.base));
        let (service, body) = (service.clone(), body.to_string());
        burst.spawn(async move {
            let request = http.post(url).bearer_auth(service).header("content-type", "application/json");
            request.header("idempotency-key", format!("burst-{n}")).body(body).send().await.unwrap().status()
        });
    }
    let answers = burst.join_all().await;
    let passed = answers.iter().filter(|s| **s == StatusCode::CREATED).count();
    let refused = answers.iter().filter(|s| **s == StatusCode::PAYMENT_REQUIRED).count();
    assert_eq!((passed, refused), (4, 6), "{answers:?}");
    assert_eq!(app.client("plat-3").balance().await, 40);
}

// Refunds respect spending: the client is told what a refund would give back and why, and the request gives exactly
// that: the unused credits at the price paid; nothing once all are spent.
async fn a_refund_gives_back_only_unspent_credits_and_says_so(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client("plat-4");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    let quote_path = format!("/api/v1/payments/{transaction}/refundable");
    let whole = app.get(&quote_path, Some(&client.token)).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.body);
    assert_eq!((whole.data()["credits"].as_i64(), whole.data()["amount"].as_i64()), (Some(240), Some(16000)));
    assert_eq!(whole.data()["spent"], 0);

    let service = app.token("platform-backend", Role::Service);
    let body = json!({ "clientId": "plat-4", "credits": 60, "reference": "job-1" });
    assert_eq!(spend(&app, &service, "plat-4-job-1", &body).await.status, StatusCode::CREATED);
    let part = app.get(&quote_path, Some(&client.token)).await;
    assert_eq!(part.data()["refundable"], true);
    assert_eq!((part.data()["credits"].as_i64(), part.data()["amount"].as_i64()), (Some(180), Some(12000)));
    assert_eq!((part.data()["bought"].as_i64(), part.data()["spent"].as_i64()), (Some(240), Some(60)));
    let why = part.data()["why"].as_str().unwrap();
    assert!(why.contains("60 of the 240 credits") && why.contains("120.00 USD"), "{why}");
    let asked = json!({ "transactionId": transaction, "reason": "unused" });
    let refund = app.post("/api/v1/payments/refund", Some(&client.token), &asked).await;
    assert_eq!((refund.data()["credits"].as_i64(), refund.data()["amount"].as_i64()), (Some(180), Some(12000)));
    let admin = app.token("admin-plat", Role::Admin);
    let id = refund.data()["refundRequestId"].as_str().unwrap().to_owned();
    let denied =
        app.post(&format!("/api/v1/admin/refunds/{id}/deny"), Some(&admin), &json!({ "reason": "test" })).await;
    assert_eq!(denied.status, StatusCode::OK, "{}", denied.body);

    let rest = json!({ "clientId": "plat-4", "credits": 180, "reference": "job-2" });
    assert_eq!(spend(&app, &service, "plat-4-job-2", &rest).await.status, StatusCode::CREATED);
    let none = app.get(&quote_path, Some(&client.token)).await;
    assert_eq!(
        (none.data()["refundable"].as_bool(), none.data()["code"].as_str()),
        (Some(false), Some("no_unused_credits"))
    );
    assert_eq!(none.data()["credits"], 0);
    let refused = app.post("/api/v1/payments/refund", Some(&client.token), &asked).await;
    assert_eq!(refused.error_code(), "no_unused_credits");

    let other = app.client("plat-5");
    assert_eq!(app.get(&quote_path, Some(&other.token)).await.status, StatusCode::NOT_FOUND);
    let bad = app.get("/api/v1/payments/txn_nope/refundable", Some(&client.token)).await;
    assert_eq!(bad.error_code(), "invalid_transaction_id");
}

async fn spend_with(app: &TestApp, key: &str, idempotency: &str) -> StatusCode {
    let body = json!({ "clientId": "plat-6", "credits": 1, "reference": idempotency });
    spend(app, key, idempotency, &body).await.status
}

// The platform's backend holds an API key (only its hash is stored) and rotates it without downtime: a second key,
// both valid, then the first revoked, refused everywhere at once.
async fn an_api_key_rotates_without_downtime(db: Db) {
    let app = spawn_app(db).await;
    funded(&app, "plat-6").await;
    let admin = app.token("admin-keys", Role::Admin);
    let made = app.post("/api/v1/admin/api-keys", Some(&admin), &json!({ "name": "platform-backend" })).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let first = made.data()["key"].as_str().unwrap().to_owned();
    assert!(first.starts_with("psk_"), "{first}");
    let secret = first.rsplit('_').next().unwrap();
    assert_eq!(app.count_where("api_keys", &format!("secret_hash = '{secret}'")).await, 0, "only its hash is stored");
    assert_eq!(app.count_where("api_keys", "length(secret_hash) = 64").await, 1);
    assert_eq!(spend_with(&app, &first, "key-1").await, StatusCode::CREATED);
    let statement = app.get("/api/v1/credits/ledger/plat-6", Some(&first)).await;
    assert_eq!(statement.data()["items"][1]["kind"], "spend");
    assert_eq!(app.get("/api/v1/admin/payments", Some(&first)).await.status, StatusCode::FORBIDDEN);

    let second = app.post("/api/v1/admin/api-keys", Some(&admin), &json!({ "name": "platform-backend" })).await;
    let second = second.data()["key"].as_str().unwrap().to_owned();
    assert_eq!(spend_with(&app, &first, "key-2").await, StatusCode::CREATED, "the first still works");
    assert_eq!(spend_with(&app, &second, "key-3").await, StatusCode::CREATED, "and so does the second");
    let listed = app.get("/api/v1/admin/api-keys", Some(&admin)).await;
    assert_eq!(listed.data().as_array().unwrap().len(), 2);
    assert!(!listed.body.to_string().contains("psk_"), "keys are never listed");

    let id = made.data()["id"].as_str().unwrap().to_owned();
    let revoke = format!("/api/v1/admin/api-keys/{id}/revoke");
    let revoked = app.post(&revoke, Some(&admin), &json!({ "reason": "rotated" })).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(spend_with(&app, &first, "key-4").await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/credits/ledger/plat-6", Some(&first)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(spend_with(&app, &second, "key-5").await, StatusCode::CREATED);
    assert_eq!(app.post(&revoke, Some(&admin), &json!({ "reason": "again" })).await.error_code(), "already_revoked");
    let unknown = app.post("/api/v1/admin/api-keys/0123456789ab/revoke", Some(&admin), &json!({ "reason": "x" })).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let forged = format!("{}{}", &second[..second.len() - 4], "0000");
    assert_eq!(spend_with(&app, &forged, "key-6").await, StatusCode::UNAUTHORIZED);
    let bad = app.post("/api/v1/admin/api-keys", Some(&admin), &json!({ "name": "not a name" })).await;
    assert_eq!(bad.error_code(), "invalid_name");
    assert_eq!(app.client("plat-6").balance().await, 240 - 4);
    assert_eq!(app.count_where("admin_actions", "action IN ('create_api_key', 'revoke_api_key')").await, 3);

    // `purser api-key` makes one from the command line, in the same database.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_purser"))
        .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"), "api-key", "--name", "platform-cli"])
        .env("PURSER_DATABASE__URL", &app.database.url)
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let printed = String::from_utf8(cli.stdout).unwrap();
    assert_eq!(spend_with(&app, printed.trim(), "key-7").await, StatusCode::CREATED);
}

on_both_databases!(
    an_api_key_rotates_without_downtime,
    a_refund_gives_back_only_unspent_credits_and_says_so,
    a_spend_retried_with_its_key_spends_once_and_reverses_once,
    the_service_role_does_nothing_else,
    concurrent_spends_never_overdraw,
);
