//! Builds the whole service from `Settings`: database, migrations, providers, actors (with recovery), HTTP. `main`
//! and every integration test go through `Application::build`, so tests run exactly what users run.
use crate::actors::deadlines::Deadlines;
use crate::actors::reconciler::Reconciler;
use crate::actors::refund::RefundActors;
use crate::actors::tree::Tree;
use crate::actors::{Context, PurchaseActors};
use crate::api::{self, AppState, Services};
use crate::app::inbox::Inbox;
use crate::app::inbox_sweep::InboxSweep;
use crate::auth::Authenticator;
use crate::domain::circuit::CircuitRules;
use crate::domain::invoice::{Issuer, Seller};
use crate::domain::package::Catalogue;
use crate::domain::purchase::Policy;
use crate::domain::refund::RefundPolicy;
use crate::guards::circuit::CircuitBreaker;
use crate::guards::fraud::FraudMonitor;
use crate::guards::pause::Pauses;
use crate::guards::rate_limit::{Budgets, RateLimiter, SharedLimits};
use crate::notify::events::EventSender;
use crate::notify::mailer::Mailer;
use crate::providers::paypal::PaypalProvider;
use crate::providers::sandbox::Sandbox;
use crate::providers::stripe::StripeProvider;
use crate::providers::{CardGateway, Gateways, PaypalGateway};
use crate::settings::{CardProviderChoice, PaypalProviderChoice, Settings};
use crate::store;
use chrono::TimeDelta;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    port: u16,
    /// Set when Purser serves HTTPS itself.
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    router: axum::Router,
    purchases: Arc<PurchaseActors>,
    tree: Tree,
}

/// Call once before any TLS client is built: the dependency tree is ring-only, and rustls wants it named.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn policy(settings: &Settings) -> Result<Policy, String> {
    let delta = |d: Duration, key: &str| TimeDelta::from_std(d).map_err(|_| format!("payments.{key} is too large"));
    if settings.payments.max_attempts == 0 {
        return Err("payments.max_attempts must be at least 1".into());
    }
    Ok(Policy {
        checkout_ttl: delta(settings.payments.checkout_ttl, "checkout_ttl")?,
        max_attempts: settings.payments.max_attempts,
        max_attempts_per_purchase: settings.payments.max_attempts_per_purchase.max(settings.payments.max_attempts),
        retry_base: delta(settings.payments.retry_base, "retry_base")?,
        radar: settings.payments.card_provider == crate::settings::CardProviderChoice::Stripe,
    })
}

/// The providers the configuration names, the sandbox when either rail uses it (its pages and hooks are then
/// mounted), and the secrets that verify Stripe-shaped webhooks.
struct Providers {
    gateways: Gateways,
    sandbox: Option<Arc<Sandbox>>,
    stripe_secrets: Vec<String>,
}

