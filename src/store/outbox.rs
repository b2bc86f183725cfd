//! The transactional outbox: messages (receipts, admin alerts) written in the transaction of the change that causes
//! them, and sent after it commits. The dedupe key makes a message that is caused twice go out once.
use chrono::Utc;
use entities::outbox;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value;
use std::time::Duration;

/// What an outbox message is, and so which email the mailer makes of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A purchase's receipt, with its invoice.
    Receipt,
    /// A refund's notice (approved, denied, refunded, another method needed).
    RefundNotice,
    /// A confirmed fraud: the client is asked to verify.
    FraudNotice,
    /// An alert for the admins.
    AdminAlert,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt_email",
            Self::RefundNotice => "refund_email",
            Self::FraudNotice => "fraud_notice",
            Self::AdminAlert => "admin_alert",
        }
    }

    pub fn parse(kind: &str) -> Option<Self> {
        [Self::Receipt, Self::RefundNotice, Self::FraudNotice, Self::AdminAlert]
            .into_iter()
            .find(|k| k.as_str() == kind)
    }
}

/// A message caused twice is written once.
pub fn once_per_dedupe_key() -> OnConflict {
    OnConflict::column(outbox::Column::DedupeKey).do_nothing().to_owned()
}

/// Queues a message in the caller's transaction (held for its batch's one `INSERT`, `writer::hold_message`).
pub async fn enqueue<C: ConnectionTrait>(db: &C, kind: Kind, dedupe_key: String, payload: Value) -> Result<(), DbErr> {
    let now = Utc::now();
    let message = outbox::ActiveModel {
        kind: Set(kind.as_str().to_owned()),
        dedupe_key: Set(dedupe_key),
        payload: Set(payload),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        available_at: Set(now),
        sent_at: Set(None),
        ..Default::default()
    };
    let Some(message) = super::writer::hold_message(message) else { return Ok(()) };
    outbox::Entity::insert(message).on_conflict(once_per_dedupe_key()).exec_without_returning(db).await.map(|_| ())
}

/// Messages due now, oldest first.
pub async fn due(db: &DatabaseConnection, limit: u64) -> Result<Vec<outbox::Model>, DbErr> {
    outbox::Entity::find()
        .filter(outbox::Column::SentAt.is_null())
        .filter(outbox::Column::AvailableAt.lte(Utc::now()))
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Claims up to `limit` messages due now for this node's mailer (`super::claim_due`): the other nodes' mailers leave
/// them alone for `claim`, and send them only if this one died before marking them. A message so goes out twice at
/// most once per claimer that died sending it, and never zero times.
pub async fn claim<C: ConnectionTrait>(db: &C, claim: Duration, limit: u64) -> Result<Vec<outbox::Model>, DbErr> {
    let columns = ("outbox", "available_at", "sent_at IS NULL");
    let statement = super::claim_due(db.get_database_backend(), columns, Duration::ZERO, claim, limit);
    outbox::Entity::find().from_raw_sql(statement).all(db).await
}

pub async fn mark_sent<C: ConnectionTrait>(db: &C, id: i64, note: Option<String>) -> Result<(), DbErr> {
    outbox::Entity::update(outbox::ActiveModel {
        id: Set(id),
        sent_at: Set(Some(Utc::now())),
        last_error: Set(note),
        ..Default::default()
    })
    .exec(db)
    .await
    .map(|_| ())
}

/// A failed send: tried again after an exponential backoff (2 s, 4 s… capped at ten minutes), never dropped.
pub async fn mark_failed<C: ConnectionTrait>(db: &C, message: &outbox::Model, error: String) -> Result<(), DbErr> {
    let attempts = message.attempts + 1;
    let wait = chrono::TimeDelta::seconds((1_i64 << attempts.clamp(1, 9)).min(600));
    outbox::Entity::update(outbox::ActiveModel {
        id: Set(message.id),
        attempts: Set(attempts),
        last_error: Set(Some(error)),
        available_at: Set(Utc::now() + wait),
        ..Default::default()
    })
    .exec(db)
    .await
    .map(|_| ())
}
