//! Issue 18, events to the platform: every change the platform cares about reaches its endpoint, signed, at least
//! once; an endpoint that answers 500 gets the event again; the events' ledger entries add up to Purser's ledger; an
//! admin sees each delivery and replays one.
use crate::helpers::{Db, TestApp, eventually, spawn_app_with};
use crate::on_both_databases;
use purser::auth::Role;
use purser::settings::{EventEndpoint, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "whsec_platform_test_0123456789";

/// What the platform's endpoint received: each request's signature header and body, in order.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    /// Listens on 127.0.0.1; answers the first request 500 (an outage), the rest 200.
    async fn start(&self) -> String {
        let requests = self.requests.clone();
        let handler = move |headers: axum::http::HeaderMap, body: String| {
            let requests = requests.clone();
            async move {
                let signature = headers.get("purser-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let mut requests = requests.lock().unwrap();
                requests.push((signature.to_owned(), body));
                if requests.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
            }
        };
        let router = axum::Router::new().route("/purser-events", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/purser-events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    fn received(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().clone()
    }

    /// The events received, each once, by id.
    fn events(&self) -> HashMap<String, Value> {
        self.received()
            .into_iter()
            .map(|(_, body)| serde_json::from_str::<Value>(&body).unwrap())
            .map(|event| (event["id"].as_str().unwrap().to_owned(), event))
            .collect()
    }
}

async fn platform_app(db: Db, url: String) -> TestApp {
    spawn_app_with(db, move |s| {
        s.events.poll_interval = Duration::from_millis(100);
        s.events.endpoints = vec![EventEndpoint {
            name: "platform".into(),
            url,
            secret_env: "PURSER_TEST_UNUSED".into(),
            secret: Some(Secret::new(SECRET.into())),
            types: vec!["*".into()],
        }];
    })
    .await
}

async fn every_change_reaches_the_platform_signed_and_retried(db: Db) {
    let receiver = Receiver::default();
    let app = platform_app(db, receiver.start().await).await;
    let (admin, service) = (app.token("admin-ev", Role::Admin), app.token("platform-ev", Role::Service));

    let client = app.client("ev-1");
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    let (_, declined) = client.open("starter-25", "pm_card_visa_chargeDeclined").await;
    assert_eq!(client.confirm(&declined, "starter-25").await.status, StatusCode::PAYMENT_REQUIRED);
    let body = json!({ "clientId": "ev-1", "credits": 40, "reference": "job-1", "description": "a render" });
    let headers = [("content-type", "application/json"), ("idempotency-key", "ev-spend-1")];
    let spent = app.post_raw("/api/v1/credits/spend", Some(&service), &headers, body.to_string()).await;
    let spend_id = spent.data()["spendId"].as_str().unwrap().to_owned();
    let reverse = format!("/api/v1/credits/spends/{spend_id}/reverse");
    assert_eq!(app.post(&reverse, Some(&service), &json!({ "reason": "failed job" })).await.status, StatusCode::OK);
    let adjust = json!({ "clientId": "ev-1", "credits": 10, "reason": "goodwill" });
    assert_eq!(app.post("/api/v1/admin/credits/adjust", Some(&admin), &adjust).await.status, StatusCode::OK);
    let asked = json!({ "transactionId": transaction, "reason": "unused" });
    let refund = app.post("/api/v1/payments/refund", Some(&client.token), &asked).await;
    let refund_id = refund.data()["refundRequestId"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/admin/refunds/{refund_id}/approve");
    assert_eq!(app.post(&approve, Some(&admin), &json!({})).await.data()["status"], "refunded");
    let pause = json!({ "scope": "card", "reason": "maintenance" });
    assert_eq!(app.post("/api/v1/admin/controls/pause", Some(&admin), &pause).await.status, StatusCode::OK);
    assert_eq!(app.post("/api/v1/admin/controls/resume", Some(&admin), &pause).await.status, StatusCode::OK);

    let wanted = [
        "purchase.succeeded",
        "purchase.failed",
        "credits.spent",
        "credits.reversed",
        "credits.adjusted",
        "refund.requested",
        "refund.approved",
        "refund.refunded",
        "payments.paused",
        "payments.resumed",
    ];
    let all_in = eventually(Duration::from_secs(20), || async {
        let events = receiver.events();
        let types: Vec<&str> = events.values().filter_map(|e| e["type"].as_str()).collect();
        wanted.iter().all(|w| types.contains(w)).then_some(())
    });
    assert!(all_in.await.is_some(), "every event arrived: {:?}", receiver.events());

    // Each request is signed with the endpoint's secret, as Stripe signs its webhooks.
    let now = chrono::Utc::now().timestamp();
    for (signature, body) in receiver.received() {
        let verified = purser::domain::signature::verify(body.as_bytes(), Some(&signature), &[SECRET], now);
        assert!(verified.is_ok(), "{signature} signs {body}");
        let forged = purser::domain::signature::verify(body.as_bytes(), Some(&signature), &["whsec_other_secret"], now);
        assert!(forged.is_err());
    }
    // The first answer was a 500: that event comes again (after a backoff of seconds), and counts once.
    let first: Value = serde_json::from_str(&receiver.received()[0].1).unwrap();
    let retried = eventually(Duration::from_secs(20), || async {
        let received = receiver.received();
        let copies = received.iter().filter(|(_, body)| body.contains(first["id"].as_str().unwrap())).count();
        (copies >= 2).then_some(())
    });
    assert!(retried.await.is_some(), "the event answered 500 was retried");

    // The events' ledger entries, each counted once, are the client's statement.
    let events = receiver.events();
    let from_events: i64 = events
        .values()
        .filter(|e| e["data"]["clientId"] == "ev-1")
        .filter_map(|e| e["data"]["ledgerEntry"]["credits"].as_i64())
        .sum();
    let statement = app.get("/api/v1/credits/ledger/ev-1", Some(&service)).await;
    assert_eq!(from_events, statement.data()["balance"].as_i64().unwrap());
    let rows = statement.data()["items"].as_array().unwrap().len();
    assert_eq!(events.values().filter(|e| e["data"]["ledgerEntry"].is_object()).count(), rows, "one per ledger row");
    let succeeded = events.values().find(|e| e["type"] == "purchase.succeeded").unwrap();
    assert_eq!(succeeded["data"]["transactionId"], transaction.as_str());
    assert_eq!(succeeded["data"]["ledgerEntry"]["credits"], 240);

    // The admin sees each delivery: the retried one delivered after two attempts; and can send one again.
    let deliveries = app.get("/api/v1/admin/events/deliveries?endpoint=platform", Some(&admin)).await;
    assert_eq!(deliveries.status, StatusCode::OK, "{}", deliveries.body);
    let items = deliveries.data()["items"].as_array().unwrap().clone();
    let retried = items.iter().find(|d| d["eventId"] == first["id"]).expect("the retried delivery is listed");
    assert_eq!(retried["status"], "delivered");
    assert!(retried["attempts"].as_i64().unwrap() >= 2, "{retried}");
    assert_eq!(retried["lastStatus"], 200);
    let before = receiver.received().len();
    let replay = format!("/api/v1/admin/events/deliveries/{}/replay", retried["id"]);
    let replayed = app.post(&replay, Some(&admin), &json!({ "reason": "platform restored its database" })).await;
    assert_eq!(replayed.status, StatusCode::ACCEPTED, "{}", replayed.body);
    let again = eventually(Duration::from_secs(10), || async {
        let received = receiver.received();
        received[before..].iter().any(|(_, body)| body.contains(first["id"].as_str().unwrap())).then_some(())
    });
    assert!(again.await.is_some(), "the replayed event was sent again");
    assert_eq!(app.post("/api/v1/admin/events/deliveries/999999/replay", Some(&admin), &json!({})).await.status, 404);
    let bad = app.get("/api/v1/admin/events/deliveries?status=lost", Some(&admin)).await;
    assert_eq!(bad.error_code(), "invalid_query");
    let by_service = app.get("/api/v1/admin/events/deliveries", Some(&service)).await;
    assert_eq!(by_service.status, StatusCode::FORBIDDEN);
}

on_both_databases!(every_change_reaches_the_platform_signed_and_retried);

/// The code blocks of `docs/platform.md` in `language`, in order.
fn snippets(language: &str) -> Vec<String> {
    let guide = include_str!("../../docs/platform.md");
    let (mut blocks, mut open) = (vec![], None::<String>);
    for line in guide.lines() {
        match (&mut open, line.trim_end()) {
            (None, fence) if fence == format!("```{language}") => open = Some(String::new()),
            (Some(_), "```") => blocks.push(open.take().unwrap()),
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Runs `program` on a script: whether it exited 0.
fn runs(program: &str, script: &str, env: &[(&str, &str)]) -> bool {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), script).unwrap();
    let out = std::process::Command::new(program).arg(file.path()).envs(env.iter().copied()).output().unwrap();
    eprintln!("{program}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out.status.success()
}

// docs/platform.md's snippets, run: the curl calls spend and give back against a running service, the configuration
// is accepted, and the Python and Node.js verifiers accept an event Purser sent and refuse it under another secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integration_guide_runs() {
    let receiver = Receiver::default();
    let app = platform_app(Db::Sqlite, receiver.start().await).await;
    let client = app.client("guide-1");
    let (_, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");

    let service = app.token("platform-backend", Role::Service);
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_purser")).parent().unwrap().display().to_string();
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    let shell = format!("set -euo pipefail\ncd {}\n{}", env!("CARGO_MANIFEST_DIR"), snippets("sh").join("\n"));
    // The guide's first snippet makes the API key the others use, with `purser api-key` on this test's database.
    let database = app.database.url.as_str();
    let env = [("PURSER_URL", app.base.as_str()), ("PURSER_DATABASE__URL", database), ("CLIENT_ID", "guide-1")];
    assert!(runs("bash", &shell, &[env.as_slice(), &[("PATH", path.as_str())]].concat()), "the curl snippets ran");
    let statement = app.get("/api/v1/credits/ledger/guide-1", Some(&service)).await;
    let kinds: Vec<&str> =
        statement.data()["items"].as_array().unwrap().iter().filter_map(|i| i["kind"].as_str()).collect();
    assert_eq!(kinds, ["purchase_grant", "spend", "spend_reversal"]);
    assert_eq!(statement.data()["balance"], 240);
    assert_eq!(app.count_where("api_keys", "name = 'platform-backend'").await, 1, "spent with the guide's API key");

    let toml = snippets("toml").join("\n");
    let mut configured: purser::settings::EventSettings =
        figment::Figment::from(<figment::providers::Toml as figment::providers::Format>::string(&toml))
            .extract_inner("events")
            .unwrap();
    configured.endpoints[0].secret = Some(Secret::new(SECRET.into()));
    assert_eq!(configured.resolve(purser::settings::Environment::Production), Ok(()));
    assert_eq!(configured.give_up_after, Duration::from_secs(3 * 24 * 3600));

    let spent = eventually(Duration::from_secs(20), || async {
        receiver.received().into_iter().find(|(_, body)| body.contains("\"credits.spent\""))
    });
    let (signature, body) = spent.await.expect("the spend's event arrived");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let event_body = file.path().display().to_string();
    let python = format!(
        "{}\nimport os, sys\nbody = open(os.environ['EVENT_BODY'], 'rb').read()\n\
         sys.exit(0 if verify(body, os.environ['EVENT_SIGNATURE'], os.environ['EVENT_SECRET']) else 1)\n",
        snippets("python").join("\n")
    );
    let node = format!(
        "{}\nconst body = require('fs').readFileSync(process.env.EVENT_BODY);\n\
         process.exit(verify(body, process.env.EVENT_SIGNATURE, process.env.EVENT_SECRET) ? 0 : 1);\n",
        snippets("js").join("\n")
    );
    for (program, script) in [("python3", &python), ("node", &node)] {
        let with = |secret| {
            [("EVENT_BODY", event_body.as_str()), ("EVENT_SIGNATURE", signature.as_str()), ("EVENT_SECRET", secret)]
        };
        assert!(runs(program, script, &with(SECRET)), "{program} verifies Purser's event");
        assert!(!runs(program, script, &with("whsec_someone_else_entirely")), "{program} refuses another secret");
    }
}
