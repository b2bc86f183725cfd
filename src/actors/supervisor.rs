//! Spawns purchase actors under one supervisor, finds the running one for a purchase (or re-hydrates it from the
//! database), restarts crashed ones, and brings every unfinished purchase back after a restart.
use super::purchase::{PurchaseActor, PurchaseError, PurchaseMsg, Reply, Start};
use super::{Context, RowActor};
use crate::domain::purchase::{Input, Purchase, Step};
use crate::store::purchases::{self, AdminAction, Cause, Stored};
use crate::store::webhooks;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use std::sync::Arc;
use uuid::Uuid;

pub struct Supervisor {
    ctx: Arc<Context>,
}

impl Actor for Supervisor {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        // A crash, or a kill (which stops an actor mid-work just as abruptly); a stop of its own ("idle",
        // "terminal") is not restarted.
        let (cell, error) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (Some(cell), error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, Some(reason)) if reason == "killed" => (Some(cell), reason),
            _ => (None, String::new()),
        };
        if let Some(cell) = cell {
            let name = cell.get_name().unwrap_or_default();
            let named = self.ctx.actor_named(&name);
            if let Some((RowActor::Refund, id)) = named {
                tracing::error!(%id, %error, "refund actor crashed; restarting it from its persisted state");
                // Its recovery input makes the provider call it may still owe, under the same idempotency key.
                let restarted = match self.ctx.refunds() {
                    Some(refunds) => refunds.start(id).await,
                    None => Ok(()),
                };
                if let Err(e) = restarted {
                    tracing::error!(%id, error = %e, "refund actor could not be restarted; the next message will retry");
                }
                return Ok(());
            }
            let Some((RowActor::Purchase, id)) = named else {
                return Ok(());
            };
            tracing::error!(%id, %error, "purchase actor crashed; restarting it from its persisted state");
            if let Err(e) = spawn(&self.ctx, myself.get_cell(), Start::Recover(id), Some(id)).await {
                tracing::error!(%id, error = %e, "purchase actor could not be restarted; the next message will retry");
            }
        }
        Ok(())
    }
}

async fn spawn(
    ctx: &Arc<Context>,
    supervisor: ActorCell,
    start: Start,
    id: Option<Uuid>,
) -> Result<ActorRef<PurchaseMsg>, PurchaseError> {
    let actor = PurchaseActor { ctx: ctx.clone() };
    match Actor::spawn_linked(id.map(|id| ctx.purchase_actor(id)), actor, start, supervisor).await {
        Ok((actor, _)) => Ok(actor),
        // Someone else started it first: use theirs.
        Err(SpawnErr::ActorAlreadyRegistered(name)) => {
            ActorRef::where_is(name).ok_or_else(|| PurchaseError::Unavailable("actor vanished while starting".into()))
        }
        Err(SpawnErr::StartupFailed(e))
            if e.downcast_ref::<PurchaseError>().is_some_and(|e| matches!(e, PurchaseError::NotFound)) =>
        {
            Err(PurchaseError::NotFound)
        }
        Err(e) => Err(PurchaseError::Unavailable(e.to_string())),
    }
}

/// The API's handle on purchase actors.
pub struct PurchaseActors {
    ctx: Arc<Context>,
    supervisor: ActorRef<()>,
}

impl PurchaseActors {
    pub async fn start(ctx: Arc<Context>) -> Result<Self, String> {
        let (supervisor, _) = Actor::spawn(None, Supervisor { ctx: ctx.clone() }, ())
            .await
            .map_err(|e| format!("purchase supervisor: {e}"))?;
        Ok(Self { ctx, supervisor })
    }

    pub fn supervisor(&self) -> ActorCell {
        self.supervisor.get_cell()
    }

