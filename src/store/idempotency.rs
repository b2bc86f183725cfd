//! `Idempotency-Key` records. The key is claimed before the work starts (as Stripe does), so a concurrent duplicate
//! is told the first is still running instead of doing the work twice; the response is stored once it exists.
use chrono::Utc;
use entities::idempotency_keys;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, SqlErr};

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

pub async fn claim(db: &DatabaseConnection, client: &str, key: &str, request_hash: &str) -> Result<Claim, DbErr> {
    let inserted = idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
        client_id: Set(client.to_owned()),
        key: Set(key.to_owned()),
        request_hash: Set(request_hash.to_owned()),
        response_status: Set(None),
        response_body: Set(None),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(db)
    .await;
    match inserted {
        Ok(_) => return Ok(Claim::Fresh),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
        Err(e) => return Err(e),
    }
    let Some(existing) = idempotency_keys::Entity::find_by_id((client.to_owned(), key.to_owned())).one(db).await?
    else {
        return Ok(Claim::InProgress);
    };
    if existing.request_hash != request_hash {
        return Ok(Claim::DifferentRequest);
    }
    Ok(match (existing.response_status, existing.response_body) {
        (Some(status), Some(body)) => Claim::Replay { status: status as u16, body },
        _ => Claim::InProgress,
    })
}

pub async fn complete(
    db: &DatabaseConnection,
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

pub async fn release(db: &DatabaseConnection, client: &str, key: &str) -> Result<(), DbErr> {
    idempotency_keys::Entity::delete_by_id((client.to_owned(), key.to_owned())).exec(db).await.map(|_| ())
}
