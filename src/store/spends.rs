//! Spends and their reversals (issue 18): each is one transaction with its ledger row, so a spend is never recorded
//! without its credits taken, nor credits taken without the spend that says what they bought.
use super::ledger::{self, Taken};
use crate::domain::ids::ClientId;
use chrono::Utc;
use entities::{credit_ledger, spends};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

#[derive(Clone)]
pub struct NewSpend {
    pub id: Uuid,
    pub client: ClientId,
    pub credits: i64,
    pub reference: String,
    pub description: String,
    pub spent_by: String,
}

pub enum Spent {
    /// Taken; the balance after.
    Done(spends::Model, i64),
    /// The balance is smaller: nothing written.
    Insufficient(i64),
}

fn source(id: Uuid) -> String {
    format!("spend:{id}")
}

pub async fn spend<C: ConnectionTrait>(txn: &C, spend: NewSpend) -> Result<Spent, DbErr> {
    let balance = match ledger::take(txn, &spend.client, &source(spend.id), "spend", spend.credits).await? {
        Taken::After(balance) => balance,
        Taken::Short(balance) => return Ok(Spent::Insufficient(balance)),
    };
    let row = spends::ActiveModel {
        id: Set(spend.id),
        client_id: Set(spend.client.as_str().to_owned()),
        credits: Set(spend.credits),
        reference: Set(spend.reference),
        description: Set(spend.description),
        spent_by: Set(spend.spent_by),
        created_at: Set(Utc::now()),
        reversed_at: Set(None),
        reversal_reason: Set(None),
    };
    Ok(Spent::Done(row.insert(txn).await?, balance))
}

pub enum Reversed {
    /// Given back now; the balance after.
    Done(spends::Model, i64),
    /// Given back before: nothing written.
    Already(spends::Model),
    NotFound,
}

/// Gives a spend's credits back, once: the spend is locked for the decision (or the step fails busy, to be tried
/// again, while another transaction decides on it).
pub async fn reverse<C: ConnectionTrait>(txn: &C, id: Uuid, reason: &str) -> Result<Reversed, DbErr> {
    super::advisory_lock_now(txn, &source(id)).await?;
    let Some(found) = spends::Entity::find_by_id(id).one(txn).await? else { return Ok(Reversed::NotFound) };
    if found.reversed_at.is_some() {
        return Ok(Reversed::Already(found));
    }
    let client = ClientId::parse(&found.client_id).map_err(DbErr::Custom)?;
    ledger::append(txn, &client, &source(id), "spend_reversal", found.credits).await?;
    let mut row: spends::ActiveModel = found.into();
    row.reversed_at = Set(Some(Utc::now()));
    row.reversal_reason = Set(Some(reason.to_owned()));
    let row = row.update(txn).await?;
    let balance = ledger::balance(txn, &client).await?;
    Ok(Reversed::Done(row, balance))
}

pub async fn find(db: &DatabaseConnection, id: Uuid) -> Result<Option<spends::Model>, DbErr> {
    spends::Entity::find_by_id(id).one(db).await
}

/// A client's ledger, oldest first, a page at a time after the row `after`.
pub async fn statement(
    db: &DatabaseConnection,
    client: &ClientId,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<credit_ledger::Model>, DbErr> {
    let mut rows = credit_ledger::Entity::find().filter(credit_ledger::Column::ClientId.eq(client.as_str()));
    if let Some(after) = after {
        rows = rows.filter(credit_ledger::Column::Id.gt(after));
    }
    rows.order_by_asc(credit_ledger::Column::Id).limit(limit).all(db).await
}

/// The spends a page of the ledger names, for their references.
pub async fn named(db: &DatabaseConnection, ids: Vec<Uuid>) -> Result<Vec<spends::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    spends::Entity::find().filter(spends::Column::Id.is_in(ids)).all(db).await
}
