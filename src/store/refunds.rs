//! Refund requests: the actor's state and what each step writes (the ledger debit, the client's email), in one
//! transaction per step.
use super::events;
use super::ledger::{self, Taken};
use super::outbox;
use super::webhooks;
use crate::domain::event::EventType;
use crate::domain::ids::{ClientId, RefundRequestId, TransactionId};
use crate::domain::money::Credits;
use crate::domain::purchase::Purchase;
use crate::domain::refund::{
    Books, Notice, Refund, RefundRecord, RefundRejected, RefundStatus, RefundStep, RequestRejected,
};
use entities::refund_requests as rows;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqlErr,
};
use serde_json::json;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct StoredRefund {
    pub refund: Refund,
    pub version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundStoreError {
    #[error(transparent)]
    Request(#[from] RequestRejected),
    #[error(transparent)]
    Rejected(#[from] RefundRejected),
    #[error("the client spent some of these credits meanwhile; approve again to refund what is left")]
    CreditsSpent,
    #[error("refund {0} was changed by someone else (version conflict)")]
    Conflict(Uuid),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn row(refund: &Refund, version: i64) -> Result<rows::ActiveModel, DbErr> {
    Ok(rows::ActiveModel {
        id: Set(refund.id),
        purchase_id: Set(refund.purchase_id),
        client_id: Set(refund.client.as_str().to_owned()),
        status: Set(refund.status.as_str().to_owned()),
        credits: Set(refund.credits.0),
        amount: Set(refund.amount.minor),
        currency: Set(refund.amount.currency.code().to_owned()),
        state: Set(serde_json::to_value(refund).map_err(|e| DbErr::Custom(format!("refund state: {e}")))?),
        version: Set(version),
        created_at: Set(refund.created_at),
        updated_at: Set(refund.updated_at),
    })
}

fn decode(model: rows::Model) -> Result<StoredRefund, DbErr> {
    let refund = serde_json::from_value(model.state).map_err(|e| DbErr::Custom(format!("refund {}: {e}", model.id)))?;
    Ok(StoredRefund { refund, version: model.version })
}

/// Reads the books for a decision on `purchase`'s refunds inside `txn`, holding the client's ledger lock so that no
/// other debit moves them until the decision commits.
async fn books<C: ConnectionTrait>(txn: &C, client: &ClientId, purchase: Uuid, except: Uuid) -> Result<Books, DbErr> {
    ledger::lock(txn, client).await?;
    read_books(txn, client, purchase, except).await
}

async fn read_books<C: ConnectionTrait>(
    db: &C,
    client: &ClientId,
    purchase: Uuid,
    except: Uuid,
) -> Result<Books, DbErr> {
    Ok(Books {
        balance: ledger::balance(db, client).await?,
        already_refunded: Credits(credits_refunded(db, purchase, except).await?),
    })
}

/// The books as they stand, read without a lock: for telling a client what a refund would give back, never for
/// deciding one.
pub async fn current_books(db: &DatabaseConnection, purchase: &Purchase) -> Result<Books, DbErr> {
    read_books(db, &purchase.client, purchase.id, Uuid::nil()).await
}

/// The refund actor's first step: the request is judged on the books and recorded in one transaction. The partial
/// unique index on open requests is what refuses a second concurrent one.
pub async fn open(
    db: &DatabaseConnection,
    purchase: &Purchase,
    request: impl FnOnce(Books) -> Result<Refund, RequestRejected>,
) -> Result<Refund, RefundStoreError> {
    let txn = crate::store::begin(db).await?;
    let books = books(&txn, &purchase.client, purchase.id, Uuid::nil()).await?;
    let refund = request(books)?;
    match rows::Entity::insert(row(&refund, 0)?).exec_without_returning(&txn).await {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(RequestRejected::AlreadyOpen.into());
        }
        Err(e) => return Err(e.into()),
    }
    requested(&txn, &refund).await?;
    txn.commit().await?;
    Ok(refund)
}

/// Records a refund made by another actor's step (a fraud reversal), in that step's transaction.
pub async fn insert<C: ConnectionTrait>(txn: &C, refund: &Refund) -> Result<(), DbErr> {
    rows::Entity::insert(row(refund, 0)?).exec_without_returning(txn).await?;
    requested(txn, refund).await
}

async fn requested<C: ConnectionTrait>(txn: &C, refund: &Refund) -> Result<(), DbErr> {
    let cause = format!("refund.requested:{}", refund.id);
    events::record(txn, EventType::RefundRequested, cause, Some(refund.client.as_str()), event_data(refund)).await
}

/// What the platform hears of a refund.
fn event_data(refund: &Refund) -> serde_json::Value {
    json!({ "refundRequestId": RefundRequestId(refund.id), "transactionId": TransactionId(refund.purchase_id),
        "clientId": refund.client, "credits": refund.credits.0, "amount": refund.amount.minor,
        "currency": refund.amount.currency.code(), "status": refund.status.as_str(), "reversal": refund.reversal })
}

/// One step of a refund, any node's actor being free to take it: the row is locked (`SELECT … FOR UPDATE`) and the
/// step decided on it as locked (and on the books read in the same transaction, when it `reads_books`), then saved
/// with what it writes (the ledger debit, the client's email). Returns the refund as it was locked, and the step with
/// its new version if it changed anything.
pub async fn step(
    db: &DatabaseConnection,
    id: Uuid,
    reads_books: bool,
    webhook: Option<i64>,
    decide: impl FnOnce(&Refund, Option<Books>) -> Result<RefundStep, RefundRejected>,
) -> Result<(StoredRefund, Option<(RefundStep, i64)>), RefundStoreError> {
    let txn = crate::store::begin(db).await?;
    let locked = rows::Entity::find_by_id(id).lock_exclusive().one(&txn).await?;
    let before = decode(locked.ok_or(DbErr::RecordNotFound(format!("refund {id}")))?)?;
    let current = &before.refund;
    let books = match reads_books {
        true => Some(books(&txn, &current.client, current.purchase_id, current.id).await?),
        false => None,
    };
    let step = decide(current, books)?;
    // The event that caused the step is marked applied in its transaction, as a purchase's step marks its own.
    if let Some(row) = webhook {
        webhooks::mark(&txn, row, webhooks::InboxStatus::Processed, None).await?;
    }
    if step.refund == *current && step.records.is_empty() && step.effects.is_empty() {
        if webhook.is_some() {
            txn.commit().await?;
        }
        return Ok((before, None));
    }
    let next = &step.refund;
    let version = before.version + 1;
    let updated = rows::Entity::update_many()
        .set(row(next, version)?)
        .filter(rows::Column::Id.eq(next.id))
        .filter(rows::Column::Version.eq(before.version))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(RefundStoreError::Conflict(next.id));
    }
    let settled = match next.status {
        RefundStatus::Denied => Some(EventType::RefundDenied),
        RefundStatus::Refunded => Some(EventType::RefundRefunded),
        _ => None,
    };
    if let Some(kind) = settled.filter(|_| next.status != current.status) {
        let cause = format!("{}:{}:{version}", kind.as_str(), next.id);
        events::record(&txn, kind, cause, Some(next.client.as_str()), event_data(next)).await?;
    }
    for record in &step.records {
        match record {
            RefundRecord::DebitCredits { credits } => {
                let source = format!("refund:{}", next.id);
                if let Taken::Short(_) = ledger::take(&txn, &next.client, &source, "refund_debit", credits.0).await? {
                    return Err(RefundStoreError::CreditsSpent);
                }
            }
            RefundRecord::CreditBack { credits } => {
                ledger::append(&txn, &next.client, &format!("refund:{}", next.id), "refund_credit_back", credits.0)
                    .await?;
            }
            RefundRecord::Notify(notice) => notify(&txn, next, notice).await?,
            RefundRecord::AlertRefused { code } => {
                let details = serde_json::json!({ "refundId": next.id, "purchaseId": next.purchase_id,
                    "providerCode": code, "message": "The provider refused this refund for good; pay it back another way." });
                super::alerts::raise(
                    &txn,
                    "refund_refused",
                    format!("refund_refused:{}:{}", next.id, version),
                    details,
                )
                .await?;
            }
        }
    }
    txn.commit().await?;
    Ok((before, Some((step, version))))
}

async fn notify<C: ConnectionTrait>(db: &C, refund: &Refund, notice: &Notice) -> Result<(), DbErr> {
    let name = match notice {
        Notice::Approved => "approved",
        Notice::Denied => "denied",
        Notice::Refunded => "refunded",
        Notice::NeedsAlternativeMethod => "needs_alternative_method",
    };
    // A second denial (after an appeal) is a second email.
    let key = format!("refund:{}:{name}:{}", refund.id, refund.appeals_used);
    outbox::enqueue(db, outbox::Kind::RefundNotice, key, json!({ "refundId": refund.id, "notice": name })).await
}

pub async fn load(db: &DatabaseConnection, id: Uuid) -> Result<Option<StoredRefund>, DbErr> {
    rows::Entity::find_by_id(id).one(db).await?.map(decode).transpose()
}

pub async fn list(db: &DatabaseConnection, client: Option<&str>, status: Option<&str>) -> Result<Vec<Refund>, DbErr> {
    let mut query = rows::Entity::find().order_by_asc(rows::Column::CreatedAt);
    if let Some(client) = client {
        query = query.filter(rows::Column::ClientId.eq(client));
    }
    if let Some(status) = status {
        query = query.filter(rows::Column::Status.eq(status));
    }
    query.all(db).await?.into_iter().map(|m| decode(m).map(|s| s.refund)).collect()
}

/// Credits already taken back from a purchase by refunds other than `except`.
async fn credits_refunded<C: ConnectionTrait>(db: &C, purchase: Uuid, except: Uuid) -> Result<i64, DbErr> {
    // A refund that needs another method gave its credits back: they may be asked for again.
    let taken = [RefundStatus::Processing, RefundStatus::Refunded].map(|s| s.as_str());
    let refunds = rows::Entity::find()
        .filter(rows::Column::PurchaseId.eq(purchase))
        .filter(rows::Column::Id.ne(except))
        .filter(rows::Column::Status.is_in(taken))
        .all(db)
        .await?;
    Ok(refunds.iter().map(|r| r.credits).sum())
}

/// Money paid back so far (minor units) for each of `purchases` that has any.
pub async fn refunded_amounts(
    db: &DatabaseConnection,
    purchases: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, i64>, DbErr> {
    let refunds = rows::Entity::find()
        .filter(rows::Column::PurchaseId.is_in(purchases.iter().copied()))
        .filter(rows::Column::Status.eq(RefundStatus::Refunded.as_str()))
        .all(db)
        .await?;
    let mut amounts = std::collections::HashMap::new();
    for refund in refunds {
        *amounts.entry(refund.purchase_id).or_default() += refund.amount;
    }
    Ok(amounts)
}

/// The refund waiting on the provider for a purchase, for webhooks that report it.
/// The refund of `purchase` that news of `provider_refund` is about: the one made under that id (even if already
/// settled: a paid refund can still fail), or else the one being made.
pub async fn settling(db: &DatabaseConnection, purchase: Uuid, provider_refund: &str) -> Result<Option<Uuid>, DbErr> {
    let candidates = rows::Entity::find()
        .filter(rows::Column::PurchaseId.eq(purchase))
        .filter(rows::Column::Status.is_in([RefundStatus::Processing.as_str(), RefundStatus::Refunded.as_str()]))
        .all(db)
        .await?;
    let mut processing = None;
    for row in candidates {
        let stored = decode(row)?;
        if stored.refund.provider_refund.as_deref() == Some(provider_refund) {
            return Ok(Some(stored.refund.id));
        }
        if stored.refund.status == RefundStatus::Processing {
            processing = Some(stored.refund.id);
        }
    }
    Ok(processing)
}

pub async fn processing_ids(db: &DatabaseConnection) -> Result<Vec<Uuid>, DbErr> {
    let rows = rows::Entity::find().filter(rows::Column::Status.eq(RefundStatus::Processing.as_str())).all(db).await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}
