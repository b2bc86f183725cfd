//! Invoices: issued in the transaction that grants the credits, numbered by a counter row that the transaction
//! holds, so numbers have no gaps (a rolled-back purchase rolls its number back too) and never repeat.
//!
//! Every grant on every node takes that one row, and keeps it until its transaction commits. Inside a writer's batch
//! an invoice is therefore held (`writer::hold_invoice`) and numbered with the batch's others as the batch's last
//! write: the counter is taken once per batch, just before the commit, instead of once per grant with the rest of
//! the batch still to run while every other batch waits for it.
use super::billing_profiles;
use crate::domain::invoice::{InvoiceDocument, Issuer};
use crate::domain::purchase::Purchase;
use chrono::{DateTime, Utc};
use entities::invoices;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use std::sync::Arc;

/// An issued invoice waiting for its number and its client's billing profile, both read once for the whole batch.
pub struct Unnumbered {
    issuer: Arc<Issuer>,
    purchase: Purchase,
    issued_at: DateTime<Utc>,
}

pub async fn issue<C: ConnectionTrait>(db: &C, issuer: &Arc<Issuer>, purchase: &Purchase) -> Result<(), DbErr> {
    let unnumbered = Unnumbered { issuer: issuer.clone(), purchase: purchase.clone(), issued_at: Utc::now() };
    let Some(unnumbered) = super::writer::hold_invoice(unnumbered) else { return Ok(()) };
    let row = number(db, vec![unnumbered]).await?;
    invoices::Entity::insert_many(row).exec_without_returning(db).await.map(|_| ())
}

/// The rows of `unnumbered`, each with its client's billing profile as it stands, numbered in order from the
/// counter, which is advanced once for all of them.
pub async fn number<C: ConnectionTrait>(
    db: &C,
    unnumbered: Vec<Unnumbered>,
) -> Result<Vec<invoices::ActiveModel>, DbErr> {
    if unnumbered.is_empty() {
        return Ok(vec![]);
    }
    // Read before the counter is taken: nothing is read while every other grant waits for it.
    let businesses = billing_profiles::of(db, unnumbered.iter().map(|u| u.purchase.client.as_str())).await?;
    let count = unnumbered.len() as i64;
    // The first number and the increment in one statement (SQLite 3.35+ and PostgreSQL both return from an UPDATE).
    let take = "UPDATE invoice_counters SET next = next + ? WHERE name = 'invoice' RETURNING next - ? AS first";
    let statement = super::numbered(db.get_database_backend(), take, vec![count.into(), count.into()]);
    let row = db.query_one_raw(statement).await?.ok_or_else(|| DbErr::RecordNotFound("invoice counter".into()))?;
    let first: i64 = row.try_get("", "first")?;
    unnumbered
        .into_iter()
        .zip(first..)
        .map(|(Unnumbered { issuer, purchase, issued_at }, number)| {
            let business = businesses.get(purchase.client.as_str()).cloned();
            let document =
                InvoiceDocument::for_purchase(number, &issuer.seller, &issuer.rates, business, &purchase, issued_at);
            Ok(invoices::ActiveModel {
                number: Set(number),
                purchase_id: Set(purchase.id),
                client_id: Set(purchase.client.as_str().to_owned()),
                issued_at: Set(issued_at),
                document: Set(serde_json::to_value(&document).map_err(|e| DbErr::Custom(e.to_string()))?),
            })
        })
        .collect()
}

pub async fn for_purchase(db: &DatabaseConnection, purchase: uuid::Uuid) -> Result<Option<InvoiceDocument>, DbErr> {
    let row = invoices::Entity::find().filter(invoices::Column::PurchaseId.eq(purchase)).one(db).await?;
    row.map(|r| serde_json::from_value(r.document).map_err(|e| DbErr::Custom(format!("invoice {}: {e}", r.number))))
        .transpose()
}
