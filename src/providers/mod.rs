//! Payment providers behind two gateways, one per rail: cards (the sandbox or Stripe) and PayPal (the sandbox or
//! PayPal). The purchase actor speaks only `Gateways`; which provider answers is configuration.
pub mod paypal;
pub mod paypal_order;
pub mod sandbox;
pub mod stripe;
pub mod stripe_event;
pub mod timings;

use crate::domain::dispute::{Answer, Report};
use crate::domain::ids::{CardToken, ClientId, PaymentMethodId};
use crate::domain::money::Money;
use crate::domain::purchase::{IntentStatus, IntentUpdate, Rail};
use paypal::PaypalProvider;
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
    /// The provider said too many requests (HTTP 429), after the call's own retries: the outcome is unknown, as
    /// for `Unreachable`, and the provider wants fewer calls for a while.
    #[error("payment provider rate limit: {0}")]
    Throttled(String),
}

impl ProviderError {
    /// A webhook whose signature the provider's check did not accept.
    pub fn not_verified(message: String) -> Self {
        Self::Rejected { code: "invalid_signature".into(), message }
    }
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

/// A card payment method the provider made from a token: what the page shows of it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardMethod {
    /// Pass it as `paymentMethodId` to `/api/v1/payments/stripe/intent`.
    #[serde(rename = "paymentMethodId")]
    pub id: String,
    pub brand: Option<String>,
    pub last4: Option<String>,
}

/// What the provider did with a refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Paid back: the provider's refund id.
    Refunded(String),
    /// Accepted but not yet paid (Stripe's `pending`): the provider reports the outcome by webhook, and the refund
    /// may still fail (an expired or closed card).
    Pending(String),
    /// The original method cannot take the money back.
    Refused(String),
}

/// A refund of (part of) a paid purchase.
pub struct NewRefund<'a> {
    pub intent_id: &'a str,
    pub charge: Option<&'a str>,
    pub amount: Money,
    pub idempotency_key: &'a str,
}

#[derive(Clone)]
pub enum CardGateway {
    Sandbox(Arc<Sandbox>),
    Stripe(Arc<StripeProvider>),
    Disabled,
}

#[derive(Clone)]
pub enum PaypalGateway {
    Sandbox(Arc<Sandbox>),
    Paypal(Arc<PaypalProvider>),
    Disabled,
}

/// What a disabled rail answers to anything asked of it.
fn disabled(rail: Rail) -> ProviderError {
    ProviderError::Rejected {
        code: "rail_disabled".into(),
        message: format!("{} payments are switched off on this service", rail.as_str()),
    }
}

#[derive(Clone)]
pub struct Gateways {
    pub card: CardGateway,
    pub paypal: PaypalGateway,
}

impl CardGateway {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sandbox(_) => sandbox::PROVIDER,
            Self::Stripe(_) => stripe::PROVIDER,
            Self::Disabled => DISABLED,
        }
    }

    /// Turns a card token from Stripe.js into a payment method. The sandbox's own tokenizer hands out methods
    /// directly, so it has no tokens to turn.
    pub async fn method_from_token(&self, token: &CardToken) -> Result<CardMethod, ProviderError> {
        match self {
            Self::Sandbox(_) => Err(ProviderError::Rejected {
                code: "card_tokens_need_stripe".into(),
                message: "The sandbox's tokenizer (/sandbox/v1/tokens) returns a paymentMethodId directly; card \
                          tokens come from Stripe.js when Purser runs on Stripe."
                    .into(),
            }),
            Self::Stripe(stripe) => stripe.method_from_token(token).await,
            Self::Disabled => Err(disabled(Rail::Card)),
        }
    }

    /// The card's fingerprint, the same for every payment method made from one card number. The sandbox's test
    /// methods stand for one test card each, so their ids already say which card it is: `None`.
    pub async fn fingerprint(&self, method: &PaymentMethodId) -> Result<Option<String>, ProviderError> {
        match self {
            Self::Sandbox(_) | Self::Disabled => Ok(None),
            Self::Stripe(stripe) => stripe.fingerprint(method).await,
        }
    }

    /// Removes a saved method from the client's vault.
    pub async fn detach_method(&self, method: &str) -> Result<(), ProviderError> {
        match self {
            Self::Sandbox(_) | Self::Disabled => Ok(()),
            Self::Stripe(stripe) => stripe.detach_method(method).await,
        }
    }

    /// Deletes the client's customer at the provider, with every method still attached to it.
    pub async fn delete_customer(&self, customer: &str) -> Result<(), ProviderError> {
        match self {
            Self::Sandbox(_) | Self::Disabled => Ok(()),
            Self::Stripe(stripe) => stripe.delete_customer(customer).await,
        }
    }
}

