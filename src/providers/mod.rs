//! Payment providers behind one gateway. The purchase actor speaks only `CardGateway`; which provider answers is
//! configuration (`payments.card_provider`).
pub mod sandbox;
pub mod stripe;
pub mod stripe_event;
pub mod stripe_signature;

use crate::domain::ids::{ClientId, PaymentMethodId};
use crate::domain::money::Money;
use crate::domain::purchase::IntentUpdate;
use sandbox::Sandbox;
use std::sync::Arc;
use stripe::StripeProvider;
use uuid::Uuid;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// No usable answer (network, timeout, 5xx): the call's outcome is unknown and must be reconciled.
    #[error("payment provider unreachable: {0}")]
    Unreachable(String),
    /// The provider refused the request itself (unknown payment method, wrong state…).
    #[error("{message}")]
    Rejected { code: String, message: String },
}

pub struct NewIntent<'a> {
    pub purchase_id: Uuid,
    pub client: &'a ClientId,
    pub amount: Money,
    pub payment_method: Option<&'a PaymentMethodId>,
    /// Keep the method in the client's vault once it has paid (Stripe's `setup_future_usage`).
    pub save_method: bool,
    pub idempotency_key: &'a str,
}

#[derive(Clone)]
pub enum CardGateway {
    Sandbox(Arc<Sandbox>),
    Stripe(Arc<StripeProvider>),
}

impl CardGateway {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sandbox(_) => "sandbox",
            Self::Stripe(_) => "stripe",
        }
    }

    pub async fn create_intent(&self, request: NewIntent<'_>) -> Result<IntentUpdate, ProviderError> {
        match self {
            Self::Sandbox(sandbox) => stripe_event::parse_intent(&sandbox.create_intent(request).await?),
            Self::Stripe(stripe) => stripe.create_intent(request).await,
        }
    }

    pub async fn confirm_intent(
        &self,
        intent_id: &str,
        payment_method: &PaymentMethodId,
        idempotency_key: &str,
    ) -> Result<IntentUpdate, ProviderError> {
        match self {
            Self::Sandbox(sandbox) => {
                stripe_event::parse_intent(&sandbox.confirm_intent(intent_id, payment_method).await?)
            }
            Self::Stripe(stripe) => stripe.confirm_intent(intent_id, payment_method, idempotency_key).await,
        }
    }

    pub async fn retrieve_intent(&self, intent_id: &str) -> Result<IntentUpdate, ProviderError> {
        match self {
            Self::Sandbox(sandbox) => stripe_event::parse_intent(&sandbox.retrieve_intent(intent_id).await?),
            Self::Stripe(stripe) => stripe.retrieve_intent(intent_id).await,
        }
    }

    /// Removes a saved method from the client's vault.
    pub async fn detach_method(&self, method: &str) -> Result<(), ProviderError> {
        match self {
            Self::Sandbox(_) => Ok(()),
            Self::Stripe(stripe) => stripe.detach_method(method).await,
        }
    }

    /// Deletes the client's customer at the provider, with every method still attached to it.
    pub async fn delete_customer(&self, customer: &str) -> Result<(), ProviderError> {
        match self {
            Self::Sandbox(_) => Ok(()),
            Self::Stripe(stripe) => stripe.delete_customer(customer).await,
        }
    }

    pub async fn cancel_intent(&self, intent_id: &str) -> Result<IntentUpdate, ProviderError> {
        match self {
            Self::Sandbox(sandbox) => stripe_event::parse_intent(&sandbox.cancel_intent(intent_id).await?),
            Self::Stripe(stripe) => stripe.cancel_intent(intent_id).await,
        }
    }
}
