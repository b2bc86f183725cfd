//! Alerts for admins (disputes, breaches), shown until someone acknowledges them.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub kind: String,
    pub details: Json,
    pub created_at: DateTimeUtc,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