impl PaypalGateway {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sandbox(_) => sandbox::PROVIDER,
            Self::Paypal(_) => "paypal",
            Self::Disabled => DISABLED,
        }
    }

    pub async fn verify_webhook(&self, headers: &axum::http::HeaderMap, body: &[u8]) -> Result<(), ProviderError> {
        let not_verified = ProviderError::not_verified;
        match self {
            Self::Sandbox(sandbox) => sandbox.verify_paypal_webhook(headers, body).map_err(not_verified),
            Self::Paypal(paypal) => paypal.verify_webhook(headers, body).await,
            Self::Disabled => Err(not_verified("PayPal payments are switched off on this service".into())),
        }
    }

    async fn read(&self, order_id: &str) -> Result<IntentUpdate, ProviderError> {
        match self {
            Self::Sandbox(sandbox) => paypal_order::parse_order(&sandbox.read_order(order_id).await?),
            Self::Paypal(paypal) => paypal.order(order_id).await,
            Self::Disabled => Err(disabled(Rail::Paypal)),
        }
    }
}

/// The provider name of a rail switched off.
pub const DISABLED: &str = "disabled";

impl Gateways {
    /// Whether `rail` takes payments at all.
    pub fn enabled(&self, rail: Rail) -> bool {
        self.name(rail) != DISABLED
    }

