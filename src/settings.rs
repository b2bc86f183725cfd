//! Typed configuration: `config.toml` (or `--config PATH`) overlaid with `PURSER_<SECTION>__<KEY>` environment
//! variables. Secrets belong in the environment or an untracked file, never in the tracked `config.toml`.
use crate::domain::package::PackageConfig;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    pub payments: PaymentSettings,
    #[serde(default)]
    pub sandbox: SandboxSettings,
    #[serde(default)]
    pub stripe: StripeSettings,
    #[serde(default)]
    pub paypal: PaypalSettings,
    #[serde(default)]
    pub email: EmailSettings,
    #[serde(default)]
    pub events: EventSettings,
    #[serde(default)]
    pub invoice: InvoiceSettings,
    #[serde(default)]
    pub limits: LimitSettings,
    #[serde(default)]
    pub fraud: crate::domain::fraud::FraudRules,
    #[serde(default)]
    pub circuit: CircuitSettings,
    /// Tax in the price, by the buyer's country, for business invoices.
    #[serde(default)]
    pub tax_rates: Vec<crate::domain::invoice::TaxRate>,
    pub packages: Vec<PackageConfig>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Production,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Where browsers reach this service (PayPal's return and cancel URLs); `http://<host>:<port>` when unset.
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes; anything bigger gets 413.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// The load balancers and proxies in front of Purser (addresses or CIDR blocks): from a request they forward,
    /// the client is the right-most `X-Forwarded-For` hop that is not one of them. Empty: the peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve HTTPS itself (rustls): the certificate chain and its private key, PEM files. Both or neither; without
    /// them Purser serves plain HTTP, for a TLS-terminating proxy in front.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

fn default_max_attempts_per_purchase() -> u32 {
    10
}

fn default_body_limit() -> usize {
    64 * 1024
}

#[derive(Clone, Debug, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    /// PostgreSQL's pool; unset, sized by `pool_size`. SQLite keeps its own: one writer and four readers.
    pub max_connections: Option<u32>,
    /// Transactions the group-commit writer keeps open side by side. SQLite has one writer, so 1 whatever is set;
    /// on PostgreSQL, by default half the pool (the rest serves reads and the writes outside the writer).
    pub writer_lanes: Option<u32>,
}

impl DatabaseSettings {
    /// The pool's connections: as set, or, for a PostgreSQL on this host (a loopback address or a Unix socket),
    /// twice this machine's cores, from 4 to 16: its backends and Purser share these cores, and more connections than
    /// that only make them take turns (on two cores a pool of 4 made 20-30 % more purchases a second than one of 16,
    /// `docs/benchmarks.md`); never above 16, so that a large host's nodes stay within PostgreSQL's default 100
    /// connections. For one elsewhere, 16: there each statement's round trip, not the CPU, is what a connection waits
    /// on.
    pub fn pool_size(&self) -> u32 {
        self.max_connections.unwrap_or_else(|| match postgres_on_this_host(&self.url) {
            true => pool_beside(std::thread::available_parallelism().map_or(2, |n| n.get() as u32)),
            false => 16,
        })
    }

    /// SQLite has one writer, so one lane; PostgreSQL commits batches side by side, by default on half the pool.
    pub fn writer_lanes(&self) -> usize {
        match self.url.starts_with("sqlite:") {
            true => 1,
            false => {
                let pool = self.pool_size();
                self.writer_lanes.unwrap_or(pool / 2).clamp(1, pool) as usize
            }
        }
    }
}

/// The pool for a PostgreSQL sharing a host of `cores` cores (`DatabaseSettings::pool_size`).
fn pool_beside(cores: u32) -> u32 {
    cores.saturating_mul(2).clamp(4, 16)
}

