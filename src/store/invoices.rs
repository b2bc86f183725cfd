//! Invoices: issued in the transaction that grants the credits, numbered by a counter row that the transaction
//! holds, so numbers have no gaps (a rolled-back purchase rolls its number back too) and never repeat.
use super::billing_profiles;
use crate::domain::invoice::{InvoiceDocument, Issuer};
use crate::domain::purchase::Purchase;
use chrono::Utc;
use entities::invoices;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Statement,
};

pub async fn issue<C: ConnectionTrait>(db: &C, issuer: &Issuer, purchase: &Purchase) -> Result<(), DbErr> {
    // The next number and the increment in one statement (SQLite 3.35+ and PostgreSQL both return from an UPDATE).
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "UPDATE invoice_counters SET next = next + 1 WHERE name = 'invoice' RETURNING next - 1 AS number",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("invoice counter".into()))?;
    let number: i64 = row.try_get("", "number")?;
    let now = Utc::now();
    let business = billing_profiles::find(db, purchase.client.as_str()).await?;
    let document = InvoiceDocument::for_purchase(number, &issuer.seller, &issuer.rates, business, purchase, now);
    invoices::Entity::insert(invoices::ActiveModel {
        number: Set(number),
        purchase_id: Set(purchase.id),
        client_id: Set(purchase.client.as_str().to_owned()),
        issued_at: Set(now),
        document: Set(serde_json::to_value(&document).map_err(|e| DbErr::Custom(e.to_string()))?),
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

pub async fn for_purchase(db: &DatabaseConnection, purchase: uuid::Uuid) -> Result<Option<InvoiceDocument>, DbErr> {
    let row = invoices::Entity::find().filter(invoices::Column::PurchaseId.eq(purchase)).one(db).await?;
    row.map(|r| serde_json::from_value(r.document).map_err(|e| DbErr::Custom(format!("invoice {}: {e}", r.number))))
        .transpose()
}
