//! Every purchase's timers (retry, expiry) in one place, so a purchase waiting on a person needs no actor: a
//! sorted set of deadlines and one task that sends each as an input when it falls due, waking the actor from the
//! database if it was passivated. A deadline costs a set entry, not a task.
use super::supervisor::PurchaseActors;
use crate::domain::purchase::{Input, Timer};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;
use uuid::Uuid;

/// (when, which purchase, which timer: 0 expiry, 1 retry). Scheduling the same deadline twice keeps one.
type Entry = (DateTime<Utc>, Uuid, u8);

/// `true` adds the deadline, `false` forgets it (its purchase finished first).
type Change = (Entry, bool);

#[derive(Clone)]
pub struct Deadlines {
    schedule: mpsc::UnboundedSender<Change>,
    pending: Arc<AtomicUsize>,
}

pub struct DeadlineQueue {
    receive: mpsc::UnboundedReceiver<Change>,
    pending: Arc<AtomicUsize>,
}

pub fn deadlines() -> (Deadlines, DeadlineQueue) {
    let (schedule, receive) = mpsc::unbounded_channel();
    let pending = Arc::new(AtomicUsize::new(0));
    (Deadlines { schedule, pending: pending.clone() }, DeadlineQueue { receive, pending })
}

impl Deadlines {
    pub fn schedule(&self, purchase: Uuid, timer: Timer, at: DateTime<Utc>) {
        let _ = self.schedule.send((entry(purchase, timer, at), true));
    }

    /// Drops a deadline that can no longer matter, so a finished purchase is not woken for nothing.
    pub fn forget(&self, purchase: Uuid, timer: Timer, at: DateTime<Utc>) {
        let _ = self.schedule.send((entry(purchase, timer, at), false));
    }

    /// Deadlines waiting to fall due, for `/metrics`.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

fn entry(purchase: Uuid, timer: Timer, at: DateTime<Utc>) -> Entry {
    let kind = match timer {
        Timer::Expiry => 0,
        Timer::Retry => 1,
    };
    (at, purchase, kind)
}

impl DeadlineQueue {
    /// Runs until every `Deadlines` handle is dropped.
    pub async fn run(mut self, purchases: Arc<PurchaseActors>) {
        let mut queue: BTreeSet<Entry> = BTreeSet::new();
        loop {
            let next = queue.first().map(|(at, _, _)| (*at - Utc::now()).to_std().unwrap_or_default());
            let sleep = tokio::time::sleep(next.unwrap_or(std::time::Duration::from_secs(3600)));
            tokio::select! {
                change = self.receive.recv() => match change {
                    Some((entry, true)) => {
                        queue.insert(entry);
                    }
                    Some((entry, false)) => {
                        queue.remove(&entry);
                    }
                    None => return,
                },
                _ = sleep, if next.is_some() => {
                    let now = Utc::now();
                    while let Some(&(at, purchase, kind)) = queue.first() {
                        if at > now {
                            break;
                        }
                        queue.pop_first();
                        let input = if kind == 0 { Input::ExpiryDue } else { Input::RetryDue };
                        let purchases = purchases.clone();
                        tokio::spawn(async move {
                            if let Err(e) = purchases.send(purchase, input).await {
                                tracing::warn!(%purchase, error = %e, "a purchase's deadline was not applied");
                            }
                        });
                    }
                }
            }
            self.pending.store(queue.len(), Ordering::Relaxed);
        }
    }
}
