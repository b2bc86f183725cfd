//! The purchase actor: a thin shell around `domain::purchase`. Each input becomes one transaction; provider calls
//! happen after the commit and their answers come back as the next input.
use super::Context;
use crate::domain::failure::FailureCode;
use crate::domain::purchase::{Effect, Input, IntentStatus, IntentUpdate, Purchase, Rejected, Step};
use crate::domain::refund::RefundStatus;
use crate::guards::fraud::FraudMsg;
use crate::providers::{NewIntent, ProviderError};
use crate::store::purchases::{self, Applied, Cause, SaveError, Stored};
use crate::store::refunds;
use crate::store::writer::{self, Busy};
use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

pub type Reply = Result<Purchase, PurchaseError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PurchaseError {
    #[error(transparent)]
    Rejected(#[from] Rejected),
    #[error("purchase not found")]
    NotFound,
    #[error("storage error: {0}")]
    Store(String),
    #[error("the purchase actor is unavailable: {0}")]
    Unavailable(String),
    /// The actor did not answer in time; the input stays in its mailbox.
    #[error("the purchase is busy with an earlier input")]
    Busy,
}

impl From<sea_orm::DbErr> for PurchaseError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<SaveError> for PurchaseError {
    fn from(e: SaveError) -> Self {
        match e {
            e if e.busy() => Self::Busy,
            e => Self::Store(e.to_string()),
        }
    }
}

// Each value is built, moved once into its handler and consumed there: boxing the large variant would add an
// allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
pub enum PurchaseMsg {
    /// Persist a freshly opened purchase and start it.
    Open { step: Box<Step>, reply: RpcReplyPort<Reply> },
    /// Feed one input (API command, webhook, timer, admin command) to the state machine; its `cause` is recorded in
    /// the same transaction.
    Apply { input: Input, cause: Cause, reply: Option<RpcReplyPort<Reply>> },
    /// Stop if nothing happened since `version` was saved: the purchase waits on a person, its state and
    /// deadlines are persisted, and the next message re-hydrates it.
    Passivate { version: i64 },
}

pub enum Start {
    New,
    /// After a crash or a restart of the service: a provider call may have been cut off, so the actor reconciles
    /// (`Input::Recovered`).
    Recover(Uuid),
    /// Woken from passivation by a message, with its row as just read: it stopped cleanly, with nothing in flight, so
    /// it reads no provider. Should the row have moved since, its first step finds out (`apply`).
    Wake(Box<Stored>),
}

pub struct PurchaseActor {
    pub ctx: Arc<Context>,
}

pub struct State {
    stored: Option<Stored>,
    /// Started after a crash or restart: reconcile once started.
    recover: bool,
}

/// What an executed effect leads to.
// Each value is built, moved once into its handler and consumed there: boxing the large variant would add an
// allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
enum Next {
    Nothing,
    Input(Input),
    Effect(Effect),
}

impl Actor for PurchaseActor {
    type Msg = PurchaseMsg;
    type State = State;
    type Arguments = Start;

    async fn pre_start(&self, _myself: ActorRef<PurchaseMsg>, start: Start) -> Result<State, ActorProcessingErr> {
        let id = match start {
            Start::New => return Ok(State { stored: None, recover: false }),
            Start::Wake(stored) => return Ok(State { stored: Some(*stored), recover: false }),
            Start::Recover(id) => id,
        };
        let stored = purchases::load(&self.ctx.reads, id).await?.ok_or(PurchaseError::NotFound)?;
        Ok(State { stored: Some(stored), recover: true })
    }

    async fn post_start(&self, myself: ActorRef<PurchaseMsg>, state: &mut State) -> Result<(), ActorProcessingErr> {
        if let Some(stored) = &state.stored {
            for (timer, at) in stored.purchase.deadlines() {
                self.ctx.deadlines.schedule(stored.purchase.id, timer, at);
            }
            if state.recover {
                let _ = myself.send_message(PurchaseMsg::Apply {
                    input: Input::Recovered,
                    cause: Cause::Internal,
                    reply: None,
                });
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PurchaseMsg>,
        msg: PurchaseMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PurchaseMsg::Open { step, reply } => {
                let result = self.open(state, *step).await;
                let _ = reply.send(result);
            }
            PurchaseMsg::Apply { input, cause, reply } => {
                let result = self.run(state, input, cause).await;
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "purchase input not applied");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            PurchaseMsg::Passivate { version } => {
                if state.stored.as_ref().is_some_and(|s| s.version == version && s.purchase.status.waits_on_a_person())
                {
                    myself.stop(Some("idle".into()));
                }
                return Ok(());
            }
        }
        match &state.stored {
            // Finished purchases need no actor: stop, and a later message re-hydrates from the database.
            Some(stored) if stored.purchase.status.is_terminal() => {
                let purchase = &stored.purchase;
                self.ctx.deadlines.forget(purchase.id, crate::domain::purchase::Timer::Expiry, purchase.expires_at);
                myself.stop(Some("terminal".into()));
            }
            Some(stored) if stored.purchase.status.waits_on_a_person() => {
                let version = stored.version;
                myself.send_after(self.ctx.passivate_after, move || PurchaseMsg::Passivate { version });
            }
            _ => {}
        }
        Ok(())
    }
}

impl PurchaseActor {
    async fn open(&self, state: &mut State, step: Step) -> Reply {
        let provider = self.ctx.gateways.name(step.purchase.rail);
        let opened = step.purchase.clone();
        self.ctx
            .writer
            .write(move |txn| Box::pin(async move { purchases::insert_opened(txn, &opened, provider).await }))
            .await?;
        self.ctx.counters.purchase_entered(step.purchase.status.as_str());
        state.stored = Some(Stored { purchase: step.purchase, version: 0 });
        self.execute_all(state, step.effects).await
    }

    async fn run(&self, state: &mut State, input: Input, cause: Cause) -> Reply {
        let effects = self.apply(state, input, &cause).await?;
        self.execute_all(state, effects).await
    }

    /// Runs effects in order; a provider's answer is applied as the next input, whose effects join the queue.
    async fn execute_all(&self, state: &mut State, effects: Vec<Effect>) -> Reply {
        let mut queue = VecDeque::from(effects);
        while let Some(effect) = queue.pop_front() {
            let purchase = &state.stored.as_ref().ok_or(PurchaseError::NotFound)?.purchase;
            match self.execute(purchase, effect).await {
                Next::Nothing => {}
                Next::Effect(effect) => queue.push_back(effect),
                Next::Input(input) => queue.extend(self.apply(state, input, &Cause::Internal).await?),
            }
        }
        Ok(state.stored.as_ref().ok_or(PurchaseError::NotFound)?.purchase.clone())
    }

    /// One input, one transaction. The input is decided on the actor's copy; whatever writes goes to the writer, where
    /// the row is checked (and, if another node moved it, locked and decided on again: `purchases::apply`). An input
    /// that writes nothing only needs the copy to be current, which a read of its version settles.
    async fn apply(&self, state: &mut State, input: Input, cause: &Cause) -> Result<Vec<Effect>, PurchaseError> {
        let mut cached = state.stored.clone().ok_or(PurchaseError::NotFound)?;
        let decided = cached.purchase.on(input.clone(), Utc::now(), &self.ctx.policy);
        let writes = match &decided {
            Ok(step) => !step.is_noop(&cached.purchase) || purchases::leaves_trace(None, cause),
            Err(rejected) => purchases::leaves_trace(Some(rejected), cause),
        };
        if !writes {
            let fresh = purchases::load(&self.ctx.reads, cached.purchase.id).await?.ok_or(PurchaseError::NotFound)?;
            if fresh.version == cached.version {
                return decided.map(|_| vec![]).map_err(PurchaseError::from);
            }
            cached = fresh;
        }
        let (policy, provider, issuer) =
            (self.ctx.policy, self.ctx.gateways.name(cached.purchase.rail), &self.ctx.issuer);
        // Another node stepping this purchase holds its row: its batch commits within milliseconds, then this step
        // runs on the row as that one left it. Still busy after that, the caller is told to retry (503).
        let step = || {
            let (cached, input, cause, issuer) = (cached.clone(), input.clone(), cause.clone(), issuer.clone());
            writer::step(move |txn| {
                Box::pin(async move { purchases::apply(txn, cached, input, &policy, provider, &cause, &issuer).await })
            })
        };
        let applied = self.ctx.writer.write_when_free(step).await?;
        match applied {
            Applied::Unchanged { stored, rejected } => {
                self.ctx.finished.keep(&stored.purchase);
                state.stored = Some(stored);
                rejected.map_or(Ok(vec![]), |rejected| Err(rejected.into()))
            }
            Applied::Stepped { before, step, version } => {
                if step.purchase.status != before.status {
                    self.ctx.counters.purchase_entered(step.purchase.status.as_str());
                }
                if step.is_decline(&before) {
                    self.ctx.fraud.cast(FraudMsg::Declined);
                }
                // A retry the step settled (the create's watchdog, once the intent is known) need not wake it later.
                if let Some(retry) = before.next_retry.filter(|retry| step.purchase.next_retry != Some(*retry)) {
                    self.ctx.deadlines.forget(step.purchase.id, crate::domain::purchase::Timer::Retry, retry.at);
                }
                self.ctx.finished.keep(&step.purchase);
                state.stored = Some(Stored { purchase: step.purchase, version });
                Ok(step.effects)
            }
        }
    }

    async fn execute(&self, purchase: &Purchase, effect: Effect) -> Next {
        let gateways = &self.ctx.gateways;
        let rail = purchase.rail;
        // A pause holds the calls that move money: the call is parked as a deadline, not awaited here, so the actor
        // keeps answering its mailbox (API calls, syncs, webhooks) while payments are paused.
        let moves_money =
            matches!(effect, Effect::CreateIntent { .. } | Effect::ConfirmIntent { .. } | Effect::CancelIntent { .. });
        if moves_money && self.ctx.pauses.blocking(rail).is_some() {
            return Next::Input(Input::Held);
        }
        match effect {
            Effect::ArmTimer { timer, at } => {
                self.ctx.deadlines.schedule(purchase.id, timer, at);
                Next::Nothing
            }
            Effect::StartReversal { refund } => {
                self.start_reversal(refund).await;
                Next::Nothing
            }
            Effect::CheckReversal { refund } => match refunds::load(&self.ctx.db, refund).await {
                Ok(Some(stored)) if stored.refund.status == RefundStatus::Refunded => {
                    Next::Input(Input::ReversalRefunded)
                }
                Ok(_) => {
                    self.start_reversal(refund).await;
                    Next::Nothing
                }
                Err(e) => {
                    tracing::warn!(%refund, error = %e, "reversal not checked; the next sync will");
                    Next::Nothing
                }
            },
            Effect::CreateIntent { idempotency_key } => {
                let request = NewIntent {
                    purchase_id: purchase.id,
                    client: &purchase.client,
                    amount: purchase.price,
                    payment_method: purchase.payment_method.as_ref(),
                    save_method: purchase.save_method,
                    idempotency_key: &idempotency_key,
                };
                match self.ctx.provider_call(rail, "create_intent", gateways.create_intent(rail, request)).await {
                    Ok(update) => Next::Input(Input::IntentCreated(update)),
                    Err(ProviderError::Rejected { code, .. }) => {
                        Next::Input(Input::IntentRefused(FailureCode::from_provider(&code)))
                    }
                    Err(ProviderError::Unreachable(e) | ProviderError::Throttled(e)) => unreachable_provider(e),
                }
            }
            Effect::ConfirmIntent { intent_id, payment_method, idempotency_key } => {
                let confirm = gateways.confirm_intent(rail, &intent_id, payment_method.as_ref(), &idempotency_key);
                match self.ctx.provider_call(rail, "confirm_intent", confirm).await {
                    Ok(update) => Next::Input(Input::Provider(update)),
                    // The intent moved on without us (a webhook, a restart): ask where it is.
                    Err(ProviderError::Rejected { code, .. }) if code == "payment_intent_unexpected_state" => {
                        Next::Effect(Effect::RetrieveIntent { intent_id })
                    }
                    Err(ProviderError::Rejected { code, .. }) => Next::Input(Input::Provider(IntentUpdate {
                        intent_id,
                        status: IntentStatus::RequiresPaymentMethod,
                        client_secret: None,
                        next_action: None,
                        charge: None,
                        failure: Some(FailureCode::from_provider(&code)),
                        bank_debit: false,
                        funding_source: None,
                        paid: None,
                        seller_protection: None,
                        risk: None,
                        receipt_url: None,
                    })),
                    Err(ProviderError::Unreachable(e) | ProviderError::Throttled(e)) => unreachable_provider(e),
                }
            }
            Effect::RetrieveIntent { intent_id } => {
                match self.ctx.provider_call(rail, "retrieve_intent", gateways.retrieve_intent(rail, &intent_id)).await
                {
                    Ok(update) => Next::Input(Input::Provider(update)),
                    // Permanent: asking again under the same terms gets the same answer.
                    Err(ProviderError::Rejected { code, .. }) => Next::Input(Input::ProviderRefused { code }),
                    Err(ProviderError::Unreachable(e) | ProviderError::Throttled(e)) => unreachable_provider(e),
                }
            }
            Effect::CancelIntent { intent_id } => {
                match self.ctx.provider_call(rail, "cancel_intent", gateways.cancel_intent(rail, &intent_id)).await {
                    Ok(update) => Next::Input(Input::Provider(update)),
                    // Refused because it already succeeded or is processing: learn which.
                    Err(ProviderError::Rejected { .. }) => Next::Effect(Effect::RetrieveIntent { intent_id }),
                    Err(ProviderError::Unreachable(e) | ProviderError::Throttled(e)) => unreachable_provider(e),
                }
            }
        }
    }
}

impl PurchaseActor {
    /// Hands a reversal to its refund's actor. Should that fail, the refund row is there: the refund actors'
    /// recovery and the purchase's next sync start it again.
    async fn start_reversal(&self, refund: Uuid) {
        let started = match self.ctx.refunds() {
            Some(refunds) => refunds.start(refund).await,
            None => Err(crate::actors::refund::RefundError::Other("shutting down".into())),
        };
        if let Err(e) = started {
            tracing::warn!(%refund, error = %e, "reversal not started; recovery will start it");
        }
    }
}

fn unreachable_provider(error: String) -> Next {
    tracing::warn!(%error, "provider call failed; the purchase will reconcile");
    Next::Input(Input::ProviderUnreachable)
}
