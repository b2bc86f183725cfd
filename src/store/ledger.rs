//! The credit ledger: append-only rows; a balance is their sum. The unique `(source, kind)` key is what makes a
//! second grant for the same purchase fail in the database, whatever the code above it does. Every row is also one
//! event to the platform (`events::record_ledger`), in the same transaction. In a batch's first run its rows are held
//! to its end (`writer::hold_credit`), and a sum counts them.
use crate::domain::ids::ClientId;
use chrono::Utc;
use entities::credit_ledger;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

pub async fn append<C: ConnectionTrait>(
    db: &C,
    client: &ClientId,
    source: &str,
    kind: &str,
    credits: i64,
) -> Result<(), DbErr> {
    let row = credit_ledger::ActiveModel {
        client_id: Set(client.as_str().to_owned()),
        source: Set(source.to_owned()),
        kind: Set(kind.to_owned()),
        credits: Set(credits),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(row) = super::writer::hold_credit(row) {
        credit_ledger::Entity::insert(row).exec_without_returning(db).await?;
    }
    super::events::record_ledger(db, client.as_str(), source, kind, credits).await
}

pub async fn balance<C: ConnectionTrait>(db: &C, client: &ClientId) -> Result<i64, DbErr> {
    sum(db, client, None).await
}

/// The sum of the client's rows from `sources` (0 for none).
pub async fn sum_of_sources<C: ConnectionTrait>(db: &C, client: &ClientId, sources: &[String]) -> Result<i64, DbErr> {
    if sources.is_empty() {
        return Ok(0);
    }
    sum(db, client, Some(sources)).await
}

async fn sum<C: ConnectionTrait>(db: &C, client: &ClientId, sources: Option<&[String]>) -> Result<i64, DbErr> {
    // SUM of a BIGINT is NUMERIC on PostgreSQL; the cast keeps both databases answering an i64.
    let mut rows = credit_ledger::Entity::find()
        .select_only()
        .column_as(Expr::cust("CAST(COALESCE(SUM(credits), 0) AS BIGINT)"), "sum")
        .filter(credit_ledger::Column::ClientId.eq(client.as_str()));
    if let Some(sources) = sources {
        rows = rows.filter(credit_ledger::Column::Source.is_in(sources.iter().cloned()));
    }
    let sum: Option<i64> = rows.into_tuple().one(db).await?;
    Ok(sum.unwrap_or(0) + held(client, sources))
}

/// The credits of the client's rows (from `sources`) that the caller's batch holds, written only at its commit.
fn held(client: &ClientId, sources: Option<&[String]>) -> i64 {
    let counted = |row: &credit_ledger::ActiveModel| match (&row.client_id, &row.source, &row.credits) {
        (Set(c), Set(source), Set(credits)) if c == client.as_str() => {
            sources.is_none_or(|sources| sources.contains(source)).then_some(*credits)
        }
        _ => None,
    };
    super::writer::held_credits(|rows| rows.iter().filter_map(counted).sum())
}

/// Holds the client's ledger until the caller's transaction ends. On PostgreSQL, concurrent transactions would each
/// read the balance before the others' takes commit, so every decision on a balance takes the client's advisory
/// lock first; SQLite's single writer already puts them one after another. This waits for the lock: for a
/// transaction of its own, never a step of the writer's batch (`lock_now`).
pub async fn lock<C: ConnectionTrait>(db: &C, client: &ClientId) -> Result<(), DbErr> {
    super::advisory_lock(db, &key(client)).await
}

/// Holds the client's ledger like `lock`, or fails busy at once (`store::advisory_lock_now`): for a writer's step.
pub async fn lock_now<C: ConnectionTrait>(db: &C, client: &ClientId) -> Result<(), DbErr> {
    super::advisory_lock_now(db, &key(client)).await
}

fn key(client: &ClientId) -> String {
    format!("ledger:{}", client.as_str())
}

/// What a take found: the balance it left, or the smaller balance that refused it.
pub enum Taken {
    After(i64),
    Short(i64),
}

/// Takes `credits` from the client's balance in the caller's step, unless the balance is smaller: then it writes
/// nothing.
pub async fn take<C: ConnectionTrait>(
    db: &C,
    client: &ClientId,
    source: &str,
    kind: &str,
    credits: i64,
) -> Result<Taken, DbErr> {
    lock_now(db, client).await?;
    let balance = balance(db, client).await?;
    if balance < credits {
        return Ok(Taken::Short(balance));
    }
    append(db, client, source, kind, -credits).await?;
    Ok(Taken::After(balance - credits))
}
