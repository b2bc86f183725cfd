//! Stripe through async-stripe 1.0: a Customer per client, PaymentIntents carrying the purchase id in their metadata,
//! an idempotency key per purchase and attempt on every call that creates or moves money.
use super::stripe_event::{failure, intent_status, parse_dispute, parse_intent};
use super::{CardMethod, NewIntent, NewRefund, ProviderError, RefundOutcome};
use crate::domain::dispute::{Answer, EvidenceFile, Report};
use crate::domain::ids::{CardToken, ClientId, PaymentMethodId};
use crate::domain::money::{Currency, Money};
use crate::domain::purchase::{IntentStatus, IntentUpdate, Risk};
use crate::settings::StripeSettings;
use crate::store::customers;
use crate::store::writer::Writer;
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::customer::CreateCustomer;
use stripe_core::dispute::{CloseDispute, RetrieveDispute, UpdateDispute, UpdateDisputeEvidence};
use stripe_core::payment_intent::{
    CancelPaymentIntent, ConfirmPaymentIntent, CreatePaymentIntent, RetrievePaymentIntent,
};
use stripe_core::refund::CreateRefund;
use stripe_shared::PaymentIntent;

pub const PROVIDER: &str = "stripe";
const BANK_DEBIT: &str = "us_bank_account";
/// Network errors and 5xx are retried this many times with the same idempotency key before the outcome is left to
/// reconciliation.
const ATTEMPTS: u32 = 3;

pub struct StripeProvider {
    client: stripe::Client,
    /// For the one call async-stripe does not make (file uploads), sent by hand.
    secret: crate::settings::Secret,
    files_base: String,
    http: reqwest::Client,
    /// The read pool, for a client's customer.
    reads: DatabaseConnection,
    /// A customer made at Stripe is recorded as a step of the group commit, like every other write.
    writer: Writer,
    statement_descriptor_suffix: Option<String>,
    /// Method id → card fingerprint. Both are immutable at Stripe, so an entry never goes stale; the map is emptied
    /// when it grows past `FINGERPRINTS_KEPT` rather than kept in order.
    fingerprints: std::sync::Mutex<HashMap<String, String>>,
    /// A live key (`sk_live_…`, `rk_live_…`): its payments are on the dashboard's live side, not under `/test`.
    live: bool,
}

/// Where Stripe's dashboard shows a payment made with a live or a test key.
pub fn dashboard_url(live: bool, intent: &str) -> String {
    let mode = if live { "" } else { "test/" };
    format!("https://dashboard.stripe.com/{mode}payments/{intent}")
}

const FINGERPRINTS_KEPT: usize = 100_000;

