//! Checkout counts per key (a client, a network) per minute, kept in the database when several nodes share it, so a
//! limit holds whichever node a caller's requests reach. The last minute is estimated from this minute's count and
//! the previous one's, weighted by how much of it still lies in the window (a sliding window, as Cloudflare counts).
//! A refused request is not counted, as with the budgets kept in memory.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, TransactionTrait};
use std::time::Duration;

const WINDOW_MS: i64 = 60_000;

/// Counts one hit on each key if every key stays within its limit (hits in the last minute, this one included);
/// otherwise counts nothing and answers how long until this minute ends, the refused caller's wait. The rows are
/// locked from the first count to the commit, so two nodes checking one key count one after the other. The counts
/// are no record of money: on PostgreSQL they are committed without waiting for the disk, so a crash forgets at most
/// the last moment's hits.
pub async fn hit(
    db: &DatabaseConnection,
    limits: &[(String, i64)],
    now: DateTime<Utc>,
) -> Result<Result<(), Duration>, DbErr> {
    let backend = db.get_database_backend();
    let window = now.timestamp_millis().div_euclid(WINDOW_MS);
    let into = now.timestamp_millis().rem_euclid(WINDOW_MS);
    let upsert = "INSERT INTO rate_windows (key, window_start, hits) VALUES (?, ?, 1) \
                  ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_windows.hits + 1 RETURNING hits";
    let previous = "SELECT hits FROM rate_windows WHERE key = ? AND window_start = ?";
    let mut sorted = limits.to_vec();
    // One order for every caller, so two checks sharing a key never wait on each other crosswise.
    sorted.sort();
    let txn = db.begin().await?;
    if backend == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL synchronous_commit = off").await?;
    }
    for (key, limit) in sorted {
        let hits = |sql: &str, window: i64| super::numbered(backend, sql, vec![key.clone().into(), window.into()]);
        let now_hits: i64 = match txn.query_one_raw(hits(upsert, window)).await? {
            Some(row) => i64::from(row.try_get::<i32>("", "hits")?),
            None => 1,
        };
        let before: i64 = match txn.query_one_raw(hits(previous, window - 1)).await? {
            Some(row) => i64::from(row.try_get::<i32>("", "hits")?),
            None => 0,
        };
        if now_hits + before * (WINDOW_MS - into) / WINDOW_MS > limit {
            txn.rollback().await?;
            return Ok(Err(Duration::from_millis((WINDOW_MS - into) as u64)));
        }
    }
    txn.commit().await?;
    Ok(Ok(()))
}

/// Forgets the minutes no count looks at any more.
pub async fn purge(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let before = now.timestamp_millis().div_euclid(WINDOW_MS) - 1;
    let sql = "DELETE FROM rate_windows WHERE window_start < ?";
    let purged = db.execute_raw(super::numbered(backend, sql, vec![before.into()])).await?;
    Ok(purged.rows_affected())
}
