//! `purser bench`: how fast is a complete purchase, measured through the public API against a fresh service.
use super::driver::{DECLINES, Driver, NEEDS_3DS};
use super::stats::{Samples, Summary};
use super::workers::spawn_jobs;
use super::workspace::{Routing, Workspace};
use crate::auth::Role;
use crate::providers::sandbox::SUCCEEDING_CARDS;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct BenchOptions {
    pub purchases: usize,
    pub concurrency: usize,
    pub provider_latency_ms: u64,
    pub in_flight: usize,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Outcomes {
    succeeded: usize,
    declined: usize,
    three_d_secure: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    waiting: usize,
    rss_before_bytes: u64,
    rss_after_bytes: u64,
    bytes_per_waiting_purchase: u64,
    /// Purchase actors alive once the waiting ones had time to passivate.
    live_actors_before_kill: usize,
    /// From the restart to every waiting purchase having its deadline scheduled again.
    restart_seconds: f64,
    deadlines_after_restart: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchReport {
    database: &'static str,
    /// Each node's PostgreSQL pool and the writer's lanes in it, as the configuration and the environment give them.
    pool: Option<Pool>,
    /// Services behind haproxy; the CPU, statements and memory are the first one's.
    nodes: usize,
    routing: Routing,
    purchases: usize,
    concurrency: usize,
    provider_latency_ms: u64,
    seconds: f64,
    purchases_per_second: f64,
    outcomes: Outcomes,
    /// Milliseconds, each.
    intent: Summary,
    confirm: Summary,
    webhook_ack: Summary,
    /// From the sandbox's 3-D Secure success to the purchase showing `succeeded` with its credits.
    success_to_credits: Summary,
    errors: usize,
    first_errors: Vec<String>,
    peak_rss_bytes: u64,
    cost: Cost,
    raw_commits_per_second: f64,
    ratio_to_raw_commits: f64,
    spends: Spends,
    in_flight: Option<InFlight>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    connections: u32,
    writer_lanes: usize,
}

/// The platform's spends (issue 18): one credit at a time from each client that bought, at the same concurrency.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spends {
    count: usize,
    per_second: f64,
    /// Milliseconds.
    latency: Summary,
    errors: usize,
}

/// What the service spent on the purchases, read from `/proc` and `/metrics` before and after the run.
#[derive(Serialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// Server CPU time (user and system), in milliseconds per purchase.
    cpu_ms_per_purchase: f64,
    /// SQL statements per purchase, in the writer's batches and outside them.
    statements_per_purchase: f64,
    writer_statements_per_purchase: f64,
    /// Durable transactions per purchase: the writer's batches, plus every write outside the writer (each its own).
    transactions_per_purchase: f64,
    /// Steps per batch, on average, and the largest.
    mean_batch: f64,
    largest_batch: u64,
    /// Of the writer's batches, the share run a second time with savepoints because a step failed.
    replayed_share: f64,
}

#[derive(Default, Clone, Copy)]
struct CostReading {
    cpu_seconds: f64,
    writer_statements: u64,
    direct_statements: u64,
    direct_writes: u64,
    batches: u64,
    steps: u64,
    replayed: u64,
}

async fn read_cost(workspace: &Workspace) -> Result<CostReading, String> {
    let statements = "purser_store_statements_total";
    let mut direct_writes = 0;
    for kind in ["insert", "update", "delete"] {
        direct_writes += workspace.series_sum(statements, &["path=\"direct\"", &format!("kind=\"{kind}\"")]).await?;
    }
    Ok(CostReading {
        cpu_seconds: workspace.service.cpu_seconds().unwrap_or(0.0),
        writer_statements: workspace.series_sum(statements, &["path=\"writer\""]).await?,
        direct_statements: workspace.series_sum(statements, &["path=\"direct\""]).await?,
        direct_writes,
        batches: workspace.series_sum("purser_writer_batches_total", &[]).await?,
        steps: workspace.series_sum("purser_writer_steps_total", &[]).await?,
        replayed: workspace.series_sum("purser_writer_replayed_batches_total", &[]).await?,
    })
}

impl Cost {
    fn between(before: CostReading, after: CostReading, purchases: usize, largest_batch: u64) -> Self {
        let per = |n: f64| (n / purchases.max(1) as f64 * 100.0).round() / 100.0;
        let writer = (after.writer_statements - before.writer_statements) as f64;
        let batches = (after.batches - before.batches) as f64;
        Self {
            cpu_ms_per_purchase: per((after.cpu_seconds - before.cpu_seconds) * 1000.0),
            statements_per_purchase: per(writer + (after.direct_statements - before.direct_statements) as f64),
            writer_statements_per_purchase: per(writer),
            transactions_per_purchase: per(batches + (after.direct_writes - before.direct_writes) as f64),
            mean_batch: ((after.steps - before.steps) as f64 / batches.max(1.0) * 10.0).round() / 10.0,
            largest_batch,
            replayed_share: ((after.replayed - before.replayed) as f64 / batches.max(1.0) * 1000.0).round() / 1000.0,
        }
    }
}