    pub fn context_arc(&self) -> Arc<Context> {
        self.ctx.clone()
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    pub fn is_running(&self) -> bool {
        self.supervisor.get_status() == ractor::ActorStatus::Running
    }

    /// Brings every unfinished purchase back: an actor started for each one a provider holds (unknown outcomes are
    /// reconciled). Purchases waiting on a person get their actor when something happens to them, or when a
    /// deadline the deadline actor read back falls due. Returns (unfinished, actors started).
    pub async fn recover(&self) -> Result<(usize, usize), PurchaseError> {
        let unfinished = purchases::unfinished(&self.ctx.db).await?;
        let mut started = 0;
        for stored in &unfinished {
            let purchase = &stored.purchase;
            // A reversal in flight has work left (the refund to see through), though the purchase waits on no one.
            if !purchase.status.waits_on_a_person() || purchase.reversal.is_some() {
                spawn(&self.ctx, self.supervisor.get_cell(), Start::Recover(purchase.id), Some(purchase.id)).await?;
                started += 1;
            }
        }
        Ok((unfinished.len(), started))
    }

    pub async fn open(&self, step: Step) -> Reply {
        let id = step.purchase.id;
        let actor = spawn(&self.ctx, self.supervisor.get_cell(), Start::New, Some(id)).await?;
        let timeout = Some(self.ctx.call_timeout);
        outcome(actor.call(|reply| PurchaseMsg::Open { step: Box::new(step), reply }, timeout).await)
    }

    pub async fn send(&self, id: Uuid, input: Input) -> Reply {
        self.deliver(id, input, Cause::Internal, None).await
    }

    /// `send` for a purchase the caller has just read from the read pool (a confirm finds its purchase by intent):
    /// an actor woken for it starts from that row rather than reading it again. The row is as fresh as the read
    /// `deliver` would make, and the version fences it the same way.
    pub async fn send_read(&self, stored: Stored, input: Input) -> Reply {
        self.deliver(stored.purchase.id, input, Cause::Internal, Some(stored)).await
    }

    /// An admin's command, audited in the transaction of the step it causes.
    pub async fn command(&self, id: Uuid, input: Input, action: AdminAction) -> Reply {
        self.deliver(id, input, Cause::Admin(action), None).await
    }

    /// Routes a stored webhook event to its purchase; the actor marks the inbox row when it has applied it.
    pub async fn deliver_webhook(&self, id: Uuid, input: Input, event_row: i64) {
        if let Err(e) = self.deliver(id, input, Cause::Webhook(event_row), None).await {
            tracing::warn!(%id, error = %e, "webhook event not applied");
            let status = if matches!(e, PurchaseError::NotFound) {
                webhooks::InboxStatus::Unroutable
            } else {
                webhooks::InboxStatus::Failed
            };
            let _ = webhooks::mark(&self.ctx.db, event_row, status, Some(e.to_string())).await;
        }
    }

    async fn deliver(&self, id: Uuid, input: Input, cause: Cause, read: Option<Stored>) -> Reply {
        // A purchase with no actor alive is read once (or not at all when the caller has `read` it): a finished one
        // is answered from its row (the webhook that follows a confirm, typically) without waking an actor, and an
        // unfinished one wakes its actor with that row. One this node has seen finish is not read at all
        // (`Context::finished`).
        let mut asleep = match ActorRef::<PurchaseMsg>::where_is(self.ctx.purchase_actor(id)) {
            Some(_) => None,
            None => {
                if let Some(finished) = self.ctx.finished.get(id)
                    && let Some(answer) = self.answer_finished(&finished, &input, &cause).await?
                {
                    return answer;
                }
                let stored = match read {
                    Some(stored) => self.kept(stored),
                    None => self.load(id).await?,
                };
                if let Some(finished) = self.answer_finished(&stored.purchase, &input, &cause).await? {
                    return finished;
                }
                Some(stored)
            }
        };
        // A finished purchase stops its actor, and messages queued behind the one that finished it are dropped. A
        // finished purchase never changes again, so those inputs are answered from its persisted state; any other
        // stop (a crash) is waited out until the supervisor or the next lookup brings the actor back.
        let mut last = PurchaseError::Unavailable("not attempted".into());
        for attempt in 0..50u64 {
            let actor = self.actor(id, asleep.take()).await?;
            let message = input.clone();
            let message_cause = cause.clone();
            let reply = actor.call(
                |reply| PurchaseMsg::Apply { input: message, cause: message_cause, reply: Some(reply) },
                Some(self.ctx.call_timeout),
            );
            match outcome(reply.await) {
                Err(PurchaseError::Unavailable(e)) => last = PurchaseError::Unavailable(e),
                // Anything else is an answer; `Busy` too: the input is queued, and sending it again would apply it
                // twice.
                answered => return answered,
            }
            if let Some(purchase) = self.finished(id).await?
                && let Some(finished) = self.answer_finished(&purchase, &input, &cause).await?
            {
                return finished;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2 * attempt)).await;
        }
        Err(last)
    }

