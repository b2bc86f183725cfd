//! The `purser` binary: `serve` (the default), `migrate`, `token` for development and tests, and the `bench` and
//! `chaos` harnesses.
use clap::{Parser, Subcommand, ValueEnum};
use purser::auth::{Authenticator, Role};
use purser::domain::ids::ClientId;
use purser::harness::bench::{self, BenchOptions};
use purser::harness::chaos::{self, ChaosOptions};
use purser::harness::workspace::{Routing, Workspace};
use purser::settings::Settings;
use purser::startup::{Application, install_crypto, redact_url};
use std::path::PathBuf;
use std::process::ExitCode;

// A purchase allocates and frees thousands of small buffers (statements, rows, JSON) across threads; glibc's malloc
// spent about a seventh of the service's CPU on them (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "purser", version, about = "Payment orchestrator for credit packages")]
struct Cli {
    /// Configuration file; `PURSER_<SECTION>__<KEY>` environment variables override it.
    #[arg(long, global = true, default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run migrations, recover unfinished purchases and serve the API (the default).
    Serve,
    /// Run pending migrations and exit.
    Migrate,
    /// Print a bearer token for this configuration's secret (development and tests).
    Token {
        #[arg(long)]
        user: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        email: Option<String>,
        /// Lifetime, e.g. 1h, 30m, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Make an API key for the platform's backend (the `service` role), in this configuration's database; the key
    /// is printed once. Revoke keys through the admin API or console.
    ApiKey {
        /// Who the key acts as: its id in spends and the audit trail.
        #[arg(long)]
        name: String,
    },
    /// Start a fresh service (this executable, on a new database) and measure complete purchases through its API.
    Bench {
        #[arg(long, default_value_t = 2000)]
        purchases: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Added to every sandbox provider call; 300 models Stripe's real round trip.
        #[arg(long, default_value_t = 0)]
        provider_latency_ms: u64,
        /// A PostgreSQL server URL (postgres://user:pass@host/db); a new database is made on it for the run.
        /// Default: a SQLite file in a temporary directory.
        #[arg(long)]
        database_url: Option<String>,
        /// Then leave this many purchases waiting for 3-D Secure, kill -9 the service and time their recovery.
        #[arg(long, default_value_t = 0)]
        in_flight: usize,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Then run it again on this many nodes sharing the (PostgreSQL) database behind haproxy, and report both.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// With --nodes: haproxy sends each client's requests to one node (by its Authorization header) instead of
        /// round robin; the provider's webhooks still go round robin.
        #[arg(long)]
        by_client: bool,
    },
    /// Drive purchases and refunds under injected faults, kill -9 the service at random moments, then check that
    /// every charge is credited once, every refund debited once, and balances and receipts match.
    Chaos {
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Kills per run.
        #[arg(long, default_value_t = 3)]
        kills: usize,
        /// Purchases per run.
        #[arg(long, default_value_t = 300)]
        purchases: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// A PostgreSQL server URL; a new database is made on it for each run. Default: SQLite files.
        #[arg(long)]
        database_url: Option<String>,
        /// Share of provider calls answered with a 500 before the provider acts.
        #[arg(long, default_value_t = 0.05)]
        error_rate: f64,
        /// Share of provider calls that act, then time out.
        #[arg(long, default_value_t = 0.05)]
        timeout_rate: f64,
        #[arg(long, default_value_t = 0.1)]
        webhook_drop_rate: f64,
        #[arg(long, default_value_t = 0.2)]
        webhook_duplicate_rate: f64,
        #[arg(long, default_value_t = 500)]
        webhook_max_delay_ms: u64,
        /// The SMTP server is down (refuses connections) for this long at the start of each run.
        #[arg(long, default_value_t = 3000)]
        smtp_down_ms: u64,
        /// Actor crashes per second while the clients shop (`/dev/crash`): background and purchase actors.
        #[arg(long, default_value_t = 0.0)]
        actor_panic_rate: f64,
        /// Nodes sharing the database (PostgreSQL only), behind haproxy: with three or more, one is also frozen
        /// (SIGSTOP) past its claims and one killed for good.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Client,
    Admin,
    /// The platform's backend: balances, ledgers, spends.
    Service,
}

fn main() -> ExitCode {
    install_crypto();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn,ractor=warn".into());
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    // PURSER_LOG_FORMAT=json: one JSON object per line, with the request's span (its request id) on each.
    if std::env::var("PURSER_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().with_current_span(true).init();
    } else {
        logs.init();
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("purser: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let settings = Settings::load(&cli.config)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(async {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await.map_err(|e| e.to_string())
        }),
        Command::Migrate => runtime.block_on(async {
            // Two connections: on PostgreSQL the migrations run beside the transaction holding their advisory lock.
            let db = purser::store::connect(&settings.database.url, 2)
                .await
                .map_err(|e| format!("database {}: {e}", redact_url(&settings.database.url)))?;
            purser::store::migrate(&db).await.map_err(|e| e.to_string())?;
            eprintln!("migrations applied to {}", redact_url(&settings.database.url));
            Ok(())
        }),
        Command::Bench { purchases, concurrency, provider_latency_ms, database_url, in_flight, json, nodes, by_client } => runtime
            .block_on(async {
                if nodes > 1 && in_flight > 0 {
                    return Err("--in-flight measures one node's recovery: run it without --nodes".into());
                }
                let latency = vec![("PURSER_SANDBOX__LATENCY_MS".to_owned(), provider_latency_ms.to_string())];
                let options = BenchOptions { purchases, concurrency, provider_latency_ms, in_flight };
                let mut reports = vec![];
                let routing = if by_client { Routing::ByClient } else { Routing::RoundRobin };
                for nodes in std::iter::once(1).chain((nodes > 1).then_some(nodes)) {
                    let open = Workspace::open(&cli.config, database_url.as_deref(), latency.clone(), nodes, routing);
                    let mut workspace = open.await?;
                    let report = bench::run(&mut workspace, &options).await;
                    workspace.close().await;
                    reports.push(report?);
                }
                if json {
                    // One report as an object, as ever; with --nodes, the one-node and the N-node reports in an array.
                    let rendered = match reports.as_slice() {
                        [one] => serde_json::to_string_pretty(one),
                        all => serde_json::to_string_pretty(all),
                    };
                    println!("{}", rendered.map_err(|e| e.to_string())?);
                } else {
                    reports.iter().for_each(|report| print!("{}", report.table()));
                }
                match reports.iter().map(bench::BenchReport::errors).sum::<usize>() {
                    0 => Ok(()),
                    n => Err(format!("{n} purchases went wrong")),
                }
            }),
        Command::Chaos {
            runs,
            kills,
            purchases,
            concurrency,
            database_url,
            error_rate,
            timeout_rate,
            webhook_drop_rate,
            webhook_duplicate_rate,
            webhook_max_delay_ms,
            smtp_down_ms,
            actor_panic_rate,
            nodes,
        } => runtime.block_on(async {
            let options = ChaosOptions {
                runs,
                kills,
                purchases,
                concurrency,
                error_rate,
                timeout_rate,
                webhook_drop_rate,
                webhook_duplicate_rate,
                webhook_max_delay_ms,
                smtp_down_ms,
                actor_panic_rate,
                nodes,
            };
            let open =
                async |env| Workspace::open(&cli.config, database_url.as_deref(), env, nodes, Routing::RoundRobin).await;
            let results = chaos::run(&options, open).await?;
            let total = |f: fn(&chaos::RunResult) -> usize| results.iter().map(f).sum::<usize>();
            let violations: Vec<&String> = results.iter().flat_map(|r| &r.violations).collect();
            for violation in &violations {
                println!("violation: {violation}");
            }
            println!(
                "chaos: runs={} kills={} actor_crashes={} purchases={} charged={} (paypal {}) refunded={} (paypal {}) reversed={} disputes lost={} won={} violations={}",
                results.len(),
                total(|r| r.kills),
                total(|r| r.actor_crashes),
                total(|r| r.purchases),
                total(|r| r.charged),
                total(|r| r.charged_paypal),
                total(|r| r.refunded),
                total(|r| r.refunded_paypal),
                total(|r| r.reversed),
                total(|r| r.disputes_lost),
                total(|r| r.disputes_won),
                violations.len()
            );
            if violations.is_empty() { Ok(()) } else { Err(format!("{} violations", violations.len())) }
        }),
        Command::ApiKey { name } => runtime.block_on(async {
            let name = ClientId::parse(&name)?;
            let db = purser::store::connect(&settings.database.url, 2)
                .await
                .map_err(|e| format!("database {}: {e}", redact_url(&settings.database.url)))?;
            purser::store::migrate(&db).await.map_err(|e| e.to_string())?;
            let statements = Default::default();
            let db = purser::store::connect_writes(&settings.database.url, &db, &statements).map_err(|e| e.to_string())?;
            let writer = purser::store::writer::Writer::start(db, 1, 1).map_err(|e| e.to_string())?;
            let cli = ClientId::parse("purser-cli")?;
            let (key, secret) = purser::app::api_keys::create(&writer, &cli, &name).await.map_err(|e| e.to_string())?;
            eprintln!("API key {} for {}: shown once, store it as a secret", key.id, key.name);
            println!("{secret}");
            Ok(())
        }),
        Command::Token { user, role, email, ttl } => {
            let auth = Authenticator::from_settings(&settings)?;
            let user = ClientId::parse(&user)?;
            let role = match role {
                RoleArg::Client => Role::Client,
                RoleArg::Admin => Role::Admin,
                RoleArg::Service => Role::Service,
            };
            println!("{}", auth.mint(&user, role, email, ttl)?);
            Ok(())
        }
    }
}
