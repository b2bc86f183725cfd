//! The purchase state machine, sans-IO: `Purchase::on(input, now, policy)` returns a step: the next state, the records
//! the step's transaction writes (the credit grant, outbox rows, alerts) and the effects the actor carries out after
//! the commit (provider calls, timers). Time comes in as an argument; nothing here
//! touches a clock, a socket or a database, so every path is testable with plain values.
use super::failure::FailureCode;
use super::ids::{ClientId, PaymentMethodId};
use super::money::{Credits, Money};
use super::package::{Package, PackageId};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    Succeeded,
    Failed,
    Expired,
    /// Paid, but the fraud monitor asked for a person's look: credits wait for an admin's release (AC9.3.4).
    UnderReview,
    /// Confirmed fraud: the payment is given back and no credits were granted (AC9.3.5).
    Reversed,
}

impl Status {
    /// Terminal states never change again. `Failed` is not one: like a Stripe PaymentIntent after a decline, the
    /// client may confirm again (another card, or a manual retry) until the checkout expires.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Expired | Self::Reversed)
    }

    /// Waiting for the client (or an admin) to act, not for a provider: nothing will happen to it but a person's
    /// move or its deadline.
    pub fn waits_on_a_person(self) -> bool {
        matches!(
            self,
            Self::RequiresPaymentMethod
                | Self::RequiresConfirmation
                | Self::RequiresAction
                | Self::Failed
                | Self::UnderReview
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresConfirmation => "requires_confirmation",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::UnderReview => "under_review",
            Self::Reversed => "reversed",
        }
    }
}

/// The provider's view of its payment intent, from a call's answer or a webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntentUpdate {
    pub intent_id: String,
    pub status: IntentStatus,
    pub client_secret: Option<String>,
    pub next_action: Option<serde_json::Value>,
    /// The charge attempt a failure reports on: the same failure reaches us by the call's answer and by webhook,
    /// and must count once.
    pub charge: Option<String>,
    pub failure: Option<FailureCode>,
    /// A bank debit (ACH): `processing` lasts days, until the bank clears or returns it.
    #[serde(default)]
    pub bank_debit: bool,
    /// What the payer paid with, when the provider says (PayPal: `paypal`, `paypal_credit`, `venmo`, `card`).
    #[serde(default)]
    pub funding_source: Option<String>,
    /// The amount and currency the provider says were paid, when it says.
    #[serde(default)]
    pub paid: Option<Money>,
    /// PayPal's seller protection on the capture, when it says.
    #[serde(default)]
    pub seller_protection: Option<SellerProtection>,
    /// Stripe Radar's verdict on the charge, when the message carries the charge (a call's answer, asked with the
    /// charge expanded); `None` when it does not say (a webhook's charge is only an id).
    #[serde(default)]
    pub risk: Option<Risk>,
    /// Stripe's own receipt for the charge (`receipt_url`), where the charge is expanded.
    #[serde(default)]
    pub receipt_url: Option<String>,
}

/// Stripe Radar's assessment of a charge (`outcome.risk_level`, `outcome.risk_score`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    /// `normal`, `elevated`, `highest`, or `not_assessed` (no Radar on the charge, or none reported).
    pub level: String,
    pub score: Option<i64>,
}

impl Risk {
    pub fn not_assessed() -> Self {
        Self { level: "not_assessed".into(), score: None }
    }

    /// What Radar's verdict makes of a paid charge (AC9.3.4): `elevated` waits for an admin before its credits are
    /// granted; `highest`, let through by one of the account's rules, is declined after the fact: given back.
    fn verdict(&self) -> Option<RiskVerdict> {
        let score = self.score.map(|s| format!(", score {s}")).unwrap_or_default();
        match self.level.as_str() {
            "elevated" => Some(RiskVerdict::Review(format!("Stripe Radar rates this payment's risk elevated{score}"))),
            "highest" => Some(RiskVerdict::Decline(format!(
                "Stripe Radar rates this payment's risk highest{score}: declined and given back"
            ))),
            _ => None,
        }
    }
}

enum RiskVerdict {
    Review(String),
    Decline(String),
}

/// Who declines a payment on Radar's word, in the audit trail and on the flag.
pub const RADAR: &str = "stripe-radar";
/// Mixed into a purchase's id to name the refund that declines it on Radar's word.
const RADAR_REVERSAL: u128 = 0x5241_4441_5248_4947_4845_5354_5245_5631;

/// PayPal's seller protection of a capture (`seller_protection`): whether a chargeback or a claim of the listed kinds
/// would be covered by PayPal rather than paid by the merchant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerProtection {
    /// `ELIGIBLE`, `PARTIALLY_ELIGIBLE` or `NOT_ELIGIBLE`.
    pub status: String,
    /// The claims covered: `ITEM_NOT_RECEIVED`, `UNAUTHORIZED_TRANSACTION`.
    #[serde(default)]
    pub dispute_categories: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    Succeeded,
    Canceled,
}

/// Operator-set limits the machine obeys.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub checkout_ttl: TimeDelta,
    /// Confirmations per round (the client's confirm plus automatic retries of transient failures).
    pub max_attempts: u32,
    /// Confirmations over the purchase's life, every round included: past it a new round is refused, so one
    /// checkout cannot test card after card.
    pub max_attempts_per_purchase: u32,
    pub retry_base: TimeDelta,
    /// The card provider reports Radar's verdict on the charges it answers with (Stripe): a success it reports
    /// without one (a webhook, whose charge is only an id) is read back before any credit is granted.
    pub radar: bool,
}

impl Policy {
    /// Exponential backoff: base, 2×base, 4×base…
    fn backoff(&self, retries_so_far: u32) -> TimeDelta {
        self.retry_base * 2_i32.saturating_pow(retries_so_far.min(16))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryKind {
    /// Confirm again after a transient failure.
    Confirm,
    /// Ask the provider what happened to a call whose answer never came.
    Reconcile,
    /// Create the intent again (same idempotency key) after the first create got no answer, or was held by a pause.
    Create,
    /// Send the current attempt's confirmation (same idempotency key), held by a pause.
    Resend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRetry {
    pub kind: RetryKind,
    pub at: DateTime<Utc>,
}

/// How the client pays: which provider family runs the purchase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rail {
    /// Stripe or the sandbox's card side: PaymentIntents confirmed with a payment method.
    #[default]
    Card,
    /// PayPal Orders v2 or the sandbox's PayPal side: the payer approves at PayPal, Purser captures.
    Paypal,
}

impl Rail {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Paypal => "paypal",
        }
    }
}

