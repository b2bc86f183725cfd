//! The checkouts the fraud monitor let through and the declines it heard of, each with its client, network and card:
//! its velocity counts, shared by every node.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "fraud_screenings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `checkout` or `decline`.
    pub kind: String,
    pub client_id: String,
    pub ip: Option<String>,
    pub card: Option<String>,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
