//! The webhook inbox: every verified provider event is stored once (a duplicate is acknowledged and dropped), then
//! routed to what it is about (a purchase's actor, a refund's, a dispute or a saved method). Events whose routing
//! failed or died with a process are re-driven: at start, every `reconcile_every`, and on an admin's replay.
use crate::actors::PurchaseActors;
use crate::actors::refund::RefundActors;
use crate::app::disputes;
use crate::domain::dispute::Report;
use crate::domain::purchase::{Input, IntentUpdate, Purchase};
use crate::domain::refund::RefundInput;
use crate::providers::{paypal_order, stripe_event};
use crate::store::purchases::Cause;
use crate::store::webhooks::{self, IncomingEvent, Recorded};
use crate::store::{controls, customers, payment_methods, purchases, refunds};
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::Value;
use std::sync::Arc;

/// Whether an event was new to the inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    New,
    Duplicate,
}

/// What storing an event left to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stored {
    /// Stored; its routing follows.
    Routable(i64),
    /// Stored and applied in one step.
    Applied,
    Duplicate,
}

#[derive(Clone)]
pub struct Inbox {
    pub db: DatabaseConnection,
    /// Lookups (which purchase an event names) that need not queue behind the writer.
    pub reads: DatabaseConnection,
    pub purchases: Arc<PurchaseActors>,
    pub refunds: Arc<RefundActors>,
}

/// What an admin's replay of a stored event found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    Replayed,
    NotFound,
    /// Applied already: replaying it could only repeat what it did.
    AlreadyApplied,
}

/// Routes a stored event after its acknowledgement, as the providers ask: a crash before routing is done leaves the
/// row `received` for the inbox sweep, which also retries a routing that failed here.
fn in_background(row: i64, routing: impl std::future::Future<Output = Result<(), DbErr>> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(e) = routing.await {
            tracing::warn!(row, error = %e, "a stored event was not routed; the inbox sweep retries it");
        }
    });
}

impl Inbox {
    /// A verified Stripe event, exactly as sent (`payload`): stored once, then routed.
    pub async fn stripe(&self, event: stripe_event::Event, payload: &str) -> Result<Received, DbErr> {
        let purchase_id = event.purchase_id();
        let incoming = IncomingEvent {
            provider: "stripe",
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            payload: payload.to_owned(),
            purchase_id,
        };
        let about_payment = event.event_type.starts_with("payment_intent.")
            && event.is_payment_intent()
            && stripe_event::parse_intent(&event.data.object).is_ok();
        let news_of = purchase_id.filter(|_| about_payment);
        self.receive(incoming, news_of, move |inbox, row| async move { inbox.route(event, row, purchase_id).await })
            .await
    }

    /// A verified PayPal event, exactly as sent: stored once, then routed.
    pub async fn paypal(&self, event: paypal_order::Event, payload: &str) -> Result<Received, DbErr> {
        let target = self.paypal_target(&event).await?;
        let incoming = IncomingEvent {
            provider: "paypal",
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            payload: payload.to_owned(),
            purchase_id: target.as_ref().map(|(id, _)| *id),
        };
        let news_of = target.as_ref().map(|(id, _)| *id);
        self.receive(incoming, news_of, move |inbox, row| async move { inbox.route_paypal(event, row, target).await })
            .await
    }

    /// Stores an event once. News of a purchase (`news_of`) that is finished is applied in the same step; anything
    /// else is routed by `route` after the answer.
    async fn receive<F>(
        &self,
        incoming: IncomingEvent,
        news_of: Option<uuid::Uuid>,
        route: impl FnOnce(Inbox, i64) -> F,
    ) -> Result<Received, DbErr>
    where
        F: std::future::Future<Output = Result<(), DbErr>> + Send + 'static,
    {
        let settled = match news_of {
            Some(id) => self.purchases.settled(id).await?,
            None => None,
        };
        Ok(match self.record(incoming, settled).await? {
            Stored::Routable(row) => {
                in_background(row, route(self.clone(), row));
                Received::New
            }
            Stored::Applied => Received::New,
            Stored::Duplicate => Received::Duplicate,
        })
    }

