//! Events to the platform: one row per change, written with its cause; `cause` is unique.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "platform_events")]
pub struct Model {
    /// Order of writing, for the fan-out; the event's public id is `id`.
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub id: String,
    pub r#type: String,
    pub cause: String,
    pub client_id: Option<String>,
    /// The event as sent: `{id, type, created, data}`.
    pub payload: Json,
    pub created_at: DateTimeUtc,
    /// Whether a delivery row exists for every endpoint configured when it was fanned out.
    pub fanned_out: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