fn postgres_on_this_host(url: &str) -> bool {
    use std::str::FromStr;
    let Ok(options) = sea_orm::sqlx::postgres::PgConnectOptions::from_str(url) else { return false };
    let host = options.get_host();
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: Option<Secret>,
    /// The platform's Ed25519 public key (64 hex characters): tokens are then EdDSA, signed with a private key
    /// Purser never holds, and `auth.jwt_secret` is not used.
    pub ed25519_public_key: Option<String>,
    /// Required `iss` of every token, when set (and written into the tokens Purser mints).
    pub issuer: Option<String>,
    /// Required `aud` of every token, when set.
    pub audience: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardProviderChoice {
    Sandbox,
    Stripe,
    /// No card payments: the rail's endpoints answer 400 `rail_disabled` and the checkout page leaves it out.
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaypalProviderChoice {
    Sandbox,
    Paypal,
    /// No PayPal payments.
    Disabled,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PaymentSettings {
    pub card_provider: CardProviderChoice,
    pub paypal_provider: PaypalProviderChoice,
    #[serde(deserialize_with = "human_duration")]
    pub checkout_ttl: Duration,
    pub max_attempts: u32,
    /// Confirmations over a purchase's life, every round included (a new card, a retry): past it, 409.
    #[serde(default = "default_max_attempts_per_purchase")]
    pub max_attempts_per_purchase: u32,
    #[serde(deserialize_with = "human_duration")]
    pub retry_base: Duration,
    /// How often the reconciler looks for purchases waiting on a provider with no news.
    #[serde(default = "default_reconcile_every", deserialize_with = "human_duration")]
    pub reconcile_every: Duration,
    /// How long without news before such a purchase is synced with the provider.
    #[serde(default = "default_reconcile_after", deserialize_with = "human_duration")]
    pub reconcile_after: Duration,
    /// Refunds may be asked for this long after the purchase (AC9.5.1).
    #[serde(default = "default_refund_window", deserialize_with = "human_duration")]
    pub refund_window: Duration,
    /// How many times a client may appeal a denied refund.
    #[serde(default = "default_refund_appeals")]
    pub refund_appeals: u32,
    /// An actor whose purchase waits on a person stops after this long idle; the next message wakes it.
    #[serde(default = "default_passivate_after", deserialize_with = "human_duration")]
    pub passivate_after: Duration,
    /// How long a request waits for a purchase's or refund's actor before it answers 503 `busy` with Retry-After.
    /// The input stays queued and is applied when the actor gets to it.
    #[serde(default = "default_actor_call_timeout", deserialize_with = "human_duration")]
    pub actor_call_timeout: Duration,
    /// How long an `Idempotency-Key` claim left unanswered (a crash mid-request) holds its key; longer than
    /// `actor_call_timeout`, since a request may take that long.
    #[serde(default = "default_idempotency_lease", deserialize_with = "human_duration")]
    pub idempotency_lease: Duration,
    /// How often the pauses are read back from the database, so one set on another node (or lifted there) reaches
    /// this one.
    #[serde(default = "default_pause_refresh", deserialize_with = "human_duration")]
    pub pause_refresh: Duration,
    /// How often this node looks for deadlines no node fired (armed by a node that died), and how long past due one
    /// must be before it is taken over.
    #[serde(default = "default_deadline_sweep", deserialize_with = "human_duration")]
    pub deadline_sweep: Duration,
    /// How long a node's claim on a deadline it took over lasts: should it die before firing it, another node takes
    /// it once the claim runs out.
    #[serde(default = "default_deadline_claim", deserialize_with = "human_duration")]
    pub deadline_claim: Duration,
}

fn default_pause_refresh() -> Duration {
    Duration::from_secs(1)
}

fn default_deadline_sweep() -> Duration {
    Duration::from_secs(5)
}

fn default_deadline_claim() -> Duration {
    Duration::from_secs(60)
}

fn default_idempotency_lease() -> Duration {
    Duration::from_secs(60)
}

fn default_passivate_after() -> Duration {
    Duration::from_secs(2)
}

fn default_actor_call_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_reconcile_every() -> Duration {
    Duration::from_secs(60)
}

fn default_reconcile_after() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_refund_window() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

fn default_refund_appeals() -> u32 {
    1
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SandboxSettings {
    /// Signs the sandbox's Stripe-shaped webhooks. Empty means one made by the first node on the database and kept
    /// there, since a webhook the sandbox sends may reach any node.
    pub webhook_secret: Option<Secret>,
    /// Where the sandbox delivers its webhooks: unset, this node. Several nodes behind a load balancer set its
    /// address, as a real provider's webhooks arrive through it.
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub latency_ms: u64,
    /// Provider errors, timeouts and webhook trouble to inject (the chaos harness); none by default.
    #[serde(default)]
    pub faults: SandboxFaults,
    /// Serves `POST /dev/crash/{actor}` (admin token) in development, so tests and the chaos harness can crash any
    /// actor on command. Off by default, and never served outside development.
    #[serde(default)]
    pub crash_hooks: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StripeSettings {
    /// Ends in `/`; tests point it at localstripe.
    #[serde(default = "default_stripe_api_base")]
    pub api_base: String,
    pub secret_key: Option<Secret>,
    /// Stripe.js on the checkout page uses it; without it the page cannot take cards.
    pub publishable_key: Option<String>,
    /// Where the checkout page loads Stripe.js from; tests point it at localstripe's fake.
    #[serde(default = "default_stripe_js_url")]
    pub js_url: String,
    /// The Stripe account's country (ISO 3166-1 alpha-2), which the Apple Pay / Google Pay button must be given.
    #[serde(default = "default_stripe_country")]
    pub country: String,
    /// Comma-separated: during a rotation both the old and the new secret verify.
    pub webhook_secret: Option<Secret>,
    /// Appended to the account's statement descriptor on the cardholder's statement (Stripe allows 22 characters).
    pub statement_descriptor_suffix: Option<String>,
}

impl Default for StripeSettings {
    fn default() -> Self {
        Self {
            api_base: default_stripe_api_base(),
            secret_key: None,
            publishable_key: None,
            js_url: default_stripe_js_url(),
            country: default_stripe_country(),
            webhook_secret: None,
            statement_descriptor_suffix: None,
        }
    }
}

fn default_stripe_api_base() -> String {
    "https://api.stripe.com/".into()
}

fn default_stripe_country() -> String {
    "US".into()
}

fn default_stripe_js_url() -> String {
    "https://js.stripe.com/v3/".into()
}

#[derive(Clone, Debug, Deserialize)]
pub struct PaypalSettings {
    #[serde(default = "default_paypal_api_base")]
    pub api_base: String,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// The id PayPal gave the webhook subscription; verify-webhook-signature needs it.
    pub webhook_id: Option<String>,
    /// PayPal's JS SDK, which draws the Smart Payment Buttons on the checkout page; tests point it at the fake.
    #[serde(default = "default_paypal_sdk_url")]
    pub sdk_url: String,
    #[serde(default = "default_paypal_timeout", deserialize_with = "human_duration")]
    pub timeout: Duration,
}

impl Default for PaypalSettings {
    fn default() -> Self {
        Self {
            api_base: default_paypal_api_base(),
            client_id: None,
            client_secret: None,
            webhook_id: None,
            sdk_url: default_paypal_sdk_url(),
            timeout: default_paypal_timeout(),
        }
    }
}

fn default_paypal_api_base() -> String {
    "https://api-m.sandbox.paypal.com".into()
}

fn default_paypal_sdk_url() -> String {
    "https://www.paypal.com/sdk/js".into()
}

fn default_paypal_timeout() -> Duration {
    Duration::from_secs(20)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// One `.eml` file per message in `email.dir`.
    #[default]
    File,
    Smtp,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on the same host.
    #[default]
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Debug, Deserialize)]
pub struct EmailSettings {
    #[serde(default)]
    pub transport: MailTransport,
    #[serde(default = "default_mail_dir")]
    pub dir: String,
    #[serde(default = "default_smtp_host")]
    pub smtp_host: String,
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    #[serde(default)]
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    #[serde(default = "default_mail_from")]
    pub from: String,
    /// Where admin alerts (disputes) go; none are mailed when unset.
    pub admin_address: Option<String>,
    /// How often the mailer looks at the outbox.
    #[serde(default = "default_mail_poll", deserialize_with = "human_duration")]
    pub poll_interval: Duration,
    /// How long a node's claim on the messages it is sending keeps the other nodes' mailers off them: longer than a
    /// few sends take (each SMTP command times out after 10 s), short, since a node that dies sending leaves its
    /// claimed messages waiting this long.
    #[serde(default = "default_sending_claim", deserialize_with = "human_duration")]
    pub sending_claim: Duration,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            dir: default_mail_dir(),
            smtp_host: default_smtp_host(),
            smtp_port: default_smtp_port(),
            smtp_tls: SmtpTls::None,
            smtp_username: None,
            smtp_password: None,
            from: default_mail_from(),
            admin_address: None,
            poll_interval: default_mail_poll(),
            sending_claim: default_sending_claim(),
        }
    }
}

/// Events to the platform's backend (issue 18, `docs/platform.md`).
#[derive(Clone, Debug, Deserialize)]
pub struct EventSettings {
    #[serde(default)]
    pub endpoints: Vec<EventEndpoint>,
    /// How often the event sender looks for events to fan out and deliveries due.
    #[serde(default = "default_mail_poll", deserialize_with = "human_duration")]
    pub poll_interval: Duration,
    /// As `email.sending_claim`: how long a node's claim on the deliveries it is sending keeps the others off them.
    #[serde(default = "default_sending_claim", deserialize_with = "human_duration")]
    pub sending_claim: Duration,
    /// How long an event is retried (with backoff, at most an hour apart) before its delivery is `failed`.
    #[serde(default = "default_give_up_after", deserialize_with = "human_duration")]
    pub give_up_after: Duration,
    /// How long an endpoint may take to answer one delivery.
    #[serde(default = "default_event_timeout", deserialize_with = "human_duration")]
    pub timeout: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            poll_interval: default_mail_poll(),
            sending_claim: default_sending_claim(),
            give_up_after: default_give_up_after(),
            timeout: default_event_timeout(),
        }
    }
}

