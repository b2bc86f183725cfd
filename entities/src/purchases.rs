//! One row per purchase: the actor's persisted state (`state`, with optimistic `version`) plus the columns queries need.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "purchases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: String,
    pub package_id: String,
    pub amount: i64,
    pub currency: String,
    pub credits: i64,
    pub provider: String,
    #[sea_orm(unique)]
    pub provider_ref: Option<String>,
    pub payment_method: Option<String>,
    /// The provider's charge or capture that paid the purchase; disputes name it.
    pub charge_ref: Option<String>,
    pub status: String,
    pub failure_code: Option<String>,
    pub state: Json,
    pub version: i64,
    /// The earliest deadline (expiry, retry) of an unfinished purchase, or how long a node's claim on it lasts: the
    /// deadline sweep of any node fires what falls due here.
    pub next_due_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
