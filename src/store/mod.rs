//! SeaORM queries. Each function that changes state does it in one transaction.
pub mod alerts;
pub mod api_keys;
pub mod billing_profiles;
pub mod circuits;
pub mod controls;
pub mod customers;
pub mod direct;
pub mod disputes;
pub mod events;
pub mod finished;
pub mod fraud_flags;
pub mod fraud_screenings;
pub mod idempotency;
pub mod invoices;
pub mod ledger;
pub mod metrics;
pub mod opened;
pub mod outbox;
pub mod payment_methods;
pub mod purchases;
pub mod rate_windows;
pub mod reconcile;
pub mod refunds;
pub mod spends;
pub mod statements;
pub mod webhooks;
pub mod writer;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement};
use statements::StatementCounts;
use std::sync::Arc;
use std::time::Duration;

pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    log_statements(&mut options).acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        create_parent_dir(url);
        // SQLite takes one writer at a time; a single connection keeps writers from failing with SQLITE_BUSY
        // instead of queueing.
        options.max_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .create_if_missing(true)
                // Each step of a batch runs in a savepoint, whose journal (the pages as they were before the step)
                // went to a temporary file: written on every step, read only to roll one back, never needed after a
                // crash (the WAL is). In memory it costs no system call.
                .pragma("temp_store", "memory")
                // 32 MiB of pages instead of 2: the indexes a batch touches stay in the writer's cache rather than
                // being read again through the kernel.
                .pragma("cache_size", "-32768")
        });
    } else {
        options.max_connections(max_connections);
    }
    Database::connect(options).await
}

/// Connections for reads that need not queue behind the writer. In WAL mode SQLite's readers never block its one
/// writer nor wait for it, so SQLite gets a small pool of its own, refused any write (`query_only`) and called from the
/// task that reads (`direct`); PostgreSQL's pool already serves reads and writes side by side. Either way its
/// statements are counted in `statements` as direct.
pub fn connect_reads(url: &str, writes: &DatabaseConnection, statements: &Arc<StatementCounts>) -> Connected {
    sqlite_direct_or(writes, url, statements, "direct", direct::connect_reads)
}

/// The connection the writer's batches run on (`writer::Writer`): on SQLite its own (`direct`), on PostgreSQL the pool
/// `writes`. Either way its statements are counted in `statements` as the writer's.
pub fn connect_writes(url: &str, writes: &DatabaseConnection, statements: &Arc<StatementCounts>) -> Connected {
    sqlite_direct_or(writes, url, statements, "writer", direct::connect)
}

type Connected = Result<DatabaseConnection, DbErr>;

fn sqlite_direct_or(
    pool: &DatabaseConnection,
    url: &str,
    statements: &Arc<StatementCounts>,
    counted_as: &'static str,
    direct: fn(&str, Arc<StatementCounts>) -> Connected,
) -> Connected {
    if url.starts_with("sqlite:") {
        return direct(url, statements.clone());
    }
    let mut pool = pool.clone();
    statements.watch(&mut pool, counted_as);
    Ok(pool)
}

/// Every statement with its time at TRACE under `sqlx::query` (`RUST_LOG=sqlx::query=trace` finds the costly ones,
/// as in docs/benchmarks.md), and one that took over a second at WARN.
fn log_statements(options: &mut ConnectOptions) -> &mut ConnectOptions {
    use tracing::log::LevelFilter;
    options
        .sqlx_logging(true)
        .sqlx_logging_level(LevelFilter::Trace)
        .sqlx_slow_statements_logging_settings(LevelFilter::Warn, Duration::from_secs(1))
}

/// The file a `sqlite:` URL names, without its options.
fn sqlite_path(url: &str) -> &str {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    path.split('?').next().unwrap_or_default()
}

fn create_parent_dir(url: &str) {
    let path = sqlite_path(url);
    if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
}

/// Any number `pg_advisory_xact_lock` may take; this one is Purser's migrations'.
const MIGRATION_LOCK: i64 = 0x7075_7273_6572; // "purser"