impl StripeProvider {
    pub fn new(settings: &StripeSettings, reads: DatabaseConnection, writer: Writer) -> Result<Self, String> {
        let key = settings.secret_key.as_ref().filter(|k| !k.is_empty()).ok_or(
            "stripe.secret_key (PURSER_STRIPE__SECRET_KEY) is required when payments.card_provider = \"stripe\"",
        )?;
        let mut base = settings.api_base.clone();
        if !base.ends_with('/') {
            base.push('/');
        }
        let client = stripe::ClientBuilder::new(key.expose())
            .url(base.clone())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("stripe client: {e}"))?;
        // Stripe takes uploads at files.stripe.com; a test double serves both on its one address.
        let files_base = match settings.api_base.as_str() {
            "https://api.stripe.com/" | "https://api.stripe.com" => "https://files.stripe.com/".to_owned(),
            _ => base.clone(),
        };
        Ok(Self {
            secret: key.clone(),
            files_base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| format!("stripe files client: {e}"))?,
            client,
            reads,
            writer,
            statement_descriptor_suffix: settings.statement_descriptor_suffix.clone(),
            fingerprints: Default::default(),
            live: ["sk_live_", "rk_live_"].iter().any(|prefix| key.expose().starts_with(prefix)),
        })
    }

    pub fn dashboard_url(&self, intent: &str) -> String {
        dashboard_url(self.live, intent)
    }

    /// Sends `request`, retrying transport failures and 5xx with the same idempotency key.
    async fn send<R: StripeRequest>(&self, request: &R, key: Option<&str>) -> Result<R::Output, StripeError>
    where
        R::Output: miniserde::Deserialize,
    {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let mut call = request.customize();
            if let Some(key) = key {
                let key = IdempotencyKey::new(key).map_err(|e| StripeError::ClientError(e.to_string()))?;
                call = call.request_strategy(RequestStrategy::Idempotent(key));
            }
            match call.send(&self.client).await {
                Err(e) if is_transient(&e) => {
                    tracing::warn!(error = %e, attempt, "stripe call failed; retrying with the same idempotency key");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                answer => return answer,
            }
        }
        Err(last.unwrap_or(StripeError::Timeout))
    }

    async fn customer(&self, client: &ClientId) -> Result<String, ProviderError> {
        let stored = customers::find(&self.reads, client.as_str(), PROVIDER).await.map_err(store_error)?;
        if let Some(id) = stored {
            return Ok(id);
        }
        let create =
            CreateCustomer::new().metadata(HashMap::from([("client_id".to_owned(), client.as_str().to_owned())]));
        let customer = self
            .send(&create, Some(&format!("customer-{}", client.as_str())))
            .await
            .map_err(|e| rejected_or_unreachable(&e))?;
        let (client, customer) = (client.as_str().to_owned(), customer.id.as_str().to_owned());
        let remembered = self
            .writer
            .write(move |txn| Box::pin(async move { customers::remember(txn, &client, PROVIDER, &customer).await }));
        remembered.await.map_err(store_error)
    }

    pub async fn create_intent(&self, request: NewIntent<'_>) -> Result<IntentUpdate, ProviderError> {
        let customer = self.customer(request.client).await?;
        let currency =
            request.amount.currency.lower().parse::<stripe_types::Currency>().map_err(|_| ProviderError::Rejected {
                code: "invalid_currency".into(),
                message: "Stripe does not take this currency".into(),
            })?;
        let mut create = CreatePaymentIntent::new(request.amount.minor, currency)
            .customer(customer)
            .metadata(HashMap::from([("purchase_id".to_owned(), request.purchase_id.to_string())]));
        if let Some(method) = request.payment_method {
            create = create.payment_method(method.as_str());
        }
        if request.save_method {
            create = create.setup_future_usage(stripe_shared::PaymentIntentSetupFutureUsage::OnSession);
        }
        if let Some(suffix) = &self.statement_descriptor_suffix {
            create = create.statement_descriptor_suffix(suffix.as_str());
        }
        match self.send(&create, Some(request.idempotency_key)).await {
            Ok(intent) => Ok(to_update(&intent)),
            Err(e) => Err(rejected_or_unreachable(&e)),
        }
    }

    pub async fn confirm_intent(
        &self,
        intent_id: &str,
        payment_method: &PaymentMethodId,
        idempotency_key: &str,
    ) -> Result<IntentUpdate, ProviderError> {
        let confirm =
            ConfirmPaymentIntent::new(intent_id).payment_method(payment_method.as_str()).expand([CHARGE.to_owned()]);
        match self.send(&AsJson(confirm), Some(idempotency_key)).await {
            Ok(intent) => with_radar(intent),
            Err(e) => decline_or_error(e, intent_id),
        }
    }

    pub async fn retrieve_intent(&self, intent_id: &str) -> Result<IntentUpdate, ProviderError> {
        let retrieve = RetrievePaymentIntent::new(intent_id).expand([CHARGE.to_owned()]);
        with_radar(self.send(&AsJson(retrieve), None).await.map_err(|e| rejected_or_unreachable(&e))?)
    }

    pub async fn refund(&self, refund: &NewRefund<'_>) -> Result<RefundOutcome, ProviderError> {
        let create = CreateRefund::new()
            .payment_intent(refund.intent_id)
            .amount(refund.amount.minor)
            .reason(stripe_core::refund::CreateRefundReason::RequestedByCustomer);
        match self.send(&create, Some(refund.idempotency_key)).await {
            Ok(made) if made.status.as_deref() == Some("failed") => {
                Ok(RefundOutcome::Refused(made.failure_reason.unwrap_or_else(|| "refund_failed".into())))
            }
            Ok(made) if matches!(made.status.as_deref(), Some("pending" | "requires_action")) => {
                Ok(RefundOutcome::Pending(made.id.as_str().to_owned()))
            }
            Ok(made) => Ok(RefundOutcome::Refunded(made.id.as_str().to_owned())),
            // Stripe refuses up front when the charge can no longer be refunded to its method.
            Err(StripeError::Stripe(api, status)) if status < 500 && status != 429 => Ok(RefundOutcome::Refused(
                api.code.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_else(|| "refund_refused".into()),
            )),
            Err(e) => Err(rejected_or_unreachable(&e)),
        }
    }

    /// Turns a Stripe.js card token into a PaymentMethod (`card[token]`, Stripe's documented bridge from tokens).
    /// Not idempotent by key: a token is single-use, so a repeat is refused by Stripe rather than charged twice.
    pub async fn method_from_token(&self, token: &CardToken) -> Result<CardMethod, ProviderError> {
        let create = stripe_payment::payment_method::CreatePaymentMethod::new()
            .type_(stripe_payment::payment_method::CreatePaymentMethodType::Card)
            .card(stripe_payment::payment_method::CreatePaymentMethodCard::TokenParams(
                stripe_payment::payment_method::CreatePaymentMethodTokenParams::new(token.as_str()),
            ));
        let method = self.send(&create, None).await.map_err(|e| rejected_or_unreachable(&e))?;
        let card = method.card.as_ref();
        if let Some(fingerprint) = card.and_then(|c| c.fingerprint.clone()) {
            self.remember_fingerprint(method.id.as_str(), fingerprint);
        }
        Ok(CardMethod {
            id: method.id.as_str().to_owned(),
            brand: card.map(|c| c.display_brand.clone().unwrap_or_else(|| c.brand.clone())),
            last4: card.map(|c| c.last4.clone()),
        })
    }

    /// The card fingerprint of a method, asked of Stripe once per method.
    pub async fn fingerprint(&self, method: &PaymentMethodId) -> Result<Option<String>, ProviderError> {
        if let Some(known) = self.fingerprints.lock().unwrap().get(method.as_str()) {
            return Ok(Some(known.clone()));
        }
        let retrieve = stripe_payment::payment_method::RetrievePaymentMethod::new(method.as_str());
        let found = self.send(&retrieve, None).await.map_err(|e| rejected_or_unreachable(&e))?;
        let fingerprint = found.card.and_then(|c| c.fingerprint);
        if let Some(fingerprint) = &fingerprint {
            self.remember_fingerprint(method.as_str(), fingerprint.clone());
        }
        Ok(fingerprint)
    }

    fn remember_fingerprint(&self, method: &str, fingerprint: String) {
        let mut known = self.fingerprints.lock().unwrap();
        if known.len() >= FINGERPRINTS_KEPT {
            known.clear();
        }
        known.insert(method.to_owned(), fingerprint);
    }

    pub async fn detach_method(&self, method: &str) -> Result<(), ProviderError> {
        let detach = stripe_payment::payment_method::DetachPaymentMethod::new(method);
        self.send(&detach, None).await.map(|_| ()).map_err(|e| rejected_or_unreachable(&e))
    }

    pub async fn delete_customer(&self, customer: &str) -> Result<(), ProviderError> {
        let delete = stripe_core::customer::DeleteCustomer::new(customer);
        self.send(&delete, None).await.map(|_| ()).map_err(|e| rejected_or_unreachable(&e))
    }

    /// Contests a dispute with evidence (submitted at once: Stripe decides on what it has), closes it, conceding,
    /// or (no answer) reads it.
    pub async fn dispute(&self, id: &str, answer: Option<&Answer>) -> Result<Report, ProviderError> {
        let answered = match answer {
            None => self.send(&AsJson(RetrieveDispute::new(id)), None).await,
            Some(Answer::Accept { .. }) => self.send(&AsJson(CloseDispute::new(id)), None).await,
            Some(Answer::Evidence { text, file }) => {
                let mut evidence = UpdateDisputeEvidence::new();
                evidence.uncategorized_text = Some(text.clone());
                if let Some(file) = file {
                    evidence.uncategorized_file = Some(self.upload_evidence(file).await?);
                }
                self.send(&AsJson(UpdateDispute::new(id).evidence(evidence).submit(true)), None).await
            }
        }
        .map_err(|e| rejected_or_unreachable(&e))?;
        serde_json::from_str(&miniserde::json::to_string(&answered))
            .ok()
            .as_ref()
            .and_then(parse_dispute)
            .ok_or_else(|| ProviderError::Unreachable("Stripe answered without a dispute".into()))
    }

    /// Stripe's file upload (`purpose=dispute_evidence`), which async-stripe does not make: the file's id.
    async fn upload_evidence(&self, file: &EvidenceFile) -> Result<String, ProviderError> {
        let part = reqwest::multipart::Part::bytes(file.bytes.clone())
            .file_name(file.name.clone())
            .mime_str(file.content_type())
            .map_err(|e| ProviderError::Unreachable(e.to_string()))?;
        let form = reqwest::multipart::Form::new().text("purpose", "dispute_evidence").part("file", part);
        let answer = self
            .http
            .post(format!("{}v1/files", self.files_base))
            .bearer_auth(self.secret.expose())
            .multipart(form)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(format!("Stripe's file upload: {e}")))?;
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        match body.get("id").and_then(serde_json::Value::as_str) {
            Some(id) if status.is_success() => Ok(id.to_owned()),
            _ if status.is_client_error() => Err(ProviderError::Rejected {
                code: body.pointer("/error/code").and_then(|c| c.as_str()).unwrap_or("file_refused").to_owned(),
                message: body
                    .pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("Stripe refused the file")
                    .to_owned(),
            }),
            _ => Err(ProviderError::Unreachable(format!("Stripe's file upload answered {status}"))),
        }
    }

    pub async fn cancel_intent(&self, intent_id: &str) -> Result<IntentUpdate, ProviderError> {
        let cancel = CancelPaymentIntent::new(intent_id);
        self.send(&cancel, Some(&format!("{intent_id}-cancel")))
            .await
            .map(|intent| to_update(&intent))
            .map_err(|e| rejected_or_unreachable(&e))
    }
}

