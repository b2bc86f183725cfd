//! What a platform does with Purser over HTTP, one purchase at a time: mint a client's token, open a checkout,
//! confirm it, pass 3-D Secure or approve at PayPal in the sandbox, play the provider's webhook, and read the
//! balance back.
use crate::auth::{Authenticator, Role};
use crate::domain::ids::ClientId;
use crate::domain::signature as stripe_signature;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Stripe's test methods the sandbox honours, by outcome (`SUCCEEDING_CARDS` for one card per buyer).
pub const SUCCEEDS: &str = "pm_card_visa";
pub const DECLINES: &str = "pm_card_visa_chargeDeclined";
pub const NEEDS_3DS: &str = "pm_card_authenticationRequired";
/// Paid, then held for review (Radar's elevated risk).
pub const RISKY: &str = "pm_card_riskLevelElevated";
/// Paid, then disputed by the cardholder's bank.
pub const DISPUTED: &str = "pm_card_createDispute";

pub struct Driver {
    pub http: reqwest::Client,
    pub base: String,
    auth: Authenticator,
    webhook_secret: String,
}

/// One HTTP answer: its status, its JSON body (`Null` when not JSON) and how long it took.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub took: Duration,
}

impl Answer {
    pub fn data(&self, field: &str) -> &str {
        self.body["data"][field].as_str().unwrap_or_default()
    }
}

impl Driver {
    pub fn new(http: reqwest::Client, base: String, auth: Authenticator, webhook_secret: String) -> Self {
        Self { http, base, auth, webhook_secret }
    }

