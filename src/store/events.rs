//! Events to the platform (issue 18). Each change the platform cares about is recorded here in the transaction of
//! its cause, once (`cause` is unique); the event sender (`notify::events`) then fans each event out to the
//! endpoints subscribed to its type and delivers it at least once, retrying with backoff for three days.
use crate::domain::event::EventType;
use crate::domain::ids::{new_key, public_source};
use chrono::{DateTime, TimeDelta, Utc};
use entities::{event_deliveries as deliveries, platform_events as events};
use sea_orm::sea_query::{LockBehavior, LockType, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::{Value, json};
use std::time::Duration;

/// Records an event in the caller's transaction, once per `cause`: a change applied twice is one event. In a writer's
/// batch the row is held for the batch's one `INSERT` of events (`writer::hold_event`).
pub async fn record<C: ConnectionTrait>(
    db: &C,
    kind: EventType,
    cause: String,
    client: Option<&str>,
    data: Value,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let id = format!("evt_{}", new_key().simple());
    let payload = json!({ "id": id, "type": kind.as_str(), "created": now.timestamp(), "data": data });
    let row = events::ActiveModel {
        id: Set(id),
        r#type: Set(kind.as_str().to_owned()),
        cause: Set(cause),
        client_id: Set(client.map(str::to_owned)),
        payload: Set(payload),
        created_at: Set(now),
        fanned_out: Set(false),
        ..Default::default()
    };
    let Some(row) = super::writer::hold_event(row) else { return Ok(()) };
    events::Entity::insert(row).on_conflict(once_per_cause()).exec_without_returning(db).await.map(|_| ())
}

/// An event's row is written once per `cause`: a second with the same cause is dropped, whether recorded alone or
/// held for a batch's insert.
pub fn once_per_cause() -> OnConflict {
    OnConflict::column(events::Column::Cause).do_nothing().to_owned()
}

/// The event of one ledger row, written with it (`ledger::append`).
pub async fn record_ledger<C: ConnectionTrait>(
    db: &C,
    client: &str,
    source: &str,
    kind: &str,
    credits: i64,
) -> Result<(), DbErr> {
    let Some(event) = EventType::of_ledger_kind(kind) else {
        return Err(DbErr::Custom(format!("no platform event for ledger rows of kind {kind}")));
    };
    let public = public_source(source);
    let mut data = json!({ "clientId": client, "ledgerEntry": { "kind": kind, "source": public, "credits": credits } });
    let object = match source.split_once(':').map(|(what, _)| what) {
        Some("purchase") => "transactionId",
        Some("spend") => "spendId",
        Some("refund") => "refundRequestId",
        Some("dispute") => "disputeId",
        _ => "adjustmentId",
    };
    data[object] = Value::String(public);
    record(db, event, format!("ledger:{source}:{kind}"), Some(client), data).await
}

/// An endpoint as the sender fans out to it: its name and the types it takes.
pub struct Subscriber<'a> {
    pub endpoint: &'a str,
    pub types: &'a [String],
}

impl Subscriber<'_> {
    fn takes(&self, kind: &str) -> bool {
        self.types.iter().any(|t| t == "*" || t == kind)
    }
}

/// Gives up to `limit` new events a delivery row for each endpoint that takes their type; how many it fanned out.
/// Two nodes fanning out the same event write its deliveries once (the unique `(event, endpoint)` key). The events are
/// taken skip-locked (PostgreSQL): the fan-out shares a writer batch with purchase steps that hold the invoice counter,
/// and another node's batch waiting for these rows while holding the counter deadlocked with it.
pub async fn fan_out<C: ConnectionTrait>(txn: &C, subscribers: &[Subscriber<'_>], limit: u64) -> Result<usize, DbErr> {
    // Read by column name: SQLite's writer connection (`store::direct`) gives rows whose columns have no order.
    #[derive(sea_orm::FromQueryResult)]
    struct Fresh {
        seq: i64,
        id: String,
        kind: String,
    }
    let fresh: Vec<Fresh> = events::Entity::find()
        .select_only()
        .columns([events::Column::Seq, events::Column::Id])
        .column_as(events::Column::Type, "kind")
        .filter(events::Column::FannedOut.eq(false))
        .order_by_asc(events::Column::Seq)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .into_model()
        .all(txn)
        .await?;
    if fresh.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let rows: Vec<deliveries::ActiveModel> = fresh
        .iter()
        .flat_map(|Fresh { id, kind, .. }| {
            subscribers.iter().filter(|s| s.takes(kind)).map(move |s| deliveries::ActiveModel {
                event_id: Set(id.clone()),
                endpoint: Set(s.endpoint.to_owned()),
                status: Set("pending".to_owned()),
                attempts: Set(0),
                last_status: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                available_at: Set(now),
                delivered_at: Set(None),
                ..Default::default()
            })
        })
        .collect();
    if !rows.is_empty() {
        let once =
            OnConflict::columns([deliveries::Column::EventId, deliveries::Column::Endpoint]).do_nothing().to_owned();
        deliveries::Entity::insert_many(rows).on_conflict(once).exec_without_returning(txn).await?;
    }
    events::Entity::update_many()
        .col_expr(events::Column::FannedOut, true.into())
        .filter(events::Column::Seq.is_in(fresh.iter().map(|f| f.seq)))
        .exec(txn)
        .await?;
    Ok(fresh.len())
}

/// What the sender has to do now: events to fan out, deliveries due. Reads, so an idle queue costs it no write.
pub async fn waiting(db: &DatabaseConnection) -> Result<(bool, bool), DbErr> {
    let unfanned = events::Entity::find().filter(events::Column::FannedOut.eq(false));
    let due = deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq("pending"))
        .filter(deliveries::Column::AvailableAt.lte(Utc::now()));
    Ok((unfanned.one(db).await?.is_some(), due.one(db).await?.is_some()))
}