/// Confirmations and reads ask for the intent's charge expanded, which carries Radar's `outcome`.
const CHARGE: &str = "latest_charge";

/// An intent read with its charge expanded: Radar's verdict is known, `not_assessed` when the charge has none.
fn with_radar(intent: miniserde::json::Value) -> Result<IntentUpdate, ProviderError> {
    let intent: serde_json::Value = serde_json::from_str(&miniserde::json::to_string(&intent))
        .map_err(|e| ProviderError::Unreachable(format!("Stripe's intent: {e}")))?;
    let mut update = parse_intent(&intent)?;
    update.risk.get_or_insert_with(Risk::not_assessed);
    Ok(update)
}

/// A request whose answer is read as plain JSON: disputes go through the parser their webhooks use. (A second,
/// generic `send` would add a frame to every call, and debug builds already come close to a worker's stack reading
/// Stripe's error body.)
struct AsJson<R>(R);

impl<R: StripeRequest> StripeRequest for AsJson<R> {
    type Output = miniserde::json::Value;

    fn build(&self) -> stripe_client_core::RequestBuilder {
        self.0.build()
    }
}

fn is_transient(error: &StripeError) -> bool {
    match error {
        StripeError::Stripe(_, status) => *status >= 500 || *status == 429,
        StripeError::ClientError(_) | StripeError::Timeout => true,
        _ => false,
    }
}