#[derive(Default)]
struct Tally {
    intent: Samples,
    confirm: Samples,
    webhook: Samples,
    credits: Samples,
    outcomes: Outcomes,
    errors: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.intent.extend(other.intent);
        self.confirm.extend(other.confirm);
        self.webhook.extend(other.webhook);
        self.credits.extend(other.credits);
        self.outcomes.succeeded += other.outcomes.succeeded;
        self.outcomes.declined += other.outcomes.declined;
        self.outcomes.three_d_secure += other.outcomes.three_d_secure;
        self.errors.extend(other.errors);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeds,
    Declines,
    NeedsAuthentication,
}

/// Every twentieth purchase declines and every twentieth needs 3-D Secure; the rest succeed at once, the buyers
/// taking the sandbox's succeeding cards in turn.
fn method_for(n: usize) -> (Outcome, &'static str) {
    match n % 20 {
        7 => (Outcome::Declines, DECLINES),
        13 => (Outcome::NeedsAuthentication, NEEDS_3DS),
        _ => (Outcome::Succeeds, SUCCEEDING_CARDS[n % SUCCEEDING_CARDS.len()]),
    }
}

/// Each buyer's own address in 10.0.0.0/8, which the harness's load balancer reports: a platform's buyers come from
/// networks of their own, and the fraud monitor counts checkouts per network.
fn buyer_address(n: usize) -> IpAddr {
    let host = u32::try_from(n % (1 << 24)).unwrap_or_default();
    IpAddr::V4(Ipv4Addr::from(0x0A00_0000 | host))
}

/// One complete purchase, as a client's browser and the provider would make it.
async fn purchase(
    driver: &Driver,
    run: &str,
    n: usize,
    package: &(String, i64),
    tally: &mut Tally,
) -> Result<(), String> {
    let (package, credits) = package;
    let client = format!("bench-{run}-{n}");
    let token = driver.token(&client, Role::Client)?;
    let (outcome, method) = method_for(n);
    let intent = driver.intent(&token, package, method, Some(buyer_address(n))).await?;
    if intent.status != 200 {
        return Err(format!("intent: {} {}", intent.status, intent.body));
    }
    tally.intent.push(intent.took);
    let (intent_id, transaction) = (intent.data("paymentIntentId").to_owned(), intent.data("transactionId").to_owned());
    let confirm = driver.confirm(&token, package, &intent_id, Some(buyer_address(n))).await?;
    tally.confirm.push(confirm.took);
    let expected = match (outcome, confirm.status, confirm.data("status")) {
        (Outcome::Succeeds, 200, "succeeded") => {
            tally.outcomes.succeeded += 1;
            *credits
        }
        (Outcome::Declines, 402, _) => {
            tally.outcomes.declined += 1;
            0
        }
        (Outcome::NeedsAuthentication, _, "requires_action") => {
            let authenticated = driver.authenticate(&intent_id, true).await?;
            if authenticated.status != 200 {
                return Err(format!("3-D Secure: {} {}", authenticated.status, authenticated.body));
            }
            let succeeded_at = Instant::now();
            driver.wait_for(&token, &transaction, "succeeded", Duration::from_secs(60)).await?;
            tally.credits.push(succeeded_at.elapsed());
            tally.outcomes.three_d_secure += 1;
            *credits
        }
        _ => return Err(format!("confirm with {method}: {} {}", confirm.status, confirm.body)),
    };
    if expected > 0 {
        let ack = driver.succeeded_webhook(&format!("evt_bench_{run}_{n}"), &intent_id, &transaction).await?;
        if ack.status != 200 {
            return Err(format!("webhook: {} {}", ack.status, ack.body));
        }
        tally.webhook.push(ack.took);
    }
    let balance = driver.balance(&token).await?;
    if balance != expected {
        return Err(format!("{client} has {balance} credits, expected {expected}"));
    }
    Ok(())
}

async fn drive(driver: &Arc<Driver>, run: &str, count: usize, concurrency: usize, package: (String, i64)) -> Tally {
    let total = Arc::new(Mutex::new(Tally::default()));
    let (driver, run, package, shared) = (driver.clone(), run.to_owned(), Arc::new(package), total.clone());
    let errors = spawn_jobs(count, concurrency, move |n| {
        let (driver, run, package, shared) = (driver.clone(), run.clone(), package.clone(), shared.clone());
        async move {
            let mut tally = Tally::default();
            let result = purchase(&driver, &run, n, &package, &mut tally).await;
            shared.lock().map(|mut total| total.merge(tally)).map_err(|e| e.to_string())?;
            result
        }
    })
    .await
    .unwrap_or_else(|e| vec![e.to_string()]);
    let mut total = std::mem::take(&mut *total.lock().unwrap_or_else(|e| e.into_inner()));
    total.errors.extend(errors);
    total
}

