//! The sandbox playing PayPal: Orders v2 orders that a payer approves on the service's own
//! `/sandbox/paypal/checkoutnow` page, captures, and PayPal-shaped webhooks signed for the sandbox's own check.
use super::{PROVIDER, Sandbox, db_error, rejected};
use crate::domain::ids::new_key;
use crate::domain::money::Money;
use crate::providers::{NewIntent, ProviderError, RefundOutcome};
use axum::http::HeaderMap;
use chrono::Utc;
use entities::sandbox_paypal_orders as orders;
use hmac::{Hmac, Mac};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Funding sources the approval page offers; `declined` is a source whose capture PayPal refuses.
pub const FUNDING_SOURCES: [(&str, &str); 5] = [
    ("paypal", "PayPal balance"),
    ("venmo", "Venmo"),
    ("paylater", "Pay Later (PayPal Credit)"),
    ("card", "Card through PayPal"),
    ("declined", "A funding source that will be declined at capture"),
];

/// PayPal signs `transmission_id|transmission_time|webhook_id|crc32(body)` with its certificate; the sandbox signs
/// the same fields with an HMAC of its webhook secret, since it only ever verifies itself.
fn signature(secret: &str, transmission_id: &str, time: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{transmission_id}|{time}|{PROVIDER}|{}", hex::encode(Sha256::digest(body))).as_bytes());
    mac
}

fn sign(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let id = Uuid::new_v4().to_string();
    let time = Utc::now().to_rfc3339();
    let sig = hex::encode(signature(secret, &id, &time, body).finalize().into_bytes());
    vec![
        ("paypal-transmission-id", id),
        ("paypal-transmission-time", time),
        ("paypal-transmission-sig", sig),
        ("paypal-auth-algo", "HMACSHA256".into()),
        ("paypal-cert-url", "sandbox".into()),
    ]
}

impl Sandbox {
    fn checkout_url(&self, order: &str) -> String {
        format!(
            "{}/sandbox/paypal/checkoutnow?token={order}",
            self.public_url.get().map(String::as_str).unwrap_or_default()
        )
    }

