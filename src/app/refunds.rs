//! Refund requests and decisions (AC9.5.1–AC9.5.7): each is a step of the refund's actor, judged on the books read
//! in the transaction that records it.
use crate::actors::refund::{RefundActors, RefundError, RefundReply};
use crate::domain::ids::ClientId;
use crate::domain::refund::{RefundAsk, RefundInput};
use crate::store::purchases;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

/// A client asks for a refund of one of its own purchases.
pub async fn request(
    db: &DatabaseConnection,
    refunds: &RefundActors,
    client: &ClientId,
    purchase: Uuid,
    ask: RefundAsk,
) -> RefundReply {
    let purchase = purchases::load(db, purchase)
        .await?
        .map(|stored| stored.purchase)
        .filter(|p| p.client == *client)
        .ok_or(RefundError::PurchaseNotFound)?;
    refunds.open(&purchase, ask).await
}

/// An admin approves: the refund actor re-prices the request on the books and debits in the same transaction.
pub async fn approve(refunds: &RefundActors, id: Uuid, admin: &ClientId) -> RefundReply {
    refunds.send(id, RefundInput::Approve { admin: admin.as_str().to_owned() }).await
}
