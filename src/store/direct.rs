//! SQLite's writer connection, called on the writer lane's own thread, and its readers, called on the thread that
//! reads.
//!
//! sqlx runs each SQLite statement on a thread of the connection's own and hands the statement, and then its rows,
//! across: two thread wake-ups per statement, most of the server's kernel time under load (docs/benchmarks.md). The
//! writer's lane already has a thread to itself and runs a batch's statements one after another, so on SQLite its
//! connection is opened here (rusqlite, on the same bundled SQLite sqlx links) and called from the lane directly. The
//! short reads of a request (a purchase, a balance, the sandbox's intent: each a lookup by key, tens of
//! microseconds) are called the same way from the task that reads, on a connection of a small pool; the long ones
//! (admin lists, reports) stay on sqlx's pool, off the runtime's threads.
//! SeaORM still builds every statement and decodes every row, through its proxy connection; this module binds the
//! values as sqlx would have stored them, so rows the one wrote the other reads unchanged, and gives each column of a
//! row the value type its entity field decodes from (`Kind`). A proxy row is a map from column name to value, with no
//! column order, so what is read here is read by name (a model, a `FromQueryResult` struct, one column), each
//! column named once.
//!
//! SeaORM's proxy `begin` and `commit` cannot return an error, so the writer sends `BEGIN IMMEDIATE` and `COMMIT` as
//! statements of their own (`transaction_statements`); a rollback, which may fail harmlessly, is the proxy's.
use crate::store::statements::StatementCounts;
use rusqlite::types::{Value as Sql, ValueRef};
use sea_orm::sea_query::Value;
use sea_orm::{
    ColumnTrait, ColumnType, DatabaseConnection, DatabaseConnectionType, DbBackend, DbErr, EntityTrait, Iterable,
    ProxyDatabaseTrait, ProxyExecResult, ProxyRow, RuntimeErr, Statement, Values,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Opens the writer's connection to the SQLite database at `url` (already created and migrated through sqlx), with
/// the write pool's settings; every statement it runs is counted in `counts` as the writer's.
pub fn connect(url: &str, counts: Arc<StatementCounts>) -> Result<DatabaseConnection, DbErr> {
    let path = file(url)?;
    let connection = writer(path).map_err(|e| not_opened("writer", path, e))?;
    let alive = Arc::new(());
    let checkpointer = checkpoints(path, Arc::downgrade(&alive));
    checkpointer.map_err(|e| not_opened("checkpointer", path, e))?;
    let connections = Connections::Writer { connection: Mutex::new(connection), _alive: alive };
    proxy(Direct { connections, counts, counted_as: "writer" })
}

/// Opens the pool of reading connections to the SQLite database at `url` (already created and migrated), refused
/// any write (`query_only`) as sqlx's read pool is; every statement they run is counted in `counts` as direct.
pub fn connect_reads(url: &str, counts: Arc<StatementCounts>) -> Result<DatabaseConnection, DbErr> {
    let path = file(url)?.to_owned();
    // One opened now, so a database that cannot be read fails the start rather than the first request.
    let first = reader(&path).map_err(|e| not_opened("reader", &path, e))?;
    let connections = Connections::Readers { idle: Mutex::new(vec![first]), file: path };
    proxy(Direct { connections, counts, counted_as: "direct" })
}

fn not_opened(which: &str, path: &str, error: impl std::fmt::Display) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(format!("SQLite {which} {path}: {error}")))
}

fn proxy(direct: Direct) -> Result<DatabaseConnection, DbErr> {
    let direct: Box<dyn ProxyDatabaseTrait> = Box::new(direct);
    sea_orm::ProxyDatabaseConnector::connect(DbBackend::Sqlite, Arc::new(direct))
}

/// The file a `sqlite:` URL names: a second connection to `:memory:` would be a second, empty database.
fn file(url: &str) -> Result<&str, DbErr> {
    let path = crate::store::sqlite_path(url);
    if path.is_empty() || path.contains(":memory:") {
        return Err(DbErr::Custom(format!("a direct connection needs a SQLite file, not `{url}`")));
    }
    Ok(path)
}

fn open(path: &str) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = rusqlite::Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    Ok(connection)
}

