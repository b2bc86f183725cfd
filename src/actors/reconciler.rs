//! The scheduled reconciler: on a timer, it finds purchases that have waited on a provider for too long with no
//! news (a webhook that never came) and syncs each with the provider's truth, as an admin's manual sync would.
use super::{Input, PurchaseActors};
use crate::store::purchases;
use chrono::{TimeDelta, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use std::time::Duration;

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
        let db = &self.purchases.context().db;
        crate::store::idempotency::purge_expired(db).await?;
        let stale = purchases::stale(db, Utc::now() - self.after, 200).await?;
        for id in stale {
            let purchases = self.purchases.clone();
            // Each sync may wait on a provider; none should hold up the others or the next tick.
            tokio::spawn(async move {
                if let Err(e) = purchases.send(id, Input::Sync).await {
                    tracing::warn!(%id, error = %e, "scheduled sync failed");
                }
            });
        }
        Ok(())
    }
}
