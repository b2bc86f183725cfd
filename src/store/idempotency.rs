//! `Idempotency-Key` records. The key is claimed before the work starts (as Stripe does), so a concurrent duplicate
//! is told the first is still running instead of doing the work twice; the response is stored once it exists.
//! A claim is a lease: one left unanswered by a crash is free again once the lease has passed, so the retry the key
//! exists for is not refused forever. Keys expire after 24 hours, as Stripe's do.
use chrono::{TimeDelta, Utc};
use entities::idempotency_keys;
use sea_orm::sea_query::Expr;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
};

/// After this a key is forgotten: a request with it is a new request.
pub const EXPIRY: TimeDelta = TimeDelta::hours(24);

pub enum Claim {
    /// First use: do the work, then `complete` (or `release` if it failed in a way worth retrying).
    Fresh,
    Replay {
        status: u16,
        body: String,
    },
    DifferentRequest,
    InProgress,
}

/// Claims `key` for a request. `lease` is how long an unanswered claim holds it (`payments.idempotency_lease`):
/// longer than any request may take, short enough that a client's retry after a crash gets through. Runs as a step of
/// the writer's batch: a key already held is found by `ON CONFLICT DO NOTHING`, never by a failed statement, which on
/// PostgreSQL would abort the batch's transaction.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    client: &str,
    key: &str,
    request_hash: &str,
    lease: TimeDelta,
) -> Result<Claim, DbErr> {
    let inserted = idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
        client_id: Set(client.to_owned()),
        key: Set(key.to_owned()),
        request_hash: Set(request_hash.to_owned()),
        response_status: Set(None),
        response_body: Set(None),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([idempotency_keys::Column::ClientId, idempotency_keys::Column::Key])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let Some(existing) = idempotency_keys::Entity::find_by_id((client.to_owned(), key.to_owned())).one(db).await?
    else {
        return Ok(Claim::InProgress);
    };
    let now = Utc::now();
    let abandoned = existing.response_status.is_none() && now - existing.created_at > lease;
    if abandoned || now - existing.created_at > EXPIRY {
        return take_over(db, &existing, request_hash, lease).await;
    }
    if existing.response_status.is_none() {
        return Ok(Claim::InProgress);
    }
    Ok(match (existing.response_status, existing.response_body) {
        _ if existing.request_hash != request_hash => Claim::DifferentRequest,
        (Some(status), Some(body)) => Claim::Replay { status: status as u16, body },
        _ => Claim::InProgress,
    })
}

/// Claims a lapsed key anew. Conditional on the key being lapsed still, so of two retries racing for it one wins (its
/// claim is fresh) and the other is told the key is in use.
async fn take_over<C: ConnectionTrait>(
    db: &C,
    lapsed: &idempotency_keys::Model,
    request_hash: &str,
    lease: TimeDelta,
) -> Result<Claim, DbErr> {
    use idempotency_keys::Column;
    let now = Utc::now();
    let still_lapsed = Condition::any()
        .add(Column::CreatedAt.lt(now - EXPIRY))
        .add(Condition::all().add(Column::ResponseStatus.is_null()).add(Column::CreatedAt.lt(now - lease)));
    let taken = idempotency_keys::Entity::update_many()
        .col_expr(idempotency_keys::Column::RequestHash, Expr::value(request_hash))
        .col_expr(idempotency_keys::Column::ResponseStatus, Expr::value(Option::<i32>::None))
        .col_expr(idempotency_keys::Column::ResponseBody, Expr::value(Option::<String>::None))
        .col_expr(idempotency_keys::Column::CreatedAt, Expr::value(now))
        .filter(idempotency_keys::Column::ClientId.eq(&lapsed.client_id))
        .filter(idempotency_keys::Column::Key.eq(&lapsed.key))
        .filter(still_lapsed)
        .exec(db)
        .await?;
    Ok(if taken.rows_affected == 1 { Claim::Fresh } else { Claim::InProgress })
}

/// Forgets keys past their expiry; run by the reconciler on its schedule.
pub async fn purge_expired(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let purged = idempotency_keys::Entity::delete_many()
        .filter(idempotency_keys::Column::CreatedAt.lt(Utc::now() - EXPIRY))
        .exec(db)
        .await?;
    Ok(purged.rows_affected)
}

pub async fn complete<C: ConnectionTrait>(
    db: &C,
    client: &str,
    key: &str,
    status: u16,
    body: String,
) -> Result<(), DbErr> {
    idempotency_keys::Entity::update(idempotency_keys::ActiveModel {
        client_id: Set(client.to_owned()),
        key: Set(key.to_owned()),
        response_status: Set(Some(i32::from(status))),
        response_body: Set(Some(body)),
        ..Default::default()
    })
    .exec(db)
    .await
    .map(|_| ())
}

pub async fn release<C: ConnectionTrait>(db: &C, client: &str, key: &str) -> Result<(), DbErr> {
    idempotency_keys::Entity::delete_by_id((client.to_owned(), key.to_owned())).exec(db).await.map(|_| ())
}
