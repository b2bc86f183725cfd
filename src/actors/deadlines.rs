//! Every purchase's timers (retry, expiry) in one supervised actor, so a purchase waiting on a person needs no actor
//! of its own: a sorted set of deadlines, and one wake-up for the earliest, which sends each deadline as an input
//! when it falls due, waking the purchase's actor from the database if it was passivated. A deadline costs a set
//! entry, not a task. The set is rebuilt from the purchases' persisted deadlines whenever the actor starts, so a
//! crash loses none.
//!
//! With several nodes a purchase's timers live on the node that last stepped it, and die with it. Each purchase's
//! next deadline is also a column written by every step (`next_due_at`), and every node sweeps it (every
//! `payments.deadline_sweep`): what is overdue by more than one sweep is claimed (`purchases::claim_due`) and fired
//! here. A deadline fired twice (by two nodes that both read it back at start) is harmless: the second input finds
//! the purchase moved on, under its row lock.
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
    /// Take over the deadlines no node fired.
    Sweep,
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
    pub fn queue(&self, db: DatabaseConnection, purchases: Arc<PurchaseActors>, sweep: Sweep) -> DeadlineQueue {
        DeadlineQueue { db, purchases, pending: self.pending.clone(), sweep }
    }
}

/// How this node takes over deadlines no node fired: how often it looks (also how overdue one must be), and how long
/// its claim lasts.
#[derive(Clone, Copy)]
pub struct Sweep {
    pub every: std::time::Duration,
    pub claim: std::time::Duration,
}

#[derive(Clone)]
pub struct DeadlineQueue {
    db: DatabaseConnection,
    purchases: Arc<PurchaseActors>,
    pending: Arc<AtomicUsize>,
    sweep: Sweep,
}

impl DeadlineQueue {
    /// Not awaited by the actor: one slow purchase must not hold back everyone else's deadlines.
    fn fire(&self, purchase: Uuid, timer: Timer) {
        let input = match timer {
            Timer::Expiry => Input::ExpiryDue,
            Timer::Retry => Input::RetryDue,
        };
        let purchases = self.purchases.clone();
        tokio::spawn(async move {
            if let Err(e) = purchases.send(purchase, input).await {
                tracing::warn!(%purchase, error = %e, "a purchase's deadline was not applied");
            }
        });
    }

    async fn take_over(&self) -> Result<(), sea_orm::DbErr> {
        let now = Utc::now();
        for stored in purchases::claim_due(&self.db, self.sweep.every, self.sweep.claim, 100).await? {
            let due: Vec<_> = stored.purchase.deadlines().into_iter().filter(|(_, at)| *at <= now).collect();
            if due.is_empty() {
                purchases::reschedule(&self.db, &stored).await?;
            }
            for (timer, _) in due {
                tracing::info!(purchase = %stored.purchase.id, ?timer, "firing a deadline no node fired");
                self.fire(stored.purchase.id, timer);
            }
        }
        Ok(())
    }
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
        myself.send_interval(self.sweep.every, || DeadlineMsg::Sweep);
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
                    self.fire(purchase, timer);
                }
            }
            DeadlineMsg::Sweep => {
                if let Err(e) = self.take_over().await {
                    tracing::warn!(error = %e, "the deadline sweep failed; the next one tries again");
                }
            }
        }
        queue.arm(&myself);
        self.pending.store(queue.entries.len(), Ordering::Relaxed);
        Ok(())
    }
}