fn writer(path: &str) -> rusqlite::Result<rusqlite::Connection> {
    let connection = open(path)?;
    // WAL, durable commits, foreign keys and in-memory savepoint journals, as `store::connect` sets them for
    // sqlx's connections. Two differ, measured in docs/benchmarks.md: the writer copies its WAL into the database
    // (a checkpoint, run inside the commit that crosses the threshold) every 10,000 pages rather than 1,000, so a
    // page written by many batches is copied once, not ten times; and its page cache stays at SQLite's default:
    // the end of each write transaction walked the whole hash table of a 32 MiB cache (`pcache1TruncateUnsafe`),
    // which cost more than the pages it kept.
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = memory; PRAGMA wal_autocheckpoint = 10000;",
    )?;
    // Every statement a step makes stays prepared, as in sqlx's statement cache.
    connection.set_prepared_statement_cache_capacity(256);
    Ok(connection)
}

fn reader(path: &str) -> rusqlite::Result<rusqlite::Connection> {
    let connection = open(path)?;
    connection.execute_batch("PRAGMA foreign_keys = ON; PRAGMA query_only = ON;")?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// Whether `db` is a connection this module opened, whose transactions take `BEGIN` and `COMMIT` as statements. Only
/// the writer's has transactions: the readers' are never begun.
pub fn transaction_statements(db: &DatabaseConnection) -> bool {
    matches!(db.inner, DatabaseConnectionType::ProxyDatabaseConnection(_))
}

#[derive(Debug)]
struct Direct {
    connections: Connections,
    counts: Arc<StatementCounts>,
    /// The path the statement counts name these statements under: the writer's, or direct.
    counted_as: &'static str,
}

#[derive(Debug)]
enum Connections {
    /// The writer's one connection: a batch's transaction spans its statements.
    Writer {
        connection: Mutex<rusqlite::Connection>,
        /// The checkpointer stops once this is dropped.
        _alive: Arc<()>,
    },
    /// Connections that read, each statement on any one. Each is held only while a statement runs, never across an
    /// await, so the pool holds about as many as there are threads reading at once: one is opened when every one is
    /// in use, and at most `IDLE_READERS` are kept.
    Readers { idle: Mutex<Vec<rusqlite::Connection>>, file: String },
}

const IDLE_READERS: usize = 8;

/// A step that panicked mid-statement poisons nothing SQLite keeps: its batch's transaction is rolled back.
fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How often the checkpointer looks for WAL pages to copy into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// Copies the WAL's pages into the database (`PRAGMA wal_checkpoint(PASSIVE)`, which neither waits for the writer nor
/// makes it wait) on a thread and connection of its own, every `CHECKPOINT_EVERY`, while `alive` lives. SQLite would
/// otherwise do it inside the commit of the writer's batch that crosses `wal_autocheckpoint`, on the writer's thread,
/// with every step of the next batches waiting. Under load the WAL never stands still long enough for a passive
/// checkpoint to finish it, so the writer's own checkpoint still runs at the threshold, to finish and reset the WAL,
/// but finds most pages already copied.
fn checkpoints(path: &str, alive: std::sync::Weak<()>) -> std::io::Result<()> {
    let connection = open(path)
        .and_then(|c| c.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;").map(|()| c))
        .map_err(std::io::Error::other)?;
    let checkpoint = move || connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    std::thread::Builder::new().name("purser-checkpoints".into()).spawn(move || {
        while alive.strong_count() > 0 {
            std::thread::sleep(CHECKPOINT_EVERY);
            if let Err(e) = checkpoint() {
                tracing::debug!(error = %e, "WAL checkpoint");
            }
        }
    })?;
    Ok(())
}

impl Direct {
    fn with<T>(&self, run: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        match &self.connections {
            Connections::Writer { connection, .. } => run(&locked(connection)),
            Connections::Readers { idle, file } => {
                let taken = locked(idle).pop();
                let connection = match taken {
                    Some(connection) => connection,
                    None => reader(file)?,
                };
                let result = run(&connection);
                let mut idle = locked(idle);
                if idle.len() < IDLE_READERS {
                    idle.push(connection);
                }
                result
            }
        }
    }

    /// Runs `run`, counted and logged as sqlx logs its own statements (`store::connect`): each at TRACE, one that took
    /// over a second at WARN, under the same target.
    fn logged<T>(&self, sql: &str, run: impl FnOnce() -> T) -> T {
        self.counts.add(self.counted_as, sql);
        let started = Instant::now();
        let result = run();
        let elapsed = started.elapsed();
        if elapsed > Duration::from_secs(1) {
            tracing::warn!(target: "sqlx::query", ?elapsed, sql, "slow statement");
        } else {
            tracing::trace!(target: "sqlx::query", ?elapsed, sql);
        }
        result
    }

    fn rows(&self, sql: &str, values: Option<Values>) -> rusqlite::Result<Vec<ProxyRow>> {
        self.with(|connection| {
            let mut prepared = connection.prepare_cached(sql)?;
            bind(&mut prepared, values)?;
            let columns: Vec<(String, Kind)> =
                prepared.columns().iter().map(|c| (c.name().to_owned(), Kind::of(c.name(), c.decl_type()))).collect();
            let mut rows = prepared.raw_query();
            let mut found = Vec::new();
            while let Some(row) = rows.next()? {
                let mut values = BTreeMap::new();
                for (n, (name, kind)) in columns.iter().enumerate() {
                    values.insert(name.clone(), kind.decode(row.get_ref(n)?)?);
                }
                found.push(ProxyRow { values });
            }
            Ok(found)
        })
    }

    fn execute(&self, sql: &str, values: Option<Values>) -> rusqlite::Result<ProxyExecResult> {
        self.with(|connection| {
            match values {
                // Unprepared SQL, which may be several statements (a savepoint released and the next one opened).
                None => connection.execute_batch(sql)?,
                Some(values) => {
                    let mut prepared = connection.prepare_cached(sql)?;
                    bind(&mut prepared, Some(values))?;
                    let mut rows = prepared.raw_query();
                    while rows.next()?.is_some() {}
                }
            }
            Ok(ProxyExecResult::new(connection.last_insert_rowid() as u64, connection.changes()))
        })
    }

    fn roll_back(&self) {
        // Readers never begin a transaction (the proxy's `begin` sends nothing).
        if let Connections::Writer { connection, .. } = &self.connections {
            let connection = locked(connection);
            if !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
        }
    }
}

#[async_trait::async_trait]
impl ProxyDatabaseTrait for Direct {
    async fn query(&self, statement: Statement) -> Result<Vec<ProxyRow>, DbErr> {
        let Statement { sql, values, .. } = statement;
        let rows = self.logged(&sql, || self.rows(&sql, values));
        rows.map_err(|e| DbErr::Query(RuntimeErr::Internal(e.to_string())))
    }

    async fn execute(&self, statement: Statement) -> Result<ProxyExecResult, DbErr> {
        let Statement { sql, values, .. } = statement;
        let executed = self.logged(&sql, || Direct::execute(self, &sql, values));
        executed.map_err(|e| DbErr::Exec(RuntimeErr::Internal(e.to_string())))
    }

    async fn rollback(&self) {
        self.roll_back();
    }

    /// A transaction dropped unfinished (its step panicked): rolled back at once, as sqlx does.
    fn start_rollback(&self) {
        self.roll_back();
    }
}

fn bind(prepared: &mut rusqlite::CachedStatement<'_>, values: Option<Values>) -> rusqlite::Result<()> {
    for (n, value) in values.into_iter().flat_map(|v| v.0).enumerate() {
        prepared.raw_bind_parameter(n + 1, stored(value)?)?;
    }
    Ok(())
}

/// `value` as sqlx stores it in SQLite (sea-query-sqlx's binder, then sqlx's encoders), so the read pool decodes it.
fn stored(value: Value) -> rusqlite::Result<Sql> {
    use chrono::SecondsFormat;
    let unsupported = |value: &Value| {
        let message = format!("the SQLite writer cannot store {value:?}");
        rusqlite::Error::ToSqlConversionFailure(message.into())
    };
    let stored = match value {
        Value::Bool(v) => v.map(|b| Sql::Integer(i64::from(b))),
        Value::TinyInt(v) => v.map(|n| Sql::Integer(n.into())),
        Value::SmallInt(v) => v.map(|n| Sql::Integer(n.into())),
        Value::Int(v) => v.map(|n| Sql::Integer(n.into())),
        Value::BigInt(v) => v.map(Sql::Integer),
        Value::TinyUnsigned(v) => v.map(|n| Sql::Integer(n.into())),
        Value::SmallUnsigned(v) => v.map(|n| Sql::Integer(n.into())),
        Value::Unsigned(v) => v.map(|n| Sql::Integer(n.into())),
        Value::BigUnsigned(Some(n)) => Some(Sql::Integer(i64::try_from(n).map_err(|_| unsupported(&value))?)),
        Value::BigUnsigned(None) => None,
        Value::String(v) => v.map(Sql::Text),
        Value::Char(v) => v.map(|c| Sql::Text(c.to_string())),
        Value::Enum(e) => match e {
            sea_orm::sea_query::OptionEnum::Some(v) => Some(Sql::Text(v.value.into_owned())),
            sea_orm::sea_query::OptionEnum::None(_) => None,
        },
        Value::Bytes(v) => v.map(Sql::Blob),
        Value::Uuid(v) => v.map(|u| Sql::Blob(u.as_bytes().to_vec())),
        Value::Json(v) => v.map(|j| Sql::Text(j.to_string())),
        Value::ChronoDateTimeUtc(v) => v.map(|t| Sql::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))),
        Value::ChronoDateTimeWithTimeZone(v) => v.map(|t| Sql::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))),
        Value::ChronoDateTime(v) => v.map(|t| Sql::Text(t.format("%F %T%.f").to_string())),
        other => return Err(unsupported(&other)),
    };
    Ok(stored.unwrap_or(Sql::Null))
}

