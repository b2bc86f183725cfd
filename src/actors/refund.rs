//! The refund actor: a thin shell around `domain::refund`, like the purchase actor. It lives while a refund has work
//! (an admin decision to apply, a provider refund to make) and stops otherwise; the next message re-hydrates it.
use super::{Context, PurchaseActors};
use crate::domain::ids::new_key;
use crate::domain::purchase::Input;
use crate::domain::purchase::Purchase;
use crate::domain::refund::{
    Books, Refund, RefundAsk, RefundEffect, RefundInput, RefundPolicy, RefundRejected, RequestRejected,
};
use crate::providers::{NewRefund, ProviderError, RefundOutcome};
use crate::store::purchases;
use crate::store::refunds::{self, RefundStoreError, StoredRefund};
use chrono::{DateTime, Utc};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RefundError {
    #[error(transparent)]
    Request(#[from] RequestRejected),
    #[error(transparent)]
    Rejected(#[from] RefundRejected),
    #[error("refund request not found")]
    NotFound,
    #[error("no such transaction for this account")]
    PurchaseNotFound,
    /// The actor did not answer in time; the input stays in its mailbox.
    #[error("the refund is busy with an earlier input")]
    Busy,
    #[error("{0}")]
    Other(String),
}

impl From<sea_orm::DbErr> for RefundError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Other(e.to_string())
    }
}

impl From<RefundStoreError> for RefundError {
    fn from(e: RefundStoreError) -> Self {
        match e {
            RefundStoreError::CreditsSpent => Self::Rejected(RefundRejected::NothingLeft),
            RefundStoreError::Rejected(rejected) => Self::Rejected(rejected),
            RefundStoreError::Request(rejected) => Self::Request(rejected),
            other => Self::Other(other.to_string()),
        }
    }
}

pub type RefundReply = Result<Refund, RefundError>;

pub struct Apply {
    input: RefundInput,
    /// The inbox row of the webhook that brought `input`, marked applied by its step.
    webhook: Option<i64>,
    reply: Option<RpcReplyPort<RefundReply>>,
}

struct RefundActor {
    ctx: Arc<Context>,
    policy: RefundPolicy,
    purchases: Arc<PurchaseActors>,
}

impl Actor for RefundActor {
    type Msg = Apply;
    type State = StoredRefund;
    type Arguments = Uuid;

    async fn pre_start(&self, myself: ActorRef<Apply>, id: Uuid) -> Result<StoredRefund, ActorProcessingErr> {
        let stored = refunds::load(&self.ctx.db, id).await?.ok_or(RefundError::NotFound)?;
        if let Some(at) = stored.refund.retry_at {
            arm(&myself, at);
        }
        Ok(stored)
    }

    async fn handle(
        &self,
        myself: ActorRef<Apply>,
        msg: Apply,
        state: &mut StoredRefund,
    ) -> Result<(), ActorProcessingErr> {
        let result = self.run(&myself, state, msg.input, msg.webhook).await;
        if let Some(reply) = msg.reply {
            let _ = reply.send(result);
        }
        // Work left only when a retry of the provider call is pending; otherwise rest until the next message.
        if state.refund.retry_at.is_none() {
            myself.stop(None);
        }
        Ok(())
    }
}

fn arm(myself: &ActorRef<Apply>, at: DateTime<Utc>) {
    let delay = (at - Utc::now()).to_std().unwrap_or_default();
    myself.send_after(delay, || Apply { input: RefundInput::RetryDue, webhook: None, reply: None });
}

impl RefundActor {
    async fn run(
        &self,
        myself: &ActorRef<Apply>,
        state: &mut StoredRefund,
        input: RefundInput,
        mut webhook: Option<i64>,
    ) -> RefundReply {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let reads_books = input.reads_books();
            let decide = |refund: &Refund, books| refund.on(input, books, Utc::now(), &self.policy);
            let id = state.refund.id;
            let (locked, stepped) = refunds::step(&self.ctx.db, id, reads_books, webhook.take(), decide).await?;
            let Some((step, version)) = stepped else {
                *state = locked;
                continue;
            };
            if step.refund.status != locked.refund.status {
                self.ctx.counters.refund_entered(step.refund.status.as_str());
            }
            *state = StoredRefund { refund: step.refund, version };
            for effect in step.effects {
                match effect {
                    RefundEffect::ArmRetry { at } => arm(myself, at),
                    RefundEffect::RefundAtProvider { idempotency_key } => {
                        queue.push_back(self.pay_back(&state.refund, &idempotency_key).await)
                    }
                    RefundEffect::ReversalDone { purchase } => {
                        // If this is lost to a crash, the purchase's recovery finds the refund made and catches up.
                        if let Err(e) = self.purchases.send(purchase, Input::ReversalRefunded).await {
                            tracing::warn!(%purchase, error = %e, "reversal made but not yet shown on the purchase");
                        }
                    }
                }
            }
        }
        Ok(state.refund.clone())
    }

    async fn pay_back(&self, refund: &Refund, idempotency_key: &str) -> RefundInput {
        let Ok(Some(purchase)) = purchases::load(&self.ctx.reads, refund.purchase_id).await else {
            return RefundInput::ProviderUnreachable;
        };
        let purchase = purchase.purchase;
        let Some(intent_id) = purchase.intent_id.as_deref() else {
            return RefundInput::MethodRefused { code: "nothing_to_refund".into() };
        };
        let request =
            NewRefund { intent_id, charge: purchase.charge.as_deref(), amount: refund.amount, idempotency_key };
        match self.ctx.provider_call(purchase.rail, "refund", self.ctx.gateways.refund(purchase.rail, request)).await {
            Ok(RefundOutcome::Refunded(id)) => RefundInput::Refunded { provider_refund: id },
            Ok(RefundOutcome::Pending(id)) => RefundInput::Pending { provider_refund: id },
            Ok(RefundOutcome::Refused(code)) | Err(ProviderError::Rejected { code, .. }) => {
                RefundInput::MethodRefused { code }
            }
            Err(ProviderError::Unreachable(e) | ProviderError::Throttled(e)) => {
                tracing::warn!(error = %e, refund = %refund.id, "provider refund not confirmed; will retry");
                RefundInput::ProviderUnreachable
            }
        }
    }
}

