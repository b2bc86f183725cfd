//! The mailer actor: every poll interval it takes the due messages from the outbox, renders and sends each, and marks
//! it sent or schedules a retry with backoff. Messages are written by the transactions that cause them, so a crash
//! or an SMTP outage delays mail but never loses it; a message that fails to render is retried the same way.
use super::receipt::{Email, receipt, refund_notice};
use crate::settings::{EmailSettings, MailTransport, SmtpTls};
use crate::store::finished::FinishedPurchases;
use crate::store::{ledger, outbox, purchases, refunds};
use entities::outbox::Model as Message;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use sea_orm::DatabaseConnection;
use serde_json::Value;
use std::sync::Arc;

/// Where the mailer hands its messages: a directory, or an SMTP server through a pool of connections.
pub enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Messages a mailer claims at once.
pub const CLAIM_BATCH: u64 = 10;

/// How long one message may take to hand over. lettre bounds only the connect, and a pooled connection left
/// mid-conversation (its sender was killed) would never answer: past this the message is retried on a new pool.
const SEND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone)]
pub struct Mailer {
    db: DatabaseConnection,
    /// Marks each message sent (or failed) in the writer's next batch, not in a commit of its own.
    writer: crate::store::writer::Writer,
    /// A receipt's purchase, when this node has seen it finish (it never changes again), without a read.
    finished: Arc<FinishedPurchases>,
    from: Mailbox,
    admin: Option<Mailbox>,
    settings: EmailSettings,
}

pub struct Tick;

impl Mailer {
    pub fn new(
        db: DatabaseConnection,
        writer: crate::store::writer::Writer,
        finished: Arc<FinishedPurchases>,
        settings: &EmailSettings,
    ) -> Result<Self, String> {
        let from: Mailbox = settings.from.parse().map_err(|e| format!("email.from `{}`: {e}", settings.from))?;
        let admin = match &settings.admin_address {
            Some(address) => Some(address.parse().map_err(|e| format!("email.admin_address: {e}"))?),
            None => None,
        };
        open_transport(settings)?;
        Ok(Self { db, writer, finished, from, admin, settings: settings.clone() })
    }