/// The value type a column's entity field decodes from. SeaORM's proxy rows convert only from the exact variant a
/// field's type names (an `i32` from `Value::Int`, never from `Value::BigInt`), and a field left undecoded would read
/// as missing, so each column is given its type from its declaration (`uuid_text`, `json_text`… as SeaORM's
/// migrations declare them) and, for integers, which SQLite declares alike, from its name (`NARROW`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Uuid,
    Time,
    Json,
    Bool,
    Text,
    /// `i32`.
    Narrow,
    /// `i64`.
    Wide,
    /// An expression (a count, a sum): as SQLite stores it.
    Stored,
}

/// The names of the columns that entities hold as `i32`. No column name is `i32` in one entity and `i64` in another
/// (a test sees to it), so the name tells.
static NARROW: LazyLock<HashSet<&'static str>> = LazyLock::new(|| integer_columns(true));

impl Kind {
    fn of(name: &str, declared: Option<&str>) -> Kind {
        // Compared without case and without a lowered copy: this runs for every column of every row set the writer
        // reads.
        let declared = declared.unwrap_or_default();
        let is = |word: &str| declared.eq_ignore_ascii_case(word);
        let starts = |prefix: &str| declared.get(..prefix.len()).is_some_and(|d| d.eq_ignore_ascii_case(prefix));
        match () {
            _ if is("uuid_text") => Kind::Uuid,
            _ if is("timestamp_with_timezone_text") => Kind::Time,
            _ if is("json_text") => Kind::Json,
            _ if is("boolean") => Kind::Bool,
            _ if starts("varchar") || starts("char") || is("text") => Kind::Text,
            _ if NARROW.contains(name) => Kind::Narrow,
            _ if is("integer") || is("bigint") => Kind::Wide,
            _ => Kind::Stored,
        }
    }