/// The API's handle on refund actors.
pub struct RefundActors {
    ctx: Arc<Context>,
    policy: RefundPolicy,
    purchases: Arc<PurchaseActors>,
}

impl RefundActors {
    /// Refund actors under the purchases' supervisor, which restarts them too.
    pub fn new(policy: RefundPolicy, purchases: Arc<PurchaseActors>) -> Arc<Self> {
        let refunds = Arc::new(Self { ctx: purchases.context_arc(), policy, purchases });
        let _ = refunds.ctx.refunds.set(Arc::downgrade(&refunds));
        refunds
    }

    pub fn policy(&self) -> &RefundPolicy {
        &self.policy
    }

    /// What a request for a refund of `purchase` would be given now, judged as a request is, on the books as they
    /// stand: the refund (never recorded) or why there is none.
    pub async fn quote(&self, purchase: &Purchase) -> Result<(Result<Refund, RequestRejected>, Books), RefundError> {
        let books =
            refunds::current_books(&self.ctx.db, purchase).await.map_err(|e| RefundError::Other(e.to_string()))?;
        let ask = RefundAsk { reason: String::new(), details: String::new() };
        Ok((Refund::request(Uuid::nil(), purchase, ask, books, Utc::now(), &self.policy), books))
    }

    /// A client's request for a refund of `purchase`: the refund's first step, judged and recorded in one
    /// transaction.
    pub async fn open(&self, purchase: &Purchase, ask: RefundAsk) -> RefundReply {
        let request = |books| Refund::request(new_key(), purchase, ask, books, Utc::now(), &self.policy);
        let opened = refunds::open(&self.ctx.db, purchase, request).await?;
        self.ctx.counters.refund_entered(opened.status.as_str());
        Ok(opened)
    }

    async fn actor(&self, id: Uuid) -> Result<ActorRef<Apply>, RefundError> {
        let name = self.ctx.refund_actor(id);
        if let Some(actor) = ActorRef::where_is(name.clone()) {
            return Ok(actor);
        }
        let actor = RefundActor { ctx: self.ctx.clone(), policy: self.policy, purchases: self.purchases.clone() };
        match Actor::spawn_linked(Some(name), actor, id, self.purchases.supervisor()).await {
            Ok((actor, _)) => Ok(actor),
            Err(SpawnErr::ActorAlreadyRegistered(name)) => {
                ActorRef::where_is(name).ok_or(RefundError::Other("actor vanished".into()))
            }
            Err(SpawnErr::StartupFailed(e)) if e.downcast_ref::<RefundError>().is_some() => Err(RefundError::NotFound),
            Err(e) => Err(RefundError::Other(e.to_string())),
        }
    }

    pub async fn send(&self, id: Uuid, input: RefundInput) -> RefundReply {
        self.call(id, input, None).await
    }

    /// A provider's news of a refund, from the webhook stored as inbox row `webhook`, which the step marks applied.
    pub async fn deliver_webhook(&self, id: Uuid, input: RefundInput, webhook: i64) -> RefundReply {
        self.call(id, input, Some(webhook)).await
    }

    async fn call(&self, id: Uuid, input: RefundInput, webhook: Option<i64>) -> RefundReply {
        for attempt in 0..20u64 {
            let actor = self.actor(id).await?;
            let message = input.clone();
            let apply = |reply| Apply { input: message, webhook, reply: Some(reply) };
            match actor.call(apply, Some(self.ctx.call_timeout)).await {
                Ok(CallResult::Success(reply)) => return reply,
                Ok(CallResult::Timeout) => return Err(RefundError::Busy),
                // Stopped between lookup and delivery: wait for it to go, then start a fresh one.
                _ => tokio::time::sleep(std::time::Duration::from_millis(2 * attempt)).await,
            }
        }
        Err(RefundError::Other("the refund actor is unavailable".into()))
    }

    /// Restarts refunds whose provider call may not have happened before a crash.
    pub async fn recover(&self) -> Result<usize, RefundError> {
        let ids = refunds::processing_ids(&self.ctx.db).await?;
        for id in &ids {
            self.start(*id).await?;
        }
        Ok(ids.len())
    }

    /// Starts (or wakes) a refund's actor to make the provider call it may still owe: after a crash, or for a
    /// reversal just opened.
    pub async fn start(&self, id: Uuid) -> Result<(), RefundError> {
        let actor = self.actor(id).await?;
        actor
            .cast(Apply { input: RefundInput::Recovered, webhook: None, reply: None })
            .map_err(|e| RefundError::Other(e.to_string()))
    }
}