    /// Stores a verified event once. News of a purchase that is `settled` (finished: it never changes again) is
    /// applied in the same step, its history line and inbox mark beside its row, as its actor would apply it; any other
    /// event is left to route.
    async fn record(&self, incoming: IncomingEvent, settled: Option<Purchase>) -> Result<Stored, DbErr> {
        let provider = incoming.provider;
        let writer = &self.purchases.context().writer;
        let recorded = writer.write(move |txn| {
            Box::pin(async move {
                let recorded = webhooks::record(txn, incoming).await?;
                Ok::<_, DbErr>(match (recorded, settled) {
                    (Recorded::New(row), Some(purchase)) => {
                        let (name, cause) = (Input::PROVIDER_UPDATE, Cause::Webhook(row));
                        purchases::record_unchanged(txn, &purchase, name, &cause).await?;
                        Stored::Applied
                    }
                    (Recorded::New(row), None) => Stored::Routable(row),
                    (Recorded::Duplicate, _) => Stored::Duplicate,
                })
            })
        });
        let stored = recorded.await?;
        let outcome = if stored == Stored::Duplicate { "duplicate" } else { "new" };
        self.purchases.context().counters.webhook_received(provider, outcome);
        Ok(stored)
    }

    /// Acts on a stored Stripe event (on receipt, or replayed).
    pub async fn route(
        &self,
        event: stripe_event::Event,
        row: i64,
        purchase_id: Option<uuid::Uuid>,
    ) -> Result<(), DbErr> {
        match event.event_type.as_str() {
            kind if kind.starts_with("payment_intent.") && event.is_payment_intent() => {
                let update = stripe_event::parse_intent(&event.data.object);
                let purchase_id = match (purchase_id, &update) {
                    (Some(id), _) => Some(id),
                    // An intent made without Purser's metadata (or an older event): its id still names the purchase.
                    (None, Ok(update)) => {
                        purchases::find_by_intent(&self.reads, &update.intent_id).await?.map(|s| s.purchase.id)
                    }
                    (None, Err(_)) => None,
                };
                let (Some(id), Ok(update)) = (purchase_id, update) else {
                    webhooks::mark(
                        &self.db,
                        row,
                        webhooks::InboxStatus::Unroutable,
                        Some("no purchase_id in metadata".into()),
                    )
                    .await?;
                    return Ok(());
                };
                let purchases = self.purchases.clone();
                tokio::spawn(async move { purchases.deliver_webhook(id, Input::Provider(update), row).await });
            }
            "payment_method.attached" => self.remember_method(&event, row).await?,
            // A refund's news: `charge.refunded` carries the charge with its newest refund; the others the refund
            // itself. What settles it is the refund's own status, since a refund may be `pending` for days and then
            // fail (an expired or closed card), even after `succeeded`.
            "charge.refunded" | "charge.refund.updated" | "refund.updated" | "refund.failed" => {
                let object = &event.data.object;
                let refund = match event.event_type.as_str() {
                    "charge.refunded" => object.pointer("/refunds/data/0").unwrap_or(object),
                    _ => object,
                };
                let stored = match object.get("payment_intent").and_then(Value::as_str) {
                    Some(intent) => purchases::find_by_intent(&self.reads, intent).await?,
                    None => None,
                };
                let text = |name: &str| refund.get(name).and_then(Value::as_str);
                let provider_refund = text("id").unwrap_or(&event.event_type).to_owned();
                let input = match text("status").unwrap_or("succeeded") {
                    "succeeded" => Some(RefundInput::Refunded { provider_refund: provider_refund.clone() }),
                    "failed" | "canceled" => Some(RefundInput::MethodRefused {
                        code: text("failure_reason").unwrap_or("refund_failed").into(),
                    }),
                    _ => None,
                };
                self.settle_refund(stored.map(|s| s.purchase.id), &provider_refund, input, row).await?;
            }
            "charge.dispute.created" | "charge.dispute.updated" | "charge.dispute.closed" => {
                self.dispute(stripe_event::parse_dispute(&event.data.object), row).await?
            }
            "payment_method.detached" => {
                let method = event.data.object.get("id").and_then(Value::as_str).map(str::to_owned);
                let writer = &self.purchases.context().writer;
                let forgotten = writer.write(move |txn| {
                    Box::pin(async move {
                        if let Some(id) = method {
                            payment_methods::forget(txn, &id).await?;
                        }
                        webhooks::mark(txn, row, webhooks::InboxStatus::Processed, None).await
                    })
                });
                forgotten.await?;
            }
            // Stored and acknowledged; refunds and disputes act on them when they arrive.
            _ => webhooks::mark(&self.db, row, webhooks::InboxStatus::Ignored, None).await?,
        }
        Ok(())
    }

