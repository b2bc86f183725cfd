//! Credits spent on the platform's service, each with the platform's reference, and its reversal when given back.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "spends")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: String,
    pub credits: i64,
    /// The platform's own id for what the credits bought (a job, a render…).
    pub reference: String,
    pub description: String,
    /// The service credential that spent them.
    pub spent_by: String,
    pub created_at: DateTimeUtc,
    pub reversed_at: Option<DateTimeUtc>,
    pub reversal_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
