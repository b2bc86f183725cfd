//! The sandbox: an in-process stand-in for Stripe's test mode, so Purser runs with no account anywhere. It honours
//! Stripe's test payment methods (`pm_card_visa` succeeds, `pm_card_visa_chargeDeclined` declines…), keeps its
//! intents in the database so a restart loses nothing, and signs Stripe-shaped webhooks to the service's own
//! endpoint so the real verification and routing path runs. `paypal` plays PayPal's Orders v2 the same way.
mod disputes;
mod paypal;
pub mod tokens;
pub use paypal::FUNDING_SOURCES;

use super::{NewIntent, ProviderError, RefundOutcome};
use crate::domain::ids::{PaymentMethodId, new_key};
use crate::domain::signature as stripe_signature;
use crate::settings::SandboxFaults;
use crate::store::customers;
use chrono::{SubsecRound, Utc};
use entities::sandbox_payment_intents as intents;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Succeed,
    Decline(&'static str),
    /// Fails with `processing_error` on every attempt.
    ProcessingError,
    /// Fails with `processing_error` on the first attempt only.
    TransientProcessingError,
    RequiresAuthentication,
    /// ACH: `processing` until the bank clears or returns the debit (the `_settle` hook).
    BankDebit,
}

/// Stripe's test cards that succeed, by brand and by issuing country: each a card of its own, as a platform's buyers
/// pay with cards of their own (the fraud monitor counts checkouts per card).
pub const SUCCEEDING_CARDS: [&str; 27] = [
    "pm_card_visa",
    "pm_card_mastercard",
    "pm_card_amex",
    "pm_card_visa_debit",
    "pm_card_discover",
    "pm_card_mastercard_debit",
    "pm_card_mastercard_prepaid",
    "pm_card_diners",
    "pm_card_jcb",
    "pm_card_unionpay",
    "pm_card_us",
    "pm_card_br",
    "pm_card_ca",
    "pm_card_mx",
    "pm_card_gb",
    "pm_card_de",
    "pm_card_fr",
    "pm_card_nl",
    "pm_card_es",
    "pm_card_it",
    "pm_card_se",
    "pm_card_ch",
    "pm_card_au",
    "pm_card_jp",
    "pm_card_sg",
    "pm_card_in",
    "pm_card_hk",
];

/// Stripe's test payment methods, plus the sandbox-only transient failure.
fn behaviour(payment_method: &str) -> Option<Behaviour> {
    if SUCCEEDING_CARDS.contains(&payment_method) {
        return Some(Behaviour::Succeed);
    }
    Some(match payment_method {
        EXPIRES_BEFORE_REFUND
        | disputes::CREATE_DISPUTE
        // Stripe's Radar test methods: the charge succeeds, with Radar's verdict on it (`radar_outcome`).
        | "pm_card_riskLevelElevated" | "pm_card_riskLevelHighest" => Behaviour::Succeed,
        // Radar blocks it whatever the rules: a decline.
        "pm_card_chargeDeclinedFraudulent" => Behaviour::Decline("fraudulent"),
        "pm_card_visa_chargeDeclined" => Behaviour::Decline("card_declined"),
        "pm_card_visa_chargeDeclinedInsufficientFunds" => Behaviour::Decline("insufficient_funds"),
        "pm_card_chargeDeclinedExpiredCard" => Behaviour::Decline("expired_card"),
        "pm_card_chargeDeclinedProcessingError" => Behaviour::ProcessingError,
        "pm_sandbox_transientProcessingError" => Behaviour::TransientProcessingError,
        "pm_card_authenticationRequired" | "pm_card_threeDSecure2Required" => Behaviour::RequiresAuthentication,
        BANK_ACCOUNT => Behaviour::BankDebit,
        _ => return None,
    })
}

pub const PROVIDER: &str = "sandbox";

