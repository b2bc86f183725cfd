//! The provider rate-limit guard: when a provider answers 429 (too many requests) past the call's own retries, that
//! provider's processing is paused platform-wide (its calls held, not failed) and resumed by this guard once
//! `window` has passed. Each pause and resume is an admin alert and, like every pause, an audit row.
use super::pause::{Pauses, Scope};
use crate::domain::purchase::Rail;
use crate::store::alerts;
use chrono::{TimeDelta, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Who the pauses this guard sets are by, in the audit trail and on the console.
pub const BY: &str = "rate-limiter";

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
                    "the {} provider answered 429 Too Many Requests: its calls are held for {} s",
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