/// What the client asked for when opening the checkout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkout {
    pub rail: Rail,
    pub payment_method: Option<PaymentMethodId>,
    pub save_method: bool,
    /// Where the receipt goes: the email in the client's token.
    pub receipt_email: Option<String>,
    /// Why the fraud monitor wants a person to look before credits are granted.
    pub review: Option<String>,
    /// The button the payer chose in PayPal's buttons (`paylater`, `venmo`…), before PayPal's order says more.
    pub funding_source: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    Card,
    /// ACH: about four business days.
    BankDebit,
}

impl Settlement {
    /// What the client is told to expect, in seconds.
    pub fn estimate_seconds(self) -> i64 {
        match self {
            Self::Card => 60,
            Self::BankDebit => 4 * 24 * 3600,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    Expiry,
    Retry,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    pub id: Uuid,
    pub client: ClientId,
    pub package: PackageId,
    pub price: Money,
    pub credits: Credits,
    pub status: Status,
    #[serde(default)]
    pub rail: Rail,
    #[serde(default)]
    pub receipt_email: Option<String>,
    /// Set by the fraud monitor: a successful payment waits for an admin before its credits are granted.
    #[serde(default)]
    pub review: Option<String>,
    /// Confirmed fraud: the refund giving the payment back. The purchase is `reversed` once that refund is made.
    #[serde(default)]
    pub reversal: Option<Uuid>,
    pub intent_id: Option<String>,
    pub client_secret: Option<String>,
    pub next_action: Option<serde_json::Value>,
    pub payment_method: Option<PaymentMethodId>,
    /// "Save for future purchases": the provider keeps the method in the client's vault once it is paid with.
    #[serde(default)]
    pub save_method: bool,
    #[serde(default)]
    pub funding_source: Option<String>,
    /// PayPal's seller protection on the capture that paid.
    #[serde(default)]
    pub seller_protection: Option<SellerProtection>,
    /// The charge (Stripe) or capture (PayPal) that paid; disputes and refunds name it.
    #[serde(default)]
    pub charge: Option<String>,
    /// The provider's own receipt page for the payment (Stripe's `receipt_url`), when it has one.
    #[serde(default)]
    pub receipt_url: Option<String>,
    /// The provider has the payment and settles it later; credits wait for its success.
    #[serde(default)]
    pub settling: Option<Settlement>,
    /// Confirmations sent to the provider, over the purchase's life; names the provider's idempotency key.
    pub attempt: u32,
    /// Automatic retries used in the current round; a client's confirm starts a new round.
    pub auto_retries: u32,
    pub failure: Option<FailureCode>,
    pub credits_granted: bool,
    pub settled_charges: Vec<String>,
    pub next_retry: Option<PendingRetry>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    IntentCreated(IntentUpdate),
    /// The provider refused to create the intent (an unknown payment method, say).
    IntentRefused(FailureCode),
    /// The client's confirm. After a failure it only reports the failure, unless the client asks for another go:
    /// `retry`, or a new payment method.
    Confirm {
        payment_method: Option<PaymentMethodId>,
        retry: bool,
        /// The fraud screen's reason to hold a new payment method's payment for review.
        review: Option<String>,
    },
    Provider(IntentUpdate),
    /// A provider call got no answer (network, timeout, 5xx, 429): its outcome is unknown, and it is retried.
    ProviderUnreachable,
    /// A pause held the provider call the last step asked for: it never left, and is tried again later.
    Held,
    /// The provider refused a read of the payment for good (invalid request, authentication, not found): the
    /// payment stops with a clear failure and an admin alert instead of being retried forever. `code` is the
    /// provider's.
    ProviderRefused {
        code: String,
    },
    /// The payer turned back at the provider's approval page (PayPal's cancel URL).
    PayerCancelled,
    /// The actor came back after a restart or passivation.
    Recovered,
    /// An admin asks to align the purchase with the provider's truth (a webhook that never came).
    Sync,
    /// An admin looked at a held payment and lets it through.
    Release,
    /// An admin confirms a held payment is fraud: the money goes back through refund `refund`, nothing is granted,
    /// the account is flagged (`by`, `reason`) and the client told.
    ConfirmFraud {
        refund: Uuid,
        by: String,
        reason: String,
    },
    /// The provider has given a fraudulent payment back: the reversal is done.
    ReversalRefunded,
    RetryDue,
    ExpiryDue,
}

impl Input {
    /// The name of a provider's news (`Provider`), for a step that applies it without the input at hand.
    pub const PROVIDER_UPDATE: &'static str = "provider_update";

    pub fn name(&self) -> &'static str {
        match self {
            Self::IntentCreated(_) => "intent_created",
            Self::IntentRefused(_) => "intent_refused",
            Self::Confirm { .. } => "confirm_requested",
            Self::Provider(_) => Self::PROVIDER_UPDATE,
            Self::ProviderUnreachable => "provider_unreachable",
            Self::Held => "held_by_pause",
            Self::ProviderRefused { .. } => "provider_refused",
            Self::PayerCancelled => "payer_cancelled",
            Self::Recovered => "recovered",
            Self::Sync => "manual_sync",
            Self::Release => "review_released",
            Self::ConfirmFraud { .. } => "fraud_confirmed",
            Self::ReversalRefunded => "reversal_refunded",
            Self::RetryDue => "retry_due",
            Self::ExpiryDue => "expiry_due",
        }
    }
}

/// What a step writes in its own transaction, beside the new state: a record commits with the step or not at all.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// The credit grant (the ledger's unique key makes a second one impossible) and the invoice.
    GrantCredits { credits: Credits },
    /// An outbox row for the receipt email.
    QueueReceipt,
    /// The fraud flag on the account, the notice to the client, and the refund that gives the whole payment back,
    /// already approved.
    OpenReversal { refund: Uuid, by: String, reason: String },
    /// An admin alert that the provider refused a request about this payment.
    AlertProviderRefused { code: String },
    /// An admin alert that the provider reports a payment of another amount or currency than the price.
    AlertAmountMismatch { paid: Money },
}

