//! The fraud monitor actor: it scores every checkout before a provider is called and hears every decline and every
//! webhook that fails verification. A checkout over a rule is blocked; a burst across the platform (a card-testing
//! wave, a spike of blocked checkouts, forged webhooks) raises an admin alert and pauses payment processing until an
//! admin resumes it (AC9.3.4, AC9.3.7).
use super::pause::{Pauses, Scope};
use crate::domain::failure::FailureCode;
use crate::domain::fraud::{FraudRules, Signals, Verdict, Window, assess};
use crate::domain::purchase::Rail;
use crate::store::alerts;
use chrono::{DateTime, TimeDelta, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

/// A checkout about to reach a provider.
pub struct Screening {
    pub client: String,
    pub amount: i64,
    /// The provider's payment method id (the Radar test methods are told apart by it).
    pub method: Option<String>,
    /// The card behind the method, for velocity: Stripe's card fingerprint, the same for every method made from one
    /// card number (each Stripe.js tokenization makes a new method); the method id where no fingerprint is known.
    pub card: Option<String>,
    pub ip: Option<IpAddr>,
}

pub enum FraudMsg {
    Assess { checkout: Screening, reply: RpcReplyPort<Verdict> },
    Declined { client: String },
    SignatureFailed { provider: &'static str, sender: IpAddr },
}

#[derive(Clone)]
pub struct FraudMonitor {
    pub rules: FraudRules,
    pub db: DatabaseConnection,
    pub pauses: Arc<Pauses>,
}

#[derive(Default)]
pub struct Windows {
    checkouts: HashMap<String, Window>,
    declines: HashMap<String, Window>,
    by_ip: HashMap<IpAddr, Window>,
    by_card: HashMap<String, Window>,
    /// Per client, the cards used and when each was last used.
    cards: HashMap<String, HashMap<String, DateTime<Utc>>>,
    platform_declines: Window,
    platform_blocks: Window,
    signature_failures: Window,
    /// When each sender last failed verification.
    signature_senders: HashMap<IpAddr, DateTime<Utc>>,
    messages: u64,
}

fn count<K: Eq + Hash>(windows: &mut HashMap<K, Window>, key: Option<K>, now: DateTime<Utc>) -> usize {
    key.map_or(0, |key| windows.entry(key).or_default().count_since(now, TimeDelta::hours(1)))
}

fn push<K: Eq + Hash>(windows: &mut HashMap<K, Window>, key: Option<K>, now: DateTime<Utc>) {
    if let Some(key) = key {
        windows.entry(key).or_default().push(now);
    }
}

impl Windows {
    fn assess(&mut self, rules: &FraudRules, checkout: &Screening, now: DateTime<Utc>) -> Verdict {
        let hour = TimeDelta::hours(1);
        let client = Some(checkout.client.clone());
        let card = checkout.card.clone();
        let cards = self.cards.entry(checkout.client.clone()).or_default();
        cards.retain(|_, last| now - *last < hour);
        let signals = Signals {
            amount: checkout.amount,
            method: checkout.method.as_deref(),
            client_checkouts: count(&mut self.checkouts, client.clone(), now),
            client_declines: count(&mut self.declines, client.clone(), now),
            ip_checkouts: count(&mut self.by_ip, checkout.ip, now),
            card_checkouts: count(&mut self.by_card, card.clone(), now),
            client_cards: cards.len() + usize::from(card.as_ref().is_some_and(|c| !cards.contains_key(c))),
        };
        let verdict = assess(rules, &signals);
        if matches!(verdict, Verdict::Block(_)) {
            self.platform_blocks.push(now);
        } else {
            push(&mut self.checkouts, client, now);
            push(&mut self.by_ip, checkout.ip, now);
            if let Some(card) = card {
                cards.insert(card.clone(), now);
                push(&mut self.by_card, Some(card), now);
            }
        }
        verdict
    }

    /// Forgets keys with no event left in their window, so a long run does not keep every client ever seen.
    fn prune(&mut self, now: DateTime<Utc>) {
        let hour = TimeDelta::hours(1);
        self.checkouts.retain(|_, w| w.count_since(now, hour) > 0);
        self.declines.retain(|_, w| w.count_since(now, hour) > 0);
        self.by_ip.retain(|_, w| w.count_since(now, hour) > 0);
        self.by_card.retain(|_, w| w.count_since(now, hour) > 0);
        self.cards.retain(|_, cards| {
            cards.retain(|_, last| now - *last < hour);
            !cards.is_empty()
        });
    }
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
        // The alert first: whoever sees the pause finds its alert already there.
        let alert = json!({ "alert": "breach", "reason": reason });
        alerts::raise(&self.db, "breach", format!("breach:{kind}:{}", now.timestamp()), alert).await?;
        self.pauses.set(Scope::Platform, true, &reason, "fraud-monitor").await?;
        Ok(())
    }
}

impl Actor for FraudMonitor {
    type Msg = FraudMsg;
    type State = Windows;
    type Arguments = ();

    /// Starts with the last hour's checkouts and declines read back from the purchases, so that a restart does not
    /// wipe a client's count. (Networks and cards are not stored with a purchase; their windows start empty.)
    async fn pre_start(&self, _myself: ActorRef<FraudMsg>, _: ()) -> Result<Windows, ActorProcessingErr> {
        let opened = crate::store::purchases::opened_since(&self.db, Utc::now() - TimeDelta::hours(1)).await?;
        let mut windows = Windows::default();
        let mut declines = Vec::new();
        for (client, opened_at, failure, failed_at) in opened {
            if failure.map(FailureCode::from).is_some_and(|f| f.is_decline()) {
                declines.push((failed_at, client.clone()));
            }
            push(&mut windows.checkouts, Some(client), opened_at);
        }
        declines.sort();
        for (failed_at, client) in declines {
            push(&mut windows.declines, Some(client), failed_at);
        }
        Ok(windows)
    }

    async fn handle(
        &self,
        _myself: ActorRef<FraudMsg>,
        msg: FraudMsg,
        windows: &mut Windows,
    ) -> Result<(), ActorProcessingErr> {
        let now = Utc::now();
        let minute = TimeDelta::minutes(1);
        windows.messages += 1;
        if windows.messages % 4096 == 0 {
            windows.prune(now);
        }
        match msg {
            FraudMsg::Assess { checkout, reply } => {
                let verdict = windows.assess(&self.rules, &checkout, now);
                if let Verdict::Block(reason) = &verdict {
                    tracing::warn!(client = %checkout.client, %reason, "checkout blocked by the fraud monitor");
                    let wave = windows.platform_blocks.count_since(now, minute);
                    self.breach("blocked checkouts", wave, self.rules.breach_blocks_per_minute, now).await?;
                }
                let _ = reply.send(verdict);
            }
            FraudMsg::Declined { client } => {
                windows.declines.entry(client).or_default().push(now);
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
