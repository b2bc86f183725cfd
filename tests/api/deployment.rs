//! Issue 14: a deployment that forgets a setting refuses to start, naming the setting; the development tools (the
//! sandbox, `/dev/token`, `/login`, the built-in secret, the crash hooks) exist only on a developer's machine.
use crate::helpers::{Db, base_settings, eventually, fresh_database, spawn_app_with};
use crate::on_both_databases;
use purser::settings::{
    CardProviderChoice, Environment, MailTransport, PaypalProviderChoice, Secret, Settings, SmtpTls,
};
use purser::startup::Application;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const REAL_SECRET: &str = "a-real-secret-of-forty-bytes-0123456789";

/// A production deployment with everything it needs: Stripe for cards, PayPal switched off, a real secret.
fn production() -> Settings {
    let mut s = base_settings();
    s.environment = Environment::Production;
    s.auth.jwt_secret = Some(Secret::new(REAL_SECRET.into()));
    s.payments.card_provider = CardProviderChoice::Stripe;
    s.stripe.secret_key = Some(Secret::new("sk_test_deployment".into()));
    s.stripe.webhook_secret = Some(Secret::new("whsec_deployment".into()));
    s.payments.paypal_provider = PaypalProviderChoice::Disabled;
    s.server.public_url = Some("https://pay.example.com".into());
    s
}

async fn refusal(change: impl FnOnce(&mut Settings)) -> String {
    let mut settings = production();
    change(&mut settings);
    match Application::build(settings).await {
        Ok(_) => panic!("an unsafe configuration started"),
        Err(refused) => refused,
    }
}

/// One unsafe change to a production configuration.
type Unsafe = Box<dyn FnOnce(&mut Settings)>;

#[tokio::test]
async fn an_unsafe_deployment_refuses_to_start_and_names_the_setting() {
    let cases: Vec<(&str, Unsafe)> = vec![
        ("payments.card_provider = \"sandbox\"", Box::new(|s| s.payments.card_provider = CardProviderChoice::Sandbox)),
        (
            "payments.paypal_provider = \"sandbox\"",
            Box::new(|s| s.payments.paypal_provider = PaypalProviderChoice::Sandbox),
        ),
        ("both \"disabled\"", Box::new(|s| s.payments.card_provider = CardProviderChoice::Disabled)),
        ("auth.jwt_secret (PURSER_AUTH__JWT_SECRET) is required", Box::new(|s| s.auth.jwt_secret = None)),
        ("shorter than 32 bytes", Box::new(|s| s.auth.jwt_secret = Some(Secret::new("short-secret".into())))),
        (
            "email.smtp_username",
            Box::new(|s| {
                s.email.transport = MailTransport::Smtp;
                s.email.smtp_username = Some("mailer".into());
                s.email.smtp_tls = SmtpTls::None;
            }),
        ),
        ("sandbox.crash_hooks", Box::new(|s| s.sandbox.crash_hooks = true)),
        ("server.public_url must be the https:// address", Box::new(|s| s.server.public_url = None)),
        (
            "server.public_url must be the https:// address",
            Box::new(|s| s.server.public_url = Some("http://pay.example.com".into())),
        ),
        ("database.max_connections = 0", Box::new(|s| s.database.max_connections = Some(0))),
        (
            "database.max_connections = 1 is too few: this database needs at least 2",
            Box::new(|s| {
                s.database.url = "postgres://purser@127.0.0.1:1/purser".into();
                s.database.max_connections = Some(1);
            }),
        ),
        // Development mode is no way round: with a real secret, or on a public address, there is no sandbox ...
        (
            "payments.card_provider = \"sandbox\"",
            Box::new(|s| {
                s.environment = Environment::Development;
                s.payments.card_provider = CardProviderChoice::Sandbox;
            }),
        ),
        (
            "payments.paypal_provider = \"sandbox\"",
            Box::new(|s| {
                s.environment = Environment::Development;
                s.auth.jwt_secret = None;
                s.server.host = "0.0.0.0".into();
                s.payments.paypal_provider = PaypalProviderChoice::Sandbox;
            }),
        ),
        // ... and no built-in secret.
        (
            "auth.jwt_secret (PURSER_AUTH__JWT_SECRET) is required",
            Box::new(|s| {
                s.environment = Environment::Development;
                s.auth.jwt_secret = None;
                s.server.host = "0.0.0.0".into();
            }),
        ),
    ];
    for (named, change) in cases {
        let refused = refusal(change).await;
        assert!(refused.contains(named), "expected a refusal naming {named}, got: {refused}");
    }
}

