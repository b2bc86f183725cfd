//! Receipt emails through a real SMTP server on 127.0.0.1 (AC9.1.3, AC9.4.1), and an SMTP outage that delays mail
//! without losing it.
use crate::helpers::{Db, TestApp, eventually, spawn_app_with};
use crate::on_both_databases;
use purser::auth::Role;
use purser::settings::{MailTransport, Settings};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn sink() -> (u16, PathBuf) {
    let port = std::env::var("PURSER_TEST_SMTP_PORT")
        .expect("PURSER_TEST_SMTP_PORT is not set: run the test suite with `scripts/test`, which starts an SMTP sink");
    let dir = std::env::var("PURSER_TEST_MAIL_DIR").expect("PURSER_TEST_MAIL_DIR is set with PURSER_TEST_SMTP_PORT");
    (port.parse().unwrap(), PathBuf::from(dir))
}

async fn smtp_app(db: Db, port: u16) -> TestApp {
    smtp_app_with(db, port, |_| ()).await
}

async fn smtp_app_with(db: Db, port: u16, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(db, move |s| {
        s.email.transport = MailTransport::Smtp;
        s.email.smtp_port = port;
        s.email.poll_interval = Duration::from_millis(100);
        configure(s);
    })
    .await
}

/// The message the sink saved for `address`, once it has arrived.
async fn mail_to(address: &str, within: Duration) -> Option<String> {
    let (_, dir) = sink();
    eventually(within, || async {
        std::fs::read_dir(&dir).ok()?.flatten().filter(|f| f.path().extension().is_some_and(|e| e == "eml")).find_map(
            |file| {
                let text = std::fs::read_to_string(file.path()).ok()?;
                text.contains(&format!("To: {address}")).then_some(text)
            },
        )
    })
    .await
}

/// The receipts the outbox has marked sent, once it has marked one: the mailer marks a message after the SMTP server
/// has accepted it, a moment after the sink saved the file a test saw.
async fn receipts_marked_sent(app: &TestApp) -> i64 {
    let sent = || app.count_where("outbox", "kind = 'receipt_email' AND sent_at IS NOT NULL");
    eventually(Duration::from_secs(10), || async { Some(sent().await).filter(|n| *n > 0) }).await.unwrap_or(0)
}

async fn a_paid_purchase_sends_a_receipt(db: Db) {
    let (port, _) = sink();
    let app = smtp_app(db, port).await;
    let address = format!("buyer-{}@example.com", uuid::Uuid::new_v4().simple());
    let client = app.client_with_email("receipt-1", &address);
    let (transaction, intent) = client.open("pro-200", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "pro-200").await.data()["status"], "succeeded");
    let mail = mail_to(&address, Duration::from_secs(10)).await.expect("the receipt arrived");
    assert!(mail.contains("Subject: Your receipt: 240 credits (160.00 USD)"), "{mail}");
    assert!(mail.contains("Content-Type: text/plain"), "{mail}");
    assert!(mail.contains("Content-Type: text/html"), "{mail}");
    assert!(mail.contains("Amount paid:  160.00 USD"), "{mail}");
    assert!(mail.contains(&transaction), "{mail}");
    assert!(mail.contains("Your balance is now 240 credits."), "{mail}");
    assert!(mail.contains("From: Purser <billing@purser.invalid>"), "{mail}");
    assert_eq!(receipts_marked_sent(&app).await, 1);
}

/// A door in front of the SMTP sink: while shut, connections are dropped at once, as during an outage.
async fn smtp_gate(sink_port: u16, open: Arc<AtomicBool>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !open.load(Ordering::SeqCst) {
                continue; // dropped: the client sees the connection close
            }
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", sink_port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

async fn an_smtp_outage_delays_the_receipt_but_does_not_lose_it(db: Db) {
    let (sink_port, _) = sink();
    let open = Arc::new(AtomicBool::new(false));
    let gate = smtp_gate(sink_port, open.clone()).await;
    let app = smtp_app(db, gate).await;
    let address = format!("patient-{}@example.com", uuid::Uuid::new_v4().simple());
    let client = app.client_with_email("receipt-2", &address);
    let (_, intent) = client.open("starter-25", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "starter-25").await.data()["status"], "succeeded");
    let failed = eventually(Duration::from_secs(5), || async {
        (app.count_where("outbox", "kind = 'receipt_email' AND attempts > 0 AND sent_at IS NULL").await == 1)
            .then_some(())
    })
    .await;
    assert!(failed.is_some(), "the first attempt failed during the outage");
    assert!(mail_to(&address, Duration::from_millis(200)).await.is_none());
    open.store(true, Ordering::SeqCst);
    let mail = mail_to(&address, Duration::from_secs(20)).await.expect("delivered once SMTP is back");
    assert!(mail.contains("Your receipt: 25 credits"));
}

/// A door in front of the SMTP sink whose first connection goes silent once the client says `DATA`, as a
/// conversation does when its sender is killed mid-message: the server never answers on it again.
async fn smtp_stall(sink_port: u16, stalled: Arc<AtomicBool>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut inbound, _)) = listener.accept().await {
            let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", sink_port)).await else { continue };
            if !std::mem::take(&mut first) {
                tokio::spawn(async move { tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await });
                continue;
            }
            let stalled = stalled.clone();
            tokio::spawn(async move {
                let (mut from_client, mut to_client) = inbound.into_split();
                let (mut from_server, mut to_server) = outbound.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = from_client.read(&mut chunk).await {
                    if chunk[..n].windows(6).any(|w| w == b"DATA\r\n") {
                        stalled.store(true, Ordering::SeqCst);
                        std::future::pending::<()>().await;
                    }
                    if to_server.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

async fn a_mailer_killed_mid_message_sends_the_receipt_on_a_new_connection(db: Db) {
    let (sink_port, _) = sink();
    let stalled = Arc::new(AtomicBool::new(false));
    let door = smtp_stall(sink_port, stalled.clone()).await;
    let app = smtp_app_with(db, door, |s| {
        s.sandbox.crash_hooks = true;
        s.email.sending_claim = Duration::from_secs(1);
    })
    .await;
    let address = format!("interrupted-{}@example.com", uuid::Uuid::new_v4().simple());
    let client = app.client_with_email("receipt-3", &address);
    let (_, intent) = client.open("starter-25", "pm_card_visa").await;
    assert_eq!(client.confirm(&intent, "starter-25").await.data()["status"], "succeeded");
    let mid_message = eventually(Duration::from_secs(10), || async { stalled.load(Ordering::SeqCst).then_some(()) });
    assert!(mid_message.await.is_some(), "the mailer began the receipt on the first connection");

    let admin = app.token("admin-mail", Role::Admin);
    assert_eq!(app.post("/dev/crash/mailer", Some(&admin), &json!({})).await.status, reqwest::StatusCode::OK);
    // The restarted mailer takes the message up again once its claim lapses, on a connection of its own: the
    // killed one's connection is still waiting for an answer that never comes.
    let mail = mail_to(&address, Duration::from_secs(20)).await.expect("the receipt arrived after the crash");
    assert!(mail.contains("Your receipt: 25 credits"), "{mail}");
    assert_eq!(receipts_marked_sent(&app).await, 1);
}

on_both_databases!(
    a_paid_purchase_sends_a_receipt,
    an_smtp_outage_delays_the_receipt_but_does_not_lose_it,
    a_mailer_killed_mid_message_sends_the_receipt_on_a_new_connection
);
