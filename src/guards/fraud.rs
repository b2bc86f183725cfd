//! The fraud monitor actor: it scores every checkout before a provider is called and hears every decline and every
//! webhook that fails verification. A checkout over a rule is blocked; a burst across the platform (a card-testing
//! wave, a spike of blocked checkouts, forged webhooks) raises an admin alert and pauses payment processing until an
//! admin resumes it (AC9.3.4, AC9.3.7).
use super::pause::{Pauses, Scope};
use crate::domain::fraud::{FraudRules, Signals, Verdict, Window, assess};
use crate::domain::purchase::Rail;
use crate::store::alerts::{self, Alert};
use crate::store::fraud_screenings::{self, Caps, Keys, Seen};
use chrono::{DateTime, TimeDelta, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A checkout about to reach a provider.
pub struct Screening {
    pub client: String,
    pub amount: i64,
    /// The card behind the method, for velocity: Stripe's card fingerprint, the same for every method made from one
    /// card number (each Stripe.js tokenization makes a new method); the method id where no fingerprint is known.
    pub card: Option<String>,
    pub ip: Option<IpAddr>,
}

pub enum FraudMsg {
    Assess {
        checkout: Screening,
        reply: RpcReplyPort<Verdict>,
    },
    /// A checkout was blocked: one more in the platform's wave.
    Blocked,
    /// A payment was declined (its purchase's step counted it for its client): one more in the platform's wave.
    Declined,
    SignatureFailed {
        provider: &'static str,
        sender: IpAddr,
    },
}

#[derive(Clone)]
pub struct FraudMonitor {
    pub rules: FraudRules,
    pub db: DatabaseConnection,
    /// Screenings are steps: counted and recorded in one transaction of the writer's batches.
    pub writer: crate::store::writer::Writer,
    pub pauses: Arc<Pauses>,
}

/// What the monitor keeps in memory: the platform-wide waves of the last minute, which pause processing. The
/// per-client, per-network and per-card counts are in the database (`store::fraud_screenings`).
#[derive(Default)]
pub struct Windows {
    platform_declines: Window,
    platform_blocks: Window,
    signature_failures: Window,
    /// When each sender last failed verification.
    signature_senders: HashMap<IpAddr, DateTime<Utc>>,
}

/// Screens one checkout as a step of its own: the keys locked (so nodes screening the same client, network or card
/// take turns), the last hour counted, the verdict given, and a checkout let through recorded, all in one
/// transaction.
async fn screen(
    txn: &sea_orm::DatabaseTransaction,
    rules: &FraudRules,
    checkout: &Screening,
    now: DateTime<Utc>,
) -> Result<Verdict, sea_orm::DbErr> {
    let ip = checkout.ip.map(|ip| ip.to_string());
    let keys = Keys { client: &checkout.client, ip: ip.as_deref(), card: checkout.card.as_deref() };
    fraud_screenings::lock_now(txn, &keys).await?;
    let caps = Caps {
        client_checkouts: rules.checkouts_per_hour,
        client_declines: rules.declines_per_hour,
        ip_checkouts: rules.checkouts_per_ip_per_hour,
        card_checkouts: rules.checkouts_per_card_per_hour,
    };
    let tally = fraud_screenings::tally(txn, &keys, &caps, now).await?;
    let signals = Signals {
        amount: checkout.amount,
        client_checkouts: tally.client_checkouts,
        client_declines: tally.client_declines,
        ip_checkouts: tally.ip_checkouts,
        card_checkouts: tally.card_checkouts,
        client_cards: tally.client_cards,
        flagged: tally.flagged,
    };
    let verdict = assess(rules, &signals);
    if matches!(verdict, Verdict::Allow | Verdict::Review(_)) {
        fraud_screenings::record(txn, Seen::Checkout, &keys, now).await?;
    }
    Ok(verdict)
}

impl FraudMonitor {
    /// A wave across the platform: pause everything (unless already paused) and tell the admins.
    async fn breach(
        &self,
        kind: &str,
        wave: usize,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(), ActorProcessingErr> {
        if wave < limit || self.pauses.blocking(Rail::Card).is_some() {
            return Ok(());
        }
        let reason = format!("{wave} {kind} in a minute: an attack is suspected");
        let details = json!({ "alert": "breach", "reason": reason });
        let alert = Alert { kind: "breach", key: format!("breach:{kind}:{}", now.timestamp()), details };
        self.pauses.set(Scope::Platform, true, &reason, "fraud-monitor", Some(alert)).await?;
        Ok(())
    }
}

impl Actor for FraudMonitor {
    type Msg = FraudMsg;
    type State = Windows;
    type Arguments = ();

    /// Starts with no wave: the counts that outlive a minute are in the database.
    async fn pre_start(&self, _myself: ActorRef<FraudMsg>, _: ()) -> Result<Windows, ActorProcessingErr> {
        Ok(Windows::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<FraudMsg>,
        msg: FraudMsg,
        windows: &mut Windows,
    ) -> Result<(), ActorProcessingErr> {
        let now = Utc::now();
        let minute = TimeDelta::minutes(1);
        match msg {
            FraudMsg::Assess { checkout, reply } => {
                // Answered from a task: the actor does not wait for the commit, so screenings share batches.
                let (writer, rules, monitor) = (self.writer.clone(), self.rules, myself.clone());
                tokio::spawn(async move {
                    let checkout = Arc::new(checkout);
                    let step = || {
                        let checkout = checkout.clone();
                        crate::store::writer::step(move |txn| {
                            Box::pin(async move { screen(txn, &rules, &checkout, now).await })
                        })
                    };
                    let screened = writer.write_when_free(step).await;
                    match screened.map(|verdict| (verdict, &checkout.client)) {
                        Ok((verdict, client)) => {
                            if let Verdict::Block(reason) = &verdict {
                                tracing::warn!(%client, %reason, "checkout blocked by the fraud monitor");
                                let _ = monitor.cast(FraudMsg::Blocked);
                            }
                            let _ = reply.send(verdict);
                        }
                        // Unanswered, the caller refuses the checkout and asks for a retry.
                        Err(e) => tracing::warn!(error = %e, "checkout not screened"),
                    }
                });
            }
            FraudMsg::Blocked => {
                windows.platform_blocks.push(now);
                let wave = windows.platform_blocks.count_since(now, minute);
                self.breach("blocked checkouts", wave, self.rules.breach_blocks_per_minute, now).await?;
            }
            FraudMsg::Declined => {
                windows.platform_declines.push(now);
                let wave = windows.platform_declines.count_since(now, minute);
                self.breach("declines", wave, self.rules.breach_declines_per_minute, now).await?;
            }
            FraudMsg::SignatureFailed { provider, sender } => {
                windows.signature_failures.push(now);
                windows.signature_senders.insert(sender, now);
                windows.signature_senders.retain(|_, at| now - *at <= minute);
                let wave = windows.signature_failures.count_since(now, minute);
                let senders = windows.signature_senders.len();
                let kind = format!("{provider} webhooks with bad signatures from {senders} senders");
                if senders >= self.rules.breach_signature_senders {
                    self.breach(&kind, wave, self.rules.breach_signature_failures_per_minute, now).await?;
                } else if wave == self.rules.breach_signature_failures_per_minute {
                    // Few senders: worth a look, not a reason to stop everyone's payments.
                    let reason = format!("{wave} {kind} in a minute: too few senders to pause for");
                    let alert = json!({ "alert": "forged_webhooks", "reason": reason });
                    let key = format!("forged_webhooks:{provider}:{}", now.timestamp());
                    alerts::raise(&self.db, "forged_webhooks", key, alert).await?;
                }
            }
        }
        Ok(())
    }
}