/// A delivery claimed for sending, with the event it carries.
pub struct Claimed {
    pub delivery: deliveries::Model,
    pub event: Value,
}

/// Claims up to `limit` deliveries due now for this node (`super::claim_due`), with their events.
pub async fn claim<C: ConnectionTrait>(db: &C, claim: Duration, limit: u64) -> Result<Vec<Claimed>, DbErr> {
    let columns = ("event_deliveries", "available_at", "status = 'pending'");
    let statement = super::claim_due(db.get_database_backend(), columns, Duration::ZERO, claim, limit);
    let claimed = deliveries::Entity::find().from_raw_sql(statement).all(db).await?;
    let mut carried = events_of(db, &claimed).await?;
    Ok(claimed
        .into_iter()
        .filter_map(|delivery| {
            let event = carried.remove(&delivery.event_id)?.payload;
            Some(Claimed { delivery, event })
        })
        .collect())
}

/// The events `of` carry, by id.
async fn events_of<C: ConnectionTrait>(
    db: &C,
    of: &[deliveries::Model],
) -> Result<std::collections::HashMap<String, events::Model>, DbErr> {
    let ids: Vec<String> = of.iter().map(|d| d.event_id.clone()).collect();
    let found = events::Entity::find().filter(events::Column::Id.is_in(ids)).all(db).await?;
    Ok(found.into_iter().map(|e| (e.id.clone(), e)).collect())
}

/// Whether an attempt was answered 2xx, and what to remember of it.
#[derive(Clone)]
pub struct Attempt {
    pub delivered: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// Records an attempt: delivered, or due again after a backoff (2 s, 4 s, 8 s… at most an hour) until `give_up`
/// after the event, when the delivery is `failed` (an admin may still replay it).
pub async fn record_attempt<C: ConnectionTrait>(
    db: &C,
    delivery: &deliveries::Model,
    attempt: Attempt,
    give_up: Duration,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let attempts = delivery.attempts + 1;
    let wait = TimeDelta::seconds((1_i64 << attempts.clamp(1, 12)).min(3600));
    let (status, available_at, delivered_at) = match attempt.delivered {
        true => ("delivered", delivery.available_at, Some(now)),
        false if now + wait > delivery.created_at + TimeDelta::from_std(give_up).unwrap_or(TimeDelta::MAX) => {
            ("failed", now, None)
        }
        false => ("pending", now + wait, None),
    };
    deliveries::Entity::update(deliveries::ActiveModel {
        id: Set(delivery.id),
        status: Set(status.to_owned()),
        attempts: Set(attempts),
        last_status: Set(attempt.status.map(i32::from)),
        last_error: Set(attempt.error),
        available_at: Set(available_at),
        delivered_at: Set(delivered_at),
        ..Default::default()
    })
    .exec(db)
    .await
    .map(|_| ())
}

/// Deliveries, newest first, by endpoint and status when given, after `before` (the last id of the previous page).
pub async fn deliveries(
    db: &DatabaseConnection,
    endpoint: Option<&str>,
    status: Option<&str>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<(deliveries::Model, String)>, DbErr> {
    let mut query = deliveries::Entity::find().order_by_desc(deliveries::Column::Id).limit(limit);
    if let Some(endpoint) = endpoint {
        query = query.filter(deliveries::Column::Endpoint.eq(endpoint));
    }
    if let Some(status) = status {
        query = query.filter(deliveries::Column::Status.eq(status));
    }
    if let Some(before) = before {
        query = query.filter(deliveries::Column::Id.lt(before));
    }
    let rows = query.all(db).await?;
    typed(db, rows).await
}

/// Each delivery with its event's type.
pub async fn typed<C: ConnectionTrait>(
    db: &C,
    rows: Vec<deliveries::Model>,
) -> Result<Vec<(deliveries::Model, String)>, DbErr> {
    let carried = events_of(db, &rows).await?;
    Ok(rows
        .into_iter()
        .map(|d| {
            let kind = carried.get(&d.event_id).map(|e| e.r#type.clone()).unwrap_or_default();
            (d, kind)
        })
        .collect())
}

/// Puts a delivery back in the queue, due now, and audits who did, in the caller's transaction. `None` when there
/// is no such delivery.
pub async fn replay<C: ConnectionTrait>(
    db: &C,
    id: i64,
    admin: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Option<deliveries::Model>, DbErr> {
    let Some(found) = deliveries::Entity::find_by_id(id).one(db).await? else { return Ok(None) };
    deliveries::Entity::update(deliveries::ActiveModel {
        id: Set(id),
        status: Set("pending".to_owned()),
        available_at: Set(at),
        ..Default::default()
    })
    .exec(db)
    .await?;
    let what = format!("event {} to endpoint {} (was {}): {reason}", found.event_id, found.endpoint, found.status);
    super::controls::audit(db, admin, "replay_event", &format!("delivery:{id}"), &what).await?;
    deliveries::Entity::find_by_id(id).one(db).await
}