    /// AC9.1.6: a method attached to a client's customer (after "save for future") becomes a saved method, in the step
    /// that marks its event.
    async fn remember_method(&self, event: &stripe_event::Event, row: i64) -> Result<(), DbErr> {
        let method = stripe_event::parse_method(&event.data.object);
        let owner = match &method {
            Some(method) => customers::owner(&self.reads, &method.customer).await?,
            None => None,
        };
        match (method, owner) {
            (Some(method), Some((client, provider))) => {
                let writer = &self.purchases.context().writer;
                let remembered = writer.write(move |txn| {
                    Box::pin(async move {
                        payment_methods::upsert(txn, &client, &provider, &method).await?;
                        webhooks::mark(txn, row, webhooks::InboxStatus::Processed, None).await
                    })
                });
                remembered.await?;
            }
            _ => {
                webhooks::mark(
                    &self.db,
                    row,
                    webhooks::InboxStatus::Unroutable,
                    Some("no known customer for this method".into()),
                )
                .await?
            }
        }
        Ok(())
    }

    /// Acts on a stored PayPal event (on receipt, or replayed by an admin).
    pub async fn route_paypal(
        &self,
        event: paypal_order::Event,
        row: i64,
        target: Option<(uuid::Uuid, IntentUpdate)>,
    ) -> Result<(), DbErr> {
        match (event.event_type.as_str(), target) {
            ("PAYMENT.CAPTURE.REFUNDED", _) => {
                let resource = &event.resource;
                let mut purchase = resource.get("custom_id").and_then(Value::as_str).and_then(|id| id.parse().ok());
                if purchase.is_none() {
                    let capture = resource.pointer("/links").and_then(Value::as_array).and_then(|links| {
                        links
                            .iter()
                            .find(|l| l["rel"] == "up")?
                            .get("href")?
                            .as_str()?
                            .rsplit('/')
                            .next()
                            .map(str::to_owned)
                    });
                    if let Some(capture) = capture {
                        purchase = purchases::find_by_charge(&self.reads, &capture).await?.map(|s| s.purchase.id);
                    }
                }
                let refund_id = resource.get("id").and_then(Value::as_str).unwrap_or("PAYMENT.CAPTURE.REFUNDED");
                let paid = RefundInput::Refunded { provider_refund: refund_id.to_owned() };
                self.settle_refund(purchase, refund_id, Some(paid), row).await?;
            }
            (kind, _) if kind.starts_with("CUSTOMER.DISPUTE.") => {
                self.dispute(paypal_order::parse_dispute(&event.resource), row).await?
            }
            (_, Some((id, update))) => {
                let purchases = self.purchases.clone();
                tokio::spawn(async move { purchases.deliver_webhook(id, Input::Provider(update), row).await });
            }
            _ => webhooks::mark(&self.db, row, webhooks::InboxStatus::Ignored, None).await?,
        }
        Ok(())
    }

    /// Runs a stored event through routing again: for events that failed or found no purchase (AC9.6.7). Its signature
    /// was verified when it arrived; the inbox keeps it exactly as sent.
    pub async fn replay(&self, row: &entities::webhook_events::Model) -> Result<(), DbErr> {
        let invalid = |e: serde_json::Error| DbErr::Custom(format!("stored event {} is unreadable: {e}", row.id));
        match row.provider.as_str() {
            "paypal" => {
                let event: paypal_order::Event = serde_json::from_str(&row.payload).map_err(invalid)?;
                let target = self.paypal_target(&event).await?;
                self.route_paypal(event, row.id, target).await
            }
            _ => {
                let event: stripe_event::Event = serde_json::from_str(&row.payload).map_err(invalid)?;
                let purchase_id = event.purchase_id();
                self.route(event, row.id, purchase_id).await
            }
        }
    }

