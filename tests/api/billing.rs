//! Billing history, the annual CSV export and receipts sent again (AC9.4.4–AC9.4.6).
use crate::helpers::{Db, spawn_app};
use crate::on_both_databases;
use chrono::Datelike;
use purser::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

async fn history_export_and_receipts_again(db: Db) {
    let app = spawn_app(db).await;
    let client = app.client_with_email("billing-1", "billing-1@example.com");
    let (first, intent) = client.open("pro-200", "pm_card_visa").await;
    client.confirm(&intent, "pro-200").await;
    let (second, intent) = client.open("starter-25", "pm_card_mastercard").await;
    client.confirm(&intent, "starter-25").await;
    let (_, _) = client.open("scale-1000", "pm_card_visa").await; // opened, never paid

    let history = app.get("/api/v1/billing/history?per_page=2", Some(&client.token)).await;
    let items = history.data()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "a page of two");
    assert_eq!(items[1]["transactionId"], second.as_str());
    assert_eq!((items[1]["amount"].as_i64(), items[1]["method"].as_str()), (Some(2500), Some("pm_card_mastercard")));
    let next = app.get("/api/v1/billing/history?per_page=2&page=2", Some(&client.token)).await;
    assert_eq!(next.data()["items"][0]["transactionId"], first.as_str());
    assert!(next.data()["items"][1]["receiptUrl"].is_null(), "the unpaid purchase has no receipt yet");

    // Issue 17: the receipt page opens from its link with no sign-in, and only with its own token.
    let link = items[1]["receiptUrl"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}/receipts/{second}?token=", app.base)), "{link}");
    let page = app.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = page.text().await.unwrap();
    assert!(page.contains("Thank you for your purchase") && page.contains(second.as_str()), "{page}");
    assert!(page.contains("25.00 USD"), "{page}");
    let token = link.rsplit_once("token=").unwrap().1.to_owned();
    let borrowed = format!("{}/receipts/{first}?token={token}", app.base);
    let refused = app.get(&borrowed.replacen(&app.base, "", 1), None).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::NOT_FOUND, "receipt_not_found"), "another's token");
    let forged = format!("/receipts/{second}?token={}", "0".repeat(64));
    assert_eq!(app.get(&forged, None).await.status, StatusCode::NOT_FOUND);

    // Half of the first purchase's credits refunded, to see it in the export.
    let admin = app.token("admin-b", Role::Admin);
    app.post(
        "/api/v1/admin/credits/adjust",
        Some(&admin),
        &json!({ "clientId": "billing-1", "credits": -145, "reason": "usage" }),
    )
    .await;
    let asked = app
        .post("/api/v1/payments/refund", Some(&client.token), &json!({ "transactionId": first, "reason": "Unused" }))
        .await;
    let refund = asked.data()["refundRequestId"].as_str().unwrap().to_owned();
    assert_eq!(asked.data()["credits"], 120);
    app.post(&format!("/api/v1/admin/refunds/{refund}/approve"), Some(&admin), &json!({})).await;

    let year = chrono::Utc::now().year();
    let response = app
        .http
        .get(format!("{}/api/v1/billing/export?year={year}", app.base))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "paid purchases only: {text}");
    assert_eq!(&rows[0][1], first.as_str());
    assert_eq!((&rows[0][4], &rows[0][5], &rows[0][7]), ("160.00", "USD", "80.00"));
    assert_eq!((&rows[1][4], &rows[1][7]), ("25.00", "0.00"));
    let last_year = app
        .http
        .get(format!("{}/api/v1/billing/export?year={}", app.base, year - 1))
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv::Reader::from_reader(last_year.text().await.unwrap().as_bytes()).records().count(), 0);

    let again = app.post(&format!("/api/v1/billing/receipts/{second}/resend"), Some(&client.token), &json!({})).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.data()["transactionId"], second.as_str(), "named as every other answer names it");
    assert_eq!(mails_saying(&app, "Your receipt: 25 credits", 2).await, Some(2), "the receipt went out again");
    let stranger = app.client("billing-2");
    let theirs =
        app.post(&format!("/api/v1/billing/receipts/{second}/resend"), Some(&stranger.token), &json!({})).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    // Issue 14: three resends an hour per payment (`limits.receipt_resends_per_hour`), then 429.
    let path = format!("/api/v1/billing/receipts/{second}/resend");
    for _ in 0..2 {
        assert_eq!(app.post(&path, Some(&client.token), &json!({})).await.status, StatusCode::ACCEPTED);
    }
    let fourth = app.post(&path, Some(&client.token), &json!({})).await;
    assert_eq!((fourth.status, fourth.error_code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    assert!(fourth.headers.contains_key("retry-after"));
    // Support's resend (issue 17): the same budget per payment (the client spent it on the second purchase), and each
    // resend, the client's or support's, audited on the admin's view of the transaction.
    let support = app.post(&format!("/api/v1/admin/payments/{second}/resend-receipt"), Some(&admin), &json!({})).await;
    assert_eq!(support.status, StatusCode::TOO_MANY_REQUESTS, "{}", support.body);
    let support = app.post(&format!("/api/v1/admin/payments/{first}/resend-receipt"), Some(&admin), &json!({})).await;
    assert_eq!(support.status, StatusCode::ACCEPTED, "{}", support.body);
    assert_eq!(mails_saying(&app, "Your receipt: 240 credits", 2).await, Some(2), "the first receipt went out again");
    let audit = |view: &crate::helpers::Answer| {
        let lines = view.data()["audit"].as_array().cloned().unwrap_or_default();
        lines.iter().map(|l| (l["by"].as_str().unwrap().to_owned(), l["action"].as_str().unwrap().to_owned())).collect()
    };
    let viewed = app.get(&format!("/api/v1/admin/payments/{first}"), Some(&admin)).await;
    let lines: Vec<(String, String)> = audit(&viewed);
    assert!(lines.contains(&("admin-b".into(), "resend_receipt".into())), "{lines:?}");
    let viewed = app.get(&format!("/api/v1/admin/payments/{second}"), Some(&admin)).await;
    let by_client: Vec<(String, String)> = audit(&viewed);
    assert_eq!(by_client, vec![("billing-1".to_owned(), "resend_receipt".to_owned()); 3], "the three that went out");
    let own = app.get(&format!("/api/v1/payments/{second}"), Some(&client.token)).await;
    assert!(own.data().get("audit").is_none(), "the audit trail is for admins: {}", own.body);
}

/// Waits until `wanted` mails in the app's outbox directory say `needle`; `None` if they never do.
async fn mails_saying(app: &crate::helpers::TestApp, needle: &str, wanted: usize) -> Option<usize> {
    crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        let mails = std::fs::read_dir(&app.mail_dir).ok()?.flatten();
        let count = mails.filter(|f| std::fs::read_to_string(f.path()).is_ok_and(|t| t.contains(needle))).count();
        (count == wanted).then_some(count)
    })
    .await
}

