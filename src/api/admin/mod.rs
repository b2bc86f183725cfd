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

use crate::api::error::ApiError;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionReason {
    /// Recorded in the audit trail.
    #[serde(default)]
    reason: String,
}

/// A reason as an audited action takes it: trimmed, 1 to 500 characters.
fn required_reason(raw: &str) -> Result<String, ApiError> {
    let reason = raw.trim();
    if reason.is_empty() || raw.chars().count() > 500 {
        return Err(ApiError::bad_request("reason_required", "Give a reason of 1 to 500 characters: it is recorded."));
    }
    Ok(reason.to_owned())
}

/// A reason the action cannot go without (it is audited and shown).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredReason {
    #[schema(pattern = "\\S")]
    reason: String,
}
