//! The webhook inbox: verified events are stored before anything acts on them, unique on the provider's event id.
use chrono::Utc;
use entities::webhook_events;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// What became of a stored event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxStatus {
    /// Stored, not yet applied.
    Received,
    /// Applied in the transaction of the change it caused, or found to change nothing.
    Processed,
    /// A type Purser does not act on.
    Ignored,
    /// Nothing to route it to.
    Unroutable,
    /// Applying it failed.
    Failed,
}

impl InboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Processed => "processed",
            Self::Ignored => "ignored",
            Self::Unroutable => "unroutable",
            Self::Failed => "failed",
        }
    }
}

pub struct IncomingEvent {
    pub provider: &'static str,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub purchase_id: Option<Uuid>,
}

pub enum Recorded {
    /// To be applied: a new event, or a repeat of one never applied (a crash or a failure after it was stored), which
    /// is handled as new rather than dropped.
    New(i64),
    Duplicate,
}

pub async fn record<C: ConnectionTrait>(db: &C, event: IncomingEvent) -> Result<Recorded, DbErr> {
    let result = webhook_events::Entity::insert(webhook_events::ActiveModel {
        provider: Set(event.provider.to_owned()),
        event_id: Set(event.event_id.clone()),
        event_type: Set(event.event_type),
        payload: Set(event.payload),
        status: Set(InboxStatus::Received.as_str().to_owned()),
        purchase_id: Set(event.purchase_id),
        error: Set(None),
        received_at: Set(Utc::now()),
        processed_at: Set(None),
        ..Default::default()
    })
    // A repeat is found by `ON CONFLICT DO NOTHING`, not by a failed statement, which on PostgreSQL would abort the
    // writer's batch.
    .on_conflict(
        sea_orm::sea_query::OnConflict::columns([webhook_events::Column::Provider, webhook_events::Column::EventId])
            .do_nothing()
            .to_owned(),
    )
    .exec(db)
    .await;
    match result {
        Ok(inserted) => Ok(Recorded::New(inserted.last_insert_id)),
        Err(DbErr::RecordNotInserted) => {
            let stored = webhook_events::Entity::find()
                .filter(webhook_events::Column::Provider.eq(event.provider))
                .filter(webhook_events::Column::EventId.eq(&event.event_id))
                .one(db)
                .await?;
            Ok(match stored {
                Some(row)
                    if [InboxStatus::Received, InboxStatus::Failed]
                        .map(InboxStatus::as_str)
                        .contains(&row.status.as_str()) =>
                {
                    Recorded::New(row.id)
                }
                _ => Recorded::Duplicate,
            })
        }
        Err(e) => Err(e),
    }
}

/// Events stored but never applied: failed ones, and those still `received` since before `stuck_since` (their
/// routing died with the process). The inbox sweep runs them through routing again.
pub async fn unapplied(
    db: &sea_orm::DatabaseConnection,
    stuck_since: chrono::DateTime<Utc>,
) -> Result<Vec<webhook_events::Model>, DbErr> {
    let stuck = Condition::all()
        .add(webhook_events::Column::Status.eq(InboxStatus::Received.as_str()))
        .add(webhook_events::Column::ReceivedAt.lt(stuck_since));
    webhook_events::Entity::find()
        .filter(Condition::any().add(webhook_events::Column::Status.eq(InboxStatus::Failed.as_str())).add(stuck))
        .order_by_asc(webhook_events::Column::Id)
        .limit(200)
        .all(db)
        .await
}

pub async fn mark<C: ConnectionTrait>(
    db: &C,
    id: i64,
    status: InboxStatus,
    error: Option<String>,
) -> Result<(), DbErr> {
    webhook_events::Entity::update(webhook_events::ActiveModel {
        id: Set(id),
        status: Set(status.as_str().to_owned()),
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
    let statuses: Vec<&str> = match status {
        Some(status) => vec![status],
        None => [InboxStatus::Failed, InboxStatus::Unroutable, InboxStatus::Received].map(InboxStatus::as_str).to_vec(),
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
