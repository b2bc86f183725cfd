//! Issue 16: several nodes (each its own `purser serve` process) on one PostgreSQL. The row is the owner: any node
//! applies any input, and a dead node's deadlines are taken over by the others.
use crate::helpers::{Db, TestApp, TestDatabase, count_rows, eventually, fresh_database, scalar, start_node};
use crate::webhooks::succeeded_event;
use reqwest::StatusCode;
use std::process::Child;
use std::time::Duration;

/// Both nodes' timers short, and their sweeps quick, so a test sees a deadline taken over within seconds.
const QUICK_DEADLINES: [(&str, &str); 3] = [
    ("PURSER_PAYMENTS__CHECKOUT_TTL", "3s"),
    ("PURSER_PAYMENTS__DEADLINE_SWEEP", "300ms"),
    ("PURSER_PAYMENTS__DEADLINE_CLAIM", "4s"),
];

struct Nodes {
    a: TestApp,
    b: TestApp,
    children: Vec<Child>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn two_nodes(env: &[(&str, &str)]) -> Nodes {
    let database = fresh_database(Db::Postgres).await;
    let second = TestDatabase::shared(&database);
    let ((first_child, first), (second_child, second_base)) =
        tokio::join!(start_node(&database.url, env), start_node(&database.url, env));
    Nodes {
        a: TestApp::external(first, database),
        b: TestApp::external(second_base, second),
        children: vec![first_child, second_child],
    }
}

// The same confirm sent to both nodes at once, and the provider's success webhook delivered to both (twice under one
// event id, once under another): one confirmation reaches the provider, one grant, one history line to `succeeded`.
// Three purchases, so that the race goes more than one way.
#[tokio::test]
async fn two_nodes_applying_the_same_confirm_and_webhook_grant_once() {
    let nodes = two_nodes(&[]).await;
    let (on_a, on_b) = (nodes.a.client("two-nodes-1"), nodes.b.client("two-nodes-1"));
    let url = nodes.a.database.url.clone();
    for round in 1..=3_i64 {
        let (transaction, intent) = on_a.open("pro-200", "pm_card_visa").await;
        let event = succeeded_event(&format!("evt_nodes_{round}"), &intent, &transaction);
        let again = succeeded_event(&format!("evt_nodes_{round}_again"), &intent, &transaction);
        let (confirm_a, confirm_b, hook_a, hook_b, hook_again) = tokio::join!(
            on_a.confirm(&intent, "pro-200"),
            on_b.confirm(&intent, "pro-200"),
            nodes.a.send_stripe_event(&event),
            nodes.b.send_stripe_event(&event),
            nodes.b.send_stripe_event(&again),
        );
        // The node whose confirm lost the race finds the payment under way at the other and says so (202, as a
        // second confirm of an intent being confirmed does at Stripe); the winner answers with the outcome.
        let mut outcomes = Vec::new();
        for confirmed in [confirm_a, confirm_b] {
            let status = confirmed.data()["status"].as_str().unwrap().to_owned();
            assert!(
                (confirmed.status, status.as_str()) == (StatusCode::OK, "succeeded")
                    || (confirmed.status, status.as_str()) == (StatusCode::ACCEPTED, "processing"),
                "{} {}",
                confirmed.status,
                confirmed.body
            );
            outcomes.push(status);
        }
        assert!(outcomes.iter().any(|s| s == "succeeded"), "one confirm carried the payment through: {outcomes:?}");
        for hook in [hook_a, hook_b, hook_again] {
            assert_eq!(hook.status, StatusCode::OK, "{}", hook.body);
        }
        on_b.wait_for_status(&transaction, "succeeded").await;
        let applied = eventually(Duration::from_secs(20), || async {
            let left = scalar(&url, "SELECT COUNT(*) FROM webhook_events WHERE status <> 'processed'").await;
            (left == 0).then_some(())
        });
        assert!(applied.await.is_some(), "every webhook the nodes stored is applied");
        assert_eq!(on_a.balance().await, 240 * round);
        assert_eq!(on_b.balance().await, 240 * round);
        assert_eq!(count_rows(&url, "credit_ledger").await, round, "one grant per purchase");
        assert_eq!(count_rows(&url, "invoices").await, round, "one invoice per purchase");
        let sql = format!(
            "SELECT COUNT(*) FROM purchase_events WHERE purchase_id = '{}' \
             AND to_status = 'succeeded' AND from_status <> 'succeeded'",
            crate::helpers::uuid_of(&transaction)
        );
        assert_eq!(scalar(&url, &sql).await, 1, "one step to succeeded");
        // The provider saw one intent, confirmed at most once: the losing node decided again on the locked row and
        // called nothing. (None when the success webhook, sent by the test, won the race against both confirms.)
        let intents = format!(
            "SELECT COUNT(*) FROM sandbox_payment_intents WHERE purchase_id = '{}'",
            crate::helpers::uuid_of(&transaction)
        );
        assert_eq!(scalar(&url, &intents).await, 1, "one intent at the provider");
        let sql = format!(
            "SELECT CAST(confirmations AS BIGINT) FROM sandbox_payment_intents WHERE purchase_id = '{}'",
            crate::helpers::uuid_of(&transaction)
        );
        assert!(scalar(&url, &sql).await <= 1, "never confirmed twice at the provider");
    }
}

// A checkout opened on node A, which then dies: its expiry lived in A's memory, and B takes it over from the
// purchase's row. Then the claim a node leaves when it dies between claiming a deadline and firing it: B leaves the
// purchase alone until the claim runs out, then fires it.
#[tokio::test]
async fn a_deadline_of_a_node_that_dies_fires_on_another() {
    let mut nodes = two_nodes(&QUICK_DEADLINES).await;
    let on_a = nodes.a.client("two-nodes-2");
    let opened = on_a.create_intent("starter-25", None).await;
    let orphan = opened.data()["transactionId"].as_str().unwrap().to_owned();
    let claimed = on_a.create_intent("starter-25", None).await.data()["transactionId"].as_str().unwrap().to_owned();
    nodes.children[0].kill().expect("kill -9 node A");
    nodes.children[0].wait().ok();

    let url = nodes.b.database.url.clone();
    let claim = format!(
        "UPDATE purchases SET next_due_at = now() + interval '6 seconds' WHERE id = '{}'",
        crate::helpers::uuid_of(&claimed)
    );
    nodes.b.execute(&claim).await;
    let on_b = nodes.b.client("two-nodes-2");
    on_b.wait_for_status(&orphan, "expired").await;
    let status = on_b.transaction(&claimed).await.data()["status"].as_str().unwrap().to_owned();
    assert_ne!(status, "expired", "a live claim is left to its node");
    on_b.wait_for_status(&claimed, "expired").await;
    let sql = "SELECT COUNT(*) FROM purchases WHERE status = 'expired' AND next_due_at IS NULL";
    assert_eq!(scalar(&url, sql).await, 2, "an expired purchase has no deadline left");
}

// A card-testing burst spread over two nodes: each node alone has seen half of it, yet the checkout past the
// threshold is blocked on whichever node it reaches, since the monitor counts in the database.
#[tokio::test]
async fn a_burst_spread_over_nodes_is_blocked_at_the_single_node_threshold() {
    let nodes = two_nodes(&[("PURSER_FRAUD__CHECKOUTS_PER_HOUR", "4")]).await;
    let (on_a, on_b) = (nodes.a.client("two-nodes-3"), nodes.b.client("two-nodes-3"));
    for round in 0..2 {
        for client in [&on_a, &on_b] {
            let opened = client.create_intent("starter-25", Some("pm_card_visa")).await;
            assert_eq!(opened.status, StatusCode::OK, "checkout {} of 4: {}", 2 * round + 1, opened.body);
        }
    }
    for client in [&on_a, &on_b] {
        let refused = client.create_intent("starter-25", Some("pm_card_visa")).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert_eq!(refused.error_code(), "payment_blocked");
    }
    let url = nodes.a.database.url.clone();
    assert_eq!(count_rows(&url, "purchases").await, 4, "the blocked checkouts opened nothing");

    // The same burst sent all at once, four to each node: the screenings take turns on the client's key (a busy key
    // is tried again, never waited for inside a batch), so exactly four pass and nothing fails otherwise.
    let (on_a, on_b) = (nodes.a.client("two-nodes-3b"), nodes.b.client("two-nodes-3b"));
    let open = |client: &'static str| {
        let client = if client == "a" { &on_a } else { &on_b };
        client.create_intent("starter-25", None)
    };
    let burst = tokio::join!(open("a"), open("b"), open("a"), open("b"), open("a"), open("b"), open("a"), open("b"));
    let statuses = [burst.0, burst.1, burst.2, burst.3, burst.4, burst.5, burst.6, burst.7].map(|answer| answer.status);
    let passed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let blocked = statuses.iter().filter(|s| **s == StatusCode::FORBIDDEN).count();
    assert_eq!((passed, blocked), (4, 4), "{statuses:?}");
    assert_eq!(count_rows(&url, "purchases").await, 8);
}

