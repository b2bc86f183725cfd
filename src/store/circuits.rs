//! The circuit breakers' state: which rails' circuits are open, and until when.
use super::alerts::Alert;
use chrono::{DateTime, Utc};
use entities::circuit_states as rows;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait};

/// Records that `rail`'s circuit is open until `until`, or closed (`None`), with the `alert` that tells the admins
/// in the same transaction.
pub async fn save(
    db: &DatabaseConnection,
    rail: &str,
    until: Option<DateTime<Utc>>,
    alert: Option<Alert>,
) -> Result<(), DbErr> {
    let txn = crate::store::begin(db).await?;
    let row = rows::ActiveModel { rail: Set(rail.to_owned()), open_until: Set(until), changed_at: Set(Utc::now()) };
    let replace = OnConflict::column(rows::Column::Rail)
        .update_columns([rows::Column::OpenUntil, rows::Column::ChangedAt])
        .to_owned();
    rows::Entity::insert(row).on_conflict(replace).exec_without_returning(&txn).await?;
    if let Some(alert) = alert {
        alert.raise(&txn).await?;
    }
    txn.commit().await
}

/// The open circuits: rail and until when.
pub async fn open(db: &DatabaseConnection) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    let rows = rows::Entity::find().all(db).await?;
    Ok(rows.into_iter().filter_map(|row| Some((row.rail, row.open_until?))).collect())
}
