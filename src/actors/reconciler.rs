//! The scheduled reconciler: on a timer, it syncs purchases that have waited on a provider for too long with no news
//! (a webhook that never came), as an admin's manual sync would. The longest-unsynced go first, each purchase backs
//! off on its own schedule (a bank debit: hourly, then daily), a few syncs run at once and every tick waits for its
//! own. A sync that finds news no webhook brought, or a card payment still processing, raises one admin alert
//! (AC9.6.7: "missed webhook → alert and sync").
use super::{Input, PurchaseActors};
use crate::domain::purchase::{Purchase, Settlement, Status};
use crate::store::{disputes, fraud_screenings, idempotency, rate_windows, reconcile};
use chrono::{TimeDelta, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Syncs in flight at once: enough to overlap provider latency, few enough not to crowd out client traffic.
const CONCURRENT_SYNCS: usize = 8;
/// Purchases looked at per tick; the rest wait for the next, oldest first.
const PER_TICK: u64 = 200;
/// How long a node's claim on the purchases it is syncing lasts (with several nodes, the others pass them by): longer
/// than a sync takes, short enough that a dead node's syncs are soon made by another.
const SYNC_CLAIM: TimeDelta = TimeDelta::minutes(2);
/// How long a node's claim on the one dispute it is reading lasts: longer than a read (one provider call, which the
/// Stripe client cuts off at 30 s, then a step), short enough that a dead node's dispute is soon read by another. A
/// read that outlasts it may be made twice, which is harmless: applying a provider's report is idempotent.
const DISPUTE_READ_CLAIM: std::time::Duration = std::time::Duration::from_secs(45);

#[derive(Clone)]
pub struct Reconciler {
    pub purchases: Arc<PurchaseActors>,
    pub every: Duration,
    /// How long a purchase may wait without news before it is synced.
    pub after: TimeDelta,
}

pub struct Tick;

impl Actor for Reconciler {
    type Msg = Tick;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<Tick>, _: ()) -> Result<(), ActorProcessingErr> {
        myself.send_interval(self.every, || Tick);
        Ok(())
    }

    async fn handle(&self, _myself: ActorRef<Tick>, _: Tick, _: &mut ()) -> Result<(), ActorProcessingErr> {
        // A database error skips this tick: the next one tries again, without a restart.
        if let Err(e) = self.tick().await {
            tracing::warn!(error = %e, "reconcile tick skipped");
        }
        Ok(())
    }
}

impl Reconciler {
    async fn tick(&self) -> Result<(), sea_orm::DbErr> {
        let db = &self.purchases.context().db;
        idempotency::purge_expired(db).await?;
        let now = Utc::now();
        fraud_screenings::purge(db, now).await?;
        rate_windows::purge(db, now).await?;
        let waiting = WAITING.map(Status::as_str);
        let due = reconcile::due(db, &waiting, now - self.after, now, PER_TICK).await?;
        let due = reconcile::claim(db, &due, now, now + SYNC_CLAIM).await?;
        let permits = Arc::new(Semaphore::new(CONCURRENT_SYNCS));
        let mut syncs = tokio::task::JoinSet::new();
        for id in due {
            let (purchases, permits, every) = (self.purchases.clone(), permits.clone(), self.every);
            syncs.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let synced = purchases.send(id, Input::Sync).await;
                if let Err(e) = &synced {
                    tracing::warn!(%id, error = %e, "scheduled sync failed");
                }
                let now = Utc::now();
                let alert = synced.as_ref().is_ok_and(missed_webhook);
                let next = |syncs| now + backoff(synced.as_ref().ok(), syncs, every);
                if let Err(e) = reconcile::synced(&purchases.context().db, id, now, next, alert).await {
                    tracing::warn!(%id, error = %e, "sync not recorded; it will come round again");
                }
            });
        }
        syncs.join_all().await;
        self.sync_disputes().await
    }

    /// Open disputes with no news for a while are read back from their provider, each by one node: a lost dispute
    /// whose webhook never came is debited all the same. Each read, or failed read, bumps the dispute's time, so it
    /// comes round again a window later.
    async fn sync_disputes(&self) -> Result<(), sea_orm::DbErr> {
        let ctx = self.purchases.context();
        let quiet = self.after.to_std().unwrap_or_default();
        // One claim at a time: a node that dies in the middle of a read holds that one dispute, for
        // `DISPUTE_READ_CLAIM`, instead of a tick's worth for minutes.
        for _ in 0..PER_TICK {
            let Some(dispute) = disputes::claim_stale_open(&ctx.db, quiet, DISPUTE_READ_CLAIM, 1).await?.pop() else {
                break;
            };
            if let Err(e) = super::disputes::sync(ctx, &dispute).await {
                tracing::warn!(dispute = %dispute.id, error = %e, "dispute sync failed; it will come round again");
                if let Err(e) = disputes::release(&ctx.db, &dispute.id).await {
                    tracing::warn!(dispute = %dispute.id, error = %e, "claim not given back; it runs out on its own");
                }
            }
        }
        Ok(())
    }
}

/// Waiting on a provider: the purchases the reconciler looks at.
const WAITING: [Status; 2] = [Status::RequiresAction, Status::Processing];

/// After a sync of a purchase that was waiting: did a webhook go missing? It did if the sync moved it on (the
/// provider had news we never got), or if a card payment is still processing past the window. A cardholder who has
/// not finished 3-D Secure, or a bank debit taking its days, is no missing webhook.
fn missed_webhook(purchase: &Purchase) -> bool {
    match purchase.status {
        Status::RequiresAction => false,
        Status::Processing => purchase.settling != Some(Settlement::BankDebit),
        _ => true,
    }
}

/// When a purchase synced `syncs` times is due again. A bank debit settles over days: hourly for a day, then daily.
/// Anything else doubles from the reconcile interval, up to an hour.
fn backoff(purchase: Option<&Purchase>, syncs: i32, every: Duration) -> TimeDelta {
    if purchase.is_some_and(|p| p.settling == Some(Settlement::BankDebit)) {
        return if syncs <= 24 { TimeDelta::hours(1) } else { TimeDelta::days(1) };
    }
    let every = TimeDelta::from_std(every).unwrap_or(TimeDelta::hours(1));
    (every * 2_i32.saturating_pow(syncs.clamp(1, 16) as u32 - 1)).min(TimeDelta::hours(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_back_off_doubling_up_to_an_hour() {
        let every = Duration::from_secs(60);
        let delays: Vec<i64> = (1..=8).map(|n| backoff(None, n, every).num_minutes()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