fn providers(
    settings: &Settings,
    reads: &sea_orm::DatabaseConnection,
    writer: &store::writer::Writer,
    service_url: &str,
    public_url: &str,
    sandbox_secret: String,
) -> Result<Providers, String> {
    let latency = Duration::from_millis(settings.sandbox.latency_ms);
    let sandbox =
        Arc::new(Sandbox::new(reads.clone(), writer.clone(), latency, settings.sandbox.faults, sandbox_secret.clone()));
    sandbox
        .attach(settings.sandbox.webhook_url.clone().unwrap_or_else(|| service_url.to_owned()), public_url.to_owned());

    let (card, stripe_secrets) = match settings.payments.card_provider {
        CardProviderChoice::Sandbox => (CardGateway::Sandbox(sandbox.clone()), vec![sandbox_secret]),
        CardProviderChoice::Stripe => {
            let secrets: Vec<String> = settings
                .stripe
                .webhook_secret
                .as_ref()
                .map(|s| s.expose().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default();
            if secrets.is_empty() {
                return Err(
                    "stripe.webhook_secret (PURSER_STRIPE__WEBHOOK_SECRET) is required with the stripe provider: \
                            unverified webhooks are never trusted"
                        .into(),
                );
            }
            (
                CardGateway::Stripe(Arc::new(StripeProvider::new(&settings.stripe, reads.clone(), writer.clone())?)),
                secrets,
            )
        }
        CardProviderChoice::Disabled => (CardGateway::Disabled, vec![]),
    };
    let paypal = match settings.payments.paypal_provider {
        PaypalProviderChoice::Sandbox => PaypalGateway::Sandbox(sandbox.clone()),
        PaypalProviderChoice::Paypal => {
            let return_url = format!("{public_url}/api/v1/payments/paypal/return");
            let cancel_url = format!("{public_url}/api/v1/payments/paypal/cancel");
            PaypalGateway::Paypal(Arc::new(PaypalProvider::new(&settings.paypal, return_url, cancel_url)?))
        }
        PaypalProviderChoice::Disabled => PaypalGateway::Disabled,
    };
    let uses_sandbox = matches!(card, CardGateway::Sandbox(_)) || matches!(paypal, PaypalGateway::Sandbox(_));
    if uses_sandbox {
        tracing::warn!("payments run on the SANDBOX provider: no real money moves");
        if settings.sandbox.faults != crate::settings::SandboxFaults::default() {
            tracing::warn!(faults = ?settings.sandbox.faults, "the sandbox injects faults");
        }
    }
    Ok(Providers { gateways: Gateways { card, paypal }, sandbox: uses_sandbox.then_some(sandbox), stripe_secrets })
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, String> {
        install_crypto();
        settings.refuse_unsafe()?;
        let mut settings = settings;
        settings.events.resolve(settings.environment)?;
        let catalogue = Catalogue::from_config(&settings.packages)?;
        let auth = Authenticator::from_settings(&settings)?;
        let policy = policy(&settings)?;

        let mut db = store::connect(&settings.database.url, settings.database.pool_size())
            .await
            .map_err(|e| format!("database {}: {e}", redact_url(&settings.database.url)))?;
        if !settings.database.url.starts_with("sqlite:") {
            tracing::info!(
                connections = settings.database.pool_size(),
                writer_lanes = settings.database.writer_lanes(),
                "PostgreSQL pool"
            );
        }
        store::migrate(&db).await.map_err(|e| format!("migrations: {e}"))?;
        let statements = Arc::new(store::statements::StatementCounts::default());
        let writer_db = store::connect_writes(&settings.database.url, &db, &statements)
            .map_err(|e| format!("database {} (writer): {e}", redact_url(&settings.database.url)))?;
        let reads = store::connect_reads(&settings.database.url, &db, &statements)
            .map_err(|e| format!("database {} (reads): {e}", redact_url(&settings.database.url)))?;
        statements.watch(&mut db, "direct");
        let writer = store::writer::Writer::start(writer_db.clone(), settings.database.writer_lanes(), 256)
            .map_err(|e| format!("the store's writer: {e}"))?;
        // Fraud screenings take advisory locks (per client, network and card) that their batch holds until it commits.
        // On PostgreSQL they get a lane of their own, so no batch holding a screening's lock also waits on a row
        // another lane holds (the invoice counter, a purchase) while that lane waits on the lock: with screenings
        // mixed into every lane, a busy network's or card's checkouts deadlocked. SQLite has one lane and no locks.
        let screenings = match settings.database.url.starts_with("sqlite:") {
            true => writer.clone(),
            false => {
                store::writer::Writer::start(writer_db, 1, 256).map_err(|e| format!("the screenings' writer: {e}"))?
            }
        };

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", settings.server.host, settings.server.port))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let tls = match (&settings.server.tls_cert, &settings.server.tls_key) {
            (Some(cert), Some(key)) => Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .map_err(|e| format!("server.tls_cert / server.tls_key ({cert}, {key}): {e}"))?,
            ),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };

        let own_host = if settings.server.host == "0.0.0.0" { "127.0.0.1" } else { settings.server.host.as_str() };
        let service_url = format!("{scheme}://{own_host}:{port}");
        let public_url = settings.server.public_url.clone().unwrap_or_else(|| service_url.clone());
        let public_url = public_url.trim_end_matches('/').to_owned();
        let sandbox_secret = match &settings.sandbox.webhook_secret {
            Some(secret) if !secret.is_empty() => secret.expose().to_owned(),
            _ => store::sandbox_secret(&db).await.map_err(|e| format!("the sandbox's webhook secret: {e}"))?,
        };
        let Providers { gateways, sandbox, stripe_secrets } =
            providers(&settings, &reads, &writer, &service_url, &public_url, sandbox_secret)?;
        let gateways = Arc::new(gateways);
        let seller = Seller {
            name: settings.invoice.seller_name.clone(),
            address: settings.invoice.seller_address.clone(),
            tax_id: settings.invoice.seller_tax_id.clone(),
            country: settings.invoice.seller_country.clone(),
        };
        let issuer = Issuer { seller, rates: settings.tax_rates.clone() };
        let pauses = Arc::new(Pauses::load(db.clone()).await.map_err(|e| format!("pauses: {e}"))?);
        let tree = Tree::start().await?;
        let monitor =
            FraudMonitor { rules: settings.fraud, db: db.clone(), writer: screenings, pauses: pauses.clone() };
        let fraud = tree.child("fraud-monitor", monitor).await?;
        let delta = |d: Duration, key: &str| TimeDelta::from_std(d).map_err(|_| format!("circuit.{key} is too large"));
        let circuit_rules = CircuitRules {
            failures: settings.circuit.failures.max(1),
            window: delta(settings.circuit.window, "window")?,
            cooldown: delta(settings.circuit.cooldown, "cooldown")?,
        };
        let breaker =
            CircuitBreaker { rules: circuit_rules, db: db.clone(), gateways: gateways.clone(), pauses: pauses.clone() };
        let circuit = tree.child("circuit-breaker", breaker).await?;
        let real = |name: &str| name != crate::providers::sandbox::PROVIDER;
        let budgets = Budgets::new(
            &settings.limits,
            real(gateways.card.name()).then_some(settings.limits.stripe_requests_per_second),
            real(gateways.paypal.name()).then_some(settings.limits.paypal_requests_per_second),
        );
        let budgets = Arc::new(budgets);
        let limiter = RateLimiter {
            budgets: budgets.clone(),
            pauses: pauses.clone(),
            window: settings.limits.provider_throttle_pause,
            shared: SharedLimits::of(&settings.limits, &db),
        };
        let limiter = tree.child("rate-limiter", limiter).await?;
        let deadlines = Deadlines::new(tree.named("deadlines"));
        let finished = Arc::new(crate::store::finished::FinishedPurchases::default());
        let ctx = Arc::new(Context {
            names: tree.prefix().to_owned(),
            db: db.clone(),
            gateways: gateways.clone(),
            policy,
            issuer: Arc::new(issuer),
            pauses: pauses.clone(),
            fraud,
            circuit,
            limiter,
            budgets,
            timings: Default::default(),
            counters: Default::default(),
            writer: writer.clone(),
            reads: reads.clone(),
            statements,
            finished: finished.clone(),
            opened: Default::default(),
            deadlines: deadlines.clone(),
            passivate_after: settings.payments.passivate_after,
            call_timeout: settings.payments.actor_call_timeout,
            refunds: Default::default(),
        });
        let purchases = Arc::new(PurchaseActors::start(ctx).await?);
        let sweep = crate::actors::deadlines::Sweep {
            every: settings.payments.deadline_sweep,
            claim: settings.payments.deadline_claim,
        };
        tree.child("deadlines", deadlines.queue(db.clone(), purchases.clone(), sweep)).await?;
        let refund_policy = RefundPolicy {
            window: TimeDelta::from_std(settings.payments.refund_window)
                .map_err(|_| "payments.refund_window is too large")?,
            appeals: settings.payments.refund_appeals,
            retry_base: policy.retry_base,
        };
        let refunds = RefundActors::new(refund_policy, purchases.clone());
        let (recovered, actors) = purchases.recover().await.map_err(|e| format!("recovering purchases: {e}"))?;
        let recovered_refunds = refunds.recover().await.map_err(|e| format!("recovering refunds: {e}"))?;
        tracing::info!(recovered_refunds, "approved refunds back under their actors");
        let reconciler = Reconciler {
            purchases: purchases.clone(),
            every: settings.payments.reconcile_every,
            after: TimeDelta::from_std(settings.payments.reconcile_after)
                .map_err(|_| "payments.reconcile_after is too large")?,
        };
        tree.child("reconciler", reconciler).await?;
        let watcher =
            crate::guards::pause::PauseWatcher { pauses: pauses.clone(), every: settings.payments.pause_refresh };
        tree.child("pause-watcher", watcher).await?;
        tree.child("mailer", Mailer::new(reads.clone(), writer.clone(), finished, &settings.email)?).await?;
        tree.child("event-sender", EventSender::new(reads.clone(), writer.clone(), &settings.events)?).await?;
        tracing::info!(
            recovered,
            actors,
            "unfinished purchases back: deadlines scheduled, actors for those a provider holds"
        );

        let inbox =
            Inbox { db: db.clone(), reads: reads.clone(), purchases: purchases.clone(), refunds: refunds.clone() };
        let receipt_key = store::receipt_key(&db).await.map_err(|e| format!("the receipt links' key: {e}"))?;
        let state = AppState::new(Services {
            db,
            reads,
            auth: Arc::new(auth),
            catalogue: Arc::new(catalogue),
            policy,
            purchases: purchases.clone(),
            refunds,
            pauses,
            inbox,
            sandbox,
            webhook_secrets: Arc::new(stripe_secrets),
            public_url,
            body_limit: settings.server.body_limit_bytes,
            receipt_key: Arc::new(receipt_key),
            trusted_proxies: Arc::new(settings.server.trusted_proxies.clone()),
            idempotency_lease: TimeDelta::from_std(settings.payments.idempotency_lease)
                .map_err(|_| "payments.idempotency_lease is too large")?,
            development_tools: settings.development_tools(),
            crash_hooks: settings.sandbox.crash_hooks,
            gateways,
            page_providers: Arc::new(api::web::PageProviders::from_settings(&settings)),
            background: tree.adopted(),
        });
        // As often as an event can fall due (`ROUTING_GRACE` after it arrives), or the reconciler's pace if quicker.
        let grace = store::webhooks::ROUTING_GRACE.to_std().unwrap_or_default();
        let every = settings.payments.reconcile_every.min(grace);
        tree.child("inbox-sweep", InboxSweep { inbox: state.inbox.clone(), every }).await?;
        Ok(Self { listener, port, tls, router: api::router(state), purchases, tree })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https` when Purser serves TLS itself, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish and stops the actors.
    pub async fn run_until<F: Future<Output = ()> + Send + 'static>(self, shutdown: F) -> std::io::Result<()> {
        tracing::info!(port = self.port, "purser listening");
        let service = self.router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = match self.tls {
            None => axum::serve(self.listener, service).with_graceful_shutdown(shutdown).await,
            Some(tls) => {
                let handle = axum_server::Handle::new();
                let stopping = handle.clone();
                tokio::spawn(async move {
                    shutdown.await;
                    stopping.graceful_shutdown(Some(Duration::from_secs(30)));
                });
                let listener = self.listener.into_std()?;
                axum_server::from_tcp_rustls(listener, tls)?.handle(handle).serve(service).await
            }
        };
        self.purchases.shutdown().await;
        self.tree.shutdown().await;
        // Closed, not just dropped: the pool's maintenance task ends now instead of spinning while the runtime stops.
        // Closing waits for every connection to come back; one that never does must not keep the process up.
        match tokio::time::timeout(Duration::from_secs(10), self.purchases.context().db.clone().close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "closing the database pool"),
            Err(_) => tracing::warn!("the database pool did not close within 10 s; stopping without it"),
        }
        served
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// A database URL without its password, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
