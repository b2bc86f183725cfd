//! An open circuit per rail (`card`, `paypal`); `open_until` is empty once it has closed again.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "circuit_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub rail: String,
    pub open_until: Option<DateTimeUtc>,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
