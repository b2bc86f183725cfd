//! The circuit-breaker actor: one circuit per rail, fed by every provider call's outcome. While a circuit is open,
//! new checkouts on that rail get 503 `provider_unavailable` (the other rail still offered); purchases already in
//! flight keep reconciling on their own backoff and do not fail. An opening raises an admin alert. When its cooldown
//! ends the breaker probes the provider itself. With every rail's circuit open the platform is paused (an alert and
//! an audit row) until a probe succeeds, which resumes it the same way.
use super::pause::{Pauses, Scope};
use crate::domain::circuit::{Circuit, CircuitRules, CircuitState};
use crate::domain::purchase::Rail;
use crate::providers::Gateways;
use crate::store::alerts::Alert;
use crate::store::circuits as circuit_store;
use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::sync::Arc;

pub enum CircuitMsg {
    Allow {
        rail: Rail,
        reply: RpcReplyPort<bool>,
    },
    Outcome {
        rail: Rail,
        success: bool,
    },
    /// A circuit's cooldown has ended: ask its provider whether it answers again.
    Probe {
        rail: Rail,
    },
    /// For `/metrics`: per rail, 0 closed, 1 half-open, 2 open.
    States {
        reply: RpcReplyPort<Vec<(&'static str, i64)>>,
    },
}

#[derive(Clone)]
pub struct CircuitBreaker {
    pub rules: CircuitRules,
    pub db: DatabaseConnection,
    /// For the probes: the breaker asks each sick provider itself once its cooldown ends.
    pub gateways: Arc<Gateways>,
    pub pauses: Arc<Pauses>,
}

/// Who the platform pause this breaker sets is by, in the audit trail and on the console.
pub const BY: &str = "circuit-breaker";

#[derive(Default)]
pub struct Circuits {
    card: Circuit,
    paypal: Circuit,
}

impl Circuits {
    fn of(&mut self, rail: Rail) -> &mut Circuit {
        match rail {
            Rail::Card => &mut self.card,
            Rail::Paypal => &mut self.paypal,
        }
    }

    /// No rail that takes payments has a provider known to answer: nothing can be paid until a probe succeeds.
    fn all_down(&self, gateways: &Gateways) -> bool {
        [(Rail::Card, &self.card), (Rail::Paypal, &self.paypal)]
            .iter()
            .filter(|(rail, _)| gateways.enabled(*rail))
            .all(|(_, circuit)| circuit.state != CircuitState::Closed)
    }
}

impl CircuitBreaker {
    fn alert(kind: &'static str) -> Alert {
        Alert { kind, key: format!("{kind}:{}", Utc::now().timestamp_millis()), details: json!({ "alert": kind }) }
    }

    fn paused_by_me(&self) -> bool {
        self.pauses.current().iter().any(|p| p.scope == Scope::Platform && p.by == BY)
    }

    /// Every rail down pauses the platform (checkouts refused, provider calls held); the first rail back lifts it.
    async fn follow(&self, circuits: &Circuits) -> Result<(), ActorProcessingErr> {
        let platform_paused = self.pauses.current().iter().any(|p| p.scope == Scope::Platform);
        let all_down = circuits.all_down(&self.gateways);
        if all_down && !platform_paused {
            tracing::error!("every provider's circuit is open: pausing the platform until a probe succeeds");
            let reason = "no provider answers (every rail's circuit is open): paused until a probe succeeds";
            self.pauses.set(Scope::Platform, true, reason, BY, Some(Self::alert("all_rails_down"))).await?;
        } else if !all_down && self.paused_by_me() {
            let lifted = Some(Self::alert("all_rails_down_lifted"));
            self.pauses.set(Scope::Platform, false, "a provider answered its probe", BY, lifted).await?;
        }
        Ok(())
    }

    fn probe_at(&self, myself: &ActorRef<CircuitMsg>, rail: Rail, until: chrono::DateTime<Utc>) {
        let wait = (until - Utc::now()).to_std().unwrap_or_default();
        myself.send_after(wait, move || CircuitMsg::Probe { rail });
    }
}

impl Actor for CircuitBreaker {
    type Msg = CircuitMsg;
    type State = Circuits;
    type Arguments = ();

    /// Starts from the circuits left open, so a restart does not send checkouts back to a provider found sick, and
    /// probes each when its cooldown ends.
    async fn pre_start(&self, myself: ActorRef<CircuitMsg>, _: ()) -> Result<Circuits, ActorProcessingErr> {
        let mut circuits = Circuits::default();
        for (rail, until) in circuit_store::open(&self.db).await? {
            let rail = if rail == Rail::Paypal.as_str() { Rail::Paypal } else { Rail::Card };
            circuits.of(rail).state = CircuitState::Open { until };
            self.probe_at(&myself, rail, until);
        }
        self.follow(&circuits).await?;
        Ok(circuits)
    }

    async fn handle(
        &self,
        myself: ActorRef<CircuitMsg>,
        msg: CircuitMsg,
        circuits: &mut Circuits,
    ) -> Result<(), ActorProcessingErr> {
        let now = Utc::now();
        match msg {
            CircuitMsg::States { reply } => {
                let level = |circuit: &Circuit| match circuit.state {
                    CircuitState::Closed => 0,
                    CircuitState::HalfOpen => 1,
                    CircuitState::Open { .. } => 2,
                };
                let _ = reply.send(vec![("card", level(&circuits.card)), ("paypal", level(&circuits.paypal))]);
            }
            CircuitMsg::Allow { rail, reply } => {
                let _ = reply.send(circuits.of(rail).allow(now));
            }
            // The cooldown is over: the breaker asks the provider itself, since with the platform paused (or no
            // checkout coming) no payment would.
            CircuitMsg::Probe { rail } => {
                let circuit = circuits.of(rail);
                match circuit.state {
                    CircuitState::Closed => return Ok(()),
                    // A checkout took the half-open turn but may never reach the provider: probe anyway.
                    CircuitState::HalfOpen => {}
                    CircuitState::Open { .. } => {
                        if !circuit.allow(now) {
                            return Ok(());
                        }
                    }
                }
                let (gateways, breaker) = (self.gateways.clone(), myself.clone());
                tokio::spawn(async move {
                    let success = gateways.probe(rail).await;
                    let _ = breaker.cast(CircuitMsg::Outcome { rail, success });
                });
            }
            CircuitMsg::Outcome { rail, success } => {
                let circuit = circuits.of(rail);
                let was_half_open = circuit.state == CircuitState::HalfOpen;
                let opened = circuit.record(success, now, &self.rules);
                let rail_name = rail.as_str();
                match circuit.state {
                    CircuitState::Open { until } if opened => {
                        tracing::error!(
                            rail = rail_name,
                            "provider circuit opened: new checkouts refused until it recovers"
                        );
                        let details =
                            json!({ "alert": "circuit_opened", "rail": rail_name, "probeFailed": was_half_open });
                        let key = format!("circuit:{rail_name}:{}", now.timestamp_millis());
                        let alert = Alert { kind: "circuit_opened", key, details };
                        circuit_store::save(&self.db, rail_name, Some(until), Some(alert)).await?;
                        self.probe_at(&myself, rail, until);
                    }
                    CircuitState::Closed if was_half_open => {
                        circuit_store::save(&self.db, rail_name, None, None).await?
                    }
                    _ => {}
                }
                if opened || was_half_open {
                    self.follow(circuits).await?;
                }
            }
        }
        Ok(())
    }
}