    pub fn name(&self, rail: Rail) -> &'static str {
        match rail {
            Rail::Card => self.card.name(),
            Rail::Paypal => self.paypal.name(),
        }
    }

    /// Where the provider's own console shows this purchase's payment (AC9.6.2): Stripe's dashboard in the key's mode,
    /// PayPal's activity page for the capture, on the live site or the sandbox's. The sandbox has none.
    pub fn dashboard_url(&self, purchase: &crate::domain::purchase::Purchase) -> Option<String> {
        match (purchase.rail, &self.card, &self.paypal) {
            (Rail::Card, CardGateway::Stripe(stripe), _) => {
                purchase.intent_id.as_deref().map(|pi| stripe.dashboard_url(pi))
            }
            (Rail::Paypal, _, PaypalGateway::Paypal(paypal)) => {
                purchase.charge.as_deref().map(|capture| paypal.activity_url(capture))
            }
            _ => None,
        }
    }

    pub async fn create_intent(&self, rail: Rail, request: NewIntent<'_>) -> Result<IntentUpdate, ProviderError> {
        match (rail, &self.card, &self.paypal) {
            (Rail::Card, CardGateway::Sandbox(sandbox), _) => {
                stripe_event::parse_intent(&sandbox.create_intent(request).await?)
            }
            (Rail::Card, CardGateway::Stripe(stripe), _) => stripe.create_intent(request).await,
            (Rail::Paypal, _, PaypalGateway::Sandbox(sandbox)) => {
                paypal_order::parse_order(&sandbox.create_order(request).await?)
            }
            (Rail::Paypal, _, PaypalGateway::Paypal(paypal)) => paypal.create_order(request).await,
            (Rail::Card, CardGateway::Disabled, _) | (Rail::Paypal, _, PaypalGateway::Disabled) => Err(disabled(rail)),
        }
    }

    /// Confirms a card intent with its method, or captures an approved PayPal order.
    pub async fn confirm_intent(
        &self,
        rail: Rail,
        intent_id: &str,
        payment_method: Option<&PaymentMethodId>,
        idempotency_key: &str,
    ) -> Result<IntentUpdate, ProviderError> {
        let method = || {
            payment_method.ok_or_else(|| ProviderError::Rejected {
                code: "payment_method_required".into(),
                message: "a card payment needs a payment method".into(),
            })
        };
        match (rail, &self.card, &self.paypal) {
            (Rail::Card, CardGateway::Sandbox(sandbox), _) => {
                stripe_event::parse_intent(&sandbox.confirm_intent(intent_id, method()?).await?)
            }
            (Rail::Card, CardGateway::Stripe(stripe), _) => {
                stripe.confirm_intent(intent_id, method()?, idempotency_key).await
            }
            (Rail::Paypal, _, PaypalGateway::Sandbox(sandbox)) => match sandbox.capture_order(intent_id).await {
                Ok(order) => paypal_order::parse_order(&order),
                Err(ProviderError::Rejected { code, .. }) if code == "INSTRUMENT_DECLINED" => {
                    Ok(paypal_order::refused_capture(intent_id, idempotency_key, &code))
                }
                Err(ProviderError::Rejected { .. }) => self.paypal.read(intent_id).await,
                Err(e) => Err(e),
            },
            (Rail::Paypal, _, PaypalGateway::Paypal(paypal)) => paypal.capture(intent_id, idempotency_key).await,
            (Rail::Card, CardGateway::Disabled, _) | (Rail::Paypal, _, PaypalGateway::Disabled) => Err(disabled(rail)),
        }
    }

    pub async fn retrieve_intent(&self, rail: Rail, intent_id: &str) -> Result<IntentUpdate, ProviderError> {
        match (rail, &self.card) {
            (Rail::Card, CardGateway::Sandbox(sandbox)) => {
                stripe_event::parse_intent(&sandbox.retrieve_intent(intent_id).await?)
            }
            (Rail::Card, CardGateway::Stripe(stripe)) => stripe.retrieve_intent(intent_id).await,
            (Rail::Card, CardGateway::Disabled) => Err(disabled(rail)),
            (Rail::Paypal, _) => self.paypal.read(intent_id).await,
        }
    }

    /// Does `rail`'s provider answer? A read of an intent that does not exist: "not found" is an answer.
    pub async fn probe(&self, rail: Rail) -> bool {
        let absent = match rail {
            Rail::Card => "pi_purser_probe",
            Rail::Paypal => "PURSER-PROBE",
        };
        !matches!(self.retrieve_intent(rail, absent).await, Err(ProviderError::Unreachable(_)))
    }

    /// An admin's answer to a dispute (`None`: only read it), at the provider whose dispute it is (the sandbox
    /// plays Stripe's).
    pub async fn dispute(&self, provider: &str, id: &str, answer: Option<&Answer>) -> Result<Report, ProviderError> {
        match (provider, &self.card, &self.paypal) {
            (stripe::PROVIDER, CardGateway::Stripe(stripe), _) => stripe.dispute(id, answer).await,
            (stripe::PROVIDER, CardGateway::Sandbox(sandbox), _) => sandbox.dispute(id, answer).await,
            ("paypal", _, PaypalGateway::Paypal(paypal)) => paypal.dispute(id, answer).await,
            _ => Err(ProviderError::Rejected {
                code: "dispute_provider_unavailable".into(),
                message: format!("This service does not reach the {provider} account this dispute was raised at."),
            }),
        }
    }

    pub async fn refund(&self, rail: Rail, refund: NewRefund<'_>) -> Result<RefundOutcome, ProviderError> {
        match (rail, &self.card, &self.paypal) {
            (Rail::Card, CardGateway::Sandbox(sandbox), _) => sandbox.refund_intent(refund.intent_id).await,
            (Rail::Card, CardGateway::Stripe(stripe), _) => stripe.refund(&refund).await,
            (Rail::Paypal, _, PaypalGateway::Sandbox(sandbox)) => sandbox.refund_order(refund.intent_id).await,
            (Rail::Paypal, _, PaypalGateway::Paypal(paypal)) => paypal.refund(&refund).await,
            (Rail::Card, CardGateway::Disabled, _) | (Rail::Paypal, _, PaypalGateway::Disabled) => Err(disabled(rail)),
        }
    }

    /// Cancels an unpaid intent. A PayPal order cannot be voided before capture; an uncaptured one simply lapses, so
    /// this reads it and reports it cancelled unless it was paid after all.
    pub async fn cancel_intent(&self, rail: Rail, intent_id: &str) -> Result<IntentUpdate, ProviderError> {
        match (rail, &self.card) {
            (Rail::Card, CardGateway::Sandbox(sandbox)) => {
                stripe_event::parse_intent(&sandbox.cancel_intent(intent_id).await?)
            }
            (Rail::Card, CardGateway::Stripe(stripe)) => stripe.cancel_intent(intent_id).await,
            (Rail::Card, CardGateway::Disabled) => Err(disabled(rail)),
            (Rail::Paypal, _) => {
                let order = self.paypal.read(intent_id).await?;
                Ok(match order.status {
                    IntentStatus::Succeeded | IntentStatus::Processing => order,
                    _ => IntentUpdate { status: IntentStatus::Canceled, next_action: None, ..order },
                })
            }
        }
    }
}