// A pause set through one node refuses checkouts on the other at once, and a resume lifts it the same way: announced
// by PostgreSQL's NOTIFY in the pause's transaction. The polling backstop is set to an hour, so only the announcement
// can carry it.
#[tokio::test]
async fn a_pause_on_one_node_reaches_the_other_by_notification() {
    let nodes = two_nodes(&[("PURSER_PAYMENTS__PAUSE_REFRESH", "1h")]).await;
    let admin = nodes.a.token("two-nodes-admin", purser::auth::Role::Admin);
    let on_b = nodes.b.client("two-nodes-4");
    let pause = serde_json::json!({ "scope": "platform", "reason": "maintenance window" });
    assert_eq!(nodes.a.post("/api/v1/admin/controls/pause", Some(&admin), &pause).await.status, StatusCode::OK);
    let refused = eventually(Duration::from_secs(2), || async {
        let checkout = on_b.create_intent("starter-25", Some("pm_card_visa")).await;
        (checkout.status == StatusCode::SERVICE_UNAVAILABLE).then_some(checkout)
    });
    let refused = refused.await.expect("node B refuses checkouts within 2 s of the pause on node A");
    assert_eq!(refused.error_code(), "payments_paused");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("maintenance window"));

    let resume = serde_json::json!({ "scope": "platform", "reason": "done" });
    assert_eq!(nodes.a.post("/api/v1/admin/controls/resume", Some(&admin), &resume).await.status, StatusCode::OK);
    let taken = eventually(Duration::from_secs(2), || async {
        (on_b.create_intent("starter-25", Some("pm_card_visa")).await.status == StatusCode::OK).then_some(())
    });
    assert!(taken.await.is_some(), "node B takes checkouts again within 2 s of the resume");
}

