//! `purser chaos`: purchases and refunds under injected provider faults and webhook trouble, with the service
//! killed with SIGKILL at random moments; then, once everything has settled, the money is checked against the
//! sandbox provider's own record of what it charged and refunded.
use super::driver::{DECLINES, DISPUTED, Driver, NEEDS_3DS, RISKY, SUCCEEDS};
use super::receiver::PlatformReceiver;
use super::smtp::SmtpSink;
use super::workers::spawn_jobs;
use super::workspace::Workspace;
use crate::auth::Role;
use crate::providers::sandbox::fraction;
use crate::store;
use entities::{
    credit_ledger, disputes, outbox, purchases, refund_requests, sandbox_payment_intents as intents,
    sandbox_paypal_orders as paypal_orders, webhook_events,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub struct ChaosOptions {
    pub runs: usize,
    pub kills: usize,
    pub purchases: usize,
    pub concurrency: usize,
    pub error_rate: f64,
    pub timeout_rate: f64,
    pub webhook_drop_rate: f64,
    pub webhook_duplicate_rate: f64,
    pub webhook_max_delay_ms: u64,
    /// The SMTP server refuses connections for this long at the start of each run.
    pub smtp_down_ms: u64,
    /// Actor crashes per second while the shoppers run (`/dev/crash/{actor}`): the background actors and the
    /// purchases' actors, picked at random.
    pub actor_panic_rate: f64,
    /// Services sharing the database behind haproxy.
    pub nodes: usize,
}

/// How long an unanswered `Idempotency-Key` claim holds its key in a chaos run (`payments.idempotency_lease`):
/// short, so the clients' retries after a kill are seen to get through within the run.
const LEASE: Duration = Duration::from_secs(2);

/// How long a node's claim on a deadline lasts in a chaos run: a node frozen longer has its claims taken over.
const CLAIM: Duration = Duration::from_secs(2);
/// The share of event deliveries the platform's endpoint answers 500 once it is up.
const PLATFORM_ERROR_RATE: f64 = 0.1;
/// How soon a pause set through one node must refuse checkouts on the others.
const PAUSE_REACH: Duration = Duration::from_secs(2);

/// What the shoppers saw that the database cannot tell: the transactions they opened (for the crasher to pick
/// from) and the keys still refused after their lease.
#[derive(Default)]
struct Observed {
    transactions: Mutex<Vec<String>>,
    held_keys: Mutex<Vec<String>>,
}

/// What one run did and found.
#[derive(Default)]
pub struct RunResult {
    pub kills: usize,
    pub purchases: usize,
    pub charged: usize,
    /// Of those, captured by PayPal.
    pub charged_paypal: usize,
    pub refunded: usize,
    /// Of those, refunded by PayPal.
    pub refunded_paypal: usize,
    /// Payments confirmed as fraud and given back.
    pub reversed: usize,
    /// Disputes the provider reports lost (each debited once) and won.
    pub disputes_lost: usize,
    pub disputes_won: usize,
    /// Actors crashed on command.
    pub actor_crashes: usize,
    /// Messages the SMTP server accepted; messages the outbox marked mailed, receipts among them (at least once
    /// each, and a second time at most once per node or mailer stopped while sending).
    pub mails_received: usize,
    pub mails_sent: usize,
    pub receipts_sent: usize,
    /// Nodes stopped (SIGSTOP) past their claims and thawed.
    pub freezes: usize,
    /// Events Purser wrote for the platform, and the requests its endpoint answered (retries included).
    pub events: usize,
    pub event_requests: usize,
    pub driver_errors: usize,
    /// The first few errors the driver saw, for the curious: most are the service being down.
    pub driver_error_samples: Vec<String>,
    pub violations: Vec<String>,
}

fn fault_env(options: &ChaosOptions) -> Vec<(String, String)> {
    [
        ("SANDBOX__FAULTS__ERROR_RATE", options.error_rate.to_string()),
        ("SANDBOX__FAULTS__TIMEOUT_RATE", options.timeout_rate.to_string()),
        ("SANDBOX__FAULTS__WEBHOOK_DROP_RATE", options.webhook_drop_rate.to_string()),
        ("SANDBOX__FAULTS__WEBHOOK_DUPLICATE_RATE", options.webhook_duplicate_rate.to_string()),
        ("SANDBOX__FAULTS__WEBHOOK_MAX_DELAY_MS", options.webhook_max_delay_ms.to_string()),
        // Quick retries and a reconciler that looks often, so a run settles in seconds rather than minutes.
        ("PAYMENTS__RETRY_BASE", "100ms".into()),
        ("PAYMENTS__RECONCILE_EVERY", "1s".into()),
        ("PAYMENTS__RECONCILE_AFTER", "2s".into()),
        ("EMAIL__POLL_INTERVAL", "100ms".into()),
        ("EVENTS__POLL_INTERVAL", "100ms".into()),
        ("EVENTS__SENDING_CLAIM", format!("{}s", CLAIM.as_secs())),
        // A dead or frozen node's claimed messages go out from another within seconds.
        ("EMAIL__SENDING_CLAIM", format!("{}s", CLAIM.as_secs())),
        ("PAYMENTS__IDEMPOTENCY_LEASE", format!("{}s", LEASE.as_secs())),
        // A dead or frozen node's deadlines are taken over within seconds.
        ("PAYMENTS__DEADLINE_SWEEP", "500ms".into()),
        ("PAYMENTS__DEADLINE_CLAIM", format!("{}s", CLAIM.as_secs())),
        ("SANDBOX__CRASH_HOOKS", (options.actor_panic_rate > 0.0).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("PURSER_{k}"), v))
    .collect()
}

/// One client's purchase, then sometimes its refund, as far as the service lets it go; errors are expected while
/// the service is down and only counted.
async fn shop(
    driver: &Driver,
    admin: &str,
    (run, n): (usize, usize),
    package: &str,
    observed: &Observed,
) -> Result<(), String> {
    if n % 10 == 8 {
        let token = driver.token(&format!("chaos-{run}-{}", n / 3), Role::Client)?;
        return shop_with_paypal(driver, admin, &token, n, package).await;
    }
    // A risky or disputed payment gets a client of its own: a confirmed fraud or a lost dispute flags the account.
    let (client, method) = match n % 10 {
        3 => (format!("chaos-{run}-{}", n / 3), DECLINES),
        5 => (format!("chaos-{run}-risky-{n}"), RISKY),
        9 if n % 20 == 9 => (format!("chaos-{run}-disputed-{n}"), DISPUTED),
        6 => (format!("chaos-{run}-{}", n / 3), NEEDS_3DS),
        7 => (format!("chaos-{run}-platform-{n}"), SUCCEEDS),
        _ => (format!("chaos-{run}-{}", n / 3), SUCCEEDS),
    };
    let token = driver.token(&client, Role::Client)?;
    let key = format!("chaos-{run}-{n}");
    let (intent, held_past_lease) = driver.intent_once(&token, package, method, &key, LEASE).await?;
    if held_past_lease {
        observed.held_keys.lock().unwrap().push(key);
    }
    let (intent_id, transaction) = (intent.data("paymentIntentId").to_owned(), intent.data("transactionId").to_owned());
    if intent_id.is_empty() {
        return Err(format!("intent: {} {}", intent.status, intent.body));
    }
    observed.transactions.lock().unwrap().push(transaction.clone());
    let confirm = driver.confirm(&token, package, &intent_id, None).await?;
    if method == RISKY {
        // Decided by the admins' pass over the review queue, like the rest of the held payments.
        return Ok(());
    }
    if method == DISPUTED {
        // Answered while the faults go on; whatever is left, by the admins' pass after.
        driver.wait_for(&token, &transaction, "succeeded", Duration::from_secs(20)).await?;
        dispute_queue(driver, admin).await?;
        return Ok(());
    }
    if confirm.data("status") == "requires_action" && n % 20 != 6 {
        driver.authenticate(&intent_id, true).await?;
    }
    if n % 4 == 0 && method == SUCCEEDS {
        refund(driver, admin, &token, &transaction).await?;
    }
    if n % 10 == 7 {
        use_credits(driver, &token, &client, &transaction, n).await?;
    }
    Ok(())
}

/// The platform spends a paid purchase's credits in three jobs, each under its own key (sent again until answered,
/// as a careful backend does), and gives the last one back, as for a job that failed.
async fn use_credits(driver: &Driver, token: &str, client: &str, transaction: &str, n: usize) -> Result<(), String> {
    driver.wait_for(token, transaction, "succeeded", Duration::from_secs(20)).await?;
    let service = driver.token("chaos-platform", Role::Service)?;
    let mut last = None;
    for job in 0..3 {
        let body = json!({ "clientId": client, "credits": 1 + job, "reference": format!("job-{n}-{job}") });
        let key = format!("{client}-job-{job}");
        let spent = keep_sending(|| driver.post_keyed("/api/v1/credits/spend", &service, &key, &body)).await?;
        last = spent.body["data"]["spendId"].as_str().map(str::to_owned);
    }
    let Some(spend) = last else { return Err(format!("{client}: no spend answered")) };
    let reason = json!({ "reason": "the job failed" });
    let path = format!("/api/v1/credits/spends/{spend}/reverse");
    let reversed = keep_sending(|| driver.post(&path, Some(&service), &reason)).await?;
    match (reversed.status, reversed.body["error"]["code"].as_str()) {
        // Reversed on a try whose answer was lost with a node.
        (200, _) | (409, Some("already_reversed")) => Ok(()),
        (status, _) => Err(format!("reverse {spend}: {status} {}", reversed.body)),
    }
}

/// Sends a request until the service answers it with something other than a 5xx or a key still in use: the node
/// may be down, or the key claimed by a try that died with one.
async fn keep_sending<F: std::future::Future<Output = Result<super::driver::Answer, String>>>(
    send: impl Fn() -> F,
) -> Result<super::driver::Answer, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = send().await;
        let retry = match &answer {
            Ok(answer) => answer.status >= 500 || answer.body["error"]["code"] == "idempotency_key_in_use",
            Err(_) => true,
        };
        if !retry || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The admins work the review queue: every payment held for review is decided, one in two confirmed as fraud (its
/// money goes back through a refund), the other released. Returns how many were decided.
async fn review_queue(driver: &Driver, admin: &str) -> Result<usize, String> {
    let queue = driver.get("/api/v1/admin/payments?status=under_review&limit=200", admin).await?;
    let held = queue.body["data"]["items"].as_array().cloned().unwrap_or_default();
    let mut decided = 0;
    for (i, item) in held.iter().enumerate() {
        let transaction = item["transactionId"].as_str().unwrap_or_default();
        let verdict = if i % 2 == 0 { "confirm-fraud" } else { "release" };
        let answer = driver.decide(admin, transaction, verdict).await?;
        match (answer.status, answer.body["error"]["code"].as_str()) {
            (200, _) => decided += 1,
            // Already being reversed: decided on an earlier pass.
            (409, Some("not_under_review")) => {}
            (status, _) => return Err(format!("{verdict} {transaction}: {status} {}", answer.body)),
        }
    }
    Ok(decided)
}

/// The admins answer every dispute waiting for them, in turn: concede one, lose one on evidence, win one on evidence
/// (Stripe's test-mode evidence, which the sandbox plays). Returns how many were answered, and how many the provider
/// did not answer (to be tried again).
async fn dispute_queue(driver: &Driver, admin: &str) -> Result<(usize, usize), String> {
    let listed = driver.get("/api/v1/admin/disputes", admin).await?;
    let waiting: Vec<String> = listed.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["status"] == "needs_response")
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect();
    let (mut answered, mut unanswered) = (0, 0);
    for id in waiting {
        let (path, body) = match fraction() {
            f if f < 0.34 => ("accept", json!({ "reason": "chaos concedes" })),
            f if f < 0.67 => ("evidence", json!({ "text": "losing_evidence" })),
            _ => ("evidence", json!({ "text": "winning_evidence" })),
        };
        let answer = driver.post(&format!("/api/v1/admin/disputes/{id}/{path}"), Some(admin), &body).await?;
        match (answer.status, answer.body["error"]["code"].as_str()) {
            (200, _) => answered += 1,
            // Answered by another shopper's pass, or on an earlier try whose answer was lost with a node (the
            // reconciler reads it back).
            (409, Some("dispute_closed" | "provider_dispute_already_closed")) => {}
            // The sandbox's injected faults: nothing recorded, try again.
            (502, Some("provider_unavailable")) => unanswered += 1,
            (status, _) => return Err(format!("dispute {id} {path}: {status} {}", answer.body)),
        }
    }
    Ok((answered, unanswered))
}

/// Actors crashed at random while the shoppers run, until `stop` is set; returns how many.
async fn crash_actors(
    driver: Arc<Driver>,
    admin: String,
    rate: f64,
    observed: Arc<Observed>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> usize {
    const TICK: Duration = Duration::from_millis(100);
    let mut crashes = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(TICK).await;
        if fraction() >= rate * TICK.as_secs_f64() {
            continue;
        }
        let background = [
            "fraud-monitor",
            "circuit-breaker",
            "rate-limiter",
            "deadlines",
            "mailer",
            "event-sender",
            "reconciler",
            "pause-watcher",
            "inbox-sweep",
        ];
        // One pick in four is a purchase's actor, the rest a background one.
        let pick = (fraction() * (background.len() as f64 * 4.0 / 3.0)) as usize;
        let target = match background.get(pick) {
            Some(actor) => (*actor).to_owned(),
            None => {
                let opened = observed.transactions.lock().unwrap();
                let Some(last) =
                    opened.iter().rev().take(20).nth((fraction() * 20.0) as usize % opened.len().clamp(1, 20))
                else {
                    continue;
                };
                format!("purchase:{last}")
            }
        };
        // A purchase's actor may have finished and stopped (404), or the service be down: both are no crash.
        if let Ok(answer) = driver.post(&format!("/dev/crash/{target}"), Some(&admin), &json!({})).await {
            crashes += usize::from(answer.status == 200);
        }
    }
    crashes
}

/// Once the purchase has succeeded, the client asks for its refund and an admin approves it at once.
async fn refund(driver: &Driver, admin: &str, token: &str, transaction: &str) -> Result<(), String> {
    driver.wait_for(token, transaction, "succeeded", Duration::from_secs(20)).await?;
    let body = json!({ "transactionId": transaction, "reason": "chaos", "details": "checking refunds under faults" });
    let asked = driver.post("/api/v1/payments/refund", Some(token), &body).await?;
    let refund = asked.data("refundRequestId").to_owned();
    if refund.is_empty() {
        return Err(format!("refund request: {} {}", asked.status, asked.body));
    }
    driver.post(&format!("/api/v1/admin/refunds/{refund}/approve"), Some(admin), &json!({})).await?;
    Ok(())
}

/// A PayPal purchase: the order, the payer's approval on the sandbox's page and the return landing that captures
/// it. One in four pays with a funding source PayPal declines at capture; one in two is then also captured through
/// the Smart Buttons' `capture-order`, which must not capture twice, and then refunded.
async fn shop_with_paypal(driver: &Driver, admin: &str, token: &str, n: usize, package: &str) -> Result<(), String> {
    let order = driver.paypal_order(token, package).await?;
    let (id, transaction) = (order.data("orderId").to_owned(), order.data("transactionId").to_owned());
    if id.is_empty() {
        return Err(format!("create-order: {}", order.status));
    }
    driver.approve_paypal(&id, if n % 40 == 8 { "declined" } else { "paypal" }).await?;
    if n % 20 == 18 {
        driver.post("/api/v1/payments/paypal/capture-order", Some(token), &json!({ "orderId": id })).await?;
        refund(driver, admin, token, &transaction).await?;
    }
    Ok(())
}

async fn run_once(
    workspace: &mut Workspace,
    (smtp, platform): (&SmtpSink, &PlatformReceiver),
    options: &ChaosOptions,
    run: usize,
) -> Result<RunResult, String> {
    let (package, _) = workspace.first_package();
    let admin = workspace.driver.token("chaos-admin", Role::Admin)?;
    let driver = workspace.driver.clone();
    let observed = Arc::new(Observed::default());
    let stop_crashing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let crasher = tokio::spawn(crash_actors(
        driver.clone(),
        admin.clone(),
        options.actor_panic_rate,
        observed.clone(),
        stop_crashing.clone(),
    ));
    let (shoppers_saw, shoppers_admin) = (observed.clone(), admin.clone());
    let shoppers = spawn_jobs(options.purchases, options.concurrency, move |n| {
        let (driver, admin, package, observed) =
            (driver.clone(), shoppers_admin.clone(), package.clone(), shoppers_saw.clone());
        async move {
            let shopped = shop(&driver, &admin, (run, n), &package, &observed).await;
            if shopped.is_err() {
                // Most likely the service is down: a client would wait a moment before the next try.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            shopped
        }
    });
    let mut result = RunResult { purchases: options.purchases, ..RunResult::default() };
    // The last node is killed for good when there are three or more; the kills and the freeze pick among the others.
    let nodes = workspace.node_count();
    let lasting = if nodes >= 3 { nodes - 1 } else { nodes };
    let http = workspace.driver.http.clone();
    for _ in 0..options.kills {
        tokio::time::sleep(Duration::from_millis(200 + (fraction() * 1300.0) as u64)).await;
        let node = workspace.node((fraction() * lasting as f64) as usize % lasting);
        node.kill();
        result.kills += 1;
        node.start(&http).await?;
    }
    if nodes >= 3 {
        // Frozen past its claims, as by a hung VM: the others take its deadlines over; thawed, it finds its copies
        // stale and its version checks fail rather than overwrite.
        let frozen = workspace.node(1);
        frozen.freeze(true);
        tokio::time::sleep(CLAIM + Duration::from_millis(1500)).await;
        workspace.node(1).freeze(false);
        result.freezes += 1;
        workspace.node(nodes - 1).kill();
        result.kills += 1;
    }
    let errors = shoppers.await.map_err(|e| e.to_string())?;
    stop_crashing.store(true, std::sync::atomic::Ordering::SeqCst);
    result.actor_crashes = crasher.await.map_err(|e| e.to_string())?;
    result.driver_errors = errors.len();
    result.driver_error_samples = errors.into_iter().take(5).collect();
    let probed = match nodes > 1 {
        true => probe_nodes(workspace, &admin, lasting, run).await?,
        false => vec![],
    };
    settle(workspace).await?;
    // Payments held for review are decided once they are held; some get there late, reconciled after a kill.
    while review_queue(&workspace.driver, &admin).await? > 0 {
        settle(workspace).await?;
    }
    for _ in 0..20 {
        if dispute_queue(&workspace.driver, &admin).await? == (0, 0) {
            break;
        }
        settle(workspace).await?;
    }
    // Lost webhooks are found by the reconciler, `payments.reconcile_after` after a purchase's last news: the books
    // may take a few of its rounds to balance. What is still wrong after two minutes is a violation.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        result.violations = probed.clone();
        check(workspace, &mut result).await?;
        check_events(workspace, platform, &mut result).await?;
        for key in observed.held_keys.lock().unwrap().iter() {
            result.violations.push(format!("Idempotency-Key {key} was still refused after its lease"));
        }
        result.mails_received = smtp.received();
        if result.mails_received < result.mails_sent {
            result.violations.push(format!(
                "the outbox marked {} messages mailed, the SMTP server received {}",
                result.mails_sent, result.mails_received
            ));
        }
        // Each node killed or frozen, and each crash (the mailer's among them), may have sent one message it never
        // marked; more than that is mailers sending each other's messages.
        let stops = result.kills + result.freezes + result.actor_crashes;
        if result.mails_received > result.mails_sent + stops {
            result.violations.push(format!(
                "the SMTP server received {} messages for {} mailed, more than one more per stop ({stops})",
                result.mails_received, result.mails_sent
            ));
        }
        if result.violations.is_empty() || Instant::now() > deadline {
            return Ok(result);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What only several nodes can get wrong, tried through the nodes that are up (past haproxy): a pause set on one
/// refuses checkouts on another within `PAUSE_REACH`; a card-testing burst spread over them is blocked at the one
/// client's threshold (`fraud.checkouts_per_hour`). Returns the violations.
async fn probe_nodes(workspace: &mut Workspace, admin: &str, live: usize, run: usize) -> Result<Vec<String>, String> {
    let bases: Vec<String> = (0..live).map(|i| workspace.node(i).base.clone()).collect();
    let (package, _) = workspace.first_package();
    let probe = Probe {
        driver: workspace.driver.clone(),
        bases,
        checkout: json!({ "packageId": package, "paymentMethodId": SUCCEEDS }),
    };
    let mut violations = probe.pause(admin, &format!("chaos-probe-{run}")).await?;
    let threshold = workspace.settings().fraud.checkouts_per_hour;
    violations.extend(probe.burst(&format!("chaos-burst-{run}"), threshold).await?);
    Ok(violations)
}

/// Checkouts sent to each live node directly.
struct Probe {
    driver: Arc<Driver>,
    bases: Vec<String>,
    checkout: serde_json::Value,
}

const INTENT: &str = "/api/v1/payments/stripe/intent";

impl Probe {
    /// A checkout on `node`. The probed nodes stay up, so a request that does not reach one (a pooled connection
    /// to a node the run killed and restarted, or froze) never reached the service: it is sent again, as a client
    /// would, a few times before the probe gives up.
    async fn open(&self, node: usize, token: &str) -> Result<super::driver::Answer, String> {
        let base = &self.bases[node % self.bases.len()];
        let mut tries = 0;
        loop {
            match self.driver.post_at(base, INTENT, Some(token), &self.checkout).await {
                Err(e) if tries < 3 => {
                    tracing::warn!(error = %e, base, "chaos probe: checkout not delivered; sending it again");
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                answered => return answered,
            }
        }
    }

    /// A pause set through the first node, seen refusing checkouts on the last; then resumed, and each node seen
    /// taking a checkout again.
    async fn pause(&self, admin: &str, client: &str) -> Result<Vec<String>, String> {
        let (driver, last) = (&self.driver, self.bases.len() - 1);
        let token = driver.token(client, Role::Client)?;
        let pause = json!({ "scope": "platform", "reason": "chaos: does a pause reach every node?" });
        let paused = driver.post_at(&self.bases[0], "/api/v1/admin/controls/pause", Some(admin), &pause).await?;
        if paused.status != 200 {
            return Err(format!("the pause was refused: {} {}", paused.status, paused.body));
        }
        let started = Instant::now();
        let mut reached = false;
        while started.elapsed() < PAUSE_REACH && !reached {
            reached = self.open(last, &token).await?.body["error"]["code"] == "payments_paused";
        }
        let resume = json!({ "scope": "platform", "reason": "chaos: probe done" });
        driver.post_at(&self.bases[last], "/api/v1/admin/controls/resume", Some(admin), &resume).await?;
        // Until every node has seen the resume, a checkout may still be refused: wait for each to take one.
        for node in 0..self.bases.len() {
            let deadline = Instant::now() + PAUSE_REACH;
            while self.open(node, &token).await?.status != 200 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(match reached {
            true => vec![],
            false => {
                vec![format!("a pause set on one node did not refuse checkouts on another within {PAUSE_REACH:?}")]
            }
        })
    }

    /// One client's `threshold + 1` checkouts, round robin over the nodes. A checkout the provider fails (the run's
    /// injected faults) was still screened and counts; only the blocks tell: none before the threshold, then one.
    async fn burst(&self, client: &str, threshold: usize) -> Result<Vec<String>, String> {
        let token = self.driver.token(client, Role::Client)?;
        let mut blocked = vec![];
        for n in 0..=threshold {
            if self.open(n, &token).await?.body["error"]["code"] == "payment_blocked" {
                blocked.push(n + 1);
            }
        }
        Ok(match blocked == [threshold + 1] {
            true => vec![],
            false => vec![format!(
                "a burst of {} checkouts spread over {} nodes was blocked at checkouts {blocked:?}; the threshold is \
                 {threshold}",
                threshold + 1,
                self.bases.len()
            )],
        })
    }
}

/// Waits until no purchase or refund is in the provider's hands and the outbox is empty (two minutes at most; what
/// is still moving then is reported by the checks).
async fn settle(workspace: &Workspace) -> Result<(), String> {
    let db = store::connect(&workspace.database_url, 2).await.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let moving = store::metrics::count_by(&db, "purchases", "status").await.map_err(|e| e.to_string())?;
        let refunds = store::metrics::count_by(&db, "refund_requests", "status").await.map_err(|e| e.to_string())?;
        let busy =
            |rows: &[(String, i64)], states: &[&str]| rows.iter().any(|(s, n)| *n > 0 && states.contains(&s.as_str()));
        let outbox = store::metrics::outbox_pending(&db).await.map_err(|e| e.to_string())?;
        let (unfanned, due) = store::events::waiting(&db).await.map_err(|e| e.to_string())?;
        let deliveries =
            store::metrics::count_by(&db, "event_deliveries", "status").await.map_err(|e| e.to_string())?;
        let events_moving = unfanned || due || busy(&deliveries, &["pending"]);
        if !busy(&moving, &["processing"]) && !busy(&refunds, &["processing"]) && outbox == 0 && !events_moving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    db.close().await.ok();
    Ok(())
}

/// The invariants, against the sandbox's record of what it charged and refunded.
async fn check(workspace: &Workspace, result: &mut RunResult) -> Result<(), String> {
    let db = store::connect(&workspace.database_url, 2).await.map_err(|e| e.to_string())?;
    let e = |e: sea_orm::DbErr| e.to_string();
    let intents = intents::Entity::find().all(&db).await.map_err(e)?;
    let orders = paypal_orders::Entity::find().all(&db).await.map_err(e)?;
    let purchases: HashMap<Uuid, purchases::Model> =
        purchases::Entity::find().all(&db).await.map_err(e)?.into_iter().map(|p| (p.id, p)).collect();
    let ledger = credit_ledger::Entity::find().all(&db).await.map_err(e)?;
    let known_disputes: HashMap<String, disputes::Model> =
        disputes::Entity::find().all(&db).await.map_err(e)?.into_iter().map(|d| (d.id.clone(), d)).collect();
    let refunds = refund_requests::Entity::find().all(&db).await.map_err(e)?;
    let outbox = outbox::Entity::find().all(&db).await.map_err(e)?;
    let unapplied = webhook_events::Entity::find()
        .filter(webhook_events::Column::Status.is_in(["received", "failed"]))
        .all(&db)
        .await
        .map_err(e)?;
    db.close().await.ok();
    let violations = &mut result.violations;

    let mut entries: HashMap<(&str, &str), usize> = HashMap::new();
    for row in &ledger {
        *entries.entry((row.source.as_str(), row.kind.as_str())).or_default() += 1;
    }
    let grants = |purchase: &Uuid| entries.get(&(format!("purchase:{purchase}").as_str(), "purchase_grant")).copied();
    // What the provider took, by purchase: succeeded card intents and completed PayPal captures.
    let charged: HashMap<Uuid, &str> = intents
        .iter()
        .filter(|i| i.status == "succeeded")
        .map(|i| (i.purchase_id, i.id.as_str()))
        .chain(
            orders
                .iter()
                .filter(|o| o.capture_status.as_deref() == Some("COMPLETED"))
                .map(|o| (o.purchase_id, o.id.as_str())),
        )
        .collect();
    let paypal: HashSet<Uuid> = orders.iter().map(|o| o.purchase_id).collect();
    let at_provider: HashSet<Uuid> = intents.iter().map(|i| i.purchase_id).chain(paypal.iter().copied()).collect();
    let mut queued: HashMap<&str, Vec<&outbox::Model>> = HashMap::new();
    for message in &outbox {
        queued.entry(message.dedupe_key.as_str()).or_default().push(message);
    }
    result.charged = charged.len();
    result.charged_paypal = charged.keys().filter(|p| paypal.contains(p)).count();
    result.refunded = 0;
    result.refunded_paypal = 0;
    result.receipts_sent = 0;
    // Marked sent without a note: mailed (a note says why a message had no one to go to).
    result.mails_sent = outbox.iter().filter(|m| m.sent_at.is_some() && m.last_error.is_none()).count();
    let mut intents_of: HashMap<Uuid, usize> = HashMap::new();
    for intent in &intents {
        *intents_of.entry(intent.purchase_id).or_default() += 1;
    }
    for (purchase, n) in intents_of.iter().filter(|(_, n)| **n > 1) {
        violations.push(format!("purchase {purchase} has {n} intents at the provider"));
    }
    // Every deadline fires, whichever node armed it and whatever became of that node.
    let overdue = chrono::Utc::now() - chrono::TimeDelta::seconds(30);
    for purchase in purchases.values().filter(|p| p.next_due_at.is_some_and(|at| at < overdue)) {
        violations.push(format!("purchase {} has a deadline overdue since {:?}", purchase.id, purchase.next_due_at));
    }
    for event in &unapplied {
        violations.push(format!("webhook {} {} left {} in the inbox", event.provider, event.event_id, event.status));
    }
    let refunded_at_provider: HashMap<Uuid, &str> = intents
        .iter()
        .filter_map(|i| i.refund_id.as_deref().map(|r| (i.purchase_id, r)))
        .chain(orders.iter().filter_map(|o| o.refund_id.as_deref().map(|r| (o.purchase_id, r))))
        .collect();
    for (purchase, charge) in &charged {
        match (purchases.get(purchase).map(|p| p.status.as_str()), grants(purchase).unwrap_or(0)) {
            (Some("succeeded"), 1) => {}
            // A confirmed fraud: nothing granted, and the money given back.
            (Some("reversed"), 0) if refunded_at_provider.contains_key(purchase) => {}
            (status, n) => {
                violations.push(format!("charged {charge} but purchase {purchase} is {status:?} with {n} grants"))
            }
        }
    }
    for (id, purchase) in &purchases {
        if grants(id).unwrap_or(0) > 0 && !charged.contains_key(id) {
            violations.push(format!("purchase {id} granted credits the provider never charged"));
        }
        let waiting = ["requires_payment_method", "requires_confirmation", "requires_action", "failed", "expired"];
        let uncharged_start = purchase.status == "created" && !at_provider.contains(id);
        let finished = ["succeeded", "reversed"].contains(&purchase.status.as_str());
        if !finished && !waiting.contains(&purchase.status.as_str()) && !uncharged_start {
            violations.push(format!("purchase {id} stuck in {}", purchase.status));
        }
        let receipts = queued.get(format!("receipt:{id}").as_str()).map(Vec::as_slice).unwrap_or_default();
        result.receipts_sent += receipts.iter().filter(|r| r.sent_at.is_some()).count();
        let wanted = usize::from(purchase.status == "succeeded");
        if receipts.len() != wanted || receipts.iter().any(|r| r.sent_at.is_none()) {
            let unsent: Vec<String> = receipts
                .iter()
                .filter(|r| r.sent_at.is_none())
                .map(|r| format!("due {} after {} attempts ({:?})", r.available_at, r.attempts, r.last_error))
                .collect();
            violations.push(format!(
                "purchase {id} ({}) has {} receipts queued, unsent: {unsent:?}",
                purchase.status,
                receipts.len()
            ));
        }
    }
    result.reversed = 0;
    for refund in &refunds {
        let entry = |kind: &str| entries.get(&(format!("refund:{}", refund.id).as_str(), kind)).copied().unwrap_or(0);
        // A refund the method refused gave its debit back.
        let debits = entry("refund_debit").saturating_sub(entry("refund_credit_back"));
        let at_provider = refunded_at_provider.contains_key(&refund.purchase_id);
        if refund.state.get("reversal").and_then(serde_json::Value::as_bool) == Some(true) {
            // Every confirmed fraud is refunded at the provider exactly once (the sandbox keeps one refund per
            // payment, so a second would show as a second reversal of it) and the purchase then shows reversed.
            let reversed = purchases.get(&refund.purchase_id).is_some_and(|p| p.status == "reversed");
            let reversals = refunds.iter().filter(|r| r.purchase_id == refund.purchase_id).count();
            match (refund.status.as_str(), debits, at_provider, reversed, reversals) {
                ("refunded", 0, true, true, 1) => result.reversed += 1,
                (status, n, provider, reversed, reversals) => violations.push(format!(
                    "fraud reversal {} is {status} with {n} debits (refunded at the provider: {provider}; purchase \
                     reversed: {reversed}; refunds of the purchase: {reversals})",
                    refund.id
                )),
            }
            continue;
        }
        match (refund.status.as_str(), debits, at_provider) {
            ("refunded", 1, true) => {
                result.refunded += 1;
                result.refunded_paypal += usize::from(paypal.contains(&refund.purchase_id));
            }
            ("pending_review" | "denied" | "needs_alternative_method", 0, false) => {}
            (status, n, provider) => violations.push(format!(
                "refund {} is {status} with {n} debits; refunded at the provider: {provider}",
                refund.id
            )),
        }
    }
    // Disputes: each one the provider decided is decided alike here, and each lost one debited exactly once.
    let mut lost_at_provider: HashSet<Uuid> = HashSet::new();
    result.disputes_lost = 0;
    result.disputes_won = 0;
    for intent in intents.iter().filter(|i| i.dispute_id.is_some()) {
        let (id, at_provider) = (intent.dispute_id.as_deref().unwrap_or_default(), intent.dispute_status.as_deref());
        let debits = entries.get(&(format!("dispute:{id}").as_str(), "dispute_debit")).copied().unwrap_or(0);
        let here = known_disputes.get(id).map(|d| d.status.as_str());
        match (at_provider, here, debits) {
            (Some("lost"), Some("lost"), 1) => {
                result.disputes_lost += 1;
                lost_at_provider.insert(intent.purchase_id);
            }
            (Some("won"), Some("won"), 0) => result.disputes_won += 1,
            // Unanswered or under review: no money has moved. (A dispute whose `created` webhook was lost is not
            // known until the provider reports it again.)
            (Some("needs_response" | "under_review"), _, 0) => {}
            (provider, here, n) => {
                violations.push(format!("dispute {id} is {provider:?} at the provider, {here:?} here, with {n} debits"))
            }
        }
    }
    for (id, dispute) in &known_disputes {
        if !intents.iter().any(|i| i.dispute_id.as_deref() == Some(id.as_str())) {
            violations.push(format!("dispute {id} ({}) is unknown to the provider", dispute.status));
        }
    }
    // Balances as a client sees them, against what the provider says each client paid and got back.
    let mut expected: HashMap<&str, i64> = HashMap::new();
    for (id, purchase) in &purchases {
        let kept = charged.contains_key(id) as i64
            - refunded_at_provider.contains_key(id) as i64
            - lost_at_provider.contains(id) as i64;
        *expected.entry(purchase.client_id.as_str()).or_default() += kept * purchase.credits;
    }
    // What the platform spent and gave back, recorded by Purser alone.
    for row in ledger.iter().filter(|r| ["spend", "spend_reversal"].contains(&r.kind.as_str())) {
        *expected.entry(row.client_id.as_str()).or_default() += row.credits;
    }
    for (client, credits) in expected {
        let token = workspace.driver.token(client, Role::Client)?;
        let balance = workspace.driver.balance(&token).await?;
        if balance != credits {
            violations.push(format!("{client} has a balance of {balance}; the provider's record gives {credits}"));
        }
    }
    Ok(())
}

/// The platform's side (issue 18): every ledger row produced exactly one event; every event was delivered, each
/// signature verified; the platform's ledger, built from the events it kept once each, is Purser's.
async fn check_events(
    workspace: &Workspace,
    platform: &PlatformReceiver,
    result: &mut RunResult,
) -> Result<(), String> {
    use entities::{event_deliveries, platform_events};
    let db = store::connect(&workspace.database_url, 2).await.map_err(|e| e.to_string())?;
    let e = |e: sea_orm::DbErr| e.to_string();
    let ledger = credit_ledger::Entity::find().all(&db).await.map_err(e)?;
    let events = platform_events::Entity::find().all(&db).await.map_err(e)?;
    let deliveries = event_deliveries::Entity::find().all(&db).await.map_err(e)?;
    db.close().await.ok();
    let violations = &mut result.violations;
    let causes: HashSet<&str> = events.iter().map(|e| e.cause.as_str()).collect();
    for row in &ledger {
        if !causes.contains(format!("ledger:{}:{}", row.source, row.kind).as_str()) {
            violations.push(format!("ledger row {} ({} {}) produced no event", row.id, row.kind, row.source));
        }
    }
    let ledger_events = events.iter().filter(|e| e.payload["data"]["ledgerEntry"].is_object()).count();
    if ledger_events != ledger.len() {
        violations.push(format!("{} ledger rows, {ledger_events} events carrying one", ledger.len()));
    }
    let undelivered: Vec<String> = deliveries
        .iter()
        .filter(|d| d.status != "delivered")
        .map(|d| format!("{} {} after {} attempts ({:?})", d.event_id, d.status, d.attempts, d.last_error))
        .take(5)
        .collect();
    if !undelivered.is_empty() || deliveries.len() != events.len() {
        violations.push(format!(
            "{} events, {} deliveries, undelivered: {undelivered:?}",
            events.len(),
            deliveries.len()
        ));
    }
    let kept = platform.events();
    result.events = events.len();
    result.event_requests = platform.requests();
    if kept.len() != events.len() || events.iter().any(|e| !kept.contains_key(&e.id)) {
        violations.push(format!("Purser wrote {} events; the platform kept {}", events.len(), kept.len()));
    }
    if platform.bad_signatures() > 0 {
        violations.push(format!("{} events arrived with a signature that does not verify", platform.bad_signatures()));
    }
    let mut theirs: HashMap<String, i64> = HashMap::new();
    for event in kept.values() {
        if let (Some(client), Some(credits)) =
            (event["data"]["clientId"].as_str(), event["data"]["ledgerEntry"]["credits"].as_i64())
        {
            *theirs.entry(client.to_owned()).or_default() += credits;
        }
    }
    let mut ours: HashMap<String, i64> = HashMap::new();
    for row in &ledger {
        *ours.entry(row.client_id.clone()).or_default() += row.credits;
    }
    ours.retain(|_, credits| *credits != 0);
    theirs.retain(|_, credits| *credits != 0);
    if ours != theirs {
        let differ: Vec<&String> =
            ours.keys().chain(theirs.keys()).filter(|c| ours.get(*c) != theirs.get(*c)).collect();
        violations.push(format!("the platform's balances differ from Purser's for {differ:?}"));
    }
    Ok(())
}

/// Runs `options.runs` runs, each on a fresh database; the summary line and every violation are printed.
pub async fn run(
    options: &ChaosOptions,
    open: impl AsyncFn(Vec<(String, String)>) -> Result<Workspace, String>,
) -> Result<Vec<RunResult>, String> {
    let mut results = vec![];
    for run in 0..options.runs {
        let smtp =
            SmtpSink::start(Duration::from_millis(options.smtp_down_ms)).map_err(|e| format!("SMTP sink: {e}"))?;
        let platform =
            PlatformReceiver::start(Duration::from_millis(options.smtp_down_ms), PLATFORM_ERROR_RATE).await?;
        let mut env = fault_env(options);
        let endpoint =
            format!(r#"[{{name="platform",url="{}",secret_env="PURSER_CHAOS_EVENTS_SECRET"}}]"#, platform.url);
        env.extend([
            ("PURSER_EMAIL__TRANSPORT".to_owned(), "smtp".to_owned()),
            ("PURSER_EMAIL__SMTP_HOST".to_owned(), "127.0.0.1".to_owned()),
            ("PURSER_EMAIL__SMTP_PORT".to_owned(), smtp.port.to_string()),
            ("PURSER_EMAIL__SMTP_TLS".to_owned(), "none".to_owned()),
            ("PURSER_EVENTS__ENDPOINTS".to_owned(), endpoint),
            ("PURSER_CHAOS_EVENTS_SECRET".to_owned(), super::receiver::SECRET.to_owned()),
        ]);
        let mut workspace = open(env).await?;
        let result = run_once(&mut workspace, (&smtp, &platform), options, run).await;
        workspace.close().await;
        let result = result?;
        eprintln!(
            "chaos run {}: kills={} actor_crashes={} purchases={} charged={} (paypal {}) refunded={} (paypal {}) reversed={} disputes lost={} won={} receipts={} mailed={} mails_received={} events={} event_requests={} driver_errors={} violations={}",
            run + 1,
            result.kills,
            result.actor_crashes,
            result.purchases,
            result.charged,
            result.charged_paypal,
            result.refunded,
            result.refunded_paypal,
            result.reversed,
            result.disputes_lost,
            result.disputes_won,
            result.receipts_sent,
            result.mails_sent,
            result.mails_received,
            result.events,
            result.event_requests,
            result.driver_errors,
            result.violations.len()
        );
        for sample in &result.driver_error_samples {
            eprintln!("  driver error (expected while the service is down or a provider fails): {sample}");
        }
        for violation in &result.violations {
            eprintln!("  violation in run {}: {violation}", run + 1);
        }
        results.push(result);
    }
    Ok(results)
}