/// Signs a webhook body with a secret: the headers to send with it.
type Signer = fn(&str, &[u8]) -> Vec<(&'static str, String)>;
/// A sandbox-only card that pays, then expires before a refund can reach it (AC9.5.7).
const EXPIRES_BEFORE_REFUND: &str = "pm_sandbox_expiresBeforeRefund";
/// A sandbox-only US bank account (Stripe's test mode needs a bank-account form for one).
const BANK_ACCOUNT: &str = "pm_sandbox_usBankAccount";

pub struct Sandbox {
    db: DatabaseConnection,
    /// The sandbox plays the provider, whose records must survive a crash as Stripe's would (the chaos checker
    /// compares the books with them): its writes join the writer's batches, durable at no commit of their own.
    writer: crate::store::writer::Writer,
    latency: Duration,
    faults: SandboxFaults,
    webhook_secret: String,
    /// Where the service listens, for webhooks to itself; and where browsers reach it, for the PayPal pages.
    service_url: OnceLock<String>,
    public_url: OnceLock<String>,
    http: reqwest::Client,
    /// Intents this node made and has not confirmed yet, as stored, and when: the first confirm, which follows at
    /// once, needs no read. A copy gone stale (another node's request, the reconciler's cancel) is refused by
    /// `store`'s fence, and the confirm retried reads the row.
    unconfirmed: Mutex<HashMap<String, (Instant, intents::Model)>>,
}

/// The most intents kept in `unconfirmed`, and for how long once it is full: the copies of checkouts left open, or
/// confirmed through another node, make way after a minute; while it is full of younger ones, confirms read rows.
const UNCONFIRMED_KEPT: usize = 10_000;
const UNCONFIRMED_FOR: Duration = Duration::from_secs(60);

fn rejected(code: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::Rejected { code: code.to_owned(), message: message.into() }
}

/// An insert that keeps the row already there on `column`'s unique key.
fn on_conflict_do_nothing(column: impl sea_orm::sea_query::IntoIden) -> sea_orm::sea_query::OnConflict {
    sea_orm::sea_query::OnConflict::column(column).do_nothing().to_owned()
}

fn db_error(e: sea_orm::DbErr) -> ProviderError {
    ProviderError::Unreachable(format!("sandbox store: {e}"))
}

impl Sandbox {
    pub fn new(
        db: DatabaseConnection,
        writer: crate::store::writer::Writer,
        latency: Duration,
        faults: SandboxFaults,
        webhook_secret: String,
    ) -> Self {
        Self {
            db,
            writer,
            latency,
            faults,
            webhook_secret,
            service_url: OnceLock::new(),
            public_url: OnceLock::new(),
            http: reqwest::Client::new(),
            unconfirmed: Mutex::default(),
        }
    }

    /// Where the service is, known once its port is bound: `service_url` for webhooks to itself, `public_url` for
    /// the links browsers follow.
    pub fn attach(&self, service_url: String, public_url: String) {
        let _ = self.service_url.set(service_url);
        let _ = self.public_url.set(public_url);
    }

    /// One provider call as the network delivers it: after the configured latency, and with the configured faults,
    /// a 500 before the provider acts or a timeout after it acted (the caller cannot tell whether it charged).
    async fn call<T>(&self, call: impl Future<Output = Result<T, ProviderError>>) -> Result<T, ProviderError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if roll(self.faults.error_rate) {
            return Err(ProviderError::Unreachable("sandbox fault: 500 Internal Server Error".into()));
        }
        let result = call.await;
        if result.is_ok() && roll(self.faults.timeout_rate) {
            return Err(ProviderError::Unreachable("sandbox fault: timed out after the provider acted".into()));
        }
        result
    }

    fn known_method(payment_method: &str) -> Result<Behaviour, ProviderError> {
        behaviour(payment_method).ok_or_else(|| {
            rejected("resource_missing", format!("No such PaymentMethod: '{payment_method}' (the sandbox knows Stripe's test methods, e.g. pm_card_visa)"))
        })
    }

    async fn load(&self, id: &str) -> Result<intents::Model, ProviderError> {
        intents::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| rejected("resource_missing", format!("No such payment_intent: '{id}'")))
    }

    /// Saves an intent as loaded and changed, unless another request (on any node) changed it since: Stripe answers
    /// such a race with `lock_timeout`, a 429 to be retried.
    async fn store(&self, mut intent: intents::Model) -> Result<intents::Model, ProviderError> {
        let loaded = intent.updated_at;
        intent.updated_at = Utc::now().trunc_subsecs(6);
        let active = sea_orm::ActiveModelTrait::reset_all(intents::ActiveModel::from(intent.clone()));
        let id = intent.id.clone();
        let update = self.writer.write(move |txn| {
            Box::pin(async move {
                let fenced = intents::Entity::update_many()
                    .set(active)
                    .filter(intents::Column::Id.eq(id))
                    .filter(intents::Column::UpdatedAt.eq(loaded));
                fenced.exec(txn).await
            })
        });
        if update.await.map_err(db_error)?.rows_affected != 1 {
            let message = format!("lock_timeout: PaymentIntent {} was changed by another request", intent.id);
            return Err(ProviderError::Throttled(message));
        }
        Ok(intent)
    }

    pub async fn create_intent(&self, request: NewIntent<'_>) -> Result<Value, ProviderError> {
        self.call(Box::pin(self.make_intent(request))).await
    }

    /// Idempotent per purchase, as Stripe is per idempotency key: the purchase's intent is inserted unless it exists,
    /// and read only when it does (a retry, or another node's request for the same purchase).
    async fn make_intent(&self, request: NewIntent<'_>) -> Result<Value, ProviderError> {
        if let Some(method) = request.payment_method {
            Self::known_method(method.as_str())?;
        }
        // The client's customer, made on first need like a Stripe Customer, and then recorded in the intent's step.
        let client = request.client.as_str().to_owned();
        let known = customers::find(&self.db, &client, PROVIDER).await.map_err(db_error)?;
        let made = known.is_none().then(|| format!("cus_sbx_{}", new_key().simple()));
        let customer = known.or_else(|| made.clone());
        let id = format!("pi_sbx_{}", new_key().simple());
        // As the database keeps it, so that the copy kept in `unconfirmed` passes `store`'s fence.
        let now = Utc::now().trunc_subsecs(6);
        let intent = intents::Model {
            client_secret: format!("{id}_secret_{}", Uuid::new_v4().simple()),
            id,
            purchase_id: request.purchase_id,
            amount: request.amount.minor,
            currency: request.amount.currency.lower(),
            payment_method: request.payment_method.map(|m| m.as_str().to_owned()),
            status: if request.payment_method.is_some() { "requires_confirmation" } else { "requires_payment_method" }
                .into(),
            confirmations: 0,
            last_error: None,
            latest_charge: None,
            customer_id: customer,
            setup_future_usage: request.save_method,
            refund_id: None,
            dispute_id: None,
            dispute_status: None,
            created_at: now,
            updated_at: now,
        };
        let mut row = intents::ActiveModel::from(intent.clone());
        let first = on_conflict_do_nothing(intents::Column::PurchaseId);
        let insert = self.writer.write(move |txn| {
            Box::pin(async move {
                // Two first purchases racing: the customer recorded first stands.
                let customer = match made {
                    Some(made) => Some(customers::remember(txn, &client, PROVIDER, &made).await?),
                    None => row.customer_id.take().flatten(),
                };
                row.customer_id = Set(customer.clone());
                let inserted = intents::Entity::insert(row).on_conflict(first).exec_without_returning(txn).await?;
                Ok::<_, sea_orm::DbErr>((inserted, customer))
            })
        });
        let (inserted, customer) = insert.await.map_err(db_error)?;
        if inserted == 1 {
            let intent = intents::Model { customer_id: customer, ..intent };
            let mut unconfirmed = self.unconfirmed.lock().unwrap_or_else(|e| e.into_inner());
            if unconfirmed.len() >= UNCONFIRMED_KEPT {
                unconfirmed.retain(|_, (made, _)| made.elapsed() < UNCONFIRMED_FOR);
            }
            if unconfirmed.len() < UNCONFIRMED_KEPT {
                unconfirmed.insert(intent.id.clone(), (Instant::now(), intent.clone()));
            }
            return Ok(render(&intent));
        }
        let existing = intents::Entity::find().filter(intents::Column::PurchaseId.eq(request.purchase_id));
        let existing = existing.one(&self.db).await.map_err(db_error)?;
        Ok(render(&existing.ok_or_else(|| db_error(sea_orm::DbErr::RecordNotFound("sandbox intent".into())))?))
    }

    pub async fn confirm_intent(&self, id: &str, payment_method: &PaymentMethodId) -> Result<Value, ProviderError> {
        self.call(Box::pin(self.charge(id, payment_method))).await
    }

    async fn charge(&self, id: &str, payment_method: &PaymentMethodId) -> Result<Value, ProviderError> {
        let made_here = self.unconfirmed.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        let mut intent = match made_here {
            Some((_, intent)) => intent,
            None => self.load(id).await?,
        };
        if matches!(intent.status.as_str(), "succeeded" | "canceled" | "processing") {
            return Err(rejected(
                "payment_intent_unexpected_state",
                format!("This PaymentIntent's status is {}, so it cannot be confirmed", intent.status),
            ));
        }
        let behaviour = Self::known_method(payment_method.as_str())?;
        intent.payment_method = Some(payment_method.as_str().to_owned());
        intent.confirmations += 1;
        let outcome = match behaviour {
            Behaviour::Succeed => Ok(()),
            Behaviour::Decline(code) => Err(code),
            Behaviour::ProcessingError => Err("processing_error"),
            Behaviour::TransientProcessingError if intent.confirmations == 1 => Err("processing_error"),
            Behaviour::TransientProcessingError => Ok(()),
            Behaviour::RequiresAuthentication | Behaviour::BankDebit => {
                let waiting = if behaviour == Behaviour::BankDebit { "processing" } else { "requires_action" };
                intent.status = waiting.into();
                intent.last_error = None;
                let intent = self.store(intent).await?;
                let rendered = render(&intent);
                if behaviour == Behaviour::BankDebit {
                    self.send_webhook("payment_intent.processing", rendered.clone());
                }
                return Ok(rendered);
            }
        };
        self.settle(intent, outcome).await
    }

    /// Completes 3-D Secure the way the cardholder would in the bank's modal (localstripe has the same hook).
    pub async fn authenticate(&self, id: &str, success: bool) -> Result<Value, ProviderError> {
        self.finish(id, "requires_action", if success { Ok(()) } else { Err("payment_intent_authentication_failure") })
            .await
    }

    /// Clears a bank debit, or returns it for lack of funds, as the bank does days later.
    pub async fn clear_bank_debit(&self, id: &str, success: bool) -> Result<Value, ProviderError> {
        self.finish(id, "processing", if success { Ok(()) } else { Err("insufficient_funds") }).await
    }

    async fn finish(&self, id: &str, waiting: &str, outcome: Result<(), &str>) -> Result<Value, ProviderError> {
        let intent = self.load(id).await?;
        if intent.status != waiting {
            return Err(rejected(
                "payment_intent_unexpected_state",
                format!("This PaymentIntent's status is {}, not {waiting}", intent.status),
            ));
        }
        self.settle(intent, outcome).await
    }

    /// Records a charge attempt's outcome and tells the service by webhook, as Stripe does.
    async fn settle(&self, mut intent: intents::Model, outcome: Result<(), &str>) -> Result<Value, ProviderError> {
        intent.latest_charge = Some(format!("ch_sbx_{}", new_key().simple()));
        let event_type = match outcome {
            Ok(()) => {
                intent.status = "succeeded".into();
                intent.last_error = None;
                "payment_intent.succeeded"
            }
            Err(code) => {
                intent.status = "requires_payment_method".into();
                intent.last_error = Some(code.to_owned());
                "payment_intent.payment_failed"
            }
        };
        Self::open_dispute(&mut intent);
        let intent = self.store(intent).await?;
        let rendered = render(&intent);
        self.send_webhook(event_type, rendered.clone());
        self.announce_dispute(&intent);
        // As Stripe does for `setup_future_usage`: a method that paid is attached to the customer.
        if let (true, "succeeded", Some(method), Some(customer)) =
            (intent.setup_future_usage, intent.status.as_str(), &intent.payment_method, &intent.customer_id)
        {
            self.send_webhook("payment_method.attached", render_method(method, customer));
        }
        Ok(rendered)
    }

    pub async fn retrieve_intent(&self, id: &str) -> Result<Value, ProviderError> {
        self.call(Box::pin(async { Ok(render(&self.load(id).await?)) })).await
    }

    /// Refunds a paid intent in full, once, as Stripe does; asked again, it answers the same refund. A card that has
    /// since expired refuses it.
    pub async fn refund_intent(&self, id: &str) -> Result<RefundOutcome, ProviderError> {
        self.call(Box::pin(self.refund(id))).await
    }

    async fn refund(&self, id: &str) -> Result<RefundOutcome, ProviderError> {
        let mut intent = self.load(id).await?;
        if intent.status != "succeeded" {
            return Err(rejected("charge_not_refundable", format!("PaymentIntent {id} has not been paid")));
        }
        if intent.payment_method.as_deref() == Some(EXPIRES_BEFORE_REFUND) {
            return Ok(RefundOutcome::Refused("expired_or_canceled_card".into()));
        }
        if let Some(refund) = &intent.refund_id {
            return Ok(RefundOutcome::Refunded(refund.clone()));
        }
        let refund = format!("re_sbx_{}", new_key().simple());
        intent.refund_id = Some(refund.clone());
        self.store(intent).await?;
        Ok(RefundOutcome::Refunded(refund))
    }

    pub async fn cancel_intent(&self, id: &str) -> Result<Value, ProviderError> {
        self.call(Box::pin(self.cancel(id))).await
    }

    async fn cancel(&self, id: &str) -> Result<Value, ProviderError> {
        let mut intent = self.load(id).await?;
        if matches!(intent.status.as_str(), "succeeded" | "processing") {
            return Err(rejected(
                "payment_intent_unexpected_state",
                format!("You cannot cancel this PaymentIntent because it has a status of {}", intent.status),
            ));
        }
        intent.status = "canceled".into();
        let intent = self.store(intent).await?;
        let rendered = render(&intent);
        self.send_webhook("payment_intent.canceled", rendered.clone());
        Ok(rendered)
    }

    fn send_webhook(&self, event_type: &str, object: Value) {
        let event = json!({
            "id": format!("evt_sbx_{}", new_key().simple()),
            "object": "event",
            "type": event_type,
            "created": Utc::now().timestamp(),
            "livemode": false,
            "data": { "object": object },
        });
        self.deliver("/api/v1/webhooks/stripe", event.to_string(), |secret, body| {
            vec![("stripe-signature", stripe_signature::sign(body, secret, Utc::now().timestamp()))]
        });
    }

    /// Posts an event to the service's own webhook endpoint, signing every attempt afresh (a signature carries its
    /// time), and retries undelivered events with backoff as the providers do, briefly.
    fn deliver(&self, path: &'static str, body: String, sign: Signer) {
        let Some(base) = self.service_url.get().cloned() else { return };
        let faults = self.faults;
        if roll(faults.webhook_drop_rate) {
            tracing::warn!(path, "sandbox fault: webhook never delivered");
            return;
        }
        // Up to three copies, each after its own random delay, so they also arrive out of order.
        let copies = 1 + usize::from(roll(faults.webhook_duplicate_rate)) * (1 + usize::from(roll(0.5)));
        for _ in 0..copies {
            let (http, secret, base, body) =
                (self.http.clone(), self.webhook_secret.clone(), base.clone(), body.clone());
            let delay = Duration::from_millis((fraction() * faults.webhook_max_delay_ms as f64) as u64);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                for attempt in 0..5u32 {
                    let mut request = http.post(format!("{base}{path}")).header("content-type", "application/json");
                    for (name, value) in sign(&secret, body.as_bytes()) {
                        request = request.header(name, value);
                    }
                    match request.body(body.clone()).send().await {
                        Ok(response) if response.status().is_success() => return,
                        Ok(response) => {
                            tracing::warn!(status = %response.status(), attempt, path, "sandbox webhook refused")
                        }
                        Err(e) => tracing::warn!(error = %e, attempt, path, "sandbox webhook not delivered"),
                    }
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            });
        }
    }
}