/// Brings the schema up to date. On PostgreSQL, nodes starting together take turns: the first holds a
/// transaction-scoped advisory lock while it migrates, the others wait for it and then find nothing left to do.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use migrations::MigratorTrait;
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return migrations::Migrator::up(db, None).await;
    }
    let lock = sea_orm::TransactionTrait::begin(db).await?;
    lock.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")).await?;
    let migrated = migrations::Migrator::up(db, None).await;
    lock.commit().await?;
    migrated
}

/// Opens a transaction outside the writer's batches. On SQLite it takes the write lock at once (`IMMEDIATE`): the writer
/// commits on a connection of its own (`direct`), and a transaction that read and then wrote would be refused
/// (`SQLITE_BUSY`) whenever the writer had committed in between.
pub async fn begin(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    let immediate =
        TransactionOptions { sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate), ..Default::default() };
    db.begin_with_options(immediate).await
}

pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// The sandbox's webhook secret when none is configured: made by the first node to start and read by the others, since
/// a webhook the sandbox sends through a load balancer may reach any node.
pub async fn sandbox_secret(db: &DatabaseConnection) -> Result<String, DbErr> {
    shared_key(db, "webhook_secret", format!("whsec_sandbox_{}", uuid::Uuid::new_v4().simple())).await
}

/// The key receipt links are signed with (`api::receipts`): random, made by the first node, the same on every node.
pub async fn receipt_key(db: &DatabaseConnection) -> Result<String, DbErr> {
    let random = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    shared_key(db, "receipt_links", random).await
}

/// A key every node shares: `made` is stored unless another node stored one first, and the stored one is returned.
async fn shared_key(db: &DatabaseConnection, name: &str, made: String) -> Result<String, DbErr> {
    let backend = db.get_database_backend();
    let insert = "INSERT INTO sandbox_keys (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING";
    let select = "SELECT value FROM sandbox_keys WHERE name = ?";
    db.execute_raw(numbered(backend, insert, vec![name.into(), made.into()])).await?;
    let row = db.query_one_raw(numbered(backend, select, vec![name.into()])).await?;
    row.ok_or_else(|| DbErr::RecordNotFound(format!("sandbox_keys.{name}")))?.try_get("", "value")
}

/// The statement that claims up to `limit` rows of `table` whose `due` column fell due more than `grace` ago (and
/// that match `also`, SQL over the table's own columns), moving `due` `claim` into the future: until then no other
/// node takes them, and should the claimer die they fall due again. On PostgreSQL the database's clock decides and
/// `SKIP LOCKED` lets nodes claim side by side; SQLite has one node and one writer, so the process's clock is the
/// database's. `RETURNING *` hands back the claimed rows.
pub fn claim_due(
    backend: DbBackend,
    (table, due, also): (&str, &str, &str),
    grace: Duration,
    claim: Duration,
    limit: u64,
) -> Statement {
    let limit = limit as i64;
    match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE {table} SET {due} = now() + make_interval(secs => $1) WHERE id IN (SELECT id FROM {table} \
                 WHERE {due} <= now() - make_interval(secs => $2) AND {also} ORDER BY {due} LIMIT $3 \
                 FOR UPDATE SKIP LOCKED) RETURNING *"
            ),
            [claim.as_secs_f64().into(), grace.as_secs_f64().into(), limit.into()],
        ),
        _ => {
            let now = chrono::Utc::now();
            let (until, due_by) = (now + claim, now - grace);
            Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE {table} SET {due} = ? WHERE id IN (SELECT id FROM {table} WHERE {due} <= ? AND {also} \
                     ORDER BY {due} LIMIT ?) RETURNING *"
                ),
                [until.into(), due_by.into(), limit.into()],
            )
        }
    }
}

