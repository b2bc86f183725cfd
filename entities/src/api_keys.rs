//! API keys of the platform's backend: the SHA-256 of each secret, never the secret.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Who the key acts as: the caller's id in the spends and the audit trail.
    pub name: String,
    pub role: String,
    pub secret_hash: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
