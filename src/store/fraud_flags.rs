//! Accounts flagged for confirmed fraud.
use chrono::Utc;
use entities::fraud_flags as flags;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

pub async fn flag<C: ConnectionTrait>(db: &C, client: &str, reason: &str, by: &str) -> Result<(), DbErr> {
    let row = flags::ActiveModel {
        client_id: Set(client.to_owned()),
        reason: Set(reason.to_owned()),
        flagged_by: Set(by.to_owned()),
        flagged_at: Set(Utc::now()),
    };
    flags::Entity::insert(row)
        .on_conflict(OnConflict::column(flags::Column::ClientId).do_nothing().to_owned())
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

pub async fn is_flagged<C: ConnectionTrait>(db: &C, client: &str) -> Result<bool, DbErr> {
    Ok(flags::Entity::find_by_id(client.to_owned()).one(db).await?.is_some())
}
