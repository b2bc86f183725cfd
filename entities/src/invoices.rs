//! Issued invoices: numbered without gaps, one per paid purchase, never changed once written.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub number: i64,
    #[sea_orm(unique)]
    pub purchase_id: Uuid,
    pub client_id: String,
    pub issued_at: DateTimeUtc,
    /// Seller, buyer and lines as issued: the PDF is always rendered from this.
    pub document: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
