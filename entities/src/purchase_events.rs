//! The audit trail of a purchase: one row per transition, written in the transaction that made it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "purchase_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub purchase_id: Uuid,
    pub kind: String,
    pub from_status: String,
    pub to_status: String,
    pub detail: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
