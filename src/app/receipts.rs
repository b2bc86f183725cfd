//! A receipt sent again (AC9.4.6), by the client or by support: the message queued and the audit line (who, when,
//! which receipt) written in one transaction, so no resend goes out unrecorded.
use crate::domain::purchase::Purchase;
use crate::store::writer::Writer;
use crate::store::{controls, outbox};
use sea_orm::DbErr;
use serde_json::json;
use uuid::Uuid;

/// What the audit trail calls a resend.
pub const ACTION: &str = "resend_receipt";

/// Queues `purchase`'s receipt again, recorded as asked by `by` (the client itself, or an admin).
pub async fn resend(writer: &Writer, purchase: &Purchase, by: &str) -> Result<(), DbErr> {
    let payload = json!({ "purchaseId": purchase.id, "clientId": purchase.client });
    let copy = format!("receipt:{}:again:{}", purchase.id, Uuid::new_v4());
    let (by, purchase, what) = (by.to_owned(), purchase.id.to_string(), format!("the receipt queued again as {copy}"));
    let step = writer.write(move |txn| {
        Box::pin(async move {
            controls::audit(txn, &by, ACTION, &purchase, &what).await?;
            outbox::enqueue(txn, outbox::Kind::Receipt, copy, payload).await
        })
    });
    step.await
}
