//! Checkout counts per key (a client, a network) per minute, kept in the database when several nodes share it, so a
//! limit holds whichever node a caller's requests reach. The last minute is estimated from this minute's count and
//! the previous one's, weighted by how much of it still lies in the window (a sliding window, as Cloudflare counts).
//! A refused request is not counted, as with the budgets kept in memory.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr};
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
    let mut sorted = limits.to_vec();
    // One order for every caller (rows are counted in the order given), so two checks sharing a key never wait on
    // each other crosswise.
    sorted.sort();
    sorted.dedup_by(|a, b| a.0 == b.0);
    // Every key counted, and this minute's and the last one's counts read back, in one statement.
    let rows = vec!["(?, ?, 1)"; sorted.len()].join(", ");
    let count = format!(
        "INSERT INTO rate_windows (key, window_start, hits) VALUES {rows} \
         ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_windows.hits + 1 \
         RETURNING key, hits, (SELECT p.hits FROM rate_windows AS p \
           WHERE p.key = rate_windows.key AND p.window_start = rate_windows.window_start - 1) AS before"
    );
    let values = sorted.iter().flat_map(|(key, _)| [key.clone().into(), window.into()]).collect();
    let txn = crate::store::begin(db).await?;
    if backend == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL synchronous_commit = off").await?;
    }
    for row in txn.query_all_raw(super::numbered(backend, &count, values)).await? {
        let key: String = row.try_get("", "key")?;
        let now_hits = i64::from(row.try_get::<i32>("", "hits")?);
        let before = i64::from(row.try_get::<Option<i32>>("", "before")?.unwrap_or(0));
        let limit = sorted.iter().find(|(k, _)| *k == key).map_or(i64::MAX, |(_, limit)| *limit);
        if over_limit(now_hits, before, into, limit) {
            txn.rollback().await?;
            return Ok(Err(Duration::from_millis((WINDOW_MS - into) as u64)));
        }
    }
    txn.commit().await?;
    Ok(Ok(()))
}

/// Whether this minute's hits (this one included) and the share of the previous minute's still in the window exceed
/// `limit`, compared exactly: an estimate rounded down would let a burst at the end of one minute go again at the
/// start of the next.
fn over_limit(now_hits: i64, before: i64, into_ms: i64, limit: i64) -> bool {
    now_hits * WINDOW_MS + before * (WINDOW_MS - into_ms) > limit * WINDOW_MS
}

/// Forgets the minutes no count looks at any more.
pub async fn purge(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let before = now.timestamp_millis().div_euclid(WINDOW_MS) - 1;
    let sql = "DELETE FROM rate_windows WHERE window_start < ?";
    let purged = db.execute_raw(super::numbered(backend, sql, vec![before.into()])).await?;
    Ok(purged.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_just_before_the_minute_turns_still_counts_just_after() {
        // Four of four at the end of a minute: a fifth 0.1 s into the next is refused, as it would be 0.1 s earlier.
        assert!(over_limit(1, 4, 100, 4));
        assert!(over_limit(5, 0, 100, 4));
        // Nearly a minute later only a sliver of them is left in the window.
        assert!(!over_limit(1, 4, 59_900, 4));
        assert!(!over_limit(4, 0, 0, 4));
    }
}