fn default_give_up_after() -> Duration {
    Duration::from_secs(3 * 24 * 3600)
}

fn default_event_timeout() -> Duration {
    Duration::from_secs(10)
}

/// One endpoint of the platform's: where its events go, signed with its own secret.
#[derive(Clone, Debug, Deserialize)]
pub struct EventEndpoint {
    /// Names its deliveries in the console and the admin API.
    pub name: String,
    pub url: String,
    /// The environment variable that holds the signing secret (never the secret itself: config.toml is in git).
    pub secret_env: String,
    /// The secret, read from `secret_env` at start (tests set it directly).
    #[serde(skip)]
    pub secret: Option<Secret>,
    /// The event types it takes; `*` for all.
    #[serde(default = "every_event")]
    pub types: Vec<String>,
}

fn every_event() -> Vec<String> {
    vec!["*".into()]
}

/// An event endpoint's name: 1 to 64 letters, digits, `-` or `_`.
pub fn is_endpoint_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl EventSettings {
    /// Reads each endpoint's secret from its environment variable and checks the endpoints, naming what is wrong:
    /// an endpoint that cannot sign, or sends in clear outside development, must not start.
    pub fn resolve(&mut self, environment: Environment) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for endpoint in &mut self.endpoints {
            let name = endpoint.name.clone();
            if !is_endpoint_name(&name) || !names.insert(name.clone()) {
                return Err(format!(
                    "events.endpoints: `{name}` must be a unique name of 1 to 64 letters, digits, - or _"
                ));
            }
            let url = reqwest::Url::parse(&endpoint.url)
                .map_err(|e| format!("events.endpoints `{name}`: url `{}`: {e}", endpoint.url))?;
            let loopback = url.host_str().is_some_and(is_loopback);
            if url.scheme() != "https"
                && !(url.scheme() == "http" && (loopback || environment == Environment::Development))
            {
                return Err(format!("events.endpoints `{name}`: url must be https:// (events carry balances)"));
            }
            if endpoint.secret.is_none() {
                endpoint.secret = std::env::var(&endpoint.secret_env).ok().map(Secret::new);
            }
            if endpoint.secret.as_ref().is_none_or(|s| s.expose().len() < 16) {
                return Err(format!(
                    "events.endpoints `{name}`: set its signing secret, at least 16 bytes, in the environment variable {}",
                    endpoint.secret_env
                ));
            }
            if let Some(unknown) =
                endpoint.types.iter().find(|t| *t != "*" && crate::domain::event::EventType::parse(t).is_none())
            {
                return Err(format!("events.endpoints `{name}`: no event type `{unknown}`"));
            }
        }
        Ok(())
    }
}

