//! The webhook inbox: verified events are stored before anything acts on them, unique on the provider's event id.
use chrono::Utc;
use entities::webhook_events;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
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

#[derive(Clone)]
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
        sweep_at: Set(Some(Utc::now() + ROUTING_GRACE)),
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

/// How long the node that stored an event has to route it before any node's inbox sweep takes it: routing takes
/// milliseconds, so an event still unapplied this long after it arrived lost its routing to a crash (or is queued
/// behind a busy purchase, where a second delivery changes nothing).
pub const ROUTING_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
/// A failed event is tried again by the sweep after this long.
const FAILED_RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Claims, for this node's inbox sweep, the events due for it: failed ones, and those whose routing died with a node.
/// The claim moves each `claim` on (`super::claim_due`), so no other node replays them meanwhile.
pub async fn claim_unapplied(
    db: &sea_orm::DatabaseConnection,
    claim: std::time::Duration,
) -> Result<Vec<webhook_events::Model>, DbErr> {
    let columns = ("webhook_events", "sweep_at", "status IN ('received', 'failed')");
    let statement = super::claim_due(db.get_database_backend(), columns, std::time::Duration::ZERO, claim, 200);
    webhook_events::Entity::find().from_raw_sql(statement).all(db).await
}

/// Marks inbox row `id`. A "processed" mark in a writer's batch is held for the batch's one `UPDATE` of the rows its
/// steps consumed (`writer::hold_processed`).
pub async fn mark<C: ConnectionTrait>(
    db: &C,
    id: i64,
    status: InboxStatus,
    error: Option<String>,
) -> Result<(), DbErr> {
    if status == InboxStatus::Processed && error.is_none() && super::writer::hold_processed(id).is_none() {
        return Ok(());
    }
    webhook_events::Entity::update(webhook_events::ActiveModel { id: Set(id), ..marked(status, error, Utc::now()) })
        .exec(db)
        .await
        .map(|_| ())
}

/// The columns `mark` sets.
pub fn marked(status: InboxStatus, error: Option<String>, now: chrono::DateTime<Utc>) -> webhook_events::ActiveModel {
    webhook_events::ActiveModel {
        status: Set(status.as_str().to_owned()),
        error: Set(error),
        processed_at: Set(Some(now)),
        sweep_at: Set(match status {
            InboxStatus::Failed => Some(now + FAILED_RETRY),
            InboxStatus::Received => Some(now + ROUTING_GRACE),
            _ => None,
        }),
        ..Default::default()
    }
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

/// Stored event `id`, its row locked until the transaction `db` ends.
pub async fn lock<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<webhook_events::Model>, DbErr> {
    webhook_events::Entity::find_by_id(id).lock_exclusive().one(db).await
}
