//! An admin's answers to what the guards raised: a fraud flag lifted (with its audit line) and an alert acknowledged,
//! each a writer step.
use crate::domain::ids::ClientId;
use crate::store::writer::Writer;
use crate::store::{alerts, fraud_flags};
use sea_orm::DbErr;

/// Whether `client` was flagged (and now is not).
pub async fn lift_fraud_flag(writer: &Writer, admin: &ClientId, client: &str, reason: &str) -> Result<bool, DbErr> {
    let (client, reason, by) = (client.to_owned(), reason.to_owned(), admin.as_str().to_owned());
    writer.write(move |txn| Box::pin(async move { fraud_flags::lift(txn, &client, &reason, &by).await })).await
}

/// Whether an alert of that key was there to acknowledge.
pub async fn acknowledge_alert(writer: &Writer, admin: &ClientId, key: &str) -> Result<bool, DbErr> {
    let (key, by) = (key.to_owned(), admin.as_str().to_owned());
    writer.write(move |txn| Box::pin(async move { alerts::acknowledge(txn, &key, &by).await })).await
}
