//! The checkout page's provider paths in a real browser: Stripe's Card Element and `confirmCardPayment` from
//! localstripe's fake Stripe.js, and PayPal's Smart Payment Buttons from the PayPal fake's SDK. This test starts the
//! fakes and the service, hands them to `tests/browser/providers.test.mjs` (headless Chromium through playwright-core),
//! and then checks the books as an operator would. `scripts/test` installs Chromium and the npm packages first.
use crate::helpers::{Db, eventually};
use crate::paypal::use_paypal_fake;
use crate::paypal_fake::PaypalFake;
use crate::stripe::{PUBLISHABLE_KEY, at_stripe, stripe_app_with};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const CARD_BUYER: &str = "elements-buyer";
const DECLINED_BUYER: &str = "elements-declined";
const PAYPAL_BUYER: &str = "buttons-buyer";
const PAY_LATER_BUYER: &str = "pay-later-buyer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_elements_and_paypal_buttons_in_chromium() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run the suite with `scripts/test`, which runs `npm ci` there"
    );
    let paypal = PaypalFake::start().await;
    let paypal_base = paypal.base.clone();
    let (app, proxy) = stripe_app_with(Db::Sqlite, move |s| {
        s.stripe.publishable_key = Some(PUBLISHABLE_KEY.into());
        use_paypal_fake(s, &paypal_base);
    })
    .await;
    paypal.deliver_webhooks_to(format!("{}/api/v1/webhooks/paypal", app.base));
    // The page loads Stripe.js through the proxy, so the fake's calls reach localstripe as Stripe.js reaches Stripe.
    let checkout = app.get("/checkout", None).await;
    let policy = checkout.headers["content-security-policy"].to_str().unwrap();
    for source in [proxy.base.as_str(), paypal.base.as_str(), "https://js.stripe.com", "https://*.paypal.com"] {
        assert!(policy.contains(source), "the page's policy lets {source} in: {policy}");
    }
    let page = checkout.body.as_str().expect("the checkout is HTML");
    assert!(page.contains(&format!("data-stripe-script=\"{}/js.stripe.com/v3/\"", proxy.base)), "{page}");
    assert!(page.contains(&format!("data-paypal-script=\"{}/sdk/js\"", paypal.base)), "{page}");

    let tokens = json!({
        "card": app.client(CARD_BUYER).token,
        "declined": app.client(DECLINED_BUYER).token,
        "paypal": app.client(PAYPAL_BUYER).token,
        "paylater": app.client(PAY_LATER_BUYER).token,
    });
    let (base, stripe) = (app.base.clone(), proxy.base.clone());
    // The service runs on this test's runtime: node waits on a blocking thread, not on one of its workers.
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(["--test", "--test-concurrency=1", "providers.test.mjs"])
            .current_dir(&browser_dir)
            .env("PURSER_URL", base)
            .env("PURSER_TOKENS", tokens.to_string())
            .env("STRIPE_URL", stripe)
            .output()
            .expect("node runs (install Node.js)")
    })
    .await
    .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    println!("{report}");
    assert!(run.status.success(), "the browser tests failed:\n{report}");

    // The card buyer paid twice (once straight, once through 3-D Secure), the declined one never, the PayPal
    // buyer twice (Venmo, then PayPal after turning back once), and the Pay Later buyer once, in euros.
    assert_eq!(app.client(CARD_BUYER).balance().await, 480);
    assert_eq!(app.client(DECLINED_BUYER).balance().await, 0);
    assert_eq!(app.client(PAYPAL_BUYER).balance().await, 480);
    assert_eq!(app.client(PAY_LATER_BUYER).balance().await, 240);

    // At Stripe: every successful card intent carries its purchase. At PayPal: Venmo paid once, PayPal once.
    let admin = app.token("browser-admin", purser::auth::Role::Admin);
    let payments = app.get("/api/v1/admin/payments?status=succeeded&limit=50", Some(&admin)).await;
    let rows = payments.data()["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 5, "{}", payments.body);
    let mut funding = Vec::new();
    for row in &rows {
        let id = row["transactionId"].as_str().unwrap();
        let detail = app.get(&format!("/api/v1/admin/payments/{id}"), Some(&admin)).await;
        let intent = detail.data()["paymentIntentId"].as_str().expect("a provider id").to_owned();
        if row["rail"] == "card" {
            let at_stripe = at_stripe(&proxy, &format!("/v1/payment_intents/{intent}")).await;
            assert_eq!(at_stripe["status"], "succeeded");
            assert_eq!(at_stripe["metadata"]["purchase_id"], crate::helpers::uuid_of(id));
        } else {
            assert_eq!(paypal.captures_of(&intent), 1, "order {intent} captured once");
            let source = detail.data()["fundingSource"].as_str().unwrap_or_default().to_owned();
            // The euro package, ordered at PayPal in euros.
            let currency = &paypal.order(&intent)["purchase_units"][0]["amount"]["currency_code"];
            assert_eq!(currency, if source == "paylater" { "EUR" } else { "USD" }, "{source}");
            funding.push(source);
        }
    }
    funding.sort();
    assert_eq!(funding, ["paylater", "paypal", "venmo"]);
    // At PayPal: each approved order captured exactly once; the cancelled one never.
    let captured = eventually(Duration::from_secs(5), || async { (paypal.capture_calls() == 3).then_some(()) }).await;
    assert!(captured.is_some(), "PayPal saw {} captures, expected 3", paypal.capture_calls());
}
