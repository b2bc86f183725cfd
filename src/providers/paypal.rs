//! PayPal REST through reqwest: OAuth2 client credentials (token cached until shortly before it expires), Orders v2
//! create, capture and read, each money-moving call under a `PayPal-Request-Id` derived from the purchase and attempt,
//! and webhook verification by PayPal's verify-webhook-signature postback.
use super::paypal_order::{parse_dispute, parse_order, refused_capture};
use super::{NewIntent, NewRefund, ProviderError, RefundOutcome};
use crate::domain::dispute::{Answer, EvidenceFile, Report};
use crate::domain::purchase::IntentUpdate;
use crate::settings::{PaypalSettings, Secret};
use axum::http::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Transport failures and 5xx are retried this many times under the same `PayPal-Request-Id`.
const ATTEMPTS: u32 = 3;

pub struct PaypalProvider {
    http: reqwest::Client,
    base: String,
    client_id: String,
    client_secret: Secret,
    webhook_id: String,
    return_url: String,
    cancel_url: String,
    token: Mutex<Option<(String, Instant)>>,
}

/// PayPal's live API: anything else is its sandbox (or a fake of it), whose payments are on sandbox.paypal.com.
const LIVE_API: &str = "https://api-m.paypal.com";

/// Where PayPal shows a capture to the merchant, on the live site or the sandbox's.
pub fn activity_url(live: bool, capture: &str) -> String {
    let site = if live { "www.paypal.com" } else { "www.sandbox.paypal.com" };
    format!("https://{site}/activity/payment/{capture}")
}

enum Failure {
    /// A 4xx with PayPal's error body: `name`, `message`, `details[].issue`.
    Refused {
        status: StatusCode,
        issue: String,
        message: String,
    },
    Unreachable(String),
}

impl From<Failure> for ProviderError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused { issue, message, .. } => ProviderError::Rejected { code: issue, message },
            Failure::Unreachable(e) => ProviderError::Unreachable(e),
        }
    }
}