    fn decode(self, stored: ValueRef<'_>) -> rusqlite::Result<Value> {
        let wrong = |stored: ValueRef<'_>| {
            let message = format!("a {self:?} column holds {:?}", stored.data_type());
            rusqlite::Error::FromSqlConversionFailure(0, stored.data_type(), message.into())
        };
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
            rusqlite::Error::FromSqlConversionFailure(0, stored.data_type(), e)
        };
        Ok(match (self, stored) {
            // Any `None` will do: a missing value decodes as `None` whatever the field's type.
            (_, ValueRef::Null) => Value::String(None),
            (Kind::Uuid, ValueRef::Blob(b)) => Value::from(uuid::Uuid::from_slice(b).map_err(|e| failed(e.into()))?),
            (Kind::Uuid, ValueRef::Text(t)) => {
                Value::from(uuid::Uuid::try_parse_ascii(t).map_err(|e| failed(e.into()))?)
            }
            (Kind::Time, ValueRef::Text(t)) => Value::from(time(t).ok_or_else(|| wrong(stored))?),
            (Kind::Json, ValueRef::Text(t) | ValueRef::Blob(t)) => {
                Value::Json(Some(Box::new(serde_json::from_slice(t).map_err(|e| failed(e.into()))?)))
            }
            (Kind::Bool, ValueRef::Integer(n)) => Value::Bool(Some(n != 0)),
            (Kind::Narrow, ValueRef::Integer(n)) => Value::Int(Some(i32::try_from(n).map_err(|e| failed(e.into()))?)),
            (Kind::Wide | Kind::Stored, ValueRef::Integer(n)) => Value::BigInt(Some(n)),
            (Kind::Text | Kind::Stored, ValueRef::Text(t)) => {
                Value::String(Some(std::str::from_utf8(t).map_err(|e| failed(e.into()))?.to_owned()))
            }
            (Kind::Text, ValueRef::Integer(n)) => Value::String(Some(n.to_string())),
            (Kind::Stored, ValueRef::Real(x)) => Value::Double(Some(x)),
            (Kind::Stored, ValueRef::Blob(b)) => Value::Bytes(Some(b.to_vec())),
            _ => return Err(wrong(stored)),
        })
    }
}

