//! The actor shells: one ractor actor per live purchase under a supervisor. They load, call the pure state machine,
//! persist its step, and carry out its effects; the rules live in `domain`.
pub mod counters;
pub mod deadlines;
pub mod disputes;
pub mod purchase;
pub mod reconciler;
pub mod refund;
pub mod supervisor;
pub mod tree;

pub use supervisor::PurchaseActors;

use crate::domain::purchase::Input;

use crate::domain::invoice::Issuer;
use crate::domain::purchase::Policy;
use crate::providers::Gateways;
use sea_orm::DatabaseConnection;

/// The actors a service runs one of per row, each named after its row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowActor {
    Purchase,
    Refund,
}

impl RowActor {
    fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Refund => "refund",
        }
    }

    pub fn parse(kind: &str) -> Option<Self> {
        [Self::Purchase, Self::Refund].into_iter().find(|k| k.as_str() == kind)
    }
}

/// What every purchase actor needs, shared.
pub struct Context {
    /// This service's prefix on its purchase and refund actors' names. ractor's registry is one per process, and a
    /// process may run several services (the tests do): each must find only its own actors by name.
    pub names: String,
    pub db: DatabaseConnection,
    pub gateways: std::sync::Arc<Gateways>,
    pub policy: Policy,
    /// Who sells and the tax rates, for invoices (shared: each step hands it to the writer).
    pub issuer: std::sync::Arc<Issuer>,
    /// While a rail is paused, its provider calls wait.
    pub pauses: std::sync::Arc<crate::guards::pause::Pauses>,
    /// Hears every provider call's outcome, and refuses new checkouts while a provider is down.
    pub circuit: tree::Named<crate::guards::circuit::CircuitMsg>,
    /// Hears every decline (card testing, breach detection).
    pub fraud: tree::Named<crate::guards::fraud::FraudMsg>,
    /// Owns the request budgets; hears every 429 from a provider, and pauses that provider's processing a while.
    pub limiter: tree::Named<crate::guards::rate_limit::RateMsg>,
    /// The limiter's budgets, read here only to know which providers have an outbound one.
    pub budgets: std::sync::Arc<crate::guards::rate_limit::Budgets>,
    /// Provider call latency and errors, for `/metrics`.
    pub timings: crate::providers::timings::ProviderTimings,
    /// For reads that need not queue behind the writer (a purchase's state, a balance).
    pub reads: DatabaseConnection,
    /// Commits the steps of many actors together (group commit).
    pub writer: crate::store::writer::Writer,
    /// The statements the store ran, for `/metrics`.
    pub statements: std::sync::Arc<crate::store::statements::StatementCounts>,
    /// Committed transitions and received webhooks, for `/metrics`.
    pub counters: counters::Counters,
    /// Purchases seen finished, so that the inputs after their end are answered without a read.
    pub finished: std::sync::Arc<crate::store::finished::FinishedPurchases>,
    /// Card checkouts this node opened, by intent, so that their confirms find them without a read.
    pub opened: crate::store::opened::OpenedIntents,
    /// Every purchase's timers, kept outside the actors so idle ones can stop.
    pub deadlines: deadlines::Deadlines,
    /// How long an actor whose purchase waits on a person stays up before it passivates.
    pub passivate_after: std::time::Duration,
    /// How long a caller waits for an actor's answer.
    pub call_timeout: std::time::Duration,
    /// The refund actors, which pay fraud reversals back; set once both halves exist (they know each other).
    pub refunds: std::sync::OnceLock<std::sync::Weak<refund::RefundActors>>,
}

impl Context {
    /// The name of this service's actor of `kind` for the row `id`.
    pub fn actor_name(&self, kind: RowActor, id: uuid::Uuid) -> String {
        format!("{}:{}:{id}", self.names, kind.as_str())
    }

    pub fn purchase_actor(&self, id: uuid::Uuid) -> String {
        self.actor_name(RowActor::Purchase, id)
    }

    pub fn refund_actor(&self, id: uuid::Uuid) -> String {
        self.actor_name(RowActor::Refund, id)
    }

    /// The kind and row of one of this service's actors, from its name (`actor_name`'s inverse).
    pub fn actor_named(&self, name: &str) -> Option<(RowActor, uuid::Uuid)> {
        let (kind, id) = name.strip_prefix(self.names.as_str())?.strip_prefix(':')?.split_once(':')?;
        Some((RowActor::parse(kind)?, id.parse().ok()?))
    }

    /// Leaves the trace of an input that changed a finished purchase (which never changes again, so needs no lock), in
    /// the writer's next batch.
    pub async fn record_unchanged(
        &self,
        purchase: &crate::domain::purchase::Purchase,
        input: &'static str,
        cause: &crate::store::purchases::Cause,
    ) -> Result<(), sea_orm::DbErr> {
        let (purchase, cause) = (purchase.clone(), cause.clone());
        self.writer
            .write(move |txn| {
                Box::pin(async move { crate::store::purchases::record_unchanged(txn, &purchase, input, &cause).await })
            })
            .await
    }

    /// The refund actors, unless the service is shutting down.
    pub fn refunds(&self) -> Option<std::sync::Arc<refund::RefundActors>> {
        self.refunds.get().and_then(std::sync::Weak::upgrade)
    }

    /// Makes one provider call: timed for `/metrics`, and its outcome told to the circuit breaker, where only no
    /// answer at all counts against the provider, or, for a 429, to the rate-limit guard.
    pub async fn provider_call<T>(
        &self,
        rail: crate::domain::purchase::Rail,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T, crate::providers::ProviderError>>,
    ) -> Result<T, crate::providers::ProviderError> {
        // Over the budget the call is not made: held like a 429's, its outcome unknown to the caller, who retries.
        // A limiter that does not answer (restarting) holds the call too: no budget is no permission.
        let spend = |reply| crate::guards::rate_limit::RateMsg::Outbound { rail, reply };
        if self.budgets.limits_outbound(rail) && self.limiter.call(spend, self.call_timeout).await != Some(true) {
            return Err(crate::providers::ProviderError::Throttled("Purser's outbound request budget is spent".into()));
        }
        let started = std::time::Instant::now();
        let result = call.await;
        let unreachable = matches!(result, Err(crate::providers::ProviderError::Unreachable(_)));
        let throttled = matches!(result, Err(crate::providers::ProviderError::Throttled(_)));
        self.timings.record(rail.as_str(), operation, started.elapsed(), unreachable || throttled);
        // A 429 says the provider is well but wants fewer calls: a pause, not a sick circuit.
        if throttled {
            self.limiter.cast(crate::guards::rate_limit::RateMsg::Throttled { rail });
        } else {
            self.circuit.cast(crate::guards::circuit::CircuitMsg::Outcome { rail, success: !unreachable });
        }
        result
    }
}
