//! Every purchase's timers (retry, expiry) in one supervised actor, so a purchase waiting on a person needs no actor
//! of its own: a sorted set of deadlines, and one wake-up for the earliest, which sends each deadline as an input
//! when it falls due, waking the purchase's actor from the database if it was passivated. A deadline costs a set
//! entry, not a task. The set is rebuilt from the purchases' persisted deadlines whenever the actor starts, so a
//! crash loses none.
use super::supervisor::PurchaseActors;
use super::tree::Named;
use crate::domain::purchase::{Input, Timer};
use crate::store::purchases;
use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use sea_orm::DatabaseConnection;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

/// (when, which purchase, which timer). Scheduling the same deadline twice keeps one.
type Entry = (DateTime<Utc>, Uuid, Timer);

pub enum DeadlineMsg {
    Schedule(Entry),
    /// Its purchase finished first: the deadline can no longer matter.
    Forget(Entry),
    /// The earliest deadline may have fallen due.
    Wake,
}

/// How the purchase actors reach the deadline actor, wherever its latest incarnation is.
#[derive(Clone)]
pub struct Deadlines {
    actor: Named<DeadlineMsg>,
    pending: Arc<AtomicUsize>,
}

impl Deadlines {
    pub fn new(actor: Named<DeadlineMsg>) -> Self {
        Self { actor, pending: Arc::default() }
    }

    pub fn schedule(&self, purchase: Uuid, timer: Timer, at: DateTime<Utc>) {
        self.actor.cast(DeadlineMsg::Schedule((at, purchase, timer)));
    }

    /// Drops a deadline that can no longer matter, so a finished purchase is not woken for nothing.
    pub fn forget(&self, purchase: Uuid, timer: Timer, at: DateTime<Utc>) {
        self.actor.cast(DeadlineMsg::Forget((at, purchase, timer)));
    }

    /// Deadlines waiting to fall due, for `/metrics`.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// The actor behind these handles, to start under the supervision tree.
    pub fn queue(&self, db: DatabaseConnection, purchases: Arc<PurchaseActors>) -> DeadlineQueue {
        DeadlineQueue { db, purchases, pending: self.pending.clone() }
    }
}

#[derive(Clone)]
pub struct DeadlineQueue {
    db: DatabaseConnection,
    purchases: Arc<PurchaseActors>,
    pending: Arc<AtomicUsize>,
}

pub struct Queue {
    entries: BTreeSet<Entry>,
    /// When the wake-up already asked for falls, so a later deadline does not ask for another.
    armed: Option<DateTime<Utc>>,
}

impl Queue {
    /// Asks for a wake-up at the earliest deadline unless one at or before it is already asked for.
    fn arm(&mut self, myself: &ActorRef<DeadlineMsg>) {
        let Some(&(at, _, _)) = self.entries.first() else { return };
        if self.armed.is_some_and(|armed| armed <= at) {
            return;
        }
        self.armed = Some(at);
        myself.send_after((at - Utc::now()).to_std().unwrap_or_default(), || DeadlineMsg::Wake);
    }
}

impl Actor for DeadlineQueue {
    type Msg = DeadlineMsg;
    type State = Queue;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<DeadlineMsg>, _: ()) -> Result<Queue, ActorProcessingErr> {
        let mut entries = BTreeSet::new();
        for stored in purchases::unfinished(&self.db).await? {
            let id = stored.purchase.id;
            entries.extend(stored.purchase.deadlines().into_iter().map(|(timer, at)| (at, id, timer)));
        }
        let mut queue = Queue { entries, armed: None };
        queue.arm(&myself);
        self.pending.store(queue.entries.len(), Ordering::Relaxed);
        Ok(queue)
    }

    async fn handle(
        &self,
        myself: ActorRef<DeadlineMsg>,
        msg: DeadlineMsg,
        queue: &mut Queue,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DeadlineMsg::Schedule(entry) => {
                queue.entries.insert(entry);
            }
            DeadlineMsg::Forget(entry) => {
                queue.entries.remove(&entry);
            }
            DeadlineMsg::Wake => {
                queue.armed = None;
                let now = Utc::now();
                while let Some(&(at, purchase, timer)) = queue.entries.first() {
                    if at > now {
                        break;
                    }
                    queue.entries.pop_first();
                    let input = match timer {
                        Timer::Expiry => Input::ExpiryDue,
                        Timer::Retry => Input::RetryDue,
                    };
                    // Not awaited here: one slow purchase must not hold back everyone else's deadlines.
                    let purchases = self.purchases.clone();
                    tokio::spawn(async move {
                        if let Err(e) = purchases.send(purchase, input).await {
                            tracing::warn!(%purchase, error = %e, "a purchase's deadline was not applied");
                        }
                    });
                }
            }
        }
        queue.arm(&myself);
        self.pending.store(queue.entries.len(), Ordering::Relaxed);
        Ok(())
    }
}