impl PaypalProvider {
    pub fn new(settings: &PaypalSettings, return_url: String, cancel_url: String) -> Result<Self, String> {
        let required = |value: &Option<String>, key: &str| {
            value.clone().filter(|v| !v.is_empty()).ok_or(format!(
                "paypal.{key} (PURSER_PAYPAL__{}) is required when payments.paypal_provider = \"paypal\"",
                key.to_uppercase()
            ))
        };
        let client_secret = settings
            .client_secret
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or("paypal.client_secret (PURSER_PAYPAL__CLIENT_SECRET) is required when payments.paypal_provider = \"paypal\"")?;
        let http = reqwest::Client::builder().timeout(settings.timeout).build().map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            base: settings.api_base.trim_end_matches('/').to_owned(),
            client_id: required(&settings.client_id, "client_id")?,
            client_secret,
            webhook_id: required(&settings.webhook_id, "webhook_id")?,
            return_url,
            cancel_url,
            token: Mutex::new(None),
        })
    }

    pub fn activity_url(&self, capture: &str) -> String {
        activity_url(self.base == LIVE_API, capture)
    }

    async fn token(&self) -> Result<String, Failure> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref().filter(|(_, until)| *until > Instant::now()) {
            let _ = until;
            return Ok(token.clone());
        }
        let response = self
            .http
            .post(format!("{}/v1/oauth2/token", self.base))
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| Failure::Unreachable(format!("PayPal OAuth: {e}")))?;
        let status = response.status();
        // A sick PayPal is not a refusal of the credentials: retried like any call that got no answer.
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::Unreachable(format!("PayPal OAuth answered {status}")));
        }
        let body: Value = response.json().await.map_err(|e| Failure::Unreachable(format!("PayPal OAuth: {e}")))?;
        let token =
            body.get("access_token").and_then(Value::as_str).filter(|_| status.is_success()).ok_or_else(|| {
                Failure::Refused {
                    status,
                    issue: "AUTHENTICATION_FAILURE".into(),
                    message: "PayPal refused the client credentials".into(),
                }
            })?;
        // Refresh a minute early so a call never goes out with a token about to lapse.
        let lifetime = body.get("expires_in").and_then(Value::as_u64).unwrap_or(300).saturating_sub(60);
        *cached = Some((token.to_owned(), Instant::now() + Duration::from_secs(lifetime)));
        Ok(token.to_owned())
    }

    /// One API call, retried on transport failure and 5xx under the same request id.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Body<'_>>,
        request_id: Option<&str>,
    ) -> Result<Value, Failure> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let token = self.token().await?;
            let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(token);
            if let Some(id) = request_id {
                request = request.header("PayPal-Request-Id", id).header("Prefer", "return=representation");
            }
            request = match body {
                Some(Body::Json(body)) => request.json(body),
                Some(Body::Form { input, file_part, file }) => request.multipart(form(input, file_part, file)?),
                None => request,
            };
            match request.send().await {
                Ok(response) if response.status().is_server_error() => {
                    last = format!("PayPal answered {}", response.status())
                }
                Ok(response) => return read(response).await,
                Err(e) => last = format!("PayPal unreachable: {e}"),
            }
            tracing::warn!(error = %last, attempt, "paypal call failed; retrying with the same PayPal-Request-Id");
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        Err(Failure::Unreachable(last))
    }

    pub async fn create_order(&self, request: NewIntent<'_>) -> Result<IntentUpdate, ProviderError> {
        let body = json!({
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": request.purchase_id.to_string(),
                "custom_id": request.purchase_id.to_string(),
                "amount": { "currency_code": request.amount.currency.code(), "value": request.amount.decimal() },
            }],
            "payment_source": { "paypal": { "experience_context": {
                "user_action": "PAY_NOW",
                "shipping_preference": "NO_SHIPPING",
                "return_url": self.return_url,
                "cancel_url": self.cancel_url,
            }}},
        });
        let order = self
            .call(Method::POST, "/v2/checkout/orders", Some(Body::Json(&body)), Some(request.idempotency_key))
            .await?;
        parse_order(&order)
    }

    pub async fn capture(&self, order_id: &str, request_id: &str) -> Result<IntentUpdate, ProviderError> {
        let path = format!("/v2/checkout/orders/{order_id}/capture");
        match self.call(Method::POST, &path, Some(Body::Json(&json!({}))), Some(request_id)).await {
            Ok(order) => parse_order(&order),
            // The payer's funding source refused: a failed attempt, not a failed call.
            Err(Failure::Refused { issue, .. }) if issue == "INSTRUMENT_DECLINED" || issue == "TRANSACTION_REFUSED" => {
                Ok(refused_capture(order_id, request_id, &issue))
            }
            // Captured already, or not approved yet: the order itself says where things stand.
            Err(Failure::Refused { status: StatusCode::UNPROCESSABLE_ENTITY, .. }) => self.order(order_id).await,
            Err(other) => Err(other.into()),
        }
    }

    /// Refunds (part of) the order's capture; the capture is found on the order.
    pub async fn refund(&self, refund: &NewRefund<'_>) -> Result<RefundOutcome, ProviderError> {
        let capture = match refund.charge {
            Some(capture) => capture.to_owned(),
            None => self.order(refund.intent_id).await?.charge.ok_or_else(|| ProviderError::Rejected {
                code: "NO_CAPTURE".into(),
                message: "this order has no capture to refund".into(),
            })?,
        };
        let body =
            json!({ "amount": { "value": refund.amount.decimal(), "currency_code": refund.amount.currency.code() } });
        let path = format!("/v2/payments/captures/{capture}/refund");
        match self.call(Method::POST, &path, Some(Body::Json(&body)), Some(refund.idempotency_key)).await {
            Ok(made) => {
                Ok(RefundOutcome::Refunded(made.get("id").and_then(Value::as_str).unwrap_or_default().to_owned()))
            }
            Err(Failure::Refused { issue, .. }) => Ok(RefundOutcome::Refused(issue)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn order(&self, order_id: &str) -> Result<IntentUpdate, ProviderError> {
        let order = self.call(Method::GET, &format!("/v2/checkout/orders/{order_id}"), None, None).await?;
        parse_order(&order)
    }

    /// Provides evidence (PayPal's `provide-evidence`: notes and a document) or accepts the claim (`accept-claim`, a
    /// full refund to the payer), then reads the dispute back for where it stands; with no answer, only reads it.
    pub async fn dispute(&self, id: &str, answer: Option<&Answer>) -> Result<Report, ProviderError> {
        let path = format!("/v1/customer/disputes/{id}");
        let (action, input, file_part, file) = match answer {
            None => {
                let dispute = self.call(Method::GET, &path, None, None).await?;
                return parse_dispute(&dispute)
                    .ok_or_else(|| ProviderError::Unreachable("PayPal answered without a dispute".into()));
            }
            Some(Answer::Evidence { text, file }) => (
                "provide-evidence",
                json!({ "evidences": [{ "evidence_type": "OTHER", "notes": text }] }),
                "evidence-file",
                file.as_ref(),
            ),
            Some(Answer::Accept { note }) => {
                ("accept-claim", json!({ "note": note, "accept_claim_type": "REFUND" }), "accept-claim-document", None)
            }
        };
        let body = Body::Form { input: &input, file_part, file };
        self.call(Method::POST, &format!("{path}/{action}"), Some(body), None).await?;
        Box::pin(self.dispute(id, None)).await
    }

    /// PayPal's verify-webhook-signature postback: PayPal checks its own certificate chain and signature, which
    /// spares Purser a certificate store and follows PayPal's key rotation for free. `Rejected` when the event is
    /// not genuine (or PayPal refused the request, as it does a malformed one); `Unreachable` or `Throttled` when
    /// PayPal gave no verdict, which says nothing of the sender.
    pub async fn verify_webhook(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), ProviderError> {
        let not_verified = ProviderError::not_verified;
        let header = |name: &str| {
            let value = headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            value.ok_or_else(|| not_verified(format!("missing {name}")))
        };
        let event: Value = serde_json::from_slice(body).map_err(|e| not_verified(format!("not JSON: {e}")))?;
        let request = json!({
            "auth_algo": header("paypal-auth-algo")?,
            "cert_url": header("paypal-cert-url")?,
            "transmission_id": header("paypal-transmission-id")?,
            "transmission_sig": header("paypal-transmission-sig")?,
            "transmission_time": header("paypal-transmission-time")?,
            "webhook_id": self.webhook_id,
            "webhook_event": event,
        });
        let answer = self
            .call(Method::POST, "/v1/notifications/verify-webhook-signature", Some(Body::Json(&request)), None)
            .await
            .map_err(|e| match e {
                Failure::Refused { status: StatusCode::TOO_MANY_REQUESTS, message, .. } => {
                    ProviderError::Throttled(message)
                }
                Failure::Refused { message, .. } => not_verified(message),
                Failure::Unreachable(e) => ProviderError::Unreachable(e),
            })?;
        match answer.get("verification_status").and_then(Value::as_str) {
            Some("SUCCESS") => Ok(()),
            other => Err(not_verified(format!("PayPal says the signature is {}", other.unwrap_or("unknown")))),
        }
    }
}

/// What a call sends: JSON, or the multipart form the disputes API takes (an `input` JSON part and a document).
enum Body<'a> {
    Json(&'a Value),
    Form { input: &'a Value, file_part: &'static str, file: Option<&'a EvidenceFile> },
}

/// Built again for each attempt: a form is consumed by its request.
fn form(
    input: &Value,
    file_part: &'static str,
    file: Option<&EvidenceFile>,
) -> Result<reqwest::multipart::Form, Failure> {
    let json = |text: String| reqwest::multipart::Part::text(text).mime_str("application/json");
    let input = json(input.to_string()).map_err(|e| Failure::Unreachable(e.to_string()))?;
    let mut form = reqwest::multipart::Form::new().part("input", input);
    if let Some(file) = file {
        let part = reqwest::multipart::Part::bytes(file.bytes.clone())
            .file_name(file.name.clone())
            .mime_str(file.content_type())
            .map_err(|e| Failure::Unreachable(e.to_string()))?;
        form = form.part(file_part, part);
    }
    Ok(form)
}

async fn read(response: reqwest::Response) -> Result<Value, Failure> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let issue = body
        .pointer("/details/0/issue")
        .or_else(|| body.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN_ERROR")
        .to_owned();
    let message = body.get("message").and_then(Value::as_str).unwrap_or("PayPal refused the request").to_owned();
    Err(Failure::Refused { status, issue, message })
}
