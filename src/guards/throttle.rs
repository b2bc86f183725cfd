//! The provider rate-limit guard: when a provider answers 429 (too many requests) past the call's own retries, or
//! Purser's own outbound budget for it is spent (`OutboundBudgets`), that provider's processing is paused
//! platform-wide (its calls held, not failed) and resumed by this guard once `window` has passed. Each pause and
//! resume is an admin alert and, like every pause, an audit row.
use super::pause::{Pauses, Scope};
use crate::domain::purchase::Rail;
use crate::store::alerts;
use chrono::{TimeDelta, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Who the pauses this guard sets are by, in the audit trail and on the console.
pub const BY: &str = "rate-limiter";

/// Requests per second Purser allows itself towards each real provider, kept under the provider's own limit (Stripe
/// documents 100 per second in live mode and 25 in test mode) so that a burst is held here rather than refused
/// there. The sandbox has none.
pub struct OutboundBudgets {
    card: Option<DefaultDirectRateLimiter>,
    paypal: Option<DefaultDirectRateLimiter>,
}

impl OutboundBudgets {
    /// `None` for a rail leaves it unbudgeted (the sandbox).
    pub fn new(card: Option<u32>, paypal: Option<u32>) -> Self {
        let limiter = |per_second: u32| {
            RateLimiter::direct(Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN)))
        };
        Self { card: card.map(limiter), paypal: paypal.map(limiter) }
    }

    /// Spends one request towards `rail`'s provider; `false` when the budget is spent.
    pub fn spend(&self, rail: Rail) -> bool {
        let budget = match rail {
            Rail::Card => &self.card,
            Rail::Paypal => &self.paypal,
        };
        budget.as_ref().is_none_or(|limiter| limiter.check().is_ok())
    }
}

pub enum ThrottleMsg {
    /// A provider on `rail` answered 429.
    Throttled { rail: Rail },
    /// The window has passed: lift the pause on `scope` if it is still this guard's.
    Lift { scope: Scope },
}

#[derive(Clone)]
pub struct ProviderThrottle {
    pub pauses: Arc<Pauses>,
    pub db: DatabaseConnection,
    /// How long a provider is left alone after a 429.
    pub window: Duration,
}

impl ProviderThrottle {
    async fn alert(&self, scope: Scope, what: &str) -> Result<(), ActorProcessingErr> {
        let now = Utc::now();
        let details = json!({ "alert": what, "scope": scope.as_str(), "windowSeconds": self.window.as_secs() });
        let key = format!("{what}:{}:{}", scope.as_str(), now.timestamp_millis());
        alerts::raise(&self.db, what, key, details).await?;
        Ok(())
    }
}

impl Actor for ProviderThrottle {
    type Msg = ThrottleMsg;
    type State = ();
    type Arguments = ();

    /// A pause of its own found at start (set before a crash or a restart) is lifted when its window ends.
    async fn pre_start(&self, myself: ActorRef<ThrottleMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        let window = TimeDelta::from_std(self.window).unwrap_or(TimeDelta::MAX);
        for pause in self.pauses.current().into_iter().filter(|p| p.by == BY) {
            let left = (pause.since + window - Utc::now()).to_std().unwrap_or_default();
            let scope = pause.scope;
            myself.send_after(left, move || ThrottleMsg::Lift { scope });
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ThrottleMsg>,
        msg: ThrottleMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ThrottleMsg::Throttled { rail } => {
                let scope = Scope::of(rail);
                // Already paused (by an admin, a guard, or an earlier 429): the calls are held either way.
                if self.pauses.current().iter().any(|p| p.scope == scope) {
                    return Ok(());
                }
                let reason = format!(
                    "too many requests to the {} provider (it answered 429, or Purser's budget for it was spent): its \
                     calls are held for {} s",
                    rail.as_str(),
                    self.window.as_secs()
                );
                tracing::warn!(rail = rail.as_str(), "provider rate limit hit: pausing its processing");
                // The alert first: whoever sees the pause finds its alert already there.
                self.alert(scope, "provider_throttled").await?;
                self.pauses.set(scope, true, &reason, BY).await?;
                myself.send_after(self.window, move || ThrottleMsg::Lift { scope });
            }
            ThrottleMsg::Lift { scope } => {
                if !self.pauses.current().iter().any(|p| p.scope == scope && p.by == BY) {
                    return Ok(());
                }
                self.alert(scope, "provider_throttle_lifted").await?;
                self.pauses.set(scope, false, "the provider's rate-limit window has passed", BY).await?;
            }
        }
        Ok(())
    }
}