/// A timestamp as sqlx decodes one from SQLite text: RFC 3339 (how it stores them), else SQLite's own formats.
fn time(text: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDateTime, Utc};
    let text = std::str::from_utf8(text).ok()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    const FORMATS: [&str; 12] = [
        "%F %T%.f",
        "%F %R",
        "%F %RZ",
        "%F %R%:z",
        "%F %T%.fZ",
        "%F %T%.f%:z",
        "%FT%R",
        "%FT%RZ",
        "%FT%R%:z",
        "%FT%T%.f",
        "%FT%T%.fZ",
        "%FT%T%.f%:z",
    ];
    FORMATS.iter().find_map(|format| {
        DateTime::parse_from_str(text, format)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| NaiveDateTime::parse_from_str(text, format).ok().map(|t| t.and_utc()))
    })
}

/// The names of every entity's `i32` columns (`narrow`), or of its other integer columns.
fn integer_columns(narrow: bool) -> HashSet<&'static str> {
    fn of<E: EntityTrait>(narrow: bool, names: &mut HashSet<&'static str>) {
        for column in E::Column::iter() {
            let wanted = match column.def().get_column_type() {
                ColumnType::Integer | ColumnType::SmallInteger | ColumnType::TinyInteger => narrow,
                ColumnType::BigInteger => !narrow,
                _ => false,
            };
            if wanted {
                names.insert(sea_orm::IdenStatic::as_str(&column));
            }
        }
    }
    use entities::*;
    let mut names = HashSet::new();
    let every: [fn(bool, &mut HashSet<&'static str>); 25] = [
        of::<admin_actions::Entity>,
        of::<alerts::Entity>,
        of::<api_keys::Entity>,
        of::<billing_profiles::Entity>,
        of::<circuit_states::Entity>,
        of::<credit_ledger::Entity>,
        of::<customers::Entity>,
        of::<disputes::Entity>,
        of::<event_deliveries::Entity>,
        of::<fraud_flags::Entity>,
        of::<fraud_screenings::Entity>,
        of::<idempotency_keys::Entity>,
        of::<invoices::Entity>,
        of::<outbox::Entity>,
        of::<payment_methods::Entity>,
        of::<platform_controls::Entity>,
        of::<platform_events::Entity>,
        of::<purchase_events::Entity>,
        of::<purchases::Entity>,
        of::<reconcile_schedule::Entity>,
        of::<refund_requests::Entity>,
        of::<sandbox_payment_intents::Entity>,
        of::<sandbox_paypal_orders::Entity>,
        of::<spends::Entity>,
        of::<webhook_events::Entity>,
    ];
    for entity in every {
        entity(narrow, &mut names);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::{Kind, integer_columns};
    use entities::{outbox, sandbox_payment_intents as intents};
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};

    // Each connection reads what the other wrote, field for field: every value type the entities hold (text, UUID,
    // both integer widths, a flag, JSON, times to the nanosecond, missing values).
    #[tokio::test]
    async fn rows_read_the_same_whichever_connection_wrote_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/d.db?mode=rwc", dir.path().display());
        let pooled = crate::store::connect(&url, 1).await.unwrap();
        crate::store::migrate(&pooled).await.unwrap();
        let direct = super::connect(&url, std::sync::Arc::default()).unwrap();
        let now = chrono::Utc::now();
        let intent = intents::Model {
            id: "pi_1".into(),
            client_secret: "pi_1_secret".into(),
            purchase_id: uuid::Uuid::new_v4(),
            amount: 16_000_000_000,
            currency: "usd".into(),
            payment_method: None,
            status: "succeeded".into(),
            confirmations: 2,
            last_error: None,
            latest_charge: Some("ch_1".into()),
            customer_id: None,
            setup_future_usage: true,
            refund_id: None,
            dispute_id: None,
            dispute_status: None,
            created_at: now,
            updated_at: now - chrono::TimeDelta::seconds(1),
        };
        intent.clone().into_active_model().insert(&direct).await.unwrap();
        assert_eq!(intents::Entity::find_by_id("pi_1").one(&pooled).await.unwrap(), Some(intent));
        let message = outbox::Model {
            id: 7,
            kind: "receipt".into(),
            dedupe_key: "receipt:1".into(),
            payload: serde_json::json!({ "credits": 240, "lines": [{ "amount": 16000 }], "note": null }),
            attempts: 3,
            last_error: Some("421".into()),
            created_at: now,
            available_at: now,
            sent_at: None,
        };
        message.clone().into_active_model().insert(&pooled).await.unwrap();
        assert_eq!(outbox::Entity::find_by_id(7).one(&direct).await.unwrap(), Some(message));
    }

    // The readers see what the writer committed and refuse to write anything themselves.
    #[tokio::test]
    async fn readers_read_commits_and_refuse_writes() {
        use sea_orm::ConnectionTrait;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/d.db?mode=rwc", dir.path().display());
        crate::store::migrate(&crate::store::connect(&url, 1).await.unwrap()).await.unwrap();
        let counts = std::sync::Arc::new(crate::store::statements::StatementCounts::default());
        let (writer, reads) =
            (super::connect(&url, counts.clone()).unwrap(), super::connect_reads(&url, counts).unwrap());
        let insert = "INSERT INTO sandbox_keys (name, value) VALUES ('k', 'v')";
        writer.execute_unprepared(insert).await.unwrap();
        let row = reads.query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT value FROM sandbox_keys WHERE name = 'k'",
        ));
        let value: String = row.await.unwrap().unwrap().try_get("", "value").unwrap();
        assert_eq!(value, "v");
        let refused = reads.execute_unprepared("DELETE FROM sandbox_keys").await.unwrap_err();
        assert!(refused.to_string().contains("readonly"), "{refused}");
    }

    #[test]
    fn no_column_name_is_a_narrow_integer_in_one_entity_and_a_wide_one_in_another() {
        let (narrow, wide) = (integer_columns(true), integer_columns(false));
        assert!(narrow.contains("attempts") && wide.contains("amount"), "{narrow:?} {wide:?}");
        assert!(narrow.is_disjoint(&wide), "both: {:?}", narrow.intersection(&wide).collect::<Vec<_>>());
    }

    #[test]
    fn columns_decode_as_their_declarations_say() {
        assert_eq!(Kind::of("id", Some("uuid_text")), Kind::Uuid);
        assert_eq!(Kind::of("id", Some("INTEGER")), Kind::Wide);
        assert_eq!(Kind::of("attempts", Some("INTEGER")), Kind::Narrow);
        assert_eq!(Kind::of("payload", Some("json_text")), Kind::Json);
        assert_eq!(Kind::of("payload", Some("varchar")), Kind::Text);
        assert_eq!(Kind::of("sum", None), Kind::Stored);
    }
}