    /// What a message says and to whom; `None` when it has no one to go to.
    async fn render(&self, message: &Message) -> Result<Option<(Mailbox, Email)>, String> {
        let Some(kind) = outbox::Kind::parse(&message.kind) else {
            return Err(format!("no mail for outbox messages of kind {}", message.kind));
        };
        match kind {
            outbox::Kind::Receipt => {
                let id = message.payload.get("purchaseId").and_then(Value::as_str).and_then(|id| id.parse().ok());
                let id = id.ok_or("receipt without a purchase id")?;
                let purchase = match self.finished.get(id) {
                    Some(purchase) => purchase,
                    None => {
                        let stored = purchases::load(&self.db, id).await.map_err(|e| e.to_string())?;
                        stored.ok_or("purchase not found")?.purchase
                    }
                };
                let Some(address) = &purchase.receipt_email else { return Ok(None) };
                let to = address.parse().map_err(|e| format!("receipt address {address}: {e}"))?;
                let balance = ledger::balance(&self.db, &purchase.client).await.map_err(|e| e.to_string())?;
                Ok(Some((to, receipt(&purchase, balance))))
            }
            outbox::Kind::RefundNotice => {
                let id = message.payload.get("refundId").and_then(Value::as_str).and_then(|id| id.parse().ok());
                let refund = refunds::load(&self.db, id.ok_or("refund email without a refund id")?)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("refund not found")?
                    .refund;
                let purchase = purchases::load(&self.db, refund.purchase_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("purchase not found")?
                    .purchase;
                let Some(address) = &purchase.receipt_email else { return Ok(None) };
                let to = address.parse().map_err(|e| format!("refund address {address}: {e}"))?;
                let notice = message.payload.get("notice").and_then(Value::as_str).unwrap_or_default();
                Ok(Some((to, refund_notice(&refund, &purchase, notice))))
            }
            outbox::Kind::FraudNotice => {
                let id = message.payload.get("purchaseId").and_then(Value::as_str).and_then(|id| id.parse().ok());
                let stored = purchases::load(&self.db, id.ok_or("fraud notice without a purchase id")?)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("purchase not found")?;
                let Some(address) = &stored.purchase.receipt_email else { return Ok(None) };
                let to = address.parse().map_err(|e| format!("address {address}: {e}"))?;
                let text = format!(
                    "We reversed your payment for transaction {} after a security review, and paused purchases on your \
                     account.\n\nThe money is on its way back to the original payment method. If this was you, reply to \
                     this email so we can verify your account and lift the pause.",
                    stored.purchase.id
                );
                let html = format!("<p>{}</p>", crate::html::escape(&text).replace("\n\n", "</p><p>"));
                Ok(Some((to, Email { subject: "Please verify your recent payment".into(), text, html })))
            }
            outbox::Kind::AdminAlert => {
                let Some(to) = self.admin.clone() else { return Ok(None) };
                let details = serde_json::to_string_pretty(&message.payload).unwrap_or_default();
                let what = message.payload.get("alert").and_then(Value::as_str).unwrap_or("alert");
                Ok(Some((
                    to,
                    Email {
                        subject: format!("Purser admin alert: {what}"),
                        html: format!("<pre>{}</pre>", crate::html::escape(&details)),
                        text: details,
                    },
                )))
            }
        }
    }

    async fn send(&self, transport: &Transport, to: Mailbox, email: Email) -> Result<(), String> {
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .multipart(MultiPart::alternative_plain_html(email.text, email.html))
            .map_err(|e| e.to_string())?;
        let sent = match transport {
            Transport::File(file) => tokio::time::timeout(SEND_DEADLINE, file.send(message))
                .await
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
            Transport::Smtp(smtp) => tokio::time::timeout(SEND_DEADLINE, smtp.send(message))
                .await
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
        };
        sent.map_err(|_| format!("no answer within {} s", SEND_DEADLINE.as_secs()))?
    }

    async fn drain(&self, transport: &mut Transport) -> Result<(), sea_orm::DbErr> {
        // A read first, so an idle outbox costs no write; then the claim, so no other node sends the same messages.
        // A few at a time: a node that dies sending strands no more than these until the claim lapses.
        if outbox::due(&self.db, 1).await?.is_empty() {
            return Ok(());
        }
        let claim = self.settings.sending_claim;
        let claimed_at = std::time::Instant::now();
        let claimed = self.writer.write(move |txn| Box::pin(outbox::claim(txn, claim, CLAIM_BATCH))).await?;
        for message in claimed {
            // Past half the claim (this node was frozen, or SMTP is slow) another node may take these over: the rest
            // are left to whoever claims them next, so a node that stalls sends at most its one message twice.
            if claimed_at.elapsed() > claim / 2 {
                break;
            }
            let sent = match self.render(&message).await {
                Ok(Some((to, email))) => self.send(transport, to, email).await.map(|()| None),
                Ok(None) => Ok(Some("no recipient".to_owned())),
                Err(error) => Err(error),
            };
            if let Err(error) = &sent {
                tracing::warn!(id = message.id, kind = %message.kind, %error, "mail not sent; will retry");
                // The connection may be left mid-conversation: the next message starts on a new one.
                if let Ok(fresh) = open_transport(&self.settings) {
                    *transport = fresh;
                }
            }
            let mark = self.writer.write(move |txn| {
                Box::pin(async move {
                    match sent {
                        Ok(note) => outbox::mark_sent(txn, message.id, note).await,
                        Err(error) => outbox::mark_failed(txn, &message, error).await,
                    }
                })
            });
            mark.await?;
        }
        Ok(())
    }
}

/// A transport of its own for each incarnation of the mailer, so a connection its killed predecessor left
/// mid-conversation is never reused.
fn open_transport(settings: &EmailSettings) -> Result<Transport, String> {
    Ok(match settings.transport {
        MailTransport::File => {
            std::fs::create_dir_all(&settings.dir).map_err(|e| format!("email.dir {}: {e}", settings.dir))?;
            Transport::File(AsyncFileTransport::new(&settings.dir))
        }
        MailTransport::Smtp => {
            let builder = match settings.smtp_tls {
                SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.smtp_host.as_str()),
                SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.smtp_host)
                    .map_err(|e| format!("email.smtp_host: {e}"))?,
                SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.smtp_host)
                    .map_err(|e| format!("email.smtp_host: {e}"))?,
            };
            let mut builder = builder.port(settings.smtp_port).timeout(Some(std::time::Duration::from_secs(10)));
            if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
                builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
            }
            Transport::Smtp(builder.build())
        }
    })
}

impl Actor for Mailer {
    type Msg = Tick;
    type State = Transport;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<Tick>, _: ()) -> Result<Transport, ActorProcessingErr> {
        let transport = open_transport(&self.settings)?;
        myself.send_interval(self.settings.poll_interval, || Tick);
        Ok(transport)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Tick>,
        _tick: Tick,
        transport: &mut Transport,
    ) -> Result<(), ActorProcessingErr> {
        if let Err(e) = self.drain(transport).await {
            tracing::warn!(error = %e, "mailer could not read the outbox");
        }
        Ok(())
    }
}
