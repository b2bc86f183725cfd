//! Refund requests and decisions (AC9.5.1–AC9.5.7): each is a step of the refund's actor, judged on the books read
//! in the transaction that records it.
use crate::actors::refund::{RefundActors, RefundError, RefundReply};
use crate::domain::ids::ClientId;
use crate::domain::purchase::Purchase;
use crate::domain::refund::{Books, Refund, RefundAsk, RefundInput, RequestRejected};
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
    refunds.open(&own_purchase(db, client, purchase).await?, ask).await
}

async fn own_purchase(db: &DatabaseConnection, client: &ClientId, purchase: Uuid) -> Result<Purchase, RefundError> {
    purchases::load(db, purchase)
        .await?
        .map(|stored| stored.purchase)
        .filter(|p| p.client == *client)
        .ok_or(RefundError::PurchaseNotFound)
}

/// What a client's refund of one of its own purchases would give back now, and the books it was judged on.
pub async fn quote(
    db: &DatabaseConnection,
    refunds: &RefundActors,
    client: &ClientId,
    purchase: Uuid,
) -> Result<(Purchase, Result<Refund, RequestRejected>, Books), RefundError> {
    let purchase = own_purchase(db, client, purchase).await?;
    let (quote, books) = refunds.quote(&purchase).await?;
    Ok((purchase, quote, books))
}

/// An admin approves: the refund actor re-prices the request on the books and debits in the same transaction.
pub async fn approve(refunds: &RefundActors, id: Uuid, admin: &ClientId) -> RefundReply {
    refunds.send(id, RefundInput::Approve { admin: admin.as_str().to_owned() }).await
}