/// A uniform number in [0, 1) from the operating system's randomness (via a v4 UUID).
pub fn fraction() -> f64 {
    // The low 64 bits of a v4 UUID start with its two fixed variant bits (`10`): shifted out, 62 random bits are
    // left, of which the top 53 make the fraction. (Keeping the variant bits pinned every value to [0.5, 0.75), so
    // no rate under one half ever fired.)
    ((Uuid::new_v4().as_u128() as u64) << 2 >> 11) as f64 / (1u64 << 53) as f64
}

fn roll(rate: f64) -> bool {
    rate > 0.0 && fraction() < rate
}

/// A test method as Stripe serialises a PaymentMethod, with the brand and last four digits of its test card.
fn render_method(method: &str, customer: &str) -> Value {
    let (brand, last4) = match method {
        "pm_card_mastercard" => ("mastercard", "4444"),
        "pm_card_amex" => ("amex", "8431"),
        "pm_card_discover" => ("discover", "1117"),
        "pm_card_visa_debit" => ("visa", "5556"),
        "pm_card_authenticationRequired" | "pm_card_threeDSecure2Required" => ("visa", "3184"),
        _ => ("visa", "4242"),
    };
    json!({
        "id": method,
        "object": "payment_method",
        "type": "card",
        "customer": customer,
        "card": { "brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034, "wallet": null },
        "livemode": false,
    })
}

/// A sandbox intent as Stripe would serialise a PaymentIntent.
/// Radar's `outcome` on the intent's charge, by Stripe's test methods (docs.stripe.com/radar/testing).
fn radar_outcome(intent: &intents::Model) -> Value {
    let (level, score, kind) = match intent.payment_method.as_deref() {
        Some("pm_card_riskLevelElevated") => ("elevated", 67, "authorized"),
        Some("pm_card_riskLevelHighest") => ("highest", 92, "authorized"),
        Some("pm_card_chargeDeclinedFraudulent") => ("highest", 98, "blocked"),
        _ => ("normal", 12, if intent.last_error.is_some() { "issuer_declined" } else { "authorized" }),
    };
    json!({ "risk_level": level, "risk_score": score, "type": kind })
}

fn render(intent: &intents::Model) -> Value {
    let next_action = (intent.status == "requires_action").then(|| {
        json!({
            "type": "use_stripe_sdk",
            "use_stripe_sdk": { "type": "three_d_secure_redirect", "source": intent.id },
            "sandbox_authenticate_url": format!("/sandbox/v1/payment_intents/{}/_authenticate", intent.id),
        })
    });
    let last_payment_error = intent.last_error.as_ref().map(|code| {
        let (code, decline_code) = match code.as_str() {
            "insufficient_funds" | "card_declined" => ("card_declined", Some(code.as_str())),
            other => (other, None),
        };
        json!({ "type": "card_error", "code": code, "decline_code": decline_code, "payment_method": { "id": intent.payment_method } })
    });
    json!({
        "id": intent.id,
        "object": "payment_intent",
        "amount": intent.amount,
        "currency": intent.currency,
        "status": intent.status,
        "client_secret": intent.client_secret,
        "payment_method": intent.payment_method,
        "payment_method_types": [if intent.payment_method.as_deref() == Some(BANK_ACCOUNT) { "us_bank_account" } else { "card" }],
        // Expanded, with Radar's verdict, in calls' answers and webhooks alike (Stripe expands it only on request).
        "latest_charge": intent.latest_charge.as_ref().map(|id| json!({ "id": id, "object": "charge",
            "outcome": radar_outcome(intent) })),
        "last_payment_error": last_payment_error,
        "next_action": next_action,
        "metadata": { "purchase_id": intent.purchase_id.to_string() },
        "customer": intent.customer_id,
        "setup_future_usage": intent.setup_future_usage.then_some("on_session"),
        "created": intent.created_at.timestamp(),
        "livemode": false,
    })
}

#[cfg(test)]
mod fraction_tests {
    #[test]
    fn fractions_cover_the_whole_unit_interval() {
        let draws: Vec<f64> = (0..4000).map(|_| super::fraction()).collect();
        assert!(draws.iter().all(|f| (0.0..1.0).contains(f)));
        for quarter in 0..4 {
            let (low, high) = (quarter as f64 / 4.0, (quarter + 1) as f64 / 4.0);
            let share = draws.iter().filter(|f| (low..high).contains(*f)).count();
            assert!((800..1200).contains(&share), "{share} of 4000 draws in [{low}, {high})");
        }
    }
}