    async fn paypal_order(&self, id: &str) -> Result<orders::Model, ProviderError> {
        orders::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| rejected("RESOURCE_NOT_FOUND", format!("The specified resource ID {id} does not exist.")))
    }

    async fn save_order(&self, mut order: orders::Model) -> Result<orders::Model, ProviderError> {
        order.updated_at = Utc::now();
        let active = sea_orm::ActiveModelTrait::reset_all(orders::ActiveModel::from(order.clone()));
        let update =
            self.writer.write(move |txn| Box::pin(async move { orders::Entity::update(active).exec(txn).await }));
        update.await.map_err(db_error)?;
        Ok(order)
    }

    pub async fn create_order(&self, request: NewIntent<'_>) -> Result<Value, ProviderError> {
        self.call(Box::pin(self.open_order(request))).await
    }

    async fn open_order(&self, request: NewIntent<'_>) -> Result<Value, ProviderError> {
        let existing = orders::Entity::find()
            .filter(orders::Column::PurchaseId.eq(request.purchase_id))
            .one(&self.db)
            .await
            .map_err(db_error)?;
        if let Some(order) = existing {
            return Ok(self.render_order(&order));
        }
        let now = Utc::now();
        let order = orders::Model {
            id: format!("SBX{}", Uuid::new_v4().simple().to_string()[..14].to_uppercase()),
            purchase_id: request.purchase_id,
            amount: request.amount.minor,
            currency: request.amount.currency.code().to_owned(),
            status: "PAYER_ACTION_REQUIRED".into(),
            funding_source: None,
            capture_id: None,
            capture_status: None,
            refund_id: None,
            created_at: now,
            updated_at: now,
        };
        // Two nodes opening the same purchase's order at once: the unique purchase id keeps the first.
        let row = orders::ActiveModel::from(order.clone());
        let first = super::on_conflict_do_nothing(orders::Column::PurchaseId);
        let insert = self.writer.write(move |txn| {
            Box::pin(async move { orders::Entity::insert(row).on_conflict(first).exec_without_returning(txn).await })
        });
        if insert.await.map_err(db_error)? == 0 {
            return Box::pin(self.open_order(request)).await;
        }
        Ok(self.render_order(&order))
    }

    /// What the payer does on the approval page: approve with a funding source, announced by
    /// `CHECKOUT.ORDER.APPROVED` as PayPal does.
    pub async fn approve_order(&self, id: &str, funding: &str) -> Result<(), ProviderError> {
        let mut order = self.paypal_order(id).await?;
        if order.status != "PAYER_ACTION_REQUIRED" {
            return Err(rejected("ORDER_ALREADY_APPROVED", format!("Order {id} is {}", order.status)));
        }
        if !FUNDING_SOURCES.iter().any(|(key, _)| *key == funding) {
            return Err(rejected("INVALID_PARAMETER_VALUE", format!("Unknown funding source {funding}")));
        }
        order.status = "APPROVED".into();
        order.funding_source = Some(funding.to_owned());
        let order = self.save_order(order).await?;
        self.send_paypal_webhook("CHECKOUT.ORDER.APPROVED", self.render_order(&order));
        Ok(())
    }

    pub async fn capture_order(&self, id: &str) -> Result<Value, ProviderError> {
        self.call(Box::pin(self.capture(id))).await
    }

    async fn capture(&self, id: &str) -> Result<Value, ProviderError> {
        let mut order = self.paypal_order(id).await?;
        match order.status.as_str() {
            "COMPLETED" => return Ok(self.render_order(&order)),
            "APPROVED" => {}
            _ => return Err(rejected("ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment.")),
        }
        if order.funding_source.as_deref() == Some("declined") {
            return Err(rejected(
                "INSTRUMENT_DECLINED",
                "The instrument presented was either declined by the processor or bank.",
            ));
        }
        order.status = "COMPLETED".into();
        order.capture_id = Some(format!("SBXCAP{}", Uuid::new_v4().simple().to_string()[..12].to_uppercase()));
        order.capture_status = Some("COMPLETED".into());
        let order = self.save_order(order).await?;
        self.send_paypal_webhook("PAYMENT.CAPTURE.COMPLETED", render_capture(&order));
        Ok(self.render_order(&order))
    }

    /// Refunds an order's capture in full, once: a repeat answers the first refund.
    pub async fn refund_order(&self, id: &str) -> Result<RefundOutcome, ProviderError> {
        self.call(Box::pin(self.refund_capture(id))).await
    }

    async fn refund_capture(&self, id: &str) -> Result<RefundOutcome, ProviderError> {
        let mut order = self.paypal_order(id).await?;
        if order.capture_status.as_deref() != Some("COMPLETED") {
            return Err(rejected("CAPTURE_NOT_REFUNDABLE", format!("Order {id} has no completed capture to refund.")));
        }
        if let Some(refund) = &order.refund_id {
            return Ok(RefundOutcome::Refunded(refund.clone()));
        }
        let refund = format!("SBXREF{}", Uuid::new_v4().simple().to_string()[..12].to_uppercase());
        order.refund_id = Some(refund.clone());
        self.save_order(order).await?;
        Ok(RefundOutcome::Refunded(refund))
    }

    pub async fn read_order(&self, id: &str) -> Result<Value, ProviderError> {
        self.call(Box::pin(self.read(id))).await
    }

    async fn read(&self, id: &str) -> Result<Value, ProviderError> {
        Ok(self.render_order(&self.paypal_order(id).await?))
    }

    /// The sandbox's twin of PayPal's verify-webhook-signature.
    pub fn verify_paypal_webhook(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).ok_or(format!("missing {name}"));
        let given = hex::decode(header("paypal-transmission-sig")?).map_err(|_| "malformed signature".to_owned())?;
        signature(&self.webhook_secret, header("paypal-transmission-id")?, header("paypal-transmission-time")?, body)
            .verify_slice(&given)
            .map_err(|_| "signature mismatch".to_owned())
    }

    fn send_paypal_webhook(&self, event_type: &str, resource: Value) {
        let event = json!({
            "id": format!("WH-SBX-{}", new_key().simple()),
            "event_version": "1.0",
            "create_time": Utc::now().to_rfc3339(),
            "resource_type": if event_type.starts_with("PAYMENT.CAPTURE") { "capture" } else { "checkout-order" },
            "event_type": event_type,
            "summary": event_type,
            "resource": resource,
        });
        self.deliver("/api/v1/webhooks/paypal", event.to_string(), sign);
    }

    fn render_order(&self, order: &orders::Model) -> Value {
        let amount = money(order);
        let mut purchase_unit = json!({
            "reference_id": order.purchase_id.to_string(),
            "custom_id": order.purchase_id.to_string(),
            "amount": { "currency_code": order.currency, "value": amount },
        });
        if order.capture_id.is_some() {
            purchase_unit["payments"] = json!({ "captures": [render_capture(order)] });
        }
        let mut rendered = json!({
            "id": order.id,
            "intent": "CAPTURE",
            "status": order.status,
            "purchase_units": [purchase_unit],
            "create_time": order.created_at.to_rfc3339(),
            "links": [
                { "href": self.checkout_url(&order.id), "rel": "payer-action", "method": "GET" },
                { "href": format!("/v2/checkout/orders/{}", order.id), "rel": "self", "method": "GET" },
            ],
        });
        if let Some(funding) = order.funding_source.as_deref().filter(|f| *f != "declined") {
            // As PayPal's Orders v2: Pay Later is paid through the payer's PayPal account, so named `paypal`.
            let source = if funding == "paylater" { "paypal" } else { funding };
            rendered["payment_source"] = json!({ source: {} });
        }
        rendered
    }
}

fn money(order: &orders::Model) -> String {
    crate::domain::money::Currency::parse(&order.currency)
        .and_then(|currency| Money::new(order.amount, currency))
        .map(|m| m.decimal())
        .unwrap_or_default()
}

fn render_capture(order: &orders::Model) -> Value {
    json!({
        "id": order.capture_id,
        "status": order.capture_status,
        "amount": { "currency_code": order.currency, "value": money(order) },
        "custom_id": order.purchase_id.to_string(),
        "final_capture": true,
        // As PayPal reports it on every capture: a sandbox payment is as protected as a typical PayPal one.
        "seller_protection": {
            "status": "ELIGIBLE",
            "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
        },
        "supplementary_data": { "related_ids": { "order_id": order.id } },
    })
}