// An event stored by a node that died before routing it is applied by the other node's inbox sweep, once the routing
// grace has passed, without any restart.
#[tokio::test]
async fn an_event_a_dead_node_stored_is_applied_by_another() {
    let nodes = two_nodes(&[]).await;
    let on_b = nodes.b.client("two-nodes-5");
    let (transaction, intent) = on_b.open("pro-200", "pm_card_visa").await;
    crate::webhooks::leave_unapplied(&nodes.a, &succeeded_event("evt_nodes_orphan", &intent, &transaction)).await;
    let applied = eventually(Duration::from_secs(20), || async {
        let status = on_b.transaction(&transaction).await.data()["status"].as_str().unwrap().to_owned();
        (status == "succeeded").then_some(())
    });
    assert!(applied.await.is_some(), "the orphaned event is applied by a sweep");
    assert_eq!(on_b.balance().await, 240);
    let url = nodes.a.database.url.clone();
    let sql = "SELECT COUNT(*) FROM webhook_events WHERE status = 'processed' AND sweep_at IS NULL";
    assert_eq!(scalar(&url, sql).await, 1, "applied once, and no longer due");
}

// With `limits.nodes = 2` a client's and an address's checkout limits are counted in the database: a client
// allowed four checkouts a minute gets them however the load balancer spreads its requests (three on one node, one
// on the other), and the fifth is refused on either node with 429 and a `Retry-After`. A refusal is not counted:
// another client from the same address (the limit per address is six) gets the two left, then the address is spent.
#[tokio::test]
async fn checkout_limits_hold_across_nodes() {
    let env = [
        ("PURSER_LIMITS__CHECKOUT_PER_CLIENT_PER_MINUTE", "4"),
        ("PURSER_LIMITS__CHECKOUT_PER_IP_PER_MINUTE", "6"),
        ("PURSER_LIMITS__NODES", "2"),
    ];
    let nodes = two_nodes(&env).await;
    let (on_a, on_b) = (nodes.a.client("two-nodes-6"), nodes.b.client("two-nodes-6"));
    for (n, client) in [&on_a, &on_a, &on_a, &on_b].into_iter().enumerate() {
        let opened = client.create_intent("starter-25", Some("pm_card_visa")).await;
        assert_eq!(opened.status, StatusCode::OK, "checkout {} of 4: {}", n + 1, opened.body);
    }
    for client in [&on_a, &on_b] {
        let refused = client.create_intent("starter-25", Some("pm_card_visa")).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
        assert_eq!(refused.error_code(), "rate_limited");
        assert!(refused.headers.contains_key("retry-after"), "{:?}", refused.headers);
    }
    let neighbour = (nodes.a.client("two-nodes-7"), nodes.b.client("two-nodes-7"));
    for client in [&neighbour.0, &neighbour.1] {
        let opened = client.create_intent("starter-25", Some("pm_card_visa")).await;
        assert_eq!(opened.status, StatusCode::OK, "the address's checkouts 5 and 6: {}", opened.body);
    }
    let refused = neighbour.0.create_intent("starter-25", Some("pm_card_visa")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "the address is spent: {}", refused.body);
    assert_eq!(count_rows(&nodes.a.database.url, "purchases").await, 6, "the address's six in all");
}