/// What the actor does after the step's transaction has committed: provider calls, timers, other actors.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    CreateIntent {
        idempotency_key: String,
    },
    /// Confirm a card intent with its method, or capture an approved PayPal order.
    ConfirmIntent {
        intent_id: String,
        payment_method: Option<PaymentMethodId>,
        idempotency_key: String,
    },
    RetrieveIntent {
        intent_id: String,
    },
    CancelIntent {
        intent_id: String,
    },
    /// After the commit: the refund's actor pays the reversal back (and retries, and recovers after a crash).
    StartReversal {
        refund: Uuid,
    },
    /// After the commit: see whether the reversal's refund is done (a crash may have come between the two).
    CheckReversal {
        refund: Uuid,
    },
    ArmTimer {
        timer: Timer,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub purchase: Purchase,
    /// Written in the step's transaction.
    pub records: Vec<Record>,
    /// Run after it commits.
    pub effects: Vec<Effect>,
}

impl Step {
    fn unchanged(purchase: &Purchase) -> Self {
        Self { purchase: purchase.clone(), records: vec![], effects: vec![] }
    }

    /// True when nothing needs persisting or doing.
    pub fn is_noop(&self, before: &Purchase) -> bool {
        self.records.is_empty() && self.effects.is_empty() && self.purchase == *before
    }

    /// True when this step is a decline of the payment (not a provider fault): the fraud monitor counts those.
    pub fn is_decline(&self, before: &Purchase) -> bool {
        self.purchase.status == Status::Failed
            && before.status != Status::Failed
            && self.purchase.failure.as_ref().is_some_and(FailureCode::is_decline)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the checkout has expired; start a new one")]
    Expired,
    #[error("the payment intent is still being created; try again in a moment")]
    NotReady,
    #[error("a paymentMethodId is needed to confirm this payment")]
    PaymentMethodRequired,
    #[error("this checkout could not be started at the provider; start a new one")]
    NeverStarted,
    #[error("PayPal did not take this order; start a new PayPal checkout")]
    NewCheckoutNeeded,
    #[error("only a payment held for review (and not already being reversed) can be released or reversed")]
    NotUnderReview,
    #[error("this checkout has been tried too many times; start a new one")]
    TooManyAttempts,
}

impl Purchase {
    pub fn open(
        id: Uuid,
        client: ClientId,
        package: &Package,
        checkout: Checkout,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Step {
        let expires_at = now + policy.checkout_ttl;
        // The create is watched by a deadline in the row: if the node making it dies before its answer is recorded,
        // another node creates again under the same key (which answers the same intent) once it is due.
        let watchdog = now + (policy.retry_base * 8).max(TimeDelta::seconds(10));
        let purchase = Purchase {
            id,
            client,
            package: package.id.clone(),
            price: package.price,
            credits: package.credits,
            status: Status::Created,
            rail: checkout.rail,
            receipt_email: checkout.receipt_email,
            review: checkout.review,
            reversal: None,
            intent_id: None,
            client_secret: None,
            next_action: None,
            payment_method: checkout.payment_method,
            save_method: checkout.save_method,
            funding_source: checkout.funding_source,
            seller_protection: None,
            charge: None,
            receipt_url: None,
            settling: None,
            attempt: 0,
            auto_retries: 0,
            failure: None,
            credits_granted: false,
            settled_charges: vec![],
            next_retry: Some(PendingRetry { kind: RetryKind::Create, at: watchdog }),
            expires_at,
            created_at: now,
            updated_at: now,
        };
        // The timers first: the create's answer settles the watchdog, which must be armed before it.
        let effects = vec![
            Effect::ArmTimer { timer: Timer::Expiry, at: expires_at },
            Effect::ArmTimer { timer: Timer::Retry, at: watchdog },
            Effect::CreateIntent { idempotency_key: format!("purchase-{id}-create") },
        ];
        Step { purchase, records: vec![], effects }
    }

    /// The timers a freshly started actor must arm, from the persisted deadlines.
    pub fn deadlines(&self) -> Vec<(Timer, DateTime<Utc>)> {
        if self.status.is_terminal() {
            return vec![];
        }
        let mut timers = vec![(Timer::Expiry, self.expires_at)];
        if let Some(retry) = self.next_retry {
            timers.push((Timer::Retry, retry.at));
        }
        timers
    }

    /// The earliest of `deadlines`: when this purchase next needs a timer's input.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.deadlines().into_iter().map(|(_, at)| at).min()
    }

    pub fn on(&self, input: Input, now: DateTime<Utc>, policy: &Policy) -> Result<Step, Rejected> {
        if self.status.is_terminal() {
            return match input {
                Input::Confirm { .. } if self.status == Status::Expired => Err(Rejected::Expired),
                Input::Release | Input::ConfirmFraud { .. } => Err(Rejected::NotUnderReview),
                _ => Ok(Step::unchanged(self)),
            };
        }
        let mut next = self.clone();
        next.updated_at = now;
        let mut records = Vec::new();
        let effects = match input {
            Input::IntentCreated(update) => next.on_intent_created(update),
            Input::IntentRefused(failure) => next.on_intent_refused(failure),
            Input::Confirm { payment_method, retry, review } => {
                next.on_confirm(payment_method, retry, review, policy)?
            }
            Input::Provider(update) => next.on_provider(update, now, policy, &mut records),
            Input::ProviderUnreachable => next.on_unreachable(now, policy),
            Input::Held => next.on_held(now, policy),
            Input::ProviderRefused { code } => next.on_provider_refused(code, &mut records),
            Input::PayerCancelled => next.on_payer_cancelled(),
            Input::Recovered => next.on_recovered(),
            Input::Sync => match next.reversal {
                Some(refund) if next.status == Status::UnderReview => vec![Effect::CheckReversal { refund }],
                _ => next.intent_id.clone().map(|intent_id| Effect::RetrieveIntent { intent_id }).into_iter().collect(),
            },
            Input::Release if next.status == Status::UnderReview && next.reversal.is_none() => {
                next.grant(&mut records);
                vec![]
            }
            Input::ConfirmFraud { refund, by, reason }
                if next.status == Status::UnderReview && next.reversal.is_none() =>
            {
                next.reversal = Some(refund);
                records.push(Record::OpenReversal { refund, by, reason });
                vec![Effect::StartReversal { refund }]
            }
            Input::Release | Input::ConfirmFraud { .. } => return Err(Rejected::NotUnderReview),
            // Reversed only once the provider's refund is recorded, never before.
            Input::ReversalRefunded if next.status == Status::UnderReview && next.reversal.is_some() => {
                next.status = Status::Reversed;
                vec![]
            }
            Input::ReversalRefunded => vec![],
            Input::RetryDue => next.on_retry_due(now),
            Input::ExpiryDue => next.on_expiry_due(now, policy),
        };
        if records.is_empty() && effects.is_empty() && next.same_state_as(self) {
            return Ok(Step::unchanged(self));
        }
        Ok(Step { purchase: next, records, effects })
    }

