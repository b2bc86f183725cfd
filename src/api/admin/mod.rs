//! Admin endpoints (role `admin`), one module per feature of the console.
mod alerts;
mod api_keys;
mod disputes;
mod events;
mod flags;
mod payments;
mod revenue;
mod webhooks;

pub use alerts::*;
pub use api_keys::*;
pub use disputes::*;
pub use events::*;
pub use flags::*;
pub use payments::*;
pub use revenue::*;
pub use webhooks::*;

use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionReason {
    /// Recorded in the audit trail.
    #[serde(default)]
    reason: String,
}

/// A reason the action cannot go without (it is audited and shown).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredReason {
    #[schema(pattern = "\\S")]
    reason: String,
}