fn store_error(e: sea_orm::DbErr) -> ProviderError {
    ProviderError::Unreachable(format!("customer store: {e}"))
}

fn rejected_or_unreachable(error: &StripeError) -> ProviderError {
    match error {
        StripeError::Stripe(api, 429) => {
            ProviderError::Throttled(api.message.clone().unwrap_or_else(|| "too many requests".into()))
        }
        StripeError::Stripe(api, status) if *status < 500 && *status != 429 => ProviderError::Rejected {
            code: api.code.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_else(|| "invalid_request".into()),
            message: api.message.clone().unwrap_or_else(|| format!("Stripe refused the request ({status})")),
        },
        // An unparseable answer is as good as none: what happened is left to reconciliation.
        other => ProviderError::Unreachable(other.to_string()),
    }
}

/// A card error (HTTP 402) is not a failed call but a failed payment: it becomes the attempt's outcome, keyed by its
/// charge so the matching `payment_intent.payment_failed` webhook does not count it again.
fn decline_or_error(error: StripeError, intent_id: &str) -> Result<IntentUpdate, ProviderError> {
    match &error {
        StripeError::Stripe(api, 402) => match &api.payment_intent {
            Some(intent) => Ok(to_update(intent)),
            None => Ok(IntentUpdate {
                intent_id: intent_id.to_owned(),
                status: IntentStatus::RequiresPaymentMethod,
                client_secret: None,
                next_action: None,
                charge: api.charge.clone(),
                failure: Some(failure(api.decline_code.as_deref(), api.code.as_ref().map(|c| c.as_str()))),
                bank_debit: false,
                funding_source: None,
                paid: None,
                seller_protection: None,
                risk: None,
                receipt_url: None,
            }),
        },
        _ => Err(rejected_or_unreachable(&error)),
    }
}