    fn same_state_as(&self, other: &Purchase) -> bool {
        Purchase { updated_at: other.updated_at, ..self.clone() } == *other
    }

    fn grant(&mut self, records: &mut Vec<Record>) {
        self.status = Status::Succeeded;
        self.credits_granted = true;
        records.extend([Record::GrantCredits { credits: self.credits }, Record::QueueReceipt]);
    }

    fn on_intent_created(&mut self, update: IntentUpdate) -> Vec<Effect> {
        if self.status != Status::Created {
            return vec![];
        }
        self.next_retry = None;
        self.auto_retries = 0;
        self.intent_id = Some(update.intent_id);
        self.client_secret = update.client_secret;
        self.status = match update.status {
            // PayPal: the payer must approve the order at PayPal first.
            IntentStatus::RequiresAction => {
                self.next_action = update.next_action;
                Status::RequiresAction
            }
            _ if self.payment_method.is_some() => Status::RequiresConfirmation,
            _ => Status::RequiresPaymentMethod,
        };
        vec![]
    }

    fn on_payer_cancelled(&mut self) -> Vec<Effect> {
        if matches!(self.status, Status::RequiresAction | Status::RequiresConfirmation | Status::RequiresPaymentMethod)
        {
            self.status = Status::Failed;
            self.failure = Some(FailureCode::PayerCancelled);
            self.next_action = None;
        }
        vec![]
    }

    fn on_intent_refused(&mut self, failure: FailureCode) -> Vec<Effect> {
        if self.status == Status::Created {
            self.next_retry = None;
            self.status = Status::Failed;
            self.failure = Some(failure);
        }
        vec![]
    }

    fn on_confirm(
        &mut self,
        payment_method: Option<PaymentMethodId>,
        retry: bool,
        review: Option<String>,
        policy: &Policy,
    ) -> Result<Vec<Effect>, Rejected> {
        match self.status {
            Status::Failed if !retry && payment_method.is_none() => Ok(vec![]),
            Status::Created => Err(Rejected::NotReady),
            Status::Processing => Ok(vec![]),
            // The client is back from the 3-D Secure modal: ask the provider how it went rather than wait for the
            // webhook.
            Status::RequiresAction => {
                Ok(self.intent_id.clone().map(|intent_id| Effect::RetrieveIntent { intent_id }).into_iter().collect())
            }
            Status::Failed if self.rail == Rail::Paypal => Err(Rejected::NewCheckoutNeeded),
            Status::RequiresPaymentMethod | Status::RequiresConfirmation | Status::Failed => {
                let intent_id = self.intent_id.clone().ok_or(Rejected::NeverStarted)?;
                let method = payment_method.or_else(|| self.payment_method.clone());
                if self.rail == Rail::Card && method.is_none() {
                    return Err(Rejected::PaymentMethodRequired);
                }
                if self.attempt >= policy.max_attempts_per_purchase {
                    return Err(Rejected::TooManyAttempts);
                }
                if review.is_some() {
                    self.review = review;
                }
                self.auto_retries = 0;
                Ok(self.send_confirmation(intent_id, method))
            }
            // Held for review: nothing to confirm; terminal states never reach here (`on` answers them first).
            Status::UnderReview | Status::Succeeded | Status::Expired | Status::Reversed => Ok(vec![]),
        }
    }

    fn send_confirmation(&mut self, intent_id: String, payment_method: Option<PaymentMethodId>) -> Vec<Effect> {
        self.attempt += 1;
        self.intent_id = Some(intent_id);
        self.payment_method = payment_method;
        self.status = Status::Processing;
        self.failure = None;
        self.next_action = None;
        self.next_retry = None;
        self.settling = None;
        self.confirmation().into_iter().collect()
    }

    /// The confirmation of the current attempt; its idempotency key names the purchase and the attempt.
    fn confirmation(&self) -> Option<Effect> {
        let payment_method = match self.rail {
            Rail::Card => Some(self.payment_method.clone()?),
            Rail::Paypal => None,
        };
        Some(Effect::ConfirmIntent {
            intent_id: self.intent_id.clone()?,
            payment_method,
            idempotency_key: format!("purchase-{}-confirm-{}", self.id, self.attempt),
        })
    }

