//! Disputes (chargebacks) raised by payers at PayPal or their bank through Stripe, for admins to resolve.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "disputes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub provider: String,
    pub purchase_id: Option<Uuid>,
    pub client_id: Option<String>,
    pub reason: String,
    /// One standing for both providers: `needs_response`, `under_review`, `won`, `lost`.
    pub status: String,
    /// The provider's own status, as it last reported it.
    pub provider_status: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub details: Json,
    pub evidence_due_by: Option<DateTimeUtc>,
    /// What a lost dispute took back through the ledger (0 otherwise).
    pub credits_debited: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