fn to_update(intent: &PaymentIntent) -> IntentUpdate {
    let status = intent_status(intent.status.as_str()).unwrap_or(IntentStatus::Processing);
    let error = intent.last_payment_error.as_deref();
    IntentUpdate {
        intent_id: intent.id.as_str().to_owned(),
        status,
        client_secret: intent.client_secret.clone(),
        next_action: intent.next_action.as_ref().map(|action| {
            json!({ "type": action.type_, "redirect_to_url": action.redirect_to_url.as_ref().and_then(|r| r.url.clone()) })
        }),
        charge: intent.latest_charge.as_ref().map(|c| c.id().as_str().to_owned()),
        failure: error.map(|e| failure(e.decline_code.as_deref(), e.code.as_ref().map(|c| c.as_str()))),
        bank_debit: intent.payment_method_types.iter().any(|t| t == BANK_DEBIT),
        funding_source: None,
        paid: Currency::parse(&intent.currency.to_string().to_ascii_uppercase())
            .ok()
            .and_then(|currency| Money::new(paid_amount(intent), currency).ok()),
        seller_protection: None,
        risk: None,
        receipt_url: None,
    }
}

/// `amount_received` once something was received, else the intent's amount.
fn paid_amount(intent: &PaymentIntent) -> i64 {
    if intent.amount_received > 0 { intent.amount_received } else { intent.amount }
}

#[cfg(test)]
mod tests {
    // Issue 17: a live key's payments are on the dashboard's live side, a test key's under `/test`.
    #[test]
    fn the_dashboard_link_follows_the_keys_mode() {
        assert_eq!(super::dashboard_url(true, "pi_1"), "https://dashboard.stripe.com/payments/pi_1");
        assert_eq!(super::dashboard_url(false, "pi_1"), "https://dashboard.stripe.com/test/payments/pi_1");
        assert_eq!(super::super::paypal::activity_url(true, "CAP1"), "https://www.paypal.com/activity/payment/CAP1");
    }
}
