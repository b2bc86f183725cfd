//! A fresh place for one harness run: its own database (a SQLite file in a temporary directory, or a new database
//! on the PostgreSQL server given), its own mail directory and secrets, and the service started on them.
use super::driver::Driver;
use super::service::Service;
use crate::auth::Authenticator;
use crate::settings::Settings;
use sea_orm::{ConnectionTrait, Database};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How haproxy spreads requests over several nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Routing {
    /// Each request to the next node: any node must serve any purchase.
    RoundRobin,
    /// A client's requests to one node, chosen by their `Authorization` header, so its purchases' actors stay warm
    /// there; requests without one (the provider's webhooks) round robin.
    ByClient,
}

impl Routing {
    fn balance(self) -> &'static str {
        match self {
            Routing::RoundRobin => "roundrobin",
            Routing::ByClient => "hdr(Authorization)",
        }
    }
}

pub struct Workspace {
    /// The first node (the only one unless `--nodes`).
    pub service: Service,
    /// With `--nodes N`: the other nodes, on the same database.
    pub others: Vec<Service>,
    /// With `--nodes N`: haproxy in front of every node, which the driver and the sandbox's webhooks go through.
    front: Option<std::process::Child>,
    pub driver: Arc<Driver>,
    pub database_url: String,
    pub dir: PathBuf,
    settings: Settings,
    /// (server URL, database name) of a PostgreSQL database made for this run, dropped at the end.
    made_database: Option<(String, String)>,
    routing: Routing,
}