    pub fn token(&self, client: &str, role: Role) -> Result<String, String> {
        self.auth.mint(
            &ClientId::parse(client)?,
            role,
            Some(format!("{client}@bench.invalid")),
            Duration::from_secs(86_400),
        )
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, String> {
        let started = Instant::now();
        let response = request.send().await.map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| format!("reading the answer: {e}"))?;
        let took = started.elapsed();
        Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), took })
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Answer, String> {
        self.post_at(&self.base, path, token, body).await
    }

    /// A POST to one node of several, past the load balancer.
    pub async fn post_at(&self, base: &str, path: &str, token: Option<&str>, body: &Value) -> Result<Answer, String> {
        self.post_from(base, path, token, body, None).await
    }

    /// A POST from `from`: the address the load balancer in front of the service reports in `X-Forwarded-For`.
    async fn post_from(
        &self,
        base: &str,
        path: &str,
        token: Option<&str>,
        body: &Value,
        from: Option<IpAddr>,
    ) -> Result<Answer, String> {
        let mut request = self.http.post(format!("{base}{path}")).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(from) = from {
            request = request.header("x-forwarded-for", from.to_string());
        }
        self.send(request).await
    }

    /// A POST under an `Idempotency-Key`, as a careful platform backend sends money-moving calls.
    pub async fn post_keyed(&self, path: &str, token: &str, key: &str, body: &Value) -> Result<Answer, String> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body).bearer_auth(token);
        self.send(request.header("idempotency-key", key)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Result<Answer, String> {
        self.send(self.http.get(format!("{}{path}", self.base)).bearer_auth(token)).await
    }

    /// Opens a checkout; `from` is the buyer's own address, when the load balancer is to report one.
    pub async fn intent(
        &self,
        token: &str,
        package: &str,
        method: &str,
        from: Option<IpAddr>,
    ) -> Result<Answer, String> {
        let body = json!({ "packageId": package, "paymentMethodId": method });
        self.post_from(&self.base, "/api/v1/payments/stripe/intent", Some(token), &body, from).await
    }

    /// Opens a checkout under an `Idempotency-Key`, as a careful client does: a lost answer (the service killed
    /// mid-request), a 5xx or a 409 `idempotency_key_in_use` is retried with the same key until the service gives a
    /// real answer. Also says whether the key was refused to a try sent once `lease` had passed since the last try
    /// that may have claimed it: a claim held past its lease. The send, not the answer, is what counts: a refusal
    /// decided in time may be slow to arrive when the node is waiting on a lock a frozen node holds.
    pub async fn intent_once(
        &self,
        token: &str,
        package: &str,
        method: &str,
        key: &str,
        lease: Duration,
    ) -> Result<(Answer, bool), String> {
        let body = json!({ "packageId": package, "paymentMethodId": method });
        let started = Instant::now();
        // When the last try that may have claimed the key ended without an answer: the lease runs from a claim no
        // later than that.
        let mut claimed_by = started;
        let mut held_past_lease = false;
        let mut last = String::from("no answer");
        while started.elapsed() < lease + Duration::from_secs(30) {
            let sent = Instant::now();
            let request = self
                .http
                .post(format!("{}/api/v1/payments/stripe/intent", self.base))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body);
            match self.send(request).await {
                Ok(answer) if answer.body["error"]["code"] == "idempotency_key_in_use" => {
                    // A second of grace over the lease for the two clocks and the request's own time.
                    held_past_lease |= sent.duration_since(claimed_by) > lease + Duration::from_secs(1);
                    last = "idempotency_key_in_use".into();
                }
                Ok(answer) if answer.status < 500 => return Ok((answer, held_past_lease)),
                // A 5xx in Purser's envelope released the key; one without it is the load balancer's (a node killed
                // or frozen with the request): that node may have claimed the key, as after no answer at all.
                Ok(answer) => {
                    if !answer.body["success"].is_boolean() {
                        claimed_by = Instant::now();
                    }
                    last = format!("{} {}", answer.status, answer.body);
                }
                Err(e) => {
                    claimed_by = Instant::now();
                    last = e;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("intent with key {key}: {last}"))
    }

    /// An admin's decision on a payment held for review, retried while the service is down.
    pub async fn decide(&self, admin: &str, transaction: &str, verdict: &str) -> Result<Answer, String> {
        let path = format!("/api/v1/admin/payments/{transaction}/{verdict}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.post(&path, Some(admin), &json!({ "reason": "chaos review" })).await {
                Ok(answer) if answer.status < 500 => return Ok(answer),
                other if Instant::now() > deadline => {
                    return Err(format!("{verdict} {transaction}: {:?}", other.map(|a| a.status)));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn confirm(
        &self,
        token: &str,
        package: &str,
        intent: &str,
        from: Option<IpAddr>,
    ) -> Result<Answer, String> {
        let body = json!({ "paymentIntentId": intent, "packageId": package });
        self.post_from(&self.base, "/api/v1/payments/confirm", Some(token), &body, from).await
    }

    pub async fn paypal_order(&self, token: &str, package: &str) -> Result<Answer, String> {
        self.post("/api/v1/payments/paypal/create-order", Some(token), &json!({ "packageId": package })).await
    }

    /// The payer approves on the sandbox's PayPal page with `funding`; following its redirect lands on Purser's
    /// return URL, which captures, as the payer's browser would.
    pub async fn approve_paypal(&self, order: &str, funding: &str) -> Result<Answer, String> {
        let approve = format!("{}/sandbox/paypal/checkoutnow/{order}/approve", self.base);
        let form = ("content-type", "application/x-www-form-urlencoded");
        self.send(self.http.post(approve).header(form.0, form.1).body(format!("funding={funding}"))).await
    }

    /// The sandbox's 3-D Secure page, answered.
    pub async fn authenticate(&self, intent: &str, success: bool) -> Result<Answer, String> {
        self.post(&format!("/sandbox/v1/payment_intents/{intent}/_authenticate"), None, &json!({ "success": success }))
            .await
    }

    /// Stripe's `payment_intent.succeeded` for a purchase, signed as the provider signs it.
    pub async fn succeeded_webhook(&self, event_id: &str, intent: &str, purchase: &str) -> Result<Answer, String> {
        let event = json!({
            "id": event_id,
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": { "object": {
                "id": intent, "object": "payment_intent", "status": "succeeded",
                "metadata": { "purchase_id": purchase },
            } },
        });
        let body = event.to_string();
        let signature = stripe_signature::sign(body.as_bytes(), &self.webhook_secret, chrono::Utc::now().timestamp());
        let request = self
            .http
            .post(format!("{}/api/v1/webhooks/stripe", self.base))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(body);
        self.send(request).await
    }

    pub async fn balance(&self, token: &str) -> Result<i64, String> {
        let answer = self.get("/api/v1/credits/balance", token).await?;
        answer.body["data"]["balance"].as_i64().ok_or_else(|| format!("no balance in {}", answer.body))
    }

    pub async fn status(&self, token: &str, transaction: &str) -> Result<String, String> {
        let answer = self.get(&format!("/api/v1/payments/{transaction}"), token).await?;
        Ok(answer.data("status").to_owned())
    }

    /// Polls until the transaction reaches `status`; `Err` after `limit`.
    pub async fn wait_for(&self, token: &str, transaction: &str, status: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.status(token, transaction).await?;
            if now == status {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("transaction {transaction} stayed {now}, never {status}"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