fn default_mail_dir() -> String {
    "data/mail".into()
}

fn default_smtp_host() -> String {
    "127.0.0.1".into()
}

fn default_smtp_port() -> u16 {
    25
}

fn default_mail_from() -> String {
    "Purser <billing@purser.invalid>".into()
}

fn default_mail_poll() -> Duration {
    Duration::from_millis(500)
}

fn default_sending_claim() -> Duration {
    Duration::from_secs(60)
}

/// When a provider's circuit opens and for how long.
#[derive(Clone, Debug, Deserialize)]
pub struct CircuitSettings {
    /// Failed calls (no answer, 5xx, timeouts) within `window` that open the circuit.
    pub failures: usize,
    #[serde(deserialize_with = "human_duration")]
    pub window: Duration,
    /// How long it stays open before one probe may try.
    #[serde(deserialize_with = "human_duration")]
    pub cooldown: Duration,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        Self { failures: 5, window: Duration::from_secs(60), cooldown: Duration::from_secs(30) }
    }
}

/// Rate limits on starting payments and refunds.
#[derive(Clone, Debug, Deserialize)]
pub struct LimitSettings {
    #[serde(default = "default_per_client")]
    pub checkout_per_client_per_minute: u32,
    #[serde(default = "default_per_ip")]
    pub checkout_per_ip_per_minute: u32,
    #[serde(default = "default_global")]
    pub checkout_global_per_minute: u32,
    #[serde(default = "default_bad_webhooks")]
    pub bad_webhooks_per_ip_per_minute: u32,
    /// After a provider answers 429, its processing is paused this long (calls held, not failed).
    #[serde(default = "default_provider_throttle_pause", deserialize_with = "human_duration")]
    pub provider_throttle_pause: Duration,
    /// Requests per second Purser sends to Stripe at most (Stripe allows 100 in live mode, 25 in test mode: set 20
    /// with a test key). Past it, card processing is paused for `provider_throttle_pause`.
    #[serde(default = "default_stripe_requests_per_second")]
    pub stripe_requests_per_second: u32,
    /// The same for PayPal, which documents no fixed figure.
    #[serde(default = "default_paypal_requests_per_second")]
    pub paypal_requests_per_second: u32,
    /// Receipt resends per payment per hour, so a resend button cannot be turned into a mail bomb.
    #[serde(default = "default_receipt_resends")]
    pub receipt_resends_per_hour: u32,
    /// How many nodes share the database. With several, the per-client and per-address checkout limits are counted in
    /// the database; the others are kept in each node's memory, each node enforcing its share (the limit divided by
    /// this, at least 1), which is exact for a global limit and for the provider budgets.
    #[serde(default = "default_nodes")]
    pub nodes: u32,
}