/// A statement written with `?` placeholders, numbered `$1`, `$2`… for PostgreSQL.
pub fn numbered(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    if backend != DbBackend::Postgres {
        return Statement::from_sql_and_values(backend, sql, values);
    }
    let mut numbered = String::with_capacity(sql.len() + 16);
    for (n, part) in sql.split('?').enumerate() {
        if n > 0 {
            numbered.push_str(&format!("${n}"));
        }
        numbered.push_str(part);
    }
    Statement::from_sql_and_values(backend, numbered, values)
}

/// Takes the transaction-scoped advisory lock on `key` (PostgreSQL) unless another transaction holds it: then the
/// step fails busy (`is_busy`), having waited for nothing, and the writer tries it again (`Writer::write_when_free`).
/// A step of the writer's batch must not wait for a lock: its batch holds whatever its earlier steps took until the
/// commit, so two batches waiting each for a lock the other took would deadlock. SQLite's single writer takes
/// nothing.
pub async fn advisory_lock_now<C: ConnectionTrait>(db: &C, key: &str) -> Result<(), DbErr> {
    advisory_locks_now(db, &[key]).await
}

/// Takes the advisory locks on every one of `keys` like `advisory_lock_now`, in one round trip; fails busy when
/// another transaction holds any of them (having taken those it could, until the caller's transaction ends).
pub async fn advisory_locks_now<C: ConnectionTrait>(db: &C, keys: &[&str]) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres || keys.is_empty() {
        return Ok(());
    }
    // Each key its own column: every lock is tried, none skipped by a short-circuit.
    let tries: Vec<String> =
        (1..=keys.len()).map(|n| format!("pg_try_advisory_xact_lock(hashtextextended(${n}, 0)) AS k{n}")).collect();
    let sql = format!("SELECT {}", tries.join(", "));
    let values = keys.iter().map(|key| (*key).into());
    let row = db.query_one_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
    let row = row.ok_or_else(|| DbErr::RecordNotFound("pg_try_advisory_xact_lock".into()))?;
    for (n, key) in keys.iter().enumerate() {
        if !row.try_get::<bool>("", &format!("k{}", n + 1))? {
            return Err(busy(key));
        }
    }
    Ok(())
}

/// How the error of a lock another transaction held begins (`busy`).
const BUSY: &str = "busy, held by another transaction: ";

/// The error of a step refused `what` because another transaction holds it.
pub fn busy(what: &str) -> DbErr {
    DbErr::Custom(format!("{BUSY}{what}"))
}

/// Whether `e` says another transaction held a lock the step needs (`advisory_lock_now`, or PostgreSQL's 55P03
/// `lock_not_available` for a row taken `NOWAIT`): trying the step again a little later will do.
pub fn is_busy(e: &DbErr) -> bool {
    match e {
        DbErr::Custom(message) => message.starts_with(BUSY),
        DbErr::Query(sea_orm::RuntimeErr::SqlxError(error)) | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(error)) => {
            error.as_database_error().and_then(|db| db.code()).is_some_and(|code| code == "55P03")
        }
        _ => false,
    }
}

/// Takes a transaction-scoped advisory lock on `key` (PostgreSQL): whoever else asks for it waits until the caller's
/// transaction ends. SQLite's single writer already puts transactions one after another, so there it takes nothing.
pub async fn advisory_lock<C: ConnectionTrait>(db: &C, key: &str) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        let sql = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
        db.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, [key.into()])).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Statement};

    // `.cargo/config.toml` builds the bundled SQLite with the query planner stability guarantee; without it every
    // statement with a bound `LIMIT` is parsed and planned again on each run (docs/benchmarks.md).
    #[tokio::test]
    async fn the_bundled_sqlite_keeps_its_plans() {
        let db = super::connect("sqlite::memory:", 1).await.unwrap();
        let sql = Statement::from_string(db.get_database_backend(), "PRAGMA compile_options");
        let options: Vec<String> =
            db.query_all_raw(sql).await.unwrap().iter().map(|r| r.try_get("", "compile_options").unwrap()).collect();
        assert!(options.iter().any(|o| o == "ENABLE_QPSG"), "compile options: {options:?}");
    }
}