    /// An admin's replay (AC9.6.7): the audit row and the event's return to `received` commit in one step, so a
    /// replay audited here and cut short (a crash before its routing ends) is finished by the inbox sweep.
    pub async fn replay_for(&self, id: i64, admin: &str, reason: String) -> Result<Replay, DbErr> {
        let admin = admin.to_owned();
        let writer = &self.purchases.context().writer;
        let requeued = writer.write(move |txn| {
            Box::pin(async move {
                let Some(row) = webhooks::lock(txn, id).await? else { return Ok(Err(Replay::NotFound)) };
                if row.status == webhooks::InboxStatus::Processed.as_str() {
                    return Ok(Err(Replay::AlreadyApplied));
                }
                controls::audit(txn, &admin, "replay_webhook", &row.event_id, &reason).await?;
                webhooks::mark(txn, id, webhooks::InboxStatus::Received, None).await?;
                Ok::<_, DbErr>(Ok(row))
            })
        });
        match requeued.await? {
            Ok(row) => self.replay(&row).await.map(|()| Replay::Replayed),
            Err(found) => Ok(found),
        }
    }

    /// One round of the inbox sweep (`app::inbox_sweep`): claims the events that failed, or whose routing died
    /// with a node, and routes them again. With several nodes each claims its own.
    pub async fn sweep(&self) {
        // Longer than a replay takes: a node that dies mid-replay leaves its claim to run out, then another replays.
        const CLAIM: std::time::Duration = std::time::Duration::from_secs(60);
        match webhooks::claim_unapplied(&self.db, CLAIM).await {
            Ok(rows) => {
                for row in rows {
                    if let Err(e) = self.replay(&row).await {
                        tracing::warn!(event = %row.event_id, error = %e, "inbox sweep: event not applied");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "inbox sweep: inbox not read"),
        }
    }

    /// The purchase a PayPal order or capture event is about, and what it says.
    pub async fn paypal_target(
        &self,
        event: &paypal_order::Event,
    ) -> Result<Option<(uuid::Uuid, IntentUpdate)>, DbErr> {
        let (purchase, update) = match event.event_type.as_str() {
            "CHECKOUT.ORDER.APPROVED" | "CHECKOUT.ORDER.COMPLETED" => {
                let Ok(update) = paypal_order::parse_order(&event.resource) else { return Ok(None) };
                (paypal_order::order_purchase(&event.resource), update)
            }
            "PAYMENT.CAPTURE.COMPLETED"
            | "PAYMENT.CAPTURE.PENDING"
            | "PAYMENT.CAPTURE.DENIED"
            | "PAYMENT.CAPTURE.DECLINED" => {
                let Some((purchase, update)) = paypal_order::parse_capture(&event.resource) else { return Ok(None) };
                (purchase, update)
            }
            _ => return Ok(None),
        };
        let purchase = match purchase {
            Some(id) => Some(id),
            None => purchases::find_by_intent(&self.reads, &update.intent_id).await?.map(|s| s.purchase.id),
        };
        Ok(purchase.map(|id| (id, update)))
    }

    /// A dispute's news (AC9.2.5), applied with its inbox mark; one without a dispute id in it is left unroutable.
    async fn dispute(&self, report: Option<Report>, row: i64) -> Result<(), DbErr> {
        match report {
            Some(report) => disputes::reported(self.purchases.context(), report, row).await.map(|_| ()),
            None => {
                let why = Some("a dispute event without a dispute id or status".into());
                webhooks::mark(&self.db, row, webhooks::InboxStatus::Unroutable, why).await
            }
        }
    }

    /// Gives the provider's news of `provider_refund` (`None`: still pending, nothing to do) to the purchase's refund it
    /// is about: the one being made, or the one it already settled (a paid refund can still fail), whose step marks
    /// the event applied. News of a refund made outside Purser changes nothing.
    async fn settle_refund(
        &self,
        purchase: Option<uuid::Uuid>,
        provider_refund: &str,
        news: Option<RefundInput>,
        row: i64,
    ) -> Result<(), DbErr> {
        let about = match (purchase, &news) {
            (Some(purchase), Some(_)) => refunds::settling(&self.reads, purchase, provider_refund).await?,
            _ => None,
        };
        let Some((id, input)) = about.zip(news) else {
            return webhooks::mark(&self.db, row, webhooks::InboxStatus::Processed, None).await;
        };
        match self.refunds.deliver_webhook(id, input, row).await {
            Ok(_) => Ok(()),
            Err(e) => webhooks::mark(&self.db, row, webhooks::InboxStatus::Failed, Some(e.to_string())).await,
        }
    }
}