// With a real secret, development mode serves no development tool: no tokens for the asking, no sign-in page, no
// sandbox hooks; a rail switched off answers 400 `rail_disabled` and is left out of the checkout page.
async fn a_deployment_with_a_real_secret_serves_no_development_tools(db: Db) {
    let (app, _proxy) = crate::stripe::stripe_app_with(db, |s| {
        s.auth.jwt_secret = Some(Secret::new(REAL_SECRET.into()));
        s.payments.paypal_provider = PaypalProviderChoice::Disabled;
        s.server.public_url = Some("https://pay.example.com".into());
    })
    .await;
    // Every answer: no framing, no sniffing, a referrer policy, and HSTS since browsers come over HTTPS.
    let packages = app.http.get(format!("{}/api/v1/packages", app.base)).send().await.unwrap();
    let header = |name: &str| packages.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "strict-origin-when-cross-origin");
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(header("strict-transport-security").starts_with("max-age="));
    let checkout = app.http.get(format!("{}/checkout", app.base)).send().await.unwrap();
    let policy = checkout.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    // Metrics are an admin's.
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::UNAUTHORIZED);
    let as_client =
        app.http.get(format!("{}/metrics", app.base)).bearer_auth(app.token("deploy-2", purser::auth::Role::Client));
    assert_eq!(as_client.send().await.unwrap().status(), StatusCode::FORBIDDEN);

    let admin = json!({ "user": "attacker", "role": "admin" });
    assert_eq!(app.post("/dev/token", None, &admin).await.status, StatusCode::NOT_FOUND);
    // Not a route at all: a body that is not JSON, or a crash hook without a token, is not answered as if it were.
    assert_eq!(app.post_raw("/dev/token", None, &[], "user=x").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.post("/dev/crash/mailer", None, &json!({})).await.status, StatusCode::NOT_FOUND);
    let login = app.http.get(format!("{}/login", app.base)).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::NOT_FOUND);
    let hook = app.post("/sandbox/v1/payment_intents/pi_x/_settle", None, &json!({ "success": true })).await;
    assert_eq!(hook.status, StatusCode::NOT_FOUND);
    let approve = app.post("/sandbox/paypal/checkoutnow/any/approve", None, &json!({})).await;
    assert_eq!(approve.status, StatusCode::NOT_FOUND);

    let client = app.client("deploy-1");
    let package = json!({ "packageId": "pro-200" });
    let order = app.post("/api/v1/payments/paypal/create-order", Some(&client.token), &package).await;
    assert_eq!(order.status, StatusCode::BAD_REQUEST, "{}", order.body);
    assert_eq!(order.error_code(), "rail_disabled");
    assert!(order.body["error"]["message"].as_str().unwrap().contains("Card payments are still available"));
    let page = app.http.get(format!("{}/checkout", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-paypal=\"disabled\""), "{page}");
    assert_eq!(app.count_rows("purchases").await, 0, "nothing was opened");

    // The card rail still takes payments, signed by the real secret.
    let opened = eventually(Duration::from_secs(10), || async {
        let answer = client.create_intent("starter-25", Some("pm_card_visa")).await;
        (answer.status == StatusCode::OK).then_some(())
    });
    assert!(opened.await.is_some(), "the card rail takes checkouts");
}

// Issue 14: the platform signs tokens with its own Ed25519 key and Purser holds only the public half; a token signed
// any other way (the shared-secret kind included) is refused.
async fn tokens_signed_by_the_platforms_key_are_the_only_ones_accepted(db: Db) {
    use ring::signature::KeyPair;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = hex::encode(pair.public_key().as_ref());
    let (app, _proxy) = crate::stripe::stripe_app_with(db, move |s| {
        s.auth.ed25519_public_key = Some(public);
        s.auth.issuer = Some("https://platform.example".into());
        s.payments.paypal_provider = PaypalProviderChoice::Disabled;
    })
    .await;
    let claims = json!({ "sub": "eddsa-1", "role": "client", "exp": jsonwebtoken::get_current_timestamp() + 600,
        "iss": "https://platform.example" });
    let platform = jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref());
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA), &claims, &platform);
    let balance = app.get("/api/v1/credits/balance", Some(&token.unwrap())).await;
    assert_eq!(balance.status, StatusCode::OK, "{}", balance.body);
    assert_eq!(balance.data()["balance"], 0);
    let shared = jsonwebtoken::EncodingKey::from_secret(purser::auth::DEVELOPMENT_SECRET.as_bytes());
    let hs256 = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &shared).unwrap();
    assert_eq!(app.get("/api/v1/credits/balance", Some(&hs256)).await.status, StatusCode::UNAUTHORIZED);
    // Purser cannot mint with a key it does not hold: no development token either.
    assert_eq!(
        app.post("/dev/token", None, &json!({ "user": "x", "role": "admin" })).await.status,
        StatusCode::NOT_FOUND
    );
}