fn default_nodes() -> u32 {
    1
}

impl LimitSettings {
    /// This node's share of a limit the `nodes` share.
    pub fn share(&self, quota: u32) -> u32 {
        (quota / self.nodes.max(1)).max(1)
    }

    /// Whether several nodes share the database, so the per-client and per-address limits are counted there.
    pub fn shared(&self) -> bool {
        self.nodes > 1
    }
}

fn default_receipt_resends() -> u32 {
    3
}

fn default_stripe_requests_per_second() -> u32 {
    80
}

fn default_paypal_requests_per_second() -> u32 {
    50
}

fn default_provider_throttle_pause() -> Duration {
    Duration::from_secs(30)
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            checkout_per_client_per_minute: default_per_client(),
            checkout_per_ip_per_minute: default_per_ip(),
            checkout_global_per_minute: default_global(),
            bad_webhooks_per_ip_per_minute: default_bad_webhooks(),
            provider_throttle_pause: default_provider_throttle_pause(),
            stripe_requests_per_second: default_stripe_requests_per_second(),
            paypal_requests_per_second: default_paypal_requests_per_second(),
            receipt_resends_per_hour: default_receipt_resends(),
            nodes: default_nodes(),
        }
    }
}

fn default_per_client() -> u32 {
    30
}

fn default_per_ip() -> u32 {
    300
}

