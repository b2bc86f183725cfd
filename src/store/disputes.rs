//! Disputes, from PayPal and Stripe alike. Each new dispute or change of status is recorded with an admin alert in
//! the outbox, in one transaction, so an alert is neither lost nor sent twice.
use super::alerts;
use chrono::Utc;
use entities::disputes;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, QueryOrder, TransactionTrait};
use serde_json::{Value, json};
use uuid::Uuid;

pub struct Dispute {
    pub id: String,
    pub provider: &'static str,
    pub purchase_id: Option<Uuid>,
    pub client_id: Option<String>,
    pub reason: String,
    pub status: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub details: Value,
}

pub async fn record(db: &DatabaseConnection, dispute: Dispute) -> Result<(), DbErr> {
    use disputes::Column as C;
    let now = Utc::now();
    let txn = db.begin().await?;
    let row = disputes::ActiveModel {
        id: Set(dispute.id.clone()),
        provider: Set(dispute.provider.to_owned()),
        purchase_id: Set(dispute.purchase_id),
        client_id: Set(dispute.client_id.clone()),
        reason: Set(dispute.reason.clone()),
        status: Set(dispute.status.clone()),
        amount: Set(dispute.amount),
        currency: Set(dispute.currency.clone()),
        details: Set(dispute.details.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let refresh = OnConflict::column(C::Id).update_columns([C::Status, C::Reason, C::Details, C::UpdatedAt]).to_owned();
    disputes::Entity::insert(row).on_conflict(refresh).exec_without_returning(&txn).await?;
    let alert = json!({
        "alert": "dispute",
        "disputeId": dispute.id,
        "provider": dispute.provider,
        "status": dispute.status,
        "reason": dispute.reason,
        "purchaseId": dispute.purchase_id,
        "clientId": dispute.client_id,
        "amount": dispute.amount,
        "currency": dispute.currency,
    });
    // The same status reported twice alerts once.
    alerts::raise(&txn, "dispute", format!("dispute:{}:{}", dispute.id, dispute.status), alert).await?;
    txn.commit().await
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<disputes::Model>, DbErr> {
    disputes::Entity::find().order_by_desc(disputes::Column::CreatedAt).all(db).await
}

pub async fn find(db: &DatabaseConnection, id: &str) -> Result<Option<disputes::Model>, DbErr> {
    disputes::Entity::find_by_id(id.to_owned()).one(db).await
}