/// The platform's backend spends one credit of each client whose purchase paid at once, each under its own key.
async fn spend(driver: &Arc<Driver>, run: &str, purchases: usize, concurrency: usize) -> Result<Spends, String> {
    let service = driver.token("bench-platform", Role::Service)?;
    let paid: Vec<usize> = (0..purchases).filter(|n| method_for(*n).0 == Outcome::Succeeds).collect();
    let latency = Arc::new(Mutex::new(Samples::default()));
    let (driver, run, jobs, shared) = (driver.clone(), run.to_owned(), Arc::new(paid.clone()), latency.clone());
    let started = Instant::now();
    let errors = spawn_jobs(paid.len(), concurrency, move |i| {
        let (driver, run, jobs, shared, service) =
            (driver.clone(), run.clone(), jobs.clone(), shared.clone(), service.clone());
        async move {
            let n = jobs[i];
            let body = serde_json::json!({ "clientId": format!("bench-{run}-{n}"), "credits": 1, "reference": format!("bench-job-{n}") });
            let spent = driver.post_keyed("/api/v1/credits/spend", &service, &format!("spend-{run}-{n}"), &body).await?;
            if spent.status != 201 {
                return Err(format!("spend: {} {}", spent.status, spent.body));
            }
            shared.lock().map_err(|e| e.to_string())?.push(spent.took);
            Ok(())
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let latency = std::mem::take(&mut *latency.lock().unwrap_or_else(|e| e.into_inner())).summary();
    let per_second = (paid.len() as f64 / seconds.max(1e-9)).round();
    Ok(Spends { count: paid.len(), per_second, latency, errors: errors.len() })
}

/// Leaves `count` purchases waiting for 3-D Secure, then kills the service and times their recovery.
async fn in_flight(
    workspace: &mut Workspace,
    count: usize,
    concurrency: usize,
    package: &str,
) -> Result<InFlight, String> {
    let before = workspace.service.memory().map_or(0, |m| m.0);
    let (driver, package) = (workspace.driver.clone(), package.to_owned());
    let errors = spawn_jobs(count, concurrency, move |n| {
        let (driver, package) = (driver.clone(), package.clone());
        async move {
            let token = driver.token(&format!("waiting-{n}"), Role::Client)?;
            let intent = driver.intent(&token, &package, NEEDS_3DS, Some(buyer_address(n))).await?;
            let confirm =
                driver.confirm(&token, &package, intent.data("paymentIntentId"), Some(buyer_address(n))).await?;
            if confirm.data("status") != "requires_action" {
                return Err(format!("a waiting purchase is {}: {}", confirm.status, confirm.body));
            }
            Ok(())
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    if let Some(first) = errors.first() {
        return Err(format!("{} purchases could not be left waiting; the first: {first}", errors.len()));
    }
    // Idle actors passivate after `payments.passivate_after` (2 s by default).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = workspace.service.memory().map_or(0, |m| m.0);
    let live = workspace.gauge("purser_live_purchase_actors").await?;
    workspace.service.kill();
    let restarted = Instant::now();
    workspace.service.start(&workspace.driver.http).await?;
    let mut deadlines = workspace.gauge("purser_scheduled_deadlines").await?;
    while deadlines < count && restarted.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        deadlines = workspace.gauge("purser_scheduled_deadlines").await?;
    }
    Ok(InFlight {
        waiting: count,
        rss_before_bytes: before,
        rss_after_bytes: after,
        bytes_per_waiting_purchase: after.saturating_sub(before) / count.max(1) as u64,
        live_actors_before_kill: live,
        restart_seconds: restarted.elapsed().as_secs_f64(),
        deadlines_after_restart: deadlines,
    })
}

pub async fn run(workspace: &mut Workspace, options: &BenchOptions) -> Result<BenchReport, String> {
    let run = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let package = workspace.first_package();
    let before = read_cost(workspace).await?;
    let started = Instant::now();
    let mut tally = drive(&workspace.driver, &run, options.purchases, options.concurrency, package.clone()).await;
    let seconds = started.elapsed().as_secs_f64();
    let after = read_cost(workspace).await?;
    let largest_batch = workspace.series_sum("purser_writer_largest_batch", &[]).await?;
    let cost = Cost::between(before, after, options.purchases, largest_batch);
    let peak_rss = workspace.service.memory().map_or(0, |m| m.1);
    let spends = spend(&workspace.driver, &run, options.purchases, options.concurrency).await?;
    let raw = workspace.raw_commit_rate(Duration::from_secs(3)).await?;
    let in_flight = match options.in_flight {
        0 => None,
        n => Some(in_flight(workspace, n, options.concurrency, &package.0).await?),
    };
    let purchases_per_second = options.purchases as f64 / seconds;
    let pool = (workspace.backend() == "postgres").then(|| {
        let database = crate::settings::DatabaseSettings {
            url: workspace.database_url.clone(),
            ..workspace.settings().database.clone()
        };
        Pool { connections: database.pool_size(), writer_lanes: database.writer_lanes() }
    });
    Ok(BenchReport {
        database: workspace.backend(),
        pool,
        nodes: workspace.node_count(),
        routing: workspace.routing(),
        purchases: options.purchases,
        concurrency: options.concurrency,
        provider_latency_ms: options.provider_latency_ms,
        seconds: (seconds * 1000.0).round() / 1000.0,
        purchases_per_second: purchases_per_second.round(),
        intent: tally.intent.summary(),
        confirm: tally.confirm.summary(),
        webhook_ack: tally.webhook.summary(),
        success_to_credits: tally.credits.summary(),
        outcomes: tally.outcomes,
        errors: tally.errors.len(),
        first_errors: tally.errors.into_iter().take(5).collect(),
        peak_rss_bytes: peak_rss,
        cost,
        raw_commits_per_second: raw.round(),
        ratio_to_raw_commits: (purchases_per_second / raw * 1000.0).round() / 1000.0,
        spends,
        in_flight,
    })
}

impl BenchReport {
    pub fn errors(&self) -> usize {
        self.errors + self.spends.errors
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
        let row = |name: &str, s: &Summary| {
            format!("{name:<26} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n", s.count, s.p50, s.p95, s.p99, s.max)
        };
        let mut out = match self.nodes {
            1 => String::new(),
            n => format!(
                "{n} nodes behind haproxy ({}); server CPU, statements and memory below are the first node's\n",
                match self.routing {
                    Routing::RoundRobin => "round robin",
                    Routing::ByClient => "each client to one node",
                }
            ),
        };
        out += &format!(
            "purser bench: {} purchases at concurrency {} on {}{}, provider latency {} ms\n\
             purchases/s {:.0} ({:.2} s); succeeded {}, declined {}, 3-D Secure {}; errors {}\n\
             raw durable commits/s {:.0}; ratio purchases/raw {:.3}; server peak RSS {:.1} MiB\n\
             per purchase: server CPU {:.2} ms, {:.1} statements ({:.1} in the writer's batches), {:.2} transactions; \
             writer batches of {:.1} steps on average, {} at most, {:.1} % run again with savepoints\n\n\
             {:<26} {:>8} {:>9} {:>9} {:>9} {:>9}\n",
            self.purchases,
            self.concurrency,
            self.database,
            self.pool.as_ref().map_or(String::new(), |p| format!(
                " (a pool of {} connections, {} writer lanes)",
                p.connections, p.writer_lanes
            )),
            self.provider_latency_ms,
            self.purchases_per_second,
            self.seconds,
            self.outcomes.succeeded,
            self.outcomes.declined,
            self.outcomes.three_d_secure,
            self.errors,
            self.raw_commits_per_second,
            self.ratio_to_raw_commits,
            mib(self.peak_rss_bytes),
            self.cost.cpu_ms_per_purchase,
            self.cost.statements_per_purchase,
            self.cost.writer_statements_per_purchase,
            self.cost.transactions_per_purchase,
            self.cost.mean_batch,
            self.cost.largest_batch,
            self.cost.replayed_share * 100.0,
            "latency (ms)",
            "count",
            "p50",
            "p95",
            "p99",
            "max",
        );
        out += &row("intent", &self.intent);
        out += &row("confirm", &self.confirm);
        out += &row("webhook ack", &self.webhook_ack);
        out += &row("3DS success -> credits", &self.success_to_credits);
        out += &row("spend (platform)", &self.spends.latency);
        out += &format!(
            "\nspends: {} of one credit at concurrency {}, {:.0}/s, errors {}\n",
            self.spends.count, self.concurrency, self.spends.per_second, self.spends.errors
        );
        if let Some(f) = &self.in_flight {
            out += &format!(
                "\nin flight: {} waiting for 3-D Secure; RSS {:.1} -> {:.1} MiB ({} bytes each), {} actors alive; \
                 after kill -9, {} deadlines back in {:.2} s\n",
                f.waiting,
                mib(f.rss_before_bytes),
                mib(f.rss_after_bytes),
                f.bytes_per_waiting_purchase,
                f.live_actors_before_kill,
                f.deadlines_after_restart,
                f.restart_seconds,
            );
        }
        for error in &self.first_errors {
            out += &format!("error: {error}\n");
        }
        out
    }
}