    fn on_provider(
        &mut self,
        update: IntentUpdate,
        now: DateTime<Utc>,
        policy: &Policy,
        records: &mut Vec<Record>,
    ) -> Vec<Effect> {
        if self.intent_id.as_deref().is_some_and(|id| id != update.intent_id) {
            return vec![];
        }
        // PayPal's order names Pay Later and PayPal Credit `paypal`: the buttons' finer word stays.
        let finer = matches!(self.funding_source.as_deref(), Some("paylater" | "credit"));
        if update.funding_source.is_some() && !(finer && update.funding_source.as_deref() == Some("paypal")) {
            self.funding_source = update.funding_source.clone();
        }
        if update.seller_protection.is_some() {
            self.seller_protection = update.seller_protection.clone();
        }
        if update.receipt_url.is_some() {
            self.receipt_url = update.receipt_url.clone();
        }
        match update.status {
            // Already paid and held: the same success again changes nothing.
            IntentStatus::Succeeded if self.status == Status::UnderReview => vec![],
            IntentStatus::Succeeded if policy.radar && self.rail == Rail::Card && update.risk.is_none() => {
                vec![Effect::RetrieveIntent { intent_id: update.intent_id }]
            }
            IntentStatus::Succeeded => {
                self.charge = update.charge;
                self.failure = None;
                self.next_action = None;
                self.next_retry = None;
                // Credits only for the price: a provider reporting another amount or currency (a tampered or
                // misconfigured intent) grants nothing until an admin has looked.
                if let Some(paid) = update.paid.filter(|paid| *paid != self.price) {
                    self.review = Some(format!(
                        "the provider reports {} {} paid for a price of {} {}",
                        paid.minor,
                        paid.currency.code(),
                        self.price.minor,
                        self.price.currency.code()
                    ));
                    self.status = Status::UnderReview;
                    records.push(Record::AlertAmountMismatch { paid });
                    return vec![];
                }
                match update.risk.as_ref().and_then(Risk::verdict) {
                    Some(RiskVerdict::Review(reason)) => self.review = Some(reason),
                    // Paid, so declined by giving it back: the reversal an admin's confirmed fraud makes, named from
                    // the purchase (a purchase has at most one), which keeps this step free of randomness.
                    Some(RiskVerdict::Decline(reason)) => {
                        let refund = Uuid::from_u128(self.id.as_u128() ^ RADAR_REVERSAL);
                        self.review = Some(reason.clone());
                        self.status = Status::UnderReview;
                        self.reversal = Some(refund);
                        records.push(Record::OpenReversal { refund, by: RADAR.into(), reason });
                        return vec![Effect::StartReversal { refund }];
                    }
                    None => {}
                }
                if self.review.is_some() {
                    self.status = Status::UnderReview;
                    return vec![];
                }
                self.grant(records);
                vec![]
            }
            IntentStatus::Canceled => {
                self.status = Status::Expired;
                self.next_retry = None;
                vec![]
            }
            IntentStatus::RequiresAction => {
                if matches!(self.status, Status::Processing | Status::RequiresConfirmation) && self.next_retry.is_none()
                {
                    self.status = Status::RequiresAction;
                    self.next_action = update.next_action;
                    if update.client_secret.is_some() {
                        self.client_secret = update.client_secret;
                    }
                }
                vec![]
            }
            IntentStatus::Processing => {
                if matches!(self.status, Status::RequiresAction | Status::Processing) && self.next_retry.is_none() {
                    self.status = Status::Processing;
                    self.next_action = None;
                    self.settling = Some(if update.bank_debit { Settlement::BankDebit } else { Settlement::Card });
                }
                vec![]
            }
            IntentStatus::RequiresPaymentMethod | IntentStatus::RequiresConfirmation => match update.failure {
                Some(failure) => self.on_attempt_failed(failure, update.charge, now, policy),
                // Our confirmation never reached the provider (the call failed before it landed): send it again,
                // under the same idempotency key so that it cannot count twice.
                None if self.status == Status::Processing && self.next_retry.is_none() => {
                    self.confirmation().into_iter().collect()
                }
                // Approved at the provider (a PayPal order), ready for the capture.
                None if self.status == Status::RequiresAction
                    && update.status == IntentStatus::RequiresConfirmation =>
                {
                    match self.intent_id.clone() {
                        Some(intent_id) => self.send_confirmation(intent_id, self.payment_method.clone()),
                        None => vec![],
                    }
                }
                None => vec![],
            },
        }
    }

