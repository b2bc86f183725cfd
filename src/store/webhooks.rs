//! The webhook inbox: verified events are stored before anything acts on them, unique on the provider's event id.
use chrono::Utc;
use entities::webhook_events;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, SqlErr};
use uuid::Uuid;

pub const RECEIVED: &str = "received";
pub const PROCESSED: &str = "processed";
pub const IGNORED: &str = "ignored";
pub const UNROUTABLE: &str = "unroutable";
pub const FAILED: &str = "failed";

pub struct IncomingEvent<'a> {
    pub provider: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a str,
    pub purchase_id: Option<Uuid>,
}

pub enum Recorded {
    New(i64),
    Duplicate,
}

pub async fn record<C: ConnectionTrait>(db: &C, event: IncomingEvent<'_>) -> Result<Recorded, DbErr> {
    let result = webhook_events::Entity::insert(webhook_events::ActiveModel {
        provider: Set(event.provider.to_owned()),
        event_id: Set(event.event_id.to_owned()),
        event_type: Set(event.event_type.to_owned()),
        payload: Set(event.payload.to_owned()),
        status: Set(RECEIVED.to_owned()),
        purchase_id: Set(event.purchase_id),
        error: Set(None),
        received_at: Set(Utc::now()),
        processed_at: Set(None),
        ..Default::default()
    })
    .exec(db)
    .await;
    match result {
        Ok(inserted) => Ok(Recorded::New(inserted.last_insert_id)),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(Recorded::Duplicate),
        Err(e) => Err(e),
    }
}

pub async fn mark<C: ConnectionTrait>(db: &C, id: i64, status: &str, error: Option<String>) -> Result<(), DbErr> {
    webhook_events::Entity::update(webhook_events::ActiveModel {
        id: Set(id),
        status: Set(status.to_owned()),
        error: Set(error),
        processed_at: Set(Some(Utc::now())),
        ..Default::default()
    })
    .exec(db)
    .await
    .map(|_| ())
}

/// Events that need an admin's eye: failed, unroutable, or never applied.
pub async fn troubled(
    db: &sea_orm::DatabaseConnection,
    status: Option<&str>,
) -> Result<Vec<webhook_events::Model>, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let statuses: Vec<&str> = match status {
        Some(status) => vec![status],
        None => vec![FAILED, UNROUTABLE, RECEIVED],
    };
    webhook_events::Entity::find()
        .filter(webhook_events::Column::Status.is_in(statuses))
        .order_by_desc(webhook_events::Column::Id)
        .limit(500)
        .all(db)
        .await
}

pub async fn find(db: &sea_orm::DatabaseConnection, id: i64) -> Result<Option<webhook_events::Model>, DbErr> {
    webhook_events::Entity::find_by_id(id).one(db).await
}
