//! The sandbox's PayPal orders, persisted like its payment intents.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sandbox_paypal_orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub purchase_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub funding_source: Option<String>,
    pub capture_id: Option<String>,
    pub capture_status: Option<String>,
    /// The refund the sandbox made for the capture, once it has.
    pub refund_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
