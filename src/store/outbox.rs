//! The transactional outbox: messages (receipts, admin alerts) written in the transaction of the change that causes
//! them, and sent after it commits. The dedupe key makes a message that is caused twice go out once.
use chrono::Utc;
use entities::outbox;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use serde_json::Value;

pub async fn enqueue<C: ConnectionTrait>(db: &C, kind: &str, dedupe_key: String, payload: Value) -> Result<(), DbErr> {
    let now = Utc::now();
    let message = outbox::ActiveModel {
        kind: Set(kind.to_owned()),
        dedupe_key: Set(dedupe_key),
        payload: Set(payload),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        available_at: Set(now),
        sent_at: Set(None),
        ..Default::default()
    };
    outbox::Entity::insert(message)
        .on_conflict(OnConflict::column(outbox::Column::DedupeKey).do_nothing().to_owned())
        .exec_without_returning(db)
        .await
        .map(|_| ())
}
