//! The actor shells: one ractor actor per live purchase under a supervisor. They load, call the pure state machine,
//! persist its step, and carry out its effects; the rules live in `domain`.
pub mod purchase;
pub mod reconciler;
pub mod refund;
pub mod supervisor;

pub use supervisor::PurchaseActors;

use crate::domain::purchase::Input;

use crate::domain::invoice::Issuer;
use crate::domain::purchase::Policy;
use crate::providers::Gateways;
use sea_orm::DatabaseConnection;

/// What every purchase actor needs, shared.
pub struct Context {
    pub db: DatabaseConnection,
    pub gateways: Gateways,
    pub policy: Policy,
    /// Who sells and the tax rates, for invoices.
    pub issuer: Issuer,
    /// While a rail is paused, its provider calls wait.
    pub pauses: std::sync::Arc<crate::guards::pause::Pauses>,
    /// Hears every provider call's outcome, and refuses new checkouts while a provider is down.
    pub circuit: ractor::ActorRef<crate::guards::circuit::CircuitMsg>,
    /// Hears every decline (card testing, breach detection).
    pub fraud: ractor::ActorRef<crate::guards::fraud::FraudMsg>,
}