// Issue 14: Purser serves HTTPS itself with a certificate and key from PEM files (rustls), with HSTS; plain HTTP
// gets no answer on that port.
async fn purser_serves_https_itself_with_hsts(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let paths = (cert.display().to_string(), key.display().to_string());
    let app = crate::helpers::spawn_app_with(db, move |s| {
        s.server.tls_cert = Some(paths.0);
        s.server.tls_key = Some(paths.1);
    })
    .await;
    assert!(app.base.starts_with("https://"), "{}", app.base);
    let trusted = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let https = reqwest::Client::builder().add_root_certificate(trusted).build().unwrap();
    let packages = https.get(format!("{}/api/v1/packages", app.base)).send().await.unwrap();
    assert_eq!(packages.status(), StatusCode::OK);
    assert!(packages.headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    let token = app.token("tls-1", purser::auth::Role::Client);
    let body = json!({ "packageId": "pro-200", "paymentMethodId": "pm_card_visa", "confirm": true });
    let paid = https.post(format!("{}/api/v1/payments/stripe/intent", app.base)).bearer_auth(token).json(&body);
    let paid: serde_json::Value = paid.send().await.unwrap().json().await.unwrap();
    assert_eq!(paid["data"]["creditsAdded"], 240, "{paid}");
    let plain = reqwest::get(app.base.replace("https://", "http://") + "/readyz").await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "no plain HTTP on the TLS port");
    // One half of the pair is refused at start.
    let mut half = base_settings();
    half.server.tls_cert = Some("cert.pem".into());
    let refused = Application::build(half).await.err().expect("a certificate without its key is refused");
    assert!(refused.contains("server.tls_key"), "{refused}");
}

on_both_databases!(
    purser_serves_https_itself_with_hsts,
    purser_migrate_applies_every_migration_once_and_exits,
    a_deployment_with_a_real_secret_serves_no_development_tools,
    tokens_signed_by_the_platforms_key_are_the_only_ones_accepted
);

// `purser migrate`, as an operator runs it before starting a new version: every migration applied once, and a second
// run changes nothing. On PostgreSQL it once timed out waiting for a second connection: the migration lock's
// transaction held the only one its pool had.
async fn purser_migrate_applies_every_migration_once_and_exits(db: Db) {
    let database = fresh_database(db).await;
    for run in ["first", "second"] {
        let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_purser"))
            .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"), "migrate"])
            .env("PURSER_DATABASE__URL", &database.url)
            .output()
            .unwrap();
        assert!(migrate.status.success(), "{run} run: {}", String::from_utf8_lossy(&migrate.stderr));
    }
    assert_each_migration_applied_once(&database.url).await;
}

async fn assert_each_migration_applied_once(url: &str) {
    let migrations = crate::helpers::count_rows(url, "seaql_migrations").await;
    let known = <migrations::Migrator as migrations::MigratorTrait>::migrations().len() as i64;
    assert_eq!(migrations, known, "each migration applied once");
}

// docs/deployment.md's haproxy configuration is one haproxy takes without a warning: without `mode http` it once ran
// in tcp mode and dropped `option forwardfor`, so every client would have shared the proxy's address.
#[test]
fn the_deployment_guides_haproxy_configuration_is_accepted_without_warnings() {
    let guide = include_str!("../../docs/deployment.md");
    let config = guide.split("```").find(|block| block.contains("frontend purser")).expect("the guide's haproxy block");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config.trim_start()).unwrap();
    let checked = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(file.path())
        .output()
        .expect("haproxy (Debian's haproxy package, which scripts/test installs)");
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    assert!(checked.status.success(), "{said}");
    assert!(!said.contains("WARNING"), "{said}");
}

// Issue 16: nodes started together on one fresh PostgreSQL database migrate it once between them (an advisory lock
// makes them take turns) and all come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_on_one_database_all_come_up() {
    let shared = fresh_database(Db::Postgres).await;
    let node = || {
        let url = shared.url.clone();
        spawn_app_with(Db::Postgres, move |s| s.database.url = url)
    };
    let (first, second, third) = tokio::join!(node(), node(), node());
    for app in [&first, &second, &third] {
        assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
    }
    let client = second.client("three-nodes");
    assert_eq!(client.create_intent("pro-200", Some("pm_card_visa")).await.status, StatusCode::OK);
    assert_eq!(crate::helpers::count_rows(&shared.url, "purchases").await, 1, "the nodes share the one database");
    assert_each_migration_applied_once(&shared.url).await;
}