fn default_global() -> u32 {
    100_000
}

fn default_bad_webhooks() -> u32 {
    20
}

/// The seller printed on invoices.
#[derive(Clone, Debug, Deserialize)]
pub struct InvoiceSettings {
    pub seller_name: String,
    pub seller_address: String,
    pub seller_tax_id: Option<String>,
    #[serde(default)]
    pub seller_country: String,
}

impl Default for InvoiceSettings {
    fn default() -> Self {
        Self {
            seller_name: "Purser Demo Seller".into(),
            seller_address: "1 Example Street, Springfield".into(),
            seller_tax_id: None,
            seller_country: "US".into(),
        }
    }
}

/// A secret string whose `Debug` never prints it, so it cannot leak through a log line.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*** redacted ***")
    }
}

fn human_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}")))
}

impl Settings {
    pub fn load(path: &Path) -> Result<Self, String> {
        if !path.exists() {
            return Err(format!("config file {} not found", path.display()));
        }
        Figment::new()
            .merge(Toml::file(path))
            .merge(Env::prefixed("PURSER_").split("__"))
            .extract()
            .map_err(|e| format!("configuration in {} (and PURSER_* variables): {e}", path.display()))
    }

    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        Figment::new().merge(Toml::string(text)).extract().map_err(|e| e.to_string())
    }

    /// Whether the development tools are served: the sandbox rails and their hooks, `/dev/token`, `/login`, the
    /// built-in signing secret and the crash hooks. Only in `development`, only when no real secret is configured
    /// (a deployment that set one is not a laptop), and only on a loopback `server.host`.
    pub fn development_tools(&self) -> bool {
        self.environment == Environment::Development
            && self.auth.jwt_secret.as_ref().is_none_or(|s| s.is_empty())
            && self.auth.ed25519_public_key.is_none()
            && is_loopback(&self.server.host)
    }

    /// Refuses a configuration that would run open, or could not run, naming the setting: Purser holds real money, so a
    /// deployment that forgot one setting must not start.
    pub fn refuse_unsafe(&self) -> Result<(), String> {
        const TOOLS: &str = "the sandbox is a development tool: it needs environment = \"development\", no \
                             auth.jwt_secret and a loopback server.host";
        let tools = self.development_tools();
        if self.payments.card_provider == CardProviderChoice::Sandbox && !tools {
            return Err(format!(
                "payments.card_provider = \"sandbox\" grants credits with no money moved; set \"stripe\" or \
                 \"disabled\" ({TOOLS})"
            ));
        }
        if self.payments.paypal_provider == PaypalProviderChoice::Sandbox && !tools {
            return Err(format!(
                "payments.paypal_provider = \"sandbox\" grants credits with no money moved; set \"paypal\" or \
                 \"disabled\" ({TOOLS})"
            ));
        }
        if self.payments.card_provider == CardProviderChoice::Disabled
            && self.payments.paypal_provider == PaypalProviderChoice::Disabled
        {
            return Err("payments.card_provider and payments.paypal_provider are both \"disabled\": nothing could be \
                        paid"
                .into());
        }
        // On PostgreSQL the migrations run beside the transaction that holds their advisory lock: with one connection
        // the service would wait on itself at start and fail when the pool gave up.
        let least = if self.database.url.starts_with("postgres") { 2 } else { 1 };
        if let Some(set) = self.database.max_connections
            && set < least
        {
            return Err(format!("database.max_connections = {set} is too few: this database needs at least {least}"));
        }
        let https_public_url = self.server.public_url.as_deref().is_some_and(|url| url.starts_with("https://"));
        if self.environment == Environment::Production && !https_public_url {
            return Err(
                "server.public_url must be the https:// address browsers use: receipts link to it, PayPal sends \
                        payers back to it, and HSTS is sent for it (unset, they would name this host's own address)"
                    .into(),
            );
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err("server.tls_cert and server.tls_key go together: set both to serve HTTPS, or neither".into());
        }
        if self.sandbox.crash_hooks && !tools {
            return Err(format!(
                "sandbox.crash_hooks lets an admin token crash actors: it is for development only ({TOOLS})"
            ));
        }
        if let Some(secret) = self.auth.jwt_secret.as_ref().filter(|s| !s.is_empty())
            && secret.expose().len() < 32
        {
            return Err("auth.jwt_secret (PURSER_AUTH__JWT_SECRET) is shorter than 32 bytes: too easy to guess".into());
        }
        let smtp_credentials = self.email.transport == MailTransport::Smtp && self.email.smtp_username.is_some();
        if self.environment == Environment::Production && smtp_credentials && self.email.smtp_tls == SmtpTls::None {
            return Err("email.smtp_username is set with email.smtp_tls = \"none\": the credentials would cross the \
                        network in clear; set \"starttls\" or \"tls\""
                .into());
        }
        Ok(())
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Faults the sandbox injects, for the chaos harness; all off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct SandboxFaults {
    /// Share of provider calls answered with a 500 before the provider acts.
    pub error_rate: f64,
    /// Share of provider calls that act, then time out: the outcome is unknown to the caller.
    pub timeout_rate: f64,
    /// Share of webhooks never delivered.
    pub webhook_drop_rate: f64,
    /// Share of webhooks delivered two or three times.
    pub webhook_duplicate_rate: f64,
    /// Each webhook copy waits up to this long, so events arrive late and out of order.
    pub webhook_max_delay_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::{DatabaseSettings, pool_beside};

    fn pool(url: &str, set: Option<u32>) -> u32 {
        DatabaseSettings { url: url.into(), max_connections: set, writer_lanes: None }.pool_size()
    }

    #[test]
    fn the_pool_follows_this_hosts_cores_only_for_a_postgresql_on_this_host() {
        assert_eq!([1, 2, 3, 4, 8, 64].map(pool_beside), [4, 4, 6, 8, 16, 16]);
        let local = pool_beside(std::thread::available_parallelism().map_or(2, |n| n.get() as u32));
        for url in [
            "postgres://purser:secret@127.0.0.1:5432/purser",
            "postgres://purser@localhost/purser",
            "postgres://purser@[::1]:5432/purser",
            "postgres://purser@%2Fvar%2Frun%2Fpostgresql/purser",
        ] {
            assert_eq!(pool(url, None), local, "{url}");
        }
        assert_eq!(pool("postgres://purser@db.internal:5432/purser", None), 16);
        assert_eq!(pool("postgres://purser@10.0.0.7/purser", None), 16);
        assert_eq!(pool("postgres://purser@127.0.0.1/purser", Some(40)), 40);
    }
}
