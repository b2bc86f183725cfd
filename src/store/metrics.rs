//! Counts from the tables: the chaos harness's view of the books, and `/metrics`' outbox depth.
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};

/// Rows of `table` per value of `column`. Both are fixed names from the caller, never input.
pub async fn count_by(
    db: &DatabaseConnection,
    table: &'static str,
    column: &'static str,
) -> Result<Vec<(String, i64)>, DbErr> {
    let sql = format!("SELECT {column} AS label, CAST(COUNT(*) AS BIGINT) AS n FROM {table} GROUP BY {column}");
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    rows.iter().map(|row| Ok((row.try_get("", "label")?, row.try_get("", "n")?))).collect()
}

/// Messages not yet sent (read through the partial index `idx_outbox_pending`).
pub async fn outbox_pending(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let sql = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM outbox WHERE sent_at IS NULL";
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    row.map(|r| r.try_get("", "n")).transpose().map(|n| n.unwrap_or(0))
}