    /// The purchase, when it is finished: an input to it is then answered from this row (it never changes again), as
    /// `answer_finished` does, whether or not its actor is still stopping.
    pub async fn finished(&self, id: Uuid) -> Result<Option<Purchase>, sea_orm::DbErr> {
        if let Some(finished) = self.ctx.finished.get(id) {
            return Ok(Some(finished));
        }
        let stored = purchases::load(&self.ctx.reads, id).await?;
        if let Some(stored) = &stored {
            self.ctx.finished.keep(&stored.purchase);
        }
        Ok(stored.map(|s| s.purchase).filter(|purchase| purchase.status.is_terminal()))
    }

    /// `finished` for news of a purchase that has just come in (a webhook, before it is acknowledged): a purchase whose
    /// actor is awake on this node is not read, since the news goes to that actor, which holds the purchase. That is
    /// the usual case (a provider's webhook follows the confirm within milliseconds), and keeps a read off the
    /// acknowledgement's path.
    pub async fn settled(&self, id: Uuid) -> Result<Option<Purchase>, sea_orm::DbErr> {
        if self.ctx.finished.get(id).is_none()
            && ActorRef::<PurchaseMsg>::where_is(self.ctx.purchase_actor(id)).is_some()
        {
            return Ok(None);
        }
        self.finished(id).await
    }

    /// The purchase's row; one found finished is kept (`Context::finished`).
    async fn load(&self, id: Uuid) -> Result<Stored, PurchaseError> {
        let stored = purchases::load(&self.ctx.reads, id).await?.ok_or(PurchaseError::NotFound)?;
        Ok(self.kept(stored))
    }

    fn kept(&self, stored: Stored) -> Stored {
        self.ctx.finished.keep(&stored.purchase);
        stored
    }

    /// The answer for a purchase in a terminal state, straight from the state machine: it never changes them.
    async fn answer_finished(
        &self,
        purchase: &Purchase,
        input: &Input,
        cause: &Cause,
    ) -> Result<Option<Reply>, PurchaseError> {
        if !purchase.status.is_terminal() {
            return Ok(None);
        }
        let answer = purchase.on(input.clone(), chrono::Utc::now(), &self.ctx.policy);
        if purchases::leaves_trace(answer.as_ref().err(), cause) {
            self.ctx.record_unchanged(purchase, input.name(), cause).await?;
        }
        Ok(Some(answer.map(|step| step.purchase).map_err(PurchaseError::from)))
    }

    /// The purchase's live actor, or one woken from `asleep` (the row as last read), else from the database.
    async fn actor(&self, id: Uuid, asleep: Option<Stored>) -> Result<ActorRef<PurchaseMsg>, PurchaseError> {
        if let Some(actor) = ActorRef::where_is(self.ctx.purchase_actor(id)) {
            return Ok(actor);
        }
        let stored = match asleep {
            Some(stored) => stored,
            None => self.load(id).await?,
        };
        spawn(&self.ctx, self.supervisor.get_cell(), Start::Wake(Box::new(stored)), Some(id)).await
    }

    pub async fn shutdown(&self) {
        self.supervisor.stop_children_and_wait(None, Some(std::time::Duration::from_secs(5))).await;
        self.supervisor.stop(None);
    }
}

fn outcome<E: std::fmt::Display>(result: Result<CallResult<Reply>, E>) -> Reply {
    match result {
        Ok(CallResult::Success(reply)) => reply,
        Ok(CallResult::Timeout) => Err(PurchaseError::Busy),
        Ok(CallResult::SenderError) => {
            Err(PurchaseError::Unavailable("the purchase actor stopped before answering".into()))
        }
        Err(e) => Err(PurchaseError::Unavailable(e.to_string())),
    }
}