/// What every harness run sets: limits a load test would trip are lifted, since every purchase comes from one
/// address and the same few test cards.
fn harness_env(dir: &Path, database_url: &str, webhook_secret: &str) -> Vec<(String, String)> {
    let huge = "1000000000".to_owned();
    let mut env: Vec<(String, String)> = [
        ("DATABASE__URL", database_url.to_owned()),
        ("SANDBOX__WEBHOOK_SECRET", webhook_secret.to_owned()),
        ("PAYMENTS__CARD_PROVIDER", "sandbox".to_owned()),
        ("PAYMENTS__PAYPAL_PROVIDER", "sandbox".to_owned()),
        ("EMAIL__TRANSPORT", "file".to_owned()),
        ("EMAIL__DIR", dir.join("mail").display().to_string()),
        ("LIMITS__CHECKOUT_PER_CLIENT_PER_MINUTE", huge.clone()),
        ("LIMITS__CHECKOUT_PER_IP_PER_MINUTE", huge.clone()),
        ("LIMITS__CHECKOUT_GLOBAL_PER_MINUTE", huge.clone()),
        ("FRAUD__CHECKOUTS_PER_IP_PER_HOUR", huge.clone()),
        ("FRAUD__CHECKOUTS_PER_CARD_PER_HOUR", huge.clone()),
        ("FRAUD__BREACH_DECLINES_PER_MINUTE", huge.clone()),
        ("FRAUD__BREACH_BLOCKS_PER_MINUTE", huge.clone()),
        ("CIRCUIT__FAILURES", huge),
        // The harness's clients, and haproxy in front of several nodes, are on this machine: a client's own address,
        // when it gives one, arrives in `X-Forwarded-For` as a load balancer reports it.
        ("SERVER__TRUSTED_PROXIES", r#"["127.0.0.1/32"]"#.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("PURSER_{k}"), v))
    .collect();
    env.push(("PURSER_ENVIRONMENT".into(), "development".into()));
    env
}

impl Workspace {
    /// `extra_env` adds or overrides `PURSER_*` settings for this run (provider latency, faults). With `nodes` above
    /// one, that many services share the (PostgreSQL) database behind haproxy, which spreads requests by `routing`.
    pub async fn open(
        config: &Path,
        database_url: Option<&str>,
        extra_env: Vec<(String, String)>,
        nodes: usize,
        routing: Routing,
    ) -> Result<Self, String> {
        if nodes > 1 && database_url.is_none() {
            return Err("--nodes needs --database-url: several nodes share one PostgreSQL (SQLite serves one)".into());
        }
        let settings = Settings::load(config)?;
        let dir = std::env::temp_dir().join(format!("purser-harness-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (url, made_database) = match database_url {
            None => (format!("sqlite://{}?mode=rwc", dir.join("purser.db").display()), None),
            Some(server) => {
                let name = format!("purser_harness_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(server).await.map_err(|e| format!("PostgreSQL: {e}"))?;
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.map_err(|e| e.to_string())?;
                admin.close().await.ok();
                let (prefix, _) = server.rsplit_once('/').ok_or("--database-url must end in /<database>")?;
                (format!("{prefix}/{name}"), Some((server.to_owned(), name)))
            }
        };
        let webhook_secret = format!("whsec_{}", uuid::Uuid::new_v4().simple());
        let mut env = harness_env(&dir, &url, &webhook_secret);
        env.extend(extra_env);
        // haproxy's port stays bound here until haproxy starts, so no node started meanwhile is given it too.
        let held_front =
            (nodes > 1).then(|| std::net::TcpListener::bind("127.0.0.1:0")).transpose().map_err(|e| e.to_string())?;
        let front_port = match &held_front {
            Some(held) => Some(held.local_addr().map_err(|e| e.to_string())?.port()),
            None => None,
        };
        if let Some(port) = front_port {
            env.push(("PURSER_SANDBOX__WEBHOOK_URL".into(), format!("http://127.0.0.1:{port}")));
            // The per-client and per-address limits are then counted in the database, as a deployment's are.
            env.push(("PURSER_LIMITS__NODES".into(), nodes.to_string()));
        }
        let mut service = Service::new(config, env.clone())?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(4096)
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        service.start(&http).await?;
        let mut others = Vec::new();
        for _ in 1..nodes {
            let mut node = Service::new(config, env.clone())?;
            node.start(&http).await?;
            others.push(node);
        }
        let (front, base) = match front_port {
            Some(port) => {
                drop(held_front);
                let nodes = std::iter::once(&service).chain(&others);
                let front = start_haproxy(&dir, port, nodes, routing, &http).await?;
                (Some(front), format!("http://127.0.0.1:{port}"))
            }
            None => (None, service.base.clone()),
        };
        let driver = Driver::new(http, base, Authenticator::from_settings(&settings)?, webhook_secret);
        let driver = Arc::new(driver);
        Ok(Self { service, others, front, driver, database_url: url, dir, settings, made_database, routing })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn routing(&self) -> Routing {
        self.routing
    }

    pub fn node_count(&self) -> usize {
        1 + self.others.len()
    }

    /// Node `i`: 0 is `service`, the rest `others`.
    pub fn node(&mut self, i: usize) -> &mut Service {
        match i {
            0 => &mut self.service,
            i => &mut self.others[i - 1],
        }
    }

    pub fn backend(&self) -> &'static str {
        if self.made_database.is_some() { "postgres" } else { "sqlite" }
    }

    /// The first package of the configuration: (id, credits).
    pub fn first_package(&self) -> (String, i64) {
        self.settings.packages.first().map(|p| (p.id.clone(), p.credits)).unwrap_or_default()
    }

    /// Single-row insert-and-commit, one after another, for `span`, on the same database settings the service
    /// uses (SQLite WAL with synchronous=FULL; PostgreSQL as configured, synchronous_commit on by default).
    pub async fn raw_commit_rate(&self, span: Duration) -> Result<f64, String> {
        let url = match self.made_database {
            None => format!("sqlite://{}?mode=rwc", self.dir.join("raw-commits.db").display()),
            Some(_) => self.database_url.clone(),
        };
        let db = crate::store::connect(&url, 1).await.map_err(|e| e.to_string())?;
        let create = "CREATE TABLE IF NOT EXISTS bench_raw_commits (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)";
        db.execute_unprepared(create).await.map_err(|e| e.to_string())?;
        let started = Instant::now();
        let mut commits = 0u64;
        while started.elapsed() < span {
            let insert = format!("INSERT INTO bench_raw_commits (id, payload) VALUES ({commits}, 'x')");
            db.execute_unprepared(&insert).await.map_err(|e| e.to_string())?;
            commits += 1;
        }
        let rate = commits as f64 / started.elapsed().as_secs_f64();
        db.execute_unprepared("DROP TABLE bench_raw_commits").await.map_err(|e| e.to_string())?;
        db.close().await.ok();
        Ok(rate)
    }

    /// The service's `/metrics`, as text.
    async fn metrics(&self) -> Result<String, String> {
        self.driver
            .http
            .get(format!("{}/metrics", self.service.base))
            .bearer_auth(self.driver.token("harness-metrics", crate::auth::Role::Admin)?)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())
    }

    /// A gauge from the service's `/metrics`.
    pub async fn gauge(&self, name: &str) -> Result<usize, String> {
        self.metrics()
            .await?
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("no {name} in /metrics"))
    }

    /// The sum of every series of `name` whose labels contain each of `labels` (`path="direct"`, …).
    pub async fn series_sum(&self, name: &str, labels: &[&str]) -> Result<u64, String> {
        let text = self.metrics().await?;
        let sum = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?;
                let (series, value) = rest.rsplit_once(' ')?;
                let matches =
                    (series.is_empty() || series.starts_with('{')) && labels.iter().all(|l| series.contains(l));
                matches.then(|| value.trim().parse::<u64>().ok()).flatten()
            })
            .sum();
        Ok(sum)
    }

    /// Stops the service and removes what the run made.
    pub async fn close(mut self) {
        self.service.kill();
        for node in &mut self.others {
            node.kill();
        }
        if let Some(mut front) = self.front.take() {
            let _ = front.kill();
            let _ = front.wait();
        }
        if let Some((server, name)) = self.made_database.take()
            && let Ok(admin) = Database::connect(&server).await
        {
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            admin.close().await.ok();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// haproxy (Debian's package) on `port` in front of `nodes`, spread by `routing`, each checked on `/readyz`: a node
/// that is down or stopped is passed by within a second, and a request refused by a dead node is tried on another.
async fn start_haproxy<'a>(
    dir: &Path,
    port: u16,
    nodes: impl Iterator<Item = &'a Service>,
    routing: Routing,
    http: &reqwest::Client,
) -> Result<std::process::Child, String> {
    let servers: String = nodes
        .enumerate()
        .map(|(i, node)| {
            let address = node.base.trim_start_matches("http://");
            format!("    server node{i} {address} check inter 500ms fall 2 rise 1\n")
        })
        .collect();
    let config = format!(
        "global\n    maxconn 8192\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 150s\n    \
         timeout server 150s\n    retries 3\n    option redispatch\nfrontend purser\n    bind 127.0.0.1:{port}\n    \
         default_backend nodes\nbackend nodes\n    balance {}\n    option httpchk GET /readyz\n    \
         http-check expect status 200\n{servers}",
        routing.balance()
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
    let child = std::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting haproxy (Debian's haproxy package): {e}"))?;
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http.get(&ready).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("haproxy did not pass requests to the nodes within 30 s".into())
}
