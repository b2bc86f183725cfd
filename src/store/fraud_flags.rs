//! Accounts flagged for confirmed fraud.
use chrono::Utc;
use entities::fraud_flags as flags;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryOrder};

pub async fn flag<C: ConnectionTrait>(db: &C, client: &str, reason: &str, by: &str) -> Result<(), DbErr> {
    let at = Utc::now();
    let row = flags::ActiveModel {
        client_id: Set(client.to_owned()),
        reason: Set(reason.to_owned()),
        flagged_by: Set(by.to_owned()),
        flagged_at: Set(at),
    };
    let inserted = flags::Entity::insert(row)
        .on_conflict(OnConflict::column(flags::Column::ClientId).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    if inserted == 0 {
        return Ok(());
    }
    let data = serde_json::json!({ "clientId": client, "reason": reason, "flaggedBy": by });
    let cause = format!("account.flagged:{client}:{}", at.timestamp_nanos_opt().unwrap_or_default());
    super::events::record(db, crate::domain::event::EventType::AccountFlagged, cause, Some(client), data).await
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<flags::Model>, DbErr> {
    flags::Entity::find().order_by_desc(flags::Column::FlaggedAt).all(db).await
}

/// Lifts a flag and audits who lifted it and why, in one transaction. `false` when the account was not flagged.
pub async fn lift<C: ConnectionTrait>(txn: &C, client: &str, reason: &str, by: &str) -> Result<bool, DbErr> {
    let lifted = flags::Entity::delete_by_id(client.to_owned()).exec(txn).await?.rows_affected > 0;
    if lifted {
        super::controls::audit(txn, by, "lift_fraud_flag", client, reason).await?;
    }
    Ok(lifted)
}
