//! The inbox sweep as a supervised actor: events that failed, or whose routing died with a node (this one before a
//! restart, or another), are claimed and routed again, so none waits for the provider's retry (or is lost when the
//! retries end). It keeps nothing in memory: the claims are in the inbox's rows, so a restarted sweep carries on
//! from the database.
use super::inbox::Inbox;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::time::Duration;

#[derive(Clone)]
pub struct InboxSweep {
    pub inbox: Inbox,
    /// The pause between the end of one round and the start of the next.
    pub every: Duration,
}

pub struct Round;

impl Actor for InboxSweep {
    type Msg = Round;
    type State = ();
    type Arguments = ();

    /// The first round at once: events left by a crash are applied as the service starts.
    async fn pre_start(&self, myself: ActorRef<Round>, _: ()) -> Result<(), ActorProcessingErr> {
        myself.send_message(Round)?;
        Ok(())
    }

    /// The next round is asked for once this one is done, so a slow round never piles rounds up behind it.
    async fn handle(&self, myself: ActorRef<Round>, _: Round, _: &mut ()) -> Result<(), ActorProcessingErr> {
        self.inbox.sweep().await;
        myself.send_after(self.every, || Round);
        Ok(())
    }
}
