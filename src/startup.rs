//! Builds the whole service from `Settings`: database, migrations, providers, actors (with recovery), HTTP. `main`
//! and every integration test go through `Application::build`, so tests run exactly what users run.
use crate::actors::{Context, PurchaseActors};
use crate::api::{self, AppState};
use crate::auth::Authenticator;
use crate::domain::package::Catalogue;
use crate::domain::purchase::Policy;
use crate::providers::CardGateway;
use crate::providers::sandbox::Sandbox;
use crate::providers::stripe::StripeProvider;
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
    router: axum::Router,
    purchases: Arc<PurchaseActors>,
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
        retry_base: delta(settings.payments.retry_base, "retry_base")?,
    })
}

/// The card provider `payments.card_provider` names, the sandbox when it is the one (its test routes are mounted),
/// and the secrets that verify Stripe-shaped webhooks.
fn card_gateway(
    settings: &Settings,
    db: &sea_orm::DatabaseConnection,
    port: u16,
) -> Result<(CardGateway, Option<Arc<Sandbox>>, Vec<String>), String> {
    match settings.payments.card_provider {
        CardProviderChoice::Sandbox => {
            let secret = match &settings.sandbox.webhook_secret {
                Some(secret) if !secret.is_empty() => secret.expose().to_owned(),
                _ => format!("whsec_sandbox_{}", uuid::Uuid::new_v4().simple()),
            };
            let latency = Duration::from_millis(settings.sandbox.latency_ms);
            let sandbox = Arc::new(Sandbox::new(db.clone(), latency, secret.clone()));
            let own_host = if settings.server.host == "0.0.0.0" { "127.0.0.1" } else { settings.server.host.as_str() };
            sandbox.deliver_webhooks_to(format!("http://{own_host}:{port}/api/v1/webhooks/stripe"));
            Ok((CardGateway::Sandbox(sandbox.clone()), Some(sandbox), vec![secret]))
        }
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
            let stripe = StripeProvider::new(&settings.stripe, db.clone())?;
            Ok((CardGateway::Stripe(Arc::new(stripe)), None, secrets))
        }
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, String> {
        install_crypto();
        let catalogue = Catalogue::from_config(&settings.packages)?;
        let auth = Authenticator::from_settings(&settings)?;
        let policy = policy(&settings)?;
        if settings.payments.paypal_provider == PaypalProviderChoice::Paypal {
            return Err(
                "payments.paypal_provider = \"paypal\" is not available in this build yet; use \"sandbox\"".into()
            );
        }

        let db = store::connect(&settings.database.url, settings.database.max_connections)
            .await
            .map_err(|e| format!("database {}: {e}", redact_url(&settings.database.url)))?;
        store::migrate(&db).await.map_err(|e| format!("migrations: {e}"))?;

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", settings.server.host, settings.server.port))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();

        let (gateway, sandbox, webhook_secrets) = card_gateway(&settings, &db, port)?;
        let ctx = Arc::new(Context { db: db.clone(), gateway, policy });
        let purchases = Arc::new(PurchaseActors::start(ctx).await?);
        let recovered = purchases.recover().await.map_err(|e| format!("recovering purchases: {e}"))?;
        tracing::info!(recovered, "unfinished purchases back under their actors");

        let state = AppState {
            db,
            auth: Arc::new(auth),
            catalogue: Arc::new(catalogue),
            policy,
            purchases: purchases.clone(),
            sandbox,
            webhook_secrets: Arc::new(webhook_secrets),
            body_limit: settings.server.body_limit_bytes,
        };
        Ok(Self { listener, port, router: api::router(state), purchases })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish and stops the actors.
    pub async fn run_until<F: Future<Output = ()> + Send + 'static>(self, shutdown: F) -> std::io::Result<()> {
        tracing::info!(port = self.port, "purser listening");
        let served = axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await;
        self.purchases.shutdown().await;
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