// Spends of two clients sent to both nodes at once, each node taking them in the opposite order. A batch that waited
// for a client's ledger lock while holding the other's would deadlock with the other node's batch (PostgreSQL then
// aborts one, failing every step in it); a step refused a lock is tried again instead, so every spend is answered
// 201 or 402, and each balance pays for exactly as many as it can.
#[tokio::test]
async fn spends_of_two_clients_on_two_nodes_in_opposite_orders_all_answer() {
    let nodes = two_nodes(&[]).await;
    for client in ["two-nodes-7", "two-nodes-8"] {
        let buyer = nodes.a.client(client);
        let (_, intent) = buyer.open("pro-200", "pm_card_visa").await;
        assert_eq!(buyer.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    }
    let service = nodes.a.token("platform-backend", purser::auth::Role::Service);
    let mut spends = tokio::task::JoinSet::new();
    for n in 0..24 {
        let (node, order) = if n % 2 == 0 {
            (&nodes.a, ["two-nodes-7", "two-nodes-8"])
        } else {
            (&nodes.b, ["two-nodes-8", "two-nodes-7"])
        };
        let client = order[n / 2 % 2];
        let request = node.http.post(format!("{}/api/v1/credits/spend", node.base)).bearer_auth(&service);
        let body = serde_json::json!({ "clientId": client, "credits": 50, "reference": format!("job-{n}") });
        let request = request.header("idempotency-key", format!("opposite-{n}")).json(&body);
        spends.spawn(async move { (client, request.send().await.unwrap().status()) });
    }
    let answers = spends.join_all().await;
    for client in ["two-nodes-7", "two-nodes-8"] {
        let statuses: Vec<StatusCode> = answers.iter().filter(|(c, _)| *c == client).map(|(_, s)| *s).collect();
        let passed = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        let refused = statuses.iter().filter(|s| **s == StatusCode::PAYMENT_REQUIRED).count();
        assert_eq!((passed, refused), (4, 8), "{client}: {statuses:?}");
        assert_eq!(nodes.b.client(client).balance().await, 40, "{client}");
    }
}
