//! Pauses and the admin audit trail. A pause, its audit row and a guard's alert are written in one transaction.
use super::alerts::Alert;
use crate::domain::event::EventType;
use chrono::{DateTime, Utc};
use entities::{admin_actions, platform_controls as controls};
use sea_orm::sea_query::OnConflict;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Statement,
};

/// The PostgreSQL channel a pause or resume is announced on, so every node reads the pauses back at once.
const CHANNEL: &str = "purser_pauses";

/// A connection listening on the pauses' channel (PostgreSQL; SQLite has one node, so `None`). It is one connection
/// of the pool, held for good; behind PgBouncer in transaction mode no notification arrives, and the pause watcher's
/// polling carries the pauses alone.
pub async fn listen(db: &DatabaseConnection) -> Result<Option<PgListener>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let failed = |e: sea_orm::sqlx::Error| DbErr::Custom(format!("LISTEN {CHANNEL}: {e}"));
    let mut listener = PgListener::connect_with(db.get_postgres_connection_pool()).await.map_err(failed)?;
    listener.listen(CHANNEL).await.map_err(failed)?;
    Ok(Some(listener))
}

pub async fn paused(db: &DatabaseConnection) -> Result<Vec<controls::Model>, DbErr> {
    controls::Entity::find().filter(controls::Column::Paused.eq(true)).all(db).await
}

pub async fn set(
    db: &DatabaseConnection,
    scope: &str,
    paused: bool,
    reason: &str,
    by: &str,
    at: DateTime<Utc>,
    alert: Option<Alert>,
) -> Result<(), DbErr> {
    use controls::Column as C;
    let txn = crate::store::begin(db).await?;
    let row = controls::ActiveModel {
        scope: Set(scope.to_owned()),
        paused: Set(paused),
        reason: Set(reason.to_owned()),
        changed_by: Set(by.to_owned()),
        changed_at: Set(at),
    };
    let replace =
        OnConflict::column(C::Scope).update_columns([C::Paused, C::Reason, C::ChangedBy, C::ChangedAt]).to_owned();
    controls::Entity::insert(row).on_conflict(replace).exec_without_returning(&txn).await?;
    audit(&txn, by, if paused { "pause" } else { "resume" }, scope, reason).await?;
    if let Some(alert) = alert {
        alert.raise(&txn).await?;
    }
    let kind = if paused { EventType::PaymentsPaused } else { EventType::PaymentsResumed };
    let data = serde_json::json!({ "scope": scope, "reason": reason, "changedBy": by });
    let cause = format!("{}:{scope}:{}", kind.as_str(), at.timestamp_nanos_opt().unwrap_or_default());
    super::events::record(&txn, kind, cause, None, data).await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        // Delivered at commit, to every node listening.
        let notify = "SELECT pg_notify($1, $2)";
        txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, notify, [CHANNEL.into(), scope.into()]))
            .await?;
    }
    txn.commit().await
}

/// One line of the admin audit trail.
pub async fn audit<C: ConnectionTrait>(
    db: &C,
    admin: &str,
    action: &str,
    target: &str,
    reason: &str,
) -> Result<(), DbErr> {
    admin_actions::Entity::insert(admin_actions::ActiveModel {
        admin: Set(admin.to_owned()),
        action: Set(action.to_owned()),
        target: Set(target.to_owned()),
        reason: Set(reason.to_owned()),
        at: Set(Utc::now()),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// The audit trail's lines about `target` (a purchase, a refund, a client), oldest first.
pub async fn audit_of<C: ConnectionTrait>(db: &C, target: &str) -> Result<Vec<admin_actions::Model>, DbErr> {
    admin_actions::Entity::find()
        .filter(admin_actions::Column::Target.eq(target))
        .order_by_asc(admin_actions::Column::Id)
        .all(db)
        .await
}