    fn on_attempt_failed(
        &mut self,
        failure: FailureCode,
        charge: Option<String>,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Vec<Effect> {
        let attempt_outstanding =
            matches!(self.status, Status::Processing | Status::RequiresAction) && self.next_retry.is_none();
        let already_settled = charge.as_ref().is_some_and(|c| self.settled_charges.contains(c));
        if !attempt_outstanding || already_settled {
            return vec![];
        }
        self.settled_charges.extend(charge);
        self.next_action = None;
        if failure.is_transient() && self.auto_retries + 1 < policy.max_attempts {
            let at = now + policy.backoff(self.auto_retries);
            self.auto_retries += 1;
            self.status = Status::Processing;
            self.failure = Some(failure);
            self.next_retry = Some(PendingRetry { kind: RetryKind::Confirm, at });
            return vec![Effect::ArmTimer { timer: Timer::Retry, at }];
        }
        self.status = Status::Failed;
        self.failure = Some(failure);
        vec![]
    }

    fn on_unreachable(&mut self, now: DateTime<Utc>, policy: &Policy) -> Vec<Effect> {
        match self.status {
            // The create got no answer: the provider may or may not have the intent. Ask again later under the same
            // key, which answers the same intent if it was made (sooner than the create's watchdog).
            Status::Created if self.next_retry.is_none_or(|retry| retry.kind == RetryKind::Create) => {
                let backoff = now + policy.backoff(self.auto_retries);
                let at = self.next_retry.map_or(backoff, |watchdog| watchdog.at.min(backoff));
                self.auto_retries += 1;
                self.next_retry = Some(PendingRetry { kind: RetryKind::Create, at });
                vec![Effect::ArmTimer { timer: Timer::Retry, at }]
            }
            Status::Processing if self.next_retry.is_none() => {
                let at = now + policy.backoff(self.auto_retries);
                self.next_retry = Some(PendingRetry { kind: RetryKind::Reconcile, at });
                vec![Effect::ArmTimer { timer: Timer::Retry, at }]
            }
            // A cancel at expiry that got no answer is tried again later.
            _ if now >= self.expires_at => vec![Effect::ArmTimer { timer: Timer::Expiry, at: now + policy.retry_base }],
            _ => vec![],
        }
    }

    /// The call held by a pause is parked as a deadline (the pause is looked at again then), on the same
    /// idempotency key: a create is created again, a confirmation sent again, a cancel at expiry tried again.
    fn on_held(&mut self, now: DateTime<Utc>, policy: &Policy) -> Vec<Effect> {
        let at = now + policy.retry_base;
        let kind = match self.status {
            Status::Created => RetryKind::Create,
            Status::Processing => RetryKind::Resend,
            _ if now >= self.expires_at => return vec![Effect::ArmTimer { timer: Timer::Expiry, at }],
            _ => return vec![],
        };
        self.next_retry = Some(PendingRetry { kind, at });
        vec![Effect::ArmTimer { timer: Timer::Retry, at }]
    }

    fn on_provider_refused(&mut self, code: String, records: &mut Vec<Record>) -> Vec<Effect> {
        if !matches!(self.status, Status::Created | Status::Processing | Status::RequiresAction) {
            return vec![];
        }
        self.status = Status::Failed;
        self.failure = Some(FailureCode::ProviderRefused);
        self.next_retry = None;
        self.next_action = None;
        records.push(Record::AlertProviderRefused { code });
        vec![]
    }

    fn on_recovered(&mut self) -> Vec<Effect> {
        match (self.status, &self.intent_id) {
            // The create call may have reached the provider before the crash; its idempotency key returns the same
            // intent.
            (Status::Created, _) => {
                vec![Effect::CreateIntent { idempotency_key: format!("purchase-{}-create", self.id) }]
            }
            (Status::Processing, Some(intent_id)) if self.next_retry.is_none() => {
                vec![Effect::RetrieveIntent { intent_id: intent_id.clone() }]
            }
            (Status::RequiresAction, Some(intent_id)) => vec![Effect::RetrieveIntent { intent_id: intent_id.clone() }],
            (Status::UnderReview, _) => {
                self.reversal.map(|refund| Effect::CheckReversal { refund }).into_iter().collect()
            }
            _ => vec![],
        }
    }

    fn on_retry_due(&mut self, now: DateTime<Utc>) -> Vec<Effect> {
        let Some(retry) = self.next_retry else {
            return vec![];
        };
        if now < retry.at {
            return vec![];
        }
        if self.status == Status::Created && retry.kind == RetryKind::Create {
            self.next_retry = None;
            return vec![Effect::CreateIntent { idempotency_key: format!("purchase-{}-create", self.id) }];
        }
        if self.status != Status::Processing {
            return vec![];
        }
        let Some(intent_id) = self.intent_id.clone() else { return vec![] };
        self.next_retry = None;
        match retry.kind {
            RetryKind::Confirm => self.send_confirmation(intent_id, self.payment_method.clone()),
            RetryKind::Reconcile => vec![Effect::RetrieveIntent { intent_id }],
            RetryKind::Resend => self.confirmation().into_iter().collect(),
            // Only ever pending while `Created`, answered above.
            RetryKind::Create => vec![],
        }
    }

    fn on_expiry_due(&mut self, now: DateTime<Utc>, policy: &Policy) -> Vec<Effect> {
        if now < self.expires_at {
            return vec![];
        }
        match (&self.intent_id, self.status) {
            // Money may be moving: never expire under it. Look again once it settles.
            (_, Status::Processing) => {
                // A bank debit settles over days: look again much later rather than every few seconds.
                let later = if self.settling.is_some() { policy.checkout_ttl } else { policy.retry_base };
                vec![Effect::ArmTimer { timer: Timer::Expiry, at: now + later }]
            }
            (None, _) => {
                self.status = Status::Expired;
                vec![]
            }
            // Expire only once the provider confirms the cancel, so a payment that won the race is not lost.
            (Some(intent_id), _) => vec![Effect::CancelIntent { intent_id: intent_id.clone() }],
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use proptest::prelude::*;

    /// The policy and package of these tests, also the store's.
    pub(crate) fn policy() -> Policy {
        Policy {
            checkout_ttl: TimeDelta::minutes(30),
            max_attempts: 3,
            max_attempts_per_purchase: 10,
            retry_base: TimeDelta::seconds(2),
            radar: false,
        }
    }

    pub(crate) fn package() -> Package {
        Package {
            id: PackageId::parse("pro-200").unwrap(),
            name: "Pro".into(),
            price: Money::new(16000, Currency::parse("USD").unwrap()).unwrap(),
            credits: Credits(240),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn update(status: IntentStatus, failure: Option<FailureCode>, charge: Option<&str>) -> IntentUpdate {
        IntentUpdate {
            intent_id: "pi_1".into(),
            status,
            client_secret: Some("pi_1_secret_x".into()),
            next_action: None,
            charge: charge.map(str::to_owned),
            failure,
            bank_debit: false,
            funding_source: None,
            paid: None,
            seller_protection: None,
            risk: None,
            receipt_url: None,
        }
    }

    fn ready() -> Purchase {
        let pm = PaymentMethodId::parse("pm_card_visa").ok();
        let opened = Purchase::open(
            Uuid::nil(),
            ClientId::parse("c1").unwrap(),
            &package(),
            Checkout { payment_method: pm, ..Checkout::default() },
            t0(),
            &policy(),
        );
        let created = update(IntentStatus::RequiresConfirmation, None, None);
        opened.purchase.on(Input::IntentCreated(created), t0(), &policy()).unwrap().purchase
    }

    // Issue 17 (1): Radar's verdict on the charge: elevated holds the payment for an admin with the reason, highest (let
    // through by a rule) is declined by giving it back; normal grants; on Stripe, a success reported without a verdict
    // is read back first.
    #[test]
    fn radar_risk_on_the_charge_holds_the_payment_for_review() {
        let paid = |level: Option<&str>| IntentUpdate {
            risk: level.map(|level| Risk { level: level.into(), score: Some(70) }),
            ..update(IntentStatus::Succeeded, None, Some("ch_1"))
        };
        let confirm = Input::Confirm { payment_method: None, retry: false, review: None };
        let confirmed = ready().on(confirm, t0(), &policy()).unwrap().purchase;
        for (level, held) in [("elevated", true), ("highest", true), ("normal", false), ("not_assessed", false)] {
            let step = confirmed.on(Input::Provider(paid(Some(level))), t0(), &policy()).unwrap();
            assert_eq!(step.purchase.status == Status::UnderReview, held, "{level}");
            assert_eq!(grants(&step), usize::from(!held), "{level}");
            if held {
                assert!(step.purchase.review.as_deref().unwrap().contains(&format!("risk {level}, score 70")));
            }
            // Highest is declined after the fact: given back through a reversal, never granted.
            let reversed = matches!(step.effects.as_slice(), [Effect::StartReversal { .. }]);
            assert_eq!(reversed, level == "highest", "{level}");
            assert_eq!(step.purchase.reversal.is_some(), level == "highest", "{level}");
        }
        let stripe = Policy { radar: true, ..policy() };
        let unsaid = confirmed.on(Input::Provider(paid(None)), t0(), &stripe).unwrap();
        assert_eq!(grants(&unsaid), 0);
        assert!(matches!(unsaid.effects.as_slice(), [Effect::RetrieveIntent { .. }]));
        assert_eq!(
            grants(&confirmed.on(Input::Provider(paid(None)), t0(), &policy()).unwrap()),
            1,
            "no Radar, no wait"
        );
    }

    #[test]
    fn a_payment_of_another_amount_or_currency_grants_nothing_and_is_held() {
        let confirmed =
            ready().on(Input::Confirm { payment_method: None, retry: false, review: None }, t0(), &policy());
        let paid_short = IntentUpdate {
            paid: Some(Money::new(100, Currency::parse("USD").unwrap()).unwrap()),
            ..update(IntentStatus::Succeeded, None, Some("ch_1"))
        };
        let step = confirmed.unwrap().purchase.on(Input::Provider(paid_short), t0(), &policy()).unwrap();
        assert_eq!(grants(&step), 0);
        assert_eq!(step.purchase.status, Status::UnderReview);
        assert!(step.records.iter().any(|r| matches!(r, Record::AlertAmountMismatch { .. })));
        let paid_right =
            IntentUpdate { paid: Some(package().price), ..update(IntentStatus::Succeeded, None, Some("ch_1")) };
        let confirmed =
            ready().on(Input::Confirm { payment_method: None, retry: false, review: None }, t0(), &policy());
        let step = confirmed.unwrap().purchase.on(Input::Provider(paid_right), t0(), &policy()).unwrap();
        assert_eq!(grants(&step), 1);
    }

    fn grants(step: &Step) -> usize {
        step.records.iter().filter(|r| matches!(r, Record::GrantCredits { .. })).count()
    }

    #[test]
    fn success_grants_the_package_credits_once() {
        let confirmed =
            ready().on(Input::Confirm { payment_method: None, retry: false, review: None }, t0(), &policy()).unwrap();
        assert_eq!(confirmed.purchase.status, Status::Processing);
        let paid = confirmed
            .purchase
            .on(Input::Provider(update(IntentStatus::Succeeded, None, Some("ch_1"))), t0(), &policy())
            .unwrap();
        assert_eq!(paid.purchase.status, Status::Succeeded);
        assert!(paid.records.contains(&Record::GrantCredits { credits: Credits(240) }));
        let again = paid
            .purchase
            .on(Input::Provider(update(IntentStatus::Succeeded, None, Some("ch_1"))), t0(), &policy())
            .unwrap();
        assert!(again.is_noop(&paid.purchase));
    }

    #[test]
    fn a_fraud_reversal_is_reversed_only_once_its_refund_is_made() {
        let held = Purchase { review: Some("elevated risk".into()), ..ready() };
        let confirmed =
            held.on(Input::Confirm { payment_method: None, retry: false, review: None }, t0(), &policy()).unwrap();
        let success = Input::Provider(update(IntentStatus::Succeeded, None, Some("ch_1")));
        let held = confirmed.purchase.on(success, t0(), &policy()).unwrap().purchase;
        assert_eq!(held.status, Status::UnderReview);

        let refund = Uuid::from_u128(7);
        let fraud = Input::ConfirmFraud { refund, by: "admin".into(), reason: "stolen card".into() };
        let reversing = held.on(fraud.clone(), t0(), &policy()).unwrap();
        assert_eq!(reversing.purchase.status, Status::UnderReview, "not reversed before the money is back");
        assert!(reversing.effects.contains(&Effect::StartReversal { refund }));
        assert_eq!(reversing.purchase.on(fraud, t0(), &policy()), Err(Rejected::NotUnderReview));
        assert_eq!(reversing.purchase.on(Input::Release, t0(), &policy()), Err(Rejected::NotUnderReview));
        let reversed = reversing.purchase.on(Input::ReversalRefunded, t0(), &policy()).unwrap();
        assert_eq!(reversed.purchase.status, Status::Reversed);
        assert_eq!(grants(&reversed), 0);
    }

    #[test]
    fn a_create_with_no_answer_is_made_again_under_the_same_key() {
        let opened = Purchase::open(
            Uuid::nil(),
            ClientId::parse("c1").unwrap(),
            &package(),
            Checkout::default(),
            t0(),
            &policy(),
        );
        let lost = opened.purchase.on(Input::ProviderUnreachable, t0(), &policy()).unwrap();
        let retry = lost.purchase.next_retry.expect("a retry is armed");
        assert_eq!(lost.purchase.status, Status::Created);
        let again = lost.purchase.on(Input::RetryDue, retry.at, &policy()).unwrap();
        let key = format!("purchase-{}-create", Uuid::nil());
        assert_eq!(again.effects, vec![Effect::CreateIntent { idempotency_key: key }]);
        let created = update(IntentStatus::RequiresPaymentMethod, None, None);
        let ready = again.purchase.on(Input::IntentCreated(created), retry.at, &policy()).unwrap().purchase;
        assert_eq!((ready.status, ready.next_retry), (Status::RequiresPaymentMethod, None));
    }

    #[test]
    fn a_confirmation_held_by_a_pause_is_sent_later_under_the_same_key() {
        let confirmed =
            ready().on(Input::Confirm { payment_method: None, retry: false, review: None }, t0(), &policy()).unwrap();
        let sent = confirmed.effects.clone();
        let held = confirmed.purchase.on(Input::Held, t0(), &policy()).unwrap();
        assert_eq!(held.purchase.status, Status::Processing);
        let retry = held.purchase.next_retry.expect("parked as a deadline");
        let again = held.purchase.on(Input::RetryDue, retry.at, &policy()).unwrap();
        assert_eq!(again.effects, sent, "the same confirmation, the same idempotency key");
        assert_eq!(again.purchase.attempt, confirmed.purchase.attempt);
    }

    #[test]
    fn only_a_held_payment_can_be_released_or_reversed() {
        let fraud = Input::ConfirmFraud { refund: Uuid::nil(), by: "admin".into(), reason: "stolen card".into() };
        let confirmed =
            ready().on(Input::Confirm { payment_method: None, retry: false, review: None }, t0(), &policy()).unwrap();
        let success = Input::Provider(update(IntentStatus::Succeeded, None, Some("ch_1")));
        let paid = confirmed.purchase.on(success, t0(), &policy()).unwrap().purchase;
        for purchase in [ready(), paid] {
            assert_eq!(purchase.on(fraud.clone(), t0(), &policy()), Err(Rejected::NotUnderReview));
            assert_eq!(purchase.on(Input::Release, t0(), &policy()), Err(Rejected::NotUnderReview));
        }
    }

    #[test]
    fn a_transient_failure_is_retried_with_backoff_then_gives_up() {
        let mut p = ready()
            .on(Input::Confirm { payment_method: None, retry: false, review: None }, t0(), &policy())
            .unwrap()
            .purchase;
        let mut now = t0();
        for (i, charge) in ["ch_1", "ch_2"].iter().enumerate() {
            let step = p
                .on(
                    Input::Provider(update(
                        IntentStatus::RequiresPaymentMethod,
                        Some(FailureCode::ProcessingError),
                        Some(charge),
                    )),
                    now,
                    &policy(),
                )
                .unwrap();
            let retry = step.purchase.next_retry.expect("a retry is scheduled");
            assert_eq!(retry.at - now, TimeDelta::seconds(2 << i));
            now = retry.at;
            p = step.purchase.on(Input::RetryDue, now, &policy()).unwrap().purchase;
            assert_eq!(p.attempt, i as u32 + 2);
        }
        let last = p
            .on(
                Input::Provider(update(
                    IntentStatus::RequiresPaymentMethod,
                    Some(FailureCode::ProcessingError),
                    Some("ch_3"),
                )),
                now,
                &policy(),
            )
            .unwrap();
        assert_eq!(last.purchase.status, Status::Failed);
        assert_eq!(last.purchase.failure, Some(FailureCode::ProcessingError));
    }

    #[test]
    fn a_decline_fails_at_once_and_the_same_charge_counts_once() {
        let p = ready()
            .on(Input::Confirm { payment_method: None, retry: false, review: None }, t0(), &policy())
            .unwrap()
            .purchase;
        let declined = update(IntentStatus::RequiresPaymentMethod, Some(FailureCode::CardDeclined), Some("ch_1"));
        let failed = p.on(Input::Provider(declined.clone()), t0(), &policy()).unwrap().purchase;
        assert_eq!(failed.status, Status::Failed);
        let retried = failed
            .on(
                Input::Confirm {
                    payment_method: PaymentMethodId::parse("pm_card_mastercard").ok(),
                    retry: false,
                    review: None,
                },
                t0(),
                &policy(),
            )
            .unwrap()
            .purchase;
        assert_eq!(retried.status, Status::Processing);
        // The first attempt's webhook arrives late: it must not fail the second attempt.
        let late = retried.on(Input::Provider(declined), t0(), &policy()).unwrap();
        assert!(late.is_noop(&retried));
    }

    #[test]
    fn expiry_cancels_at_the_provider_before_expiring() {
        let p = ready();
        let due = p.expires_at;
        assert!(p.on(Input::ExpiryDue, due - TimeDelta::seconds(1), &policy()).unwrap().is_noop(&p));
        let step = p.on(Input::ExpiryDue, due, &policy()).unwrap();
        assert_eq!(step.effects, vec![Effect::CancelIntent { intent_id: "pi_1".into() }]);
        let expired = step
            .purchase
            .on(Input::Provider(update(IntentStatus::Canceled, None, None)), due, &policy())
            .unwrap()
            .purchase;
        assert_eq!(expired.status, Status::Expired);
        assert_eq!(
            expired.on(Input::Confirm { payment_method: None, retry: false, review: None }, due, &policy()),
            Err(Rejected::Expired)
        );
    }

    fn arb_input() -> impl Strategy<Value = Input> {
        let status = prop_oneof![
            Just(IntentStatus::RequiresPaymentMethod),
            Just(IntentStatus::RequiresConfirmation),
            Just(IntentStatus::RequiresAction),
            Just(IntentStatus::Processing),
            Just(IntentStatus::Succeeded),
            Just(IntentStatus::Canceled),
        ];
        let failure = prop_oneof![
            Just(None),
            Just(Some(FailureCode::CardDeclined)),
            Just(Some(FailureCode::ProcessingError)),
            Just(Some(FailureCode::InsufficientFunds)),
        ];
        let charge = prop_oneof![Just(None), Just(Some("ch_1")), Just(Some("ch_2")), Just(Some("ch_3"))];
        let update = (status, failure, charge).prop_map(|(s, f, c)| update(s, f, c));
        prop_oneof![
            update.clone().prop_map(Input::IntentCreated),
            update.prop_map(Input::Provider),
            Just(Input::Confirm { payment_method: None, retry: false, review: None }),
            Just(Input::Confirm {
                payment_method: PaymentMethodId::parse("pm_card_amex").ok(),
                retry: false,
                review: None
            }),
            Just(Input::Confirm { payment_method: None, retry: true, review: None }),
            Just(Input::ProviderUnreachable),
            Just(Input::Held),
            Just(Input::ProviderRefused { code: "resource_missing".into() }),
            Just(Input::Recovered),
            Just(Input::Sync),
            Just(Input::Release),
            Just(Input::ConfirmFraud { refund: Uuid::nil(), by: "admin".into(), reason: "stolen card".into() }),
            Just(Input::ReversalRefunded),
            Just(Input::RetryDue),
            Just(Input::ExpiryDue),
        ]
    }

    proptest! {
        // ARCHITECTURE.md invariants: credits at most once and only on a provider's success (for a payment held
        // for review, only on its release); terminal states never change; every failure carries its reason.
        #[test]
        fn invariants_hold_for_any_event_sequence(
            inputs in proptest::collection::vec((arb_input(), 0i64..1200), 1..40),
            with_method in any::<bool>(),
            held in any::<bool>(),
        ) {
            let pm = with_method.then(|| PaymentMethodId::parse("pm_card_visa").unwrap());
            let review = held.then(|| "elevated risk".to_owned());
            let mut now = t0();
            let checkout = Checkout { payment_method: pm, review, ..Checkout::default() };
            let mut p = Purchase::open(Uuid::nil(), ClientId::parse("c1").unwrap(), &package(), checkout, now, &policy()).purchase;
            let mut paid = false;
            let mut granted = 0;
            for (input, advance) in inputs {
                now += TimeDelta::seconds(advance);
                let was = p.clone();
                let was_success = matches!(&input, Input::Provider(u) if u.status == IntentStatus::Succeeded);
                let was_release = input == Input::Release;
                let Ok(step) = p.on(input, now, &policy()) else { continue };
                let g = grants(&step);
                // Credits follow a provider's success at once, or, for a held payment, an admin's release of it.
                prop_assert!(g == 0 || (was_success && !held) || (was_release && paid), "credits granted without a paid success");
                paid |= step.purchase.status == Status::UnderReview;
                if step.purchase.status == Status::Reversed {
                    prop_assert!(granted == 0, "a reversed payment granted credits");
                }
                granted += g;
                prop_assert!(granted <= 1, "credits granted twice");
                if was.status.is_terminal() {
                    prop_assert_eq!(&step.purchase, &was, "a terminal state changed");
                }
                if step.purchase.status == Status::Failed {
                    prop_assert!(step.purchase.failure.is_some(), "failed without a reason");
                }
                prop_assert_eq!(step.purchase.credits_granted, step.purchase.status == Status::Succeeded);
                p = step.purchase;
            }
        }
    }
}