/// The text of a transaction's invoice PDF, as its client downloads it.
async fn invoice_text(app: &crate::helpers::TestApp, token: &str, transaction: &str) -> String {
    let url = format!("{}/api/v1/billing/invoices/{transaction}.pdf", app.base);
    let pdf = app.http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    pdf_text(&pdf.bytes().await.unwrap())
}

/// The text of a PDF, as `pdftotext` (poppler-utils) extracts it: what any viewer would show.
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoice.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success(), "pdftotext could not read the invoice");
    String::from_utf8(out.stdout).unwrap()
}

// AC9.4.2: every paid purchase has a PDF invoice, numbered without gaps, with the seller, buyer, item and total.
async fn paid_purchases_get_gapless_pdf_invoices(db: Db) {
    let app = spawn_app(db).await;
    let alice = app.client_with_email("invoice-a", "a@example.com");
    let bob = app.client("invoice-b");
    let (declined, intent) = alice.open("pro-200", "pm_card_visa_chargeDeclined").await;
    alice.confirm(&intent, "pro-200").await;
    let buy = |client: &crate::helpers::Client<'_>, package: &'static str| {
        let body = json!({ "packageId": package, "paymentMethodId": "pm_card_visa", "confirm": true });
        let token = client.token.clone();
        let app = &app;
        async move {
            app.post("/api/v1/payments/stripe/intent", Some(&token), &body).await.data()["transactionId"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (a1, b1, a2) = tokio::join!(buy(&alice, "pro-200"), buy(&bob, "starter-25"), buy(&alice, "scale-1000"));
    let mut numbers = Vec::new();
    for (client, transaction) in [(&alice, &a1), (&bob, &b1), (&alice, &a2)] {
        let response = app
            .http
            .get(format!("{}/api/v1/billing/invoices/{transaction}.pdf", app.base))
            .bearer_auth(&client.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/pdf");
        let text = pdf_text(&response.bytes().await.unwrap());
        assert!(text.contains("Purser Demo Seller") && text.contains(transaction.as_str()), "{text}");
        let number: i64 = text.lines().find_map(|l| l.strip_prefix("Invoice ")).unwrap().trim().parse().unwrap();
        numbers.push(number);
        if transaction == &a1 {
            assert!(
                text.contains("Total: 160.00 USD") && text.contains("Credits: 240") && text.contains("a@example.com"),
                "{text}"
            );
        }
    }
    numbers.sort();
    assert_eq!(numbers, vec![1, 2, 3], "no gaps, no repeats, the declined purchase has none");
    let none = app
        .http
        .get(format!("{}/api/v1/billing/invoices/{declined}.pdf", app.base))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
    let theirs = app
        .http
        .get(format!("{}/api/v1/billing/invoices/{b1}.pdf", app.base))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
}

// AC9.4.3: a business account's invoice names the company and breaks the tax down by its jurisdiction.
async fn business_invoices_carry_a_tax_breakdown(db: Db) {
    let app = spawn_app(db).await;
    for (user, country, vat, expected) in [
        (
            "biz-de",
            "DE",
            Some("DE999999999"),
            vec!["Tax breakdown (DE)", "Net: 134.45 USD", "VAT 19.00%: 25.55 USD", "Gross: 160.00 USD"],
        ),
        ("biz-fr", "fr", Some("FR12345678901"), vec!["Tax breakdown (FR)", "TVA 0.00%: 0.00 USD", "Reverse charge"]),
    ] {
        let client = app.client(user);
        let profile = json!({ "companyName": format!("{user} GmbH"), "address": "Hauptstrasse 1, Berlin", "country": country, "taxId": vat });
        let saved = app
            .http
            .put(format!("{}/api/v1/billing/profile", app.base))
            .bearer_auth(&client.token)
            .json(&profile)
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), StatusCode::OK);
        let body = json!({ "packageId": "pro-200", "paymentMethodId": "pm_card_visa", "confirm": true });
        let bought = app.post("/api/v1/payments/stripe/intent", Some(&client.token), &body).await;
        let transaction = bought.data()["transactionId"].as_str().unwrap().to_owned();
        let text = invoice_text(&app, &client.token, &transaction).await;
        assert!(text.contains(&format!("{user} GmbH")), "{text}");
        for line in expected {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
    let bad = app
        .http
        .put(format!("{}/api/v1/billing/profile", app.base))
        .bearer_auth(&app.client("biz-x").token)
        .json(&json!({ "companyName": "X", "address": "Y", "country": "Germany" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

// Issue 17: a package priced in yen (ISO 4217 exponent 0) is charged, mailed and invoiced as 1600 JPY, never as
// 16.00; its receipt page says the same.
async fn a_zero_decimal_currency_keeps_its_unit(db: Db) {
    let app = crate::helpers::spawn_app_with(db, |s| {
        let (id, name, currency) = ("yen-1600".to_owned(), "Yen".to_owned(), "JPY".to_owned());
        s.packages.push(purser::domain::package::PackageConfig { id, name, amount: 1600, currency, credits: 100 });
    })
    .await;
    let client = app.client_with_email("yen-1", "yen@example.com");
    let (transaction, intent) = client.open("yen-1600", "pm_card_visa").await;
    let confirmed = client.confirm(&intent, "yen-1600").await;
    assert_eq!(confirmed.data()["status"], "succeeded", "{}", confirmed.body);
    let view = client.transaction(&transaction).await;
    assert_eq!((view.data()["amount"].as_i64(), view.data()["currency"].as_str()), (Some(1600), Some("jpy")));
    assert!(app.mail_containing("Your receipt: 100 credits (1600 JPY)").await.is_some(), "the receipt in yen");
    let text = invoice_text(&app, &client.token, &transaction).await;
    assert!(text.contains("Total: 1600 JPY"), "{text}");
    let history = app.get("/api/v1/billing/history", Some(&client.token)).await;
    let link = history.data()["items"][0]["receiptUrl"].as_str().unwrap().to_owned();
    let page = app.http.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("1600 JPY"), "{page}");
}

on_both_databases!(
    a_zero_decimal_currency_keeps_its_unit,
    history_export_and_receipts_again,
    paid_purchases_get_gapless_pdf_invoices,
    business_invoices_carry_a_tax_breakdown
);
