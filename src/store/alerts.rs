//! Admin alerts: recorded, and mailed to `email.admin_address` through the outbox, in the caller's transaction. The
//! key makes the same alert raised twice appear (and mail) once.
use super::outbox;
use chrono::Utc;
use entities::alerts;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::Value;

/// An alert to raise in the transaction of the change it announces (a guard's pause, a circuit opened).
pub struct Alert {
    pub kind: &'static str,
    pub key: String,
    pub details: Value,
}

impl Alert {
    pub async fn raise<C: ConnectionTrait>(self, db: &C) -> Result<(), DbErr> {
        raise(db, self.kind, self.key, self.details).await
    }
}

pub async fn raise<C: ConnectionTrait>(db: &C, kind: &str, key: String, details: Value) -> Result<(), DbErr> {
    let alert = alerts::ActiveModel {
        key: Set(key.clone()),
        kind: Set(kind.to_owned()),
        details: Set(details.clone()),
        created_at: Set(Utc::now()),
        acknowledged_by: Set(None),
        acknowledged_at: Set(None),
    };
    alerts::Entity::insert(alert)
        .on_conflict(OnConflict::column(alerts::Column::Key).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    outbox::enqueue(db, outbox::Kind::AdminAlert, key, details).await
}

pub async fn list(db: &DatabaseConnection, open_only: bool) -> Result<Vec<alerts::Model>, DbErr> {
    let mut query = alerts::Entity::find().order_by_desc(alerts::Column::CreatedAt);
    if open_only {
        query = query.filter(alerts::Column::AcknowledgedAt.is_null());
    }
    query.all(db).await
}

/// Returns false when there is no such alert.
pub async fn acknowledge<C: ConnectionTrait>(db: &C, key: &str, admin: &str) -> Result<bool, DbErr> {
    let result = alerts::Entity::update_many()
        .col_expr(alerts::Column::AcknowledgedBy, sea_orm::sea_query::Expr::value(admin))
        .col_expr(alerts::Column::AcknowledgedAt, sea_orm::sea_query::Expr::value(Utc::now()))
        .filter(alerts::Column::Key.eq(key))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
