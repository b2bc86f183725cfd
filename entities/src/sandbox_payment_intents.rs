//! The sandbox provider's own PaymentIntents, persisted so a restart of the service does not lose them.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sandbox_payment_intents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub client_secret: String,
    pub purchase_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub payment_method: Option<String>,
    pub status: String,
    pub confirmations: i32,
    pub last_error: Option<String>,
    pub latest_charge: Option<String>,
    pub customer_id: Option<String>,
    pub setup_future_usage: bool,
    /// The refund made for this intent, once: a repeated refund answers it again.
    pub refund_id: Option<String>,
    /// The dispute the payer opened on the charge (`pm_card_createDispute`), and its Stripe status.
    pub dispute_id: Option<String>,
    pub dispute_status: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
