//! The circuit-breaker actor: one circuit per rail, fed by every provider call's outcome. While a circuit is open,
//! new checkouts on that rail get 503 `provider_unavailable` (the other rail still offered); purchases already in
//! flight keep reconciling on their own backoff and do not fail. An opening raises an admin alert.
use crate::domain::circuit::{Circuit, CircuitRules, CircuitState};
use crate::domain::purchase::Rail;
use crate::store::{alerts, circuits as circuit_store};
use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sea_orm::DatabaseConnection;
use serde_json::json;

pub enum CircuitMsg {
    Allow {
        rail: Rail,
        reply: RpcReplyPort<bool>,
    },
    Outcome {
        rail: Rail,
        success: bool,
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
}

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
}

impl Actor for CircuitBreaker {
    type Msg = CircuitMsg;
    type State = Circuits;
    type Arguments = ();

    /// Starts from the circuits left open, so a restart does not send checkouts back to a provider found sick.
    async fn pre_start(&self, _myself: ActorRef<CircuitMsg>, _: ()) -> Result<Circuits, ActorProcessingErr> {
        let mut circuits = Circuits::default();
        for (rail, until) in circuit_store::open(&self.db).await? {
            let rail = if rail == Rail::Paypal.as_str() { Rail::Paypal } else { Rail::Card };
            circuits.of(rail).state = CircuitState::Open { until };
        }
        Ok(circuits)
    }

    async fn handle(
        &self,
        _myself: ActorRef<CircuitMsg>,
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
            CircuitMsg::Outcome { rail, success } => {
                let circuit = circuits.of(rail);
                let was_half_open = circuit.state == CircuitState::HalfOpen;
                let opened = circuit.record(success, now, &self.rules);
                match circuit.state {
                    CircuitState::Open { until } if opened => {
                        circuit_store::save(&self.db, rail.as_str(), Some(until)).await?
                    }
                    CircuitState::Closed if was_half_open => circuit_store::save(&self.db, rail.as_str(), None).await?,
                    _ => {}
                }
                if opened {
                    let rail_name = rail.as_str();
                    tracing::error!(
                        rail = rail_name,
                        "provider circuit opened: new checkouts refused until it recovers"
                    );
                    let details = json!({ "alert": "circuit_opened", "rail": rail_name, "probeFailed": was_half_open });
                    alerts::raise(
                        &self.db,
                        "circuit_opened",
                        format!("circuit:{rail_name}:{}", now.timestamp_millis()),
                        details,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}
